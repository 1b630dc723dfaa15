use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{Closure, Status};

/// Key-value pairs sent along with a call or its response, in order, duplicates allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry, keeping any earlier one with the same key.
    pub fn append(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Replaces every entry with this key by one with `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value.into()));
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every entry, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A cancellation signal shared by everyone working on one call.
///
/// Cancelling is idempotent; callbacks registered with [`CancelToken::on_cancel`] run once,
/// on the thread that cancels (or at once, if the token is already cancelled).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: Notify,
    callbacks: Mutex<Vec<Closure>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels, waking waiters and running callbacks; later calls do nothing.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.notify.notify_waiters();
        let callbacks = std::mem::take(&mut *self.lock_callbacks());
        for callback in callbacks {
            callback.run();
        }
    }

    /// Whether [`cancel`](CancelToken::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        crate::wait::until(&self.inner.notify, || self.is_cancelled().then_some(())).await
    }

    /// Runs `callback` when the token is cancelled, or now if it already is.
    pub fn on_cancel(&self, callback: Closure) {
        let mut callbacks = self.lock_callbacks();
        if self.is_cancelled() {
            drop(callbacks);
            callback.run();
        } else {
            callbacks.push(callback);
        }
    }

    fn lock_callbacks(&self) -> std::sync::MutexGuard<'_, Vec<Closure>> {
        // A callback that panicked poisoned nothing we rely on: the list is still valid.
        self.inner
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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
/// A client sets a timeout or deadline and request metadata before the call, and reads the
/// failure and response metadata after it. A server handler reads the deadline and request
/// metadata, may add response metadata, may fail the call with
/// [`set_failed`](RpcController::set_failed), and learns of cancellation through
/// [`is_cancelled`](RpcController::is_cancelled), [`cancelled`](RpcController::cancelled) or
/// [`notify_on_cancel`](RpcController::notify_on_cancel).
#[derive(Debug, Default)]
pub struct RpcController {
    deadline: Option<Instant>,
    metadata: Metadata,
    response_metadata: Metadata,
    failure: Option<Status>,
    cancel: CancelToken,
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

    /// Metadata sent back with the response.
    pub fn response_metadata(&self) -> &Metadata {
        &self.response_metadata
    }

    /// Metadata sent back with the response, for a handler to add to.
    pub fn response_metadata_mut(&mut self) -> &mut Metadata {
        &mut self.response_metadata
    }

    /// Marks the call failed. On a server the client receives this status even if the
    /// handler then returns a response (the C++ `SetFailed`).
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
        self.cancel.cancel();
    }

    /// Whether the call was cancelled, by either side or by its deadline.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes once the call is cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Runs `callback` when the call is cancelled (the C++ `NotifyOnCancel`).
    pub fn notify_on_cancel(&self, callback: Closure) {
        self.cancel.on_cancel(callback);
    }

    /// The call's cancellation signal, to hand to other tasks.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Clears everything, so the controller can serve another call.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    pub(crate) fn set_cancel_token(&mut self, token: CancelToken) {
        self.cancel = token;
    }

    pub(crate) fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = metadata;
    }

    pub(crate) fn set_response_metadata(&mut self, metadata: Metadata) {
        self.response_metadata = metadata;
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

    #[test]
    fn metadata_keeps_order_and_insert_replaces() {
        let mut md = Metadata::new();
        md.append("a", "1");
        md.append("a", "2");
        md.insert("b", "3");
        assert_eq!(md.get("a"), Some("1"));
        md.insert("a", "4");
        assert_eq!(md.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "4")]);
    }
}
