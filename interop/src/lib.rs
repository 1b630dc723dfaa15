//! The gRPC project's interop test cases (`doc/interop-test-descriptions.md` in the grpc
//! repository) on rust-rpc's gRPC transport: a `TestService` implementation for
//! `interop-server`, and the client side of each case for `interop-client`.
//!
//! `generated/` is produced by rust-rpc-compiler from `grpc/testing/{empty,messages,test}.proto`
//! as Debian's `grpc-proto` package ships them (Apache-2.0, copyright gRPC authors; see
//! `generated/NOTICE`); `tests/generated.rs` checks that it is current.

use std::time::Duration;

use rust_rpc::grpc::GrpcChannel;
use rust_rpc::{Code, RpcController, Status, StreamSender, Streaming};

/// The generated `grpc.testing` package.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!("generated/_include.rs");
}

use pb::grpc::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, TestService, TestServiceClient, UnimplementedServiceClient,
};

/// Metadata the interop server echoes: in the response headers, and in the trailers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary metadata the interop server echoes in the trailers.
pub const ECHO_TRAILING_BIN: &str = "x-grpc-test-echo-trailing-bin";

/// Every case `interop-client` runs, in the spec's order.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

fn payload(size: i32) -> Option<Payload> {
    Some(Payload {
        body: vec![0; usize::try_from(size).unwrap_or(0)],
        ..Default::default()
    })
}

fn status_of(echo: &Option<EchoStatus>) -> Result<(), Status> {
    match echo {
        Some(echo) if echo.code != 0 => Err(Status::new(
            Code::from_u32(echo.code as u32),
            echo.message.clone(),
        )),
        _ => Ok(()),
    }
}

/// Copies the echo metadata of the request into the response headers and trailers.
fn echo_metadata(ctrl: &mut RpcController) {
    if let Some(value) = ctrl.metadata().get(ECHO_INITIAL).map(str::to_owned) {
        ctrl.response_metadata_mut().insert(ECHO_INITIAL, value);
    }
    if let Some(value) = ctrl.metadata().get(ECHO_TRAILING_BIN).map(str::to_owned) {
        ctrl.trailers_mut().insert(ECHO_TRAILING_BIN, value);
    }
}

/// A `BoolValue` of the test messages: `None` when unset.
fn flag(value: &Option<BoolValue>) -> Option<bool> {
    value.as_ref().map(|b| b.value)
}

/// The CompressedRequest feature: a request that says it was compressed must have been.
fn check_compressed(expect: &Option<BoolValue>, compressed: bool) -> Result<(), Status> {
    if flag(expect) == Some(true) && !compressed {
        return Err(Status::invalid_argument(
            "expect_compressed is set, but the request arrived uncompressed",
        ));
    }
    Ok(())
}

/// `grpc.testing.TestService` as the interop spec's server side asks. `UnimplementedCall`,
/// `HalfDuplexCall` and `CacheableUnaryCall` keep the generated `UNIMPLEMENTED` answer.
///
/// Host it on a server with `send_compressed` set for the CompressedResponse feature: a
/// response is compressed when its request asks (`response_compressed`, or `compressed` per
/// response), and otherwise as `compress_by_default` says.
#[derive(Default)]
pub struct Interop {
    /// Whether responses whose request does not say are compressed.
    pub compress_by_default: bool,
}

impl TestService for Interop {
    async fn empty_call(&self, ctrl: &mut RpcController, _request: Empty) -> Result<Empty, Status> {
        ctrl.set_message_compression(self.compress_by_default);
        Ok(Empty::default())
    }

    async fn unary_call(
        &self,
        ctrl: &mut RpcController,
        request: SimpleRequest,
    ) -> Result<SimpleResponse, Status> {
        echo_metadata(ctrl);
        check_compressed(&request.expect_compressed, ctrl.received_compressed())?;
        ctrl.set_message_compression(
            flag(&request.response_compressed).unwrap_or(self.compress_by_default),
        );
        status_of(&request.response_status)?;
        Ok(SimpleResponse {
            payload: payload(request.response_size),
            ..Default::default()
        })
    }

