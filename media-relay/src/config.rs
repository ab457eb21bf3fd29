//! Relay configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RelayError;

/// Most streams (SDP `m=` lines) one session may hold.
pub const DEFAULT_MAX_STREAMS_PER_SESSION: usize = 16;

/// How the relay is set up. Every field has a default suitable for the loopback quickstart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// The address every relay socket binds to and that is offered in SDP.
    pub address: IpAddr,
    /// Lowest port of the range (rounded up to even: RTP is even, RTCP is RTP + 1).
    pub port_min: u16,
    /// Highest port of the range (the last pair must fit: its RTCP port is at most this).
    pub port_max: u16,
    /// Number of worker threads; 0 = one per available core.
    pub workers: usize,
    /// A session with no accepted packet on any leg for this long raises
    /// [`RelayEvent::Inactive`](crate::RelayEvent::Inactive) once. Zero disables the check.
    pub inactivity_timeout: Duration,
    /// Most streams one session may hold.
    pub max_streams_per_session: usize,
    /// Control requests (update, statistics …) a worker may have queued before further ones
    /// are refused with [`RelayError::WorkerBusy`]. Releases are never refused.
    pub command_queue: usize,
    /// Socket receive buffer size in bytes (0 = the system default).
    pub socket_receive_buffer: usize,
    /// Send runs of equal-sized datagrams from one socket to one destination in one system
    /// call with UDP GSO (the default); when off, every run of datagrams from one socket
    /// leaves with one sendmmsg instead. Turn off for network drivers that mishandle
    /// segmentation offload (quinn-udp also stops using GSO after the first such error).
    pub gso: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 20000,
            port_max: 29999,
            workers: 0,
            inactivity_timeout: Duration::from_secs(60),
            max_streams_per_session: DEFAULT_MAX_STREAMS_PER_SESSION,
            command_queue: 1024,
            socket_receive_buffer: 0,
            gso: true,
        }
    }
}

impl RelayConfig {
    /// Checks the settings that would make the relay unusable.
    pub fn validate(&self) -> Result<(), RelayError> {
        if self.address.is_unspecified() || self.address.is_multicast() {
            return Err(RelayError::InvalidConfig(format!(
                "address {} must be a unicast address the peers can reach",
                self.address
            )));
        }
        if self.port_min == 0 || self.port_max < self.port_min {
            return Err(RelayError::InvalidConfig(format!(
                "port range {}-{} is empty",
                self.port_min, self.port_max
            )));
        }
        if self.pair_count() < 2 {
            return Err(RelayError::InvalidConfig(format!(
                "port range {}-{} holds fewer than two RTP/RTCP pairs (one session needs two)",
                self.port_min, self.port_max
            )));
        }
        if self.max_streams_per_session == 0 {
            return Err(RelayError::InvalidConfig(
                "max_streams_per_session must be at least 1".into(),
            ));
        }
        if self.command_queue == 0 {
            return Err(RelayError::InvalidConfig(
                "command_queue must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The first (even) RTP port of the range.
    pub fn first_rtp_port(&self) -> u32 {
        let min = u32::from(self.port_min);
        min + (min % 2)
    }

    /// How many RTP/RTCP port pairs the range holds.
    pub fn pair_count(&self) -> usize {
        let first = self.first_rtp_port();
        let max = u32::from(self.port_max);
        if max < first + 1 {
            0
        } else {
            (max - first).div_ceil(2) as usize
        }
    }

    /// The number of workers actually started.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
