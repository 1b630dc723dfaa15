use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::call::{ByteSink, Inbound};
use crate::{Closure, Metadata, Status};

/// A cancellation signal shared by everyone working on one call, with the status that says
/// why it was cancelled.
///
/// Cancelling is idempotent: the first reason wins. Callbacks registered with
/// [`CancelToken::on_cancel`] run once, on the thread that cancels (or at once, if the token is
/// already cancelled), outside any lock; a callback that panics does not stop the others.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: Notify,
    state: Mutex<CancelState>,
}

#[derive(Default)]
struct CancelState {
    reason: Option<Status>,
    /// The first callback, kept inline: most calls register exactly one (the core's).
    first: Option<(u64, Callback)>,
    callbacks: Vec<(u64, Callback)>,
    next_id: u64,
}

enum Callback {
    /// A user's `notify_on_cancel`.
    User(Closure),
    /// The call core's own: it needs the reason, and is forgotten when the call ends.
    Core(crate::call::OnCancel),
}

impl Callback {
    fn run(self, reason: &Status) {
        // A callback's panic stays inside it: the code that cancels (a connection's reader, a
        // deadline timer) goes on with its own bookkeeping.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || match self {
            Callback::User(closure) => closure.run(),
            Callback::Core(action) => action.run(reason),
        }));
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels with `CANCELLED`, waking waiters and running callbacks; later calls do nothing.
    pub fn cancel(&self) {
        self.cancel_with(Status::cancelled("the call was cancelled"));
    }

    /// Cancels with `reason` (`DEADLINE_EXCEEDED`, `UNAVAILABLE` for a lost connection, ...)
    /// unless the token is already cancelled.
    pub fn cancel_with(&self, reason: Status) {
        let callbacks = {
            let mut state = self.lock();
            if state.reason.is_some() {
                return;
            }
            state.reason = Some(reason.clone());
            self.inner.cancelled.store(true, Ordering::SeqCst);
            let mut all = Vec::new();
            all.extend(state.first.take());
            all.append(&mut state.callbacks);
            all
        };
        self.inner.notify.notify_waiters();
        for (_, callback) in callbacks {
            callback.run(&reason);
        }
    }

    /// Whether a handle to this token exists beyond a controller's and a call's own clone of
    /// it: one through which the call could be cancelled while it runs.
    pub(crate) fn held_elsewhere(&self) -> bool {
        Arc::strong_count(&self.inner) > 2
    }

    /// Whether the token has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Why the token was cancelled, once it has been.
    pub fn reason(&self) -> Option<Status> {
        self.lock().reason.clone()
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        crate::wait::until(&self.inner.notify, || self.is_cancelled().then_some(())).await
    }

    /// Runs `callback` when the token is cancelled, or now if it already is.
    pub fn on_cancel(&self, callback: Closure) {
        self.register(Callback::User(callback));
    }

    /// The core's callback: runs `f` with the reason when the token is cancelled (now, if it
    /// is). Returns an id for [`forget`](CancelToken::forget).
    pub(crate) fn on_cancel_with(&self, action: crate::call::OnCancel) -> u64 {
        self.register(Callback::Core(action))
    }

    /// Drops a callback that has not run: its call ended without being cancelled.
    pub(crate) fn forget(&self, id: u64) {
        let mut state = self.lock();
        if state.first.as_ref().is_some_and(|(i, _)| *i == id) {
            state.first = None;
        } else {
            state.callbacks.retain(|(i, _)| *i != id);
        }
    }

    fn register(&self, callback: Callback) -> u64 {
        let mut state = self.lock();
        if let Some(reason) = state.reason.clone() {
            drop(state);
            callback.run(&reason);
            return 0;
        }
        state.next_id += 1;
        let id = state.next_id;
        if state.first.is_none() {
            state.first = Some((id, callback));
        } else {
            state.callbacks.push((id, callback));
        }
        id
    }

    fn lock(&self) -> MutexGuard<'_, CancelState> {
        // The lock is never held while user code runs, so it cannot be poisoned by it; recover
        // the state rather than propagate if it ever is.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Per-call settings and state, on both sides of a call: the C++ `RpcController`.
