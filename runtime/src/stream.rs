//! Message streams for streaming calls: [`Streaming`] to receive, [`StreamSender`] to send,
//! and [`IntoRequests`] for what a client-streaming call takes.
//!
//! Both ends carry encoded messages underneath (the call core's [`ByteStream`] and
//! [`ByteSink`]), so a transport moves bytes without knowing the message types, and a
//! handler's sends go straight to the connection.
//!
//! ```no_run
//! # use rust_rpc::{Status, Streaming, StreamSender};
//! # #[derive(Debug, Default, Clone)] struct Event;
//! # impl rust_rpc::Message for Event {
//! #     fn encoded_len(&self) -> usize { 0 }
//! #     fn encode_raw(&self, _: &mut Vec<u8>) {}
//! #     fn merge_from(&mut self, _: &mut rust_rpc::encoding::Reader<'_>) -> Result<(), rust_rpc::DecodeError> { Ok(()) }
//! # }
//! async fn read_all(mut events: Streaming<Event>) -> Result<usize, Status> {
//!     let mut count = 0;
//!     while let Some(_event) = events.message().await? {
//!         count += 1;
//!     }
//!     Ok(count)
//! }
//!
//! async fn send_some(events: &StreamSender<Event>) -> Result<(), Status> {
//!     events.send(Event).await?;      // by value
//!     events.send(&Event).await?;     // or by reference
//!     Ok(())
//! }
//! ```

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use crate::call::{
    byte_stream, ByteSink, ByteStream, CallGuard, FlowControl, Inbound, Outbound, DEFAULT_WINDOW,
};
use crate::service::BoxFuture;
use crate::{CancelToken, Code, Message, Metadata, Status};

/// The receiving end of a stream of `T`: a server's request stream, a client's response
/// stream, or the receiving end of [`channel`].
///
/// Read with [`message`](Streaming::message) until `Ok(None)`, or use it as a
/// `futures_core::Stream` of `Result<T, Status>`. On a client, dropping the stream before
/// its end cancels the call.
pub struct Streaming<T> {
    inner: ByteStream,
    /// What a message that does not decode fails with: `INVALID_ARGUMENT` for requests (the
    /// client sent bad bytes), `INTERNAL` for responses (the server did).
    decode_code: Code,
    /// A client's response stream: the call it ends.
    call: Option<CallGuard>,
    /// An error was returned; the stream is over.
    failed: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: Message + Default> Streaming<T> {
    /// A stream of requests, as a server's handler receives them.
    pub fn requests(inner: ByteStream) -> Self {
        Self::with(inner, Code::InvalidArgument, None)
    }

    pub(crate) fn responses(inner: ByteStream, guard: CallGuard) -> Self {
        Self::with(inner, Code::Internal, Some(guard))
    }

    fn with(inner: ByteStream, decode_code: Code, call: Option<CallGuard>) -> Self {
        Streaming {
            inner,
            decode_code,
            call,
            failed: false,
            _type: PhantomData,
        }
    }

    /// The next message, `Ok(None)` once the stream ended normally, or the status that ended
    /// it (after which the stream is over). A message that does not decode ends the stream
    /// with `INVALID_ARGUMENT` on a server and `INTERNAL` on a client, which also cancels the
    /// call.
    #[doc(alias = "recv")]
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        if self.failed {
            return Poll::Ready(Ok(None));
        }
        let item = match self.inner.poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let result = match item {
            Some(Ok(bytes)) => match T::decode_bytes(&bytes) {
                Ok(message) => return Poll::Ready(Ok(Some(message))),
                Err(e) => {
                    let status =
                        Status::new(self.decode_code, format!("cannot decode a message: {e}"));
                    if let Some(call) = &mut self.call {
                        call.cancel(status.clone());
                    }
                    Err(status)
                }
            },
            Some(Err(status)) => Err(status),
            None => Ok(None),
        };
        self.failed = result.is_err();
        if let Some(call) = &mut self.call {
            call.finish();
        }
        Poll::Ready(result)
    }

    /// The response headers: ready once the server sends them (when its handler starts
    /// sending, or says so), or once the first message or the end shows there were none. On
    /// a server's request stream, ready at once with nothing.
    pub async fn headers(&mut self) -> Result<Metadata, Status> {
        self.inner.headers().await
    }

    /// The trailers, once the stream has ended.
    pub fn trailers(&self) -> Option<Metadata> {
        self.inner.trailers()
    }

