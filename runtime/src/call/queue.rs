//! The receiving side of a message stream: a queue bounded in bytes, filled by a transport
//! (or by a local sender) and drained by whoever reads the call's messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::{Metadata, Status};

/// Bytes a stream buffers before its sender waits (local streams) or before the peer runs out
/// of credit (transports), unless configured otherwise: 64 KiB, HTTP/2's initial window.
pub const DEFAULT_WINDOW: usize = 64 * 1024;

/// What a transport learns from the consumer of a stream it fills.
pub trait FlowControl: Send + Sync + 'static {
    /// The consumer has read `bytes` more: the peer may be given that much credit back. Called
    /// once at least half a window has been read since the last call, so a transport can send
    /// it on as it is.
    fn consumed(&self, bytes: usize);

    /// The consumer dropped the stream before its end: nobody will read what arrives.
    fn abandoned(&self) {}
}

/// Something that wants to see how a stream ended (interceptors, metrics).
type EndObserver = Box<dyn FnOnce(&Result<(), Status>) + Send>;

struct Queue {
    state: Mutex<State>,
    /// Bytes the queue accepts before refusing more (a transport's peer overran its credit)
    /// or making a local sender wait.
    window: usize,
    flow: Option<Arc<dyn FlowControl>>,
    /// Wakes local senders waiting for space.
    space: Notify,
    /// Local senders that found the window full: only then is there anyone to wake.
    waiting: std::sync::atomic::AtomicUsize,
}

impl Queue {
    /// Whether a sender must wait: a window of bytes is buffered, or so many messages that
    /// their bookkeeping would outweigh the window (empty messages take no bytes).
    fn is_full(&self, state: &State) -> bool {
        state.buffered >= self.window || state.messages.len >= (self.window / 16).max(64)
    }

    fn wake_senders(&self) {
        if self.waiting.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.space.notify_waiters();
        }
    }
}

/// Counts a local sender as waiting for as long as it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Default)]
struct State {
    messages: Messages,
    buffered: usize,
    /// Bytes read and not yet reported to the `FlowControl`.
    unreported: usize,
    headers: Option<Metadata>,
    /// How the stream ended, once it has; delivered after the messages before it.
    end: Option<Result<(), Status>>,
    trailers: Option<Metadata>,
    reader: Option<Waker>,
    consumer_gone: bool,
    observers: Vec<EndObserver>,
    /// The compression of the message taken last.
    last_compressed: Option<bool>,
}

impl State {
    /// Counts `bytes` as read; returns the credit to report once half a window has been read.
    fn read(&mut self, bytes: usize, window: usize) -> Option<usize> {
        self.unreported += bytes;
        (self.unreported >= window / 2).then(|| std::mem::take(&mut self.unreported))
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock; recover the state if a panic ever poisons it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A queued message and its compression: whether it arrived compressed (from a transport), or
/// whether its sender asked for it to be (on a local stream); `None` when nobody said.
type Queued = (Bytes, Option<bool>);

/// Queued messages, the first one inline: most streams (every unary call's) hold one at a
/// time, and then no queue is allocated.
#[derive(Default)]
struct Messages {
    head: Option<Queued>,
    rest: VecDeque<Queued>,
    len: usize,
}

impl Messages {
    fn push_back(&mut self, message: Queued) {
        self.len += 1;
        if self.head.is_none() && self.rest.is_empty() {
            self.head = Some(message);
        } else {
            self.rest.push_back(message);
        }
    }

    fn pop_front(&mut self) -> Option<Queued> {
        let message = self.head.take().or_else(|| self.rest.pop_front());
        if message.is_some() {
            self.len -= 1;
        }
        message
    }

    fn is_empty(&self) -> bool {
        self.head.is_none() && self.rest.is_empty()
    }
}

/// The receiving end of a stream of encoded messages, with the headers before them and the
/// status and trailers after them.
///
/// Reading takes a message off the queue and tells the transport, which gives the sender that
/// much credit back; a consumer that stops reading therefore holds up only its own call.
/// Dropping the stream before its end tells the transport that nobody is listening.
pub struct ByteStream {
    queue: Arc<Queue>,
    /// The end has been returned to the reader.
    done: bool,
}

/// The filling end of a [`ByteStream`], for transports and local senders. Cloning shares it.
#[derive(Clone)]
pub struct Inbound {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.queue.lock();
        f.debug_struct("ByteStream")
            .field("buffered", &state.buffered)
            .field("ended", &state.end.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("window", &self.queue.window)
            .finish()
    }
}

/// A stream and its filling end. `window` bounds the bytes buffered (at least one message
/// is always accepted); `flow`, if given, hears about every message consumed.
pub fn byte_stream(window: usize, flow: Option<Arc<dyn FlowControl>>) -> (Inbound, ByteStream) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State::default()),
        window: window.max(1),
        flow,
        space: Notify::new(),
        waiting: std::sync::atomic::AtomicUsize::new(0),
    });
    (
        Inbound {
            queue: queue.clone(),
        },
        ByteStream { queue, done: false },
    )
}

