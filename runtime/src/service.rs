//! The generic-services shape: descriptors, the type-erased [`Service`] that servers host,
//! and the [`RpcChannel`] that stubs call through. Generated code fills these in; the
//! functions in [`codegen`] are what it calls.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::stream::{ByteSink, ByteStream};
use crate::{RpcController, Status};

/// A boxed, sendable future, as the type-erased traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A method of a service, as generated from the `.proto`.
#[derive(Debug, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// Name as declared, such as `Echo`.
    pub name: &'static str,
    /// Fully qualified name, such as `echo.EchoService.Echo`.
    pub full_name: &'static str,
    /// Fully qualified name of the service, such as `echo.EchoService`.
    pub service: &'static str,
    /// Position in the service, the key of `call_method` dispatch.
    pub index: usize,
    /// Fully qualified name of the request message.
    pub input_type: &'static str,
    /// Fully qualified name of the response message.
    pub output_type: &'static str,
    /// Whether the client sends a stream of requests.
    pub client_streaming: bool,
    /// Whether the server sends a stream of responses.
    pub server_streaming: bool,
}

/// A service, as generated from the `.proto`.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// Name as declared, such as `EchoService`.
    pub name: &'static str,
    /// Fully qualified name, such as `echo.EchoService`.
    pub full_name: &'static str,
    /// The methods, in declaration order (`methods[i].index == i`).
    pub methods: &'static [MethodDescriptor],
}

impl ServiceDescriptor {
    /// The method with this name, if the service has one.
    pub fn method(&self, name: &str) -> Option<&'static MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// A request as a transport carries it: one encoded message, or a stream of them.
#[derive(Debug)]
pub enum RequestBody {
    /// The one request of a method without a request stream.
    Unary(Vec<u8>),
    /// The requests of a client-streaming method, as they arrive.
    Stream(ByteStream),
}

/// A service whose message types have been erased, so a server can host any number of them:
/// the C++ `Service::CallMethod`. Generated `...Server` adapters implement it.
pub trait Service: Send + Sync + 'static {
    /// What the service is and which methods it has.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Runs method `method_index` with an encoded request. Methods with a single response
    /// return it encoded; streaming methods send their responses into `responses` and return
    /// `None`.
    fn call_method<'a>(
        &'a self,
        method_index: usize,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>>;
}

impl<S: Service + ?Sized> Service for Arc<S> {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        (**self).descriptor()
    }

    fn call_method<'a>(
        &'a self,
        method_index: usize,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>> {
        (**self).call_method(method_index, ctrl, request, responses)
    }
}

/// Where a stub sends its calls: the one place a transport plugs in (the C++ `RpcChannel`).
///
/// The arguments mirror [`Service::call_method`], so an in-process channel is a direct call.
/// A channel honours the controller's deadline and cancellation, sends its request metadata,
/// and fills in its response metadata.
pub trait RpcChannel: Send + Sync + 'static {
    /// Performs one call of `method`.
    fn call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>>;
}

impl<C: RpcChannel + ?Sized> RpcChannel for Arc<C> {
    fn call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>> {
        (**self).call(method, ctrl, request, responses)
    }
}

/// Turns a panic inside a handler into an `internal` status, so one bad handler cannot take
/// a server (or an in-process caller) down with it.
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
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Poll::Ready(Err(Status::internal(format!(
                    "the handler panicked: {what}"
                ))))
            }
        }
    }
}

/// A channel that calls a [`Service`] in the same process: for tests, mocks, and
/// same-process use. Requests and responses are still encoded, so behaviour matches a remote
/// call; handler panics come back as `internal`.
#[derive(Clone)]
pub struct InProcessChannel {
    service: Arc<dyn Service>,
}

impl InProcessChannel {
    /// A channel to `service`.
    pub fn new(service: impl Service) -> Self {
        InProcessChannel {
            service: Arc::new(service),
        }
    }
}

impl RpcChannel for InProcessChannel {
    fn call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>> {
        Box::pin(async move {
            if self.service.descriptor().full_name != method.service {
                return Err(Status::unimplemented(format!(
                    "unknown service {}",
                    method.service
                )));
            }
            let deadline = ctrl.deadline();
            let token = ctrl.cancel_token();
            let call =
                CatchUnwind(
                    self.service
                        .call_method(method.index, ctrl, request, responses),
                );
            let result = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline.into(), call).await {
                    Ok(result) => result,
                    Err(_) => {
                        token.cancel();
                        Err(Status::deadline_exceeded("the deadline passed"))
                    }
                },
                None => call.await,
            };
            result
        })
    }
}

