//! The transaction timers of RFC 3261 §17 and Appendix A, as amended by RFC 6026, and the
//! table that gives each one its duration.

use std::fmt;
use std::time::Duration;

/// Whether a hop delivers messages itself (TCP, TLS, SCTP, WebSocket) or may lose them
/// (UDP). Retransmission timers run only on unreliable hops, and the absorption timers
/// D, I, J and K are zero on reliable ones (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1,
/// §17.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reliability {
    Reliable,
    Unreliable,
}

/// A transaction timer. Letters are those of RFC 3261 Appendix A and RFC 6026 §8.11;
/// [`Timer::Trying`] is the 200 ms rule of RFC 3261 §17.2.1 (an INVITE server transaction
/// sends `100 Trying` itself when its TU has not answered in time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmission, client, unreliable only (starts at T1, doubles).
    A,
    /// INVITE transaction timeout, client (64·T1).
    B,
    /// INVITE provisional timeout, client (RFC 3261 §16.6 item 11: more than 3 minutes).
    C,
    /// Wait for response retransmissions after a non-2xx final, INVITE client.
    D,
    /// Non-INVITE request retransmission, client, unreliable only (T1 doubling up to T2).
    E,
    /// Non-INVITE transaction timeout, client (64·T1).
    F,
    /// INVITE final response retransmission, server, unreliable only (T1 doubling up to
    /// T2).
    G,
    /// Wait for ACK, INVITE server (64·T1).
    H,
    /// Absorb ACK retransmissions, INVITE server (T4, zero on reliable hops).
    I,
    /// Absorb request retransmissions, non-INVITE server (64·T1, zero on reliable hops).
    J,
    /// Absorb response retransmissions, non-INVITE client (T4, zero on reliable hops).
    K,
    /// Absorb INVITE retransmissions after a 2xx, INVITE server, RFC 6026 (64·T1).
    L,
    /// Pass 2xx retransmissions to the TU after the first, INVITE client, RFC 6026 (64·T1).
    M,
    /// Send `100 Trying` when the TU has not answered an INVITE (200 ms, RFC 3261 §17.2.1).
    Trying,
    /// Not in RFC 3261: a non-INVITE server transaction whose TU has sent no final response
    /// after 64·T1 ends (the client's Timer F has fired by then, so no answer can help),
    /// so a TU that never answers cannot hold a transaction slot forever.
    Unanswered,
    /// Not in RFC 3261: an INVITE server transaction whose TU has sent no final response
    /// after [`TimerConfig::invite_answer_limit`] ends, for the same reason.
    UnansweredInvite,
}

impl Timer {
    /// Every timer, in declaration order.
    pub const ALL: [Timer; 16] = [
        Timer::A,
        Timer::B,
        Timer::C,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Trying,
        Timer::Unanswered,
        Timer::UnansweredInvite,
    ];

    /// A stable lower-case name for logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Timer::A => "timer_a",
            Timer::B => "timer_b",
            Timer::C => "timer_c",
            Timer::D => "timer_d",
            Timer::E => "timer_e",
            Timer::F => "timer_f",
            Timer::G => "timer_g",
            Timer::H => "timer_h",
            Timer::I => "timer_i",
            Timer::J => "timer_j",
            Timer::K => "timer_k",
            Timer::L => "timer_l",
            Timer::M => "timer_m",
            Timer::Trying => "timer_trying",
            Timer::Unanswered => "timer_unanswered",
            Timer::UnansweredInvite => "timer_unanswered_invite",
        }
    }

    /// Whether this timer paces retransmissions (and so runs only on unreliable hops).
    pub const fn is_retransmission(self) -> bool {
        matches!(self, Timer::A | Timer::E | Timer::G)
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The base timer values of RFC 3261 §17 and Appendix A, from which every timer is
/// computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses
    /// (default 4 s).
    pub t2: Duration,
    /// Maximum time a message remains in the network (default 5 s).
    pub t4: Duration,
    /// Timer C: how long an INVITE client transaction waits in `Proceeding` for a final
    /// response before telling its TU to cancel (RFC 3261 §16.6 item 11 asks for more than
    /// 3 minutes; default 181 s). `None` disables it, as RFC 3261 allows for a UAC.
    pub timer_c: Option<Duration>,
    /// Delay before an INVITE server transaction sends `100 Trying` on its own (default
    /// 200 ms, RFC 3261 §17.2.1).
    pub trying_delay: Duration,
    /// How long an INVITE server transaction waits for its TU's final response before it
    /// gives up and frees its slot (default 300 s). The TU is expected to answer well
    /// before: this only bounds a TU that never does.
    pub invite_answer_limit: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_c: Some(Duration::from_secs(181)),
            trying_delay: Duration::from_millis(200),
            invite_answer_limit: Duration::from_secs(300),
        }
    }
}

