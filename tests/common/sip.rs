//! A minimal, hand-written SIP client for black-box tests: build requests, run one client
//! transaction over UDP or TCP with bounded waits, read status codes and headers.
//!
//! Deliberately independent of `sbc-core`: the tests must not share the parser under test.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A token unique within the run and, very likely, across runs.
pub fn token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{nanos:08x}{count:x}", std::process::id())
}

/// The identifiers of a request, needed to match responses and to build its ACK.
#[derive(Debug, Clone)]
pub struct Request {
    pub text: String,
    pub method: String,
    pub request_uri: String,
    pub via: String,
    pub from: String,
    pub call_id: String,
    pub cseq: u32,
}

/// Build a request from `local` to the SBC at `target`; `transport` is `UDP`, `TCP` or `TLS`.
pub fn request(method: &str, target: SocketAddr, transport: &str, local: SocketAddr) -> Request {
    let request_uri = format!("sip:ping@{target}");
    let via = format!(
        "SIP/2.0/{transport} {local};branch=z9hG4bK{};rport",
        token()
    );
    let from = format!("<sip:tester@{}>;tag={}", local.ip(), token());
    let call_id = format!("{}@{}", token(), local.ip());
    let cseq = 1;
    let (content_type, body) = if method == "INVITE" {
        (
            "Content-Type: application/sdp\r\n".to_owned(),
            sdp_offer(local.ip()),
        )
    } else {
        (String::new(), String::new())
    };
    let text = format!(
        "{method} {request_uri} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: <{request_uri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:tester@{local};transport={transport_lower}>\r\n\
         Accept: application/sdp\r\n\
         User-Agent: sbc-blackbox-test\r\n\
         {content_type}\
         Content-Length: {length}\r\n\
         \r\n\
         {body}",
        transport_lower = transport.to_ascii_lowercase(),
        length = body.len(),
    );
    Request {
        text,
        method: method.to_owned(),
        request_uri,
        via,
        from,
        call_id,
        cseq,
    }
}

fn sdp_offer(ip: IpAddr) -> String {
    format!(
        "v=0\r\no=tester 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    )
}

/// The ACK for a non-2xx final `response` to the INVITE `invite` (RFC 3261 §17.1.1.3).
pub fn ack_for_failure(invite: &Request, response: &str) -> String {
    let to = header(response, "To").unwrap_or_default();
    format!(
        "ACK {uri} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} ACK\r\n\
         Content-Length: 0\r\n\
         \r\n",
        uri = invite.request_uri,
        via = invite.via,
        from = invite.from,
        call_id = invite.call_id,
        cseq = invite.cseq,
    )
}

/// The status code of a response (`None` for a request or garbage).
pub fn status_code(message: &str) -> Option<u16> {
    let rest = message.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// The first line of a message.
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// The value of the first header called `name` (long or compact form, any case).
pub fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "via" => Some("v"),
        "to" => Some("t"),
        "from" => Some("f"),
        "call-id" => Some("i"),
        "content-length" => Some("l"),
        "content-type" => Some("c"),
        "contact" => Some("m"),
        "supported" => Some("k"),
        _ => None,
    };
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    head.split("\r\n").skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        let field = field.trim();
        let matches = field.eq_ignore_ascii_case(name)
            || compact.is_some_and(|compact| field.eq_ignore_ascii_case(compact));
        matches.then(|| value.trim())
    })
}

/// Whether `response` belongs to `request` (same Call-ID).
fn answers(response: &str, request: &Request) -> bool {
    header(response, "Call-ID") == Some(request.call_id.as_str())
}

/// A UDP socket on `ip` with an OS-chosen port.
pub fn udp_socket(ip: IpAddr) -> UdpSocket {
    UdpSocket::bind((ip, 0)).unwrap_or_else(|error| panic!("bind UDP on {ip}: {error}"))
}

