use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::Notify;

use super::frame::{self, put_control, put_frame, FrameReader, Incoming};
use super::io::{FrameWriter, Socket};
use super::wire::{CallStatus, GoAway, ResponseHeaders, Settings};
use super::{metadata_to_wire, CallStart, CallTable, Credit, Limits};
use crate::call::{
    byte_stream, CallEnd, FlowControl, HandlerBatch, Inbound, IncomingCall, Outbound, ServerCore,
};
use crate::interceptor::ServerInterceptor;
use crate::net::{self, Host, Hosting, ServerHandle};
use crate::service::{BoxFuture, Service};
use crate::{CancelToken, Message, Metadata, Status};

/// Collects services, interceptors and limits, then binds a [`Server`].
#[derive(Default)]
pub struct ServerBuilder {
    services: Vec<Arc<dyn Service>>,
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
    limits: Limits,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl ServerBuilder {
    /// Hosts `service`; calls are routed to it by its fully qualified name. A second service
    /// with the same name replaces the first.
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Runs `interceptor` around every call, after those added before it.
    pub fn interceptor(mut self, interceptor: impl ServerInterceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Sets the largest frame payload (a message, or a frame of metadata) this server accepts,
    /// in bytes, announced to every client. What it sends is checked against each client's
    /// own announced limit.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes;
        self
    }

    /// Sets how many calls one connection may have in flight.
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.limits.max_concurrent_calls = calls;
        self
    }

    /// Sets every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves over TLS with this identity (and client verification, if it asks for it);
    /// ALPN `rust-rpc` unless the configuration names other protocols. Clients that do not
    /// complete the TLS handshake within the handshake timeout are dropped.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls.acceptor_for(crate::tls::RUST_RPC_ALPN));
        self
    }

    /// Listens on `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = crate::net::bind(addr).await?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                hosting: Hosting::new(ServerCore::new(self.services, self.interceptors)),
                limits: self.limits,
                #[cfg(feature = "tls")]
                tls: self.tls,
            }),
        })
    }
}

struct Shared {
    hosting: Hosting,
    limits: Limits,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Host for Shared {
    fn hosting(&self) -> &Hosting {
        &self.hosting
    }

    fn serve_connection(self: Arc<Self>, stream: TcpStream) -> BoxFuture<'static, ()> {
        Box::pin(async move { serve_connection(stream, &self).await })
    }
}

/// A bound TCP server hosting any number of services; many connections, and many concurrent
/// calls on each.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Lists this server in `registry` under `service` with `weight`, as
    /// `<service>/<local address>` naming the TCP transport, until it shuts down gracefully
    /// (the entry is removed when shutdown starts) or dies (the entry goes when its lease
    /// expires). Fails with `INVALID_ARGUMENT` when the server listens on an unspecified
    /// address (`0.0.0.0`), which clients cannot dial (use
    /// [`register_endpoint`](Self::register_endpoint) then); with etcd's status, or
    /// `UNAVAILABLE` when etcd cannot be reached.
    #[cfg(feature = "etcd")]
    pub async fn register(
        &self,
        registry: &crate::etcd::Registry,
        service: &str,
        weight: u32,
    ) -> Result<(), crate::Status> {
        let endpoint = crate::etcd::server_endpoint(
            self.local_addr(),
            crate::balance::Transport::Tcp,
            weight,
        )?;
        self.register_endpoint(registry, service, endpoint).await
    }

    /// Like [`register`](Self::register), listing `endpoint` as it is given: the address
    /// clients reach (behind NAT, or for a server bound to `0.0.0.0`), its transport, weight
    /// and metadata.
    #[cfg(feature = "etcd")]
    pub async fn register_endpoint(
        &self,
        registry: &crate::etcd::Registry,
        service: &str,
        endpoint: crate::etcd::Endpoint,
    ) -> Result<(), crate::Status> {
        let registration = registry.register(service, endpoint).await?;
        self.shared.hosting.registrations.add(registration);
        Ok(())
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> io::Result<()> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: no new connections are
    /// accepted, clients are told (GOAWAY) to start new calls elsewhere, new calls on open
    /// connections fail with `UNAVAILABLE`, and calls in flight (streams included) run to
    /// completion; it returns once their handlers have.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        net::serve_until(self.listener, self.shared, shutdown).await
    }

    /// Serves on a background task; the handle shuts it down. Dropping the handle leaves the
    /// server running for the life of the runtime, as dropping a tokio `JoinHandle` does.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        net::spawn(self.listener, self.shared)
    }
}

