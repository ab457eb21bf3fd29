//! What an `x5u` / `info` URL may be before anything is fetched from it: `https` only,
//! an allowed port, no userinfo, query or fragment, and a bounded length. The driver's
//! fetcher applies the same rules again, and checks the address the name resolves to.

use std::net::IpAddr;

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 1_024;

/// The ports a certificate URL may name when the configuration says nothing.
pub const DEFAULT_PORTS: [u16; 2] = [443, 8443];

/// A certificate URL that passed the rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct X5uUrl {
    /// As received (the cache key).
    pub url: String,
    /// Lower-cased host name, or an IP address literal without brackets.
    pub host: String,
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
}

impl X5uUrl {
    /// The host as an IP address when it is a literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Why a URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("certificate URL is not https")]
    NotHttps,
    #[error("certificate URL is malformed or too long")]
    Malformed,
    #[error("certificate URL carries userinfo, a query or a fragment")]
    Forbidden,
    #[error("certificate URL names a port that is not allowed")]
    PortNotAllowed,
}

impl UrlProblem {
    pub fn name(self) -> &'static str {
        match self {
            UrlProblem::NotHttps => "x5u_not_https",
            UrlProblem::Malformed => "x5u_malformed",
            UrlProblem::Forbidden => "x5u_forbidden_url",
            UrlProblem::PortNotAllowed => "x5u_port_not_allowed",
        }
    }
}

/// Checks `url` against the rules; `ports` are the allowed ports.
pub fn check(url: &str, ports: &[u16]) -> Result<X5uUrl, UrlProblem> {
    if url.len() > MAX_URL_BYTES || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UrlProblem::Malformed);
    }
    let (scheme, rest) = url.split_once("://").ok_or(UrlProblem::Malformed)?;
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(if scheme.eq_ignore_ascii_case("http") {
            UrlProblem::NotHttps
        } else {
            UrlProblem::Malformed
        });
    }
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::Forbidden);
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(UrlProblem::Forbidden);
    }
    let (host, port) = split_host_port(authority)?;
    let port = port.unwrap_or(443);
    if !ports.contains(&port) {
        return Err(UrlProblem::PortNotAllowed);
    }
    Ok(X5uUrl {
        url: url.to_owned(),
        host,
        port,
        path: path.to_owned(),
    })
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlProblem> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']').ok_or(UrlProblem::Malformed)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlProblem::Malformed);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlProblem::Malformed)?),
        };
        (v6.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if !valid_name {
        return Err(UrlProblem::Malformed);
    }
    let port = match port {
        None => None,
        Some(digits) => Some(
            digits
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0 && !digits.starts_with('+'))
                .ok_or(UrlProblem::Malformed)?,
        ),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn https_urls_on_allowed_ports() {
        let url = check("https://Cert.Example.org/sp.pem", &DEFAULT_PORTS).unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("cert.example.org", 443, "/sp.pem")
        );
        let url = check("https://[2001:db8::1]:8443/a", &DEFAULT_PORTS).unwrap();
        assert_eq!(url.ip_literal(), Some("2001:db8::1".parse().unwrap()));
        let url = check("https://127.0.0.1:8443", &DEFAULT_PORTS).unwrap();
        assert_eq!(url.path, "/");
    }

    #[test]
    fn everything_else_is_refused() {
        let refused = |url: &str| check(url, &DEFAULT_PORTS).unwrap_err();
        assert_eq!(
            refused("http://cert.example.org/sp.pem"),
            UrlProblem::NotHttps
        );
        assert_eq!(
            refused("ftp://cert.example.org/sp.pem"),
            UrlProblem::Malformed
        );
        assert_eq!(
            refused("https://user@cert.example.org/"),
            UrlProblem::Forbidden
        );
        assert_eq!(
            refused("https://cert.example.org/a?b"),
            UrlProblem::Forbidden
        );
        assert_eq!(
            refused("https://cert.example.org/a#b"),
            UrlProblem::Forbidden
        );
        assert_eq!(
            refused("https://cert.example.org:22/"),
            UrlProblem::PortNotAllowed
        );
        assert_eq!(
            refused("https://cert.example.org:+443/"),
            UrlProblem::Malformed
        );
        assert_eq!(refused("https://cert example/"), UrlProblem::Malformed);
        assert_eq!(refused("https:///x"), UrlProblem::Malformed);
        assert_eq!(
            refused(&format!("https://a/{}", "x".repeat(MAX_URL_BYTES))),
            UrlProblem::Malformed
        );
        assert_eq!(check("https://a:22/", &[22]).unwrap().port, 22);
    }
}