/// Send `request` over UDP (retransmitting like a client transaction, T1 = 500 ms) until a
/// final response arrives or `timeout` passes. Returns every response, in order.
pub fn udp_transaction(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + timeout;
    let mut responses = Vec::new();
    let mut next_send = Instant::now();
    let mut interval = Duration::from_millis(500);
    let mut buffer = vec![0_u8; 65_536];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "no final response to {} over UDP from {target} within {timeout:?} (got: {:?})",
                request.method,
                responses
                    .iter()
                    .map(|r: &String| first_line(r).to_owned())
                    .collect::<Vec<_>>()
            ));
        }
        if now >= next_send && responses.is_empty() {
            socket
                .send_to(request.text.as_bytes(), target)
                .map_err(|error| format!("send to {target}: {error}"))?;
            next_send = now + interval;
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let wait = deadline
            .min(next_send)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|error| error.to_string())?;
        match socket.recv_from(&mut buffer) {
            Ok((length, _)) => {
                let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if answers(&message, request) {
                    let code = status_code(&message);
                    responses.push(message);
                    if code.is_some_and(|code| code >= 200) {
                        return Ok(responses);
                    }
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // ICMP port unreachable from an earlier send: nothing listens (yet); keep trying.
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => {}
            Err(error) => return Err(format!("receive from {target}: {error}")),
        }
    }
}

/// A TCP connection to the SBC that reads whole SIP messages (framed by Content-Length).
#[derive(Debug)]
pub struct SipStream {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl SipStream {
    /// Connect from `local_ip` (an OS-chosen port) to `target`.
    pub fn connect(
        local_ip: IpAddr,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<SipStream, String> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(target),
            socket2::Type::STREAM,
            None,
        )
        .map_err(|error| error.to_string())?;
        socket
            .bind(&SocketAddr::new(local_ip, 0).into())
            .map_err(|error| format!("bind {local_ip}: {error}"))?;
        socket
            .connect_timeout(&target.into(), timeout)
            .map_err(|error| format!("connect to {target} over TCP: {error}"))?;
        Ok(SipStream {
            stream: socket.into(),
            buffer: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .unwrap_or_else(|error| panic!("local_addr: {error}"))
    }

    pub fn send(&mut self, text: &str) -> Result<(), String> {
        self.stream
            .write_all(text.as_bytes())
            .map_err(|error| format!("send over TCP: {error}"))
    }

    /// The next complete message, or an error after `timeout` or on close.
    pub fn read_message(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.take_message() {
                return Ok(message);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(format!(
                    "no complete SIP message over TCP within {timeout:?}"
                ));
            }
            self.stream
                .set_read_timeout(Some(remaining))
                .map_err(|error| error.to_string())?;
            let mut chunk = [0_u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the SBC closed the TCP connection".to_owned()),
                Ok(length) => self.buffer.extend_from_slice(&chunk[..length]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => return Err(format!("read over TCP: {error}")),
            }
        }
    }

    fn take_message(&mut self) -> Option<String> {
        // Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped.
        while self.buffer.starts_with(b"\r\n") {
            self.buffer.drain(..2);
        }
        let end_of_head = self
            .buffer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")?
            + 4;
        let head = String::from_utf8_lossy(&self.buffer[..end_of_head]).into_owned();
        let length: usize = header(&head, "Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if self.buffer.len() < end_of_head + length {
            return None;
        }
        let message: Vec<u8> = self.buffer.drain(..end_of_head + length).collect();
        Some(String::from_utf8_lossy(&message).into_owned())
    }

    /// Send `request` and read responses until a final one.
    pub fn transaction(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        self.send(&request.text)?;
        let mut responses = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let message = self.read_message(remaining).map_err(|error| {
                format!(
                    "{error} (waiting for a final response to {}, got {responses:?})",
                    request.method
                )
            })?;
            if !answers(&message, request) {
                continue;
            }
            let code = status_code(&message);
            responses.push(message);
            if code.is_some_and(|code| code >= 200) {
                return Ok(responses);
            }
        }
    }
}

/// The final response among `responses` (the last one).
pub fn final_response(responses: &[String]) -> &str {
    responses.last().map_or("", String::as_str)
}
