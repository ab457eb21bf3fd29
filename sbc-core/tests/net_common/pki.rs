//! A throw-away PKI: a self-signed CA and leaf certificates with chosen subject alternative
//! names, written as PEM files to a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use sbc_core::net::CertificateFiles;

pub struct TestPki {
    dir: PathBuf,
    name: String,
    ca_cert: X509,
    ca_key: PKey<Private>,
}

/// Names to put in a leaf certificate.
#[derive(Default)]
pub struct Names<'a> {
    pub common_name: &'a str,
    pub dns: &'a [&'a str],
    pub ips: &'a [&'a str],
    pub uris: &'a [&'a str],
}

fn check<T>(result: Result<T, openssl::error::ErrorStack>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("openssl: {error}"),
    }
}

fn new_key() -> PKey<Private> {
    let group = check(EcGroup::from_curve_name(Nid::X9_62_PRIME256V1));
    check(PKey::from_ec_key(check(EcKey::generate(&group))))
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut serial = check(BigNum::new());
    check(serial.rand(64, MsbOption::MAYBE_ZERO, false));
    check(serial.to_asn1_integer())
}

fn validity() -> (Asn1Time, Asn1Time) {
    let from: Asn1Time = check(Asn1Time::days_from_now(0));
    let until: Asn1Time = check(Asn1Time::days_from_now(30));
    (from, until)
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(error) = std::fs::write(path, bytes) {
        panic!("writing {}: {error}", path.display());
    }
}

impl TestPki {
    /// A new CA named `name`, its files under a fresh temporary directory.
    pub fn new(name: &str) -> TestPki {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sbc-net-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(error) = std::fs::create_dir_all(&dir) {
            panic!("creating {}: {error}", dir.display());
        }
        let ca_key = new_key();
        let mut subject = check(X509NameBuilder::new());
        check(subject.append_entry_by_nid(Nid::COMMONNAME, &format!("{name} test CA")));
        let subject = subject.build();
        let mut builder = check(X509::builder());
        check(builder.set_version(2));
        check(builder.set_serial_number(&serial()));
        check(builder.set_subject_name(&subject));
        check(builder.set_issuer_name(&subject));
        check(builder.set_pubkey(&ca_key));
        let (not_before, not_after) = validity();
        check(builder.set_not_before(&not_before));
        check(builder.set_not_after(&not_after));
        check(builder.append_extension(check(BasicConstraints::new().critical().ca().build())));
        check(
            builder.append_extension(check(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build(),
            )),
        );
        let ski = check(SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None)));
        check(builder.append_extension(ski));
        check(builder.sign(&ca_key, MessageDigest::sha256()));
        let ca_cert = builder.build();
        let pki = TestPki {
            dir,
            name: name.to_owned(),
            ca_cert,
            ca_key,
        };
        write(&pki.ca_file(), &check(pki.ca_cert.to_pem()));
        pki
    }

    /// The CA certificate as a PEM bundle.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a leaf certificate (usable as server and client) and writes it as
    /// `<stem>.pem` (chain) and `<stem>.key`.
    pub fn issue(&self, stem: &str, names: Names<'_>) -> CertificateFiles {
        let key = new_key();
        let mut subject = check(X509NameBuilder::new());
        check(subject.append_entry_by_nid(Nid::ORGANIZATIONNAME, &self.name));
        check(subject.append_entry_by_nid(Nid::COMMONNAME, names.common_name));
        let subject = subject.build();
        let mut builder = check(X509::builder());
        check(builder.set_version(2));
        check(builder.set_serial_number(&serial()));
        check(builder.set_subject_name(&subject));
        check(builder.set_issuer_name(self.ca_cert.subject_name()));
        check(builder.set_pubkey(&key));
        let (not_before, not_after) = validity();
        check(builder.set_not_before(&not_before));
        check(builder.set_not_after(&not_after));
        check(builder.append_extension(check(BasicConstraints::new().build())));
        check(
            builder.append_extension(check(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .build(),
            )),
        );
        check(builder.append_extension(check(
            ExtendedKeyUsage::new().server_auth().client_auth().build(),
        )));
        if !(names.dns.is_empty() && names.ips.is_empty() && names.uris.is_empty()) {
            let mut san = SubjectAlternativeName::new();
            for dns in names.dns {
                san.dns(dns);
            }
            for ip in names.ips {
                san.ip(ip);
            }
            for uri in names.uris {
                san.uri(uri);
            }
            let san = check(san.build(&builder.x509v3_context(Some(&self.ca_cert), None)));
            check(builder.append_extension(san));
        }
        let akid = check(
            AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&builder.x509v3_context(Some(&self.ca_cert), None)),
        );
        check(builder.append_extension(akid));
        check(builder.sign(&self.ca_key, MessageDigest::sha256()));
        let cert = builder.build();
        let files = CertificateFiles {
            chain_file: self.dir.join(format!("{stem}.pem")),
            key_file: self.dir.join(format!("{stem}.key")),
        };
        write(&files.chain_file, &check(cert.to_pem()));
        write(&files.key_file, &check(key.private_key_to_pem_pkcs8()));
        files
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