/// What the connection's reader needs to know about one call in flight.
struct CallEntry {
    cancel: CancelToken,
    /// When the call's deadline passes, if it has one: a CANCEL near it means the deadline.
    deadline: Option<Instant>,
    requests: Inbound,
    /// Our side of the call: its credit for responses lives there.
    responses: Arc<Responses>,
}

/// The calls of one connection, and the bounds on them.
struct Calls {
    table: Mutex<CallTable<CallEntry>>,
    /// A call finished: the reader, draining at shutdown, checks whether it is done.
    ended: Notify,
    /// Set while the reader drains at shutdown: only then does anyone wait on `ended`.
    draining: std::sync::atomic::AtomicBool,
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, CallTable<CallEntry>> {
        // No user code runs under this lock.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a call that ended.
    fn remove(&self, call_id: u64) {
        self.lock().remove(&call_id);
        if self.draining.load(Ordering::SeqCst) {
            self.ended.notify_waiters();
        }
    }
}

/// One connection's state that its calls' outbound halves share.
struct Connection {
    writer: Arc<FrameWriter>,
    calls: Calls,
    /// The client's limit on frames we send.
    peer_max_frame: AtomicUsize,
    /// The client's window for our responses, per call.
    peer_window: AtomicUsize,
}

fn control_frame(kind: u8, call_id: u64, message: &impl Message) -> Vec<u8> {
    let mut out = Vec::new();
    put_control(&mut out, kind, call_id, message);
    out
}

fn status_frame(call_id: u64, status: &Status) -> Vec<u8> {
    control_frame(
        frame::STATUS,
        call_id,
        &CallStatus {
            code: status.code() as u32,
            message: status.message().to_owned(),
            details: status.details().to_vec(),
            ..Default::default()
        },
    )
}

async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let socket = {
        #[cfg(feature = "tls")]
        match &shared.tls {
            Some(acceptor) => {
                let timeout = shared.limits.handshake_timeout;
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => match Socket::tls(stream.into()) {
                        Ok(socket) => socket,
                        Err(_) => return,
                    },
                    // Not TLS, or too slow to finish the handshake: nothing to serve.
                    _ => return,
                }
            }
            None => Socket::Plain(Arc::new(stream)),
        }
        #[cfg(not(feature = "tls"))]
        Socket::Plain(Arc::new(stream))
    };
    let (read, write) = socket.split();
    let limits = &shared.limits;
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
            max_concurrent_calls: limits.max_concurrent_calls as u64,
            server: true,
            ..Default::default()
        },
    );
    writer.push(&hello);
    // A peer that does not send a client's preface and SETTINGS in time is not a client of
    // ours: a half-finished handshake is closed as surely as a silent one.
    let greeted = tokio::time::timeout(limits.handshake_timeout, async {
        frames.preface().await?;
        match frames.next().await? {
            Some(Incoming::Frame(f)) if f.kind == frame::SETTINGS => {
                let settings = Settings::decode_bytes(&f.payload).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })?;
                if settings.server {
                    // Our own SETTINGS sent back: an echo, not a client.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the peer sent a server's SETTINGS",
                    ));
                }
                Ok(settings)
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the client did not send its SETTINGS",
            )),
        }
    })
    .await;
    let settings = match greeted {
        Ok(Ok(settings)) => settings,
        _ => {
            writer.close(true).await;
            return;
        }
    };
    let connection = Arc::new(Connection {
        writer,
        calls: Calls {
            table: Mutex::new(CallTable::default()),
            ended: Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
        },
        peer_max_frame: AtomicUsize::new(Limits::default().max_frame_size),
        peer_window: AtomicUsize::new(crate::call::DEFAULT_WINDOW),
    });
    apply_settings(&connection, &settings);
    let mut stop = shared.hosting.stop.subscribe();
    let mut stopping = *stop.borrow();
    let mut force = shared.hosting.force.subscribe();
    // Made once, not once per frame: each would register with the watch anew.
    let stop_signal = stop.changed();
    let force_signal = force.changed();
    tokio::pin!(stop_signal, force_signal);
    let mut last_call_id = 0u64;
    let mut goaway_sent = false;
    /// How a connection's loop ended.
    enum Ending {
        /// The client went, or broke the framing: nobody reads what is left.
        ClientGone,
        /// The shutdown's grace period ran out with calls still in flight.
        Forced,
        /// Every call has finished during a graceful shutdown.
        Drained,
    }
    // Handlers of calls read from the bytes at hand get their first poll once those bytes
    // are used up (see `ServerCore::dispatch_batched`).
    let mut batch = shared.hosting.core.handler_batch();
    let ending = loop {
        if !batch.is_empty() && !frames.has_whole_frame() {
            batch.run();
        }
        let incoming = if stopping {
            if !goaway_sent {
                goaway_sent = true;
                connection.calls.draining.store(true, Ordering::SeqCst);
                connection.writer.push(&control_frame(
                    frame::GOAWAY,
                    0,
                    &GoAway {
                        last_call_id,
                        message: "the server is shutting down".to_owned(),
                        ..Default::default()
                    },
                ));
            }
            // Registered before the check, so a call that ends in between still wakes us.
            let ended = connection.calls.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if connection.calls.lock().is_empty() {
                break Ending::Drained;
            }
            tokio::select! {
                biased;
                // The grace period is over: treat the client as gone.
                _ = &mut force_signal => break Ending::Forced,
                () = ended => continue,
                incoming = frames.next() => incoming,
            }
        } else {
            // Shutdown is checked first so that a client that never pauses cannot delay it.
            tokio::select! {
                biased;
                _ = &mut stop_signal => {
                    stopping = true;
                    continue;
                }
                incoming = frames.next() => incoming,
            }
        };
        let incoming = match incoming {
            Ok(Some(incoming)) => incoming,
            // End of stream, or bytes that cannot be framed: this connection is done; others
            // are untouched.
            Ok(None) | Err(_) => break Ending::ClientGone,
        };
        let frame = match incoming {
            Incoming::Frame(frame) => frame,
            Incoming::Oversize { kind, call_id, len } => {
                let status = Status::resource_exhausted(format!(
                    "a frame of {len} bytes is over the server's limit of {} bytes",
                    limits.max_frame_size
                ));
                let known = connection.calls.lock().contains_key(&call_id);
                match kind {
                    frame::HEADERS if !known => {
                        last_call_id = last_call_id.max(call_id);
                        connection.writer.push(&status_frame(call_id, &status));
                    }
                    frame::HEADERS | frame::MESSAGE => fail_call(&connection, call_id, status),
                    // A control frame this large cannot be honest.
                    _ => break Ending::ClientGone,
                }
                continue;
            }
        };
        match frame.kind {
            frame::HEADERS => {
                let call_id = frame.call_id;
                last_call_id = last_call_id.max(call_id);
                if stopping {
                    connection.writer.push(&status_frame(
                        call_id,
                        &Status::unavailable("the server is shutting down"),
                    ));
                    continue;
                }
                start_call(frame.payload, call_id, shared, &connection, &mut batch);
            }
            frame::MESSAGE => {
                let requests = connection
                    .calls
                    .lock()
                    .get(&frame.call_id)
                    .map(|c| c.requests.clone());
                if let Some(requests) = requests {
                    if let Err(status) = requests.push(frame.payload) {
                        fail_call(&connection, frame.call_id, status);
                    } else if frame.flags & frame::END_STREAM != 0 {
                        requests.finish(Ok(()), Metadata::new());
                    }
                }
            }
            frame::HALF_CLOSE => {
                let requests = connection
                    .calls
                    .lock()
                    .get(&frame.call_id)
                    .map(|c| c.requests.clone());
                if let Some(requests) = requests {
                    requests.finish(Ok(()), Metadata::new());
                }
            }
            frame::CANCEL => {
                let entry = connection
                    .calls
                    .lock()
                    .get(&frame.call_id)
                    .map(|c| (c.cancel.clone(), c.deadline));
                if let Some((cancel, deadline)) = entry {
                    cancel.cancel_with(crate::call::client_cancelled(
                        deadline,
                        Status::cancelled("the client cancelled the call"),
                    ));
                }
            }
            frame::WINDOW_UPDATE => {
                let Some(bytes) = frame
                    .payload
                    .first_chunk::<4>()
                    .map(|b| u32::from_be_bytes(*b))
                else {
                    break Ending::ClientGone;
                };
                let responses = connection
                    .calls
                    .lock()
                    .get(&frame.call_id)
                    .map(|c| c.responses.clone());
                if let Some(responses) = responses {
                    responses.credit.grant(bytes);
                }
            }
            frame::SETTINGS => match Settings::decode_bytes(&frame.payload) {
                Ok(settings) => apply_settings(&connection, &settings),
                Err(_) => break Ending::ClientGone,
            },
            // Frame types this version does not know are skipped, so later versions can add
            // some; frames only a server sends are a client's mistake.
            frame::STATUS | frame::GOAWAY => break Ending::ClientGone,
            _ => {}
        }
    };
    // The calls left are over: the client is gone, or the grace period ended.
    let left: Vec<CancelToken> = connection
        .calls
        .lock()
        .values()
        .map(|c| c.cancel.clone())
        .collect();
    let reason = match ending {
        Ending::ClientGone => Status::cancelled("the client's connection closed"),
        _ => Status::unavailable("the server shut down before the call finished"),
    };
    for cancel in left {
        cancel.cancel_with(reason.clone());
    }
    // Handlers not yet polled start now, as spawned ones would, and find their calls over.
    batch.run();
    match ending {
        Ending::ClientGone => connection.writer.abort(),
        // The calls cut short have their UNAVAILABLE queued; the client hears it, then the
        // end of the connection.
        Ending::Forced => connection.writer.close(false).await,
        // Every call has queued its last frame; let them reach the client.
        Ending::Drained => connection.writer.close(true).await,
    }
}

