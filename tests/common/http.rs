//! A small blocking HTTP/1.1 client for the admin API: one request per connection,
//! bounded by a timeout, chunked bodies decoded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The admin API of one SBC, with a token.
#[derive(Debug, Clone)]
pub struct Admin {
    pub address: SocketAddr,
    pub token: Option<String>,
}

impl Admin {
    pub fn new(address: SocketAddr, token: Option<&str>) -> Admin {
        Admin {
            address,
            token: token.map(str::to_owned),
        }
    }

    /// The same API with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Admin {
        Admin::new(self.address, token)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, &[])
    }

    /// The value of one series of `/metrics` (`name{labels}` exactly as exposed), 0 when
    /// the series is absent.
    pub fn metric(&self, series: &str) -> f64 {
        let scrape = self.with_token(None).get("/metrics");
        assert_eq!(scrape.status, 200, "{}", scrape.body);
        scrape
            .body
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap_or(f64::NAN))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> Response {
        self.request(
            "POST",
            path,
            Some(("application/json", &body.to_string())),
            &[],
        )
    }

    pub fn put(&self, path: &str, body: &serde_json::Value) -> Response {
        self.request(
            "PUT",
            path,
            Some(("application/json", &body.to_string())),
            &[],
        )
    }

    /// Any request; `body` is (content type, text).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.try_request(method, path, body, headers)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&self.address, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.address
        );
        if let Some(token) = &self.token {
            text.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some((content_type, body)) => text.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        stream.write_all(text.as_bytes())?;
        let mut raw = Vec::new();
        stream.take(64 * 1024 * 1024).read_to_end(&mut raw)?;
        parse(&raw)
    }
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let bad =
        |what: &str| std::io::Error::other(format!("{what}: {:?}", String::from_utf8_lossy(raw)));
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
