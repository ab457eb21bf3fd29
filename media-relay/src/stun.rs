//! STUN binding requests of ICE connectivity checks, answered as an ICE-lite agent
//! (RFC 8445 §2.5, RFC 5389): the relay never sends checks, it answers the peer's.
//!
//! A request is answered only when it carries `USERNAME` = `<our ufrag>:<peer ufrag>`, a
//! `MESSAGE-INTEGRITY` made with our password (short-term credentials) and, when present, a
//! correct `FINGERPRINT`. The answer is a success response with `XOR-MAPPED-ADDRESS` (where
//! the request came from), `MESSAGE-INTEGRITY` and `FINGERPRINT`. Everything else —
//! responses, indications, bad credentials, malformed messages — is dropped without an
//! answer, which is what a peer that is not ours deserves. Sans-IO and allocation-free:
//! the answer is written into a caller-provided buffer.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;

const HEADER: usize = 20;
const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FINGERPRINT: u16 = 0x8028;
const USE_CANDIDATE: u16 = 0x0025;
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// The largest answer written: header, XOR-MAPPED-ADDRESS (IPv6), MESSAGE-INTEGRITY and
/// FINGERPRINT.
pub const MAX_RESPONSE_LEN: usize = HEADER + 24 + 24 + 8;

/// Whether a datagram is STUN by RFC 7983's first-octet rule (0–3) and the magic cookie.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER
        && datagram.first().is_some_and(|b| *b < 4)
        && read_u32(datagram, 4) == Some(MAGIC_COOKIE)
}

/// Our ICE credentials for a leg and the peer's user fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct IceAgent {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
}

impl std::fmt::Debug for IceAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceAgent")
            .field("local_ufrag", &self.local_ufrag)
            .field("local_pwd", &"<redacted>")
            .field("remote_ufrag", &self.remote_ufrag)
            .finish()
    }
}

/// Why a STUN message got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunRefusal {
    /// Not a well-formed STUN message.
    Malformed,
    /// A response, an indication or a method other than Binding.
    NotARequest,
    /// No or wrong USERNAME, or no MESSAGE-INTEGRITY.
    WrongUser,
    /// MESSAGE-INTEGRITY or FINGERPRINT does not verify.
    BadIntegrity,
}

impl StunRefusal {
    pub fn name(self) -> &'static str {
        match self {
            StunRefusal::Malformed => "malformed",
            StunRefusal::NotARequest => "not_a_request",
            StunRefusal::WrongUser => "wrong_user",
            StunRefusal::BadIntegrity => "bad_integrity",
        }
    }
}

