/// A one-shot callback: the C++ `Closure`, for callback-style completion beside `async`.
pub struct Closure(Box<dyn FnOnce() + Send + 'static>);

impl Closure {
    /// Wraps `callback`.
    pub fn new(callback: impl FnOnce() + Send + 'static) -> Self {
        Closure(Box::new(callback))
    }

    /// Runs the callback, consuming it (the C++ `Run`).
    pub fn run(self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Closure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closure")
    }
}

/// Runs `call` on the current tokio runtime and hands its result to `done` when it completes,
/// for code written in the callback style of C++ generic services.
pub fn spawn_with_callback<T, F>(call: F, done: impl FnOnce(T) + Send + 'static)
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(async move { done(call.await) });
}
