//! The ingress verdict on a parsed request, per shard. See the module docs of
//! [`crate::policy`].

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::auth::{AuthIdentity, Authenticator, Check, Credentials};
use crate::net::Protocol;
use crate::registrar::{self, SharedRegistrar};
use crate::sip::{HeaderName, Host, Method, Request, StatusCode, Uri};
use crate::transaction::Peer;

/// How a message arrived, beyond its source address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub protocol: Protocol,
    /// The TLS peer presented a certificate that verified against the listener's CA.
    pub client_certificate: bool,
}

impl Arrival {
    /// What can be told from the peer alone (TCP for a reliable peer, else UDP).
    pub fn of(peer: &Peer) -> Arrival {
        Arrival {
            protocol: match peer.reliability {
                crate::transaction::Reliability::Reliable => Protocol::Tcp,
                crate::transaction::Reliability::Unreliable => Protocol::Udp,
            },
            client_certificate: false,
        }
    }
}

/// What the boundary knows of a trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkPolicy {
    pub name: String,
    /// Inside the trust domain: its P-Asserted-Identity is believed, and it is sent ours.
    pub trusted: bool,
    /// Requests from it must come over TLS.
    pub require_tls: bool,
    /// ... with a verified client certificate.
    pub require_client_cert: bool,
    /// It stores and forwards messages (an SMS or voicemail gateway): its MESSAGE
    /// requests may carry a Date older than the freshness window.
    pub store_and_forward: bool,
}

/// Which trunk a source address belongs to.
pub trait TrunkDirectory: Send + Sync {
    fn trunk_of(&self, source: SocketAddr) -> Option<TrunkPolicy>;
}

/// No trunks.
impl TrunkDirectory for () {
    fn trunk_of(&self, _: SocketAddr) -> Option<TrunkPolicy> {
        None
    }
}

/// How the boundary decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundaryConfig {
    /// Requests from the access side (sources that are no trunk) must authenticate with
    /// SIP Digest. When false the access side is admitted unauthenticated (only for
    /// closed networks: the SBC then relays anyone's calls).
    pub authenticate: bool,
    /// The realm of users whose domain is not in `domains`.
    pub realm: String,
    /// Domains that are realms of their own (a user registering as `sip:a@d` with `d`
    /// listed authenticates in realm `d`).
    pub domains: Vec<String>,
    /// Sent in `Retry-After` with the `503` of new calls under overload.
    pub overload_retry_after: Duration,
    /// A MESSAGE whose `Date` is further than this from now (in the past or the future)
    /// is refused `403 Stale Date`, unless it comes from a store-and-forward trunk; one
    /// without a Date is accepted. `None`: no check.
    pub message_date_window: Option<Duration>,
}

impl Default for BoundaryConfig {
    fn default() -> BoundaryConfig {
        BoundaryConfig {
            authenticate: true,
            realm: "sbc".into(),
            domains: Vec::new(),
            overload_retry_after: Duration::from_secs(5),
            message_date_window: Some(Duration::from_secs(3600)),
        }
    }
}

/// Who a request comes from, once admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A trunk (recognised by source address, and TLS when it requires it).
    Trunk(TrunkPolicy),
    /// An access user who answered our challenge.
    User(AuthIdentity),
    /// An access user's request on the connection its registration came on.
    RegisteredFlow { aor: String },
    /// Nothing needs proving: in-dialog requests (the dialog was admitted), CANCEL, ACK,
    /// OPTIONS, or authentication is off.
    Unauthenticated,
}

/// An admitted request's origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub origin: Origin,
}

/// The boundary's decision on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a request the boundary refuses must not reach the B2BUA"]
pub enum Verdict {
    Admit(Admitted),
    /// Answer with a challenge (`401` with WWW-Authenticate, `407` with
    /// Proxy-Authenticate).
    Challenge {
        status: StatusCode,
        header: HeaderName,
        values: Vec<Bytes>,
    },
    /// Answer with `status` (and `phrase` as its reason phrase, else the canonical
    /// one), counted under `reason`, with `headers` added.
    Reject {
        status: StatusCode,
        reason: &'static str,
        phrase: Option<&'static str>,
        headers: Vec<(HeaderName, Bytes)>,
    },
}

