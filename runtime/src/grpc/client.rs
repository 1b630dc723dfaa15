use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use http::{HeaderValue, Method, Request};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::wire::{
    encode_timeout, frame, is_grpc_content_type, metadata_from_headers, put_metadata,
    status_from_headers, status_from_http, Deframer, Encoding, ACCEPT_ENCODING, CONTENT_TYPE,
};
use super::{keep_alive, poll_send_ready, pump_messages, status_from_h2, Limits};
use crate::call::{byte_stream, ClientCall, FlowControl, Inbound, Outbound, OutgoingCall};
use crate::net::{Endpoint, Handshake, IntoTarget};
use crate::service::{BoxFuture, MethodDescriptor, RpcChannel};
use crate::{Metadata, Status};

/// A client channel to one gRPC server over cleartext HTTP/2 (prior knowledge), shared by
/// every call made through it.
///
/// Like [`TcpChannel`](crate::tcp::TcpChannel) it owns one connection to its target: resolved
/// again on every attempt, bounded by a connect timeout, with backoff after a failure, and
/// replaced once the server closes it or sends GOAWAY. Every call is an HTTP/2 stream, so any
/// number may be in flight at once. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct GrpcChannel {
    endpoint: Arc<Endpoint<Grpc>>,
}

impl std::fmt::Debug for GrpcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcChannel")
            .field("target", &self.endpoint.target)
            .finish()
    }
}

/// Configures a [`GrpcChannel`].
#[derive(Clone, Debug)]
pub struct GrpcChannelBuilder {
    target: String,
    limits: Limits,
    connect_timeout: Duration,
    send_compressed: Option<Encoding>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
}

impl GrpcChannelBuilder {
    /// Sets every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends HTTP/2 PING every `interval` while calls are open and closes the connection when one is not
    /// answered within `timeout` (see [`Limits::keepalive_interval`]).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.limits = self.limits.keepalive(interval, timeout);
        self
    }

    /// Sets the largest response message accepted, in bytes (default 4 MiB).
    pub fn max_receive_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_receive_message_size = bytes;
        self
    }

    /// Bounds each connection attempt, HTTP/2 handshake included (default 20 s, gRPC's
    /// minimum connect timeout). A call's own deadline bounds its wait too, whichever is
    /// sooner.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects over TLS (ALPN `h2`), verifying the server as `tls` says.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls.for_transport(crate::tls::H2));
        self
    }

    /// Compresses request messages with `encoding` (`grpc-encoding`). Compressed responses
    /// are read whatever this is set to: every request offers `gzip`.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.send_compressed = Some(encoding);
        self
    }

    /// A channel that connects when the first call needs it.
    pub fn connect_lazy(self) -> GrpcChannel {
        let grpc = Grpc {
            authority: self.target.clone(),
            limits: self.limits,
            send_compressed: self.send_compressed,
            #[cfg(feature = "tls")]
            tls: self.tls,
        };
        GrpcChannel {
            endpoint: Arc::new(Endpoint::new(self.target, grpc, self.connect_timeout)),
        }
    }

    /// A channel that has connected once: fails if that first connection cannot be made.
    pub async fn connect(self) -> io::Result<GrpcChannel> {
        let channel = self.connect_lazy();
        channel.endpoint.connect().await?;
        Ok(channel)
    }
}

