//! Message streams for streaming RPCs: [`Streaming`] to receive, [`StreamSender`] to send.
//!
//! Both carry encoded messages underneath, so a transport moves bytes without knowing the
//! message types, and a handler's sends go straight into the connection's frames.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::{Message, Status};

pub(crate) type Item = Result<Vec<u8>, Status>;

/// Default number of messages a stream buffers before the sender waits.
pub const DEFAULT_STREAM_CAPACITY: usize = 32;

/// Encoded messages arriving on a stream; ends with `None` or an `Err`.
#[derive(Debug)]
pub struct ByteStream(pub(crate) mpsc::Receiver<Item>);

impl ByteStream {
    /// The next encoded message, `Ok(None)` at the end.
    pub async fn next_bytes(&mut self) -> Result<Option<Vec<u8>>, Status> {
        self.0.recv().await.transpose()
    }
}

/// Where encoded stream messages go: a local channel, or a connection's outgoing frames.
#[derive(Clone, Debug)]
pub struct ByteSink(pub(crate) SinkInner);

#[derive(Clone, Debug)]
pub(crate) enum SinkInner {
    Channel(mpsc::Sender<Item>),
    Frames(crate::tcp::FrameSink),
}

impl ByteSink {
    /// Sends one encoded message; fails once the receiving side has gone.
    pub async fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), Status> {
        match &self.0 {
            SinkInner::Channel(tx) => tx
                .send(Ok(bytes))
                .await
                .map_err(|_| Status::cancelled("the receiving side closed the stream")),
            SinkInner::Frames(frames) => frames.send_message(bytes).await,
        }
    }

    /// Ends the stream with an error, for a local receiver (a connection ends streams with
    /// its own frames).
    pub(crate) async fn send_error(&self, status: Status) {
        if let SinkInner::Channel(tx) = &self.0 {
            let _ = tx.send(Err(status)).await;
        }
    }
}

/// A pair of ends of a local byte stream.
pub fn byte_channel(capacity: usize) -> (ByteSink, ByteStream) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ByteSink(SinkInner::Channel(tx)), ByteStream(rx))
}

/// The receiving end of a stream of `T`.
#[derive(Debug)]
pub struct Streaming<T> {
    inner: ByteStream,
    _type: PhantomData<fn() -> T>,
}

impl<T: Message> Streaming<T> {
    /// Wraps a stream of encoded `T`s.
    pub fn from_bytes(inner: ByteStream) -> Self {
        Streaming {
            inner,
            _type: PhantomData,
        }
    }

    /// The underlying stream of encoded messages.
    pub fn into_bytes(self) -> ByteStream {
        self.inner
    }

    /// The next message, `Ok(None)` when the stream ended normally, or the error that ended it.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        match self.inner.next_bytes().await? {
            Some(bytes) => Ok(Some(T::decode(&bytes)?)),
            None => Ok(None),
        }
    }
}

impl<T: Message> futures_core::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.inner.0.poll_recv(cx).map(|item| {
            item.map(|result| result.and_then(|bytes| T::decode(&bytes).map_err(Status::from)))
        })
    }
}

/// The sending end of a stream of `T`. Dropping every sender ends the stream.
#[derive(Debug)]
pub struct StreamSender<T> {
    sink: ByteSink,
    _type: PhantomData<fn(T)>,
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

    /// The underlying sink of encoded messages.
    pub fn into_sink(self) -> ByteSink {
        self.sink
    }

    /// Sends one message, waiting while the receiver's buffer is full. Fails once the
    /// receiving side has gone (the call ended or was cancelled).
    pub async fn send(&self, message: &T) -> Result<(), Status> {
        self.sink.send_bytes(message.encode_to_vec()).await
    }
}

/// A local stream of `T`: send on one end, receive on the other, `capacity` in flight.
pub fn channel<T: Message>(capacity: usize) -> (StreamSender<T>, Streaming<T>) {
    let (sink, stream) = byte_channel(capacity);
    (StreamSender::from_sink(sink), Streaming::from_bytes(stream))
}
