//! The direct client API that generated `...Client` types return: one [`Call`] per method
//! call, to set options on and then `.await`.
//!
//! ```ignore
//! let reply = client.get(request).await?;                                   // defaults
//! let reply = client.get(request).timeout(Duration::from_secs(1)).await?;  // a deadline
//! let mut events = client.watch(request).await?;                          // server streaming
//! while let Some(event) = events.message().await? { /* ... */ }
//! let total = client.put_many(vec![a, b, c]).await?;                      // client streaming
//! ```

use std::future::IntoFuture;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::service::{BoxFuture, MethodDescriptor, RpcChannel};
use crate::stream::{IntoRequests, Requests, Streaming};
use crate::{Message, Metadata, RpcController, Status};

/// One call, built by a generated client method: set a timeout, metadata or a controller,
/// then `.await` it. What the await gives depends on the kind of method:
///
/// | method | `.await` gives |
/// | --- | --- |
/// | unary | `Result<Response, Status>` |
/// | server streaming | `Result<Streaming<Response>, Status>`, at once; read it with `message()` |
/// | client streaming | `Result<Response, Status>`, after sending every request |
/// | bidirectional | `Result<Streaming<Response>, Status>`, at once; requests are sent meanwhile |
///
/// A call's future borrows the client; to run a call on another task, clone the client
/// (cheap) into it.
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'a, K> {
    options: Options<'a>,
    kind: K,
}

/// The options a call is built with.
struct Options<'a> {
    channel: &'a dyn RpcChannel,
    method: &'static MethodDescriptor,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    metadata: Metadata,
    ctrl: Option<&'a mut RpcController>,
}

impl Options<'_> {
    /// The controller the call runs under: the caller's, or `own` when none was given, with
    /// this call's options applied.
    fn controller<'b>(&'b mut self, own: &'b mut RpcController) -> &'b mut RpcController {
        let ctrl = match self.ctrl.as_deref_mut() {
            Some(ctrl) => ctrl,
            None => own,
        };
        if let Some(deadline) = self.deadline {
            ctrl.set_deadline(Some(deadline));
        }
        if let Some(timeout) = self.timeout {
            ctrl.set_timeout(timeout);
        }
        for (key, value) in self.metadata.iter() {
            ctrl.metadata_mut().append(key, value);
        }
        ctrl
    }
}

impl<K> std::fmt::Debug for Call<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.options.method.full_name)
            .field("timeout", &self.options.timeout)
            .field("deadline", &self.options.deadline)
            .field("metadata", &self.options.metadata)
            .finish()
    }
}

/// A unary call's request.
pub struct Unary<Req, Resp>(Req, PhantomData<fn() -> Resp>);
/// A server-streaming call's request.
pub struct ServerStreaming<Req, Resp>(Req, PhantomData<fn() -> Resp>);
/// A client-streaming call's requests.
pub struct ClientStreaming<Req, Resp>(Requests<Req>, PhantomData<fn() -> Resp>);
/// A bidirectional call's requests.
pub struct BidiStreaming<Req, Resp>(Requests<Req>, PhantomData<fn() -> Resp>);

impl<'a, K> Call<'a, K> {
    fn new(channel: &'a dyn RpcChannel, method: &'static MethodDescriptor, kind: K) -> Self {
        Call {
            options: Options {
                channel,
                method,
                timeout: None,
                deadline: None,
                metadata: Metadata::new(),
                ctrl: None,
            },
            kind,
        }
    }

    /// The call must finish within `timeout` from when it is awaited; past it, every await of
    /// the call fails with `DEADLINE_EXCEEDED`, and the server ends the call: its handler's
    /// stream reads and sends fail and `ctrl.cancelled()` completes (a handler awaiting
    /// something else finishes that first).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// The call must finish by `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.options.deadline = Some(deadline);
        self
    }

    /// Adds an entry of request metadata.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.metadata.append(key, value);
        self
    }

    /// Runs the call under `ctrl`: its deadline, metadata and cancellation apply (with this
    /// call's options on top), and after a unary or client-streaming call it holds the
    /// response metadata and the failure, if any. Cancel the call from elsewhere through
    /// `ctrl.cancel_token()`.
    pub fn controller(mut self, ctrl: &'a mut RpcController) -> Self {
        self.options.ctrl = Some(ctrl);
        self
    }
}

