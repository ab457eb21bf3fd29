//! STIR/SHAKEN material through the admin API of the real `sbc` binary, with SIPp on
//! both sides and PyJWT as the independent verifier.
//!
//! The file configures an "old" PKI (its root, the SBC's credential under it, the
//! publisher). Through the API the test then uploads a credential of a "fresh" PKI and
//! shows: the next call's Identity is signed with the new key and the publisher serves
//! the new certificate at the new `x5u` (PyJWT fetches it and verifies); no answer nor
//! audit record holds the key; a mismatched pair or a P-384 key is `422 private_key`;
//! a read-only token gets `403`. A call signed under the fresh root fails as
//! `unknown_root` until the root is added through the API, then passes. After a restart
//! the credential and the root are still in effect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../sbc-core/tests/identity_support/pki.rs"]
mod pki;
#[path = "identity/support.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, free_ports, run_bounded};
use pki::{Pki, Shaken, SpSpec, now_unix};
use serde_json::json;
use support::{CALLED_TN, CALLER_TN, header, invites, passport_py, sipp, start_uas, write};

/// One INVITE from `+CALLER_TN` with `identity`, answered 200, ACKed and BYEd.
fn uac_scenario(identity: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="identity api call">
  <send retrans="500"><![CDATA[
      INVITE sip:+{CALLED_TN}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+{CALLER_TN}@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+{CALLED_TN}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Identity: {identity}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 4242 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ACK sip:+{CALLED_TN}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+{CALLER_TN}@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+{CALLED_TN}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <pause milliseconds="100"/>
  <send retrans="500"><![CDATA[
      BYE sip:+{CALLED_TN}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+{CALLER_TN}@[local_ip]:[local_port]>;tag=[pid]id[call_number]
      To: <sip:+{CALLED_TN}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200"/>
</scenario>
"#
    )
}

struct World {
    sbc: Sbc,
    dir: tempfile::TempDir,
    caller: IpAddr,
    callee: SocketAddr,
    /// `https://sbc:port` of the SBC's publisher.
    publisher: String,
}

impl World {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One call from the verifying trunk carrying `identity`; returns the INVITE the
    /// callee received.
    fn call(&self, name: &str, identity: &str) -> String {
        let uas_trace = self.path(&format!("uas-{name}.log"));
        let mut uas = start_uas(self.callee, 1, &uas_trace, Duration::from_secs(20));
        let scenario = self.path(&format!("uac-{name}.xml"));
        write(&scenario, uac_scenario(identity).as_bytes());
        let [port] = free_ports(self.caller);
        let finished = run_bounded(
            &mut sipp(&[
                "-sf".into(),
                scenario.display().to_string(),
                self.sbc.config.sip_address().to_string(),
                "-i".into(),
                self.caller.to_string(),
                "-p".into(),
                port.to_string(),
                "-mi".into(),
                self.caller.to_string(),
                "-m".into(),
                "1".into(),
                "-timeout".into(),
                "15s".into(),
                "-timeout_error".into(),
            ]),
            Duration::from_secs(20),
        );
        wait_child(&mut uas, Duration::from_secs(10));
        assert!(
            finished.succeeded(),
            "call {name}: {}\n{}",
            finished.describe(),
            self.sbc.log_tail()
        );
        invites(&uas_trace)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("call {name}: no INVITE reached the callee"))
    }
}

fn wait_child(child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// PyJWT verifies the SBC's PASSporT with the certificate it fetches from `x5u`
/// (trusting `cafile` for HTTPS); returns the header and claims.
fn pyjwt_verify(token: &str, cafile: &Path) -> serde_json::Value {
    let cafile = cafile.display().to_string();
    serde_json::from_str(&passport_py(&["verify", token, &cafile])).unwrap()
}

/// Every line of base64 in a PEM document (what a leak of the key would contain).
fn pem_lines(pem: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .map(str::to_owned)
        .collect()
}

fn assert_no_key(what: &str, body: &str, key_pem: &[u8]) {
    let compact: String = body.replace("\\n", "\n");
    for line in pem_lines(key_pem) {
        assert!(
            !compact.contains(&line),
            "{what} holds key material: {body}"
        );
    }
    assert!(!body.contains("PRIVATE KEY"), "{what}: {body}");
}

#[test]
fn stir_material_through_the_api_applies_to_the_next_call_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = SbcConfig::new();
    let net = config.net;
    let callee = SocketAddr::new(net.host(2), free_ports::<1>(net.host(2))[0]);
    let caller = net.host(3);
    let [publish_port] = free_ports(config.ip);

    // The file's PKI: roots, the SBC's credential, and the publisher's web certificate.
    let old = Pki::new("Old");
    let spc = |code: &str| SpSpec {
        numbers: Vec::new(),
        spc: Some(code.into()),
        ..SpSpec::numbers("", 0)
    };
    let old_sp = old.sp(&spc("OLD1"));
    write(&d.join("old-roots.pem"), &old.root.pem());
    write(&d.join("old-sp.pem"), &old.chain_pem(&old_sp));
    write(&d.join("old-sp.key"), &old_sp.key_pem());
    let web = old.tls_server(config.ip);
    let mut web_chain = web.pem();
    web_chain.extend(old.intermediate.pem());
    write(&d.join("web.pem"), &web_chain);
    write(&d.join("web.key"), &web.key_pem());
    // The PKI the API brings in.
    let fresh = Pki::new("Fresh");
    let fresh_sp = fresh.sp(&spc("NEW1"));
    let fresh_chain = fresh.chain_pem(&fresh_sp);
    let fresh_key = fresh_sp.key_pem();

    let publisher = format!("https://{}:{publish_port}", config.ip);
    let file = |name: &str| d.join(name).display().to_string();
    let extra = format!(
        r#"
[trunk.identity]
sign = true
verstat = true

[[trunk]]
name = "interconnect"
targets = ["{caller}"]
transport = "udp"
keepalive_secs = 0
[trunk.identity]
verify = "mark"

[identity]
trust_anchors = "{roots}"
certificate = "{cert}"
private_key = "{key}"
x5u = "{publisher}/old.pem"

[identity.fetch]
ports = [{publish_port}]
allow_ranges = ["127.0.0.0/8"]
https_ca = "{roots}"
timeout_ms = 1500

[identity.publish]
listen = "{ip}:{publish_port}"
tls_certificate = "{web}"
tls_private_key = "{web_key}"
"#,
        roots = file("old-roots.pem"),
        cert = file("old-sp.pem"),
        key = file("old-sp.key"),
        web = file("web.pem"),
        web_key = file("web.key"),
        ip = config.ip,
    );
    let sbc = Sbc::start(config.with_peer(callee).with_extra(&extra));
    let mut w = World {
        sbc,
        dir,
        caller,
        callee,
        publisher,
    };
    let admin = w.sbc.admin();

    // The file's credential is shown, without its key.
    let before = admin.get("/identity/credential");
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.json()["origin"], "config_file");
    assert_no_key(
        "GET of the file's credential",
        &before.body,
        &old_sp.key_pem(),
    );

    // A read-only token may read, not change.
    let created = admin.post("/tokens", &json!({"label": "viewer", "scope": "read_only"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let viewer = admin.with_token(created.json()["token"].as_str());
    let new_credential = json!({
        "private_key": String::from_utf8_lossy(&fresh_key),
        "certificate_chain": String::from_utf8_lossy(&fresh_chain),
        "x5u": format!("{}/fresh.pem", w.publisher),
    });
    assert_eq!(viewer.get("/identity/credential").status, 200);
    assert_eq!(
        viewer.put("/identity/credential", &new_credential).status,
        403
    );
    let root = json!({"certificate": String::from_utf8_lossy(&fresh.root.pem())});
    assert_eq!(viewer.post("/identity/trust-anchors", &root).status, 403);

    // A key that is not the certificate's, and a key that is not P-256: 422 naming it.
    let mut mismatched = new_credential.clone();
    mismatched["private_key"] = json!(String::from_utf8_lossy(&old_sp.key_pem()));
    let refused = admin.put("/identity/credential", &mismatched);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "private_key", "{}", refused.body);
    let p384 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
    )
    .unwrap();
    let mut wrong_curve = new_credential.clone();
    wrong_curve["private_key"] =
        json!(String::from_utf8_lossy(&p384.private_key_to_pem().unwrap()));
    let refused = admin.put("/identity/credential", &wrong_curve);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "private_key", "{}", refused.body);
    assert!(refused.body.contains("P-256"), "{}", refused.body);
    let mut bad_url = new_credential.clone();
    bad_url["x5u"] = json!("http://certs.example.net/sbc.pem");
    let refused = admin.put("/identity/credential", &bad_url);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "x5u", "{}", refused.body);

    // The fresh credential: accepted, shown without its key.
    let set = admin.put("/identity/credential", &new_credential);
    assert_eq!(set.status, 200, "{}", set.body);
    assert_no_key("PUT answer", &set.body, &fresh_key);
    let shown = admin.get("/identity/credential");
    assert_eq!(shown.status, 200);
    assert_no_key("GET of the credential", &shown.body, &fresh_key);
    let shown = shown.json();
    assert_eq!(shown["origin"], "api");
    assert_eq!(shown["certificate"]["tn_auth_list"], json!(["spc:NEW1"]));
    assert_eq!(shown["chain_length"], 2);
    let fingerprint = shown["certificate"]["fingerprint_sha256"].clone();
    let audit = admin.get("/audit?limit=1000");
    assert_eq!(audit.status, 200);
    assert_no_key("the audit log", &audit.body, &fresh_key);
    assert!(
        audit.body.contains("stir_credential")
            && audit.body.contains(fingerprint.as_str().unwrap()),
        "the change is audited with the certificate's fingerprint: {}",
        audit.body
    );

    // A call signed under the fresh root (its certificate at the SBC's own publisher):
    // the file's roots do not know it.
    let signed_by_fresh = || {
        Shaken {
            x5u: &format!("{}/fresh.pem", w.publisher),
            orig: CALLER_TN,
            dest: CALLED_TN,
            iat: now_unix(),
            attest: "A",
        }
        .identity(&fresh_sp.key)
    };
    let unknown_root = r#"sbc_identity_verifications_total{result="unknown_root"}"#;
    let passed = r#"sbc_identity_verifications_total{result="passed"}"#;
    let invite = w.call("unknown-root", &signed_by_fresh());
    assert!(
        header(&invite, "From")
            .join(" ")
            .contains("verstat=TN-Validation-Failed"),
        "{invite}"
    );
    assert_eq!(admin.metric(unknown_root), 1.0);
    // The SBC signed it with the new key, and serves the new certificate at the new
    // x5u, which PyJWT fetches and verifies with.
    let cafile = w.path("old-roots.pem");
    let fresh_x5u = format!("{}/fresh.pem", w.publisher);
    let check_ours = |invite: &str| {
        let identities = header(invite, "Identity");
        assert_eq!(identities.len(), 1, "{invite}");
        let token = identities[0].split(';').next().unwrap();
        let verified = pyjwt_verify(token, &cafile);
        assert_eq!(verified["header"]["x5u"], fresh_x5u.as_str());
        assert_eq!(verified["claims"]["orig"]["tn"], CALLER_TN);
    };
    check_ours(&invite);
    assert!(admin.metric("sbc_identity_x5u_fetches_total") >= 1.0);
    assert!(admin.metric("sbc_identity_x5u_cache_misses_total") >= 1.0);

    // The fresh root through the API: the same call now passes.
    let added = admin.post("/identity/trust-anchors", &root);
    assert_eq!(added.status, 201, "{}", added.body);
    let root_id = added.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(admin.post("/identity/trust-anchors", &root).status, 409);
    let listed = admin.get("/identity/trust-anchors").json();
    let origins: Vec<(String, String)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(origins.len(), 2, "{listed}");
    assert!(
        origins.contains(&(root_id.clone(), "api".into())),
        "{listed}"
    );
    let invite = w.call("passed", &signed_by_fresh());
    assert!(
        header(&invite, "From")
            .join(" ")
            .contains("verstat=TN-Validation-Passed"),
        "{invite}"
    );
    assert_eq!(admin.metric(passed), 1.0);
    check_ours(&invite);

    // A restart keeps both.
    w.sbc = w.sbc.restart();
    let admin = w.sbc.admin();
    let shown = admin.get("/identity/credential").json();
    assert_eq!(shown["origin"], "api");
    assert_eq!(shown["certificate"]["fingerprint_sha256"], fingerprint);
    let listed = admin.get("/identity/trust-anchors");
    assert!(listed.body.contains(&root_id), "{}", listed.body);
    let invite = w.call("after-restart", &signed_by_fresh());
    assert!(
        header(&invite, "From")
            .join(" ")
            .contains("verstat=TN-Validation-Passed"),
        "{invite}"
    );
    check_ours(&invite);

    // Removing the root: calls under it fail again.
    let removed = admin.delete(&format!("/identity/trust-anchors/{root_id}"));
    assert_eq!(removed.status, 200, "{}", removed.body);
    let invite = w.call("removed", &signed_by_fresh());
    assert!(
        header(&invite, "From")
            .join(" ")
            .contains("verstat=TN-Validation-Failed"),
        "{invite}"
    );
    w.sbc.assert_alive("the identity API calls");
}

