//! TLS certificates and keys for the SIP TLS listeners.
//!
//! A TLS listener with configured `certificate`/`private_key` uses them (checked at start:
//! both load, and the key matches the certificate). One without them, when
//! `tls.generate_self_signed` is on, gets a self-signed EC P-256 certificate generated on
//! first start into `<data_dir>/tls/` and reused on later starts:
//!
//! * `<data_dir>/tls/sip-tls-<ip>-<port>.crt` (PEM, mode 0644), SANs: the listener IP (or
//!   127.0.0.1 and ::1 for a wildcard listener) and `localhost`;
//! * `<data_dir>/tls/sip-tls-<ip>-<port>.key` (PEM PKCS#8, mode 0600).
//!
//! An expired generated certificate is replaced. Generated material that does not load is an
//! error: the operator decides what to do with it, nothing is silently overwritten.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use tracing::{info, warn};

use crate::config::{Config, ListenerConfig, TransportKind};

/// How long a generated certificate is valid.
const GENERATED_VALIDITY_DAYS: u32 = 365;

/// Where a TLS listener's material came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaterialSource {
    Configured,
    Generated,
    Reused,
}

/// Make every TLS listener's material usable: check configured files, reuse or generate
/// the missing ones, and fill their paths into `config`. Afterwards every TLS listener has
/// `certificate` and `private_key` set. Returns the source per TLS listener address.
pub fn prepare(config: &mut Config) -> anyhow::Result<Vec<(SocketAddr, MaterialSource)>> {
    let data_dir = config.data_dir.clone();
    let mut sources = Vec::new();
    for listener in &mut config.sip.listen {
        if listener.transport != TransportKind::Tls {
            continue;
        }
        let source = match (&listener.certificate, &listener.private_key) {
            (Some(_), Some(_)) => MaterialSource::Configured,
            _ => {
                let (certificate, private_key, source) =
                    reuse_or_generate(&data_dir, listener.address)?;
                listener.certificate = Some(certificate);
                listener.private_key = Some(private_key);
                source
            }
        };
        check_listener_files(listener)?;
        sources.push((listener.address, source));
    }
    Ok(sources)
}

/// Check the configured TLS files of every listener without generating or writing anything
/// (for `--check-config`).
pub fn check_configured(config: &Config) -> anyhow::Result<()> {
    for listener in &config.sip.listen {
        if listener.transport == TransportKind::Tls {
            check_listener_files(listener)?;
        }
    }
    Ok(())
}

/// The certificate and key paths generated material for `address` lives at.
pub fn generated_paths(data_dir: &Path, address: SocketAddr) -> (PathBuf, PathBuf) {
    let ip = address.ip().to_string().replace(':', "_");
    let stem = format!("sip-tls-{ip}-{}", address.port());
    let directory = data_dir.join("tls");
    (
        directory.join(format!("{stem}.crt")),
        directory.join(format!("{stem}.key")),
    )
}

fn check_listener_files(listener: &ListenerConfig) -> anyhow::Result<()> {
    if let (Some(certificate), Some(private_key)) = (&listener.certificate, &listener.private_key) {
        load_key_pair(certificate, private_key)
            .with_context(|| format!("TLS listener {}", listener.address))?;
    }
    if let Some(client_ca) = &listener.client_ca {
        let pem = fs::read(client_ca)
            .with_context(|| format!("cannot read client_ca {}", client_ca.display()))?;
        let authorities = X509::stack_from_pem(&pem)
            .with_context(|| format!("client_ca {} is not PEM", client_ca.display()))?;
        if authorities.is_empty() {
            bail!("client_ca {} holds no certificate", client_ca.display());
        }
    }
    Ok(())
}