/// An answered request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The response's length in the output buffer.
    pub len: usize,
    /// The controlling peer nominated this pair (`USE-CANDIDATE`).
    pub nominated: bool,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl IceAgent {
    /// Checks a binding request from `source` and writes the success response into `out`
    /// (at least [`MAX_RESPONSE_LEN`] bytes).
    pub fn handle_request(
        &self,
        request: &[u8],
        source: SocketAddr,
        out: &mut [u8],
    ) -> Result<Answered, StunRefusal> {
        if !is_stun(request) {
            return Err(StunRefusal::Malformed);
        }
        let message_type = read_u16(request, 0).ok_or(StunRefusal::Malformed)?;
        let length = usize::from(read_u16(request, 2).ok_or(StunRefusal::Malformed)?);
        if !length.is_multiple_of(4) || HEADER + length != request.len() {
            return Err(StunRefusal::Malformed);
        }
        if message_type != BINDING_REQUEST {
            return Err(StunRefusal::NotARequest);
        }
        let mut username = None;
        let mut integrity_at = None;
        let mut fingerprint_at = None;
        let mut nominated = false;
        let mut at = HEADER;
        while at < request.len() {
            let kind = read_u16(request, at).ok_or(StunRefusal::Malformed)?;
            let len = usize::from(read_u16(request, at + 2).ok_or(StunRefusal::Malformed)?);
            let value = request
                .get(at + 4..at + 4 + len)
                .ok_or(StunRefusal::Malformed)?;
            // After MESSAGE-INTEGRITY only FINGERPRINT may follow (RFC 5389 §15.4).
            if integrity_at.is_some() && kind != FINGERPRINT {
                return Err(StunRefusal::Malformed);
            }
            match kind {
                USERNAME => username = Some(value),
                MESSAGE_INTEGRITY if len == 20 => integrity_at = Some(at),
                MESSAGE_INTEGRITY => return Err(StunRefusal::Malformed),
                FINGERPRINT if len == 4 => fingerprint_at = Some(at),
                FINGERPRINT => return Err(StunRefusal::Malformed),
                USE_CANDIDATE => nominated = true,
                _ => {}
            }
            if fingerprint_at.is_some() && at + 4 + len != request.len() {
                return Err(StunRefusal::Malformed);
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        if let Some(fp) = fingerprint_at {
            let expected =
                crc32(request.get(..fp).ok_or(StunRefusal::Malformed)?) ^ FINGERPRINT_XOR;
            if read_u32(request, fp + 4) != Some(expected) {
                return Err(StunRefusal::BadIntegrity);
            }
        }
        let expected_user = (self.local_ufrag.as_bytes(), self.remote_ufrag.as_bytes());
        let user_ok = username.is_some_and(|u| {
            u.len() == expected_user.0.len() + 1 + expected_user.1.len()
                && u.starts_with(expected_user.0)
                && u.get(expected_user.0.len()) == Some(&b':')
                && u.ends_with(expected_user.1)
        });
        let Some(mi) = integrity_at.filter(|_| user_ok) else {
            return Err(StunRefusal::WrongUser);
        };
        // The integrity covers the message up to the attribute, with the length field
        // counting up to and including MESSAGE-INTEGRITY.
        let covered = request.get(..mi).ok_or(StunRefusal::Malformed)?;
        let mut mac = self.mac();
        mac.update(&covered[..2]);
        mac.update(&((mi + 24 - HEADER) as u16).to_be_bytes());
        mac.update(&covered[4..]);
        let tag = request.get(mi + 4..mi + 24).ok_or(StunRefusal::Malformed)?;
        if mac.verify_slice(tag).is_err() {
            return Err(StunRefusal::BadIntegrity);
        }
        let transaction = request.get(8..20).ok_or(StunRefusal::Malformed)?;
        let len = self
            .write_success(transaction, source, out)
            .ok_or(StunRefusal::Malformed)?;
        Ok(Answered { len, nominated })
    }

    fn mac(&self) -> Hmac<Sha1> {
        // HMAC accepts keys of any length: this cannot fail.
        <Hmac<Sha1> as Mac>::new_from_slice(self.local_pwd.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    fn write_success(
        &self,
        transaction: &[u8],
        source: SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        let out = out.get_mut(..MAX_RESPONSE_LEN)?;
        out[..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
        out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out[8..20].copy_from_slice(transaction);
        let mut at = HEADER;
        // XOR-MAPPED-ADDRESS (RFC 5389 §15.2).
        let port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let (family, address): (u8, &[u8]) = match source {
            SocketAddr::V4(v4) => (1, &v4.ip().octets()[..]),
            SocketAddr::V6(v6) => (2, &v6.ip().octets()[..]),
        };
        let mut xor_key = [0u8; 16];
        xor_key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        xor_key[4..].copy_from_slice(transaction);
        let value_len = 4 + address.len();
        out[at..at + 2].copy_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&(value_len as u16).to_be_bytes());
        out[at + 4] = 0;
        out[at + 5] = family;
        out[at + 6..at + 8].copy_from_slice(&port.to_be_bytes());
        for (i, b) in address.iter().enumerate() {
            out[at + 8 + i] = b ^ xor_key[i];
        }
        at += 4 + value_len;
        // MESSAGE-INTEGRITY over everything so far, the length counting it.
        out[2..4].copy_from_slice(&((at + 24 - HEADER) as u16).to_be_bytes());
        let mut mac = self.mac();
        mac.update(&out[..at]);
        let tag = mac.finalize().into_bytes();
        out[at..at + 2].copy_from_slice(&MESSAGE_INTEGRITY.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&20u16.to_be_bytes());
        out[at + 4..at + 24].copy_from_slice(&tag);
        at += 24;
        // FINGERPRINT over everything so far, the length counting it.
        out[2..4].copy_from_slice(&((at + 8 - HEADER) as u16).to_be_bytes());
        let crc = crc32(&out[..at]) ^ FINGERPRINT_XOR;
        out[at..at + 2].copy_from_slice(&FINGERPRINT.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&4u16.to_be_bytes());
        out[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        Some(at + 8)
    }
}

/// CRC-32 (ISO-HDLC, the one STUN's FINGERPRINT uses), bitwise table built at compile time.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn agent() -> IceAgent {
        IceAgent {
            local_ufrag: "relayufrag".into(),
            local_pwd: "relay-password-24-chars!".into(),
            remote_ufrag: "peer".into(),
        }
    }

    /// A binding request as an ICE agent sends it (built independently of the code above
    /// except for CRC-32, which is checked against its known value).
    fn request(username: &str, password: &str, use_candidate: bool) -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        m.extend_from_slice(b"transaction1");
        let attribute = |m: &mut Vec<u8>, kind: u16, value: &[u8]| {
            m.extend_from_slice(&kind.to_be_bytes());
            m.extend_from_slice(&(value.len() as u16).to_be_bytes());
            m.extend_from_slice(value);
            while !m.len().is_multiple_of(4) {
                m.push(0);
            }
        };
        attribute(&mut m, USERNAME, username.as_bytes());
        attribute(&mut m, 0x8029, &[1, 2, 3, 4, 5, 6, 7, 8]); // ICE-CONTROLLING
        if use_candidate {
            attribute(&mut m, USE_CANDIDATE, &[]);
        }
        let length = (m.len() + 24 - HEADER) as u16;
        m[2..4].copy_from_slice(&length.to_be_bytes());
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(password.as_bytes()).unwrap();
        mac.update(&m);
        let tag = mac.finalize().into_bytes();
        attribute(&mut m, MESSAGE_INTEGRITY, &tag);
        let length = (m.len() + 8 - HEADER) as u16;
        m[2..4].copy_from_slice(&length.to_be_bytes());
        let crc = crc32(&m) ^ FINGERPRINT_XOR;
        attribute(&mut m, FINGERPRINT, &crc.to_be_bytes());
        m
    }

    #[test]
    fn crc32_is_the_iso_hdlc_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn answers_a_request_with_our_credentials() {
        let source: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let req = request("relayufrag:peer", "relay-password-24-chars!", true);
        assert!(is_stun(&req));
        let mut out = [0u8; MAX_RESPONSE_LEN];
        let answered = agent().handle_request(&req, source, &mut out).unwrap();
        assert!(answered.nominated);
        let response = &out[..answered.len];
        assert_eq!(&response[..2], &[0x01, 0x01]);
        assert_eq!(&response[8..20], b"transaction1");
        // XOR-MAPPED-ADDRESS: port ^ 0x2112, address ^ cookie.
        assert_eq!(&response[20..24], &[0x00, 0x20, 0, 8]);
        assert_eq!(
            u16::from_be_bytes([response[26], response[27]]),
            40000 ^ 0x2112
        );
        assert_eq!(&response[28..32], &[192 ^ 0x21, 0x12, 2 ^ 0xA4, 7 ^ 0x42]);
        // The response's own integrity and fingerprint verify with the same password.
        let fp = response.len() - 8;
        assert_eq!(
            u32::from_be_bytes(response[fp + 4..].try_into().unwrap()),
            crc32(&response[..fp]) ^ FINGERPRINT_XOR
        );
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(b"relay-password-24-chars!").unwrap();
        let mi = fp - 24;
        let mut covered = response[..mi].to_vec();
        covered[2..4].copy_from_slice(&((mi + 24 - HEADER) as u16).to_be_bytes());
        mac.update(&covered);
        assert_eq!(&mac.finalize().into_bytes()[..], &response[mi + 4..mi + 24]);

        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let answered = agent().handle_request(&req, v6, &mut out).unwrap();
        assert_eq!(answered.len, MAX_RESPONSE_LEN);
    }

    #[test]
    fn refuses_strangers_and_forgeries() {
        let source: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut out = [0u8; MAX_RESPONSE_LEN];
        let a = agent();
        let wrong_user = request("other:peer", "relay-password-24-chars!", false);
        assert_eq!(
            a.handle_request(&wrong_user, source, &mut out),
            Err(StunRefusal::WrongUser)
        );
        let wrong_pwd = request("relayufrag:peer", "guess", false);
        assert_eq!(
            a.handle_request(&wrong_pwd, source, &mut out),
            Err(StunRefusal::BadIntegrity)
        );
        let good = request("relayufrag:peer", "relay-password-24-chars!", false);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(
                a.handle_request(&bad, source, &mut out).is_err(),
                "byte {i}"
            );
        }
        for len in 0..good.len() {
            assert!(a.handle_request(&good[..len], source, &mut out).is_err());
        }
        let mut response = good.clone();
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(
            a.handle_request(&response, source, &mut out),
            Err(StunRefusal::NotARequest)
        );
    }
}
