//! Parser and printer throughput on a typical INVITE with an SDP body (~900 bytes).
//!
//! Run with `cargo bench -p sbc-core --bench parser` or `bench/parser.sh`.
//!
//! With `SBC_BENCH_CPU_SECONDS=<n>` set, it instead runs each operation in a loop for `n`
//! seconds and reports operations per second of **CPU time** of the benchmarking thread
//! (from `/proc/thread-self/schedstat`): on a shared machine that is the per-core
//! figure, unaffected by time spent waiting for a CPU, which criterion's wall-clock
//! numbers are not.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use sbc_core::sip::{Message, parse_message};

/// A typical INVITE as an SBC receives it from a phone: one Via, the usual Allow,
/// Supported and User-Agent, and an SDP offer with five codecs (938 bytes).
pub const INVITE: &[u8] = b"INVITE sip:+15551234567@sbc.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a4f1b0c1d2e3f4a5;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
To: <sip:+15551234567@sbc.example.net;user=phone>\r\n\
From: \"Alice Example\" <sip:alice@pbx.example.com>;tag=9fxced76sl\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: ExamplePhone/4.2.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 357\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 9 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=rtcp:49171 IN IP4 192.0.2.10\r\n\
a=sendrecv\r\n";

/// The same call after a proxy: two Vias, a Record-Route and a Contact with a quoted
/// `+sip.instance` (1120 bytes). Reported as a second data point.
pub const PROXIED_INVITE: &[u8] =
    b"INVITE sip:+15551234567@carrier.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a4f1b0c1d2e3f4a5;rport\r\n\
Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK776asdhds;received=198.51.100.7\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:198.51.100.7;transport=tcp;lr>\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;+sip.instance=\"<urn:uuid:0c0ffee0-1234>\"\r\n\
To: <sip:+15551234567@carrier.example.net;user=phone>\r\n\
From: \"Alice Example\" <sip:alice@pbx.example.com>;tag=9fxced76sl\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: ExamplePhone/4.2.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 357\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 9 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=rtcp:49171 IN IP4 192.0.2.10\r\n\
a=sendrecv\r\n";

fn parse(bytes: &'static [u8]) -> Message {
    match parse_message(Bytes::from_static(bytes)) {
        Ok(m) => m,
        Err(e) => panic!("benchmark message does not parse: {e}"),
    }
}

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [("invite", INVITE), ("proxied_invite", PROXIED_INVITE)] {
        let input = Bytes::from_static(bytes);
        let message = parse(bytes);
        assert_eq!(message.to_bytes(), input, "{name} prints back unchanged");
        group.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| parse_message(black_box(input.clone())))
        });
        group.bench_function(format!("print_{name}"), |b| {
            let mut out = Vec::with_capacity(2048);
            b.iter(|| {
                out.clear();
                black_box(&message).write_to(&mut out);
                black_box(out.len())
            })
        });
        group.bench_function(format!("parse_and_print_{name}"), |b| {
            let mut out = Vec::with_capacity(2048);
            b.iter(|| {
                out.clear();
                if let Ok(m) = parse_message(black_box(input.clone())) {
                    m.write_to(&mut out);
                }
                black_box(out.len())
            })
        });
    }
    let message = parse(INVITE);
    group.bench_function("top_via_and_cseq", |b| {
        b.iter(|| {
            let headers = black_box(&message).headers();
            (headers.top_via().is_ok(), headers.cseq().is_ok())
        })
    });
    group.finish();
}

/// CPU time of this thread so far, in nanoseconds (Linux).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `op` for about `seconds` of wall time and returns operations per CPU-second.
fn per_cpu_second(seconds: f64, mut op: impl FnMut()) -> Option<f64> {
    let wall = std::time::Instant::now();
    let cpu_start = thread_cpu_ns()?;
    let mut count: u64 = 0;
    while wall.elapsed().as_secs_f64() < seconds {
        for _ in 0..1000 {
            op();
        }
        count += 1000;
    }
    let cpu = thread_cpu_ns()?.checked_sub(cpu_start)?;
    Some(count as f64 / (cpu as f64 / 1e9))
}

/// One benchmarked operation.
type Operation<'a> = Box<dyn FnMut() + 'a>;

fn cpu_time_table(seconds: f64) {
    println!("| message | operation | messages/s per core (CPU time) | ns/message |");
    println!("|---|---|---:|---:|");
    for (name, bytes) in [("INVITE", INVITE), ("proxied INVITE", PROXIED_INVITE)] {
        let input = Bytes::from_static(bytes);
        let message = parse(bytes);
        let mut out = Vec::with_capacity(2048);
        let label = format!("{name} ({} B)", bytes.len());
        let rows: [(&str, Operation<'_>); 3] = [
            (
                "parse",
                Box::new(|| {
                    let _ = black_box(parse_message(black_box(input.clone())));
                }),
            ),
            (
                "print",
                Box::new(|| {
                    out.clear();
                    black_box(&message).write_to(&mut out);
                    black_box(out.len());
                }),
            ),
            (
                "parse + print",
                Box::new(|| {
                    let mut out = Vec::with_capacity(2048);
                    if let Ok(m) = parse_message(black_box(input.clone())) {
                        m.write_to(&mut out);
                    }
                    black_box(out.len());
                }),
            ),
        ];
        for (operation, mut op) in rows {
            match per_cpu_second(seconds, &mut op) {
                Some(rate) => println!("| {label} | {operation} | {rate:.0} | {:.0} |", 1e9 / rate),
                None => println!("| {label} | {operation} | (no /proc/thread-self/schedstat) | |"),
            }
        }
    }
}

criterion_group!(benches, parser);

fn main() {
    if let Some(seconds) = std::env::var("SBC_BENCH_CPU_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        cpu_time_table(seconds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
