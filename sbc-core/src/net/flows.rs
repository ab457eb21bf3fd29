//! The table of open connections: their write queues, the index used to reuse a
//! connection for a destination, and the counts behind the connection limits.
//!
//! Every entry belongs to a [`ConnectionSlot`] held by the connection's task; dropping the
//! slot (however the task ends) removes the entry and releases the counts, so the table
//! never outlives or outgrows the connections. Locks are held for a few map operations.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{DropReason, Limits, Protocol};

/// What a connection is reused for: the same protocol, remote address and (for TLS) the
/// server identity it was verified against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionKey {
    pub protocol: Protocol,
    pub remote: SocketAddr,
    pub server_name: Option<String>,
}

#[derive(Debug)]
struct FlowEntry {
    writer: mpsc::Sender<Bytes>,
    key: Option<ConnectionKey>,
}

#[derive(Debug, Default)]
struct Tables {
    next_id: u64,
    flows: HashMap<u64, FlowEntry>,
    by_key: HashMap<ConnectionKey, u64>,
    inbound_per_ip: HashMap<IpAddr, usize>,
    inbound_total: usize,
    outbound_total: usize,
}

#[derive(Debug, Default)]
pub(crate) struct FlowTable {
    tables: Mutex<Tables>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Accepted: counts against the total and per-IP limits.
    Inbound(IpAddr),
    /// Opened by us: counts against the outbound limit.
    Outbound,
}

/// A place in the table, reserved before a connection is set up (so handshakes count
/// against the limits) and released when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    table: Arc<FlowTable>,
    direction: Direction,
    id: u64,
}

impl FlowTable {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all further connections would.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a slot for an accepted connection from `ip`, or says which limit refuses it.
    pub fn reserve_inbound(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &Limits,
    ) -> Result<ConnectionSlot, DropReason> {
        let mut tables = self.lock();
        if tables.inbound_total >= limits.max_connections {
            return Err(DropReason::ConnectionLimitTotal);
        }
        let from_ip = tables.inbound_per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.max_connections_per_ip {
            return Err(DropReason::ConnectionLimitPerIp);
        }
        tables.inbound_total += 1;
        tables.inbound_per_ip.insert(ip, from_ip + 1);
        Ok(self.new_slot(&mut tables, Direction::Inbound(ip)))
    }

    /// Reserves a slot for a connection we open.
    pub fn reserve_outbound(self: &Arc<Self>, limits: &Limits) -> Option<ConnectionSlot> {
        let mut tables = self.lock();
        if tables.outbound_total >= limits.max_outbound_connections {
            return None;
        }
        tables.outbound_total += 1;
        Some(self.new_slot(&mut tables, Direction::Outbound))
    }

    fn new_slot(self: &Arc<Self>, tables: &mut Tables, direction: Direction) -> ConnectionSlot {
        tables.next_id += 1;
        ConnectionSlot {
            table: Arc::clone(self),
            direction,
            id: tables.next_id,
        }
    }

    /// The write queue of a connection, if it is still open.
    pub fn writer(&self, id: u64) -> Option<mpsc::Sender<Bytes>> {
        self.lock().flows.get(&id).map(|entry| entry.writer.clone())
    }

    /// An open connection usable for `key`.
    pub fn find(&self, key: &ConnectionKey) -> Option<(u64, mpsc::Sender<Bytes>)> {
        let tables = self.lock();
        let id = *tables.by_key.get(key)?;
        let entry = tables.flows.get(&id)?;
        Some((id, entry.writer.clone()))
    }

    /// Connections open now, inbound and outbound.
    pub fn open_connections(&self) -> usize {
        let tables = self.lock();
        tables.inbound_total + tables.outbound_total
    }
}

impl ConnectionSlot {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Makes the connection reachable for sending, reusable for `key` when given (the most
    /// recent connection for a key wins).
    pub fn register(&self, writer: mpsc::Sender<Bytes>, key: Option<ConnectionKey>) {
        let mut tables = self.table.lock();
        if let Some(key) = &key {
            tables.by_key.insert(key.clone(), self.id);
        }
        tables.flows.insert(self.id, FlowEntry { writer, key });
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut tables = self.table.lock();
        if let Some(entry) = tables.flows.remove(&self.id)
            && let Some(key) = entry.key
            && tables.by_key.get(&key) == Some(&self.id)
        {
            tables.by_key.remove(&key);
        }
        match self.direction {
            Direction::Inbound(ip) => {
                tables.inbound_total = tables.inbound_total.saturating_sub(1);
                let remaining = tables
                    .inbound_per_ip
                    .get(&ip)
                    .map_or(0, |n| n.saturating_sub(1));
                if remaining == 0 {
                    tables.inbound_per_ip.remove(&ip);
                } else {
                    tables.inbound_per_ip.insert(ip, remaining);
                }
            }
            Direction::Outbound => {
                tables.outbound_total = tables.outbound_total.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_and_released_on_drop() {
        let table = Arc::new(FlowTable::default());
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = table.reserve_inbound(a, &limits);
        let second = table.reserve_inbound(a, &limits);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(
            table.reserve_inbound(a, &limits).err(),
            Some(DropReason::ConnectionLimitPerIp)
        );
        let third = table.reserve_inbound(b, &limits);
        assert!(third.is_ok());
        assert_eq!(
            table.reserve_inbound(b, &limits).err(),
            Some(DropReason::ConnectionLimitTotal)
        );
        drop(first);
        assert!(table.reserve_inbound(a, &limits).is_ok());
        drop((second, third));
        assert_eq!(table.open_connections(), 0);
        assert!(table.lock().inbound_per_ip.is_empty());
    }

    #[test]
    fn registered_connection_is_found_by_key_until_dropped() {
        let table = Arc::new(FlowTable::default());
        let key = ConnectionKey {
            protocol: Protocol::Tcp,
            remote: ([127, 0, 0, 1], 5060).into(),
            server_name: None,
        };
        let (writer, _queue) = mpsc::channel(1);
        let slot = table.reserve_outbound(&Limits::default());
        let Some(slot) = slot else {
            panic!("no outbound slot");
        };
        slot.register(writer, Some(key.clone()));
        assert_eq!(table.find(&key).map(|(id, _)| id), Some(slot.id()));
        assert!(table.writer(slot.id()).is_some());
        let id = slot.id();
        drop(slot);
        assert!(table.find(&key).is_none());
        assert!(table.writer(id).is_none());
    }
}
