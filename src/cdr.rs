//! The CDR writer: call records from the shards, joined with their media's final
//! statistics, written to the store in batches by one task. Shards never wait for it:
//! they hand records over with a `try_send` on a bounded queue, and a full queue drops
//! and counts.
//!
//! A record whose call had media waits (at most [`MEDIA_WAIT`]) for the relay session's
//! final statistics, which arrive from the media finaliser ([`crate::media`]); either may
//! come first. A batch is written once [`BATCH`] records are ready or the oldest has
//! waited [`FLUSH_AFTER`], in one SQLite transaction on a blocking thread. At stop the
//! writer takes what is queued, writes it, and ends. CDRs older than the retention are
//! pruned once an hour.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sbc_core::b2bua::CallRecord;
use sbc_core::routing::RoutingTable;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::appliance::SharedStore;
use crate::config::CdrConfig;
use crate::metrics::counting::disposition;
use crate::store::CdrRecord;
use crate::views::{WallClock, media_stats, security_info};

/// Records written per transaction at most.
pub const BATCH: usize = 256;
/// A ready record is written at the latest after this long.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// How long a record waits for its media's final statistics.
pub const MEDIA_WAIT: Duration = Duration::from_secs(2);
/// How long statistics wait for their record (which may have been dropped).
const ORPHAN_WAIT: Duration = Duration::from_secs(10);
/// How often old CDRs are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// Attempts to write a batch before it is given up (and counted as dropped).
const WRITE_ATTEMPTS: u32 = 5;

/// What the writer is fed.
#[derive(Debug)]
pub enum CdrEvent {
    /// A call attempt ended.
    Record(Box<CallRecord>),
    /// The final statistics of a released relay session.
    Media(u64, Option<media_relay::SessionStats>),
}

/// The writer's counters (read at scrape time).
#[derive(Debug, Default)]
pub struct CdrStats {
    pub written: AtomicU64,
    /// Records lost: queue full, or a batch the store refused every time.
    pub dropped: AtomicU64,
    pub write_errors: AtomicU64,
    /// Records without media statistics (they did not come in time).
    pub without_media: AtomicU64,
}

/// Hands records to the writer without ever waiting.
#[derive(Debug, Clone)]
pub struct CdrSink {
    sender: mpsc::Sender<CdrEvent>,
    stats: Arc<CdrStats>,
}

