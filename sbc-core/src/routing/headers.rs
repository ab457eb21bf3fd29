//! Which headers may cross the SBC to or from a trunk.

use crate::sip::HeaderName;

/// Whether a [`HeaderPolicy`] lists the headers that pass or those that do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderPolicyMode {
    /// Only the listed headers pass.
    Allow,
    /// Every header passes except the listed ones.
    Deny,
}

/// A per-trunk allow-list or deny-list of header names, for the headers the B2BUA copies
/// from one leg to the other. The headers the B2BUA builds itself on each leg (Via, From,
/// To, Call-ID, CSeq, Contact, Max-Forwards, Route, Record-Route, Content-Length,
/// Content-Type …) are not subject to it.
///
/// Names compare case-insensitively and compact forms are the same header as their long
/// form (`i` is `Call-ID`, `k` is `Supported`). An entry ending in `*` (`X-*`) matches every
/// name starting with what precedes the `*`, case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPolicy {
    mode: HeaderPolicyMode,
    names: Vec<HeaderName>,
    /// Lower-case prefixes of `…*` entries.
    prefixes: Vec<Box<str>>,
}

/// A header policy entry that is not a header name or a `prefix*` pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderPolicyError {
    #[error("empty header name in a header policy")]
    EmptyName,
    #[error("{0:?} is not a header name (RFC 3261 token) or a `prefix*` pattern")]
    InvalidName(String),
}

impl HeaderPolicyError {
    /// A stable name for logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            HeaderPolicyError::EmptyName => "empty_name",
            HeaderPolicyError::InvalidName(_) => "invalid_name",
        }
    }
}

/// Denied by [`HeaderPolicy::untrusted_default`]: identity asserted inside a trust domain
/// (RFC 3325 P-Asserted-Identity and P-Preferred-Identity, the older Remote-Party-ID),
/// charging data and addresses of the core (RFC 7315 P-Charging-Vector and
/// P-Charging-Function-Addresses), and `X-` headers, which networks use for internal
/// signalling.
pub const UNTRUSTED_DENIED: &[&str] = &[
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Remote-Party-ID",
    "P-Charging-Vector",
    "P-Charging-Function-Addresses",
    "X-*",
];

impl HeaderPolicy {
    /// Every header passes (an empty deny-list): the default of a trusted trunk.
    pub fn pass_all() -> HeaderPolicy {
        HeaderPolicy {
            mode: HeaderPolicyMode::Deny,
            names: Vec::new(),
            prefixes: Vec::new(),
        }
    }

    /// Only the listed headers pass.
    pub fn allow<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<HeaderPolicy, HeaderPolicyError> {
        HeaderPolicy::build(HeaderPolicyMode::Allow, entries)
    }

    /// Every header but the listed ones passes.
    pub fn deny<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<HeaderPolicy, HeaderPolicyError> {
        HeaderPolicy::build(HeaderPolicyMode::Deny, entries)
    }

    /// The deny-list of [`UNTRUSTED_DENIED`]: the default of an untrusted trunk.
    pub fn untrusted_default() -> HeaderPolicy {
        let mut policy = HeaderPolicy::pass_all();
        for entry in UNTRUSTED_DENIED {
            policy.add(entry);
        }
        policy
    }

    /// The default policy of a trunk: [`HeaderPolicy::pass_all`] when trusted, else
    /// [`HeaderPolicy::untrusted_default`].
    pub fn default_for(trusted: bool) -> HeaderPolicy {
        if trusted {
            HeaderPolicy::pass_all()
        } else {
            HeaderPolicy::untrusted_default()
        }
    }

    pub fn mode(&self) -> HeaderPolicyMode {
        self.mode
    }

    /// Whether a header of this name may pass.
    pub fn passes(&self, name: &HeaderName) -> bool {
        let listed = self.names.contains(name) || {
            let spelled = name.as_str();
            self.prefixes.iter().any(|prefix| {
                spelled
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            })
        };
        match self.mode {
            HeaderPolicyMode::Allow => listed,
            HeaderPolicyMode::Deny => !listed,
        }
    }

    fn build<S: AsRef<str>>(
        mode: HeaderPolicyMode,
        entries: impl IntoIterator<Item = S>,
    ) -> Result<HeaderPolicy, HeaderPolicyError> {
        let mut policy = HeaderPolicy {
            mode,
            names: Vec::new(),
            prefixes: Vec::new(),
        };
        for entry in entries {
            let entry = entry.as_ref().trim();
            let name = entry.strip_suffix('*').unwrap_or(entry);
            if entry.is_empty() {
                return Err(HeaderPolicyError::EmptyName);
            }
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(HeaderPolicyError::InvalidName(entry.to_owned()));
            }
            policy.add(entry);
        }
        Ok(policy)
    }

    /// Adds a checked entry.
    fn add(&mut self, entry: &str) {
        match entry.strip_suffix('*') {
            Some(prefix) => self.prefixes.push(prefix.to_ascii_lowercase().into()),
            None => self.names.push(HeaderName::from_bytes(entry.as_bytes())),
        }
    }
}

/// `token` characters of RFC 3261 §25.1: alphanumerics and `-.!%*_+`'~`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

impl Default for HeaderPolicy {
    /// [`HeaderPolicy::pass_all`].
    fn default() -> HeaderPolicy {
        HeaderPolicy::pass_all()
    }
}