    async fn streaming_output_call(
        &self,
        ctrl: &mut RpcController,
        request: StreamingOutputCallRequest,
        responses: StreamSender<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(ctrl);
        ctrl.send_headers();
        for parameters in &request.response_parameters {
            respond(parameters, &responses, self.compress_by_default).await?;
        }
        status_of(&request.response_status)
    }

    async fn streaming_input_call(
        &self,
        ctrl: &mut RpcController,
        mut requests: Streaming<StreamingInputCallRequest>,
    ) -> Result<StreamingInputCallResponse, Status> {
        ctrl.set_message_compression(self.compress_by_default);
        let mut total = 0;
        while let Some(request) = requests.message().await? {
            check_compressed(
                &request.expect_compressed,
                requests.last_message_compressed(),
            )?;
            total += request.payload.map_or(0, |p| p.body.len()) as i32;
        }
        Ok(StreamingInputCallResponse {
            aggregated_payload_size: total,
            ..Default::default()
        })
    }

    async fn full_duplex_call(
        &self,
        ctrl: &mut RpcController,
        mut requests: Streaming<StreamingOutputCallRequest>,
        responses: StreamSender<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(ctrl);
        ctrl.send_headers();
        while let Some(request) = requests.message().await? {
            status_of(&request.response_status)?;
            for parameters in &request.response_parameters {
                respond(parameters, &responses, self.compress_by_default).await?;
            }
        }
        Ok(())
    }
}

async fn respond(
    parameters: &ResponseParameters,
    responses: &StreamSender<StreamingOutputCallResponse>,
    compress_by_default: bool,
) -> Result<(), Status> {
    if parameters.interval_us > 0 {
        tokio::time::sleep(Duration::from_micros(parameters.interval_us as u64)).await;
    }
    responses.set_compression(flag(&parameters.compressed).unwrap_or(compress_by_default));
    responses
        .send(StreamingOutputCallResponse {
            payload: payload(parameters.size),
            ..Default::default()
        })
        .await
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

fn body_len(payload: &Option<Payload>) -> usize {
    payload.as_ref().map_or(0, |p| p.body.len())
}

fn streaming_request(sizes: &[i32], payload_size: i32) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..Default::default()
            })
            .collect(),
        payload: payload(payload_size),
        ..Default::default()
    }
}

