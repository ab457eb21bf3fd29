//! Shared helpers of the policy and registrar tests: requests built from text, and a
//! digest client that answers the boundary's challenges (computed here from RFC 7616
//! §3.4.1, independently of the authenticator's own code).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use bytes::Bytes;
use sbc_core::auth::Algorithm;
use sbc_core::sip::{Message, Request, parse_message};

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Parses `text` (lines joined with CRLF, a blank line and `body` appended).
pub fn request(lines: &[&str], body: &str) -> Request {
    let mut text = lines.join("\r\n");
    text.push_str(&format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    match parse_message(Bytes::from(text)) {
        Ok(Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

/// A REGISTER of `user` at `domain` from `contact`, with optional extra header lines.
pub fn register(user: &str, domain: &str, call_id: &str, cseq: u32, extra: &[&str]) -> Request {
    let mut lines = vec![
        format!("REGISTER sip:{domain} SIP/2.0"),
        format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-r{cseq}"),
        "Max-Forwards: 70".to_owned(),
        format!("From: <sip:{user}@{domain}>;tag=reg{cseq}"),
        format!("To: <sip:{user}@{domain}>"),
        format!("Call-ID: {call_id}"),
        format!("CSeq: {cseq} REGISTER"),
    ];
    lines.extend(extra.iter().map(|line| (*line).to_owned()));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    request(&lines, "")
}

/// A dialog-creating INVITE from `user` at `domain` to `callee`, with extra lines.
pub fn invite(user: &str, domain: &str, callee: &str, extra: &[&str]) -> Request {
    let mut lines = vec![
        format!("INVITE {callee} SIP/2.0"),
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-i1".to_owned(),
        "Max-Forwards: 70".to_owned(),
        format!("From: \"Alice A\" <sip:{user}@{domain}>;tag=inv1"),
        format!("To: <{callee}>"),
        "Call-ID: invite-1@192.0.2.10".to_owned(),
        "CSeq: 1 INVITE".to_owned(),
        "Contact: <sip:alice@192.0.2.10:5060>".to_owned(),
    ];
    lines.extend(extra.iter().map(|line| (*line).to_owned()));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    request(&lines, "")
}

/// The value of parameter `name` in a challenge (quoted or not).
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge
        .split([',', ' '])
        .map(str::trim)
        .find_map(|part| part.strip_prefix(&format!("{name}=")))?;
    Some(rest.trim_matches('"').to_owned())
}

/// The challenge for `algorithm` among `values`.
pub fn challenge_for(values: &[Bytes], algorithm: Algorithm) -> String {
    values
        .iter()
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .find(|value| param(value, "algorithm").as_deref() == Some(algorithm.as_str()))
        .unwrap_or_else(|| panic!("no {algorithm} challenge in {values:?}"))
}

/// A digest answer to `challenge`, for `method` and `uri`.
#[derive(Clone, Debug)]
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nc: u32,
    pub cnonce: &'a str,
    /// Overrides the realm the challenge named.
    pub realm: Option<&'a str>,
    /// `None`: no qop, nc or cnonce (RFC 2069 style).
    pub qop: bool,
}

impl<'a> Answer<'a> {
    pub fn new(username: &'a str, password: &'a str, method: &'a str, uri: &'a str) -> Self {
        Answer {
            username,
            password,
            method,
            uri,
            nc: 1,
            cnonce: "c0ffee42",
            realm: None,
            qop: true,
        }
    }

    pub fn nc(mut self, nc: u32) -> Self {
        self.nc = nc;
        self
    }

    /// The credentials value answering `challenge` (its algorithm, realm and nonce).
    pub fn to(&self, challenge: &str) -> String {
        let algorithm =
            Algorithm::from_name(param(challenge, "algorithm").unwrap().as_bytes()).unwrap();
        let realm = self
            .realm
            .map_or_else(|| param(challenge, "realm").unwrap(), str::to_owned);
        let nonce = param(challenge, "nonce").unwrap();
        let hash = |text: String| algorithm.hash_hex(&[text.as_bytes()]).unwrap();
        let ha1 = hash(format!("{}:{realm}:{}", self.username, self.password));
        let ha2 = hash(format!("{}:{}", self.method, self.uri));
        let nc = format!("{:08x}", self.nc);
        if self.qop {
            let response = hash(format!("{ha1}:{nonce}:{nc}:{}:auth:{ha2}", self.cnonce));
            format!(
                "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
                 response=\"{response}\", algorithm={algorithm}, qop=auth, nc={nc}, \
                 cnonce=\"{}\"",
                self.username, self.uri, self.cnonce
            )
        } else {
            let response = hash(format!("{ha1}:{nonce}:{ha2}"));
            format!(
                "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
                 response=\"{response}\", algorithm={algorithm}",
                self.username, self.uri
            )
        }
    }
}