impl GrpcChannel {
    /// Configures a channel to `target`: see [`IntoTarget`].
    pub fn builder(target: impl IntoTarget) -> GrpcChannelBuilder {
        GrpcChannelBuilder {
            target: target.into_target(),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(20),
            send_compressed: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connects to `target` with the defaults; fails if the first connection cannot be made.
    pub async fn connect(target: impl IntoTarget) -> io::Result<GrpcChannel> {
        Self::builder(target).connect().await
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

/// gRPC's opening: HTTP/2's preface and SETTINGS.
struct Grpc {
    /// `:authority` of every request.
    authority: String,
    limits: Limits,
    send_compressed: Option<Encoding>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
}

struct Connection {
    send: SendRequest<Bytes>,
    /// The connection's task has ended: closed by either side, or failed.
    closed: Arc<AtomicBool>,
    /// The server did not answer a keepalive PING, which closed the connection.
    silent: Arc<AtomicBool>,
    /// Calls open on the connection: for keepalive, which pings only while there are some,
    /// and to keep to the server's limit of concurrent streams.
    open_calls: Arc<AtomicUsize>,
    /// Told when a call ends, for calls waiting for a stream.
    stream_freed: Notify,
}

/// A call counted as open on its connection until dropped.
struct OpenCall(Arc<Connection>);

impl OpenCall {
    /// Waits until the server's limit of concurrent streams (its SETTINGS) admits one more
    /// call. Calls wait here rather than in HTTP/2's queue, so a call that gives up while it
    /// waits (its deadline, a cancellation) never reaches the server.
    async fn new(connection: &Arc<Connection>) -> OpenCall {
        crate::wait::until(&connection.stream_freed, || {
            let max = connection.send.current_max_send_streams();
            connection
                .open_calls
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                    (open < max).then_some(open + 1)
                })
                .ok()
        })
        .await;
        OpenCall(connection.clone())
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.open_calls.fetch_sub(1, Ordering::SeqCst);
        self.0.stream_freed.notify_waiters();
    }
}

impl Handshake for Grpc {
    type Connection = Connection;

    fn handshake(&self, stream: TcpStream) -> BoxFuture<'_, io::Result<Arc<Connection>>> {
        Box::pin(async move {
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                let (connector, name) = tls
                    .connector(&self.authority)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let stream = tokio::time::timeout(
                    self.limits.handshake_timeout,
                    connector.connect(name, stream),
                )
                .await
                .map_err(|_| timed_out("TLS"))?
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("the TLS handshake failed (does the server use TLS?): {e}"),
                    )
                })?;
                if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server did not agree to HTTP/2 in the TLS handshake (ALPN h2)",
                    ));
                }
                return self.h2_handshake(stream).await;
            }
            self.h2_handshake(stream).await
        })
    }

    fn usable(connection: &Connection) -> bool {
        !connection.closed.load(Ordering::SeqCst)
    }
}

/// The error of a failed HTTP/2 handshake. A server of another protocol may answer with
/// bytes that are not HTTP/2 (named from `first`, the first bytes it sent) or close the
/// connection at once (a broken pipe): either way the likely causes are named.
fn describe_handshake_error(error: &h2::Error, first: &[u8]) -> io::Error {
    const HINT: &str = "is it a gRPC server? A TLS server needs the channel's .tls(..)";
    use crate::net::Peer;
    let peer = match Peer::from_first_bytes(first) {
        Some(peer) => {
            let advice = match peer {
                Peer::RustRpcTcp => ", which `rust_rpc::tcp::TcpChannel` reaches",
                Peer::Tls => ": the channel needs .tls(..)",
                Peer::Http1 | Peer::HttpPage | Peer::Http2 => ", not a gRPC one",
            };
            format!("{} answered{advice}", peer.name())
        }
        None if first.is_empty() => HINT.to_owned(),
        None => format!("{HINT} (its first bytes: {})", crate::net::hex(first)),
    };
    let message = if error.is_io() {
        format!("the connection failed during the HTTP/2 handshake ({error}): {peer}")
    } else {
        format!("the server does not speak HTTP/2 ({error}): {peer}")
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A stream that keeps a copy of the first bytes it reads, so that a failed handshake can say
/// what the peer speaks; after those, reads pass through untouched.
struct FirstBytes<T> {
    inner: T,
    first: Arc<Mutex<Vec<u8>>>,
    recording: bool,
}

impl<T> FirstBytes<T> {
    /// How much of the peer's opening names it: status lines, prefaces, TLS records.
    const KEPT: usize = 16;

    fn new(inner: T) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let first = Arc::new(Mutex::new(Vec::new()));
        let stream = FirstBytes {
            inner,
            first: first.clone(),
            recording: true,
        };
        (stream, first)
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstBytes<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.recording && buf.filled().len() > before {
            let read = &buf.filled()[before..];
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            let room = Self::KEPT - first.len();
            first.extend_from_slice(&read[..read.len().min(room)]);
            let full = first.len() == Self::KEPT;
            drop(first);
            self.recording = !full;
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FirstBytes<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, data)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the server did not complete the {what} handshake in time"),
    )
}

impl Grpc {
    async fn h2_handshake<T>(&self, stream: T) -> io::Result<Arc<Connection>>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let limits = &self.limits;
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(limits.stream_window)
            .initial_connection_window_size(limits.connection_window)
            .max_header_list_size(limits.max_header_list_size);
        let (stream, first) = FirstBytes::new(stream);
        let failed = |e: &h2::Error| {
            let first = first.lock().unwrap_or_else(|e| e.into_inner());
            describe_handshake_error(e, &first)
        };
        let (send, mut connection) =
            tokio::time::timeout(limits.handshake_timeout, builder.handshake(stream))
                .await
                .map_err(|_| timed_out("HTTP/2"))?
                .map_err(|e| failed(&e))?;
        let mut pings = connection.ping_pong();
        // The handshake above only sent our preface: a PING answered proves that the server
        // speaks HTTP/2, so a server of another protocol is named here rather than in every
        // call's error.
        if let Some(probe) = pings.as_mut() {
            let answered = tokio::time::timeout(limits.handshake_timeout, async {
                tokio::select! {
                    pong = probe.ping(h2::Ping::opaque()) => pong.map_err(Some),
                    ended = &mut connection => Err(ended.err()),
                }
            })
            .await
            .map_err(|_| timed_out("HTTP/2"))?;
            match answered {
                Ok(_) => {}
                Err(Some(e)) => return Err(failed(&e)),
                Err(None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the server closed the connection during the HTTP/2 handshake",
                    ))
                }
            }
        }
        let closed = Arc::new(AtomicBool::new(false));
        let open_calls = Arc::new(AtomicUsize::new(0));
        let (flag, open, limits) = (closed.clone(), open_calls.clone(), limits.clone());
        let silent = Arc::new(AtomicBool::new(false));
        let unanswered = silent.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = &mut connection => {}
                // The server stopped answering: dropping the connection fails its calls.
                () = keep_alive(pings, &limits, || open.load(Ordering::SeqCst) > 0) => {
                    unanswered.store(true, Ordering::SeqCst);
                }
            }
            flag.store(true, Ordering::SeqCst);
        });
        Ok(Arc::new(Connection {
            send,
            closed,
            silent,
            open_calls,
            stream_freed: Notify::new(),
        }))
    }

    /// `http`, or `https` over TLS.
    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    fn request(
        &self,
        method: &'static MethodDescriptor,
        call: &OutgoingCall,
    ) -> Result<Request<()>, Status> {
        let uri = format!(
            "{}://{}/{}/{}",
            self.scheme(),
            self.authority,
            method.service,
            method.name
        );
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri
            .parse()
            .map_err(|_| Status::internal(format!("cannot make a request URI of {uri:?}")))?;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            "grpc-accept-encoding",
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        if let Some(encoding) = self.send_compressed {
            headers.insert("grpc-encoding", HeaderValue::from_static(encoding.name()));
        }
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("rust-rpc/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(deadline) = call.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(value) = HeaderValue::from_str(&encode_timeout(left)) {
                headers.insert("grpc-timeout", value);
            }
        }
        put_metadata(headers, &call.metadata)?;
        Ok(request)
    }
}