/// Every call of a case gets this deadline, so that a broken peer fails the case instead of
/// hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one interop case against the server `channel` reaches; `Err` says what went wrong.
/// `compressing` reaches the same server with `send_compressed(Gzip)`, for the cases that
/// compress requests.
pub async fn run_case(
    case: &str,
    channel: &GrpcChannel,
    compressing: &GrpcChannel,
) -> Result<(), String> {
    let client = TestServiceClient::new(channel.clone());
    let fail = |status: Status| format!("the call failed: {status}");
    match case {
        "empty_unary" => {
            let response = client
                .empty_call(Empty::default())
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            check(response == Empty::default(), || {
                "a non-empty response".into()
            })
        }
        "large_unary" => {
            let response = client
                .unary_call(SimpleRequest {
                    response_size: 314_159,
                    payload: payload(271_828),
                    ..Default::default()
                })
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            let len = body_len(&response.payload);
            check(len == 314_159, || format!("a payload of {len} bytes"))
        }
        "client_streaming" => {
            let requests = [27_182, 8, 1_828, 45_904].map(|size| StreamingInputCallRequest {
                payload: payload(size),
                ..Default::default()
            });
            let response = client
                .streaming_input_call(requests)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            let total = response.aggregated_payload_size;
            check(total == 74_922, || format!("an aggregated size of {total}"))
        }
        "server_streaming" => {
            let sizes = [31_415, 9, 2_653, 58_979];
            let mut responses = client
                .streaming_output_call(streaming_request(&sizes, 0))
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            let mut seen = Vec::new();
            while let Some(response) = responses.message().await.map_err(fail)? {
                seen.push(body_len(&response.payload) as i32);
            }
            check(seen == sizes, || format!("responses of sizes {seen:?}"))
        }
        "ping_pong" => {
            let (requests, source) = rust_rpc::stream::channel();
            let mut responses = client
                .full_duplex_call(source)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            for (response_size, request_size) in
                [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)]
            {
                requests
                    .send(streaming_request(&[response_size], request_size))
                    .await
                    .map_err(fail)?;
                let response = responses
                    .message()
                    .await
                    .map_err(fail)?
                    .ok_or("the response stream ended early")?;
                let len = body_len(&response.payload);
                check(len == response_size as usize, || {
                    format!("a response of {len} bytes, not {response_size}")
                })?;
            }
            drop(requests);
            let end = responses.message().await.map_err(fail)?;
            check(end.is_none(), || "a response after the last".into())
        }
        "empty_stream" => {
            let (requests, source) = rust_rpc::stream::channel::<StreamingOutputCallRequest>();
            drop(requests);
            let mut responses = client
                .full_duplex_call(source)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(fail)?;
            let end = responses.message().await.map_err(fail)?;
            check(end.is_none(), || "a response to no request".into())
        }
        "status_code_and_message" => {
            let message = "test status message";
            StatusCase { message }.run(&client).await
        }
        "special_status_message" => {
            let message =
                "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";
            StatusCase { message }.run(&client).await
        }
        "custom_metadata" => custom_metadata(&client).await,
        "unimplemented_method" => {
            let result = client
                .unimplemented_call(Empty::default())
                .timeout(CALL_TIMEOUT)
                .await;
            expect_code(result, Code::Unimplemented)
        }
        "unimplemented_service" => {
            let result = UnimplementedServiceClient::new(channel.clone())
                .unimplemented_call(Empty::default())
                .timeout(CALL_TIMEOUT)
                .await;
            expect_code(result, Code::Unimplemented)
        }
        "cancel_after_begin" => {
            let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
            let token = ctrl.cancel_token();
            let (requests, source) = rust_rpc::stream::channel::<StreamingInputCallRequest>();
            let call = client.streaming_input_call(source).controller(&mut ctrl);
            let cancel = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                token.cancel();
            };
            let (result, ()) = tokio::join!(call, cancel);
            drop(requests);
            expect_code(result, Code::Cancelled)
        }
        "cancel_after_first_response" => {
            let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
            let token = ctrl.cancel_token();
            let (requests, source) = rust_rpc::stream::channel();
            let mut responses = client
                .full_duplex_call(source)
                .controller(&mut ctrl)
                .await
                .map_err(fail)?;
            requests
                .send(streaming_request(&[31_415], 27_182))
                .await
                .map_err(fail)?;
            responses
                .message()
                .await
                .map_err(fail)?
                .ok_or("no first response")?;
            token.cancel();
            expect_code(responses.message().await, Code::Cancelled)
        }
        "timeout_on_sleeping_server" => {
            let (requests, source) = rust_rpc::stream::channel();
            let started = client
                .full_duplex_call(source)
                .timeout(Duration::from_millis(1))
                .await;
            let mut responses = match started {
                Ok(responses) => responses,
                Err(status) => return expect_code::<()>(Err(status), Code::DeadlineExceeded),
            };
            // The send may fail already: the deadline is what ends the call either way.
            let _ = requests.send(streaming_request(&[], 27_182)).await;
            expect_code(responses.message().await, Code::DeadlineExceeded)
        }
        "client_compressed_unary" => client_compressed_unary(compressing).await,
        "server_compressed_unary" => server_compressed_unary(&client).await,
        "client_compressed_streaming" => client_compressed_streaming(compressing).await,
        "server_compressed_streaming" => server_compressed_streaming(&client).await,
        other => Err(format!("unknown test case {other:?}")),
    }
}

fn expect_code<T>(result: Result<T, Status>, code: Code) -> Result<(), String> {
    match result {
        Err(status) if status.code() == code => Ok(()),
        Err(status) => Err(format!("expected {code}, got {status}")),
        Ok(_) => Err(format!("expected {code}, but the call succeeded")),
    }
}

/// `status_code_and_message` and `special_status_message`: code 2 and `message`, from a unary
/// call and from a bidi stream.
struct StatusCase {
    message: &'static str,
}

