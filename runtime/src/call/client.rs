//! The client half of the call core: starting a call under its deadline (connecting
//! included), linking the controller's cancellation to the transport, pumping request
//! streams, and reading the single response or handing back the response stream.

use std::time::Instant;

use bytes::Bytes;

use super::{ByteSink, ByteStream, ClientCall, OnCancel, OutgoingCall};
use crate::service::{MethodDescriptor, RpcChannel};
use crate::stream::{Requests, Streaming};
use crate::{CancelToken, Message, Metadata, RpcController, Status};

/// Keeps a started call tied to its controller: cancelling the token cancels the call, and a
/// deadline timer cancels the token. Dropped when the call is over, it forgets the callback
/// and stops the timer; dropped before (a response stream dropped early), it cancels.
pub(crate) struct CallGuard {
    token: CancelToken,
    callback: u64,
    timer: Option<tokio::task::JoinHandle<()>>,
    pump: Option<tokio::task::JoinHandle<()>>,
    finished: bool,
}

impl CallGuard {
    fn new(token: CancelToken, call: &ClientCall) -> CallGuard {
        let callback = token.on_cancel_with(OnCancel::Client {
            responses: call.responses.inbound(),
            requests: call.requests.clone(),
        });
        CallGuard {
            token,
            callback,
            timer: None,
            pump: None,
            finished: false,
        }
    }

    /// Cancels the call with `DEADLINE_EXCEEDED` when `deadline` passes, from a timer task,
    /// so that every await of the call (reads, request sends) ends at the deadline.
    fn arm(&mut self, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            let token = self.token.clone();
            self.timer = Some(tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                token.cancel_with(deadline_exceeded());
            }));
        }
    }

    /// Ends the call early with `status`: the transport is told, and its reads stop.
    pub(crate) fn cancel(&mut self, status: Status) {
        self.token.cancel_with(status);
        self.finish();
    }

    /// The call reached its end: nothing is left to cancel.
    pub(crate) fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.token.forget(self.callback);
            if let Some(timer) = self.timer.take() {
                timer.abort();
            }
            if let Some(pump) = self.pump.take() {
                pump.abort();
            }
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.token
                .cancel_with(Status::cancelled("the call was dropped before it finished"));
            self.finish();
        }
    }
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the deadline passed before the call finished")
}

/// Starts a call, bounded by the deadline and the token: a call to an address that cannot be
/// reached fails at its deadline, however long connecting would take.
async fn start(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &RpcController,
    token: Option<&CancelToken>,
    request: Option<Bytes>,
) -> Result<ClientCall, Status> {
    #[cfg(feature = "tracing")]
    {
        let span = super::trace_span(false, method);
        let started = tracing::Instrument::instrument(
            start_call(channel, method, ctrl, token, request),
            span.clone(),
        )
        .await;
        match &started {
            // The span lives until the call's end, which records its status.
            Ok(call) => call
                .responses
                .on_end(move |status| super::trace_end(&span, status)),
            Err(status) => super::trace_end(&span, &Err(status.clone())),
        }
        started
    }
    #[cfg(not(feature = "tracing"))]
    start_call(channel, method, ctrl, token, request).await
}

async fn start_call(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &RpcController,
    token: Option<&CancelToken>,
    request: Option<Bytes>,
) -> Result<ClientCall, Status> {
    let deadline = ctrl.deadline();
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return Err(Status::deadline_exceeded(
            "the deadline passed before the call started",
        ));
    }
    let outgoing = OutgoingCall {
        deadline,
        metadata: ctrl.metadata().clone(),
        request,
        compress: ctrl.compression(),
        replay: None,
    };
    if let Some(reason) = token.and_then(CancelToken::reason) {
        return Err(reason);
    }
    let outgoing = match channel.try_start_call(method, outgoing) {
        Ok(started) => return started,
        Err(outgoing) => outgoing,
    };
    // The start first: when the connection is ready it completes at once, and the deadline
    // and the cancellation are never set up.
    tokio::select! {
        biased;
        started = channel.start_call(method, outgoing) => started,
        reason = cancelled(token) => Err(reason),
        () = sleep_until(deadline) => Err(deadline_exceeded()),
    }
}

