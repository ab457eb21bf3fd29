//! What the B2BUA tells about calls: one [`CallRecord`] per call attempt when it ends (the
//! driver drains them with [`B2bua::poll_call_record`] and writes CDRs), and a
//! [`CallView`] of each call in progress for the admin side. Both carry the call's
//! [`SecuritySummary`].
//!
//! Times are the injected `Instant`s; the driver, which knows the wall clock, converts
//! them. Records wait in a bounded queue ([`B2buaConfig::call_records`]); one that finds
//! it full is dropped and counted (`call_record_overflow`), never blocking the call path.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::call::{Call, CallRef, Phase};
use super::summary::{IdentityVerdict, MediaProtection, SecuritySummary, SignallingProtection};
use super::{B2bua, count};
use crate::media::{Leg, MediaSessionId};
use crate::net::Protocol;
use crate::sdp::SessionDescription;
use crate::sip::{Request, StatusCode, Transport};
use crate::transaction::{Peer, Reliability, TransactionLayer};

/// Codecs listed per leg at most (the rest of a long offer is left out of views).
const MAX_CODECS: usize = 16;
/// Characters of a caller or callee URI kept in a record.
const MAX_PARTY_CHARS: usize = 256;

/// One ended call attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The caller's INVITE arrived.
    pub started: Instant,
    /// The first provisional response (18x) came back from the callee.
    pub progress: Option<Instant>,
    /// The callee answered (2xx).
    pub answered: Option<Instant>,
    /// The call ended (or was refused).
    pub ended: Instant,
    /// The caller's From URI.
    pub caller: String,
    /// The caller's Request-URI.
    pub callee: String,
    /// The trunk the call was routed to (`None`: refused before routing, or no route).
    pub trunk: Option<String>,
    /// Call-ID of the caller's leg.
    pub a_call_id: String,
    /// Call-ID of our leg toward the callee, when one was created.
    pub b_call_id: Option<String>,
    /// Where the caller's INVITE came from, and over what.
    pub source: SocketAddr,
    pub source_protocol: Protocol,
    /// The last target the call was sent to, and over what.
    pub destination: Option<(SocketAddr, Protocol)>,
    /// The final status the caller got (200 for an answered call).
    pub status: u16,
    /// How the call ended: `bye_from_a`, `bye_from_b`, `cancelled`, `failed`,
    /// `media_timeout`, `admin_terminated`, or the reason a new call was refused
    /// (`no_route`, `call_limit`, `draining` …).
    pub end_reason: &'static str,
    /// The relay session that carried its media (ask the relay for its statistics before
    /// the session is forgotten).
    pub media_session: Option<MediaSessionId>,
    /// Codecs of the SDP last sent to each leg (`PCMU/8000` …).
    pub codecs_a: Vec<String>,
    pub codecs_b: Vec<String>,
    pub security: SecuritySummary,
}

/// Where a call in progress stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Sent on; no provisional response from the callee yet.
    Trying,
    /// The callee sent a provisional response (ringing or early media).
    Early,
    /// Answered.
    Answered,
    /// The caller has its final answer; the callee's side is being torn down.
    Ending,
}

impl CallState {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            CallState::Trying => "trying",
            CallState::Early => "early",
            CallState::Answered => "answered",
            CallState::Ending => "ending",
        }
    }
}

/// One leg of a call in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegView {
    pub call_id: String,
    /// Our tag on this leg.
    pub local_tag: String,
    /// The peer's tag, once known.
    pub remote_tag: Option<String>,
    /// Where this leg's signalling goes.
    pub peer: SocketAddr,
    pub protocol: Protocol,
    /// The relay address this leg's peer sends media to (first stream).
    pub relay: Option<SocketAddr>,
    /// Codecs of the SDP last sent to this leg.
    pub codecs: Vec<String>,
}