/// Without any `[identity]` in the file, the API's material is what trunks rely on: a
/// verifying trunk is refused until a root is trusted, that root cannot be removed
/// while the trunk verifies, and a signing trunk needs the API's credential, which
/// then cannot be removed either.
#[test]
fn api_trunks_rely_on_the_api_material_which_stays_while_they_need_it() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.admin();
    assert_eq!(admin.get("/identity/credential").status, 404);
    assert_eq!(
        admin.get("/identity/trust-anchors").json()["items"],
        json!([])
    );
    let trunk = |name: &str, identity: serde_json::Value| {
        json!({
            "name": name,
            "transport": "udp",
            "targets": [{"address": "192.0.2.60:5060", "priority": 0, "weight": 1}],
            "identity": identity,
        })
    };
    let verifying = trunk("partner", json!({"verify": "mark"}));
    let refused = admin.post("/trunks", &verifying);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "identity.verify");

    let pki = Pki::new("Api-only");
    let root = json!({"certificate": String::from_utf8_lossy(&pki.root.pem())});
    // Not one root: two certificates, or not PEM.
    let mut two = pki.root.pem();
    two.extend(pki.intermediate.pem());
    let refused = admin.post(
        "/identity/trust-anchors",
        &json!({"certificate": String::from_utf8_lossy(&two)}),
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "certificate");
    let added = admin.post("/identity/trust-anchors", &root);
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        added.json()["certificate"]["subject"],
        json!(added.json()["certificate"]["issuer"])
    );
    let created = admin.post("/trunks", &verifying);
    assert_eq!(created.status, 201, "{}", created.body);
    let kept = admin.delete(&format!("/identity/trust-anchors/{id}"));
    assert_eq!(kept.status, 409, "{}", kept.body);
    assert!(kept.body.contains("partner"), "{}", kept.body);

    let signing = trunk("carrier", json!({"sign": true}));
    let refused = admin.post("/trunks", &signing);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "identity.sign");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    let set = admin.put(
        "/identity/credential",
        &json!({
            "private_key": String::from_utf8_lossy(&sp.key_pem()),
            "certificate_chain": String::from_utf8_lossy(&pki.chain_pem(&sp)),
            "x5u": "https://certs.example.net/sp.pem",
        }),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        set.json()["certificate"]["tn_auth_list"],
        json!(["range:12155551200+100"])
    );
    assert_eq!(admin.post("/trunks", &signing).status, 201);
    let kept = admin.delete("/identity/credential");
    assert_eq!(kept.status, 409, "{}", kept.body);
    assert!(kept.body.contains("carrier"), "{}", kept.body);
    // Once no trunk needs them, they go.
    assert_eq!(admin.delete("/trunks/carrier").status, 200);
    assert_eq!(admin.delete("/identity/credential").status, 200);
    assert_eq!(admin.get("/identity/credential").status, 404);
    assert_eq!(admin.delete("/trunks/partner").status, 200);
    assert_eq!(
        admin
            .delete(&format!("/identity/trust-anchors/{id}"))
            .status,
        200
    );
}
