//! The trust boundary: the only code that turns an untrusted received message into
//! something the B2BUA may act on, and the one place where what leaves is rewritten for
//! the peer it goes to.
//!
//! * [`gate`]: admission before parsing (bans, listener ACLs, trunk-only listeners,
//!   scanner User-Agents, per-source rate limits).
//! * [`boundary`]: after parsing, per shard: authentication (SIP Digest for the access
//!   side, source address and TLS for trunks), identity (RFC 3325 P-Asserted-Identity
//!   believed only from trusted peers, asserted by the SBC for the users it
//!   authenticated), `sips:` only over TLS, overload. Its [`Verdict`] must be handled.
//! * [`egress`]: what a call's B-leg may carry toward a peer of a given trust (RFC 3323
//!   privacy, identity headers).
//! * [`call_limits`]: call admission control (concurrent calls in all, per user, per
//!   trunk), shared by the shards.
//! * [`acl`], [`bans`], [`rate`]: the building blocks.

pub mod acl;
pub mod bans;
pub mod boundary;
pub mod call_limits;
pub mod egress;
pub mod gate;
pub mod rate;

pub use acl::{Acl, AclAction, AclRule, Cidr, CidrError, TrunkSources};
pub use boundary::{
    Admitted, Arrival, Boundary, BoundaryConfig, Origin, PolicyEvent, PolicyStats, TrunkDirectory,
    TrunkPolicy, Verdict,
};
pub use call_limits::{CallLimits, CallLimitsConfig, LimitReached};
pub use gate::{Admission, Gate, GateConfig, GateEvent, GateStats, ListenerRule};
pub use rate::{Rate, RateLimits};