async fn start(
    endpoint: &Arc<Endpoint<Grpc>>,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
) -> Result<ClientCall, Status> {
    let limits = &endpoint.handshake.limits;
    if let Some(request) = &call.request {
        if request.len() > limits.max_send_message_size {
            return Err(Status::resource_exhausted(format!(
                "a request of {} bytes is over the limit of {} bytes",
                request.len(),
                limits.max_send_message_size
            )));
        }
    }
    let encoding = endpoint.handshake.send_compressed;
    let compress = call.compress.unwrap_or(true);
    let first = call
        .request
        .as_ref()
        .map(|request| frame(request, encoding.filter(|_| compress)))
        .transpose()?;
    let mut attempts = 0;
    let (response, stream, open) = loop {
        attempts += 1;
        match open_stream(endpoint, method, &call, first.clone()).await {
            Ok(opened) => break opened,
            Err(Open::Refused(_)) if attempts < MAX_ATTEMPTS => continue,
            Err(Open::Refused(status) | Open::Failed(status)) => return Err(status),
        }
    };
    let requests = Arc::new(Requests {
        stream: Mutex::new(stream),
        limit: limits.max_send_message_size,
        encoding,
        compress: AtomicBool::new(compress),
        sent: AtomicBool::new(false),
        closed: AtomicBool::new(false),
    });
    let (inbound, responses) = byte_stream(limits.window, Some(requests.clone()));
    // A call can be sent again if the server refuses it unread: its one request is kept, and a
    // request stream is opened again while nothing has been sent on it.
    let resend = Resend {
        endpoint: endpoint.clone(),
        method,
        call,
        first,
        attempts,
    };
    tokio::spawn(read_responses(
        response,
        open,
        inbound,
        limits.max_receive_message_size,
        requests.clone(),
        resend,
    ));
    Ok(ClientCall {
        requests,
        responses,
    })
}

/// Attempts at a call that servers refuse unread (REFUSED_STREAM, or a stream above a GOAWAY's
/// last stream id), before the call fails with `UNAVAILABLE`.
const MAX_ATTEMPTS: u32 = 5;

/// Why a stream could not be opened.
enum Open {
    /// The server did not process it: it may go again.
    Refused(Status),
    Failed(Status),
}