///
/// **Client.** Set a timeout or deadline and request metadata before the call; afterwards read
/// the response metadata (headers and trailers) and, in the C++ style, the failure. Cancel
/// from anywhere with [`start_cancel`](RpcController::start_cancel) or a
/// [`cancel_token`](RpcController::cancel_token). Calls made without a controller use the
/// defaults: no deadline, no metadata.
///
/// **Server.** A handler reads the deadline and request metadata, adds response metadata
/// (sent with the response headers, or with the trailers if the headers already went out),
/// may send the headers early with [`send_headers`](RpcController::send_headers), and learns
/// that the call ended (the client cancelled, the deadline passed, the connection closed, the
/// grace period of the server's shutdown ran out) through [`is_cancelled`](RpcController::is_cancelled),
/// [`cancelled`](RpcController::cancelled) or [`notify_on_cancel`](RpcController::notify_on_cancel).
/// A handler fails a call by returning `Err(status)`; [`set_failed`](RpcController::set_failed)
/// does the same for code written in the C++ style.
#[derive(Debug, Default)]
pub struct RpcController {
    deadline: Option<Instant>,
    metadata: Metadata,
    response_metadata: Metadata,
    trailers: Metadata,
    failure: Option<Status>,
    /// Made on first use: a client call through a controller nobody asked for a token needs
    /// none (nothing can cancel it while it runs), which saves an allocation per call.
    cancel: OnceLock<CancelToken>,
    /// On a server: where [`send_headers`](RpcController::send_headers) sends them.
    responses: Option<ByteSink>,
    /// Whether what this side sends is compressed; `None` leaves it to the channel or server.
    compress: Option<bool>,
    /// On a server: the requests, which know how the one read last arrived.
    requests: Option<Inbound>,
    /// On a client: how the single response arrived.
    received_compressed: Option<bool>,
}