impl Inbound {
    /// Adds a message that arrived from the peer, without waiting. Fails if the peer sent it
    /// while the stream already held a full window: the peer ignored its credit. After the end,
    /// or once the consumer has gone, the message is dropped (and its credit returned).
    pub fn push(&self, message: Bytes) -> Result<(), Status> {
        self.push_with(message, None)
    }

    /// [`push`](Inbound::push) for a message that says whether it was compressed on the wire
    /// (gRPC's message flag), which its reader can ask.
    pub fn push_with(&self, message: Bytes, compressed: Option<bool>) -> Result<(), Status> {
        let len = message.len();
        let wake = {
            let mut state = self.queue.lock();
            if state.end.is_some() || state.consumer_gone {
                None
            } else if state.buffered >= self.queue.window {
                return Err(Status::resource_exhausted(format!(
                    "the peer sent past its flow-control window of {} bytes",
                    self.queue.window
                )));
            } else {
                state.buffered += len;
                state.messages.push_back((message, compressed));
                Some(state.reader.take())
            }
        };
        match wake {
            Some(reader) => {
                if let Some(reader) = reader {
                    reader.wake();
                }
            }
            // Nobody will read it: it counts as read, so the peer gets its credit back.
            None => {
                let credit = self.queue.lock().read(len, self.queue.window);
                if let (Some(flow), Some(credit)) = (&self.queue.flow, credit) {
                    flow.consumed(credit);
                }
            }
        }
        Ok(())
    }

    /// Adds a message from a local sender, waiting while the stream holds a full window. Fails
    /// once the stream has ended or its consumer has gone.
    pub async fn send(&self, message: Bytes) -> Result<(), Status> {
        self.send_with(message, None).await
    }

    /// [`send`](Inbound::send) for a message whose sender said whether it should be
    /// compressed, which whoever forwards it can ask.
    pub async fn send_with(&self, message: Bytes, compress: Option<bool>) -> Result<(), Status> {
        let mut message = Some(message);
        let mut offer = || {
            let mut state = self.queue.lock();
            if let Some(Err(status)) = &state.end {
                return Some(Err(status.clone()));
            }
            if state.end.is_some() || state.consumer_gone {
                return Some(Err(Status::cancelled(
                    "the receiving side closed the stream",
                )));
            }
            if self.queue.is_full(&state) {
                return None;
            }
            let message = message.take()?;
            state.buffered += message.len();
            state.messages.push_back((message, compress));
            Some(Ok(state.reader.take()))
        };
        let reader = match offer() {
            Some(done) => done,
            None => {
                // Counted before the waiter registers and checks again, so a reader that frees
                // space meanwhile either sees the count or is seen by the check.
                self.queue
                    .waiting
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _waiting = Waiting(&self.queue.waiting);
                crate::wait::until(&self.queue.space, &mut offer).await
            }
        }?;
        if let Some(reader) = reader {
            reader.wake();
        }
        Ok(())
    }

    /// Whether a message pushed now would be taken without going over the window (or the
    /// stream has ended or lost its consumer, so that it would be dropped). A transport that
    /// reads ahead of its peer's credit checks this before [`push`](Inbound::push).
    pub fn has_room(&self) -> bool {
        let state = self.queue.lock();
        state.end.is_some() || state.consumer_gone || !self.queue.is_full(&state)
    }

    /// Completes once [`has_room`](Inbound::has_room) holds.
    pub async fn room(&self) {
        if self.has_room() {
            return;
        }
        // Counted before the waiter registers and checks again, so a reader that frees space
        // meanwhile either sees the count or is seen by the check.
        self.queue
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _waiting = Waiting(&self.queue.waiting);
        crate::wait::until(&self.queue.space, || self.has_room().then_some(())).await
    }