impl CdrSink {
    /// Queues a record; `false` (and counted) when the queue is full or the writer gone.
    pub fn submit(&self, record: CallRecord) -> bool {
        let queued = self
            .sender
            .try_send(CdrEvent::Record(Box::new(record)))
            .is_ok();
        if !queued {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Queues the final statistics of a session (lost quietly when the queue is full:
    /// the record is then written without them).
    pub fn media(&self, session: u64, stats: Option<media_relay::SessionStats>) {
        let _ = self.sender.try_send(CdrEvent::Media(session, stats));
    }
}

/// What the writer needs.
#[derive(Debug)]
pub struct WriterSetup {
    pub store: SharedStore,
    pub routing: watch::Receiver<Arc<RoutingTable>>,
    pub clock: WallClock,
    pub config: CdrConfig,
    pub stats: Arc<CdrStats>,
}

/// Starts the writer; it ends once every [`CdrSink`] is dropped and it has written what
/// was queued.
pub fn spawn(setup: WriterSetup) -> (CdrSink, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(setup.config.queue);
    let sink = CdrSink {
        sender,
        stats: Arc::clone(&setup.stats),
    };
    let task = tokio::spawn(Writer::new(setup).run(receiver));
    (sink, task)
}

struct Writer {
    setup: WriterSetup,
    /// Records waiting for their media statistics, by relay session.
    waiting: HashMap<u64, (Instant, Box<CallRecord>)>,
    /// Statistics waiting for their record.
    orphans: HashMap<u64, (Instant, Option<media_relay::SessionStats>)>,
    ready: Vec<CdrRecord>,
    oldest_ready: Option<Instant>,
    last_prune: Option<Instant>,
}

impl Writer {
    fn new(setup: WriterSetup) -> Writer {
        Writer {
            setup,
            waiting: HashMap::new(),
            orphans: HashMap::new(),
            ready: Vec::new(),
            oldest_ready: None,
            last_prune: None,
        }
    }

    async fn run(mut self, mut events: mpsc::Receiver<CdrEvent>) {
        let mut tick = tokio::time::interval(FLUSH_AFTER / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.take(event),
                    None => break,
                },
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            self.expire(now, false);
            let due = self
                .oldest_ready
                .is_some_and(|oldest| now.saturating_duration_since(oldest) >= FLUSH_AFTER);
            if self.ready.len() >= BATCH || due {
                self.flush().await;
            }
            self.prune_if_due(now).await;
        }
        self.expire(Instant::now(), true);
        while !self.ready.is_empty() {
            self.flush().await;
        }
    }

    fn take(&mut self, event: CdrEvent) {
        let now = Instant::now();
        match event {
            CdrEvent::Record(record) => match record.media_session {
                Some(session) => match self.orphans.remove(&session.0) {
                    Some((_, stats)) => self.make_ready(now, &record, stats.as_ref()),
                    None => {
                        self.waiting.insert(session.0, (now, record));
                    }
                },
                None => self.make_ready(now, &record, None),
            },
            CdrEvent::Media(session, stats) => match self.waiting.remove(&session) {
                Some((_, record)) => self.make_ready(now, &record, stats.as_ref()),
                None => {
                    if self.orphans.len() < self.setup.config.queue {
                        self.orphans.insert(session, (now, stats));
                    }
                }
            },
        }
    }

    /// Writes records whose statistics did not come in time without them (all of them
    /// when `all`), and forgets stale statistics.
    fn expire(&mut self, now: Instant, all: bool) {
        let late: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (since, _))| all || now.saturating_duration_since(*since) >= MEDIA_WAIT)
            .map(|(&session, _)| session)
            .collect();
        for session in late {
            if let Some((_, record)) = self.waiting.remove(&session) {
                self.setup
                    .stats
                    .without_media
                    .fetch_add(1, Ordering::Relaxed);
                self.make_ready(now, &record, None);
            }
        }
        self.orphans
            .retain(|_, (since, _)| now.saturating_duration_since(*since) < ORPHAN_WAIT);
    }

    fn make_ready(
        &mut self,
        now: Instant,
        record: &CallRecord,
        stats: Option<&media_relay::SessionStats>,
    ) {
        let cdr = self.convert(record, stats);
        self.ready.push(cdr);
        self.oldest_ready.get_or_insert(now);
    }

    fn convert(&self, record: &CallRecord, stats: Option<&media_relay::SessionStats>) -> CdrRecord {
        let clock = &self.setup.clock;
        let trunk_in = {
            let table = self.setup.routing.borrow();
            table
                .trunk_of_source(record.source)
                .and_then(|id| table.trunk(id))
                .map(|trunk| trunk.name.clone())
        };
        let duration_ms = record
            .answered
            .map(|answered| {
                i64::try_from(record.ended.saturating_duration_since(answered).as_millis())
                    .unwrap_or(i64::MAX)
            })
            .unwrap_or(0);
        let media = stats.map(media_stats).unwrap_or_default();
        CdrRecord {
            id: new_id(),
            a_call_id: record.a_call_id.clone(),
            b_call_id: record.b_call_id.clone(),
            start_ms: clock.unix_ms(record.started),
            answer_ms: record.answered.map(|at| clock.unix_ms(at)),
            end_ms: clock.unix_ms(record.ended),
            caller: record.caller.clone(),
            callee: record.callee.clone(),
            source_addr: record.source.to_string(),
            source_transport: record.source_protocol.name().to_owned(),
            dest_addr: record.destination.map(|(addr, _)| addr.to_string()),
            dest_transport: record
                .destination
                .map(|(_, protocol)| protocol.name().to_owned()),
            trunk_in,
            trunk_out: record.trunk.clone().filter(|name| !name.is_empty()),
            disposition: disposition(record),
            sip_status: record.status,
            end_reason: record.end_reason.to_owned(),
            duration_ms,
            media_stats: serde_json::to_value(media).unwrap_or_default(),
            security: serde_json::to_value(security_info(&record.security)).unwrap_or_default(),
        }
    }