/// Load a PEM certificate chain and key; fail unless the key matches the leaf certificate.
fn load_key_pair(certificate: &Path, private_key: &Path) -> anyhow::Result<X509> {
    let chain_pem = fs::read(certificate)
        .with_context(|| format!("cannot read certificate {}", certificate.display()))?;
    let chain = X509::stack_from_pem(&chain_pem)
        .with_context(|| format!("certificate {} is not PEM", certificate.display()))?;
    let Some(leaf) = chain.into_iter().next() else {
        bail!("certificate {} holds no certificate", certificate.display());
    };
    let key_pem = fs::read(private_key)
        .with_context(|| format!("cannot read private key {}", private_key.display()))?;
    let key = PKey::private_key_from_pem(&key_pem)
        .with_context(|| format!("private key {} is not a PEM key", private_key.display()))?;
    let leaf_key = leaf.public_key().context("certificate public key")?;
    if !leaf_key.public_eq(&key) {
        bail!(
            "private key {} does not match certificate {}",
            private_key.display(),
            certificate.display()
        );
    }
    Ok(leaf)
}

fn reuse_or_generate(
    data_dir: &Path,
    address: SocketAddr,
) -> anyhow::Result<(PathBuf, PathBuf, MaterialSource)> {
    let (certificate, private_key) = generated_paths(data_dir, address);
    match (certificate.exists(), private_key.exists()) {
        (true, true) => {
            let leaf = load_key_pair(&certificate, &private_key)
                .context("generated TLS material cannot be reused; remove it to regenerate")?;
            tighten_key_permissions(&private_key)?;
            let now = Asn1Time::days_from_now(0)?;
            if leaf.not_after() > now {
                info!(
                    certificate = %certificate.display(),
                    private_key = %private_key.display(),
                    listener = %address,
                    "reusing self-signed TLS certificate"
                );
                return Ok((certificate, private_key, MaterialSource::Reused));
            }
            warn!(certificate = %certificate.display(), "self-signed TLS certificate expired; replacing it");
        }
        (false, false) => {}
        _ => warn!(
            certificate = %certificate.display(),
            private_key = %private_key.display(),
            "only half of the generated TLS material exists (interrupted first start?); regenerating"
        ),
    }
    write_generated(&certificate, &private_key, address.ip())?;
    info!(
        certificate = %certificate.display(),
        private_key = %private_key.display(),
        listener = %address,
        "generated self-signed TLS certificate (configure certificate/private_key to use your own)"
    );
    Ok((certificate, private_key, MaterialSource::Generated))
}

fn tighten_key_permissions(private_key: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(private_key)?.permissions().mode();
    if mode & 0o077 != 0 {
        warn!(private_key = %private_key.display(), mode = format!("{mode:o}"), "private key readable by others; setting mode 0600");
        fs::set_permissions(private_key, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Generate and write a certificate/key pair, key first, each via a temporary file and a
/// rename, so a crash never leaves a certificate without its key.
fn write_generated(certificate: &Path, private_key: &Path, ip: IpAddr) -> anyhow::Result<()> {
    let directory = certificate
        .parent()
        .context("certificate path has no directory")?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let (cert, key) = self_signed(ip)?;
    write_atomically(private_key, &key.private_key_to_pem_pkcs8()?, 0o600)?;
    write_atomically(certificate, &cert.to_pem()?, 0o644)?;
    Ok(())
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("remove {}", temporary.display())),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A self-signed EC P-256 certificate for a listener on `ip`, valid for
/// [`GENERATED_VALIDITY_DAYS`], for both server and client authentication.
pub fn self_signed(ip: IpAddr) -> anyhow::Result<(X509, PKey<Private>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "sbc self-signed")?;
    let name = name.build();

    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;

    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(GENERATED_VALIDITY_DAYS)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .build()?,
    )?;
    let mut alt_names = SubjectAlternativeName::new();
    alt_names.dns("localhost");
    let ips: Vec<IpAddr> = if ip.is_unspecified() {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    } else {
        vec![ip]
    };
    for ip in &ips {
        alt_names.ip(&ip.to_string());
    }
    let alt_names = alt_names.build(&builder.x509v3_context(None, None))?;
    builder.append_extension(alt_names)?;
    let key_identifier = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(key_identifier)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build(), key))
}

#[cfg(test)]
#[path = "tls_material_tests.rs"]
mod tests;
