//! STIR/SHAKEN wiring: from the configuration's `[identity]` and `[trunk.identity]` to
//! each shard's [`IdentityService`], the shared certificate fetcher, and the listener
//! that publishes the SBC's own certificate.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::es256::SigningKey;
use sbc_core::identity::service::{
    IdentityConfig, IdentityService, IncomingIdentity, TrunkIdentity, VerifyMode,
};
use sbc_core::identity::sign::Signer;
use sbc_core::identity::verify::VerifyPolicy;
use sbc_core::net::x5u::{CertFetcher, FetchConfig, PublishConfig, Publisher};
use tracing::{info, warn};

use crate::config::{self, Config};

/// What the shards share: the parts of their identity services, the fetcher (when a
/// trunk verifies) and the publisher (when configured).
#[derive(Debug)]
pub struct IdentityRuntime {
    parts: IdentityConfig,
    pub fetcher: Option<CertFetcher>,
    pub publisher: Option<Publisher>,
}

impl IdentityRuntime {
    /// Loads keys, certificates and trust anchors, and starts the fetcher and the
    /// publisher (on the current tokio runtime). `trunks` are those in effect: the
    /// file's and those created through the admin API.
    pub async fn start(
        config: &Config,
        trunks: &[config::TrunkConfig],
    ) -> anyhow::Result<IdentityRuntime> {
        let settings = &config.identity;
        // Verification is ready whenever roots are configured: a trunk created later
        // through the admin API may verify.
        let verifying = settings.trust_anchors.is_some()
            || trunks
                .iter()
                .any(|trunk| trunk.identity.verify != config::VerifyMode::Off);
        let verification = match (&settings.trust_anchors, verifying) {
            (Some(file), true) => {
                let pem = std::fs::read(file).with_context(|| {
                    format!("identity.trust_anchors: cannot read {}", file.display())
                })?;
                let anchors = TrustAnchors::from_pem(&pem).with_context(|| {
                    format!(
                        "identity.trust_anchors: no certificate in {}",
                        file.display()
                    )
                })?;
                let policy = VerifyPolicy {
                    max_age: Duration::from_secs(settings.max_iat_age_secs),
                    require_tn_auth_list: settings.require_tn_auth_list,
                    check_dest: true,
                    ports: settings.fetch.ports.clone(),
                };
                info!(roots = ?anchors, "STIR verification enabled");
                Some((policy, anchors))
            }
            _ => None,
        };
        let signer = match (&settings.certificate, &settings.private_key, &settings.x5u) {
            (Some(certificate), Some(key), Some(x5u)) => Some(signer(certificate, key, x5u)?),
            _ => None,
        };
        let fetcher = if verification.is_some() {
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
            Some(fetcher)
        } else {
            None
        };
        let publisher = match (&settings.publish, &settings.certificate, &settings.x5u) {
            (Some(publish), Some(certificate), Some(x5u)) => {
                let document = std::fs::read(certificate).with_context(|| {
                    format!(
                        "identity.certificate: cannot read {}",
                        certificate.display()
                    )
                })?;
                let url = sbc_core::identity::url::check(x5u, &(1..=u16::MAX).collect::<Vec<_>>())
                    .map_err(|problem| anyhow::anyhow!("identity.x5u: {problem}"))?;
                let publisher = Publisher::start(PublishConfig {
                    listen: publish.listen,
                    tls_certificate: publish.tls_certificate.clone(),
                    tls_private_key: publish.tls_private_key.clone(),
                    path: url.path.clone(),
                    document: Bytes::from(document),
                    max_age: Duration::from_secs(publish.max_age_secs),
                })
                .await
                .context("cannot start identity.publish")?;
                info!(address = %publisher.local_addr(), path = %url.path, "STIR certificate published");
                Some(publisher)
            }
            _ => None,
        };
        let trunks = trunk_policies(trunks);
        Ok(IdentityRuntime {
            parts: IdentityConfig {
                verification,
                signer,
                trunks,
                max_wait: Duration::from_millis(settings.max_wait_ms),
                max_waiting: settings.max_waiting_calls,
            },
            fetcher,
            publisher,
        })
    }

    /// A shard's identity service (its own verifier memory and held certificates).
    pub fn service(&self) -> IdentityService {
        IdentityService::new(self.parts.clone(), SystemTime::now)
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
        signer(certificate, key, x5u)?;
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

fn signer(
    certificate: &std::path::Path,
    key: &std::path::Path,
    x5u: &str,
) -> anyhow::Result<Signer> {
    let key_pem = std::fs::read(key)
        .with_context(|| format!("identity.private_key: cannot read {}", key.display()))?;
    let key = SigningKey::from_pem(&key_pem).context("identity.private_key")?;
    let chain_pem = std::fs::read(certificate).with_context(|| {
        format!(
            "identity.certificate: cannot read {}",
            certificate.display()
        )
    })?;
    let chain = CertChain::parse(&chain_pem).context("identity.certificate")?;
    let public = key.verifying_key().context("identity.private_key")?;
    let matches = chain
        .leaf()
        .public_key()
        .ok()
        .and_then(|cert_key| cert_key.ec_key().ok())
        .is_some_and(|cert_key| {
            let mut context = openssl::bn::BigNumContext::new().ok();
            context.as_mut().is_some_and(|context| {
                cert_key
                    .public_key()
                    .eq(cert_key.group(), public.public_key().public_key(), context)
                    .unwrap_or(false)
            })
        });
    if !matches {
        anyhow::bail!("identity.private_key does not match identity.certificate");
    }
    if chain.tn_auth_list().is_none() {
        warn!("identity.certificate has no TNAuthList extension: verifiers will refuse it");
    }
    Signer::new(key, x5u.to_owned()).map_err(|error| anyhow::anyhow!("identity.x5u: {error}"))
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