/// A call in progress, as the admin side sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    /// Names the call inside its B2BUA (never reused); [`B2bua::terminate`] takes it.
    pub id: u64,
    pub state: CallState,
    pub started: Instant,
    pub progress: Option<Instant>,
    pub answered: Option<Instant>,
    pub caller: String,
    pub callee: String,
    pub trunk: String,
    pub a: LegView,
    pub b: LegView,
    pub media_session: Option<MediaSessionId>,
    pub security: SecuritySummary,
}

/// What a call keeps for its record and views.
#[derive(Clone, Debug)]
pub(crate) struct CallLog {
    pub started: Instant,
    pub progress: Option<Instant>,
    pub answered: Option<Instant>,
    /// The final status sent to the caller, once sent.
    pub final_status: Option<StatusCode>,
    pub caller: String,
    pub callee: String,
    pub trunk: String,
    /// Parts of the summary that cannot be read off the call's state (media protection
    /// and the identity verdict, set by the layers that decide them).
    pub security: SecuritySummary,
    /// The caller presented a TLS client certificate that verified.
    pub caller_certificate_verified: bool,
}

impl CallLog {
    pub(crate) fn new(now: Instant, request: &Request, source: &Peer, trunk: String) -> CallLog {
        let protocol = protocol_of(request, source);
        CallLog {
            started: now,
            progress: None,
            answered: None,
            final_status: None,
            caller: caller_of(request),
            callee: callee_of(request),
            trunk,
            security: SecuritySummary::new(protocol, None),
            caller_certificate_verified: false,
        }
    }

    /// The callee sent a provisional response.
    pub(crate) fn note_progress(&mut self, now: Instant) {
        self.progress.get_or_insert(now);
    }
}

/// The caller's transport: TLS when its top Via says so, else by the flow's reliability.
fn protocol_of(request: &Request, source: &Peer) -> Protocol {
    match request.headers.top_via().map(|via| via.transport) {
        Ok(Transport::Udp) => Protocol::Udp,
        Ok(Transport::Tls | Transport::Wss) => Protocol::Tls,
        _ if source.reliability == Reliability::Reliable => Protocol::Tcp,
        _ => Protocol::Udp,
    }
}

fn bounded(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_PARTY_CHARS) {
        text.truncate(cut);
    }
    text
}

fn caller_of(request: &Request) -> String {
    request
        .headers
        .from()
        .map(|from| bounded(from.uri.to_string()))
        .unwrap_or_default()
}

fn callee_of(request: &Request) -> String {
    bounded(request.uri.to_string())
}

fn text(bytes: &[u8]) -> String {
    bounded(String::from_utf8_lossy(bytes).into_owned())
}

/// The codecs an SDP lists: `name/rate` from `a=rtpmap`, the static payload types by
/// name, others by number; disabled streams (port 0) left out.
pub(crate) fn codecs_of(sdp: &SessionDescription) -> Vec<String> {
    let mut codecs = Vec::new();
    for section in sdp.media.iter().filter(|section| section.media.port != 0) {
        for format in &section.media.formats {
            if codecs.len() >= MAX_CODECS {
                return codecs;
            }
            let mapped = section.lines.attributes_named("rtpmap").find_map(|rtpmap| {
                let value = rtpmap.value.as_ref()?;
                let mut parts = value.splitn(2, |&b| b == b' ');
                (parts.next()? == format.as_bytes()).then(|| text(parts.next().unwrap_or(b"")))
            });
            let name = mapped
                .or_else(|| static_payload_name(format).map(str::to_owned))
                .unwrap_or_else(|| format.to_string());
            if !codecs.contains(&name) {
                codecs.push(name);
            }
        }
    }
    codecs
}

/// RFC 3551 §6 static payload types that are still met.
fn static_payload_name(format: &str) -> Option<&'static str> {
    Some(match format {
        "0" => "PCMU/8000",
        "3" => "GSM/8000",
        "4" => "G723/8000",
        "8" => "PCMA/8000",
        "9" => "G722/8000",
        "13" => "CN/8000",
        "18" => "G729/8000",
        _ => return None,
    })
}

