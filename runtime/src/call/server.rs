//! The server half of the call core: routing, the handler task, deadlines, cancellation,
//! panics, the choice of what ends a call, and the tracking that shutdown needs.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::{ByteSink, ByteStream, CallEnd, EndHooks, OnCancel, Outbound, ServerCall};
use crate::service::{BoxFuture, MethodDescriptor, Service};
use crate::{CancelToken, Metadata, RpcController, Status};

/// Hooks around every call a server runs, in the order they were added.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Runs before the handler with the request metadata, which it may change. An error
    /// rejects the call with that status, and the handler never runs.
    fn on_call(
        &self,
        method: &'static MethodDescriptor,
        metadata: &mut Metadata,
    ) -> Result<(), Status> {
        let _ = (method, metadata);
        Ok(())
    }

    /// Runs once the call has ended, with the status the client was sent.
    fn on_end(&self, method: &'static MethodDescriptor, status: &Result<(), Status>) {
        let _ = (method, status);
    }
}

/// A call a server transport has read the start of.
pub struct IncomingCall<'a> {
    /// Fully qualified service name, such as `echo.EchoService`.
    pub service: &'a str,
    /// Method name, such as `Echo`.
    pub method: &'a str,
    /// When the client stops waiting, from the timeout it sent.
    pub deadline: Option<Instant>,
    /// Request metadata.
    pub metadata: Metadata,
    /// The requests, filled by the transport.
    pub requests: ByteStream,
    /// Where the responses and the call's end go.
    pub responses: Arc<dyn Outbound>,
    /// Cancelled by the transport when the client cancels, resets the call or goes away, and
    /// by the core at the deadline. It ends the call at once: the client is sent its status,
    /// the handler's stream reads and sends fail, and `ctrl.cancelled()` completes.
    pub cancel: CancelToken,
}

/// The transport-neutral server: hosts services, routes each call to its method, and runs it.
///
/// Every handler runs on a task of its own, but for one that a transport starts with
/// [`dispatch_batched`](ServerCore::dispatch_batched) on a current-thread runtime and that
/// finishes in its first poll: that one runs on the transport's task. The core enforces the
/// deadline, turns a panic into `INTERNAL` (the detail goes to the panic hook, which prints it
/// on the server; the client gets a generic message), ends the call when it is cancelled, and
/// keeps count of the handlers still running, so that a graceful shutdown can wait for them and
/// a forced one can drop them.
pub struct ServerCore {
    services: HashMap<&'static str, Arc<dyn Service>>,
    interceptors: Arc<[Arc<dyn ServerInterceptor>]>,
    handlers: Handlers,
}

impl std::fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCore")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("running", &self.running())
            .finish()
    }
}

impl ServerCore {
    /// A core hosting `services` (by fully qualified name; a later one with the same name
    /// replaces an earlier one), with `interceptors` around every call.
    pub fn new(
        services: impl IntoIterator<Item = Arc<dyn Service>>,
        interceptors: Vec<Arc<dyn ServerInterceptor>>,
    ) -> ServerCore {
        ServerCore {
            services: services
                .into_iter()
                .map(|s| (s.descriptor().full_name, s))
                .collect(),
            interceptors: interceptors.into(),
            handlers: Handlers::default(),
        }
    }

    /// The hosted service with this fully qualified name.
    pub fn service(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.services.get(name)
    }

    /// Starts one call: routes it, runs the interceptors, and spawns its handler on the
    /// current tokio runtime. Never waits. An unknown service or method is answered with
    /// `UNIMPLEMENTED` at once.
    pub fn dispatch(&self, call: IncomingCall<'_>) {
        self.start(call, None);
    }

    /// Like [`dispatch`](Self::dispatch), except that on a current-thread runtime the handler
    /// is not spawned but kept in `batch` (from [`handler_batch`](Self::handler_batch)) for
    /// its first poll in [`HandlerBatch::run`]. A transport calls this for the calls it reads
    /// from one batch of bytes, and runs the batch before it waits for more: by then a unary
    /// call's request has usually arrived, so most handlers finish in that first poll, and the
    /// spawn, the scheduling and the switch to a task of their own are saved. On a
    /// multi-thread runtime every handler is spawned, so that calls on one connection run in
    /// parallel.
    pub fn dispatch_batched(&self, call: IncomingCall<'_>, batch: &mut HandlerBatch) {
        let batch = batch.inline.then_some(&mut batch.tasks);
        self.start(call, batch);
    }

