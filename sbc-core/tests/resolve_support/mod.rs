//! A tiny authoritative DNS server on loopback for the resolver tests: answers UDP queries
//! from an in-memory zone that a test can change (or make fail) while it runs.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NAPTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sbc_core::net::{ResolverSettings, TargetResolver};
use tokio::net::UdpSocket;

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Answer,
    ServFail,
}

#[derive(Debug, Default)]
struct State {
    records: Vec<Record>,
    mode: Option<Mode>,
    queries: Vec<(String, RecordType)>,
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// Zone records, all with the given TTL.
#[derive(Debug, Default)]
pub struct Zone {
    pub ttl: u32,
    pub records: Vec<Record>,
}

impl Zone {
    pub fn new(ttl: u32) -> Zone {
        Zone {
            ttl,
            records: Vec::new(),
        }
    }

    pub fn a(mut self, host: &str, ip: [u8; 4]) -> Zone {
        let data = RData::A(A(Ipv4Addr::from(ip)));
        self.records
            .push(Record::from_rdata(name(host), self.ttl, data));
        self
    }

    pub fn aaaa(mut self, host: &str, ip: &str) -> Zone {
        let ip: Ipv6Addr = ip.parse().unwrap();
        let data = RData::AAAA(AAAA(ip));
        self.records
            .push(Record::from_rdata(name(host), self.ttl, data));
        self
    }

    pub fn srv(
        mut self,
        service: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Zone {
        let data = RData::SRV(SRV::new(priority, weight, port, name(target)));
        self.records
            .push(Record::from_rdata(name(service), self.ttl, data));
        self
    }

    pub fn naptr(
        mut self,
        host: &str,
        order: u16,
        preference: u16,
        flags: &str,
        services: &str,
        replacement: &str,
    ) -> Zone {
        let data = RData::NAPTR(NAPTR::new(
            order,
            preference,
            flags.as_bytes().into(),
            services.as_bytes().into(),
            Box::default(),
            name(replacement),
        ));
        self.records
            .push(Record::from_rdata(name(host), self.ttl, data));
        self
    }
}

impl DnsServer {
    /// Serves `zone` on a free UDP port of 127.0.0.1.
    pub async fn start(zone: Zone) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            records: zone.records,
            mode: Some(Mode::Answer),
            queries: Vec::new(),
        }));
        let task = tokio::spawn(serve(socket, state.clone()));
        DnsServer { addr, state, task }
    }

    /// Replaces the zone.
    pub fn set_zone(&self, zone: Zone) {
        self.state.lock().unwrap().records = zone.records;
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Every query received so far, as (lower-case name without the final dot, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.state.lock().unwrap().queries.clone()
    }

    pub fn clear_queries(&self) {
        self.state.lock().unwrap().queries.clear();
    }

    /// A resolver that asks only this server, quickly.
    pub fn resolver(&self) -> TargetResolver {
        TargetResolver::new(&ResolverSettings {
            name_servers: vec![self.addr],
            timeout: Duration::from_millis(500),
            attempts: 1,
            use_hosts_file: false,
            ..ResolverSettings::default()
        })
        .unwrap()
    }
}

async fn serve(socket: UdpSocket, state: Arc<Mutex<State>>) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            return;
        };
        let Ok(query) = Message::from_vec(&buffer[..len]) else {
            continue;
        };
        let response = answer(&query, &state);
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

fn answer(query: &Message, state: &Mutex<State>) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(question) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(question.clone());
    let mut state = state.lock().unwrap();
    let asked = question.name().to_ascii().to_ascii_lowercase();
    let asked = asked.trim_end_matches('.').to_owned();
    state.queries.push((asked.clone(), question.query_type()));
    if state.mode == Some(Mode::ServFail) {
        response.metadata.response_code = ResponseCode::ServFail;
        return response;
    }
    let same_name =
        |r: &&Record| r.name.to_ascii().to_ascii_lowercase().trim_end_matches('.') == asked;
    let answers: Vec<Record> = state
        .records
        .iter()
        .filter(same_name)
        .filter(|r| r.record_type() == question.query_type())
        .cloned()
        .collect();
    if answers.is_empty() && !state.records.iter().any(|r| same_name(&r)) {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.add_answers(answers);
    response
}
