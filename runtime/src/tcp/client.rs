use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use super::frame::{self, put_control, put_frame, FrameReader, Incoming};
use super::io::{FrameWriter, Socket};
use super::server::send_window_update;
use super::wire::{CallStatus, GoAway, ResponseHeaders, Settings};
use super::{metadata_from_wire, status_from_wire, CallStart, CallTable, Credit, Limits};
use crate::call::{byte_stream, ClientCall, FlowControl, Inbound, Outbound, OutgoingCall};
use crate::net::{Endpoint, Handshake, IntoTarget};
use crate::service::{BoxFuture, MethodDescriptor, RpcChannel};
use crate::{Message, Status};

/// A client channel to one server over TCP, shared by every call made through it.
///
/// It owns the connection to its target: the name is resolved again on every connection
/// attempt, an attempt is bounded by a connect timeout, and after a failed attempt calls fail
/// fast with `UNAVAILABLE` until a backoff (1 s, growing 1.6x to 120 s, with jitter, as gRPC's
/// connection backoff) has passed. Calls wait for a connection in progress, but never past
/// their deadline. A connection lost or told to go away by its server is replaced for the
/// next call. Calls are multiplexed by call id, so any number may be in flight at once.
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct TcpChannel {
    endpoint: Arc<Endpoint<Tcp>>,
}

impl std::fmt::Debug for TcpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpChannel")
            .field("target", &self.endpoint.target)
            .finish()
    }
}

/// Configures a [`TcpChannel`].
#[derive(Clone, Debug)]
pub struct TcpChannelBuilder {
    target: String,
    limits: Limits,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
}

impl TcpChannelBuilder {
    /// Sets the limits on frames and windows.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the largest frame payload this client accepts, in bytes (sends are checked against
    /// the server's announced limit).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes;
        self
    }

    /// Bounds each connection attempt, handshake included (default 20 s, gRPC's minimum
    /// connect timeout). A call's own deadline bounds its wait too, whichever is sooner.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects over TLS, verifying the server as `tls` says. Both sides negotiate ALPN
    /// `rust-rpc` unless their configurations name other protocols.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls.for_transport(crate::tls::RUST_RPC_ALPN));
        self
    }

    /// A channel that connects when the first call needs it.
    pub fn connect_lazy(self) -> TcpChannel {
        TcpChannel {
            endpoint: Arc::new(Endpoint::new(
                self.target.clone(),
                Tcp {
                    limits: self.limits,
                    #[cfg(feature = "tls")]
                    target: self.target,
                    #[cfg(feature = "tls")]
                    tls: self.tls,
                },
                self.connect_timeout,
            )),
        }
    }

    /// A channel that has connected once: fails if that first connection cannot be made.
    pub async fn connect(self) -> io::Result<TcpChannel> {
        let channel = self.connect_lazy();
        channel.endpoint.connect().await?;
        Ok(channel)
    }
}

impl TcpChannel {
    /// Configures a channel to `target`: see [`IntoTarget`].
    pub fn builder(target: impl IntoTarget) -> TcpChannelBuilder {
        TcpChannelBuilder {
            target: target.into_target(),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(20),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connects to `target` with the defaults; fails if the first connection cannot be made.
    pub async fn connect(target: impl IntoTarget) -> io::Result<TcpChannel> {
        Self::builder(target).connect().await
    }

    /// Connects to `target` with `limits`; fails if the first connection cannot be made.
    pub async fn connect_with_limits(
        target: impl IntoTarget,
        limits: Limits,
    ) -> io::Result<TcpChannel> {
        Self::builder(target).limits(limits).connect().await
    }

    /// The target calls go to, as given.
    pub fn target(&self) -> &str {
        &self.endpoint.target
    }

    /// The address of the live connection's server, if there is one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.endpoint.peer_addr()
    }

    /// Where the connection stands.
    pub(crate) fn readiness(&self) -> crate::net::Readiness {
        self.endpoint.readiness()
    }
}

/// The TCP transport's opening: preface and SETTINGS each way.
struct Tcp {
    limits: Limits,
    /// `host:port`, whose host a TLS server must prove it is.
    #[cfg(feature = "tls")]
    target: String,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
}

impl Handshake for Tcp {
    type Connection = Connection;

