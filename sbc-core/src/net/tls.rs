//! TLS with OpenSSL: listener acceptors (certificates, SNI, client certificates), the
//! outbound connector, and the peer identity checks of RFC 5922 §7.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openssl::nid::Nid;
use openssl::ssl::{
    NameType, SniError, Ssl, SslAcceptor, SslConnector, SslContext, SslContextBuilder, SslFiletype,
    SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Ref, X509VerifyResult};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use super::{
    CertificateFiles, ClientAuth, DropReason, SendError, TlsClientConfig, TlsConfigError,
    TlsListenerConfig,
};

/// What a verified peer certificate says about its holder: handed upward with every
/// message of a mutual-TLS connection, for the policy layer to decide what it is worth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's distinguished name, as `CN=…, O=…` in certificate order.
    pub subject: String,
    /// The subject common name(s).
    pub common_names: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// URI subject alternative names (e.g. `sip:example.com`).
    pub uris: Vec<String>,
    /// IP address subject alternative names.
    pub ip_addrs: Vec<IpAddr>,
}

impl PeerIdentity {
    /// Reads the subject and subject alternative names of a certificate.
    pub fn from_certificate(certificate: &X509Ref) -> PeerIdentity {
        let mut identity = PeerIdentity::default();
        let mut parts = Vec::new();
        for entry in certificate.subject_name().entries() {
            let nid = entry.object().nid();
            let value = entry.data().to_string().unwrap_or_default();
            let key = nid.short_name().unwrap_or("?");
            parts.push(format!("{key}={value}"));
            if nid == Nid::COMMONNAME {
                identity.common_names.push(value);
            }
        }
        identity.subject = parts.join(", ");
        for name in certificate.subject_alt_names().into_iter().flatten() {
            if let Some(dns) = name.dnsname() {
                identity.dns_names.push(dns.to_owned());
            } else if let Some(uri) = name.uri() {
                identity.uris.push(uri.to_owned());
            } else if let Some(ip) = name.ipaddress().and_then(ip_from_bytes) {
                identity.ip_addrs.push(ip);
            }
        }
        identity
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

/// Who an outbound TLS peer must prove to be (RFC 5922 §7).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerIdentity {
    /// A host name: matched against DNS subject alternative names, and `sip:` URI ones
    /// (RFC 5922 §7.1); the common name only when the certificate has no subject
    /// alternative name at all (of the kinds [`PeerIdentity`] reads). Wildcards never
    /// match (RFC 5922 §7.2).
    Host(String),
    /// An IP address: matched against IP address subject alternative names only.
    Ip(IpAddr),
}

impl ServerIdentity {
    /// The identity to verify when connecting to `addr`, optionally under a host name.
    /// A "host name" that is an IP address literal is treated as that address.
    pub fn for_destination(addr: SocketAddr, server_name: Option<&str>) -> ServerIdentity {
        match server_name {
            Some(name) => match name.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => ServerIdentity::Ip(ip),
                Err(_) => ServerIdentity::Host(normalise_host(name)),
            },
            None => ServerIdentity::Ip(addr.ip()),
        }
    }

    /// True when `certificate` names this identity.
    pub fn is_matched_by(&self, certificate: &X509Ref) -> bool {
        self.is_matched_by_identity(&PeerIdentity::from_certificate(certificate))
    }

    /// True when the names read from a certificate include this identity.
    pub fn is_matched_by_identity(&self, peer: &PeerIdentity) -> bool {
        match self {
            ServerIdentity::Ip(ip) => peer.ip_addrs.contains(ip),
            ServerIdentity::Host(host) => {
                let matches = |name: &str| normalise_host(name) == *host;
                // RFC 5922 §7.1: the CN is looked at "if and only if the subjectAltName
                // does not appear in the certificate" — any SAN, not only a domain one.
                let has_subject_alt_names = !peer.dns_names.is_empty()
                    || !peer.uris.is_empty()
                    || !peer.ip_addrs.is_empty();
                if has_subject_alt_names {
                    peer.dns_names.iter().any(|name| matches(name))
                        || peer
                            .uris
                            .iter()
                            .filter_map(|uri| sip_uri_domain(uri))
                            .any(|domain| matches(&domain))
                } else {
                    peer.common_names.iter().any(|name| matches(name))
                }
            }
        }
    }