/// Why `token` was cancelled, once it is; never without a token.
async fn cancelled(token: Option<&CancelToken>) -> Status {
    match token {
        Some(token) => {
            token.cancelled().await;
            token
                .reason()
                .unwrap_or_else(|| Status::cancelled("the call was cancelled"))
        }
        None => std::future::pending().await,
    }
}

/// Completes at `deadline`; never without one. The timer is boxed so that a call without a
/// deadline does not carry one in its future.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => Box::pin(tokio::time::sleep_until(deadline.into())).await,
        None => std::future::pending().await,
    }
}

fn encode<T: Message>(message: &T) -> Result<Bytes, Status> {
    message
        .try_encode_to_bytes()
        .map_err(|e| Status::internal(format!("cannot encode the request: {e}")))
}

/// Reads the one response of a call that has one: exactly one message, then a clean end.
async fn single_response(responses: &mut ByteStream) -> Result<Bytes, Status> {
    let message = responses
        .next_bytes()
        .await?
        .ok_or_else(|| Status::internal("the call ended without a response"))?;
    match responses.next_bytes().await? {
        None => Ok(message),
        Some(_) => Err(Status::internal(
            "the server sent more than one response to a call that takes one",
        )),
    }
}

fn decode_response<T: Message + Default>(bytes: &Bytes) -> Result<T, Status> {
    T::decode_bytes(bytes).map_err(|e| Status::internal(format!("cannot decode the response: {e}")))
}

/// Records a finished call in its controller: the response metadata and, in the C++ style, the
/// failure.
fn record<T>(
    ctrl: &mut RpcController,
    responses: Option<&ByteStream>,
    result: Result<T, Status>,
) -> Result<T, Status> {
    if let Some(responses) = responses {
        ctrl.set_response(
            responses.headers_now().unwrap_or_default(),
            responses.trailers().unwrap_or_default(),
        );
        ctrl.set_received_compressed(responses.last_compressed());
    }
    if let Err(status) = &result {
        ctrl.set_failed(status.clone());
    }
    result
}

/// A unary call.
pub(crate) async fn unary<Req: Message, Resp: Message + Default>(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &mut RpcController,
    request: &Req,
) -> Result<Resp, Status> {
    let token = ctrl.token_for_call();
    // Only the encoding and the decoding depend on the message types; the call itself is one
    // function shared by every method, so each method adds little code.
    let result = match encode(request) {
        Ok(request) => unary_bytes(channel, method, ctrl, token, request).await,
        Err(status) => Err(status),
    }
    .and_then(|bytes| decode_response(&bytes));
    if let Err(status) = &result {
        ctrl.set_failed(status.clone());
    }
    result
}

/// The part of a unary call that moves bytes: starts it, waits for the one response within
/// the deadline, and records the response metadata in `ctrl`.
async fn unary_bytes(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &mut RpcController,
    token: Option<CancelToken>,
    request: Bytes,
) -> Result<Bytes, Status> {
    let mut call = start(channel, method, ctrl, token.as_ref(), Some(request)).await?;
    // Only a token someone else holds can be cancelled while the call runs (the controller is
    // borrowed until it ends); without one, dropping the call is what cancels it, and the
    // response stream's drop tells the transport.
    let mut guard = token
        .as_ref()
        .filter(|token| token.held_elsewhere())
        .map(|token| CallGuard::new(token.clone(), &call));
    let deadline = ctrl.deadline();
    let result = tokio::select! {
        biased;
        response = single_response(&mut call.responses) => response,
        () = sleep_until(deadline) => {
            match (&guard, &token) {
                (Some(_), Some(token)) => token.cancel_with(deadline_exceeded()),
                _ => call.requests.cancel(),
            }
            Err(deadline_exceeded())
        }
    };
    if let Some(guard) = &mut guard {
        guard.finish();
    }
    if result.is_err() {
        call.requests.cancel();
    }
    ctrl.set_response(
        call.responses.headers_now().unwrap_or_default(),
        call.responses.trailers().unwrap_or_default(),
    );
    ctrl.set_received_compressed(call.responses.last_compressed());
    result
}