impl StatusCase {
    async fn run(&self, client: &TestServiceClient<GrpcChannel>) -> Result<(), String> {
        let echo = Some(EchoStatus {
            code: 2,
            message: self.message.to_owned(),
            ..Default::default()
        });
        let expect = |result: Result<(), Status>, how: &str| match result {
            Err(status) if status.code() == Code::Unknown && status.message() == self.message => {
                Ok(())
            }
            Err(status) => Err(format!("{how}: got {status:?}")),
            Ok(()) => Err(format!("{how}: the call succeeded")),
        };
        let unary = client
            .unary_call(SimpleRequest {
                response_status: echo.clone(),
                ..Default::default()
            })
            .timeout(CALL_TIMEOUT)
            .await
            .map(drop);
        expect(unary, "unary")?;
        let (requests, source) = rust_rpc::stream::channel();
        let streamed = async {
            let mut responses = client
                .full_duplex_call(source)
                .timeout(CALL_TIMEOUT)
                .await?;
            requests
                .send(StreamingOutputCallRequest {
                    response_status: echo,
                    ..Default::default()
                })
                .await?;
            drop(requests);
            while responses.message().await?.is_some() {}
            Ok(())
        };
        expect(streamed.await, "full duplex")
    }
}

async fn custom_metadata(client: &TestServiceClient<GrpcChannel>) -> Result<(), String> {
    const INITIAL: &str = "test_initial_metadata_value";
    const TRAILING: &[u8] = &[0xab, 0xab, 0xab];
    let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
    ctrl.metadata_mut().insert(ECHO_INITIAL, INITIAL);
    ctrl.metadata_mut().insert_bin(ECHO_TRAILING_BIN, TRAILING);
    client
        .unary_call(SimpleRequest {
            response_size: 314_159,
            payload: payload(271_828),
            ..Default::default()
        })
        .controller(&mut ctrl)
        .await
        .map_err(|s| format!("unary: {s}"))?;
    check(
        ctrl.response_metadata().get(ECHO_INITIAL) == Some(INITIAL),
        || format!("unary headers: {:?}", ctrl.response_metadata()),
    )?;
    check(
        ctrl.trailers().get_bin(ECHO_TRAILING_BIN).as_deref() == Some(TRAILING),
        || format!("unary trailers: {:?}", ctrl.trailers()),
    )?;

    let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
    ctrl.metadata_mut().insert(ECHO_INITIAL, INITIAL);
    ctrl.metadata_mut().insert_bin(ECHO_TRAILING_BIN, TRAILING);
    let (requests, source) = rust_rpc::stream::channel();
    let mut responses = client
        .full_duplex_call(source)
        .controller(&mut ctrl)
        .await
        .map_err(|s| format!("full duplex: {s}"))?;
    requests
        .send(streaming_request(&[314_159], 271_828))
        .await
        .map_err(|s| format!("full duplex send: {s}"))?;
    drop(requests);
    let headers = responses
        .headers()
        .await
        .map_err(|s| format!("full duplex headers: {s}"))?;
    check(headers.get(ECHO_INITIAL) == Some(INITIAL), || {
        format!("full duplex headers: {headers:?}")
    })?;
    while responses
        .message()
        .await
        .map_err(|s| format!("full duplex: {s}"))?
        .is_some()
    {}
    let trailers = responses.trailers().unwrap_or_default();
    check(
        trailers.get_bin(ECHO_TRAILING_BIN).as_deref() == Some(TRAILING),
        || format!("full duplex trailers: {trailers:?}"),
    )
}

fn bool_value(value: bool) -> Option<BoolValue> {
    Some(BoolValue {
        value,
        ..Default::default()
    })
}

/// A probe that the server checks compression (an uncompressed request that says it is
/// compressed fails with `INVALID_ARGUMENT`), then a compressed and an uncompressed call.
async fn client_compressed_unary(compressing: &GrpcChannel) -> Result<(), String> {
    let client = TestServiceClient::new(compressing.clone());
    let request = |expect| SimpleRequest {
        expect_compressed: bool_value(expect),
        response_size: 314_159,
        payload: payload(271_828),
        ..Default::default()
    };
    let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
    ctrl.set_message_compression(false);
    let probe = client.unary_call(request(true)).controller(&mut ctrl).await;
    expect_code(probe, Code::InvalidArgument).map_err(|e| format!("probe: {e}"))?;
    for compressed in [true, false] {
        let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
        ctrl.set_message_compression(compressed);
        let response = client
            .unary_call(request(compressed))
            .controller(&mut ctrl)
            .await
            .map_err(|s| format!("compressed {compressed}: {s}"))?;
        let len = body_len(&response.payload);
        check(len == 314_159, || format!("a payload of {len} bytes"))?;
    }
    Ok(())
}

