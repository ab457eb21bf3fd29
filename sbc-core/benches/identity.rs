//! STIR/SHAKEN throughput on one core: verifications of a SHAKEN INVITE with the
//! certificate at hand (a warm cache: the chain validated once and remembered), and
//! signatures. Reported per second of CPU time of the benchmarking thread
//! (`/proc/thread-self/schedstat`), so other load on a shared machine does not distort
//! the per-core figure. The target is at least 5,000 verifications per second per core.
//!
//! Run with `bench/identity.sh` (or `cargo bench -p sbc-core --bench identity`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/identity_support/pki.rs"]
mod pki;

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use pki::{Pki, Shaken, SpSpec, now_unix};
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::es256::SigningKey;
use sbc_core::identity::passport::{Attestation, Party, SignedPassport};
use sbc_core::identity::sign::Signer;
use sbc_core::identity::verify::{RequestIdentity, Step, Verifier, VerifyPolicy};
use sbc_core::sip::{Message, Request, parse_message};

const X5U: &str = "https://certs.example.net/sp.pem";

fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `op` for about `seconds` of wall time; operations per CPU-second.
fn per_cpu_second(seconds: f64, mut op: impl FnMut()) -> f64 {
    let wall = std::time::Instant::now();
    let cpu_start = thread_cpu_ns().unwrap_or(0);
    let mut count: u64 = 0;
    while wall.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            op();
        }
        count += 100;
    }
    let cpu = thread_cpu_ns()
        .unwrap_or(0)
        .saturating_sub(cpu_start)
        .max(1);
    count as f64 / (cpu as f64 / 1e9)
}

fn invite(identity: &str) -> Request {
    let text = format!(
        "INVITE sip:+15551234567@sbc.example.net;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a4f1b0c1d2e3f4a5;rport\r\n\
         Max-Forwards: 70\r\n\
         Contact: <sip:alice@192.0.2.10:5060>\r\n\
         To: <sip:+15551234567@sbc.example.net;user=phone>\r\n\
         From: \"Alice\" <sip:+12155551212@pbx.example.com;user=phone>;tag=9fxced76sl\r\n\
         P-Asserted-Identity: <sip:+12155551212@pbx.example.com;user=phone>\r\n\
         Call-ID: 3848276298220188511@192.0.2.10\r\n\
         CSeq: 1 INVITE\r\n\
         Identity: {identity}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse_message(Bytes::from(text)).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => unreachable!(),
    }
}

fn main() {
    let seconds: f64 = std::env::var("SBC_BENCH_CPU_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let pki = Pki::new("Bench");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    let chain = Arc::new(CertChain::parse(&pki.chain_pem(&sp)).unwrap());
    let anchors = TrustAnchors::from_pem(&pki.root.pem()).unwrap();
    let mut verifier = Verifier::new(
        VerifyPolicy {
            // The token is minted once; keep it fresh for the whole run.
            max_age: std::time::Duration::from_secs(3_600),
            ..VerifyPolicy::default()
        },
        anchors.clone(),
    );
    let identity = Shaken {
        x5u: X5U,
        orig: "12155551212",
        dest: "15551234567",
        iat: now_unix(),
        attest: "A",
    }
    .identity(&sp.key);
    let request = invite(&identity);
    let held_chain = Arc::clone(&chain);
    let held = move |_: &str| Some(Arc::clone(&held_chain));
    let now = SystemTime::now();
    match verifier.start(&RequestIdentity::of(&request), now, &held) {
        Step::Done(verdict) => assert_eq!(verdict.name(), "passed", "{verdict:?}"),
        Step::Fetch(_) => unreachable!(),
    }
    let signed = SignedPassport::parse(identity.split(';').next().unwrap()).unwrap();
    let signer = Signer::new(SigningKey::from_pem(&sp.key_pem()).unwrap(), X5U).unwrap();

    println!("| operation | per second per core (CPU time) | µs each |");
    println!("|---|---:|---:|");
    let row = |name: &str, rate: f64| {
        println!("| {name} | {rate:.0} | {:.1} |", 1e6 / rate);
    };
    row(
        "verify a SHAKEN INVITE, certificate at hand (extract + checks + ES256)",
        per_cpu_second(seconds, || {
            let identity = RequestIdentity::of(black_box(&request));
            black_box(verifier.start(&identity, now, &held));
        }),
    );
    row(
        "  of which: ES256 signature check alone",
        per_cpu_second(seconds, || {
            black_box(
                chain
                    .key()
                    .verify(signed.signing_input.as_bytes(), &signed.signature),
            );
        }),
    );
    row(
        "  of which: Identity extraction and token parse",
        per_cpu_second(seconds, || {
            let identity = RequestIdentity::of(black_box(&request));
            black_box(identity.identities.len());
            black_box(SignedPassport::parse(&signed.token()).is_ok());
        }),
    );
    row(
        "sign a SHAKEN PASSporT (claims, canonical JSON, ES256)",
        per_cpu_second(seconds, || {
            black_box(
                signer
                    .sign(
                        Party::Tn("12155551212".into()),
                        &Party::Tn("15551234567".into()),
                        Attestation::A,
                        "123e4567-e89b-42d3-a456-426614174000".into(),
                        now,
                    )
                    .is_ok(),
            );
        }),
    );
    row(
        "chain validation to the root (cold, once per certificate)",
        per_cpu_second(seconds / 2.0, || {
            black_box(anchors.validate(&chain).is_ok());
        }),
    );
}