/// Starts a server-streaming call and hands back its response stream at once.
pub(crate) async fn server_streaming<Req: Message, Resp: Message + Default>(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &mut RpcController,
    request: &Req,
) -> Result<Streaming<Resp>, Status> {
    let token = ctrl.stream_token();
    let request = encode(request).or_else(|e| record(ctrl, None, Err(e)))?;
    let call = start(channel, method, ctrl, Some(&token), Some(request))
        .await
        .or_else(|e| record(ctrl, None, Err(e)))?;
    let mut guard = CallGuard::new(token, &call);
    guard.arm(ctrl.deadline());
    Ok(Streaming::responses(call.responses, guard))
}

/// Sends every request from `requests`, then half-closes. A request that cannot be sent, or a
/// source that fails, cancels the call.
async fn pump<Req: Message + Default>(
    mut requests: Requests<Req>,
    sink: ByteSink,
    token: CancelToken,
) {
    let failure = loop {
        match requests.next().await {
            Some(Ok(request)) => {
                // A request from a local stream may say how it should go.
                if let Some(compress) = requests.compression() {
                    sink.set_compression(compress);
                }
                let sent = match encode(&request) {
                    Ok(bytes) => sink.send_bytes(bytes).await,
                    Err(status) => Err(status),
                };
                if let Err(status) = sent {
                    break Some(status);
                }
            }
            Some(Err(status)) => break Some(status),
            None => break None,
        }
    };
    match failure {
        None => sink.outbound().close_send(),
        Some(status) => token.cancel_with(status),
    }
}

/// A client-streaming call: sends every request, then waits for the one response. A server
/// that answers before reading every request ends the call; the rest are not sent.
pub(crate) async fn client_streaming<Req: Message + Default, Resp: Message + Default>(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &mut RpcController,
    requests: Requests<Req>,
) -> Result<Resp, Status> {
    let token = ctrl.stream_token();
    let mut call = start(channel, method, ctrl, Some(&token), None)
        .await
        .or_else(|e| record(ctrl, None, Err(e)))?;
    let mut guard = CallGuard::new(token.clone(), &call);
    guard.arm(ctrl.deadline());
    let sink = ByteSink::new(call.requests.clone(), token.clone());
    let result = {
        let sending = pump(requests, sink, token.clone());
        let receiving = single_response(&mut call.responses);
        tokio::pin!(sending, receiving);
        let mut sent = false;
        loop {
            tokio::select! {
                response = &mut receiving => break response,
                () = &mut sending, if !sent => sent = true,
            }
        }
    };
    guard.finish();
    let result = result.and_then(|bytes| decode_response(&bytes));
    record(ctrl, Some(&call.responses), result)
}

/// Starts a bidirectional call: requests are sent from a task of the runtime's own while the
/// caller reads the response stream, which is handed back at once.
pub(crate) async fn bidi_streaming<Req: Message + Default + 'static, Resp: Message + Default>(
    channel: &dyn RpcChannel,
    method: &'static MethodDescriptor,
    ctrl: &mut RpcController,
    requests: Requests<Req>,
) -> Result<Streaming<Resp>, Status> {
    let token = ctrl.stream_token();
    let call = start(channel, method, ctrl, Some(&token), None)
        .await
        .or_else(|e| record(ctrl, None, Err(e)))?;
    let mut guard = CallGuard::new(token.clone(), &call);
    guard.arm(ctrl.deadline());
    let sink = ByteSink::new(call.requests.clone(), token.clone());
    guard.pump = Some(tokio::spawn(pump(requests, sink, token)));
    Ok(Streaming::responses(call.responses, guard))
}

/// Records what a response stream ended with in the controller of a call made in the trait
/// form.
pub(crate) fn record_stream<T>(
    ctrl: &mut RpcController,
    headers: Metadata,
    trailers: Metadata,
    result: Result<T, Status>,
) -> Result<T, Status> {
    ctrl.set_response(headers, trailers);
    if let Err(status) = &result {
        ctrl.set_failed(status.clone());
    }
    result
}
