//! Why a routing configuration was refused.

use super::TrunkId;

/// A routing configuration that [`super::RoutingTable::new`] refuses. Each variant names
/// the trunk or route at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutingConfigError {
    #[error("{0} has an empty name")]
    EmptyTrunkName(TrunkId),
    #[error("{0} is used by more than one trunk")]
    DuplicateTrunkId(TrunkId),
    #[error("trunk name {0:?} is used more than once")]
    DuplicateTrunkName(String),
    #[error("trunk {0:?} has no targets")]
    NoTargets(String),
    #[error("trunk {trunk:?} has {count} targets, at most {max} are allowed")]
    TooManyTargets {
        trunk: String,
        count: usize,
        max: usize,
    },
    #[error("trunk {trunk:?}: {host:?} is neither an IP address nor a valid host name")]
    InvalidTargetHost { trunk: String, host: String },
    #[error("trunk {0:?}: a target has port 0")]
    InvalidTargetPort(String),
    #[error("trunk {trunk:?}: keep-alive {reason}")]
    InvalidKeepAlive { trunk: String, reason: &'static str },
    #[error("a route has an empty name")]
    EmptyRouteName,
    #[error("route name {0:?} is used more than once")]
    DuplicateRouteName(String),
    #[error("route {route:?} refers to {trunk}, which is not configured")]
    UnknownTrunk { route: String, trunk: TrunkId },
    #[error("route {0:?} has an empty user prefix")]
    EmptyUserPrefix(String),
    #[error("route {route:?}: {domain:?} is not a valid domain or IP address")]
    InvalidDomain { route: String, domain: String },
}

impl RoutingConfigError {
    /// A stable name for logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            RoutingConfigError::EmptyTrunkName(_) => "empty_trunk_name",
            RoutingConfigError::DuplicateTrunkId(_) => "duplicate_trunk_id",
            RoutingConfigError::DuplicateTrunkName(_) => "duplicate_trunk_name",
            RoutingConfigError::NoTargets(_) => "no_targets",
            RoutingConfigError::TooManyTargets { .. } => "too_many_targets",
            RoutingConfigError::InvalidTargetHost { .. } => "invalid_target_host",
            RoutingConfigError::InvalidTargetPort(_) => "invalid_target_port",
            RoutingConfigError::InvalidKeepAlive { .. } => "invalid_keep_alive",
            RoutingConfigError::EmptyRouteName => "empty_route_name",
            RoutingConfigError::DuplicateRouteName(_) => "duplicate_route_name",
            RoutingConfigError::UnknownTrunk { .. } => "unknown_trunk",
            RoutingConfigError::EmptyUserPrefix(_) => "empty_user_prefix",
            RoutingConfigError::InvalidDomain { .. } => "invalid_domain",
        }
    }
}
