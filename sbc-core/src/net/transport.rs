//! The entry point: bind the listeners, hand out a [`TransportHandle`], shut down.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;
use openssl::ssl::{SslAcceptor, SslConnector};
use tokio::sync::{mpsc, watch};

use super::flows::{ConnectionKey, FlowTable};
use super::{
    BindError, Destination, DropReason, FlowId, FlowKind, Inbound, Limits, Protocol, SendError,
    Target, TlsConfigError, TlsListenerConfig, TransportConfig, TransportCounters, tcp, tls, udp,
};

/// Binds the configured listeners and starts their tasks.
#[derive(Debug)]
pub struct Transport;

impl Transport {
    /// Binds every listener (failing as a whole if one cannot be bound or its TLS files
    /// cannot be loaded), spawns their tasks on the current tokio runtime, and returns the
    /// handle for sending and the receiver of everything received.
    ///
    /// The transport runs until [`TransportHandle::shutdown`] is called or every clone of
    /// the handle is dropped.
    pub async fn bind(
        config: TransportConfig,
    ) -> Result<(TransportHandle, mpsc::Receiver<Inbound>), BindError> {
        let limits = config.limits;
        let (inbound_tx, inbound_rx) = mpsc::channel(limits.inbound_queue_depth.max(1));
        let (shutdown, _) = watch::channel(false);
        let (task_guard, tasks_done) = mpsc::channel(1);
        // An outbound TLS client that cannot be built only makes TLS sends fail.
        let tls_client = tls::build_connector(&config.tls_client).map(Arc::new);

        let mut udp_sockets = Vec::new();
        let mut stream_listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for listener in &config.listeners {
            let socket_error = |source| BindError::Socket {
                protocol: listener.protocol,
                addr: listener.addr,
                source,
            };
            match listener.protocol {
                Protocol::Udp => {
                    let socket = udp::bind(listener.addr).map_err(socket_error)?;
                    let local = socket.local_addr().map_err(socket_error)?;
                    local_addrs.push((Protocol::Udp, local));
                    udp_sockets.push(udp::UdpEndpoint {
                        socket: Arc::new(socket),
                        local,
                    });
                }
                Protocol::Tcp | Protocol::Tls => {
                    let tls = match (listener.protocol, &listener.tls) {
                        (Protocol::Tls, Some(tls_config)) => Some(TlsListener::new(tls_config)?),
                        (Protocol::Tls, None) => {
                            return Err(TlsConfigError::MissingListenerTls(listener.addr).into());
                        }
                        _ => None,
                    };
                    let socket = tcp::bind(listener.addr).map_err(socket_error)?;
                    let local = socket.local_addr().map_err(socket_error)?;
                    local_addrs.push((listener.protocol, local));
                    stream_listeners.push((socket, local, tls.map(Arc::new)));
                }
            }
        }

        let shared = Arc::new(Shared {
            limits,
            inbound: Mutex::new(Some(inbound_tx)),
            flows: Arc::new(FlowTable::default()),
            counters: Arc::new(TransportCounters::default()),
            udp_sockets,
            tls_client: RwLock::new(tls_client.map_err(|e| e.to_string())),
            tls_client_config: config.tls_client,
            tls_listeners: stream_listeners
                .iter()
                .filter_map(|(_, _, tls)| tls.clone())
                .collect(),
            local_addrs,
            shutdown,
            task_guard: Mutex::new(Some(task_guard)),
            tasks_done: tokio::sync::Mutex::new(tasks_done),
            connect_gates: Mutex::new(HashMap::new()),
        });
        for index in 0..shared.udp_sockets.len() {
            shared.spawn(udp::receive_loop(Arc::clone(&shared), index));
        }
        for (socket, local, tls) in stream_listeners {
            shared.spawn(tcp::accept_loop(Arc::clone(&shared), socket, local, tls));
        }
        let handle = TransportHandle {
            owner: Arc::new(HandleOwner {
                shared: Arc::clone(&shared),
            }),
        };
        Ok((handle, inbound_rx))
    }
}

/// A TLS listener's configuration and its current acceptor, swapped on reload.
pub(crate) struct TlsListener {
    config: TlsListenerConfig,
    acceptor: RwLock<Arc<SslAcceptor>>,
}

impl TlsListener {
    fn new(config: &TlsListenerConfig) -> Result<TlsListener, TlsConfigError> {
        Ok(TlsListener {
            acceptor: RwLock::new(Arc::new(tls::build_acceptor(config)?)),
            config: config.clone(),
        })
    }