impl Call {
    fn codecs_toward(&self, leg: Leg) -> Vec<String> {
        let Some(media) = &self.media else {
            return Vec::new();
        };
        let origin = match leg {
            Leg::A => &media.origin_a,
            Leg::B => &media.origin_b,
        };
        origin.last_sent().map(codecs_of).unwrap_or_default()
    }

    /// The summary as it stands: signalling read off the dialogs (the caller's TLS
    /// certificate as the transport verified it; the callee's server certificate is
    /// verified whenever we opened the connection, but not on a registered user's own
    /// flow, which the user opened), media from the call's relay session unless a layer
    /// has said more.
    pub(crate) fn security(&self) -> SecuritySummary {
        let mut summary = self.log.security.clone();
        summary.a.signalling =
            SignallingProtection::over(self.a.protocol, self.log.caller_certificate_verified);
        let we_connected = self.b.peer.flow.is_none();
        summary.b.signalling = SignallingProtection::over(self.b.protocol, we_connected);
        for (side, leg) in [(Leg::A, &mut summary.a), (Leg::B, &mut summary.b)] {
            if leg.media == MediaProtection::NoMedia
                && let Some(media) = &self.media
            {
                leg.media = media
                    .security
                    .protection(side)
                    .unwrap_or(MediaProtection::Plain);
            }
        }
        summary
    }

    fn state(&self) -> CallState {
        match &self.phase {
            Phase::Setup { attempt, .. } if attempt.provisional => CallState::Early,
            Phase::Setup { .. } => CallState::Trying,
            Phase::Confirmed => CallState::Answered,
            Phase::Cancelling { .. } | Phase::Ended => CallState::Ending,
        }
    }

    fn leg_view(&self, leg: Leg) -> LegView {
        let dialog = self.leg(leg);
        LegView {
            call_id: text(&dialog.call_id),
            local_tag: text(&dialog.local_tag),
            remote_tag: dialog.remote_tag().map(|tag| text(tag)),
            peer: dialog.peer.remote,
            protocol: dialog.protocol,
            relay: self
                .media
                .as_ref()
                .and_then(|media| media.streams.first())
                .map(|stream| stream.toward(leg).rtp),
            codecs: self.codecs_toward(leg),
        }
    }
}

/// The queue of records waiting for the driver.
#[derive(Debug, Default)]
pub(crate) struct RecordQueue {
    records: VecDeque<CallRecord>,
}

impl B2bua {
    /// The next record of an ended call attempt, oldest first.
    pub fn poll_call_record(&mut self) -> Option<CallRecord> {
        self.records.records.pop_front()
    }

    /// Every call in progress (calls being torn down included), by id.
    pub fn call_views(&self) -> Vec<CallView> {
        let mut views: Vec<CallView> = self
            .calls
            .iter()
            .filter(|(_, call)| !call.is_ended())
            .map(|(&call_ref, call)| view_of(call_ref, call))
            .collect();
        views.sort_by_key(|view| view.id);
        views
    }

    /// One call in progress.
    pub fn call_view(&self, id: u64) -> Option<CallView> {
        let call_ref = CallRef(id);
        self.calls
            .get(&call_ref)
            .filter(|call| !call.is_ended())
            .map(|call| view_of(call_ref, call))
    }

    /// Ends a call on an operator's order: an answered call with BYE on both legs, a call
    /// still being set up with `487` to the caller and CANCEL to the callee. Returns false
    /// when no such call is in progress.
    pub fn terminate(&mut self, now: Instant, layer: &mut TransactionLayer, id: u64) -> bool {
        let call_ref = CallRef(id);
        if !self
            .calls
            .get(&call_ref)
            .is_some_and(|call| matches!(call.phase, Phase::Setup { .. } | Phase::Confirmed))
        {
            return false;
        }
        self.with_call(call_ref, |b2bua, call| match call.phase {
            Phase::Confirmed => b2bua.hang_up(now, layer, call_ref, call, "admin_terminated"),
            Phase::Setup { .. } => b2bua.abandon_setup(
                now,
                layer,
                call_ref,
                call,
                StatusCode::REQUEST_TERMINATED,
                "admin_terminated",
            ),
            Phase::Cancelling { .. } | Phase::Ended => {}
        });
        true
    }