/// What the binary must hear about: authentication outcomes feed the gate's bans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyEvent {
    AuthFailed {
        source: IpAddr,
        reason: &'static str,
    },
    Authenticated {
        source: IpAddr,
    },
}

/// What the boundary decided, by stable reason name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyStats {
    /// Admitted requests, by origin (`trunk`, `user`, `registered_flow`, `unauthenticated`).
    pub admitted: BTreeMap<&'static str, u64>,
    /// Challenges sent, by cause (`missing`, `stale`, and the failure names).
    pub challenged: BTreeMap<&'static str, u64>,
    /// Requests refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
}

/// The ingress policy of one shard.
pub struct Boundary {
    config: BoundaryConfig,
    /// Wall-clock time, for the Date of MESSAGE requests (injected for tests).
    wall_clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    authenticator: Authenticator,
    credentials: Arc<dyn Credentials>,
    trunks: Arc<dyn TrunkDirectory>,
    registrar: Option<SharedRegistrar>,
    overloaded: bool,
    events: VecDeque<PolicyEvent>,
    stats: PolicyStats,
}

impl std::fmt::Debug for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("config", &self.config)
            .field("overloaded", &self.overloaded)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Most events queued; past it the oldest are dropped (the gate then bans a little
/// later, never never).
const MAX_EVENTS: usize = 4096;

impl Boundary {
    pub fn new(
        config: BoundaryConfig,
        authenticator: Authenticator,
        credentials: Arc<dyn Credentials>,
        trunks: Arc<dyn TrunkDirectory>,
        registrar: Option<SharedRegistrar>,
    ) -> Boundary {
        Boundary {
            config,
            wall_clock: Arc::new(SystemTime::now),
            authenticator,
            credentials,
            trunks,
            registrar,
            overloaded: false,
            events: VecDeque::new(),
            stats: PolicyStats::default(),
        }
    }

    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }

    /// Replaces the wall clock the Date of MESSAGE requests is compared with.
    pub fn set_wall_clock(&mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) {
        self.wall_clock = Arc::new(clock);
    }

    pub fn registrar(&self) -> Option<&SharedRegistrar> {
        self.registrar.as_ref()
    }

    /// Whether new calls are refused with `503` (the shard's input is backing up).
    pub fn set_overloaded(&mut self, overloaded: bool) {
        self.overloaded = overloaded;
    }

    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// The next event for the binary.
    pub fn poll_event(&mut self) -> Option<PolicyEvent> {
        self.events.pop_front()
    }

    /// Load shedding before any state is kept: while overloaded, a new call (an INVITE
    /// outside any dialog) is refused `503` with Retry-After, to be answered statelessly
    /// (no transaction, no timer, no memory), whoever sends it. Everything else (in-dialog
    /// requests, CANCEL, ACK, responses, registrations) goes on to [`Boundary::inspect`].
    pub fn shed(&mut self, request: &Request) -> Option<Verdict> {
        let new_call = request.method == Method::Invite
            && !request.headers.to().is_ok_and(|to| to.tag().is_some());
        if !(self.overloaded && new_call) {
            return None;
        }
        *self.stats.rejected.entry("overload").or_default() += 1;
        Some(self.overload())
    }

    /// The trunk `source` belongs to, if any.
    pub fn trunk_of(&self, source: SocketAddr) -> Option<TrunkPolicy> {
        self.trunks.trunk_of(source)
    }

    /// The realm a request authenticates in: the domain of the identity it claims (To
    /// for REGISTER, From otherwise) when that is a configured domain, else the default.
    pub fn realm_for(&self, request: &Request) -> String {
        let claimed = if request.method == Method::Register {
            request.headers.to().ok()
        } else {
            request.headers.from().ok()
        };
        let host = claimed.and_then(|address| match address.uri {
            Uri::Sip(sip) => match sip.host.host {
                Host::Name(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            },
            _ => None,
        });
        match host {
            Some(host)
                if self
                    .config
                    .domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&host)) =>
            {
                host
            }
            _ => self.config.realm.clone(),
        }
    }

    /// Decides on `request` (a new server transaction's request) from `source`, and
    /// rewrites its identity headers for what lies behind the boundary.
    pub fn inspect(
        &mut self,
        now: Instant,
        request: &mut Request,
        source: Peer,
        arrival: Arrival,
    ) -> Verdict {
        let verdict = self.decide(now, request, source, arrival);
        match &verdict {
            Verdict::Admit(admitted) => {
                let name = match admitted.origin {
                    Origin::Trunk(_) => "trunk",
                    Origin::User(_) => "user",
                    Origin::RegisteredFlow { .. } => "registered_flow",
                    Origin::Unauthenticated => "unauthenticated",
                };
                *self.stats.admitted.entry(name).or_default() += 1;
            }
            Verdict::Reject { reason, .. } => {
                *self.stats.rejected.entry(reason).or_default() += 1;
            }
            Verdict::Challenge { .. } => {}
        }
        verdict
    }

    fn decide(
        &mut self,
        now: Instant,
        request: &mut Request,
        source: Peer,
        arrival: Arrival,
    ) -> Verdict {
        let in_dialog = request.headers.to().is_ok_and(|to| to.tag().is_some());
        let trunk = self.trunks.trunk_of(source.remote);
        if let Some(trunk) = &trunk {
            if trunk.require_tls && arrival.protocol != Protocol::Tls {
                return reject(403, "tls_required");
            }
            if trunk.require_client_cert && !arrival.client_certificate {
                return reject(403, "client_certificate_required");
            }
        }
        if matches!(request.method, Method::Cancel | Method::Ack) {
            return admit(trunk.map_or(Origin::Unauthenticated, Origin::Trunk));
        }
        if request.method == Method::Message
            && let Some(window) = self.config.message_date_window
            && !trunk.as_ref().is_some_and(|t| t.store_and_forward)
            && let Some(refusal) = self.stale_message(request, window)
        {
            return refusal;
        }
        if let Uri::Sip(sip) = &request.uri
            && sip.secure
            && arrival.protocol != Protocol::Tls
        {
            // RFC 5630 §3.1.3: a SIPS Request-URI never travels over an insecure hop.
            return reject(416, "sips_without_tls");
        }
        if !trunk.as_ref().is_some_and(|t| t.trusted) {
            strip_identity(request);
        }
        let new_call = request.method == Method::Invite && !in_dialog;
        if let Some(trunk) = trunk {
            if new_call && self.overloaded {
                return self.overload();
            }
            return admit(Origin::Trunk(trunk));
        }
        if in_dialog || request.method == Method::Options || !self.config.authenticate {
            if new_call && self.overloaded {
                return self.overload();
            }
            return admit(Origin::Unauthenticated);
        }
        // The access side: prove who you are.
        if request.method != Method::Register
            && arrival.protocol.is_stream()
            && let Some(aor) = self.claimed_aor(request)
            && let Some(registrar) = &self.registrar
            && registrar.is_bound_flow(now, &aor, &source)
        {
            if new_call && self.overloaded {
                return self.overload();
            }
            let user = aor
                .strip_prefix("sip:")
                .and_then(|rest| rest.split_once('@'))
                .map(|(user, _)| user.to_owned())
                .unwrap_or_default();
            assert_identity(request, &user, &self.realm_for(request));
            return admit(Origin::RegisteredFlow { aor });
        }
        let realm = self.realm_for(request);
        let (credentials_header, status, challenge_header) = if request.method == Method::Register {
            (HeaderName::Authorization, 401, HeaderName::WwwAuthenticate)
        } else {
            (
                HeaderName::ProxyAuthorization,
                407,
                HeaderName::ProxyAuthenticate,
            )
        };
        let client = source.remote.ip();
        let check = self.authenticator.check(
            now,
            request,
            &credentials_header,
            &realm,
            client,
            &*self.credentials,
        );
        let (cause, stale) = match check {
            Check::Authenticated(identity) => {
                self.push_event(PolicyEvent::Authenticated { source: client });
                let claimed = self.claimed_user(request);
                if claimed.as_deref() != Some(identity.username.as_str()) {
                    return reject(403, "identity_mismatch");
                }
                if new_call && self.overloaded {
                    return self.overload();
                }
                assert_identity(request, &identity.username, &identity.realm);
                return admit(Origin::User(identity));
            }
            Check::Missing => ("missing", false),
            Check::Stale => ("stale", true),
            Check::Failed(failure) => {
                if failure.counts_as_attack() {
                    self.push_event(PolicyEvent::AuthFailed {
                        source: client,
                        reason: failure.name(),
                    });
                }
                (failure.name(), false)
            }
        };
        *self.stats.challenged.entry(cause).or_default() += 1;
        Verdict::Challenge {
            status: StatusCode::new(status).unwrap_or(StatusCode::BAD_REQUEST),
            header: challenge_header,
            values: self.authenticator.challenge(now, &realm, client, stale),
        }
    }

    /// A MESSAGE whose Date is outside `window` of now (RFC 3428 §9: an old message may
    /// be a replay), or does not parse.
    fn stale_message(&self, request: &Request, window: Duration) -> Option<Verdict> {
        let date = request.headers.get(&HeaderName::Date)?;
        let Some(sent) = std::str::from_utf8(date)
            .ok()
            .and_then(|text| httpdate::parse_http_date(text.trim()).ok())
        else {
            return Some(Verdict::Reject {
                status: StatusCode::BAD_REQUEST,
                reason: "malformed_date",
                phrase: Some("Malformed Date"),
                headers: Vec::new(),
            });
        };
        let now = (self.wall_clock)();
        let (reason, phrase) = match now.duration_since(sent) {
            Ok(age) if age > window => ("stale_message", "Stale Date"),
            Err(ahead) if ahead.duration() > window => ("future_message", "Date In Future"),
            _ => return None,
        };
        Some(Verdict::Reject {
            status: StatusCode::new(403).unwrap_or(StatusCode::BAD_REQUEST),
            reason,
            phrase: Some(phrase),
            headers: Vec::new(),
        })
    }

    fn overload(&self) -> Verdict {
        Verdict::Reject {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "overload",
            phrase: None,
            headers: vec![(
                HeaderName::Other("Retry-After".into()),
                Bytes::from(
                    self.config
                        .overload_retry_after
                        .as_secs()
                        .max(1)
                        .to_string(),
                ),
            )],
        }
    }

    fn push_event(&mut self, event: PolicyEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The user part of the identity a request claims (To for REGISTER, From otherwise).
    fn claimed_user(&self, request: &Request) -> Option<String> {
        let claimed = if request.method == Method::Register {
            request.headers.to().ok()?
        } else {
            request.headers.from().ok()?
        };
        match claimed.uri {
            Uri::Sip(sip) => sip
                .user
                .map(|user| String::from_utf8_lossy(&crate::sip::unescape(&user)).into_owned()),
            _ => None,
        }
    }

    /// The address of record a request claims, in its realm.
    pub fn claimed_aor(&self, request: &Request) -> Option<String> {
        let user = self.claimed_user(request)?;
        Some(registrar::aor(&user, &self.realm_for(request)))
    }
}

