//! Reusable buffers for batched receive (recvmmsg, GRO) and send (GSO).

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};

use quinn_udp::RecvMeta;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

/// Datagrams received per system call.
pub(crate) const RECV_BATCH: usize = quinn_udp::BATCH_SIZE;
/// One receive buffer: a whole GRO train (at most 64 KiB), plus two cache lines so that the
/// buffers do not all start on the same cache set.
const RECV_SLOT: usize = 65_536 + 128;
/// Datagrams queued for sending before the queue is flushed.
pub(crate) const SEND_QUEUE: usize = 64;
const SEND_BYTES: usize = 65_536;

/// The receive side: `RECV_BATCH` buffers and their metadata, allocated once per worker.
#[derive(Debug)]
pub(crate) struct RecvBatch {
    buffers: Box<[[u8; RECV_SLOT]; RECV_BATCH]>,
    pub meta: [RecvMeta; RECV_BATCH],
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        let buffers: Vec<[u8; RECV_SLOT]> = vec![[0u8; RECV_SLOT]; RECV_BATCH];
        let buffers: Box<[[u8; RECV_SLOT]; RECV_BATCH]> =
            match buffers.into_boxed_slice().try_into() {
                Ok(buffers) => buffers,
                Err(_) => unreachable!("the vector has exactly RECV_BATCH elements"),
            };
        RecvBatch {
            buffers,
            meta: [RecvMeta::default(); RECV_BATCH],
        }
    }

    /// Receives one batch with `receive(buffers, meta)`; returns the number of buffers filled.
    pub fn receive(
        &mut self,
        receive: impl FnOnce(&mut [IoSliceMut<'_>], &mut [RecvMeta]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        let mut slices = self.buffers.each_mut().map(|b| IoSliceMut::new(b));
        receive(&mut slices, &mut self.meta)
    }

    /// The datagrams of buffer `index` (several when GRO coalesced them), with their source.
    pub fn datagrams(&self, index: usize) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        let (source, bytes, stride) = match (self.meta.get(index), self.buffers.get(index)) {
            (Some(meta), Some(buffer)) => (
                meta.addr,
                buffer.get(..meta.len).unwrap_or(&[]),
                meta.stride.max(1),
            ),
            _ => (SocketAddr::from(([0, 0, 0, 0], 0)), &[][..], 1),
        };
        // `chunks` yields nothing for an empty datagram, which is still one datagram.
        let empty = bytes.is_empty().then_some((source, &[][..]));
        bytes.chunks(stride).map(move |d| (source, d)).chain(empty)
    }
}

/// A datagram queued for sending, with what the statistics need to know about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Queued {
    /// The socket (worker token) to send from.
    pub token: usize,
    pub to: SocketAddr,
    offset: usize,
    pub len: usize,
    /// Session slot, stream and leg the datagram is sent to.
    pub session: usize,
    pub stream: usize,
    pub leg: crate::Leg,
}

/// Datagrams waiting to be sent, copied into one contiguous buffer so that runs to the same
/// destination from the same socket leave in one GSO system call.
#[derive(Debug)]
pub(crate) struct SendQueue {
    bytes: Box<[u8; SEND_BYTES]>,
    used: usize,
    queued: Vec<Queued>,
    /// Destinations in the form sendmmsg takes, reused from one flush to the next.
    addresses: Vec<SocketAddrAny>,
}

/// A run of queued datagrams that can leave in one system call.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub first: Queued,
    pub contents: &'a [u8],
    pub segment_size: usize,
    pub datagrams: usize,
}

impl SendQueue {
    pub fn new() -> SendQueue {
        SendQueue {
            bytes: Box::new([0u8; SEND_BYTES]),
            used: 0,
            queued: Vec::with_capacity(SEND_QUEUE),
            addresses: Vec::with_capacity(SEND_QUEUE),
        }
    }

    /// Whether `len` more bytes fit; when not, the caller flushes first.
    pub fn has_room(&self, len: usize) -> bool {
        self.queued.len() < SEND_QUEUE && self.used + len <= SEND_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues a copy of `datagram`. Returns false (nothing queued) when there is no room.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        token: usize,
        to: SocketAddr,
        datagram: &[u8],
        session: usize,
        stream: usize,
        leg: crate::Leg,
    ) -> bool {
        if !self.has_room(datagram.len()) {
            return false;
        }
        let offset = self.used;
        let Some(slot) = self.bytes.get_mut(offset..offset + datagram.len()) else {
            return false;
        };
        slot.copy_from_slice(datagram);
        self.used += datagram.len();
        self.queued.push(Queued {
            token,
            to,
            offset,
            len: datagram.len(),
            session,
            stream,
            leg,
        });
        true
    }

