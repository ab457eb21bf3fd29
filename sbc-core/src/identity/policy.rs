//! Identity policy: what each trunk wants verified and signed, the B2BUA's identity
//! configuration, and what the service counts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::certs::TrustAnchors;
use super::sign::Signer;
use super::verify::VerifyPolicy;

/// What happens to calls from a trunk whose Identity does not verify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// No verification.
    #[default]
    Off,
    /// Verify; a failed call goes on, marked `TN-Validation-Failed`.
    Mark,
    /// Verify; a failed call is rejected with the RFC 8224 status of its failure.
    Enforce,
}

/// What to do with the Identity headers a call arrived with, toward a trunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncomingIdentity {
    /// Keep them unless this SBC signs the call (a new PASSporT replaces them).
    #[default]
    Auto,
    Keep,
    Remove,
}

/// One trunk's identity policy (both directions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkIdentity {
    /// Calls from the trunk: verify, and what a failure does.
    pub verify: VerifyMode,
    /// Calls from the trunk without Identity fail verification (`428` when enforced)
    /// rather than pass as `No-TN-Validation`.
    pub require: bool,
    /// Rejections carry RFC 9410 `Reason: STIR` (for peers that support it).
    pub stir_reason: bool,
    /// Calls from the trunk come from a customer the SBC knows (attestation B).
    pub customer: bool,
    /// Calls from the trunk keep the attestation their verified PASSporT had when this
    /// SBC re-signs them (else they are signed as a gateway, C).
    pub trust_attestation: bool,
    /// The trust domain (calls crossing between two domains are re-signed). Trunks
    /// without one are each their own domain.
    pub domain: Option<String>,
    /// Calls to the trunk are signed by this SBC.
    pub sign: bool,
    /// The Identity headers a call arrived with, toward the trunk.
    pub incoming_identity: IncomingIdentity,
    /// Calls to the trunk carry the verification status as `verstat`.
    pub verstat: bool,
    /// The trunk is inside the trust boundary (its P-Asserted-Identity is believed).
    pub trusted: bool,
}

impl Default for TrunkIdentity {
    fn default() -> Self {
        TrunkIdentity {
            verify: VerifyMode::Off,
            require: false,
            stir_reason: true,
            customer: false,
            trust_attestation: false,
            domain: None,
            sign: false,
            incoming_identity: IncomingIdentity::Auto,
            verstat: false,
            trusted: false,
        }
    }
}

/// The identity configuration of the B2BUA.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// The verification policy and STI-CA roots (`None`: nothing is verified).
    pub verification: Option<(VerifyPolicy, TrustAnchors)>,
    /// The signing service (`None`: nothing is signed).
    pub signer: Option<Signer>,
    /// Policy by trunk name.
    pub trunks: HashMap<String, TrunkIdentity>,
    /// How long a call may wait for a certificate; then it fails as `x5u_unreachable`.
    pub max_wait: Duration,
    /// Calls waiting for a certificate at most (one more is treated as unreachable).
    pub max_waiting: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            verification: None,
            signer: None,
            trunks: HashMap::new(),
            max_wait: Duration::from_secs(3),
            max_waiting: 1_024,
        }
    }
}

/// What verification and signing did, by stable name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityStats {
    /// Verdicts of verified calls: `passed`, `absent`, or the failure's name.
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Calls rejected for their verdict, by failure name.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Calls signed, by attestation (`A`, `B`, `C`).
    pub signed: BTreeMap<&'static str, u64>,
    /// Calls that could not be signed, by reason.
    pub sign_failures: BTreeMap<&'static str, u64>,
    /// Certificate fetches asked of the driver.
    pub fetches: u64,
    /// Calls that waited for a certificate.
    pub waited: u64,
}
