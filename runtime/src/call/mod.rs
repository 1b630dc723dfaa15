//! The call core: what every transport shares.
//!
//! A transport moves bytes and frames; everything else about a call lives here once:
//! routing, the controller, deadlines, cancellation, panics, flow control between a stream's
//! sender and its reader, and the choice of what ends a call. The TCP transport and the
//! in-process channel use it (as the gRPC transport will), so they behave the same.
//!
//! A transport meets the core at four points:
//! - it fills a [`ByteStream`] through its [`Inbound`] end with the messages it reads, and
//!   hears through [`FlowControl`] when they are consumed;
//! - it implements [`Outbound`] for the messages a call sends;
//! - a server transport hands every call it reads to [`ServerCore::dispatch`];
//! - a client transport implements [`RpcChannel::start_call`](crate::RpcChannel::start_call).

mod client;
mod queue;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::service::BoxFuture;
use crate::{CancelToken, Metadata, Status};

pub(crate) use client::{
    bidi_streaming, client_streaming, record_stream, server_streaming, unary, CallGuard,
};
pub use queue::{byte_stream, ByteStream, FlowControl, Inbound, DEFAULT_WINDOW};
pub use server::{HandlerBatch, IncomingCall, ServerCore, ServerInterceptor};

/// How a server ends a call: the headers if they have not gone out, the single response of a
/// call that has one, the status, and the trailers.
#[derive(Clone, Debug)]
pub struct CallEnd {
    /// Response headers still to send; `None` once they went out.
    pub headers: Option<Metadata>,
    /// The one response of a method without a response stream.
    pub message: Option<Bytes>,
    /// `Ok` or the status the call failed with.
    pub status: Result<(), Status>,
    /// Trailing metadata.
    pub trailers: Metadata,
}

impl CallEnd {
    /// An end with `status` and nothing else.
    pub fn error(status: Status) -> CallEnd {
        CallEnd {
            headers: Some(Metadata::new()),
            message: None,
            status: Err(status),
            trailers: Metadata::new(),
        }
    }
}

/// The sending side of one call, implemented by a transport: request messages on a client,
/// response messages and the call's end on a server.
pub trait Outbound: Send + Sync + 'static {
    /// Sends one encoded message, waiting for flow-control credit. Fails once the call can no
    /// longer carry it (the connection closed, the call was reset). The core checks the size
    /// against [`max_message_size`](Outbound::max_message_size) and races the send against the
    /// call's cancellation, so a transport does neither.
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>>;

    /// Largest message the peer accepts, in bytes.
    fn max_message_size(&self) -> usize;

    /// Server: sends the response headers. Called at most once, before any message.
    fn send_headers(&self, metadata: Metadata) {
        let _ = metadata;
    }

    /// Server: ends the call. Called exactly once per call.
    fn finish(&self, end: CallEnd) {
        let _ = end;
    }

    /// Client: no more requests follow (half-close).
    fn close_send(&self) {}

    /// Client: the call is abandoned; tell the server to stop it and free what it holds.
    fn cancel(&self) {}

    /// Whether the messages sent from now on (a server's single response included) are
    /// compressed, where the transport compresses at all (gRPC with an encoding set on the
    /// channel or server, which the peer accepts). On until said otherwise.
    fn set_compression(&self, enabled: bool) {
        let _ = enabled;
    }
}

/// Where encoded stream messages go: a transport's [`Outbound`], guarded by the call's
/// cancellation and the peer's size limit. Cloning shares it.
#[derive(Clone)]
pub struct ByteSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    outbound: Arc<dyn Outbound>,
    cancel: CancelToken,
    headers_sent: AtomicBool,
    /// Server: the call has been ended (by its handler or by a cancellation).
    done: AtomicBool,
    /// Server: whom to tell how the call ended.
    hooks: Option<EndHooks>,
}