    fn handshake(&self, stream: TcpStream) -> BoxFuture<'_, io::Result<Arc<Connection>>> {
        Box::pin(self.greet(stream))
    }

    fn usable(connection: &Connection) -> bool {
        connection.usable()
    }
}

impl Tcp {
    /// TLS over `stream` if the channel has it, else `stream` as it is.
    async fn secure(&self, stream: TcpStream) -> io::Result<Socket> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let (connector, name) = tls
                .connector(&self.target)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tokio::time::timeout(
                self.limits.handshake_timeout,
                connector.connect(name, stream),
            )
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the server did not complete the TLS handshake in time",
                )
            })?
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the TLS handshake failed (does the server use TLS for rust-rpc?): {e}"
                    ),
                )
            })?;
            return Socket::tls(stream.into());
        }
        Ok(Socket::Plain(Arc::new(stream)))
    }

    async fn greet(&self, stream: TcpStream) -> io::Result<Arc<Connection>> {
        let (read, write) = self.secure(stream).await?.split();
        let limits = &self.limits;
        let mut frames = FrameReader::new(read, limits.max_frame_size);
        let (writer, flush) = FrameWriter::new(write);
        tokio::spawn(flush);
        let mut hello = frame::PREFACE.to_vec();
        put_control(
            &mut hello,
            frame::SETTINGS,
            0,
            &Settings {
                max_frame_size: limits.max_frame_size as u64,
                initial_window: limits.effective_window() as u64,
                ..Default::default()
            },
        );
        writer.push(&hello);
        let greeted = async {
            frames.preface().await?;
            // The server's SETTINGS come right after its preface.
            match frames.next().await? {
                Some(Incoming::Frame(f)) if f.kind == frame::SETTINGS => {
                    let settings = Settings::decode_bytes(&f.payload).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("bad SETTINGS: {e}"))
                    })?;
                    if !settings.server {
                        // What a peer that echoes every byte sends back.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the peer is not a rust-rpc server: it sent back a client's preface (an echo service?)",
                        ));
                    }
                    Ok(settings)
                }
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server did not send its SETTINGS",
                )),
            }
        };
        let settings = match greeted.await {
            Ok(settings) => settings,
            Err(e) => {
                writer.abort();
                return Err(e);
            }
        };
        let connection = Arc::new(Connection {
            writer,
            calls: Mutex::new(CallTable::default()),
            next_call_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            window: limits.effective_window(),
            peer_max_frame: AtomicUsize::new(if settings.max_frame_size > 0 {
                usize::try_from(settings.max_frame_size).unwrap_or(usize::MAX)
            } else {
                Limits::default().max_frame_size
            }),
            peer_window: AtomicUsize::new(
                usize::try_from(settings.initial_window)
                    .unwrap_or(usize::MAX)
                    .max(crate::call::DEFAULT_WINDOW),
            ),
            limit: limits.max_frame_size,
        });
        tokio::spawn(read_responses(frames, Arc::downgrade(&connection)));
        Ok(connection)
    }
}

/// Starts a call without waiting, when the connection is up and its send buffer has
/// room; otherwise hands the call back.
fn try_start(
    endpoint: &Endpoint<Tcp>,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
) -> Result<Result<ClientCall, Status>, OutgoingCall> {
    let Some(connection) = endpoint.ready_connection() else {
        return Err(call);
    };
    if !connection.writer.has_room() {
        return Err(call);
    }
    Ok(prepare(&connection, method, call)
        .and_then(|(started, frames, busy)| {
            // Room was checked just above; a frame that lands past the high-water mark in a
            // race with another sender is one frame over a soft bound.
            if connection.writer.push_with(busy, |out| frames.put(out)) {
                Ok(started)
            } else {
                connection.lock().remove(&started.call_id);
                Err(Status::unavailable("the connection closed"))
            }
        })
        .map(|started| started.call))
}