    /// Whether the message read last arrived compressed (gRPC's per-message flag); `false`
    /// where the transport does not compress. On the receiving end of [`channel`]: whether
    /// its sender asked for it to be compressed.
    pub fn last_message_compressed(&self) -> bool {
        self.inner.last_compressed().unwrap_or(false)
    }
}

impl<T: Message + Default> futures_core::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed || this.inner.is_done() {
            return Poll::Ready(None);
        }
        this.poll_message(cx).map(Result::transpose)
    }
}

/// The sending end of a stream of `T`: a server's response stream, or the sending end of
/// [`channel`]. Cloning shares it.
pub struct StreamSender<T> {
    sink: ByteSink,
    _type: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSender")
            .field("sink", &self.sink)
            .finish()
    }
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        StreamSender {
            sink: self.sink.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Message> StreamSender<T> {
    /// Wraps a sink of encoded `T`s.
    pub fn from_sink(sink: ByteSink) -> Self {
        StreamSender {
            sink,
            _type: PhantomData,
        }
    }

    /// Sends one message (given by value or by reference), waiting while the receiver holds
    /// a full window of unread bytes.
    ///
    /// Fails once the call has ended, with the status that ended it (`CANCELLED` when the
    /// client cancelled or went away, `DEADLINE_EXCEEDED` past the deadline), so a handler's
    /// loop of sends ends with `?`. A message over the receiver's size limit fails with
    /// `RESOURCE_EXHAUSTED` and is not sent.
    pub async fn send(&self, message: impl Borrow<T>) -> Result<(), Status> {
        let bytes = message
            .borrow()
            .try_encode_to_bytes()
            .map_err(|e| Status::internal(format!("cannot encode a message: {e}")))?;
        self.sink.send_bytes(bytes).await
    }

    /// Whether the messages sent from now on are compressed. It takes effect where the
    /// transport compresses: gRPC, with `send_compressed` set on the channel or the server
    /// (and, for responses, an encoding the client accepts). On the sending end of
    /// [`channel`] that feeds a call's requests, it travels with each message to the call.
    /// On until said otherwise (the controller's
    /// [`set_message_compression`](crate::RpcController::set_message_compression) sets where
    /// a server's response stream starts).
    pub fn set_compression(&self, enabled: bool) {
        self.sink.set_compression(enabled);
    }

    /// The underlying sink of encoded messages.
    pub fn into_sink(self) -> ByteSink {
        self.sink
    }
}

/// A local stream of `T`: send on one end, receive on the other, with up to 64 KiB of
/// encoded messages in between (the sender waits beyond that). Dropping every sender ends the
/// stream; a client-streaming call takes the receiving end as its requests.
pub fn channel<T: Message + Default>() -> (StreamSender<T>, Streaming<T>) {
    channel_with_window(DEFAULT_WINDOW)
}

/// [`channel`] with `window` bytes in between instead of 64 KiB.
pub fn channel_with_window<T: Message + Default>(window: usize) -> (StreamSender<T>, Streaming<T>) {
    let (inbound, stream) = byte_stream(window, None);
    let sink = ByteSink::new(
        Arc::new(LocalOutbound::new(inbound, true)),
        CancelToken::new(),
    );
    (
        StreamSender::from_sink(sink),
        Streaming::with(stream, Code::Internal, None),
    )
}

/// An [`Outbound`] that fills a local stream: the in-process channel's two directions, and the
/// sending end of [`channel`].
pub(crate) struct LocalOutbound {
    pub(crate) inbound: Inbound,
    /// For [`channel`]: the last sender gone ends the stream cleanly. In-process calls end
    /// their streams explicitly.
    pub(crate) end_on_drop: bool,
    /// What the sender asked of the compression of what it sends next: kept with each
    /// message, as a network transport's reader would see it (0 unsaid, 1 off, 2 on).
    compress: std::sync::atomic::AtomicU8,
}

impl LocalOutbound {
    pub(crate) fn new(inbound: Inbound, end_on_drop: bool) -> LocalOutbound {
        LocalOutbound {
            inbound,
            end_on_drop,
            compress: std::sync::atomic::AtomicU8::new(0),
        }
    }

    pub(crate) fn compression(&self) -> Option<bool> {
        match self.compress.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            flag => Some(flag == 2),
        }
    }
}