/// Takes the limits a client announced.
fn apply_settings(connection: &Connection, settings: &Settings) {
    if settings.max_frame_size > 0 {
        let max = usize::try_from(settings.max_frame_size).unwrap_or(usize::MAX);
        connection.peer_max_frame.store(max, Ordering::SeqCst);
    }
    if settings.initial_window > 0 {
        let window = usize::try_from(settings.initial_window)
            .unwrap_or(usize::MAX)
            .max(crate::call::DEFAULT_WINDOW);
        connection.peer_window.store(window, Ordering::SeqCst);
    }
}

/// Ends one call early with `status`: the client is sent it, the handler sees the
/// cancellation.
fn fail_call(connection: &Connection, call_id: u64, status: Status) {
    let cancel = connection
        .calls
        .lock()
        .get(&call_id)
        .map(|c| c.cancel.clone());
    if let Some(cancel) = cancel {
        cancel.cancel_with(status);
    }
}

fn start_call(
    payload: Bytes,
    call_id: u64,
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    batch: &mut HandlerBatch,
) {
    let headers = match CallStart::decode(&payload) {
        Ok(headers) => headers,
        Err(e) => {
            connection.writer.push(&status_frame(
                call_id,
                &Status::invalid_argument(format!("cannot decode the call's headers: {e}")),
            ));
            return;
        }
    };
    let limits = &shared.limits;
    let cancel = CancelToken::new();
    let window = limits.effective_window();
    let responses = Arc::new(Responses {
        call_id,
        connection: connection.clone(),
        credit: Credit::new(connection.peer_window.load(Ordering::SeqCst)),
    });
    let (requests_in, requests) = byte_stream(window, Some(responses.clone()));
    let deadline = (headers.timeout_micros > 0)
        .then(|| Instant::now().checked_add(Duration::from_micros(headers.timeout_micros)))
        .flatten();
    {
        let mut table = connection.calls.lock();
        let refusal = if table.contains_key(&call_id) {
            // A reused id: an error for that call alone; the call that holds the id goes on,
            // and the limit on calls still counts it once.
            Some(Status::invalid_argument(format!(
                "call id {call_id} is already in use"
            )))
        } else if table.len() >= limits.max_concurrent_calls {
            Some(Status::resource_exhausted(
                "too many calls in flight on this connection",
            ))
        } else {
            table.insert(
                call_id,
                CallEntry {
                    cancel: cancel.clone(),
                    deadline,
                    requests: requests_in,
                    responses: responses.clone(),
                },
            );
            None
        };
        drop(table);
        if let Some(status) = refusal {
            connection.writer.push(&status_frame(call_id, &status));
            return;
        }
    }
    shared.hosting.core.dispatch_batched(
        IncomingCall {
            service: headers.service,
            method: headers.method,
            deadline,
            metadata: headers.metadata,
            requests,
            responses,
            cancel,
        },
        batch,
    );
}