async fn start(
    endpoint: &Arc<Endpoint<Tcp>>,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
) -> Result<ClientCall, Status> {
    let connection = endpoint.connection().await?;
    let (started, frames, busy) = prepare(&connection, method, call)?;
    let mut out = Vec::new();
    frames.put(&mut out);
    // Dropped before this completes (the deadline passed while the connection's backlog
    // was full), the guard forgets the call.
    let mut guard = Forget {
        connection: &connection,
        call_id: started.call_id,
        armed: true,
    };
    let sent = connection.writer.send(&out, busy).await;
    guard.armed = false;
    if sent.is_err() {
        connection.lock().remove(&started.call_id);
        return Err(Status::unavailable("the connection closed"));
    }
    Ok(started.call)
}

/// A call registered on its connection, not yet sent.
struct Started {
    call_id: u64,
    call: ClientCall,
}

/// A call's first frames: its start, and its one request if it has one.
struct StartFrames {
    call_id: u64,
    start: CallStart<'static>,
    request: Option<Bytes>,
}

impl StartFrames {
    fn put(&self, out: &mut Vec<u8>) {
        self.start.put_frame(out, self.call_id);
        if let Some(request) = &self.request {
            put_frame(
                out,
                frame::MESSAGE,
                frame::END_STREAM,
                self.call_id,
                request,
            );
        }
    }
}

/// Registers a call on `connection`; returns its first frames to send and whether other
/// calls are in flight.
fn prepare(
    connection: &Arc<Connection>,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
) -> Result<(Started, StartFrames, bool), Status> {
    let call_id = connection.next_call_id.fetch_add(1, Ordering::Relaxed);
    if let Some(request) = &call.request {
        let limit = connection.peer_max_frame.load(Ordering::SeqCst);
        if request.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "a request of {} bytes is over the server's limit of {limit} bytes",
                request.len()
            )));
        }
    }
    let requests = Arc::new(Requests {
        call_id,
        connection: connection.clone(),
        credit: Credit::new(connection.peer_window.load(Ordering::SeqCst)),
    });
    let (responses_in, responses) = byte_stream(connection.window, Some(requests.clone()));
    let busy = {
        let mut table = connection.lock();
        table.insert(
            call_id,
            Pending {
                responses: responses_in,
                requests: requests.clone(),
                replay: call.replay.filter(|_| call.request.is_some()),
            },
        );
        table.len() > 1
    };
    let start = CallStart {
        service: method.service,
        method: method.name,
        timeout_micros: call.deadline.map_or(0, |d| {
            let left = d.saturating_duration_since(Instant::now());
            left.as_micros().clamp(1, u128::from(u64::MAX)) as u64
        }),
        metadata: call.metadata,
    };
    let started = Started {
        call_id,
        call: ClientCall {
            requests,
            responses,
        },
    };
    let frames = StartFrames {
        call_id,
        start,
        request: call.request,
    };
    Ok((started, frames, busy))
}

/// Forgets a call whose start was never sent.
struct Forget<'a> {
    connection: &'a Connection,
    call_id: u64,
    armed: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.connection.lock().remove(&self.call_id);
        }
    }
}

/// What the reader needs to know about one call in flight.
struct Pending {
    responses: Inbound,
    /// Our side of the call: its credit for requests lives there.
    requests: Arc<Requests>,
    /// Who takes the call over if the server refuses it unprocessed.
    replay: Option<crate::call::Replay>,
}