    /// An empty batch of handlers for [`dispatch_batched`](Self::dispatch_batched), for the
    /// current tokio runtime (outside one, every handler is spawned).
    pub fn handler_batch(&self) -> HandlerBatch {
        HandlerBatch {
            tasks: Vec::new(),
            inline: tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
                runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
            }),
            handlers: self.handlers.clone(),
        }
    }

    fn start(&self, call: IncomingCall<'_>, batch: Option<&mut Vec<BoxFuture<'static, ()>>>) {
        let IncomingCall {
            service,
            method,
            deadline,
            mut metadata,
            requests,
            responses,
            cancel,
        } = call;
        let Some(target) = self.services.get(service).cloned() else {
            responses.finish(CallEnd::error(Status::unimplemented(format!(
                "unknown service {service}"
            ))));
            return;
        };
        let Some(descriptor) = target.descriptor().method(method) else {
            responses.finish(CallEnd::error(Status::unimplemented(format!(
                "unknown method {method} of {service}"
            ))));
            return;
        };
        #[cfg(feature = "tracing")]
        let span = super::trace_span(true, descriptor);
        let sink = ByteSink::with_hooks(
            responses,
            cancel.clone(),
            Some(EndHooks {
                method: descriptor,
                interceptors: self.interceptors.clone(),
                #[cfg(feature = "tracing")]
                span: span.clone(),
            }),
        );
        for interceptor in self.interceptors.iter() {
            if let Err(status) = interceptor.on_call(descriptor, &mut metadata) {
                sink.finish(CallEnd::error(status));
                return;
            }
        }
        // However the call is cancelled, the client hears why at once, and reads of the
        // request stream stop waiting; the handler sees the cancellation through its
        // controller and its stream sends.
        let on_cancel = cancel.on_cancel_with(OnCancel::Server {
            requests: requests.inbound(),
            responses: sink.clone(),
        });
        let mut ctrl = RpcController::for_server(
            deadline,
            metadata,
            cancel.clone(),
            sink.clone(),
            requests.inbound(),
        );
        let index = descriptor.index;
        // Captured variables are used in place, not moved into locals: a move would give the
        // task a second copy of each, and a task of 1 KiB or more takes a slower allocator path.
        let task = move |registered: Option<Registered>| {
            let task = async move {
                let _registered = registered;
                let result = {
                    let call = ServerCall {
                        requests,
                        responses: sink.clone(),
                    };
                    let handler = CatchUnwind(target.call_method(index, &mut ctrl, call));
                    tokio::pin!(handler);
                    // A timer only for calls with a deadline, boxed so that the task of every other
                    // call stays small.
                    let mut timer = deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into())));
                    std::future::poll_fn(|cx| {
                        if let Poll::Ready(result) = handler.as_mut().poll(cx) {
                            return Poll::Ready(result);
                        }
                        if timer
                            .as_mut()
                            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
                        {
                            timer = None;
                            // Ends the call now (waking the handler's awaits of it); the handler,
                            // told through its controller, may still finish its own work.
                            cancel.cancel_with(Status::deadline_exceeded(
                                "the deadline passed on the server",
                            ));
                        }
                        Poll::Pending
                    })
                    .await
                };
                let (headers, trailers) = ctrl.take_response_metadata();
                let status = match (result, ctrl.status()) {
                    (Ok(_), Some(failed)) => Err(failed.clone()),
                    (result, _) => result,
                };
                let end_of_call = match status {
                    Ok(Some(message)) if message.len() > sink.max_message_size() => {
                        CallEnd::error(Status::resource_exhausted(format!(
                            "the response of {} bytes is over the limit of {} bytes on this call's responses",
                            message.len(),
                            sink.max_message_size()
                        )))
                    }
                    Ok(message) => CallEnd {
                        headers,
                        message,
                        status: Ok(()),
                        trailers,
                    },
                    Err(status) => CallEnd {
                        headers,
                        message: None,
                        status: Err(status),
                        trailers,
                    },
                };
                sink.finish(end_of_call);
                // The callback holds the sink, which holds the token: forgetting it breaks that
                // cycle for a call that ended without being cancelled.
                cancel.forget(on_cancel);
            };
            // The handler runs inside the call's span, so what it logs is the call's.
            #[cfg(feature = "tracing")]
            let task = tracing::Instrument::instrument(task, span);
            task
        };
        match batch {
            Some(batch) => batch.push(Box::pin(task(None))),
            None => self.handlers.spawn(|registered| task(Some(registered))),
        }
    }

    /// Number of handlers still running, including those of calls that already ended but
    /// whose handler has not returned.
    pub fn running(&self) -> usize {
        self.handlers.lock().len()
    }

    /// Completes once no handler is running.
    pub async fn idle(&self) {
        crate::wait::until(&self.handlers.idle, || {
            self.handlers.lock().is_empty().then_some(())
        })
        .await
    }

    /// Drops every handler that is still running, at its next await: the end of a shutdown's
    /// grace period. Their calls should have been cancelled first, so their clients know.
    pub fn abort_handlers(&self) {
        for handle in self.handlers.lock().values() {
            handle.abort();
        }
    }
}