/// Gives the peer `bytes` of credit back for call `call_id`, in as many WINDOW_UPDATE
/// frames as a u32 needs.
pub(crate) fn send_window_update(writer: &FrameWriter, call_id: u64, bytes: usize) {
    let mut out = Vec::with_capacity(frame::HEADER_LEN + 4);
    let mut left = bytes;
    while left > 0 {
        let step = left.min(u32::MAX as usize);
        put_frame(
            &mut out,
            frame::WINDOW_UPDATE,
            0,
            call_id,
            &(step as u32).to_be_bytes(),
        );
        left -= step;
    }
    writer.push(&out);
}

/// The responses of one call, written as frames on its connection; and the client's credit
/// given back as the handler reads the requests.
struct Responses {
    call_id: u64,
    connection: Arc<Connection>,
    /// The client's credit for our responses.
    credit: Credit,
}

impl FlowControl for Responses {
    fn consumed(&self, bytes: usize) {
        send_window_update(&self.connection.writer, self.call_id, bytes);
    }
}

impl Outbound for Responses {
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

    fn send_headers(&self, metadata: Metadata) {
        self.connection.writer.push(&control_frame(
            frame::HEADERS,
            self.call_id,
            &ResponseHeaders {
                metadata: metadata_to_wire(&metadata),
                ..Default::default()
            },
        ));
    }