    /// The acceptor for the next handshake (read at each accept, so a reload applies to
    /// new connections only).
    pub fn acceptor(&self) -> Arc<SslAcceptor> {
        Arc::clone(&self.acceptor.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// State shared by the handle and every task.
pub(crate) struct Shared {
    pub limits: Limits,
    /// Cloned into each task when it starts (see [`Upward`]) and taken at shutdown, so
    /// the receiver sees the end of the stream once every task has ended.
    inbound: Mutex<Option<mpsc::Sender<Inbound>>>,
    pub flows: Arc<FlowTable>,
    pub counters: Arc<TransportCounters>,
    pub udp_sockets: Vec<udp::UdpEndpoint>,
    tls_client: RwLock<Result<Arc<SslConnector>, String>>,
    tls_client_config: super::TlsClientConfig,
    tls_listeners: Vec<Arc<TlsListener>>,
    local_addrs: Vec<(Protocol, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    /// Every task holds a clone; shutdown drops this one and waits for the channel to
    /// close, which happens when the last task has ended.
    task_guard: Mutex<Option<mpsc::Sender<()>>>,
    tasks_done: tokio::sync::Mutex<mpsc::Receiver<()>>,
    /// Serialises connection set-up per destination so that a burst of sends opens one
    /// connection, not one each. Entries live only while a connect is under way.
    connect_gates: Mutex<HashMap<ConnectionKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .field("local_addrs", &self.local_addrs)
            .field("tls_listeners", &self.tls_listeners)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A task's way upward: its own clone of the inbound queue's sender.
#[derive(Debug)]
pub(crate) struct Upward {
    sender: mpsc::Sender<Inbound>,
    counters: Arc<TransportCounters>,
}

impl Upward {
    /// Hands a received message upward, or drops and counts it if the queue is full.
    pub fn deliver(&self, inbound: Inbound) {
        match self.sender.try_send(inbound) {
            Ok(()) => self.counters.count_received(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.count_drop(DropReason::InboundQueueFull);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.count_drop(DropReason::InboundQueueClosed);
            }
        }
    }
}

impl Shared {
    /// The way upward for a new task; `None` once shut down.
    pub fn upward(&self) -> Option<Upward> {
        let sender = lock(&self.inbound).clone()?;
        Some(Upward {
            sender,
            counters: Arc::clone(&self.counters),
        })
    }

    /// Stops everything: tasks end, new ones are not started, the inbound queue closes
    /// once the running ones are gone.
    fn stop(&self) {
        self.shutdown.send_replace(true);
        lock(&self.task_guard).take();
        lock(&self.inbound).take();
    }

    /// Spawns a task that ends at shutdown at the latest. Does nothing once shut down.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let Some(guard) = lock(&self.task_guard).clone() else {
            return;
        };
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            let _guard = guard;
            tokio::select! {
                () = task => {}
                _ = shutdown.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn tls_connector(&self) -> Result<Arc<SslConnector>, SendError> {
        match &*self
            .tls_client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Ok(connector) => Ok(Arc::clone(connector)),
            Err(reason) => Err(SendError::TlsClientUnavailable(reason.clone())),
        }
    }

    async fn send(self: &Arc<Self>, target: Target, bytes: Bytes) -> Result<FlowId, SendError> {
        if self.is_shut_down() {
            return Err(SendError::ShutDown);
        }
        match target {
            Target::Flow(flow) => match flow.0 {
                FlowKind::Datagram { socket, remote } => {
                    self.send_datagram(socket, remote, bytes).await?;
                    Ok(flow)
                }
                FlowKind::Stream(id) => {
                    let writer = self.flows.writer(id).ok_or(SendError::FlowClosed)?;
                    self.queue(&writer, bytes)?;
                    Ok(flow)
                }
            },
            Target::Destination(destination) => match destination.protocol {
                Protocol::Udp => {
                    let socket = udp::socket_for(&self.udp_sockets, destination.addr)
                        .ok_or(SendError::NoUdpSocket(destination.addr))?;
                    self.send_datagram(socket, destination.addr, bytes).await?;
                    Ok(FlowId(FlowKind::Datagram {
                        socket,
                        remote: destination.addr,
                    }))
                }
                Protocol::Tcp | Protocol::Tls => self.send_to_destination(destination, bytes).await,
            },
        }
    }

    async fn send_datagram(
        &self,
        socket: usize,
        remote: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), SendError> {
        let endpoint = self
            .udp_sockets
            .get(socket)
            .ok_or(SendError::NoUdpSocket(remote))?;
        match endpoint.socket.send_to(&bytes, remote).await {
            Ok(_) => {
                self.counters.count_sent();
                Ok(())
            }
            Err(source) => {
                self.counters.count_drop(DropReason::UdpSendError);
                Err(SendError::Io {
                    protocol: Protocol::Udp,
                    addr: remote,
                    source,
                })
            }
        }
    }

    fn queue(&self, writer: &mpsc::Sender<Bytes>, bytes: Bytes) -> Result<(), SendError> {
        match writer.try_send(bytes) {
            Ok(()) => {
                self.counters.count_sent();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.count_drop(DropReason::WriteQueueFull);
                Err(SendError::WriteQueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::FlowClosed),
        }
    }

    async fn send_to_destination(
        self: &Arc<Self>,
        destination: Destination,
        bytes: Bytes,
    ) -> Result<FlowId, SendError> {
        let key = ConnectionKey {
            protocol: destination.protocol,
            remote: destination.addr,
            server_name: match destination.protocol {
                Protocol::Tls => destination.server_name.clone(),
                _ => None,
            },
        };
        if let Some((id, writer)) = self.flows.find(&key) {
            self.queue(&writer, bytes)?;
            return Ok(FlowId(FlowKind::Stream(id)));
        }
        let gate = ConnectGate::enter(self, key.clone());
        let result = {
            let _connecting = gate.gate.lock().await;
            match self.flows.find(&key) {
                Some(found) => Ok(found),
                None => tcp::connect(self, &destination, key).await,
            }
        };
        drop(gate);
        let (id, writer) = result?;
        self.queue(&writer, bytes)?;
        Ok(FlowId(FlowKind::Stream(id)))
    }

    fn reload_tls(&self) -> Result<(), TlsConfigError> {
        // Build everything first, so that a bad file changes nothing.
        let acceptors = self
            .tls_listeners
            .iter()
            .map(|listener| tls::build_acceptor(&listener.config).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let connector = tls::build_connector(&self.tls_client_config)?;
        for (listener, acceptor) in self.tls_listeners.iter().zip(acceptors) {
            *listener
                .acceptor
                .write()
                .unwrap_or_else(PoisonError::into_inner) = acceptor;
        }
        *self
            .tls_client
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Ok(Arc::new(connector));
        Ok(())
    }
}

/// A sender's place at the connect gate of one destination. Leaving it (however the send
/// ends, including when its future is dropped mid-connect) removes the map entry once
/// nobody else holds the gate, so the map only ever holds destinations being connected.
struct ConnectGate<'a> {
    shared: &'a Shared,
    key: ConnectionKey,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> ConnectGate<'a> {
    fn enter(shared: &'a Shared, key: ConnectionKey) -> ConnectGate<'a> {
        let gate = Arc::clone(lock(&shared.connect_gates).entry(key.clone()).or_default());
        ConnectGate { shared, key, gate }
    }
}

impl Drop for ConnectGate<'_> {
    fn drop(&mut self) {
        let mut gates = lock(&self.shared.connect_gates);
        // Ours and the map's: nobody else is waiting on this gate.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

/// Sending side of the transport; cheap to clone. When the last clone is dropped, the
/// transport shuts down.
#[derive(Clone, Debug)]
pub struct TransportHandle {
    owner: Arc<HandleOwner>,
}

#[derive(Debug)]
struct HandleOwner {
    shared: Arc<Shared>,
}

impl Drop for HandleOwner {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl TransportHandle {
    /// Sends one message and returns the flow it went on.
    ///
    /// * [`Target::Flow`]: on that flow; fails with [`SendError::FlowClosed`] when its
    ///   connection has gone.
    /// * [`Target::Destination`] over UDP: from the first UDP listener of the same address
    ///   family.
    /// * [`Target::Destination`] over TCP/TLS: on the open connection to that address (for
    ///   TLS: verified for the same server name), else on a new one, which this call sets
    ///   up (within `connect_timeout` plus `tls_handshake_timeout`) and whose received
    ///   messages then flow upward like those of accepted connections.
    ///
    /// For a stream, success means the bytes are queued on the connection; a write that
    /// later fails closes the connection and is counted.
    pub async fn send(&self, target: Target, bytes: Bytes) -> Result<FlowId, SendError> {
        self.owner.shared.send(target, bytes).await
    }

    /// The bound address of every listener, in configuration order (useful with port 0).
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        self.owner.shared.local_addrs.clone()
    }

    /// Drop, error and traffic counters.
    pub fn counters(&self) -> Arc<TransportCounters> {
        Arc::clone(&self.owner.shared.counters)
    }

    /// TCP and TLS connections open now, inbound and outbound (handshakes included).
    pub fn open_connections(&self) -> usize {
        self.owner.shared.flows.open_connections()
    }

    /// Re-reads every TLS certificate, key and CA file, for listeners and for outbound
    /// connections. New handshakes use the new files; open connections are not touched.
    /// On error nothing changes.
    pub fn reload_tls(&self) -> Result<(), TlsConfigError> {
        self.owner.shared.reload_tls()
    }

    /// Stops the listeners, closes every connection, and returns when every task of the
    /// transport has ended. Sends fail with [`SendError::ShutDown`] afterwards.
    pub async fn shutdown(&self) {
        let shared = &self.owner.shared;
        shared.stop();
        let mut tasks_done = shared.tasks_done.lock().await;
        while tasks_done.recv().await.is_some() {}
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A send abandoned mid-connect (its future dropped, as a caller's timeout does) must
    /// not leave its destination's gate in the map.
    #[tokio::test]
    async fn abandoned_connect_leaves_no_gate_behind() {
        // Accepts TCP (the kernel does, from the backlog) but never answers the TLS hello.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("local address");
        let (transport, _inbound) = Transport::bind(TransportConfig::default())
            .await
            .expect("bind the transport");
        let send = transport.send(
            Target::Destination(Destination::tls(addr, "peer.example")),
            Bytes::from_static(b"OPTIONS sip:peer.example SIP/2.0\r\n\r\n"),
        );
        let abandoned = tokio::time::timeout(Duration::from_millis(200), send).await;
        assert!(abandoned.is_err(), "the handshake cannot have finished");
        assert!(lock(&transport.owner.shared.connect_gates).is_empty());
        assert_eq!(transport.open_connections(), 0);
        transport.shutdown().await;
    }
}