    async fn flush(&mut self) {
        let count = self.ready.len().min(BATCH);
        let batch: Vec<CdrRecord> = self.ready.drain(..count).collect();
        if self.ready.is_empty() {
            self.oldest_ready = None;
        }
        for attempt in 1..=WRITE_ATTEMPTS {
            let store = Arc::clone(&self.setup.store);
            let rows = batch.clone();
            let written = tokio::task::spawn_blocking(move || {
                let mut store = store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                store.insert_cdrs(&rows)
            })
            .await;
            match written {
                Ok(Ok(_)) => {
                    self.setup
                        .stats
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    return;
                }
                Ok(Err(error)) => {
                    self.setup
                        .stats
                        .write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(%error, attempt, records = batch.len(), "cannot write CDRs");
                }
                Err(join) => {
                    self.setup
                        .stats
                        .write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(error = %join, "the CDR write task failed");
                }
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        self.setup
            .stats
            .dropped
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    async fn prune_if_due(&mut self, now: Instant) {
        let days = self.setup.config.retention_days;
        if days == 0
            || self
                .last_prune
                .is_some_and(|last| now.saturating_duration_since(last) < PRUNE_EVERY)
        {
            return;
        }
        self.last_prune = Some(now);
        let horizon = self
            .setup
            .clock
            .unix_ms(now)
            .saturating_sub(i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX));
        let store = Arc::clone(&self.setup.store);
        let pruned = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            store.prune_cdrs(horizon)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => info!(removed, retention_days = days, "old CDRs pruned"),
            Ok(Err(error)) => warn!(%error, "cannot prune old CDRs"),
            Err(error) => warn!(%error, "the CDR prune task failed"),
        }
    }
}

/// A fresh CDR id: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use sbc_core::b2bua::summary::SecuritySummary;
    use sbc_core::media::MediaSessionId;
    use sbc_core::net::Protocol;

    use super::*;
    use crate::store::{CdrFilter, PageRequest, Store};

    fn record(call_id: &str, media: Option<u64>) -> CallRecord {
        let now = Instant::now();
        CallRecord {
            started: now,
            progress: Some(now),
            answered: Some(now),
            ended: now + Duration::from_secs(3),
            caller: "sip:alice@example.com".into(),
            callee: "sip:bob@example.net".into(),
            trunk: Some("carrier".into()),
            a_call_id: call_id.into(),
            b_call_id: Some(format!("b-{call_id}")),
            source: "192.0.2.10:5060".parse().unwrap(),
            source_protocol: Protocol::Udp,
            destination: Some(("198.51.100.20:5060".parse().unwrap(), Protocol::Tcp)),
            status: 200,
            end_reason: "bye_from_a",
            media_session: media.map(MediaSessionId),
            codecs_a: vec!["PCMU/8000".into()],
            codecs_b: vec!["PCMU/8000".into()],
            security: SecuritySummary::new(Protocol::Udp, Some(Protocol::Tcp)),
        }
    }

    fn stats(packets: u64) -> media_relay::SessionStats {
        let mut stream = media_relay::StreamStats::default();
        stream.a.packets_received = packets;
        media_relay::SessionStats {
            streams: vec![stream],
        }
    }

    struct Running {
        sink: CdrSink,
        task: tokio::task::JoinHandle<()>,
        store: SharedStore,
        stats: Arc<CdrStats>,
    }