    /// The name sent as SNI (none for an IP address).
    fn sni_name(&self) -> String {
        match self {
            ServerIdentity::Host(host) => host.clone(),
            ServerIdentity::Ip(ip) => ip.to_string(),
        }
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerIdentity::Host(host) => f.write_str(host),
            ServerIdentity::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

fn normalise_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The domain of a `sip:domain` URI SAN (no user part, RFC 5922 §7.1), without port or
/// parameters.
fn sip_uri_domain(uri: &str) -> Option<String> {
    let scheme = uri.get(..4)?;
    if !scheme.eq_ignore_ascii_case("sip:") {
        return None;
    }
    let rest = uri.get(4..)?;
    if rest.contains('@') {
        return None;
    }
    let end = rest.find([';', '?', ':']).unwrap_or(rest.len());
    rest.get(..end).map(normalise_host)
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError::File {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

fn load_certificate(
    builder: &mut SslContextBuilder,
    files: &CertificateFiles,
) -> Result<(), TlsConfigError> {
    builder
        .set_certificate_chain_file(&files.chain_file)
        .map_err(|e| file_error(&files.chain_file, e))?;
    builder
        .set_private_key_file(&files.key_file, SslFiletype::PEM)
        .map_err(|e| file_error(&files.key_file, e))?;
    builder
        .check_private_key()
        .map_err(|_| TlsConfigError::KeyMismatch(files.key_file.clone()))
}

/// One server context: TLS 1.2+, Mozilla's intermediate cipher list, a certificate, and the
/// listener's client-certificate policy (needed on every SNI context: OpenSSL verifies the
/// client against the context chosen by SNI).
fn server_context(
    files: &CertificateFiles,
    config: &TlsListenerConfig,
) -> Result<openssl::ssl::SslAcceptorBuilder, TlsConfigError> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    load_certificate(&mut builder, files)?;
    builder.set_session_id_context(b"sbc-sip")?;
    let mode = match config.client_auth {
        ClientAuth::None => return Ok(builder),
        ClientAuth::Optional => SslVerifyMode::PEER,
        ClientAuth::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
    };
    let ca_file = config
        .client_ca_file
        .as_ref()
        .ok_or(TlsConfigError::MissingClientCa)?;
    builder
        .set_ca_file(ca_file)
        .map_err(|e| file_error(ca_file, e))?;
    let names = X509::stack_from_pem(&std::fs::read(ca_file).map_err(|e| file_error(ca_file, e))?)
        .map_err(|e| file_error(ca_file, e))?;
    let mut list = openssl::stack::Stack::new()?;
    for ca in names {
        list.push(ca.subject_name().to_owned()?)?;
    }
    builder.set_client_ca_list(list);
    builder.set_verify(mode);
    Ok(builder)
}

/// Builds a listener's acceptor from its files: the default certificate, the SNI map,
/// client authentication.
pub(crate) fn build_acceptor(config: &TlsListenerConfig) -> Result<SslAcceptor, TlsConfigError> {
    let mut by_name: HashMap<String, SslContext> = HashMap::new();
    for (name, files) in &config.sni {
        let context = server_context(files, config)?.build().into_context();
        by_name.insert(normalise_host(name), context);
    }
    let mut builder = server_context(&config.default_certificate, config)?;
    if !by_name.is_empty() {
        builder.set_servername_callback(move |ssl, _alert| {
            let chosen = ssl
                .servername(NameType::HOST_NAME)
                .and_then(|name| by_name.get(&normalise_host(name)));
            if let Some(context) = chosen {
                ssl.set_ssl_context(context)
                    .map_err(|_| SniError::ALERT_FATAL)?;
            }
            Ok(())
        });
    }
    Ok(builder.build())
}

/// Builds the outbound connector: TLS 1.2+, the configured CA bundle (alone) or the system
/// roots, an optional client certificate.
pub(crate) fn build_connector(config: &TlsClientConfig) -> Result<SslConnector, TlsConfigError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    if let Some(ca_file) = &config.ca_file {
        let pem = std::fs::read(ca_file).map_err(|e| file_error(ca_file, e))?;
        let mut store = X509StoreBuilder::new()?;
        for ca in X509::stack_from_pem(&pem).map_err(|e| file_error(ca_file, e))? {
            store.add_cert(ca)?;
        }
        builder.set_cert_store(store.build());
    }
    if let Some(files) = &config.client_certificate {
        load_certificate(&mut builder, files)?;
    }
    builder.set_verify(SslVerifyMode::PEER);
    Ok(builder.build())
}

/// Runs the server side of a handshake within `limit`. On success, also returns the
/// client's verified certificate identity, if it presented one.
pub(crate) async fn accept(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> Result<(SslStream<TcpStream>, Option<PeerIdentity>), DropReason> {
    let ssl = Ssl::new(acceptor.context()).map_err(|_| DropReason::TlsHandshakeFailed)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(|_| DropReason::TlsHandshakeFailed)?;
    match tokio::time::timeout(limit, Pin::new(&mut stream).accept()).await {
        Err(_) => return Err(DropReason::TlsHandshakeTimeout),
        Ok(Err(_)) => return Err(DropReason::TlsHandshakeFailed),
        Ok(Ok(())) => {}
    }
    let ssl = stream.ssl();
    let peer = match ssl.peer_certificate() {
        Some(certificate) if ssl.verify_result() == X509VerifyResult::OK => {
            Some(PeerIdentity::from_certificate(&certificate))
        }
        _ => None,
    };
    Ok((stream, peer))
}

/// Runs the client side of a handshake within `limit`, verifying the chain and that the
/// leaf certificate names `identity`.
pub(crate) async fn connect(
    connector: &SslConnector,
    tcp: TcpStream,
    addr: SocketAddr,
    identity: &ServerIdentity,
    limit: Duration,
) -> Result<SslStream<TcpStream>, SendError> {
    let failed = |reason: String| SendError::TlsHandshakeFailed { addr, reason };
    let mut config = connector.configure().map_err(|e| failed(e.to_string()))?;
    // Our own RFC 5922 check replaces OpenSSL's host name check.
    config.set_verify_hostname(false);
    let mismatch = Arc::new(AtomicBool::new(false));
    let (flag, expected) = (Arc::clone(&mismatch), identity.clone());
    config.set_verify_callback(SslVerifyMode::PEER, move |chain_ok, context| {
        if !chain_ok || context.error_depth() != 0 {
            return chain_ok;
        }
        let matched = context
            .current_cert()
            .is_some_and(|leaf| expected.is_matched_by(leaf));
        if !matched {
            flag.store(true, Ordering::Relaxed);
        }
        matched
    });
    let ssl = config
        .into_ssl(&identity.sni_name())
        .map_err(|e| failed(e.to_string()))?;
    let mut stream = SslStream::new(ssl, tcp).map_err(|e| failed(e.to_string()))?;
    match tokio::time::timeout(limit, Pin::new(&mut stream).connect()).await {
        Err(_) => Err(SendError::TlsHandshakeTimeout(addr)),
        Ok(Err(_)) if mismatch.load(Ordering::Relaxed) => Err(SendError::PeerIdentityMismatch {
            addr,
            expected: identity.to_string(),
        }),
        Ok(Err(error)) => Err(failed(error.to_string())),
        Ok(Ok(())) => Ok(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(dns: &[&str], uris: &[&str], cn: &[&str]) -> PeerIdentity {
        PeerIdentity {
            subject: String::new(),
            common_names: cn.iter().map(|s| s.to_string()).collect(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            uris: uris.iter().map(|s| s.to_string()).collect(),
            ip_addrs: vec![[192, 0, 2, 1].into()],
        }
    }

    fn host(name: &str) -> ServerIdentity {
        ServerIdentity::for_destination(([192, 0, 2, 9], 5061).into(), Some(name))
    }

    #[test]
    fn rfc5922_dns_san_matches_exactly_and_without_wildcards() {
        let p = peer(
            &["Sip.Example.com", "*.example.net"],
            &[],
            &["other.example"],
        );
        assert!(host("sip.example.com").is_matched_by_identity(&p));
        assert!(host("SIP.EXAMPLE.COM.").is_matched_by_identity(&p));
        assert!(!host("a.example.net").is_matched_by_identity(&p));
        assert!(!host("example.com").is_matched_by_identity(&p));
        // A DNS SAN is present, so the CN is not consulted.
        assert!(!host("other.example").is_matched_by_identity(&p));
    }

    #[test]
    fn rfc5922_sip_uri_san_names_a_domain() {
        let p = peer(
            &[],
            &["sip:example.com", "sip:alice@example.org"],
            &["cn.example"],
        );
        assert!(host("example.com").is_matched_by_identity(&p));
        assert!(!host("example.org").is_matched_by_identity(&p));
        assert!(!host("cn.example").is_matched_by_identity(&p));
    }

    #[test]
    fn common_name_only_without_any_san() {
        let no_sans = PeerIdentity {
            common_names: vec!["cn.example".to_owned()],
            ..PeerIdentity::default()
        };
        assert!(host("cn.example").is_matched_by_identity(&no_sans));
        // Any subjectAltName, even one that names no domain, rules the CN out (§7.1).
        let non_sip_uri = peer(&[], &["https://cn.example/"], &["cn.example"]);
        assert!(!host("cn.example").is_matched_by_identity(&non_sip_uri));
        let ip_only = PeerIdentity {
            ip_addrs: vec![[192, 0, 2, 1].into()],
            ..no_sans
        };
        assert!(!host("cn.example").is_matched_by_identity(&ip_only));
    }

    #[test]
    fn ip_targets_need_an_ip_san() {
        let p = peer(&["192.0.2.1"], &[], &["192.0.2.1"]);
        let by_addr = ServerIdentity::for_destination(([192, 0, 2, 1], 5061).into(), None);
        assert!(by_addr.is_matched_by_identity(&p));
        let other = ServerIdentity::for_destination(([192, 0, 2, 2], 5061).into(), None);
        assert!(!other.is_matched_by_identity(&p));
        let literal = host("192.0.2.1");
        assert_eq!(literal, ServerIdentity::Ip([192, 0, 2, 1].into()));
    }
}
