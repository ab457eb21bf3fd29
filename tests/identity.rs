//! STIR/SHAKEN through the real `sbc` binary with SIPp on both sides.
//!
//! The test builds a STIR PKI with openssl (an STI-CA root, an intermediate, SP
//! certificates with TNAuthList), serves the certificates with `openssl s_server -WWW` on
//! loopback over HTTPS, and sends INVITEs carrying Identity headers it computed itself
//! (or that PyJWT signed). Calls from one source trunk are verified with `enforce`
//! (failures answered with the RFC 8224 status and `Reason: STIR` naming the reason),
//! from another with `mark` (failures go on as `TN-Validation-Failed`). The callee
//! trunk is trusted and signed for: SIPp there sees `verstat`, and an Identity of the
//! SBC's that PyJWT verifies after fetching the SBC's certificate from its publisher.
//! Last, 100 calls at 200/s whose certificate nobody has fetched yet all verify (the
//! first ones wait for one fetch together).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../sbc-core/tests/identity_support/pki.rs"]
mod pki;
#[path = "identity/support.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, free_ports, require_tool, run_bounded};
use pki::{Issued, Pki, Shaken, SpSpec, now_unix};
use support::{CALLED_TN, CALLER_TN, header, invites, passport_py, sipp, write};

/// `openssl s_server -WWW`: serves the files of `dir` over HTTPS (one connection at a
/// time, HTTP/1.0); killed when dropped.
struct CertServer {
    child: Child,
}

impl CertServer {
    fn start(dir: &Path, address: SocketAddr, cert: &Path, key: &Path, chain: &Path) -> CertServer {
        let child = Command::new(require_tool("openssl"))
            .current_dir(dir)
            .args(["s_server", "-WWW", "-quiet", "-naccept", "1000", "-accept"])
            .arg(address.to_string())
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-cert_chain")
            .arg(chain)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "openssl s_server did not listen on {address}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        CertServer { child }
    }
}

impl Drop for CertServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct World {
    sbc: Sbc,
    dir: tempfile::TempDir,
    pki: Pki,
    sp: Issued,
    _certs: CertServer,
    /// `https://host:port` of the certificate server.
    base: String,
    closed_port: u16,
    callee: SocketAddr,
    enforced: IpAddr,
    marked: IpAddr,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = SbcConfig::new();
    let net = config.net;
    let callee = SocketAddr::new(net.host(2), free_ports::<1>(net.host(2))[0]);
    let enforced = net.host(3);
    let marked = net.host(4);
    let certs_ip = net.host(5);
    let [certs_port, closed_port] = free_ports(certs_ip);
    let [publish_port] = free_ports(config.ip);

    // The STIR PKI, and the certificates the x5u server offers.
    let pki = Pki::new("Black-box");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    write(&d.join("sp.pem"), &pki.chain_pem(&sp));
    let expired = pki.sp(&SpSpec {
        not_before: -20 * 86_400,
        not_after: -86_400,
        ..SpSpec::numbers("12155551200", 100)
    });
    write(&d.join("expired.pem"), &pki.chain_pem(&expired));
    write(&d.join("expired.key"), &expired.key_pem());
    let other_numbers = pki.sp(&SpSpec::numbers("13125550000", 50));
    write(&d.join("other.pem"), &pki.chain_pem(&other_numbers));
    write(&d.join("other.key"), &other_numbers.key_pem());
    let stranger = Pki::new("Stranger");
    let stranger_sp = stranger.sp(&SpSpec::numbers("12155551200", 100));
    write(&d.join("stranger.pem"), &stranger.chain_pem(&stranger_sp));
    write(&d.join("stranger.key"), &stranger_sp.key_pem());
    let mut big = pki.chain_pem(&sp);
    big.extend(std::iter::repeat_n(b'#', 40_000));
    write(&d.join("big.pem"), &big);
    write(&d.join("roots.pem"), &pki.root.pem());
    write(&d.join("intermediate.pem"), &pki.intermediate.pem());
    write(&d.join("sp.key"), &sp.key_pem());