impl Outbound for LocalOutbound {
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(self.inbound.send_with(message, self.compression()))
    }

    fn set_compression(&self, enabled: bool) {
        let flag = if enabled { 2 } else { 1 };
        self.compress
            .store(flag, std::sync::atomic::Ordering::SeqCst);
    }

    fn max_message_size(&self) -> usize {
        usize::MAX
    }

    fn send_headers(&self, metadata: Metadata) {
        self.inbound.headers(metadata);
    }

    fn finish(&self, end: crate::call::CallEnd) {
        if let Some(headers) = end.headers {
            self.inbound.headers(headers);
        }
        if let Some(message) = end.message {
            // The call's one response: the stream is empty, so there is room for it.
            let _ = self.inbound.push_with(message, self.compression());
        }
        self.inbound.finish(end.status, end.trailers);
    }

    fn close_send(&self) {
        self.inbound.finish(Ok(()), Metadata::new());
    }

    fn cancel(&self) {
        self.inbound
            .abort(Status::cancelled("the client cancelled the call"));
    }
}

impl Drop for LocalOutbound {
    fn drop(&mut self) {
        if self.end_on_drop {
            self.inbound.finish(Ok(()), Metadata::new());
        }
    }
}

/// Cancels a call when the reader of its responses goes away: the in-process channel's
/// counterpart of a reset stream.
/// The deadline, if the call has one, tells a reader gone at its deadline from one that
/// stopped early.
pub(crate) struct CancelOnAbandon(pub(crate) CancelToken, pub(crate) Option<Instant>);

impl FlowControl for CancelOnAbandon {
    fn consumed(&self, _bytes: usize) {}

    fn abandoned(&self) {
        self.0.cancel_with(crate::call::client_cancelled(
            self.1,
            Status::cancelled("the client stopped reading the responses"),
        ));
    }
}

/// The requests a client-streaming or bidirectional call sends, as [`IntoRequests`] makes
/// them.
pub struct Requests<T> {
    inner: RequestSource<T>,
}

enum RequestSource<T> {
    Iter(Box<dyn Iterator<Item = T> + Send>),
    Stream(Pin<Box<dyn futures_core::Stream<Item = T> + Send>>),
    Streaming(Streaming<T>),
}

impl<T> std::fmt::Debug for Requests<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Requests")
    }
}

impl<T: Message + Default> Requests<T> {
    /// The next request; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T, Status>> {
        match &mut self.inner {
            RequestSource::Iter(iter) => iter.next().map(Ok),
            RequestSource::Stream(stream) => {
                std::future::poll_fn(|cx| stream.as_mut().poll_next(cx))
                    .await
                    .map(Ok)
            }
            RequestSource::Streaming(stream) => stream.message().await.transpose(),
        }
    }

    /// For requests from the receiving end of [`channel`]: whether the sender asked for the
    /// request returned last to be compressed.
    pub(crate) fn compression(&self) -> Option<bool> {
        match &self.inner {
            RequestSource::Streaming(stream) => stream.inner.last_compressed(),
            _ => None,
        }
    }
}

/// What a client-streaming or bidirectional call takes as its requests: any `IntoIterator`
/// (a `Vec`, an array, an iterator), any `futures_core::Stream` wrapped in [`from_stream`],
/// or the receiving end of [`channel`] to send from code that runs beside the call.
pub trait IntoRequests<T>: Send + 'static {
    /// The requests, ready to send.
    fn into_requests(self) -> Requests<T>;
}

impl<T, I> IntoRequests<T> for I
where
    I: IntoIterator<Item = T> + Send + 'static,
    I::IntoIter: Send + 'static,
{
    fn into_requests(self) -> Requests<T> {
        Requests {
            inner: RequestSource::Iter(Box::new(self.into_iter())),
        }
    }
}

impl<T: Message + Default + 'static> IntoRequests<T> for Streaming<T> {
    fn into_requests(self) -> Requests<T> {
        Requests {
            inner: RequestSource::Streaming(self),
        }
    }
}

/// A `futures_core::Stream` of requests, for [`IntoRequests`].
pub struct FromStream<S>(S);

impl<S> std::fmt::Debug for FromStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromStream")
    }
}

/// Wraps a `futures_core::Stream` (such as `tokio_stream::iter(items)`) so a client-streaming
/// or bidirectional call can send what it yields.
pub fn from_stream<S>(stream: S) -> FromStream<S> {
    FromStream(stream)
}

impl<T, S> IntoRequests<T> for FromStream<S>
where
    S: futures_core::Stream<Item = T> + Send + 'static,
{
    fn into_requests(self) -> Requests<T> {
        Requests {
            inner: RequestSource::Stream(Box::pin(self.0)),
        }
    }
}