/// Minimum Timer D on unreliable transports (RFC 3261 §17.1.1.2: "at least 32 seconds").
const TIMER_D_MINIMUM: Duration = Duration::from_secs(32);

impl TimerConfig {
    /// 64·T1: the transaction timeouts B, F, H and the absorption windows J, L, M.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The table of timer durations. For the retransmission timers A, E and G this is the
    /// first interval; [`TimerConfig::next_interval`] gives the following ones. Timers that
    /// do not run on the given transport (retransmissions on a reliable hop, Timer C when
    /// disabled) have no duration; the absorption timers D, I, J and K are zero on reliable
    /// hops, which means "terminate at once".
    pub fn duration(&self, timer: Timer, reliability: Reliability) -> Option<Duration> {
        let reliable = reliability == Reliability::Reliable;
        let absorb = |unreliable: Duration| {
            if reliable { Duration::ZERO } else { unreliable }
        };
        match timer {
            Timer::A | Timer::E | Timer::G if reliable => None,
            Timer::A | Timer::E | Timer::G => Some(self.t1),
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M | Timer::Unanswered => {
                Some(self.transaction_timeout())
            }
            Timer::C => self.timer_c,
            Timer::D => Some(absorb(TIMER_D_MINIMUM.max(self.transaction_timeout()))),
            Timer::I | Timer::K => Some(absorb(self.t4)),
            Timer::J => Some(absorb(self.transaction_timeout())),
            Timer::Trying => Some(self.trying_delay),
            Timer::UnansweredInvite => Some(self.invite_answer_limit),
        }
    }

    /// The interval after `current` for a retransmission timer: Timer A doubles without
    /// bound (RFC 3261 §17.1.1.2); E and G double up to T2 (§17.1.2.2, §17.2.1).
    pub fn next_interval(&self, timer: Timer, current: Duration) -> Duration {
        let doubled = current.saturating_mul(2);
        match timer {
            Timer::A => doubled,
            _ => doubled.min(self.t2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_rfc_3261_appendix_a() {
        let config = TimerConfig::default();
        let udp = |t| config.duration(t, Reliability::Unreliable);
        let tcp = |t| config.duration(t, Reliability::Reliable);
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(udp(Timer::A), ms(500));
        assert_eq!(tcp(Timer::A), None);
        assert_eq!(udp(Timer::B), ms(32_000));
        assert_eq!(udp(Timer::D), ms(32_000));
        assert_eq!(tcp(Timer::D), ms(0));
        assert_eq!(udp(Timer::F), ms(32_000));
        assert_eq!(udp(Timer::H), ms(32_000));
        assert_eq!(udp(Timer::I), ms(5_000));
        assert_eq!(tcp(Timer::I), ms(0));
        assert_eq!(udp(Timer::J), ms(32_000));
        assert_eq!(tcp(Timer::J), ms(0));
        assert_eq!(udp(Timer::K), ms(5_000));
        assert_eq!(tcp(Timer::K), ms(0));
        assert_eq!(tcp(Timer::L), ms(32_000));
        assert_eq!(tcp(Timer::M), ms(32_000));
        assert_eq!(udp(Timer::Trying), ms(200));
        assert_eq!(tcp(Timer::Unanswered), ms(32_000));
        assert_eq!(tcp(Timer::UnansweredInvite), ms(300_000));
    }

    #[test]
    fn timer_d_is_never_below_32_seconds() {
        let config = TimerConfig {
            t1: Duration::from_millis(10),
            ..TimerConfig::default()
        };
        assert_eq!(
            config.duration(Timer::D, Reliability::Unreliable),
            Some(Duration::from_secs(32))
        );
    }

    #[test]
    fn retransmission_intervals_double_and_cap() {
        let config = TimerConfig::default();
        let mut e = Duration::from_millis(500);
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(e.as_millis());
            e = config.next_interval(Timer::E, e);
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 4000, 4000]);
        let a = config.next_interval(Timer::A, Duration::from_secs(4));
        assert_eq!(a, Duration::from_secs(8));
    }
}