struct Connection {
    writer: Arc<FrameWriter>,
    calls: Mutex<CallTable<Pending>>,
    next_call_id: AtomicU64,
    closed: AtomicBool,
    /// The server sent GOAWAY: calls in flight go on, new ones go to a new connection.
    draining: AtomicBool,
    /// Our window per call for responses.
    window: usize,
    /// The server's limit on frames we send, and its window per call for our requests.
    peer_max_frame: AtomicUsize,
    peer_window: AtomicUsize,
    /// Our limit on frames we read.
    limit: usize,
}

impl Drop for Connection {
    /// The last channel and call using the connection are gone: close the socket, which also
    /// ends its reader and flush tasks.
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl Connection {
    fn lock(&self) -> MutexGuard<'_, CallTable<Pending>> {
        // No user code runs under this lock.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether new calls may start here: the reader has not seen the end and no GOAWAY came.
    /// (A failed write ends the reader too, as the socket is shut down.)
    fn usable(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
    }

    /// Forgets a call and tells the server to stop it, unless it already ended.
    fn cancel(&self, call_id: u64) {
        if self.lock().remove(&call_id).is_some() {
            let mut out = Vec::with_capacity(frame::HEADER_LEN);
            put_frame(&mut out, frame::CANCEL, 0, call_id, &[]);
            self.writer.push(&out);
        }
    }
}

/// The requests of one call, written as frames on its connection; and the server's credit
/// given back as the caller reads responses.
struct Requests {
    call_id: u64,
    connection: Arc<Connection>,
    /// Our credit for requests.
    credit: Credit,
}

impl Outbound for Requests {
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            self.credit
                .send_message(&self.connection.writer, self.call_id, &message)
                .await
        })
    }

    fn max_message_size(&self) -> usize {
        self.connection.peer_max_frame.load(Ordering::SeqCst)
    }

    fn close_send(&self) {
        let mut out = Vec::with_capacity(frame::HEADER_LEN);
        put_frame(&mut out, frame::HALF_CLOSE, 0, self.call_id, &[]);
        self.connection.writer.push(&out);
    }

    fn cancel(&self) {
        self.connection.cancel(self.call_id);
    }
}

impl FlowControl for Requests {
    fn consumed(&self, bytes: usize) {
        send_window_update(&self.connection.writer, self.call_id, bytes);
    }

    /// The caller stopped reading altogether: the call is over.
    fn abandoned(&self) {
        self.connection.cancel(self.call_id);
    }
}