    /// Records the headers that precede the messages; later calls are ignored.
    pub fn headers(&self, metadata: Metadata) {
        let reader = {
            let mut state = self.queue.lock();
            if state.headers.is_some() || state.end.is_some() {
                return;
            }
            state.headers = Some(metadata);
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Ends the stream after the messages already queued, with `result` and `trailers`. Only
    /// the first end counts.
    pub fn finish(&self, result: Result<(), Status>, trailers: Metadata) {
        self.end(result, trailers, false);
    }

    /// Ends the stream now with `status`, dropping what is queued: the call is over and its
    /// remaining messages would never be acted on. Only the first end counts.
    pub fn abort(&self, status: Status) {
        self.end(Err(status), Metadata::new(), true);
    }

    fn end(&self, result: Result<(), Status>, trailers: Metadata, discard: bool) {
        let reader = {
            let mut state = self.queue.lock();
            if state.end.is_some() {
                return;
            }
            if discard {
                let dropped = std::mem::take(&mut state.messages);
                state.buffered = 0;
                drop(dropped);
            }
            state.end = Some(result);
            state.trailers = Some(trailers);
            state.reader.take()
        };
        self.queue.wake_senders();
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.queue.lock().end.is_some()
    }

    /// The compression of the message the reader took last (see
    /// [`ByteStream::last_compressed`]).
    pub fn last_compressed(&self) -> Option<bool> {
        self.queue.lock().last_compressed
    }
}

impl ByteStream {
    /// The next encoded message: `Ready(None)` after a clean end, `Ready(Some(Err(_)))` once
    /// for an end with an error status.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let (item, observers, was_full, credit) = {
            let mut state = self.queue.lock();
            let was_full = self.queue.is_full(&state);
            if let Some((message, compressed)) = state.messages.pop_front() {
                state.last_compressed = compressed;
                state.buffered -= message.len();
                let credit = state.read(message.len(), self.queue.window);
                (Some(Ok(message)), Vec::new(), was_full, credit)
            } else if let Some(end) = &state.end {
                let end = end.clone();
                let observers = std::mem::take(&mut state.observers);
                self.done = true;
                (end.err().map(Err), observers, false, None)
            } else {
                state.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
        };
        match &item {
            Some(Ok(_)) => {
                // Local senders wait only while the window is full.
                if was_full {
                    self.queue.wake_senders();
                }
                if let (Some(flow), Some(credit)) = (&self.queue.flow, credit) {
                    flow.consumed(credit);
                }
            }
            _ => self.notify_end(observers),
        }
        Poll::Ready(item)
    }

    fn notify_end(&self, observers: Vec<EndObserver>) {
        if observers.is_empty() {
            return;
        }
        let result = self.queue.lock().end.clone().unwrap_or(Ok(()));
        for observer in observers {
            observer(&result);
        }
    }

    /// Whether the message read last arrived compressed (gRPC's per-message flag), or, on a
    /// local stream, whether its sender asked for it to be sent compressed; `None` when
    /// nobody said (the TCP transport, a local sender that did not choose).
    pub fn last_compressed(&self) -> Option<bool> {
        self.queue.lock().last_compressed
    }

    /// The next encoded message, `Ok(None)` after a clean end, or the status that ended the
    /// stream.
    pub async fn next_bytes(&mut self) -> Result<Option<Bytes>, Status> {
        std::future::poll_fn(|cx| self.poll_next(cx))
            .await
            .transpose()
    }

    /// The headers sent before the messages: ready once they arrive, or once a message or a
    /// clean end shows there were none (empty then); fails if the stream ended with an error
    /// before any headers.
    pub fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Metadata, Status>> {
        let mut state = self.queue.lock();
        if let Some(headers) = &state.headers {
            return Poll::Ready(Ok(headers.clone()));
        }
        if !state.messages.is_empty() {
            return Poll::Ready(Ok(Metadata::new()));
        }
        match &state.end {
            Some(Ok(())) => Poll::Ready(Ok(Metadata::new())),
            Some(Err(status)) => Poll::Ready(Err(status.clone())),
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Waits for the headers; see [`poll_headers`](ByteStream::poll_headers).
    pub async fn headers(&mut self) -> Result<Metadata, Status> {
        std::future::poll_fn(|cx| self.poll_headers(cx)).await
    }

    /// The headers, if they have arrived.
    pub fn headers_now(&self) -> Option<Metadata> {
        self.queue.lock().headers.clone()
    }

    /// The trailers, once the stream has ended.
    pub fn trailers(&self) -> Option<Metadata> {
        self.queue.lock().trailers.clone()
    }

    /// Whether the end has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Runs `observer` with the stream's result when the reader reaches the end, or with
    /// `CANCELLED` if the stream is dropped before it.
    pub fn on_end(&self, observer: impl FnOnce(&Result<(), Status>) + Send + 'static) {
        let mut state = self.queue.lock();
        if self.done {
            let result = state.end.clone().unwrap_or(Ok(()));
            drop(state);
            observer(&result);
        } else {
            state.observers.push(Box::new(observer));
        }
    }

    /// A filling end for this stream, so that the call core can end it early.
    pub fn inbound(&self) -> Inbound {
        Inbound {
            queue: self.queue.clone(),
        }
    }
}

impl Drop for ByteStream {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let observers = {
            let mut state = self.queue.lock();
            state.consumer_gone = true;
            let dropped = std::mem::take(&mut state.messages);
            state.buffered = 0;
            drop(dropped);
            std::mem::take(&mut state.observers)
        };
        self.queue.wake_senders();
        if let Some(flow) = &self.queue.flow {
            flow.abandoned();
        }
        let gone = Err(Status::cancelled("the stream was dropped before its end"));
        for observer in observers {
            observer(&gone);
        }
    }
}

impl futures_core::Stream for ByteStream {
    type Item = Result<Bytes, Status>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        ByteStream::poll_next(self.get_mut(), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Counter(Arc<AtomicUsize>);
    impl FlowControl for Counter {
        fn consumed(&self, bytes: usize) {
            self.0.fetch_add(bytes, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn messages_then_the_end_and_credit_for_each_read() {
        let credit = Arc::new(AtomicUsize::new(0));
        let (inbound, mut stream) = byte_stream(10, Some(Arc::new(Counter(credit.clone()))));
        inbound.headers(Metadata::from_iter([("h", "1")]));
        inbound.push(Bytes::from_static(b"abcd")).unwrap();
        inbound.push(Bytes::from_static(b"efghij")).unwrap();
        // A full window: the peer overran its credit.
        assert!(inbound.push(Bytes::from_static(b"x")).is_err());
        inbound.finish(Ok(()), Metadata::from_iter([("t", "2")]));
        assert_eq!(stream.headers().await.unwrap().get("h"), Some("1"));
        assert_eq!(stream.next_bytes().await.unwrap().unwrap(), "abcd");
        // Reported once half the window (5 bytes) has been read, all of it at once.
        assert_eq!(credit.load(Ordering::SeqCst), 0);
        assert_eq!(stream.next_bytes().await.unwrap().unwrap(), "efghij");
        assert_eq!(stream.next_bytes().await.unwrap(), None);
        assert_eq!(stream.trailers().unwrap().get("t"), Some("2"));
        assert_eq!(credit.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn abort_skips_what_is_queued_and_wakes_the_reader() {
        let (inbound, mut stream) = byte_stream(100, None);
        inbound.push(Bytes::from_static(b"lost")).unwrap();
        inbound.abort(Status::deadline_exceeded("late"));
        let err = stream.next_bytes().await.unwrap_err();
        assert_eq!(err.code(), crate::Code::DeadlineExceeded);
        assert_eq!(stream.next_bytes().await.unwrap(), None);

        let (inbound, mut stream) = byte_stream(100, None);
        let reader = tokio::spawn(async move { stream.next_bytes().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        inbound.abort(Status::cancelled("gone"));
        let woken = tokio::time::timeout(Duration::from_secs(5), reader).await;
        let err = woken.expect("woken").unwrap().unwrap_err();
        assert_eq!(err.code(), crate::Code::Cancelled);
    }

    #[tokio::test]
    async fn a_local_sender_waits_for_space_and_fails_once_the_reader_is_gone() {
        let (inbound, mut stream) = byte_stream(4, None);
        inbound.send(Bytes::from_static(b"1234")).await.unwrap();
        let sender = {
            let inbound = inbound.clone();
            tokio::spawn(async move { inbound.send(Bytes::from_static(b"5")).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !sender.is_finished(),
            "the window is full: the sender waits"
        );
        assert_eq!(stream.next_bytes().await.unwrap().unwrap(), "1234");
        sender.await.unwrap().unwrap();
        drop(stream);
        let err = inbound.send(Bytes::from_static(b"6")).await.unwrap_err();
        assert_eq!(err.code(), crate::Code::Cancelled);
    }
}