fn admit(origin: Origin) -> Verdict {
    Verdict::Admit(Admitted { origin })
}

fn reject(code: u16, reason: &'static str) -> Verdict {
    Verdict::Reject {
        status: StatusCode::new(code).unwrap_or(StatusCode::BAD_REQUEST),
        reason,
        phrase: None,
        headers: Vec::new(),
    }
}

/// RFC 3325 §5: identity asserted by a peer outside the trust domain is not believed.
fn strip_identity(request: &mut Request) {
    request.headers.remove_all(&HeaderName::PAssertedIdentity);
    request.headers.remove_all(&HeaderName::PPreferredIdentity);
    request
        .headers
        .remove_all(&HeaderName::Other("Remote-Party-ID".into()));
}

/// The SBC asserts the identity it authenticated (RFC 3325 §6), with the From's display
/// name. The header leaves toward trusted peers only (see [`super::egress`]).
fn assert_identity(request: &mut Request, user: &str, realm: &str) {
    strip_identity(request);
    let display = request
        .headers
        .from()
        .ok()
        .and_then(|from| from.display_name)
        .map(|name| format!("{} ", String::from_utf8_lossy(&name)))
        .unwrap_or_default();
    request.headers.push(
        HeaderName::PAssertedIdentity,
        format!("{display}<sip:{user}@{realm}>"),
    );
}
