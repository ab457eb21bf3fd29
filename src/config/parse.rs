//! TOML text → [`Config`] values, with errors that name the key, line and column, and
//! value parsers whose messages quote the offending value.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Deserializer};

use super::error::{ConfigError, Location};
use super::{Advertised, Config, TargetHost, TrunkTarget};

/// Deserialize `text` into a [`Config`] (no semantic validation yet).
pub(super) fn deserialize(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let document = toml::Deserializer::parse(text).map_err(|error| ConfigError::Syntax {
        file: file.to_path_buf(),
        location: error
            .span()
            .map(|span| Location::of_offset(text, span.start)),
        message: error.message().trim_end().to_owned(),
    })?;
    serde_path_to_error::deserialize(document).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ConfigError::Value {
            file: file.to_path_buf(),
            key: if path == "." { None } else { Some(path) },
            location: inner
                .span()
                .map(|span| Location::of_offset(text, span.start)),
            message: inner.message().trim_end().to_owned(),
        }
    })
}

/// `"127.0.0.1:5060"`, `"[::1]:5060"`.
pub(super) fn socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid socket address \"{text}\" (expected IP:PORT, e.g. \"127.0.0.1:5060\" or \"[::1]:5060\")"
        ))
    })
}

/// `"127.0.0.1"`, `"::1"`.
pub(super) fn ip_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IpAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid IP address \"{text}\" (expected e.g. \"127.0.0.1\" or \"::1\")"
        ))
    })
}

/// An optional `"127.0.0.1"`.
pub(super) fn optional_ip_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<IpAddr>, D::Error> {
    ip_addr(deserializer).map(Some)
}

/// `"203.0.113.5"`, `"203.0.113.5:5060"`, `"2001:db8::5"`, `"[2001:db8::5]:5060"`.
pub(super) fn advertised_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Advertised>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Some(Advertised { ip, port: None }));
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(Some(Advertised {
            ip: addr.ip(),
            port: Some(addr.port()),
        })),
        _ => Err(serde::de::Error::custom(format!(
            "invalid advertised address \"{text}\" (expected IP or IP:PORT, e.g. \"203.0.113.5\" or \"203.0.113.5:5060\")"
        ))),
    }
}

/// A trunk target as written: a string, or a table with priority and weight.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum TargetRepr {
    Address(String),
    Table {
        address: String,
        #[serde(default)]
        priority: u16,
        #[serde(default = "default_weight")]
        weight: u16,
    },
}

fn default_weight() -> u16 {
    1
}

impl TryFrom<TargetRepr> for TrunkTarget {
    type Error = String;

    fn try_from(repr: TargetRepr) -> Result<Self, Self::Error> {
        match repr {
            TargetRepr::Address(text) => TrunkTarget::try_from(text),
            TargetRepr::Table {
                address,
                priority,
                weight,
            } => Ok(TrunkTarget {
                priority,
                weight,
                ..TrunkTarget::try_from(address)?
            }),
        }
    }
}

impl TryFrom<String> for TrunkTarget {
    type Error = String;

    /// `host`, `host:port`, `[v6]:port` or a bare IPv6 address; host is an IP address or a
    /// DNS name (letters, digits, `-` and `.`).
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let invalid = |why: &str| format!("invalid trunk target \"{text}\": {why}");
        if let Ok(address) = text.parse::<SocketAddr>() {
            if address.port() == 0 {
                return Err(invalid("port 0"));
            }
            return Ok(TrunkTarget {
                host: TargetHost::Ip(address.ip()),
                port: Some(address.port()),
                priority: 0,
                weight: 1,
            });
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(TrunkTarget {
                host: TargetHost::Ip(ip),
                port: None,
                priority: 0,
                weight: 1,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|port| *port != 0)
                    .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?;
                (host, Some(port))
            }
            None => (text.as_str(), None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(TrunkTarget {
                host: TargetHost::Ip(ip),
                port,
                priority: 0,
                weight: 1,
            });
        }
        if !is_dns_name(host) {
            return Err(invalid(
                "expected an IP address or a DNS name, optionally with :PORT",
            ));
        }
        Ok(TrunkTarget {
            host: TargetHost::Domain(host.to_ascii_lowercase()),
            port,
            priority: 0,
            weight: 1,
        })
    }
}

/// A syntactically valid DNS host name (RFC 1123 labels), without a trailing dot.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}
