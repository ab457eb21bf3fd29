//! Calls in progress, registrations, bans, CDRs, the audit log, TLS reload, drain and
//! the metrics scrape.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use admin_api::model::{
    AuditPage, AuditVerdict, Ban, BanPage, CallInfo, CallPage, CdrFilter, CdrPage, DrainState,
    ExportFormat, MediaStats, NewBan, RegistrationPage, TlsReloaded,
};
use admin_api::{Actor, ApiError, ApiResult, ByteStream, PageRequest};
use sbc_core::b2bua::CallView;
use serde_json::json;

use super::people::store_page;
use super::{AdminService, change_of, convert};
use crate::control::{ShardRequest, Signalling};
use crate::metrics::{self, CdrFigures, RelayFigures, Scrape, TransportFigures};
use crate::security::{GateInput, GateRequest};
use crate::store::{AuditEntry, NewBan as StoreBan};
use crate::views::{call_info, media_stats, parse_call_id, with_relay_security};

fn control_error(error: crate::control::ControlError) -> ApiError {
    ApiError::unavailable(error.to_string())
}

/// The relay's statistics of each view's media session (one round trip to its worker
/// each, on a blocking thread), and the view's security summary completed with what only
/// the relay knows (the SRTP profile a DTLS-SRTP handshake chose).
async fn with_stats(
    signalling: &Arc<Signalling>,
    views: Vec<(usize, CallView)>,
) -> Vec<(usize, CallView, Option<MediaStats>)> {
    let relay = signalling.relay.clone();
    let sessions: Vec<Option<u64>> = views
        .iter()
        .map(|(_, view)| view.media_session.map(|session| session.0))
        .collect();
    let stats = tokio::task::spawn_blocking(move || {
        sessions
            .into_iter()
            .map(|session| {
                let session = media_relay::SessionId(session?);
                relay.session_stats(session).ok()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    views
        .into_iter()
        .zip(stats.into_iter().chain(std::iter::repeat(None)))
        .map(|((shard, mut view), stats)| match stats {
            Some(stats) => {
                view.security = with_relay_security(&view.security, &stats);
                (shard, view, Some(media_stats(&stats)))
            }
            None => (shard, view, None),
        })
        .collect()
}

impl AdminService {
    fn info(&self, shard: usize, view: &CallView, stats: Option<MediaStats>) -> CallInfo {
        call_info(shard, view, &self.setup.clock, Instant::now(), stats)
    }

    pub(super) async fn calls_page(&self, page: PageRequest) -> ApiResult<CallPage> {
        let signalling = self.signalling()?;
        let mut views = signalling.calls().await.map_err(control_error)?;
        views.sort_by_key(|(shard, view)| (*shard, view.id));
        let after = match &page.cursor {
            Some(cursor) => Some(parse_call_id(cursor).ok_or_else(|| {
                ApiError::bad_request("cursor: not a cursor this list handed out")
            })?),
            None => None,
        };
        let limit = page.limit as usize;
        let mut chosen: Vec<(usize, CallView)> = views
            .into_iter()
            .filter(|(shard, view)| after.is_none_or(|after| (*shard, view.id) > after))
            .take(limit + 1)
            .collect();
        let more = chosen.len() > limit;
        chosen.truncate(limit);
        let next_cursor = more
            .then(|| {
                chosen
                    .last()
                    .map(|(shard, view)| crate::views::call_id(*shard, view.id))
            })
            .flatten();
        let items = with_stats(signalling, chosen)
            .await
            .into_iter()
            .map(|(shard, view, stats)| self.info(shard, &view, stats))
            .collect();
        Ok(CallPage { items, next_cursor })
    }

    fn call_address(&self, id: &str) -> ApiResult<(usize, u64)> {
        let signalling = self.signalling()?;
        parse_call_id(id)
            .filter(|(shard, _)| *shard < signalling.shards.len())
            .ok_or_else(|| ApiError::not_found(format!("call {id:?}")))
    }

    pub(super) async fn call(&self, id: &str) -> ApiResult<CallInfo> {
        let (shard, call) = self.call_address(id)?;
        let signalling = self.signalling()?;
        let view = signalling
            .ask(shard, |reply| ShardRequest::Call(call, reply))
            .await
            .map_err(control_error)?
            .ok_or_else(|| ApiError::not_found(format!("call {id:?}")))?;
        let (shard, view, stats) = with_stats(signalling, vec![(shard, view)])
            .await
            .pop()
            .ok_or_else(|| ApiError::internal("lost the call view"))?;
        Ok(self.info(shard, &view, stats))
    }

    pub(super) async fn end_call(&self, id: String, actor: Actor) -> ApiResult<CallInfo> {
        let (shard, call) = self.call_address(&id)?;
        let signalling = self.signalling()?;
        let view = signalling
            .ask(shard, |reply| ShardRequest::Terminate(call, reply))
            .await
            .map_err(control_error)?
            .ok_or_else(|| ApiError::not_found(format!("call {id:?}")))?;
        let info = self.info(shard, &view, None);
        let mut entry = AuditEntry::new(&change_of(&actor), "terminate_call", "call", &id);
        entry.before = Some(json!({
            "state": info.state,
            "caller": info.caller,
            "callee": info.callee,
            "trunk": info.trunk,
            "a_call_id": info.a.call_id,
            "b_call_id": info.b.call_id,
        }));
        self.store(move |store| store.append_audit(&entry)).await?;
        Ok(info)
    }

    pub(super) async fn registrations_page(
        &self,
        page: PageRequest,
    ) -> ApiResult<RegistrationPage> {
        let request = store_page(&page);
        let bindings = self
            .store(move |store| store.list_registrations(&request))
            .await?;
        Ok(RegistrationPage {
            items: bindings
                .items
                .into_iter()
                .map(convert::registration)
                .collect(),
            next_cursor: bindings.next_cursor,
        })
    }

    pub(super) async fn bans_page(&self, page: PageRequest) -> ApiResult<BanPage> {
        let request = store_page(&page);
        let bans = self.store(move |store| store.list_bans(&request)).await?;
        Ok(BanPage {
            items: bans.items.into_iter().map(convert::ban).collect(),
            next_cursor: bans.next_cursor,
        })
    }

    pub(super) async fn ban(&self, ban: NewBan, actor: Actor) -> ApiResult<Ban> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let now = self.setup.clock.unix_ms(Instant::now());
        let expires_at = ban.expires_in_secs.map(|seconds| {
            now.saturating_add(i64::try_from(seconds.saturating_mul(1_000)).unwrap_or(i64::MAX))
        });
        let duration = ban.expires_in_secs.map(Duration::from_secs);
        let new = StoreBan {
            source: ban.source,
            reason: ban.reason,
            expires_at,
        };
        let added = self
            .store(move |store| store.add_ban(&new, Some(&change)))
            .await?;
        self.tell_gate(&added.source, Some((added.reason.clone(), duration)))
            .await;
        Ok(convert::ban(added))
    }

    pub(super) async fn unban(&self, id: i64, actor: Actor) -> ApiResult<Ban> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let lifted = self
            .store(move |store| store.lift_ban_by_id(id, Some(&change)))
            .await?;
        self.tell_gate(&lifted.source, None).await;
        Ok(convert::ban(lifted))
    }

    /// Bans `source` in the admission gate (`Some(reason, duration)`) or lifts its ban
    /// (`None`); the store holds the ban already (or no longer).
    async fn tell_gate(&self, source: &str, ban: Option<(String, Option<Duration>)>) {
        let Some(security) = self.setup.status.security() else {
            return;
        };
        let Ok(network) = source.parse::<sbc_core::policy::Cidr>() else {
            tracing::warn!(%source, "a stored ban the gate cannot read");
            return;
        };
        let outcome = match ban {
            Some((reason, duration)) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let request = GateRequest::Ban(network, reason, duration, reply);
                match security.gate.send(GateInput::Request(request)).await {
                    Ok(()) => answer.await.map(|_| ()).map_err(|error| error.to_string()),
                    Err(error) => Err(error.to_string()),
                }
            }
            None => security
                .lift_ban(network)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%source, %error, "the admission gate did not take the ban change");
        }
    }

    pub(super) async fn cdrs_page(
        &self,
        filter: CdrFilter,
        page: PageRequest,
    ) -> ApiResult<CdrPage> {
        let filter = convert::cdr_filter(filter);
        let request = store_page(&page);
        let cdrs = self
            .reader(move |store| store.query_cdrs(&filter, &request))
            .await?;
        Ok(CdrPage {
            items: cdrs.items.into_iter().map(convert::cdr).collect(),
            next_cursor: cdrs.next_cursor,
        })
    }

    pub(super) async fn cdr_export(
        &self,
        filter: CdrFilter,
        format: ExportFormat,
    ) -> ApiResult<ByteStream> {
        let filter = convert::cdr_filter(filter);
        let format = match format {
            ExportFormat::Csv => crate::store::ExportFormat::Csv,
            ExportFormat::Jsonl => crate::store::ExportFormat::JsonLines,
        };
        // Opened here so that an unreadable store is an error status, not a cut body.
        let path = self.setup.store_path.clone();
        let reader = tokio::task::spawn_blocking(move || crate::store::Store::open_reader(&path))
            .await
            .map_err(|error| ApiError::internal(format!("store task: {error}")))?
            .map_err(convert::api_error)?;
        let (mut sink, stream) = admin_api::byte_channel();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = reader.export_cdrs(&filter, format, &mut sink) {
                tracing::warn!(%error, "CDR export ended early");
                sink.fail(std::io::Error::other(error.to_string()));
            }
        });
        Ok(stream)
    }

    pub(super) async fn audit_page(&self, page: PageRequest) -> ApiResult<AuditPage> {
        let request = store_page(&page);
        let records = self.reader(move |store| store.list_audit(&request)).await?;
        Ok(AuditPage {
            items: records.items.into_iter().map(convert::audit).collect(),
            next_cursor: records.next_cursor,
        })
    }

    pub(super) async fn audit_verdict(&self) -> ApiResult<AuditVerdict> {
        let verdict = self.reader(|store| store.verify_audit()).await?;
        Ok(convert::verdict(verdict))
    }

    pub(super) async fn tls_reload(&self, actor: Actor) -> ApiResult<TlsReloaded> {
        let _changing = self.changes.lock().await;
        let signalling = Arc::clone(self.signalling()?);
        let admin_tls = self.setup.admin_tls.clone();
        let reloaded = tokio::task::spawn_blocking(move || -> ApiResult<bool> {
            signalling
                .transport
                .reload_tls()
                .map_err(|error| ApiError::invalid("sip.listen.certificate", error))?;
            if let Some(tls) = &admin_tls {
                tls.reload()
                    .map_err(|error| ApiError::invalid("admin.tls.certificate", error))?;
            }
            Ok(admin_tls.is_some())
        })
        .await
        .map_err(|error| ApiError::internal(format!("reload task: {error}")))??;
        let outcome = TlsReloaded {
            sip_listeners: self
                .setup
                .config
                .sip
                .listen
                .iter()
                .filter(|listener| listener.transport == crate::config::TransportKind::Tls)
                .count() as u64,
            admin_listener: reloaded,
        };
        let mut entry = AuditEntry::new(&change_of(&actor), "tls_reload", "tls", "all");
        entry.after = Some(json!({
            "sip_listeners": outcome.sip_listeners,
            "admin_listener": outcome.admin_listener,
        }));
        self.store(move |store| store.append_audit(&entry)).await?;
        tracing::info!(?outcome, "TLS certificates reloaded");
        Ok(outcome)
    }

    pub(super) async fn drain(&self) -> ApiResult<DrainState> {
        let signalling = self.signalling()?;
        let snapshots = signalling.snapshots().await.map_err(control_error)?;
        Ok(DrainState {
            draining: self.draining.load(Ordering::Relaxed),
            active_calls: snapshots.iter().map(|shard| shard.calls as u64).sum(),
        })
    }

    pub(super) async fn change_drain(&self, draining: bool, actor: Actor) -> ApiResult<DrainState> {
        let _changing = self.changes.lock().await;
        let signalling = self.signalling()?;
        let before = self.draining.load(Ordering::Relaxed);
        let calls = signalling
            .set_draining(draining)
            .await
            .map_err(control_error)?;
        self.draining.store(draining, Ordering::Relaxed);
        if draining {
            self.setup.status.mark_not_ready("draining");
        } else {
            self.setup.status.mark_ready();
        }
        let mut entry = AuditEntry::new(&change_of(&actor), "drain", "appliance", "drain");
        entry.before = Some(json!({ "draining": before }));
        entry.after = Some(json!({ "draining": draining, "active_calls": calls }));
        self.store(move |store| store.append_audit(&entry)).await?;
        tracing::warn!(
            draining,
            active_calls = calls,
            "drain changed through the admin API"
        );
        Ok(DrainState {
            draining,
            active_calls: calls as u64,
        })
    }

    pub(super) async fn metrics_text(&self) -> ApiResult<String> {
        let signalling = self.signalling()?;
        let shards = signalling.snapshots().await.map_err(control_error)?;
        let relay = signalling.relay.clone();
        let (workers, (pairs, free), sessions) = tokio::task::spawn_blocking(move || {
            (
                relay.worker_stats().unwrap_or_default(),
                relay.port_pairs(),
                relay.session_count(),
            )
        })
        .await
        .map_err(|error| ApiError::internal(format!("relay task: {error}")))?;
        let registrations = self.store(|store| store.count_registrations()).await?;
        let (gate, security) = match self.setup.status.security() {
            Some(security) => (security.gate_stats().await, security.figures()),
            None => (None, Default::default()),
        };
        let counters = signalling.transport.counters();
        let cdr = &self.setup.cdr;
        let scrape = Scrape {
            shards,
            transport: TransportFigures {
                messages_received: counters.messages_received(),
                messages_sent: counters.messages_sent(),
                drops: counters
                    .all_drops()
                    .map(|(reason, count)| (reason.name(), count))
                    .collect(),
                connections_open: signalling.transport.open_connections() as u64,
                connections_accepted: counters.connections_accepted(),
                connections_opened: counters.connections_opened(),
                tls_handshakes_accepted: counters.tls_handshakes_accepted(),
                tls_handshakes_connected: counters.tls_handshakes_connected(),
                keepalive_pings_answered: counters.keepalive_pings_answered(),
            },
            relay: RelayFigures {
                workers,
                port_pairs_total: pairs as u64,
                port_pairs_free: free as u64,
                sessions: sessions as u64,
            },
            uptime_seconds: signalling.started.elapsed().as_secs_f64(),
            draining: !matches!(self.setup.status.readiness(), admin_api::Readiness::Ready),
            registrations,
            gate,
            security,
            cdr: CdrFigures {
                written: cdr.written.load(Ordering::Relaxed),
                dropped: cdr.dropped.load(Ordering::Relaxed),
                write_errors: cdr.write_errors.load(Ordering::Relaxed),
                without_media: cdr.without_media.load(Ordering::Relaxed),
            },
        };
        metrics::encode(&scrape).map_err(|error| ApiError::internal(format!("metrics: {error}")))
    }
}