    fn start() -> Running {
        let store: SharedStore = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let table = RoutingTable::new(Vec::new(), Vec::new()).unwrap();
        let (_publish, routing) = watch::channel(Arc::new(table));
        let stats = Arc::new(CdrStats::default());
        let (sink, task) = spawn(WriterSetup {
            store: Arc::clone(&store),
            routing,
            clock: WallClock::now(),
            config: CdrConfig::default(),
            stats: Arc::clone(&stats),
        });
        Running {
            sink,
            task,
            store,
            stats,
        }
    }

    fn stored(store: &SharedStore) -> Vec<CdrRecord> {
        let store = store.lock().unwrap();
        let mut page = store
            .query_cdrs(&CdrFilter::default(), &PageRequest::first(100))
            .unwrap()
            .items;
        page.sort_by(|a, b| a.a_call_id.cmp(&b.a_call_id));
        page
    }

    async fn wait_for(store: &SharedStore, count: usize, within: Duration) -> Vec<CdrRecord> {
        let deadline = Instant::now() + within;
        loop {
            let all = stored(store);
            if all.len() >= count || Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn records_are_joined_with_media_statistics_whichever_comes_first() {
        let running = start();
        running.sink.submit(record("no-media", None));
        running.sink.submit(record("record-first", Some(1)));
        running.sink.media(1, Some(stats(11)));
        running.sink.media(2, Some(stats(22)));
        running.sink.submit(record("stats-first", Some(2)));
        let all = wait_for(&running.store, 3, Duration::from_secs(2)).await;
        let packets: Vec<(String, serde_json::Value)> = all
            .iter()
            .map(|cdr| {
                (
                    cdr.a_call_id.clone(),
                    cdr.media_stats["streams"][0]["a"]["packets_received"].clone(),
                )
            })
            .collect();
        assert_eq!(
            packets,
            vec![
                ("no-media".into(), serde_json::Value::Null),
                ("record-first".into(), serde_json::json!(11)),
                ("stats-first".into(), serde_json::json!(22)),
            ]
        );
        let cdr = &all[0];
        assert_eq!(cdr.disposition, crate::store::Disposition::Answered);
        assert_eq!(cdr.duration_ms, 3_000);
        assert_eq!(cdr.dest_transport.as_deref(), Some("tcp"));
        assert_eq!(cdr.trunk_out.as_deref(), Some("carrier"));
        assert_eq!(cdr.security["b"]["signalling"]["transport"], "tcp");
        assert_eq!(running.stats.written.load(Ordering::Relaxed), 3);
        drop(running.sink);
        running.task.await.unwrap();
    }

    #[tokio::test]
    async fn a_record_whose_statistics_never_come_is_written_without_them() {
        let running = start();
        running.sink.submit(record("lonely", Some(7)));
        tokio::time::sleep(MEDIA_WAIT / 2).await;
        assert!(
            stored(&running.store).is_empty(),
            "still waiting for its statistics"
        );
        let all = wait_for(&running.store, 1, MEDIA_WAIT * 2).await;
        assert_eq!(all.len(), 1);
        assert_eq!(running.stats.without_media.load(Ordering::Relaxed), 1);
        drop(running.sink);
        running.task.await.unwrap();
    }

    #[tokio::test]
    async fn the_writer_writes_what_is_queued_when_the_shards_are_gone() {
        let running = start();
        for index in 0..600 {
            running
                .sink
                .submit(record(&format!("call-{index:03}"), Some(index)));
        }
        // No statistics will come; the end flushes everything at once.
        drop(running.sink);
        running.task.await.unwrap();
        assert_eq!(
            running.store.lock().unwrap().count_cdrs().unwrap(),
            600,
            "written in batches of {BATCH}"
        );
        assert_eq!(running.stats.dropped.load(Ordering::Relaxed), 0);
    }
}
