use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::Notify;

use super::wire::{
    decode_timeout, frame, is_grpc_content_type, metadata_from_headers, put_metadata, put_status,
    Deframer, Encoding, ACCEPT_ENCODING, CONTENT_TYPE,
};
use super::{keep_alive, poll_send_ready, pump_messages, status_from_h2, Limits};
use crate::call::{byte_stream, CallEnd, Inbound, IncomingCall, Outbound, ServerCore};
use crate::interceptor::ServerInterceptor;
use crate::net::{self, Host, Hosting, ServerHandle};
use crate::service::{BoxFuture, Service};
use crate::{CancelToken, Metadata, Status};

/// Collects services, interceptors and limits, then binds a [`Server`].
#[derive(Default)]
pub struct ServerBuilder {
    services: Vec<Arc<dyn Service>>,
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
    limits: Limits,
    send_compressed: Option<Encoding>,
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

    /// Sets the largest request message accepted, in bytes (default 4 MiB).
    pub fn max_receive_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_receive_message_size = bytes;
        self
    }

    /// Sets every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends HTTP/2 PING every `interval` and closes the connection when one is not
    /// answered within `timeout` (see [`Limits::keepalive_interval`]).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.limits = self.limits.keepalive(interval, timeout);
        self
    }

    /// Compresses response messages with `encoding` for clients that accept it (their
    /// `grpc-accept-encoding`); others get them uncompressed. Compressed requests are read
    /// whatever this is set to.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.send_compressed = Some(encoding);
        self
    }

    /// Serves over TLS with this identity (and client verification, if it asks for it);
    /// ALPN `h2`. Clients that do not complete the TLS handshake within the handshake timeout
    /// are dropped.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls.acceptor_for(crate::tls::H2));
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
                send_compressed: self.send_compressed,
                #[cfg(feature = "tls")]
                tls: self.tls,
            }),
        })
    }
}

/// A bound gRPC server (cleartext HTTP/2 with prior knowledge) hosting any number of
/// services; many connections, and many concurrent streams on each.
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
    /// `<service>/<local address>` naming the gRPC transport, until it shuts down gracefully
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
            crate::balance::Transport::Grpc,
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
    /// accepted, every connection is sent HTTP/2 GOAWAY (clients start new calls elsewhere),
    /// and calls in flight (streams included) run to completion; it returns once their
    /// handlers have.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        net::serve_until(self.listener, self.shared, shutdown).await
    }

    /// Serves on a background task; the handle shuts it down. Dropping the handle leaves the
    /// server running for the life of the runtime, as dropping a tokio `JoinHandle` does.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        net::spawn(self.listener, self.shared)
    }
}

struct Shared {
    hosting: Hosting,
    limits: Limits,
    send_compressed: Option<Encoding>,
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

/// The calls open on one connection, so that a connection that ends takes them with it.
#[derive(Default)]
struct Calls {
    next: AtomicU64,
    open: Mutex<HashMap<u64, CancelToken>>,
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, CancelToken>> {
        // No user code runs under this lock.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        let accepted =
            tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(stream)).await;
        if let Ok(Ok(stream)) = accepted {
            serve_h2(stream, shared).await;
        }
        // Not TLS, or too slow to finish the handshake: nothing to serve.
        return;
    }
    serve_h2(stream, shared).await;
}

async fn serve_h2<T>(stream: T, shared: &Arc<Shared>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.limits;
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(limits.stream_window)
        .initial_connection_window_size(limits.connection_window)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_size);
    let handshake = builder.handshake::<_, Bytes>(stream);
    let mut connection = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(connection)) => connection,
        // Not HTTP/2, or too slow to say so: nothing to serve.
        _ => return,
    };
    let calls = Arc::new(Calls::default());
    let keepalive = keep_alive(connection.ping_pong(), limits, || true);
    tokio::pin!(keepalive);
    let mut stop = shared.hosting.stop.subscribe();
    let mut force = shared.hosting.force.subscribe();
    let mut stopping = false;
    loop {
        if !stopping && *stop.borrow_and_update() {
            stopping = true;
            connection.graceful_shutdown();
        }
        tokio::select! {
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => start_call(request, respond, shared, &calls),
                // The connection failed or closed; with GOAWAY sent, it closes once its
                // streams are done.
                Some(Err(_)) | None => break,
            },
            _ = stop.changed(), if !stopping => {}
            _ = force.changed() => if *force.borrow() { break },
            // The client stopped answering PING: its calls end with the connection.
            () = &mut keepalive => break,
        }
    }
    let orphans: Vec<CancelToken> = calls.lock().drain().map(|(_, token)| token).collect();
    for token in orphans {
        token.cancel_with(Status::unavailable("the connection closed"));
    }
}

