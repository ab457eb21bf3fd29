//! Route criteria, checked once when the table is built and matched against request-URIs.

use std::borrow::Cow;
use std::net::IpAddr;

use super::{Route, RoutingConfigError, TrunkId};
use crate::sip::{Host, Uri, unescape};

/// A route with its criteria prepared for matching.
#[derive(Clone, Debug)]
pub(super) struct CompiledRoute {
    pub(super) route: Route,
    prefix: Option<Vec<u8>>,
    domain: Option<DomainPattern>,
}

/// A `match_domain` criterion.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DomainPattern {
    /// A host name, lower-case, without a trailing dot.
    Exact(String),
    /// `*.example.com`: `.example.com`, lower-case, without a trailing dot.
    Subdomains(String),
    Ip(IpAddr),
}

impl CompiledRoute {
    pub(super) fn new(route: Route) -> Result<CompiledRoute, RoutingConfigError> {
        let prefix = match &route.match_user_prefix {
            Some(prefix) if prefix.is_empty() => {
                return Err(RoutingConfigError::EmptyUserPrefix(route.name.clone()));
            }
            Some(prefix) => Some(prefix.as_bytes().to_vec()),
            None => None,
        };
        let domain = match &route.match_domain {
            Some(domain) => Some(DomainPattern::parse(domain).ok_or_else(|| {
                RoutingConfigError::InvalidDomain {
                    route: route.name.clone(),
                    domain: domain.clone(),
                }
            })?),
            None => None,
        };
        Ok(CompiledRoute {
            route,
            prefix,
            domain,
        })
    }

    /// Whether every criterion that is set matches.
    pub(super) fn matches(&self, source: Option<TrunkId>, uri: &Uri) -> bool {
        if let Some(wanted) = self.route.match_source_trunk
            && source != Some(wanted)
        {
            return false;
        }
        if let Some(prefix) = &self.prefix
            && !user_of(uri).is_some_and(|user| user.starts_with(prefix))
        {
            return false;
        }
        if let Some(domain) = &self.domain
            && !domain.matches(uri)
        {
            return false;
        }
        true
    }
}

/// What a user prefix is matched against: the unescaped user part of a `sip:`/`sips:` URI,
/// the number of a `tel:` URI; visual separators removed from telephone numbers.
fn user_of(uri: &Uri) -> Option<Cow<'_, [u8]>> {
    match uri {
        Uri::Sip(sip) => {
            let user = unescape(sip.user.as_deref()?);
            let is_phone = sip
                .params
                .get("user")
                .flatten()
                .is_some_and(|v| v.eq_ignore_ascii_case(b"phone"));
            Some(if is_phone {
                without_visual_separators(user)
            } else {
                user
            })
        }
        Uri::Tel(tel) => Some(without_visual_separators(unescape(&tel.number))),
        Uri::Other { .. } => None,
    }
}

/// RFC 3966 §5.1.1 `visual-separator`s (`-`, `.`, `(`, `)`) removed.
fn without_visual_separators(number: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let is_separator = |b: &u8| matches!(b, b'-' | b'.' | b'(' | b')');
    if !number.iter().any(is_separator) {
        return number;
    }
    Cow::Owned(
        number
            .iter()
            .copied()
            .filter(|b| !is_separator(b))
            .collect(),
    )
}

impl DomainPattern {
    fn parse(domain: &str) -> Option<DomainPattern> {
        let unbracketed = domain
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .unwrap_or(domain);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(DomainPattern::Ip(ip.to_canonical()));
        }
        let lower = domain.trim_end_matches('.').to_ascii_lowercase();
        match lower.strip_prefix("*.") {
            Some(parent) if is_host_name(parent) => {
                Some(DomainPattern::Subdomains(format!(".{parent}")))
            }
            Some(_) => None,
            None if is_host_name(&lower) => Some(DomainPattern::Exact(lower)),
            None => None,
        }
    }

    fn matches(&self, uri: &Uri) -> bool {
        let Uri::Sip(sip) = uri else {
            return false;
        };
        match (&sip.host.host, self) {
            (Host::Name(name), DomainPattern::Exact(wanted)) => {
                trim_dot(name).eq_ignore_ascii_case(wanted)
            }
            (Host::Name(name), DomainPattern::Subdomains(suffix)) => {
                let name = trim_dot(name);
                name.len() > suffix.len()
                    && name
                        .get(name.len() - suffix.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }
            (Host::V4(ip), DomainPattern::Ip(wanted)) => IpAddr::V4(*ip) == *wanted,
            (Host::V6(ip), DomainPattern::Ip(wanted)) => IpAddr::V6(*ip).to_canonical() == *wanted,
            _ => false,
        }
    }
}

fn trim_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// A DNS host name (RFC 1123 §2.1): dot-separated labels of letters, digits and inner
/// hyphens, each 1 to 63 bytes, 253 bytes in all; a trailing dot is allowed.
pub(super) fn is_host_name(name: &str) -> bool {
    let name = trim_dot(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(is_host_name("sip.example.com"));
        assert!(is_host_name("sip.example.com."));
        assert!(is_host_name("localhost"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("a..b"));
        assert!(!is_host_name("-a.b"));
        assert!(!is_host_name("a_b.example"));
        assert!(!is_host_name(&"a".repeat(64)));
    }

    #[test]
    fn domain_patterns() {
        assert_eq!(
            DomainPattern::parse("Example.COM."),
            Some(DomainPattern::Exact("example.com".into()))
        );
        assert_eq!(
            DomainPattern::parse("*.example.com"),
            Some(DomainPattern::Subdomains(".example.com".into()))
        );
        assert_eq!(
            DomainPattern::parse("[2001:db8::1]"),
            Some(DomainPattern::Ip(
                "2001:db8::1".parse().unwrap_or(IpAddr::from([0; 4]))
            ))
        );
        assert_eq!(DomainPattern::parse("*"), None);
        assert_eq!(DomainPattern::parse("exa mple"), None);
    }
}