async fn read_responses(mut frames: FrameReader, connection: Weak<Connection>) {
    let reason = loop {
        let incoming = match frames.next().await {
            Ok(Some(incoming)) => incoming,
            Ok(None) => break Status::unavailable("the server closed the connection"),
            Err(e) => break Status::unavailable(format!("the connection failed: {e}")),
        };
        // Nobody holds the connection any more: nothing is waiting for these frames.
        let Some(connection) = connection.upgrade() else {
            return;
        };
        let frame = match incoming {
            Incoming::Frame(frame) => frame,
            Incoming::Oversize { kind, call_id, len } => {
                if kind != frame::MESSAGE && kind != frame::HEADERS && kind != frame::STATUS {
                    break Status::unavailable("the server sent an oversize control frame");
                }
                let responses = connection.lock().get(&call_id).map(|p| p.responses.clone());
                if let Some(responses) = responses {
                    responses.abort(Status::resource_exhausted(format!(
                        "a response of {len} bytes is over the client's limit of {} bytes",
                        connection.limit
                    )));
                    connection.cancel(call_id);
                }
                continue;
            }
        };
        let call_id = frame.call_id;
        match frame.kind {
            frame::HEADERS => {
                let responses = connection.lock().get(&call_id).map(|p| p.responses.clone());
                if let (Some(responses), Ok(headers)) =
                    (responses, ResponseHeaders::decode_bytes(&frame.payload))
                {
                    responses.headers(metadata_from_wire(headers.metadata));
                }
            }
            frame::MESSAGE if frame.flags & frame::END_OK != 0 => {
                // The last message and an OK end in one frame.
                let pending = connection.lock().remove(&call_id);
                if let Some(pending) = pending {
                    match pending.responses.push(frame.payload) {
                        Ok(()) => pending.responses.finish(Ok(()), crate::Metadata::new()),
                        Err(status) => pending.responses.abort(status),
                    }
                }
            }
            frame::MESSAGE => {
                let responses = connection.lock().get(&call_id).map(|p| p.responses.clone());
                if let Some(responses) = responses {
                    if let Err(status) = responses.push(frame.payload) {
                        responses.abort(status);
                        connection.cancel(call_id);
                    }
                }
            }
            frame::STATUS => {
                let pending = connection.lock().remove(&call_id);
                if let Some(pending) = pending {
                    match CallStatus::decode_bytes(&frame.payload) {
                        Ok(end) => {
                            if !end.headers.is_empty() {
                                pending.responses.headers(metadata_from_wire(end.headers));
                            }
                            pending.responses.finish(
                                status_from_wire(end.code, end.message, end.details),
                                metadata_from_wire(end.trailers),
                            );
                        }
                        Err(e) => pending.responses.abort(Status::internal(format!(
                            "cannot decode the call's status: {e}"
                        ))),
                    }
                }
            }
            frame::WINDOW_UPDATE => {
                let Some(bytes) = frame
                    .payload
                    .first_chunk::<4>()
                    .map(|b| u32::from_be_bytes(*b))
                else {
                    break Status::unavailable("the server sent a malformed WINDOW_UPDATE");
                };
                let requests = connection.lock().get(&call_id).map(|p| p.requests.clone());
                if let Some(requests) = requests {
                    requests.credit.grant(bytes);
                }
            }
            frame::GOAWAY => {
                connection.draining.store(true, Ordering::SeqCst);
                // Calls above the last id the server took were never started: they fail
                // with UNAVAILABLE, and the next call goes to a new connection.
                if let Ok(goaway) = GoAway::decode_bytes(&frame.payload) {
                    let refused: Vec<Pending> = {
                        let mut calls = connection.lock();
                        let ids: Vec<u64> = calls
                            .keys()
                            .copied()
                            .filter(|id| *id > goaway.last_call_id)
                            .collect();
                        ids.iter().filter_map(|id| calls.remove(id)).collect()
                    };
                    for pending in refused {
                        match pending.replay {
                            // Never processed: it may go to another server.
                            Some(replay) => replay.run(pending.responses),
                            None => pending.responses.abort(Status::unavailable(format!(
                                "the server is going away: {}",
                                goaway.message
                            ))),
                        }
                    }
                }
            }
            frame::SETTINGS => {
                if let Ok(settings) = Settings::decode_bytes(&frame.payload) {
                    if settings.max_frame_size > 0 {
                        connection.peer_max_frame.store(
                            usize::try_from(settings.max_frame_size).unwrap_or(usize::MAX),
                            Ordering::SeqCst,
                        );
                    }
                }
            }
            // Frames a client sends are the server's mistake; unknown types are skipped so
            // later versions can add some.
            frame::CANCEL | frame::HALF_CLOSE => {
                break Status::unavailable("the server broke the protocol");
            }
            _ => {}
        }
    };
    let Some(connection) = connection.upgrade() else {
        return;
    };
    connection.closed.store(true, Ordering::SeqCst);
    connection.writer.abort();
    let orphans: Vec<Pending> = connection.lock().drain().map(|(_, p)| p).collect();
    for pending in orphans {
        pending.responses.abort(reason.clone());
    }
}

impl RpcChannel for TcpChannel {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        Box::pin(start(&self.endpoint, method, call))
    }

    fn try_start_call(
        &self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> Result<Result<ClientCall, Status>, OutgoingCall> {
        try_start(&self.endpoint, method, call)
    }
}