/// What hears how a server call ended: its interceptors.
pub(crate) struct EndHooks {
    pub(crate) method: &'static crate::MethodDescriptor,
    pub(crate) interceptors: Arc<[Arc<dyn ServerInterceptor>]>,
    /// The call's span, which hears its status code.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

/// What the core does when a call's token is cancelled, kept as data rather than a boxed
/// closure: one less allocation on every call.
pub(crate) enum OnCancel {
    /// A server call: its request reads stop, and the client is sent the reason.
    Server {
        requests: Inbound,
        responses: ByteSink,
    },
    /// A client call: the caller's reads stop with the reason, and the server is told.
    Client {
        responses: Inbound,
        requests: Arc<dyn Outbound>,
    },
}

impl OnCancel {
    pub(crate) fn run(self, reason: &Status) {
        match self {
            OnCancel::Server {
                requests,
                responses,
            } => {
                requests.abort(reason.clone());
                responses.finish(CallEnd::error(reason.clone()));
            }
            // The caller's reads end with the reason first: the transport's own end of the
            // call, which cancelling it may bring, would otherwise speak first.
            OnCancel::Client {
                responses,
                requests,
            } => {
                responses.abort(reason.clone());
                requests.cancel();
            }
        }
    }
}

impl std::fmt::Debug for ByteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteSink")
            .field("cancelled", &self.inner.cancel.is_cancelled())
            .finish()
    }
}

impl ByteSink {
    /// A sink over `outbound` for the call that `cancel` ends.
    pub fn new(outbound: Arc<dyn Outbound>, cancel: CancelToken) -> ByteSink {
        Self::with_hooks(outbound, cancel, None)
    }

    pub(crate) fn with_hooks(
        outbound: Arc<dyn Outbound>,
        cancel: CancelToken,
        hooks: Option<EndHooks>,
    ) -> ByteSink {
        ByteSink {
            inner: Arc::new(SinkInner {
                outbound,
                cancel,
                headers_sent: AtomicBool::new(false),
                done: AtomicBool::new(false),
                hooks,
            }),
        }
    }

    /// Whether the messages sent from now on are compressed: see
    /// [`Outbound::set_compression`].
    pub fn set_compression(&self, enabled: bool) {
        self.inner.outbound.set_compression(enabled);
    }

    /// Server: ends the call once, whichever comes first (the handler's result or a
    /// cancellation), and tells the interceptors.
    pub(crate) fn finish(&self, end: CallEnd) {
        let inner = &self.inner;
        if inner.done.swap(true, Ordering::SeqCst) {
            return;
        }
        #[cfg(feature = "tracing")]
        if let Some(hooks) = &inner.hooks {
            trace_end(&hooks.span, &end.status);
        }
        let status = match &inner.hooks {
            Some(hooks) if !hooks.interceptors.is_empty() => Some(end.status.clone()),
            _ => None,
        };
        inner.outbound.finish(end);
        if let (Some(hooks), Some(status)) = (&inner.hooks, status) {
            for interceptor in hooks.interceptors.iter() {
                // The end may come on a transport's own task (a cancellation, or a handler
                // polled there first): an interceptor that panics must not take it down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    interceptor.on_end(hooks.method, &status)
                }));
            }
        }
    }

    /// Sends one encoded message, waiting while the peer has no credit for the call.
    ///
    /// Fails with `RESOURCE_EXHAUSTED` for a message over the peer's limit (the call goes on;
    /// the caller decides), and with the call's status once it has ended: cancelled by the
    /// client, past its deadline, or its connection lost.
    pub async fn send_bytes(&self, message: Bytes) -> Result<(), Status> {
        let inner = &self.inner;
        let limit = inner.outbound.max_message_size();
        if message.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "a message of {} bytes is over the limit of {limit} bytes",
                message.len()
            )));
        }
        if let Some(reason) = inner.cancel.reason() {
            return Err(reason);
        }
        inner.headers_sent.store(true, Ordering::SeqCst);
        // The send first: when it completes at once, the cancellation is never waited on.
        tokio::select! {
            biased;
            sent = inner.outbound.send(message) => sent,
            () = inner.cancel.cancelled() => Err(inner
                .cancel
                .reason()
                .unwrap_or_else(|| Status::cancelled("the call was cancelled"))),
        }
    }

    /// Server: sends the response headers now, unless they (or a message) already went out.
    pub fn send_headers(&self, metadata: Metadata) {
        if !self.inner.headers_sent.swap(true, Ordering::SeqCst) {
            self.inner.outbound.send_headers(metadata);
        }
    }

    /// Whether the headers (or a first message, which implies them) have gone out.
    pub fn headers_sent(&self) -> bool {
        self.inner.headers_sent.load(Ordering::SeqCst)
    }

    /// The largest message the peer accepts, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.inner.outbound.max_message_size()
    }

    pub(crate) fn outbound(&self) -> &Arc<dyn Outbound> {
        &self.inner.outbound
    }
}