/// Handlers started by [`ServerCore::dispatch_batched`] and not yet polled: a transport keeps
/// one per connection and runs it with [`run`](HandlerBatch::run) before it waits for more
/// bytes. Dropping a batch runs it.
pub struct HandlerBatch {
    tasks: Vec<BoxFuture<'static, ()>>,
    /// Whether handlers wait here for their first poll: on a current-thread runtime only.
    inline: bool,
    handlers: Handlers,
}

impl HandlerBatch {
    /// Whether no handler is waiting for its first poll.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Polls every handler in the batch once, here, and spawns those not finished by then.
    pub fn run(&mut self) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for mut task in self.tasks.drain(..) {
            // A panic here drops the call's task, as tokio would drop a spawned one, and
            // leaves the transport's task that runs the batch alive. (The handler's own panic
            // is caught inside, and interceptors' in `ByteSink::finish`.)
            let poll = std::panic::catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx)));
            if let Ok(Poll::Pending) = poll {
                // Polled with a waker that does nothing: the spawned task polls it again at
                // once, registering its own.
                self.handlers.spawn(move |registered| async move {
                    let _registered = registered;
                    task.await
                });
            }
        }
    }
}

impl Drop for HandlerBatch {
    fn drop(&mut self) {
        // Outside a runtime (one shutting down) nothing can be spawned: the calls end as their
        // tasks drop.
        if !self.tasks.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            self.run();
        }
    }
}

impl std::fmt::Debug for HandlerBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerBatch")
            .field("waiting", &self.tasks.len())
            .field("inline", &self.inline)
            .finish()
    }
}

/// The handler tasks still running, in slots reused as tasks end (no hashing per call).
#[derive(Clone, Default)]
struct Handlers {
    tasks: Arc<Mutex<Slots>>,
    idle: Arc<Notify>,
}

#[derive(Default)]
struct Slots {
    handles: Vec<Option<AbortHandle>>,
    free: Vec<usize>,
    running: usize,
}

impl Slots {
    fn is_empty(&self) -> bool {
        self.running == 0
    }

    fn len(&self) -> usize {
        self.running
    }

    fn values(&self) -> impl Iterator<Item = &AbortHandle> {
        self.handles.iter().flatten()
    }
}

impl Handlers {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        lock_tasks(&self.tasks)
    }

    /// Spawns the task `make` returns, which holds the `Registered` it is given until it ends.
    fn spawn<F>(&self, make: impl FnOnce(Registered) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // The slot is taken before the task can run, and freed by a guard the task holds, so
        // an aborted task is forgotten too.
        let mut slots = self.lock();
        let slot = slots.free.pop().unwrap_or_else(|| {
            slots.handles.push(None);
            slots.handles.len() - 1
        });
        slots.running += 1;
        let guard = Registered {
            slot,
            tasks: self.tasks.clone(),
            idle: self.idle.clone(),
        };
        let handle = tokio::spawn(make(guard));
        slots.handles[slot] = Some(handle.abort_handle());
    }
}

fn lock_tasks(tasks: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    // No user code runs under this lock.
    tasks.lock().unwrap_or_else(|p| p.into_inner())
}

struct Registered {
    slot: usize,
    tasks: Arc<Mutex<Slots>>,
    idle: Arc<Notify>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut slots = lock_tasks(&self.tasks);
        slots.handles[self.slot] = None;
        slots.free.push(self.slot);
        slots.running -= 1;
        if slots.running == 0 {
            self.idle.notify_waiters();
        }
    }
}

/// Turns a panic inside a handler into `INTERNAL`, so one bad handler cannot take a server
/// (or an in-process caller) down with it. The client gets a generic message; the panic's
/// detail stays on the server, where the panic hook has printed it.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F, T> Future for CatchUnwind<F>
where
    F: Future<Output = Result<T, Status>> + Unpin,
{
    type Output = Result<T, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(Status::internal("the handler panicked"))),
        }
    }
}