impl<'a, Req: Message + 'a, Resp: Message + Default> Call<'a, Unary<Req, Resp>> {
    /// A unary call of `method` through `channel`.
    pub fn unary(
        channel: &'a dyn RpcChannel,
        method: &'static MethodDescriptor,
        request: Req,
    ) -> Self {
        Call::new(channel, method, Unary(request, PhantomData))
    }
}

impl<'a, Req: Message + 'a, Resp: Message + Default + 'a> IntoFuture
    for Call<'a, Unary<Req, Resp>>
{
    type Output = Result<Resp, Status>;
    type IntoFuture = BoxFuture<'a, Result<Resp, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        let Call {
            mut options,
            kind: Unary(request, _),
        } = self;
        Box::pin(async move {
            let (channel, method) = (options.channel, options.method);
            let mut own = RpcController::new();
            let ctrl = options.controller(&mut own);
            crate::call::unary(channel, method, ctrl, &request).await
        })
    }
}

impl<'a, Req: Message + 'a, Resp: Message + Default> Call<'a, ServerStreaming<Req, Resp>> {
    /// A server-streaming call of `method` through `channel`.
    pub fn server_streaming(
        channel: &'a dyn RpcChannel,
        method: &'static MethodDescriptor,
        request: Req,
    ) -> Self {
        Call::new(channel, method, ServerStreaming(request, PhantomData))
    }
}

impl<'a, Req: Message + 'a, Resp: Message + Default + 'a> IntoFuture
    for Call<'a, ServerStreaming<Req, Resp>>
{
    type Output = Result<Streaming<Resp>, Status>;
    type IntoFuture = BoxFuture<'a, Result<Streaming<Resp>, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        let Call {
            mut options,
            kind: ServerStreaming(request, _),
        } = self;
        Box::pin(async move {
            let (channel, method) = (options.channel, options.method);
            let mut own = RpcController::new();
            let ctrl = options.controller(&mut own);
            crate::call::server_streaming(channel, method, ctrl, &request).await
        })
    }
}

impl<'a, Req: Message + Default + 'static, Resp: Message + Default>
    Call<'a, ClientStreaming<Req, Resp>>
{
    /// A client-streaming call of `method` through `channel`.
    pub fn client_streaming(
        channel: &'a dyn RpcChannel,
        method: &'static MethodDescriptor,
        requests: impl IntoRequests<Req>,
    ) -> Self {
        Call::new(
            channel,
            method,
            ClientStreaming(requests.into_requests(), PhantomData),
        )
    }
}

impl<'a, Req: Message + Default + 'static, Resp: Message + Default + 'a> IntoFuture
    for Call<'a, ClientStreaming<Req, Resp>>
{
    type Output = Result<Resp, Status>;
    type IntoFuture = BoxFuture<'a, Result<Resp, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        let Call {
            mut options,
            kind: ClientStreaming(requests, _),
        } = self;
        Box::pin(async move {
            let (channel, method) = (options.channel, options.method);
            let mut own = RpcController::new();
            let ctrl = options.controller(&mut own);
            crate::call::client_streaming(channel, method, ctrl, requests).await
        })
    }
}

impl<'a, Req: Message + Default + 'static, Resp: Message + Default>
    Call<'a, BidiStreaming<Req, Resp>>
{
    /// A bidirectional call of `method` through `channel`.
    pub fn bidi_streaming(
        channel: &'a dyn RpcChannel,
        method: &'static MethodDescriptor,
        requests: impl IntoRequests<Req>,
    ) -> Self {
        Call::new(
            channel,
            method,
            BidiStreaming(requests.into_requests(), PhantomData),
        )
    }
}

impl<'a, Req: Message + Default + 'static, Resp: Message + Default + 'a> IntoFuture
    for Call<'a, BidiStreaming<Req, Resp>>
{
    type Output = Result<Streaming<Resp>, Status>;
    type IntoFuture = BoxFuture<'a, Result<Streaming<Resp>, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        let Call {
            mut options,
            kind: BidiStreaming(requests, _),
        } = self;
        Box::pin(async move {
            let (channel, method) = (options.channel, options.method);
            let mut own = RpcController::new();
            let ctrl = options.controller(&mut own);
            crate::call::bidi_streaming(channel, method, ctrl, requests).await
        })
    }
}