/// Whether `error` says the server never processed the stream, so that sending it again
/// cannot do anything twice: REFUSED_STREAM (RFC 9113, 8.7), or a graceful GOAWAY whose last
/// stream id is below the stream's.
fn never_processed(error: &h2::Error) -> bool {
    error.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (error.is_go_away() && error.reason() == Some(h2::Reason::NO_ERROR))
}

/// Opens a stream for `call` on the endpoint's connection and sends its headers (and its one
/// request, if `first`).
async fn open_stream(
    endpoint: &Arc<Endpoint<Grpc>>,
    method: &'static MethodDescriptor,
    call: &OutgoingCall,
    first: Option<Bytes>,
) -> Result<(ResponseFuture, SendStream<Bytes>, OpenCall), Open> {
    let request = endpoint
        .handshake
        .request(method, call)
        .map_err(Open::Failed)?;
    let connection = endpoint.connection().await.map_err(Open::Failed)?;
    let open = OpenCall::new(&connection).await;
    let refused = |e: h2::Error| {
        if never_processed(&e) || e.is_go_away() {
            // Draining or gone: the next attempt opens a new connection.
            connection.closed.store(true, Ordering::SeqCst);
            Open::Refused(status_from_h2(&e))
        } else {
            Open::Failed(status_from_h2(&e))
        }
    };
    let mut send = connection.send.clone().ready().await.map_err(refused)?;
    let (response, mut stream) = send.send_request(request, false).map_err(refused)?;
    if let Some(first) = first {
        // The one request and the end of the stream; HTTP/2 holds what its window does not
        // yet admit.
        stream.send_data(first, true).map_err(refused)?;
    }
    Ok((response, stream, open))
}

/// `status`, or why the connection closed if keepalive closed it: the errors HTTP/2 reports
/// then (a broken pipe, a stream closed) do not say.
fn explain(open: &OpenCall, status: Status) -> Status {
    if open.0.silent.load(Ordering::SeqCst) {
        return Status::unavailable(
            "the server did not answer a keepalive PING in time, so its connection was closed",
        );
    }
    status
}

/// What it takes to send a call again: its one request, if it has one; a call with a
/// request stream goes again only while none of its requests has been sent.
struct Resend {
    endpoint: Arc<Endpoint<Grpc>>,
    method: &'static MethodDescriptor,
    call: OutgoingCall,
    first: Option<Bytes>,
    attempts: u32,
}