/// What generated code calls. Not for direct use: the names and signatures follow the
/// generator, not semver.
#[doc(hidden)]
pub mod codegen {
    use super::*;
    use crate::stream::{StreamSender, Streaming};
    use crate::Message;

    pub use super::BoxFuture;

    /// The single request of a method that takes one.
    pub fn unary_request<T: Message>(request: RequestBody) -> Result<T, Status> {
        match request {
            RequestBody::Unary(bytes) => T::decode(&bytes)
                .map_err(|e| Status::invalid_argument(format!("cannot decode the request: {e}"))),
            RequestBody::Stream(_) => {
                Err(Status::internal("expected a single request, got a stream"))
            }
        }
    }

    /// The request stream of a client-streaming method.
    pub fn request_stream<T: Message>(request: RequestBody) -> Result<Streaming<T>, Status> {
        match request {
            RequestBody::Stream(stream) => Ok(Streaming::from_bytes(stream)),
            RequestBody::Unary(_) => Err(Status::internal(
                "expected a request stream, got a single request",
            )),
        }
    }

    /// The response stream of a server-streaming method.
    pub fn response_stream<T: Message>(
        responses: Option<ByteSink>,
    ) -> Result<StreamSender<T>, Status> {
        responses.map(StreamSender::from_sink).ok_or_else(|| {
            Status::internal("a streaming method was called without a response stream")
        })
    }

    /// Encodes a handler's single response, unless the handler failed the call through its
    /// controller.
    pub fn unary_response<T: Message>(
        ctrl: &RpcController,
        response: &T,
    ) -> Result<Option<Vec<u8>>, Status> {
        match ctrl.status() {
            Some(status) => Err(status.clone()),
            None => Ok(Some(response.encode_to_vec())),
        }
    }

    /// The end of a streaming response, unless the handler failed the call.
    pub fn stream_end(ctrl: &RpcController) -> Result<Option<Vec<u8>>, Status> {
        match ctrl.status() {
            Some(status) => Err(status.clone()),
            None => Ok(None),
        }
    }

    /// The answer to a method index the service does not have.
    pub fn unknown_method(service: &str, index: usize) -> Result<Option<Vec<u8>>, Status> {
        Err(Status::unimplemented(format!(
            "{service} has no method number {index}"
        )))
    }

    /// The one response of a call that has one, decoded.
    fn single_response<Resp: Message>(reply: Option<Vec<u8>>) -> Result<Resp, Status> {
        let bytes = reply.ok_or_else(|| Status::internal("the call ended without a response"))?;
        Resp::decode(&bytes)
            .map_err(|e| Status::internal(format!("cannot decode the response: {e}")))
    }

    fn record<T>(ctrl: &mut RpcController, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(status) = &result {
            ctrl.set_failed(status.clone());
        }
        result
    }

    /// A stub's unary call.
    pub async fn call_unary<C: RpcChannel + ?Sized, Req: Message, Resp: Message>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        request: Req,
    ) -> Result<Resp, Status> {
        let result = channel
            .call(
                method,
                ctrl,
                RequestBody::Unary(request.encode_to_vec()),
                None,
            )
            .await;
        record(ctrl, result.and_then(single_response))
    }

    /// A stub's server-streaming call: responses go to `responses` as they arrive.
    pub async fn call_server_streaming<C: RpcChannel + ?Sized, Req: Message, Resp: Message>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        request: Req,
        responses: StreamSender<Resp>,
    ) -> Result<(), Status> {
        let result = channel
            .call(
                method,
                ctrl,
                RequestBody::Unary(request.encode_to_vec()),
                Some(responses.into_sink()),
            )
            .await
            .map(drop);
        record(ctrl, result)
    }

    /// A stub's client-streaming call: requests are read from `requests` until it ends.
    pub async fn call_client_streaming<C: RpcChannel + ?Sized, Req: Message, Resp: Message>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        requests: Streaming<Req>,
    ) -> Result<Resp, Status> {
        let result = channel
            .call(
                method,
                ctrl,
                RequestBody::Stream(requests.into_bytes()),
                None,
            )
            .await;
        record(ctrl, result.and_then(single_response))
    }

    /// A stub's bidirectional call.
    pub async fn call_bidi_streaming<C: RpcChannel + ?Sized, Req: Message, Resp: Message>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        requests: Streaming<Req>,
        responses: StreamSender<Resp>,
    ) -> Result<(), Status> {
        let result = channel
            .call(
                method,
                ctrl,
                RequestBody::Stream(requests.into_bytes()),
                Some(responses.into_sink()),
            )
            .await
            .map(drop);
        record(ctrl, result)
    }
}
