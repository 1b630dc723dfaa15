//! The generic-services shape: descriptors, the type-erased [`Service`] that servers host,
//! and the [`RpcChannel`] that stubs and clients call through. Generated code fills these in;
//! the functions in [`codegen`] are what it calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::call::{
    byte_stream, ClientCall, IncomingCall, Outbound as _, OutgoingCall, ServerCall, ServerCore,
    DEFAULT_WINDOW,
};
use crate::stream::{CancelOnAbandon, LocalOutbound};
use crate::{CancelToken, RpcController, Status};

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

/// A service whose message types have been erased, so a server can host any number of them:
/// the C++ `Service::CallMethod`. Generated `...Server` adapters implement it.
pub trait Service: Send + Sync + 'static {
    /// What the service is and which methods it has.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Runs method `method_index` of a call the core has set up. A method with a single
    /// response returns it encoded; a streaming method sends its responses into
    /// `call.responses` and returns `None`.
    fn call_method<'a>(
        &'a self,
        method_index: usize,
        ctrl: &'a mut RpcController,
        call: ServerCall,
    ) -> BoxFuture<'a, Result<Option<Bytes>, Status>>;
}

impl<S: Service + ?Sized> Service for Arc<S> {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        (**self).descriptor()
    }

    fn call_method<'a>(
        &'a self,
        method_index: usize,
        ctrl: &'a mut RpcController,
        call: ServerCall,
    ) -> BoxFuture<'a, Result<Option<Bytes>, Status>> {
        (**self).call_method(method_index, ctrl, call)
    }
}

/// Where stubs and clients send their calls: the one place a transport plugs in (the C++
/// `RpcChannel`).
///
/// A channel only starts calls and moves their bytes; the call core around it applies the
/// deadline (connecting included), links cancellation, pumps request streams and decodes. A
/// transport sends the deadline to the server, and the request metadata.
pub trait RpcChannel: Send + Sync + 'static {
    /// Starts one call of `method`: sends its start (and its single request, if it has one)
    /// and returns the call's two directions.
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>>;

    /// Starts a call without waiting, if the channel can (a connected TCP channel whose send
    /// buffer has room); `Err(call)` hands it back to be started with
    /// [`start_call`](RpcChannel::start_call). The default never can. The call core tries this
    /// first, which saves a boxed future per call when the channel is ready.
    fn try_start_call(
        &self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> Result<Result<ClientCall, Status>, OutgoingCall> {
        let _ = method;
        Err(call)
    }
}

impl<C: RpcChannel + ?Sized> RpcChannel for Arc<C> {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        (**self).start_call(method, call)
    }

    fn try_start_call(
        &self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> Result<Result<ClientCall, Status>, OutgoingCall> {
        (**self).try_start_call(method, call)
    }
}

impl<C: RpcChannel + ?Sized> RpcChannel for Box<C> {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        (**self).start_call(method, call)
    }

    fn try_start_call(
        &self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> Result<Result<ClientCall, Status>, OutgoingCall> {
        (**self).try_start_call(method, call)
    }
}

/// A channel that calls services in the same process: for tests, mocks, and same-process use.
///
/// Calls go through the same call core as a server's (a task per handler, deadlines,
/// cancellation, panics as `INTERNAL`, streams bounded in bytes), and requests and responses
/// are still encoded, so behaviour matches a remote call.
#[derive(Clone, Debug)]
pub struct InProcessChannel {
    core: Arc<ServerCore>,
}

impl InProcessChannel {
    /// A channel to `service`.
    pub fn new(service: impl Service) -> Self {
        Self::with_core(Arc::new(ServerCore::new(
            [Arc::new(service) as Arc<dyn Service>],
            Vec::new(),
        )))
    }

    /// A channel to every service `core` hosts, with its interceptors.
    pub fn with_core(core: Arc<ServerCore>) -> Self {
        InProcessChannel { core }
    }
}

impl RpcChannel for InProcessChannel {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        let cancel = CancelToken::new();
        let (requests_in, requests) = byte_stream(DEFAULT_WINDOW, None);
        let (responses_in, responses) = byte_stream(
            DEFAULT_WINDOW,
            Some(Arc::new(CancelOnAbandon(cancel.clone(), call.deadline))),
        );
        if let Some(request) = call.request {
            // A fresh stream always has room for its first message.
            let _ = requests_in.push_with(request, call.compress);
            requests_in.finish(Ok(()), crate::Metadata::new());
        }
        let requests_out = LocalOutbound::new(requests_in, false);
        if let Some(compress) = call.compress {
            requests_out.set_compression(compress);
        }
        let client_side = Arc::new(ClientSide {
            requests: requests_out,
            cancel: cancel.clone(),
            deadline: call.deadline,
        });
        self.core.dispatch(IncomingCall {
            service: method.service,
            method: method.name,
            deadline: call.deadline,
            metadata: call.metadata,
            requests,
            responses: Arc::new(LocalOutbound::new(responses_in, false)),
            cancel,
        });
        Box::pin(std::future::ready(Ok(ClientCall {
            requests: client_side,
            responses,
        })))
    }
}

/// The client's end of an in-process call: its requests, and the server's cancellation.
struct ClientSide {
    requests: LocalOutbound,
    cancel: CancelToken,
    /// The call's deadline: a cancellation at it is the deadline passing.
    deadline: Option<std::time::Instant>,
}