/// A response that is not gRPC: an HTTP status and an empty body.
fn refuse(mut respond: SendResponse<Bytes>, status: StatusCode) {
    let mut response = Response::new(());
    *response.status_mut() = status;
    let _ = respond.send_response(response, true);
}

/// A gRPC error before any handler ran, as a trailers-only response.
fn fail(respond: SendResponse<Bytes>, status: Status, extra: Option<(&'static str, &str)>) {
    let responses = Responses::new(respond, usize::MAX, None, None);
    let mut end = CallEnd::error(status);
    if let Some((key, value)) = extra {
        responses.extra_header(key, value);
    }
    end.headers = Some(Metadata::new());
    responses.finish(end);
}

fn start_call(
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    shared: &Arc<Shared>,
    calls: &Arc<Calls>,
) {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return refuse(respond, StatusCode::METHOD_NOT_ALLOWED);
    }
    if !is_grpc_content_type(&parts.headers) {
        return refuse(respond, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let path = parts.uri.path();
    let Some((service, method)) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'))
    else {
        return fail(
            respond,
            Status::unimplemented(format!("malformed method path {path:?}")),
            None,
        );
    };
    // What the client compresses with, if anything; an encoding this server cannot read is
    // refused with the ones it can, as the protocol asks.
    let request_encoding = match parts.headers.get("grpc-encoding") {
        None => None,
        Some(name) if name == "identity" => None,
        Some(name) => match name.to_str().ok().and_then(Encoding::from_name) {
            Some(encoding) => Some(encoding),
            None => {
                let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
                return fail(
                    respond,
                    Status::unimplemented(format!(
                        "the message encoding {name:?} is not supported"
                    )),
                    Some(("grpc-accept-encoding", ACCEPT_ENCODING)),
                );
            }
        },
    };
    // Responses are compressed only when this server is asked to and the client accepts it.
    let response_encoding = shared.send_compressed.filter(|encoding| {
        parts
            .headers
            .get_all("grpc-accept-encoding")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|name| name.trim() == encoding.name())
    });
    let deadline = match parts.headers.get("grpc-timeout") {
        None => None,
        Some(value) => match decode_timeout(value.as_bytes()) {
            // A timeout too large for the clock is no deadline at all.
            Some(timeout) => Instant::now().checked_add(timeout),
            None => {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                return fail(
                    respond,
                    Status::internal(format!("malformed grpc-timeout {value:?}")),
                    None,
                );
            }
        },
    };
    let limits = &shared.limits;
    let responses = Arc::new(Responses::new(
        respond,
        limits.max_send_message_size,
        response_encoding,
        deadline,
    ));
    let (inbound, requests) = byte_stream(limits.window, None);
    let cancel = CancelToken::new();
    let id = calls.next.fetch_add(1, Ordering::Relaxed);
    calls.lock().insert(id, cancel.clone());
    tokio::spawn(read_requests(
        body,
        inbound,
        responses.clone(),
        cancel.clone(),
        (limits.max_receive_message_size, request_encoding),
        (calls.clone(), id),
    ));
    shared.hosting.core.dispatch(IncomingCall {
        service,
        method,
        deadline,
        metadata: metadata_from_headers(&parts.headers),
        requests,
        responses,
        cancel,
    });
}

/// Moves a call's requests from HTTP/2 into its request stream, and watches for the client
/// resetting the stream, until the call ends.
async fn read_requests(
    mut body: RecvStream,
    inbound: Inbound,
    responses: Arc<Responses>,
    cancel: CancelToken,
    (limit, encoding): (usize, Option<Encoding>),
    (calls, id): (Arc<Calls>, u64),
) {
    let pump = async {
        let mut deframer = Deframer::new(limit, encoding);
        pump_messages(&mut body, &inbound, &mut deframer).await?;
        inbound.finish(Ok(()), Metadata::new());
        Ok::<(), Status>(())
    };
    let reset = std::future::poll_fn(|cx| responses.poll_reset(cx));
    tokio::pin!(reset);
    let ended = responses.ended();
    tokio::pin!(ended);
    tokio::select! {
        result = pump => match result {
            Ok(()) => tokio::select! {
                reason = &mut reset => cancel.cancel_with(reason),
                () = &mut ended => {}
            },
            // A request stream that breaks off is the client resetting it, which it does at
            // its deadline too: say which.
            Err(status) if status.code() == crate::Code::Cancelled => {
                cancel.cancel_with(crate::call::client_cancelled(responses.deadline, status));
            }
            Err(status) => cancel.cancel_with(status),
        },
        reason = &mut reset => cancel.cancel_with(reason),
        () = &mut ended => {}
    }
    calls.lock().remove(&id);
}

/// Where a call's response stands on the wire.
enum Reply {
    /// No headers sent yet.
    Pending(SendResponse<Bytes>),
    /// Headers sent; messages and trailers go here.
    Open(SendStream<Bytes>),
    /// Trailers (or a trailers-only response) sent, or the stream is gone.
    Done,
}

/// The response side of one server call.
struct Responses {
    reply: Mutex<Reply>,
    /// Headers that gRPC itself adds to the response headers.
    extra: Mutex<Vec<(&'static str, String)>>,
    /// HTTP/2 wakes one task for both new send capacity and a reset, but a handler sending
    /// and the request reader watching for a reset are two: both are woken through this.
    wakers: Arc<SendWakers>,
    limit: usize,
    /// What response messages are compressed with.
    encoding: Option<Encoding>,
    /// Whether the next messages are compressed (with `encoding`, if there is one).
    compress: AtomicBool,
    done: AtomicBool,
    done_notify: Notify,
    /// The call's deadline, if it has one: a reset near it means the deadline passed.
    deadline: Option<Instant>,
}

#[derive(Default)]
struct SendWakers {
    sender: Mutex<Option<Waker>>,
    watcher: Mutex<Option<Waker>>,
}

impl SendWakers {
    fn set(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

impl Wake for SendWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.sender, &self.watcher] {
            let waker = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl Responses {
    fn new(
        respond: SendResponse<Bytes>,
        limit: usize,
        encoding: Option<Encoding>,
        deadline: Option<Instant>,
    ) -> Responses {
        Responses {
            deadline,
            encoding,
            compress: AtomicBool::new(true),
            reply: Mutex::new(Reply::Pending(respond)),
            extra: Mutex::new(Vec::new()),
            wakers: Arc::default(),
            limit,
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Reply> {
        // No user code runs under this lock.
        self.reply.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn extra_header(&self, key: &'static str, value: &str) {
        self.extra
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, value.to_owned()));
    }

    /// The response headers: status 200, gRPC's content type, and `metadata`. Metadata that
    /// HTTP/2 cannot carry (a key gRPC reserves, a value that is not visible ASCII) is left
    /// out.
    fn header_map(&self, metadata: &Metadata) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        headers.insert(
            "grpc-accept-encoding",
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        if let Some(encoding) = self.encoding {
            headers.insert("grpc-encoding", HeaderValue::from_static(encoding.name()));
        }
        for (key, value) in self.extra.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*key, value);
            }
        }
        put_metadata_lenient(&mut headers, metadata);
        headers
    }

    /// Sends the headers if they have not gone out; the stream to send on, if it is open.
    fn open<'a>(
        &self,
        reply: &'a mut Reply,
        metadata: &Metadata,
    ) -> Option<&'a mut SendStream<Bytes>> {
        if !matches!(reply, Reply::Pending(_)) {
            // Sent already, or gone.
        } else if let Reply::Pending(mut respond) = std::mem::replace(reply, Reply::Done) {
            let mut response = Response::new(());
            *response.headers_mut() = self.header_map(metadata);
            if let Ok(stream) = respond.send_response(response, false) {
                *reply = Reply::Open(stream);
            }
        }
        match reply {
            Reply::Open(stream) => Some(stream),
            _ => None,
        }
    }

    /// Completes with the reason when the client resets the stream.
    fn poll_reset(&self, cx: &mut Context<'_>) -> Poll<Status> {
        SendWakers::set(&self.wakers.watcher, cx.waker());
        let waker = Waker::from(self.wakers.clone());
        let mut shared = Context::from_waker(&waker);
        let polled = match &mut *self.lock() {
            Reply::Pending(respond) => respond.poll_reset(&mut shared),
            Reply::Open(stream) => stream.poll_reset(&mut shared),
            Reply::Done => return Poll::Pending,
        };
        match polled {
            Poll::Ready(Ok(reason)) => Poll::Ready(match status_from_reset(reason) {
                // A client cancels at its deadline: say which.
                status if reason == h2::Reason::CANCEL => {
                    crate::call::client_cancelled(self.deadline, status)
                }
                status => status,
            }),
            Poll::Ready(Err(e)) => Poll::Ready(status_from_h2(&e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Completes once the call's end has been sent.
    async fn ended(&self) {
        crate::wait::until(&self.done_notify, || {
            self.done.load(Ordering::SeqCst).then_some(())
        })
        .await
    }

    /// What the next message is compressed with, if anything.
    fn message_encoding(&self) -> Option<Encoding> {
        self.encoding
            .filter(|_| self.compress.load(Ordering::SeqCst))
    }

    fn mark_done(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.done_notify.notify_waiters();
    }
}

fn status_from_reset(reason: h2::Reason) -> Status {
    if reason == h2::Reason::CANCEL || reason == h2::Reason::NO_ERROR {
        Status::cancelled("the client cancelled the call")
    } else {
        Status::cancelled(format!("the client reset the call ({reason})"))
    }
}

/// Adds what of `metadata` HTTP/2 can carry.
fn put_metadata_lenient(headers: &mut HeaderMap, metadata: &Metadata) {
    for (key, value) in metadata.iter() {
        let mut one = Metadata::new();
        one.append(key, value);
        let _ = put_metadata(headers, &one);
    }
}

impl Outbound for Responses {
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            let framed = frame(&message, self.message_encoding())?;
            let waker = Waker::from(self.wakers.clone());
            std::future::poll_fn(|cx| {
                SendWakers::set(&self.wakers.sender, cx.waker());
                let mut shared = Context::from_waker(&waker);
                let mut reply = self.lock();
                match self.open(&mut reply, &Metadata::new()) {
                    Some(stream) => poll_send_ready(stream, framed.len(), &mut shared),
                    None => Poll::Ready(Err(Status::cancelled("the call has ended"))),
                }
            })
            .await?;
            match &mut *self.lock() {
                Reply::Open(stream) => stream
                    .send_data(framed, false)
                    .map_err(|e| status_from_h2(&e)),
                _ => Err(Status::cancelled("the call has ended")),
            }
        })
    }

    fn max_message_size(&self) -> usize {
        self.limit
    }

    fn set_compression(&self, enabled: bool) {
        self.compress.store(enabled, Ordering::SeqCst);
    }

    fn send_headers(&self, metadata: Metadata) {
        let mut reply = self.lock();
        self.open(&mut reply, &metadata);
    }

    fn finish(&self, end: CallEnd) {
        let mut reply = self.lock();
        let mut trailers = HeaderMap::new();
        put_status(&mut trailers, &end.status);
        put_metadata_lenient(&mut trailers, &end.trailers);
        match std::mem::replace(&mut *reply, Reply::Done) {
            // Nothing sent yet and no message to send: one HEADERS frame ends the call.
            Reply::Pending(mut respond) if end.message.is_none() => {
                let mut response = Response::new(());
                let mut headers = self.header_map(&end.headers.unwrap_or_default());
                headers.extend(trailers);
                *response.headers_mut() = headers;
                let _ = respond.send_response(response, true);
            }
            state => {
                *reply = state;
                let headers = end.headers.unwrap_or_default();
                if let Some(stream) = self.open(&mut reply, &headers) {
                    if let Some(message) = end.message {
                        match frame(&message, self.message_encoding()) {
                            Ok(framed) => {
                                let _ = stream.send_data(framed, false);
                            }
                            Err(status) => {
                                trailers = HeaderMap::new();
                                put_status(&mut trailers, &Err(status));
                            }
                        }
                    }
                    let _ = stream.send_trailers(trailers);
                }
                *reply = Reply::Done;
            }
        }
        drop(reply);
        self.mark_done();
    }
}