/// Moves a call's response headers, messages and end from HTTP/2 into its response stream;
/// sends the call again while servers refuse it unread (a call with a request stream, only
/// while none of its requests has gone out).
async fn read_responses(
    mut response: ResponseFuture,
    mut open: OpenCall,
    inbound: Inbound,
    limit: usize,
    requests: Arc<Requests>,
    mut resend: Resend,
) {
    let response = loop {
        let e = match response.await {
            Ok(response) => break response,
            Err(e) => e,
        };
        if never_processed(&e) && resend.first.is_some() && !inbound.is_ended() {
            // A channel over many endpoints sends it to another server; the one that refused
            // it is likely going away.
            if let Some(replay) = resend.call.replay.take() {
                if e.is_go_away() {
                    open.0.closed.store(true, Ordering::SeqCst);
                }
                return replay.run(inbound);
            }
        }
        let Some(again) = Some(&mut resend).filter(|r| {
            never_processed(&e)
                && r.attempts < MAX_ATTEMPTS
                && !inbound.is_ended()
                && (r.first.is_some() || !requests.sent.load(Ordering::SeqCst))
        }) else {
            return inbound.abort(explain(&open, status_from_h2(&e)));
        };
        if e.is_go_away() {
            open.0.closed.store(true, Ordering::SeqCst);
        }
        let opened = loop {
            again.attempts += 1;
            let first = again.first.clone();
            match open_stream(&again.endpoint, again.method, &again.call, first).await {
                Ok(opened) => break Ok(opened),
                Err(Open::Refused(_)) if again.attempts < MAX_ATTEMPTS => continue,
                Err(Open::Refused(status) | Open::Failed(status)) => break Err(status),
            }
        };
        match opened {
            Ok((next, mut stream, next_open)) => {
                let mut current = requests.lock();
                if again.first.is_none() {
                    if requests.sent.load(Ordering::SeqCst) {
                        // A request went to the refused stream while this one opened: lost,
                        // so the call cannot go on as if never processed.
                        stream.send_reset(h2::Reason::CANCEL);
                        drop(current);
                        return inbound.abort(status_from_h2(&e));
                    }
                    if requests.closed.load(Ordering::SeqCst) {
                        let _ = stream.send_data(Bytes::new(), true);
                    }
                }
                *current = stream;
                drop(current);
                // Cancelled meanwhile: the reset went to the stream that was replaced.
                if inbound.is_ended() {
                    requests.cancel();
                }
                open = next_open;
                response = next;
            }
            Err(status) => return inbound.abort(status),
        }
    };
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return inbound.abort(status_from_http(parts.status));
    }
    if body.is_end_stream() {
        // Trailers-only: the status is in the headers.
        let status = status_from_headers(&parts.headers).unwrap_or_else(|| {
            Err(Status::internal(
                "the server ended the call without a grpc-status",
            ))
        });
        inbound.headers(Metadata::new());
        return inbound.finish(status, metadata_from_headers(&parts.headers));
    }
    if !is_grpc_content_type(&parts.headers) {
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return inbound.abort(Status::unknown(format!(
            "the server answered with content-type {content_type:?}, not gRPC"
        )));
    }
    let encoding = match parts.headers.get("grpc-encoding") {
        None => None,
        Some(name) if name == "identity" => None,
        Some(name) => match name.to_str().ok().and_then(Encoding::from_name) {
            Some(encoding) => Some(encoding),
            None => {
                let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
                return inbound.abort(Status::internal(format!(
                    "the server compressed with {name:?}, which this client did not offer"
                )));
            }
        },
    };
    inbound.headers(metadata_from_headers(&parts.headers));
    let mut deframer = Deframer::new(limit, encoding);
    if let Err(status) = pump_messages(&mut body, &inbound, &mut deframer).await {
        // The call is over for this client (a message over its limit, one that does not
        // inflate, the stream reset): the server hears it (RST_STREAM CANCEL), so its handler
        // ends even while the client still holds the response stream, and the messages that
        // arrived whole before the failure are still read first, as they came.
        requests.cancel();
        return inbound.finish(Err(explain(&open, status)), Metadata::new());
    }
    match body.trailers().await {
        Ok(Some(trailers)) => {
            let status = status_from_headers(&trailers).unwrap_or_else(|| {
                Err(Status::internal(
                    "the server ended the call without a grpc-status",
                ))
            });
            inbound.finish(status, metadata_from_headers(&trailers));
        }
        Ok(None) => inbound.abort(Status::internal(
            "the server ended the stream without trailers",
        )),
        Err(e) => inbound.abort(explain(&open, status_from_h2(&e))),
    }
}

/// The request side of one call.
struct Requests {
    stream: Mutex<SendStream<Bytes>>,
    limit: usize,
    encoding: Option<Encoding>,
    /// Whether the next messages are compressed (with `encoding`, if there is one).
    compress: AtomicBool,
    /// A request message has been handed to HTTP/2 (set under the stream's lock).
    sent: AtomicBool,
    /// The requests have ended (set under the stream's lock).
    closed: AtomicBool,
}

impl Requests {
    fn lock(&self) -> MutexGuard<'_, SendStream<Bytes>> {
        // No user code runs under this lock.
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Credit is returned as messages are taken out of HTTP/2 (see `pump_messages`); what the
/// stream needs to hear is that its reader is gone.
impl FlowControl for Requests {
    fn consumed(&self, _bytes: usize) {}

    /// The call was dropped before its end (a unary call's future, a response stream): the
    /// server is told with RST_STREAM, so its handler sees the cancellation.
    fn abandoned(&self) {
        self.cancel();
    }
}

impl Outbound for Requests {
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            let compress = self.compress.load(Ordering::SeqCst);
            let framed = frame(&message, self.encoding.filter(|_| compress))?;
            std::future::poll_fn(|cx| poll_send_ready(&mut self.lock(), framed.len(), cx)).await?;
            let mut stream = self.lock();
            self.sent.store(true, Ordering::SeqCst);
            stream
                .send_data(framed, false)
                .map_err(|e| status_from_h2(&e))
        })
    }

    fn max_message_size(&self) -> usize {
        self.limit
    }

    fn close_send(&self) {
        let mut stream = self.lock();
        self.closed.store(true, Ordering::SeqCst);
        let _ = stream.send_data(Bytes::new(), true);
    }

    fn cancel(&self) {
        self.lock().send_reset(h2::Reason::CANCEL);
    }

    fn set_compression(&self, enabled: bool) {
        self.compress.store(enabled, Ordering::SeqCst);
    }
}

impl RpcChannel for GrpcChannel {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        Box::pin(start(&self.endpoint, method, call))
    }
}