/// What a server's `Service` receives for one call: the request stream and where its
/// responses go.
#[derive(Debug)]
pub struct ServerCall {
    /// The encoded requests: one for a method without a request stream.
    pub requests: ByteStream,
    /// Where a server-streaming method's responses go.
    pub responses: ByteSink,
}

/// A call as a client starts it, for [`RpcChannel::start_call`](crate::RpcChannel::start_call).
#[derive(Clone, Debug, Default)]
pub struct OutgoingCall {
    /// When the call must be finished; transports send it to the server as a timeout.
    pub deadline: Option<Instant>,
    /// Request metadata.
    pub metadata: Metadata,
    /// The single request of a method without a request stream: the transport sends it with
    /// the call's start and half-closes, in one write where it can.
    pub request: Option<Bytes>,
    /// Whether the single request (and, until the call says otherwise, every request) is
    /// compressed, as [`Outbound::set_compression`]; `None` leaves it to the channel.
    pub compress: Option<bool>,
    /// Where a call with a single request goes if the server refuses it unprocessed (a
    /// GOAWAY that excludes it, or HTTP/2's REFUSED_STREAM): a channel over many endpoints
    /// sets it to send the call to another one. `None`: the transport fails the call with
    /// `UNAVAILABLE` (or sends it again on its own endpoint, as gRPC's does).
    pub replay: Option<Replay>,
}

/// Takes over a call that a server refused unprocessed: given the call's response stream,
/// it sends the call elsewhere and fills the stream with that attempt's responses.
#[derive(Clone)]
pub struct Replay(Arc<dyn Fn(Inbound) + Send + Sync>);

impl Replay {
    /// A replay that runs `take_over` with the refused call's responses.
    pub fn new(take_over: impl Fn(Inbound) + Send + Sync + 'static) -> Replay {
        Replay(Arc::new(take_over))
    }

    /// Hands the call over; its responses now come from wherever the replay sends it.
    pub fn run(&self, responses: Inbound) {
        (self.0)(responses)
    }
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replay")
    }
}

/// A started call, as a client transport hands it back.
pub struct ClientCall {
    /// Where request messages go (for calls without a single request) and how the call is
    /// half-closed or cancelled.
    pub requests: Arc<dyn Outbound>,
    /// The response headers, messages, status and trailers, as they arrive.
    pub responses: ByteStream,
}

impl std::fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCall")
            .field("responses", &self.responses)
            .finish()
    }
}

/// A call's span, named `rpc.client` or `rpc.server` with the fields of OpenTelemetry's RPC
/// conventions: `rpc.service`, `rpc.method`, and `rpc.grpc.status_code` once the call ends.
#[cfg(feature = "tracing")]
pub(crate) fn trace_span(server: bool, method: &crate::MethodDescriptor) -> tracing::Span {
    if server {
        tracing::info_span!(
            "rpc.server",
            rpc.service = method.service,
            rpc.method = method.name,
            rpc.grpc.status_code = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "rpc.client",
            rpc.service = method.service,
            rpc.method = method.name,
            rpc.grpc.status_code = tracing::field::Empty,
        )
    }
}

/// Records how a call ended in its span: the code, and for a failure, an event with the status.
#[cfg(feature = "tracing")]
pub(crate) fn trace_end(span: &tracing::Span, status: &Result<(), Status>) {
    let code = match status {
        Ok(()) => 0,
        Err(status) => status.code() as i32,
    };
    span.record("rpc.grpc.status_code", code);
    if let Err(status) = status {
        tracing::debug!(parent: span, %status, "call failed");
    }
}

/// How close to its deadline a call the client cancels is taken to have met the deadline. A
/// client gives up at its deadline and tells the server by cancelling (gRPC has no other way),
/// and that can arrive before the server's own timer, set from the same timeout when the call
/// arrived, fires: by about one network transit.
pub(crate) const DEADLINE_ALLOWANCE: Duration = Duration::from_millis(50);

/// The status of a call the client cancelled: `DEADLINE_EXCEEDED` when its deadline has passed
/// or is within [`DEADLINE_ALLOWANCE`], so the handler learns why the call ended; otherwise
/// `CANCELLED` with `cancelled`'s message.
pub(crate) fn client_cancelled(deadline: Option<Instant>, cancelled: Status) -> Status {
    match deadline {
        Some(deadline) if Instant::now() + DEADLINE_ALLOWANCE >= deadline => {
            Status::deadline_exceeded("the deadline passed (the client gave up at its deadline)")
        }
        _ => cancelled,
    }
}