impl RpcController {
    /// A controller with no deadline and no metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// A controller whose call must finish within `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        let mut ctrl = Self::new();
        ctrl.set_timeout(timeout);
        ctrl
    }

    /// A controller whose call must finish by `deadline`.
    pub fn with_deadline(deadline: Instant) -> Self {
        let mut ctrl = Self::new();
        ctrl.deadline = Some(deadline);
        ctrl
    }

    /// Sets the deadline to `timeout` from now.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.deadline = Instant::now().checked_add(timeout);
    }

    /// Sets or clears the deadline.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// When the call must be finished, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (zero once it has passed), or `None` without one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Metadata sent with the request.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Metadata sent with the request, to add to before a call.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Client: the response headers and trailers the server sent, in that order. Server: what
    /// the handler has added and not yet sent.
    pub fn response_metadata(&self) -> &Metadata {
        &self.response_metadata
    }

    /// Server: metadata for the response headers, for a handler to add to. What is added
    /// after the headers went out (at the first streamed message, or by
    /// [`send_headers`](RpcController::send_headers)) goes out with the trailers instead.
    pub fn response_metadata_mut(&mut self) -> &mut Metadata {
        &mut self.response_metadata
    }

    /// Client: the trailers alone. Server: trailers to send when the call ends.
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    /// Server: trailers to send when the call ends, for a handler to add to.
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailers
    }

    /// Server: sends the response headers now, with the response metadata added so far (gRPC's
    /// `SendHeader`), so the client knows the call was accepted before the first message. Later
    /// calls, and calls on a client, do nothing.
    pub fn send_headers(&mut self) {
        if let Some(responses) = &self.responses {
            if !responses.headers_sent() {
                responses.send_headers(std::mem::take(&mut self.response_metadata));
            }
        }
    }

    /// Whether the messages this side sends on the call are compressed: a client's requests,
    /// a server's responses. It takes effect where the transport compresses: gRPC, with
    /// `send_compressed` set on the channel or the server (and, for responses, an encoding the
    /// client accepts). Without a word, the channel's or server's setting holds. A stream's
    /// messages can be chosen one by one with
    /// [`StreamSender::set_compression`](crate::StreamSender::set_compression).
    pub fn set_message_compression(&mut self, enabled: bool) {
        self.compress = Some(enabled);
        if let Some(responses) = &self.responses {
            responses.set_compression(enabled);
        }
    }

    /// Whether the message this side received arrived compressed (gRPC's per-message flag):
    /// on a server, the request read last (the one request of a unary or server-streaming
    /// call); on a client, the single response, once the call has returned. `false` where
    /// the transport does not compress.
    pub fn received_compressed(&self) -> bool {
        match &self.requests {
            Some(requests) => requests.last_compressed(),
            None => self.received_compressed,
        }
        .unwrap_or(false)
    }

    /// Marks the call failed. On a server the client receives this status even if the
    /// handler then returns a response (the C++ `SetFailed`); returning `Err(status)` is the
    /// same and is the usual way.
    pub fn set_failed(&mut self, status: Status) {
        self.failure = Some(status);
    }

    /// Whether the call failed.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The failure, if any.
    pub fn status(&self) -> Option<&Status> {
        self.failure.as_ref()
    }

    /// The failure's message, if any (the C++ `ErrorText`).
    pub fn error_text(&self) -> Option<&str> {
        self.failure.as_ref().map(Status::message)
    }

    /// Asks for the call to be cancelled (the C++ `StartCancel`).
    pub fn start_cancel(&self) {
        self.token().cancel();
    }

    /// Whether the call was cancelled or otherwise ended early: by either side, by its
    /// deadline, by a lost connection or by server shutdown.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.get().is_some_and(CancelToken::is_cancelled)
    }

    /// Completes once the call is cancelled or otherwise ended early.
    pub async fn cancelled(&self) {
        self.token().cancelled().await
    }

    /// Runs `callback` when the call is cancelled (the C++ `NotifyOnCancel`).
    pub fn notify_on_cancel(&self, callback: Closure) {
        self.token().on_cancel(callback);
    }

    /// The call's cancellation signal, to hand to other tasks.
    pub fn cancel_token(&self) -> CancelToken {
        self.token().clone()
    }

    fn token(&self) -> &CancelToken {
        self.cancel.get_or_init(CancelToken::new)
    }

    /// Clears everything, so the controller can serve another call.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// A server-side controller for a call the core is starting.
    pub(crate) fn for_server(
        deadline: Option<Instant>,
        metadata: Metadata,
        cancel: CancelToken,
        responses: ByteSink,
        requests: Inbound,
    ) -> Self {
        // Every field named: `..Self::default()` would allocate a token only to drop it.
        RpcController {
            deadline,
            metadata,
            response_metadata: Metadata::new(),
            trailers: Metadata::new(),
            failure: None,
            cancel: OnceLock::from(cancel),
            responses: Some(responses),
            compress: None,
            requests: Some(requests),
            received_compressed: None,
        }
    }

    /// Client: what the call asks of the compression of its requests.
    pub(crate) fn compression(&self) -> Option<bool> {
        self.compress
    }

    /// Client: how the single response arrived.
    pub(crate) fn set_received_compressed(&mut self, compressed: Option<bool>) {
        self.received_compressed = compressed;
    }

    /// Server: the headers still to send (if they have not gone out) and the trailers, taken
    /// out of the controller at the end of the call.
    pub(crate) fn take_response_metadata(&mut self) -> (Option<Metadata>, Metadata) {
        let mut trailers = std::mem::take(&mut self.trailers);
        let pending = std::mem::take(&mut self.response_metadata);
        if self.responses.as_ref().is_some_and(ByteSink::headers_sent) {
            let mut all = pending;
            all.extend(trailers);
            trailers = all;
            (None, trailers)
        } else {
            (Some(pending), trailers)
        }
    }

    /// Client: readies the controller for a call and returns the token the call is cancelled
    /// with, if anyone could cancel it: none when no token was handed out. A controller reused
    /// after a cancelled call gets a fresh token, so the old cancellation does not end the new
    /// call.
    pub(crate) fn token_for_call(&mut self) -> Option<CancelToken> {
        if self.is_cancelled() {
            self.cancel = OnceLock::new();
        }
        self.failure = None;
        self.response_metadata = Metadata::new();
        self.trailers = Metadata::new();
        self.cancel.get().cloned()
    }

    /// Client: as [`token_for_call`](Self::token_for_call), for calls that always need a token
    /// (streams, which outlive the controller's borrow).
    pub(crate) fn stream_token(&mut self) -> CancelToken {
        self.token_for_call();
        self.token().clone()
    }

    /// Client: what the server sent back.
    pub(crate) fn set_response(&mut self, headers: Metadata, trailers: Metadata) {
        let mut all = headers;
        all.extend(trailers.clone());
        self.response_metadata = all;
        self.trailers = trailers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancel_runs_callbacks_once_and_late_callbacks_at_once() {
        let ctrl = RpcController::new();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        ctrl.notify_on_cancel(Closure::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        ctrl.start_cancel();
        ctrl.start_cancel();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let c = count.clone();
        ctrl.notify_on_cancel(Closure::new(move || {
            c.fetch_add(10, Ordering::SeqCst);
        }));
        assert_eq!(count.load(Ordering::SeqCst), 11);
        assert!(ctrl.is_cancelled());
    }

    #[test]
    fn the_first_reason_wins_and_a_panicking_callback_spares_the_rest() {
        let token = CancelToken::new();
        let ran = Arc::new(AtomicUsize::new(0));
        token.on_cancel(Closure::new(|| panic!("a bad callback")));
        let r = ran.clone();
        token.on_cancel(Closure::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        token.cancel_with(Status::deadline_exceeded("late"));
        token.cancel();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(
            token.reason().map(|s| s.code()),
            Some(crate::Code::DeadlineExceeded)
        );
    }

    #[tokio::test]
    async fn cancelled_wakes_a_waiter() {
        let token = CancelToken::new();
        let waiter = {
            let token = token.clone();
            tokio::spawn(async move { token.cancelled().await })
        };
        tokio::task::yield_now().await;
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
    }
}