impl crate::call::Outbound for ClientSide {
    fn send(&self, message: Bytes) -> BoxFuture<'_, Result<(), Status>> {
        self.requests.send(message)
    }

    fn max_message_size(&self) -> usize {
        self.requests.max_message_size()
    }

    fn close_send(&self) {
        self.requests.close_send();
    }

    fn set_compression(&self, enabled: bool) {
        self.requests.set_compression(enabled);
    }

    fn cancel(&self) {
        self.cancel.cancel_with(crate::call::client_cancelled(
            self.deadline,
            Status::cancelled("the client cancelled the call"),
        ));
    }
}

/// What generated code calls. Not for direct use: the names and signatures follow the
/// generator, not semver.
#[doc(hidden)]
pub mod codegen {
    use super::*;
    use crate::call::{self, ByteStream};
    use crate::stream::{IntoRequests, StreamSender, Streaming};
    use crate::{Message, Metadata};

    pub use super::BoxFuture;
    pub use crate::call::ServerCall;
    pub use crate::client::{BidiStreaming, Call, ClientStreaming, ServerStreaming, Unary};

    /// Reads the single request of a call: one message, then the end.
    async fn single_request<T: Message + Default>(requests: &mut ByteStream) -> Result<T, Status> {
        let bytes = requests
            .next_bytes()
            .await?
            .ok_or_else(|| Status::invalid_argument("the call ended without a request"))?;
        if requests.next_bytes().await?.is_some() {
            return Err(Status::invalid_argument(
                "more than one request for a method that takes one",
            ));
        }
        T::decode_bytes(&bytes)
            .map_err(|e| Status::invalid_argument(format!("cannot decode the request: {e}")))
    }

    /// The request of a unary method.
    pub async fn unary_request<T: Message + Default>(mut call: ServerCall) -> Result<T, Status> {
        single_request(&mut call.requests).await
    }

    /// The request and the response stream of a server-streaming method.
    pub async fn request_and_responses<T: Message + Default, R: Message>(
        mut call: ServerCall,
    ) -> Result<(T, StreamSender<R>), Status> {
        let request = single_request(&mut call.requests).await?;
        Ok((request, StreamSender::from_sink(call.responses)))
    }

    /// The request stream of a client-streaming method.
    pub fn request_stream<T: Message + Default>(call: ServerCall) -> Streaming<T> {
        Streaming::requests(call.requests)
    }

    /// Both streams of a bidirectional method.
    pub fn streams<T: Message + Default, R: Message>(
        call: ServerCall,
    ) -> (Streaming<T>, StreamSender<R>) {
        (
            Streaming::requests(call.requests),
            StreamSender::from_sink(call.responses),
        )
    }

    /// Encodes a handler's single response.
    pub fn unary_response<T: Message>(response: &T) -> Result<Option<Bytes>, Status> {
        response
            .try_encode_to_bytes()
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }

    /// The end of a streaming response.
    pub fn stream_end() -> Result<Option<Bytes>, Status> {
        Ok(None)
    }

    /// The answer to a method index the service does not have.
    pub fn unknown_method(service: &str, index: usize) -> Result<Option<Bytes>, Status> {
        Err(Status::unimplemented(format!(
            "{service} has no method number {index}"
        )))
    }

    /// A stub's unary call.
    pub async fn call_unary<C: RpcChannel, Req: Message, Resp: Message + Default>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        request: Req,
    ) -> Result<Resp, Status> {
        call::unary(channel, method, ctrl, &request).await
    }

    /// Moves a call's responses into a stub caller's sender, decoding each (a response that
    /// does not decode fails the call with `INTERNAL`), and records the metadata.
    async fn forward<Resp: Message + Default>(
        ctrl: &mut RpcController,
        mut stream: Streaming<Resp>,
        responses: StreamSender<Resp>,
    ) -> Result<(), Status> {
        let result = async {
            while let Some(response) = stream.message().await? {
                responses.send(&response).await?;
            }
            Ok(())
        }
        .await;
        let headers = stream.headers().await.unwrap_or_else(|_| Metadata::new());
        let trailers = stream.trailers().unwrap_or_default();
        // Dropping the stream before its end cancels the call, as a stopped reader should.
        drop(stream);
        call::record_stream(ctrl, headers, trailers, result)
    }

    /// A stub's server-streaming call: responses go to `responses` as they arrive.
    pub async fn call_server_streaming<C: RpcChannel, Req: Message, Resp: Message + Default>(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        request: Req,
        responses: StreamSender<Resp>,
    ) -> Result<(), Status> {
        let stream = call::server_streaming(channel, method, ctrl, &request).await?;
        forward(ctrl, stream, responses).await
    }

    /// A stub's client-streaming call: requests are read from `requests` until it ends.
    pub async fn call_client_streaming<
        C: RpcChannel,
        Req: Message + Default + 'static,
        Resp: Message + Default,
    >(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        requests: Streaming<Req>,
    ) -> Result<Resp, Status> {
        call::client_streaming(channel, method, ctrl, requests.into_requests()).await
    }

    /// A stub's bidirectional call.
    pub async fn call_bidi_streaming<
        C: RpcChannel,
        Req: Message + Default + 'static,
        Resp: Message + Default,
    >(
        channel: &C,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        requests: Streaming<Req>,
        responses: StreamSender<Resp>,
    ) -> Result<(), Status> {
        let stream = call::bidi_streaming(channel, method, ctrl, requests.into_requests()).await?;
        forward(ctrl, stream, responses).await
    }
}
