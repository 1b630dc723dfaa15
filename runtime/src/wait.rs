use tokio::sync::Notify;

/// Waits on `notify` until `check` yields a value, without missing a notification that lands
/// between the check and the wait: the waiter is registered before each check but the first,
/// which answers the common case (nothing to wait for) without touching the `Notify`.
pub(crate) async fn until<T>(notify: &Notify, mut check: impl FnMut() -> Option<T>) -> T {
    if let Some(value) = check() {
        return value;
    }
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(value) = check() {
            return value;
        }
        notified.await;
    }
}