    fn finish(&self, end: CallEnd) {
        let CallEnd {
            headers,
            message,
            status,
            trailers,
        } = end;
        // The common unary answer, OK with no metadata, is one frame.
        if let (Ok(()), Some(message), true) = (
            &status,
            &message,
            trailers.is_empty() && headers.as_ref().is_none_or(Metadata::is_empty),
        ) {
            self.end_call(|out| {
                put_frame(out, frame::MESSAGE, frame::END_OK, self.call_id, message)
            });
            return;
        }
        let mut out =
            Vec::with_capacity(3 * frame::HEADER_LEN + 32 + message.as_ref().map_or(0, Bytes::len));
        let headers = match (headers, &message) {
            // A response message carries the headers: send them in front of it.
            (Some(headers), Some(_)) => {
                if !headers.is_empty() {
                    put_control(
                        &mut out,
                        frame::HEADERS,
                        self.call_id,
                        &ResponseHeaders {
                            metadata: metadata_to_wire(&headers),
                            ..Default::default()
                        },
                    );
                }
                Metadata::new()
            }
            (Some(headers), None) => headers,
            (None, _) => Metadata::new(),
        };
        if let Some(message) = message {
            put_frame(&mut out, frame::MESSAGE, 0, self.call_id, &message);
        }
        let (code, text, details) = match &status {
            Ok(()) => (0, String::new(), Vec::new()),
            Err(status) => (
                status.code() as u32,
                status.message().to_owned(),
                status.details().to_vec(),
            ),
        };
        put_control(
            &mut out,
            frame::STATUS,
            self.call_id,
            &CallStatus {
                code,
                message: text,
                headers: metadata_to_wire(&headers),
                trailers: metadata_to_wire(&trailers),
                details,
                ..Default::default()
            },
        );
        self.end_call(|buf| buf.extend_from_slice(&out));
    }
}

impl Responses {
    /// Queues the call's last frames, which `put` writes, then forgets the call: in that order,
    /// so that a graceful shutdown that finds no call left finds every answer queued.
    fn end_call(&self, put: impl FnOnce(&mut Vec<u8>)) {
        let calls = &self.connection.calls;
        // Other calls in flight will add frames soon: let the flush task gather them.
        let busy = calls.lock().len() > 1;
        self.connection.writer.push_with(busy, put);
        calls.remove(self.call_id);
    }
}