    /// Hands every run to `send` in order and empties the queue. A run is a sequence of
    /// datagrams from the same socket to the same destination, all of one size except a
    /// shorter last one, at most `max_segments` long (the GSO rules).
    pub fn drain(&mut self, max_segments: usize, mut send: impl FnMut(Run<'_>)) {
        let mut start = 0;
        while let Some(first) = self.queued.get(start).copied() {
            let mut end = start + 1;
            while end - start < max_segments {
                match self.queued.get(end) {
                    Some(next)
                        if next.token == first.token
                            && next.to == first.to
                            && next.len <= first.len
                            && self
                                .queued
                                .get(end - 1)
                                .is_some_and(|prev| prev.len == first.len) =>
                    {
                        end += 1;
                    }
                    _ => break,
                }
            }
            let last = self.queued.get(end - 1).copied().unwrap_or(first);
            let contents = self
                .bytes
                .get(first.offset..last.offset + last.len)
                .unwrap_or(&[]);
            send(Run {
                first,
                contents,
                segment_size: first.len,
                datagrams: end - start,
            });
            start = end;
        }
        self.queued.clear();
        self.used = 0;
    }
}

/// Consecutive queued datagrams that leave from the same socket (to any destinations).
#[derive(Debug)]
pub(crate) struct SocketRun<'a> {
    pub token: usize,
    pub queued: &'a [Queued],
    bytes: &'a [u8],
}

impl SocketRun<'_> {
    /// The bytes of one of the run's datagrams.
    pub fn datagram(&self, queued: &Queued) -> &[u8] {
        self.bytes
            .get(queued.offset..queued.offset + queued.len)
            .unwrap_or(&[])
    }
}

impl SendQueue {
    /// Hands every run of datagrams from one socket (at most `max` long) to `send` in order,
    /// for [`send_many`], and empties the queue.
    pub fn drain_by_socket(
        &mut self,
        max: usize,
        mut send: impl FnMut(SocketRun<'_>, &mut Vec<SocketAddrAny>),
    ) {
        let mut start = 0;
        while let Some(first) = self.queued.get(start) {
            let token = first.token;
            let mut end = start + 1;
            while end - start < max && self.queued.get(end).is_some_and(|q| q.token == token) {
                end += 1;
            }
            let queued = self.queued.get(start..end).unwrap_or(&[]);
            send(
                SocketRun {
                    token,
                    queued,
                    bytes: &self.bytes[..],
                },
                &mut self.addresses,
            );
            start = end;
        }
        self.queued.clear();
        self.used = 0;
    }
}

/// Sends a run with one sendmmsg; returns how many datagrams the system took (a prefix).
/// `addresses` is scratch space with room for `SEND_QUEUE` entries.
pub(crate) fn send_many(
    socket: &UdpSocket,
    run: &SocketRun<'_>,
    addresses: &mut Vec<SocketAddrAny>,
) -> std::io::Result<usize> {
    let count = run.queued.len().min(SEND_QUEUE);
    addresses.clear();
    addresses.extend(
        run.queued
            .iter()
            .take(count)
            .map(|q| SocketAddrAny::from(q.to)),
    );
    let mut iovs = [IoSlice::new(&[]); SEND_QUEUE];
    for (iov, queued) in iovs.iter_mut().zip(run.queued) {
        *iov = IoSlice::new(run.datagram(queued));
    }
    let mut controls: [SendAncillaryBuffer<'_, '_, '_>; SEND_QUEUE] =
        std::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut index = 0;
    let mut messages = controls.each_mut().map(|control| {
        let message = match (addresses.get(index), iovs.get(index)) {
            (Some(address), Some(iov)) => {
                MMsgHdr::new_with_addr(address, std::slice::from_ref(iov), control)
            }
            _ => MMsgHdr::new(&[], control),
        };
        index += 1;
        message
    });
    let messages = messages.get_mut(..count).unwrap_or(&mut []);
    Ok(sendmmsg(socket, messages, SendFlags::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Leg;

    #[test]
    fn groups_equal_sized_runs_per_socket_and_destination() {
        let to: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9));
        let other: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 10));
        let mut queue = SendQueue::new();
        for (token, to, len) in [
            (1, to, 172),
            (1, to, 172),
            (1, to, 100),
            (1, to, 172),
            (2, to, 172),
            (2, other, 172),
        ] {
            assert!(queue.push(token, to, &vec![7u8; len], 0, 0, Leg::B));
        }
        let mut runs = Vec::new();
        queue.drain(64, |run| {
            runs.push((
                run.first.token,
                run.datagrams,
                run.contents.len(),
                run.segment_size,
            ))
        });
        assert_eq!(
            runs,
            vec![
                (1, 3, 444, 172),
                (1, 1, 172, 172),
                (2, 1, 172, 172),
                (2, 1, 172, 172)
            ]
        );
        assert!(queue.is_empty());
        let mut count = 0;
        for _ in 0..5 {
            assert!(queue.push(1, to, &[1u8; 172], 0, 0, Leg::A));
        }
        queue.drain(2, |run| {
            count += 1;
            assert!(run.datagrams <= 2);
        });
        assert_eq!(count, 3);

        for (token, len) in [(1, 10), (1, 20), (2, 30), (1, 40)] {
            assert!(queue.push(token, to, &vec![len as u8; len], 0, 0, Leg::A));
        }
        let mut runs = Vec::new();
        queue.drain_by_socket(64, |run, _| {
            runs.push((
                run.token,
                run.queued
                    .iter()
                    .map(|q| run.datagram(q).len())
                    .collect::<Vec<_>>(),
            ))
        });
        assert_eq!(runs, vec![(1, vec![10, 20]), (2, vec![30]), (1, vec![40])]);
    }
}