    // HTTPS for the x5u server and the SBC's publisher, issued by the same test CA.
    for (name, ip) in [("web", certs_ip), ("publish", config.ip)] {
        let web = pki.tls_server(ip);
        let mut chain = web.pem();
        chain.extend(pki.intermediate.pem());
        write(&d.join(format!("{name}-tls.pem")), &chain);
        write(&d.join(format!("{name}-tls.key")), &web.key_pem());
    }
    // The SBC's own STIR certificate (an SPC-only TNAuthList, as SHAKEN SPs have).
    let ours = pki.sp(&SpSpec {
        numbers: Vec::new(),
        spc: Some("SBC1".into()),
        ..SpSpec::numbers("", 0)
    });
    write(&d.join("sbc-stir.pem"), &pki.chain_pem(&ours));
    write(&d.join("sbc-stir.key"), &ours.key_pem());

    let certs = CertServer::start(
        d,
        SocketAddr::new(certs_ip, certs_port),
        &d.join("web-tls.pem"),
        &d.join("web-tls.key"),
        &d.join("intermediate.pem"),
    );
    let file = |name: &str| d.join(name).display().to_string();
    let extra = format!(
        r#"
[trunk.identity]
sign = true
verstat = true

[[trunk]]
name = "enforced"
targets = ["{enforced}"]
transport = "udp"
keepalive_secs = 0
[trunk.identity]
verify = "enforce"

[[trunk]]
name = "marked"
targets = ["{marked}"]
transport = "udp"
keepalive_secs = 0
[trunk.identity]
verify = "mark"

[identity]
trust_anchors = "{roots}"
certificate = "{ours}"
private_key = "{ours_key}"
x5u = "https://{sbc_ip}:{publish_port}/sbc.pem"
max_wait_ms = 3000

[identity.fetch]
ports = [{certs_port}, {closed_port}]
allow_ranges = ["127.0.0.0/8"]
https_ca = "{roots}"
timeout_ms = 1500

[identity.publish]
listen = "{sbc_ip}:{publish_port}"
tls_certificate = "{publish_cert}"
tls_private_key = "{publish_key}"
"#,
        roots = file("roots.pem"),
        ours = file("sbc-stir.pem"),
        ours_key = file("sbc-stir.key"),
        publish_cert = file("publish-tls.pem"),
        publish_key = file("publish-tls.key"),
        sbc_ip = config.ip,
    );
    let sbc = Sbc::start(config.with_peer(callee).with_extra(&extra));
    World {
        sbc,
        pki,
        sp,
        _certs: certs,
        base: format!("https://{certs_ip}:{certs_port}"),
        closed_port,
        callee,
        enforced,
        marked,
        dir,
    }
}