    /// While draining, new calls are refused with `503` (reason `draining`); calls in
    /// progress go on.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Whether new calls are refused.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Queues the record of a call that ended `how` (called once per call, when it stops
    /// counting toward the call limit).
    pub(super) fn record_call(&mut self, now: Instant, call: &Call, how: &'static str) {
        if self.config.call_records == 0 {
            return;
        }
        let status = match (call.log.final_status, call.log.answered) {
            (Some(status), _) => status.as_u16(),
            (None, Some(_)) => 200,
            (None, None) => StatusCode::REQUEST_TERMINATED.as_u16(),
        };
        let record = CallRecord {
            started: call.log.started,
            progress: call.log.progress,
            answered: call.log.answered,
            ended: now,
            caller: call.log.caller.clone(),
            callee: call.log.callee.clone(),
            trunk: Some(call.log.trunk.clone()),
            a_call_id: text(&call.a.call_id),
            b_call_id: Some(text(&call.b.call_id)),
            source: call.a.peer.remote,
            source_protocol: call.a.protocol,
            destination: Some((call.b.peer.remote, call.b.protocol)),
            status,
            end_reason: how,
            media_session: call.media.as_ref().map(|media| media.session),
            codecs_a: call.codecs_toward(Leg::A),
            codecs_b: call.codecs_toward(Leg::B),
            security: call.security(),
        };
        self.push_record(record);
    }

    /// Queues the record of a new call refused with `status` before it was set up.
    pub(super) fn record_refusal(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Peer,
        status: StatusCode,
        reason: &'static str,
    ) {
        self.record_refusal_with(
            now,
            request,
            source,
            status,
            reason,
            IdentityVerdict::NotChecked,
        );
    }

    /// [`B2bua::record_refusal`] with what became of the caller's identity (a call
    /// refused because its Identity did not verify).
    pub(super) fn record_refusal_with(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Peer,
        status: StatusCode,
        reason: &'static str,
        identity: IdentityVerdict,
    ) {
        if self.config.call_records == 0 {
            return;
        }
        let log = CallLog::new(now, request, source, String::new());
        let record = CallRecord {
            started: now,
            progress: None,
            answered: None,
            ended: now,
            caller: log.caller,
            callee: log.callee,
            trunk: None,
            a_call_id: request
                .headers
                .call_id()
                .map(|id| text(id))
                .unwrap_or_default(),
            b_call_id: None,
            source: source.remote,
            source_protocol: log.security.a.signalling.protocol,
            destination: None,
            status: status.as_u16(),
            end_reason: reason,
            media_session: None,
            codecs_a: Vec::new(),
            codecs_b: Vec::new(),
            security: SecuritySummary {
                identity,
                ..SecuritySummary::new(log.security.a.signalling.protocol, None)
            },
        };
        self.push_record(record);
    }

    fn push_record(&mut self, record: CallRecord) {
        if self.records.records.len() >= self.config.call_records {
            count(&mut self.stats.dropped, "call_record_overflow");
            return;
        }
        self.records.records.push_back(record);
    }
}

fn view_of(call_ref: CallRef, call: &Call) -> CallView {
    CallView {
        id: call_ref.0,
        state: call.state(),
        started: call.log.started,
        progress: call.log.progress,
        answered: call.log.answered,
        caller: call.log.caller.clone(),
        callee: call.log.callee.clone(),
        trunk: call.log.trunk.clone(),
        a: call.leg_view(Leg::A),
        b: call.leg_view(Leg::B),
        media_session: call.media.as_ref().map(|media| media.session),
        security: call.security(),
    }
}