/// Responses compressed or not as the request asks, seen in their message flags.
async fn server_compressed_unary(client: &TestServiceClient<GrpcChannel>) -> Result<(), String> {
    for compressed in [true, false] {
        let mut ctrl = RpcController::with_timeout(CALL_TIMEOUT);
        let response = client
            .unary_call(SimpleRequest {
                response_compressed: bool_value(compressed),
                response_size: 314_159,
                payload: payload(271_828),
                ..Default::default()
            })
            .controller(&mut ctrl)
            .await
            .map_err(|s| format!("response_compressed {compressed}: {s}"))?;
        let len = body_len(&response.payload);
        check(len == 314_159, || format!("a payload of {len} bytes"))?;
        check(ctrl.received_compressed() == compressed, || {
            format!("response_compressed {compressed}, but the response's flag says otherwise")
        })?;
    }
    Ok(())
}

/// The probe on a stream, then a compressed request followed by an uncompressed one.
async fn client_compressed_streaming(compressing: &GrpcChannel) -> Result<(), String> {
    let client = TestServiceClient::new(compressing.clone());
    let request = |expect, size| StreamingInputCallRequest {
        expect_compressed: bool_value(expect),
        payload: payload(size),
        ..Default::default()
    };
    let (requests, source) = rust_rpc::stream::channel();
    requests.set_compression(false);
    let probe = client.streaming_input_call(source).timeout(CALL_TIMEOUT);
    let send = async {
        let _ = requests.send(request(true, 27_182)).await;
        drop(requests);
    };
    let (probe, ()) = tokio::join!(probe, send);
    expect_code(probe, Code::InvalidArgument).map_err(|e| format!("probe: {e}"))?;

    let (requests, source) = rust_rpc::stream::channel();
    let call = client.streaming_input_call(source).timeout(CALL_TIMEOUT);
    // The requests end (half-close) when the sender is dropped at the end of this block.
    let send = async move {
        requests.set_compression(true);
        requests.send(request(true, 27_182)).await?;
        requests.set_compression(false);
        requests.send(request(false, 45_904)).await
    };
    let (response, sent) = tokio::join!(call, send);
    let response = response.map_err(|s| format!("the call failed: {s}"))?;
    sent.map_err(|s| format!("a send failed: {s}"))?;
    let total = response.aggregated_payload_size;
    check(total == 73_086, || format!("an aggregated size of {total}"))
}

/// Two responses, the first compressed and the second not, seen in their message flags.
async fn server_compressed_streaming(
    client: &TestServiceClient<GrpcChannel>,
) -> Result<(), String> {
    let parameters = |compressed, size| ResponseParameters {
        compressed: bool_value(compressed),
        size,
        ..Default::default()
    };
    let mut responses = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: vec![parameters(true, 31_415), parameters(false, 92_653)],
            ..Default::default()
        })
        .timeout(CALL_TIMEOUT)
        .await
        .map_err(|s| format!("the call failed: {s}"))?;
    for (compressed, size) in [(true, 31_415), (false, 92_653)] {
        let response = responses
            .message()
            .await
            .map_err(|s| format!("the stream failed: {s}"))?
            .ok_or("the stream ended early")?;
        let len = body_len(&response.payload);
        check(len == size, || {
            format!("a response of {len} bytes, not {size}")
        })?;
        check(responses.last_message_compressed() == compressed, || {
            format!("the response of {size} bytes should be compressed: {compressed}")
        })?;
    }
    let end = responses
        .message()
        .await
        .map_err(|s| format!("the stream failed: {s}"))?;
    check(end.is_none(), || "more than two responses".into())
}
