//! Test certificates made with openssl: EC P-256 keys and certificates valid for two
//! days, self-signed or issued by a test CA.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A CA: signs certificates.
    Ca,
    /// A TLS client (extended key usage clientAuth).
    Client,
    /// No extensions at all (a self-signed server certificate, as `sbc` generates).
    Plain,
}

/// A fresh EC P-256 key.
pub fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

/// A certificate for `common_name` with `key`, signed by `issuer` (self-signed when
/// `None`).
pub fn certificate(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    usage: Usage,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .expect("common name");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("serial");
    serial
        .rand(64, MsbOption::MAYBE_ZERO, false)
        .expect("random serial");
    builder
        .set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    builder.set_subject_name(&name).expect("subject");
    builder
        .set_issuer_name(issuer.map_or(&name, |(issuer, _)| issuer.subject_name()))
        .expect("issuer");
    builder.set_pubkey(key).expect("public key");
    builder
        .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    builder
        .set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("not after");
    match usage {
        Usage::Ca => {
            builder
                .append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("basic constraints");
            builder
                .append_extension(
                    KeyUsage::new()
                        .key_cert_sign()
                        .crl_sign()
                        .build()
                        .expect("ku"),
                )
                .expect("key usage");
        }
        Usage::Client => {
            builder
                .append_extension(BasicConstraints::new().build().expect("bc"))
                .expect("basic constraints");
            builder
                .append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
                .expect("extended key usage");
        }
        Usage::Plain => {}
    }
    let signer = issuer.map_or(key, |(_, issuer_key)| issuer_key);
    builder.sign(signer, MessageDigest::sha256()).expect("sign");
    builder.build()
}