/// A UAC scenario: one INVITE from `+CALLER_TN` carrying `identity`, expecting `status`
/// (and, for a failure, `Reason: STIR` with `reason`); a 200 is ACKed and BYEd.
fn uac_scenario(identity: &str, status: u16, reason: Option<&str>) -> String {
    let identity_line = if identity.is_empty() {
        String::new()
    } else {
        format!("Identity: {identity}\n      ")
    };
    let invite = format!(
        r#"INVITE sip:+{CALLED_TN}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+{CALLER_TN}@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+{CALLED_TN}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      {identity_line}Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 4242 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
"#
    );
    let answer = if status == 200 {
        r#"<recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ACK sip:+CALLED@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+CALLER@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+CALLED@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <pause milliseconds="100"/>
  <send retrans="500"><![CDATA[
      BYE sip:+CALLED@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+CALLER@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+CALLED@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200"/>"#
            .replace("CALLED", CALLED_TN)
            .replace("CALLER", CALLER_TN)
    } else {
        let check = reason.map_or_else(String::new, |reason| {
            format!(
                r#"<action><ereg regexp="STIR;cause={status};text=&quot;{reason}&quot;" search_in="hdr" header="Reason:" check_it="true" assign_to="1"/></action>"#
            )
        });
        let reference = if reason.is_some() {
            r#"<Reference variables="1"/>"#
        } else {
            ""
        };
        format!(r#"<recv response="{status}">{check}</recv>{reference}"#)
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="identity case">
  <send retrans="500"><![CDATA[
      {invite}  ]]></send>
  <recv response="100" optional="true"/>
  {answer}
</scenario>
"#
    )
}

impl World {
    fn shaken(&self, path: &str, iat: i64, key: &Issued) -> String {
        let x5u = format!("{}/{path}", self.base);
        Shaken {
            x5u: &x5u,
            orig: CALLER_TN,
            dest: CALLED_TN,
            iat,
            attest: "A",
        }
        .identity(&key.key)
    }

    fn key(&self, name: &str) -> Issued {
        let pem = std::fs::read(self.dir.path().join(format!("{name}.key"))).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
        Issued {
            cert: self.sp.cert.clone(),
            key,
        }
    }

    /// One call from `from` with `identity`; panics unless it ends as expected.
    fn call(
        &mut self,
        name: &str,
        from: IpAddr,
        identity: &str,
        status: u16,
        reason: Option<&str>,
    ) {
        self.calls(name, from, identity, (status, reason), (1, 10));
    }

    /// `count` calls at `rate` per second, each expected to end with `status`.
    fn calls(
        &mut self,
        name: &str,
        from: IpAddr,
        identity: &str,
        (status, reason): (u16, Option<&str>),
        (count, rate): (usize, usize),
    ) {
        let scenario = self.dir.path().join(format!("uac-{name}.xml"));
        std::fs::write(&scenario, uac_scenario(identity, status, reason)).unwrap();
        let [port] = free_ports(from);
        let trace = self.dir.path().join(format!("uac-{name}.log"));
        let finished = run_bounded(
            &mut sipp(&[
                "-sf".into(),
                scenario.display().to_string(),
                self.sbc.config.sip_address().to_string(),
                "-i".into(),
                from.to_string(),
                "-p".into(),
                port.to_string(),
                "-mi".into(),
                from.to_string(),
                "-m".into(),
                count.to_string(),
                "-r".into(),
                rate.to_string(),
                "-l".into(),
                count.to_string(),
                "-timeout".into(),
                "20s".into(),
                "-timeout_error".into(),
                "-trace_msg".into(),
                "-message_file".into(),
                trace.display().to_string(),
            ]),
            Duration::from_secs(25),
        );
        let messages = std::fs::read_to_string(&trace).unwrap_or_default();
        let messages = &messages[messages.len().saturating_sub(20_000)..];
        assert!(
            finished.succeeded(),
            "case {name}: expected {status} {reason:?}\n{}\n── UAC trace ──\n{messages}\n{}",
            finished.describe(),
            self.sbc.log_tail()
        );
    }
}

/// A SIPp UAS on the callee trunk answering every INVITE; its trace shows what arrived.
fn start_uas(world: &World, name: &str, calls: usize) -> (Child, PathBuf) {
    let trace = world.dir.path().join(format!("{name}.log"));
    let child = support::start_uas(world.callee, calls, &trace, Duration::from_secs(60));
    (child, trace)
}

#[test]
fn stir_shaken_through_the_sbc() {
    let mut w = world();
    let now = now_unix();
    let good = w.shaken("sp.pem", now, &w.key("sp"));
    let (mut uas, uas_trace) = start_uas(&w, "uas", 3);

    // A correctly signed call passes.
    w.call("passed", w.enforced, &good, 200, None);
    // A token PyJWT signed (an independent implementation) passes too.
    let sp_key = w.dir.path().join("sp.key").display().to_string();
    let x5u = format!("{}/sp.pem", w.base);
    let by_pyjwt = passport_py(&[
        "sign",
        &sp_key,
        &x5u,
        CALLER_TN,
        CALLED_TN,
        &now_unix().to_string(),
        "B",
    ]);
    w.call("pyjwt", w.enforced, &by_pyjwt, 200, None);

    // Each fault fails with its reason (enforce: the RFC 8224 status and Reason: STIR).
    let other_key = pki::p256();
    let forged = Issued {
        cert: w.sp.cert.clone(),
        key: other_key,
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "bad-signature",
            w.shaken("sp.pem", now, &forged),
            438,
            "bad_signature",
        ),
        (
            "expired",
            w.shaken("expired.pem", now, &w.key("expired")),
            437,
            "certificate_expired",
        ),
        (
            "unknown-root",
            w.shaken("stranger.pem", now, &w.key("stranger")),
            437,
            "unknown_root",
        ),
        (
            "not-covered",
            w.shaken("other.pem", now, &w.key("other")),
            437,
            "tn_not_covered",
        ),
        (
            "stale-iat",
            w.shaken("sp.pem", now - 300, &w.key("sp")),
            403,
            "stale_iat",
        ),
        (
            "orig-mismatch",
            Shaken {
                x5u: &format!("{}/sp.pem", w.base),
                orig: "12155551299",
                dest: CALLED_TN,
                iat: now,
                attest: "A",
            }
            .identity(&w.sp.key),
            438,
            "orig_mismatch",
        ),
        (
            "x5u-http",
            Shaken {
                x5u: &format!("{}/sp.pem", w.base.replace("https://", "http://")),
                orig: CALLER_TN,
                dest: CALLED_TN,
                iat: now,
                attest: "A",
            }
            .identity(&w.sp.key),
            436,
            "x5u_not_https",
        ),
        (
            "too-large",
            w.shaken("big.pem", now, &w.key("sp")),
            436,
            "x5u_too_large",
        ),
        (
            "malformed",
            format!("bm90.YSB0b2tlbg.AAAA;info=<{}/sp.pem>", w.base),
            438,
            "malformed_token",
        ),
    ];
    for (name, identity, status, reason) in &cases {
        w.call(name, w.enforced, identity, *status, Some(reason));
    }
    // x5u on a port where nothing listens.
    let unreachable = Shaken {
        x5u: &w
            .base
            .rsplit_once(':')
            .map(|(host, _)| format!("{host}:{}/sp.pem", w.closed_port))
            .unwrap(),
        orig: CALLER_TN,
        dest: CALLED_TN,
        iat: now_unix(),
        attest: "A",
    }
    .identity(&w.sp.key);
    w.call(
        "unreachable",
        w.enforced,
        &unreachable,
        436,
        Some("x5u_unreachable"),
    );

    // Under `mark` a failure goes on, marked.
    w.call("marked", w.marked, &cases[0].1, 200, None);

    let finished = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = uas.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = uas.kill();
                let _ = uas.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(
        finished.is_some_and(|s| s.success()),
        "the UAS took 3 calls\n{}",
        w.sbc.log_tail()
    );
    let received = invites(&uas_trace);
    assert_eq!(
        received.len(),
        3,
        "three calls reached the callee: {received:#?}"
    );
    let verstat: Vec<String> = received
        .iter()
        .map(|invite| header(invite, "From").join(" "))
        .collect();
    assert!(
        verstat[0].contains("verstat=TN-Validation-Passed"),
        "{verstat:?}"
    );
    assert!(
        verstat[1].contains("verstat=TN-Validation-Passed"),
        "{verstat:?}"
    );
    assert!(
        verstat[2].contains("verstat=TN-Validation-Failed"),
        "{verstat:?}"
    );

    // The callee got an Identity of the SBC's, which PyJWT verifies with the certificate
    // fetched from the SBC's publisher; the caller's own was replaced.
    for invite in &received {
        let identities = header(invite, "Identity");
        assert_eq!(identities.len(), 1, "{invite}");
        let token = identities[0].split(';').next().unwrap();
        let roots = w.dir.path().join("roots.pem").display().to_string();
        let verified = passport_py(&["verify", token, &roots]);
        let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
        assert_eq!(verified["header"]["ppt"], "shaken");
        assert_eq!(verified["claims"]["orig"]["tn"], CALLER_TN);
        assert_eq!(verified["claims"]["dest"]["tn"][0], CALLED_TN);
        // The caller trunks are not customers and their attestation is not trusted:
        // this SBC signs as a gateway.
        assert_eq!(verified["claims"]["attest"], "C");
    }

    // 100 calls at 200/s whose certificate (a new URL) nobody fetched yet: the first
    // ones wait for one fetch together, the rest find it at hand; all pass.
    std::fs::copy(
        w.dir.path().join("sp.pem"),
        w.dir.path().join("sp-again.pem"),
    )
    .unwrap();
    let (mut uas, uas_trace) = start_uas(&w, "uas-load", 100);
    let identity = w.shaken("sp-again.pem", now_unix(), &w.key("sp"));
    w.calls("load", w.enforced, &identity, (200, None), (100, 200));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !matches!(uas.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let _ = uas.kill();
    let _ = uas.wait();
    let received = invites(&uas_trace);
    assert_eq!(received.len(), 100, "every call reached the callee");
    assert!(
        received.iter().all(|invite| header(invite, "From")
            .join(" ")
            .contains("verstat=TN-Validation-Passed")),
        "every call verified"
    );
    let log = w.sbc.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("fetch failed") && line.contains("sp-again.pem"))
        .collect();
    assert!(
        failed.is_empty(),
        "the load's certificate was fetched: {failed:?}"
    );
    w.sbc.assert_alive("the identity calls");
    let _ = &w.pki;
}
