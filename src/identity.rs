//! STIR/SHAKEN wiring: from the configuration's `[identity]` and `[trunk.identity]` to
//! each shard's [`IdentityService`], the shared certificate fetcher, and the listener
//! that publishes the SBC's own certificate.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use openssl::x509::X509;
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::service::{
    IdentityConfig, IdentityService, IncomingIdentity, TrunkIdentity, VerifyMode,
};
use sbc_core::identity::sign::Signer;
use sbc_core::identity::verify::VerifyPolicy;
use sbc_core::net::x5u::{CertFetcher, FetchConfig, PublishConfig, Publisher};
use tracing::{info, warn};

use crate::config::{self, Config};
use crate::identity_material::{CheckedCredential, StoredMaterial, check_credential};

/// What the shards share: the parts of their identity services, the fetcher and the
/// publisher (when configured), and what the material in effect is built from (the
/// file's, kept from start, and the store's, handed in on each change).
#[derive(Debug)]
pub struct IdentityRuntime {
    parts: IdentityConfig,
    pub fetcher: Option<CertFetcher>,
    pub publisher: Option<Publisher>,
    policy: VerifyPolicy,
    file_roots: Vec<X509>,
    file_credential: Option<CheckedCredential>,
}

/// The signing service and the verification roots in effect, as the shards take them.
pub type Material = (Option<Signer>, Option<(VerifyPolicy, TrustAnchors)>);

impl IdentityRuntime {
    /// Loads keys, certificates and trust anchors (the file's, with `stored` on top:
    /// see [`crate::identity_material`]), and starts the fetcher and the publisher (on
    /// the current tokio runtime). `trunks` are those in effect: the file's and those
    /// created through the admin API.
    pub async fn start(
        config: &Config,
        trunks: &[config::TrunkConfig],
        stored: &StoredMaterial,
    ) -> anyhow::Result<IdentityRuntime> {
        let settings = &config.identity;
        let file_roots = match &settings.trust_anchors {
            Some(file) => {
                let pem = std::fs::read(file).with_context(|| {
                    format!("identity.trust_anchors: cannot read {}", file.display())
                })?;
                TrustAnchors::from_pem(&pem).with_context(|| {
                    format!(
                        "identity.trust_anchors: no certificate in {}",
                        file.display()
                    )
                })?;
                X509::stack_from_pem(&pem).context("identity.trust_anchors")?
            }
            None => Vec::new(),
        };
        let policy = VerifyPolicy {
            max_age: Duration::from_secs(settings.max_iat_age_secs),
            require_tn_auth_list: settings.require_tn_auth_list,
            check_dest: true,
            ports: settings.fetch.ports.clone(),
        };
        let file_credential = match (&settings.certificate, &settings.private_key, &settings.x5u) {
            (Some(certificate), Some(key), Some(x5u)) => {
                Some(file_credential(certificate, key, x5u)?)
            }
            _ => None,
        };
        // The fetcher runs even when nothing verifies yet: roots or a verifying trunk
        // may come through the admin API.
        let allowed_ranges = settings
            .fetch
            .allow_ranges
            .iter()
            .map(|range| range.parse())
            .collect::<Result<Vec<_>, _>>()
            .context("identity.fetch.allow_ranges")?;
        let fetcher = CertFetcher::spawn(FetchConfig {
            ports: settings.fetch.ports.clone(),
            allowed_ranges,
            max_bytes: settings.fetch.max_bytes,
            timeout: Duration::from_millis(settings.fetch.timeout_ms),
            https_ca_file: settings.fetch.https_ca.clone(),
            max_entries: settings.fetch.cache_entries,
            default_ttl: Duration::from_secs(settings.fetch.default_ttl_secs),
            max_ttl: Duration::from_secs(settings.fetch.max_ttl_secs),
            ..FetchConfig::default()
        })
        .context("cannot start the STIR certificate fetcher")?;
        let publisher = match &settings.publish {
            Some(publish) => {
                let publisher = Publisher::start(PublishConfig {
                    listen: publish.listen,
                    tls_certificate: publish.tls_certificate.clone(),
                    tls_private_key: publish.tls_private_key.clone(),
                    path: String::new(),
                    document: Bytes::new(),
                    max_age: Duration::from_secs(publish.max_age_secs),
                })
                .await
                .context("cannot start identity.publish")?;
                info!(address = %publisher.local_addr(), "STIR certificate publisher listening");
                Some(publisher)
            }
            None => None,
        };
        let mut runtime = IdentityRuntime {
            parts: IdentityConfig {
                verification: None,
                signer: None,
                trunks: trunk_policies(trunks),
                max_wait: Duration::from_millis(settings.max_wait_ms),
                max_waiting: settings.max_waiting_calls,
            },
            fetcher: Some(fetcher),
            publisher,
            policy,
            file_roots,
            file_credential,
        };
        let (signer, verification) = runtime.material(stored);
        runtime.parts.signer = signer;
        runtime.parts.verification = verification;
        Ok(runtime)
    }

