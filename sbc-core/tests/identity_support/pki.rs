//! A test STIR PKI built with openssl: an STI-CA root, an intermediate, and SP
//! certificates with a TNAuthList extension (RFC 8226), plus PASSporT minting that does
//! not use the SBC's own code (JSON written by hand, openssl's ECDSA, DER → `r || s`).
//!
//! Shared by sbc-core's tests and the black-box tests of the binary (`#[path]`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Extension, X509NameBuilder};

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate and its key.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Issued {
    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap()
    }
}

/// What an SP certificate says and when it is valid.
pub struct SpSpec {
    /// TNAuthList entries: `(start, count)` ranges (count 1 = one number).
    pub numbers: Vec<(String, u64)>,
    pub spc: Option<String>,
    /// Validity relative to now, in seconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl SpSpec {
    pub fn numbers(start: &str, count: u64) -> SpSpec {
        SpSpec {
            numbers: vec![(start.to_owned(), count)],
            spc: None,
            not_before: -86_400,
            not_after: 30 * 86_400,
        }
    }
}

/// An STI-CA root and an intermediate.
pub struct Pki {
    pub root: Issued,
    pub intermediate: Issued,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let root_key = p256();
        let root = build(
            &format!("{name} STI-CA root"),
            &root_key,
            None,
            true,
            (-86_400, 3_650 * 86_400),
            None,
        );
        let root = Issued {
            cert: root,
            key: root_key,
        };
        let intermediate_key = p256();
        let intermediate = build(
            &format!("{name} STI-CA intermediate"),
            &intermediate_key,
            Some(&root),
            true,
            (-86_400, 1_000 * 86_400),
            None,
        );
        Pki {
            root,
            intermediate: Issued {
                cert: intermediate,
                key: intermediate_key,
            },
        }
    }

    /// An SP certificate issued by the intermediate.
    pub fn sp(&self, spec: &SpSpec) -> Issued {
        let key = p256();
        let cert = build(
            "Test STI-SP",
            &key,
            Some(&self.intermediate),
            false,
            (spec.not_before, spec.not_after),
            Some(tn_auth_list_der(&spec.numbers, spec.spc.as_deref())),
        );
        Issued { cert, key }
    }

    /// A TLS server certificate for `ip` (subjectAltName IP), issued by the
    /// intermediate: for the HTTPS server that serves certificates in tests.
    pub fn tls_server(&self, ip: std::net::IpAddr) -> Issued {
        let key = p256();
        let cert = build_with(
            "test x5u server",
            &key,
            Some(&self.intermediate),
            false,
            (-86_400, 30 * 86_400),
            None,
            Some(ip),
        );
        Issued { cert, key }
    }

    /// What an `x5u` URL serves: the SP certificate, then the intermediate.
    pub fn chain_pem(&self, sp: &Issued) -> Vec<u8> {
        let mut pem = sp.pem();
        pem.extend_from_slice(&self.intermediate.pem());
        pem
    }
}

fn build(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<&Issued>,
    ca: bool,
    validity: (i64, i64),
    tn_auth_list: Option<Vec<u8>>,
) -> X509 {
    build_with(common_name, key, issuer, ca, validity, tn_auth_list, None)
}

fn build_with(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<&Issued>,
    ca: bool,
    (not_before, not_after): (i64, i64),
    tn_auth_list: Option<Vec<u8>>,
    server_ip: Option<std::net::IpAddr>,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", common_name).unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&name, |issuer| issuer.cert.subject_name()))
        .unwrap();
    builder.set_pubkey(key).unwrap();
    let now = now_unix();
    builder
        .set_not_before(&Asn1Time::from_unix(now + not_before).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now + not_after).unwrap())
        .unwrap();
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
    } else {
        builder
            .append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap();
    }
    let subject_key_id = SubjectKeyIdentifier::new()
        .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
        .unwrap();
    builder.append_extension(subject_key_id).unwrap();
    if issuer.is_some() {
        let authority = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        builder.append_extension(authority).unwrap();
    }
    if let Some(ip) = server_ip {
        let san = SubjectAlternativeName::new()
            .ip(&ip.to_string())
            .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        builder.append_extension(san).unwrap();
    }
    if let Some(der) = tn_auth_list {
        let oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.26").unwrap();
        let value = Asn1OctetString::new_from_bytes(&der).unwrap();
        builder
            .append_extension(X509Extension::new_from_der(&oid, false, &value).unwrap())
            .unwrap();
    }
    let signer = issuer.map_or(key, |issuer| &issuer.key);
    builder.sign(signer, MessageDigest::sha256()).unwrap();
    builder.build()
}

/// TNAuthorizationList DER written by hand (RFC 8226 §9, EXPLICIT tags).
pub fn tn_auth_list_der(numbers: &[(String, u64)], spc: Option<&str>) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "short lengths only in this helper");
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }
    let mut entries = Vec::new();
    if let Some(spc) = spc {
        entries.extend(tlv(0xa0, &tlv(0x16, spc.as_bytes())));
    }
    for (start, count) in numbers {
        if *count == 1 {
            entries.extend(tlv(0xa2, &tlv(0x16, start.as_bytes())));
        } else {
            let mut integer = count.to_be_bytes().to_vec();
            while integer.len() > 1 && integer[0] == 0 && integer[1] & 0x80 == 0 {
                integer.remove(0);
            }
            if integer[0] & 0x80 != 0 {
                integer.insert(0, 0);
            }
            let mut range = tlv(0x16, start.as_bytes());
            range.extend(tlv(0x02, &integer));
            entries.extend(tlv(0xa1, &tlv(0x30, &range)));
        }
    }
    tlv(0x30, &entries)
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned()
}

/// A compact JWS over `header_json` and `claims_json` (as given, byte for byte), signed
/// with ES256 by `key`.
pub fn mint(header_json: &str, claims_json: &str, key: &PKey<Private>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header_json.as_bytes()),
        b64url(claims_json.as_bytes())
    );
    let digest = openssl::sha::sha256(input.as_bytes());
    let signature = EcdsaSig::sign(&digest, &key.ec_key().unwrap()).unwrap();
    let mut raw = signature.r().to_vec_padded(32).unwrap();
    raw.extend(signature.s().to_vec_padded(32).unwrap());
    format!("{input}.{}", b64url(&raw))
}

/// A SHAKEN PASSporT in canonical JSON.
pub struct Shaken<'a> {
    pub x5u: &'a str,
    pub orig: &'a str,
    pub dest: &'a str,
    pub iat: i64,
    pub attest: &'a str,
}

impl Shaken<'_> {
    pub fn header_json(&self) -> String {
        format!(
            r#"{{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"{}"}}"#,
            self.x5u
        )
    }

    pub fn claims_json(&self) -> String {
        format!(
            r#"{{"attest":"{}","dest":{{"tn":["{}"]}},"iat":{},"orig":{{"tn":"{}"}},"origid":"123e4567-e89b-42d3-a456-426614174000"}}"#,
            self.attest, self.dest, self.iat, self.orig
        )
    }

    /// The whole Identity header value.
    pub fn identity(&self, key: &PKey<Private>) -> String {
        format!(
            "{};info=<{}>;alg=ES256;ppt=shaken",
            mint(&self.header_json(), &self.claims_json(), key),
            self.x5u
        )
    }
}