    /// A shard's identity service (its own verifier memory and held certificates).
    pub fn service(&self) -> IdentityService {
        IdentityService::new(self.parts.clone(), SystemTime::now)
    }

    /// The material in effect with `stored` from the store: the store's credential
    /// (else the file's), the file's roots and the store's. The publisher serves the
    /// credential's chain from now on. Hand the result to every shard.
    pub fn material(&self, stored: &StoredMaterial) -> Material {
        let from_store = match stored.checked_credential() {
            Some(Ok(credential)) => Some(credential),
            Some(Err(problem)) => {
                warn!(field = problem.field, problem = %problem.problem, "stored STIR credential does not check; the file's applies");
                None
            }
            None => None,
        };
        let credential = from_store.as_ref().or(self.file_credential.as_ref());
        if let Some(publisher) = &self.publisher {
            let any_port: Vec<u16> = (1..=u16::MAX).collect();
            let published = credential.and_then(|credential| {
                let url = sbc_core::identity::url::check(&credential.x5u, &any_port).ok()?;
                let mut document = Vec::new();
                for certificate in &credential.chain {
                    document.extend(certificate.to_pem().ok()?);
                }
                Some((url.path, Bytes::from(document)))
            });
            let (path, document) = published.unwrap_or_default();
            info!(%path, bytes = document.len(), "STIR certificate published");
            publisher.publish(path, document);
        }
        let mut roots = self.file_roots.clone();
        roots.extend(stored.roots());
        let verification = if roots.is_empty() {
            None
        } else {
            match TrustAnchors::new(roots) {
                Ok(anchors) => {
                    info!(roots = ?anchors, "STIR verification roots in effect");
                    Some((self.policy.clone(), anchors))
                }
                Err(error) => {
                    warn!(%error, "STIR trust anchors unusable; nothing is verified");
                    None
                }
            }
        };
        (
            credential.map(|credential| credential.signer.clone()),
            verification,
        )
    }

    /// The file's signing credential, if it has one.
    pub fn file_credential(&self) -> Option<&CheckedCredential> {
        self.file_credential.as_ref()
    }

    /// The file's STI-CA roots.
    pub fn file_roots(&self) -> &[X509] {
        &self.file_roots
    }
}

/// Loads every identity file the configuration names (trust anchors, the signing key
/// and certificate, the publisher's TLS files, the HTTPS CA file) without starting
/// anything: what `--check-config` runs.
pub fn check_files(config: &Config) -> anyhow::Result<()> {
    let settings = &config.identity;
    if let Some(file) = &settings.trust_anchors {
        let pem = std::fs::read(file)
            .with_context(|| format!("identity.trust_anchors: cannot read {}", file.display()))?;
        TrustAnchors::from_pem(&pem).with_context(|| {
            format!(
                "identity.trust_anchors: no certificate in {}",
                file.display()
            )
        })?;
    }
    if let (Some(certificate), Some(key), Some(x5u)) =
        (&settings.certificate, &settings.private_key, &settings.x5u)
    {
        file_credential(certificate, key, x5u)?;
    }
    if let Some(file) = &settings.fetch.https_ca {
        let pem = std::fs::read(file)
            .with_context(|| format!("identity.fetch.https_ca: cannot read {}", file.display()))?;
        openssl::x509::X509::stack_from_pem(&pem)
            .ok()
            .filter(|certificates| !certificates.is_empty())
            .with_context(|| {
                format!(
                    "identity.fetch.https_ca: no certificate in {}",
                    file.display()
                )
            })?;
    }
    if let Some(publish) = &settings.publish {
        let mut acceptor = openssl::ssl::SslAcceptor::mozilla_intermediate_v5(
            openssl::ssl::SslMethod::tls_server(),
        )?;
        acceptor
            .set_certificate_chain_file(&publish.tls_certificate)
            .with_context(|| {
                format!(
                    "identity.publish.tls_certificate: {}",
                    publish.tls_certificate.display()
                )
            })?;
        acceptor
            .set_private_key_file(&publish.tls_private_key, openssl::ssl::SslFiletype::PEM)
            .with_context(|| {
                format!(
                    "identity.publish.tls_private_key: {}",
                    publish.tls_private_key.display()
                )
            })?;
        acceptor
            .check_private_key()
            .context("identity.publish.tls_private_key does not match tls_certificate")?;
    }
    Ok(())
}

fn file_credential(
    certificate: &std::path::Path,
    key: &std::path::Path,
    x5u: &str,
) -> anyhow::Result<CheckedCredential> {
    let key_pem = std::fs::read(key)
        .with_context(|| format!("identity.private_key: cannot read {}", key.display()))?;
    let chain_pem = std::fs::read(certificate).with_context(|| {
        format!(
            "identity.certificate: cannot read {}",
            certificate.display()
        )
    })?;
    let credential = check_credential(&key_pem, &chain_pem, x5u).map_err(|problem| {
        let key = match problem.field {
            "private_key" => "identity.private_key",
            "certificate_chain" => "identity.certificate",
            _ => "identity.x5u",
        };
        anyhow::anyhow!("{key}: {}", problem.problem)
    })?;
    if CertChain::parse(&chain_pem)
        .ok()
        .is_some_and(|chain| chain.tn_auth_list().is_none())
    {
        warn!("identity.certificate has no TNAuthList extension: verifiers will refuse it");
    }
    Ok(credential)
}

/// The per-trunk identity policies of `trunks` (for a running appliance whose trunks
/// changed: hand them to each shard with `Endpoint::handle_identity_policy`).
pub fn trunk_policies(trunks: &[config::TrunkConfig]) -> HashMap<String, TrunkIdentity> {
    trunks
        .iter()
        .map(|trunk| (trunk.name.clone(), trunk_identity(trunk)))
        .collect()
}

fn trunk_identity(trunk: &config::TrunkConfig) -> TrunkIdentity {
    let policy = &trunk.identity;
    TrunkIdentity {
        verify: match policy.verify {
            config::VerifyMode::Off => VerifyMode::Off,
            config::VerifyMode::Mark => VerifyMode::Mark,
            config::VerifyMode::Enforce => VerifyMode::Enforce,
        },
        require: policy.require,
        stir_reason: policy.stir_reason.unwrap_or(true),
        customer: policy.customer,
        trust_attestation: policy.trust_attestation,
        domain: policy.domain.clone(),
        sign: policy.sign,
        incoming_identity: match policy.incoming_identity {
            config::IncomingIdentity::Auto => IncomingIdentity::Auto,
            config::IncomingIdentity::Keep => IncomingIdentity::Keep,
            config::IncomingIdentity::Remove => IncomingIdentity::Remove,
        },
        verstat: policy.verstat.unwrap_or(trunk.trusted),
        trusted: trunk.trusted,
    }
}

/// The answer to a fetch, as a shard receives it.
pub type FetchedCertificate = sbc_core::net::x5u::Fetched;
