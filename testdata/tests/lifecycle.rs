//! Every way a call ends reaches both sides, promptly, over TCP and in process: a client that
//! cancels or whose deadline passes ends the handler's sends and reads, a handler that ignores
//! the end is dropped at the end of the shutdown's grace, a limit breached by one call fails
//! that call alone, and a response that does not decode is `INTERNAL` however it arrives.
//! "Promptly" is bounded at 500 ms here (the work itself takes microseconds), so a loaded
//! machine does not fail the tests while a missing wake-up still does.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rust_rpc::bytes::Bytes;
use rust_rpc::call::ServerCall;
use rust_rpc::client::{Call, ClientStreaming, ServerStreaming, Unary};
use rust_rpc::service::BoxFuture;
use rust_rpc::tcp::{Limits, Server, TcpChannel};
use rust_rpc::{
    Closure, Code, InProcessChannel, MethodDescriptor, RpcController, Service, ServiceDescriptor,
    Status,
};
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer, Text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROMPTLY: Duration = Duration::from_millis(500);

/// Waits until `condition` holds, failing if that takes longer than [`PROMPTLY`].
async fn promptly(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < PROMPTLY,
            "{what} did not happen within {PROMPTLY:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Case 1: a server stream that the client cancels after three messages, or whose deadline
/// passes: the handler's next send fails, the handler ends, the other calls on the connection
/// go on, and a graceful shutdown returns while the client keeps its connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_expired_server_stream_ends_its_handler() {
    bounded(async {
        for transport in TRANSPORTS {
            for by_deadline in [false, true] {
                let events = Arc::new(Events::default());
                let server = start(events.clone()).await;
                let client =
                    CalculatorClient::new(transport.channel(&server, events.clone()).await);
                let mut ctrl = RpcController::new();
                let token = ctrl.cancel_token();
                let mut call = client.countdown(number(-15)).controller(&mut ctrl);
                if by_deadline {
                    call = call.timeout(Duration::from_millis(200));
                }
                let mut stream = call.await.unwrap();
                for _ in 0..3 {
                    assert!(stream.message().await.unwrap().is_some());
                }
                let ended = Instant::now();
                let status = if by_deadline {
                    loop {
                        match stream.message().await {
                            Ok(Some(_)) => {}
                            Ok(None) => panic!("the stream ended cleanly"),
                            Err(status) => break status,
                        }
                    }
                } else {
                    token.cancel();
                    stream.message().await.unwrap_err()
                };
                let expected = if by_deadline {
                    Code::DeadlineExceeded
                } else {
                    Code::Cancelled
                };
                assert_eq!(status.code(), expected, "{transport:?}");
                promptly("the handler's end", || {
                    events.finished.load(Ordering::SeqCst) == 1
                })
                .await;
                let sent = events.sent.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert_eq!(
                    events.sent.load(Ordering::SeqCst),
                    sent,
                    "the handler still sends"
                );
                assert!(ended.elapsed() < PROMPTLY + Duration::from_millis(250));
                // Another call on the same connection is unaffected.
                assert_eq!(client.double(number(4)).await.unwrap().value, 8);
                let started = Instant::now();
                tokio::time::timeout(Duration::from_secs(2), server.shutdown())
                    .await
                    .expect("shutdown returns while the client keeps its connection")
                    .unwrap();
                assert!(started.elapsed() < Duration::from_secs(2));
                drop(client);
            }
        }
    })
    .await;
}

/// Dropping a response stream before its end cancels the call, and the handler ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_response_stream_cancels_its_call() {
    bounded(async {
        for transport in TRANSPORTS {
            let events = Arc::new(Events::default());
            let server = start(events.clone()).await;
            let client = CalculatorClient::new(transport.channel(&server, events.clone()).await);
            let mut stream = client.countdown(number(-12)).await.unwrap();
            assert!(stream.message().await.unwrap().is_some());
            drop(stream);
            promptly("the handler's end", || {
                events.finished.load(Ordering::SeqCst) == 1
            })
            .await;
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Dropping a unary call before its answer (its future, or the task awaiting it) cancels the
/// call: the handler waiting for its end sees the cancellation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_unary_call_cancels_it() {
    bounded(async {
        for transport in TRANSPORTS {
            let events = Arc::new(Events::default());
            let server = start(events.clone()).await;
            let client = CalculatorClient::new(transport.channel(&server, events.clone()).await);
            let call = {
                let client = client.clone();
                tokio::spawn(async move { client.double(number(-2)).await })
            };
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            call.abort();
            promptly("the handler's cancellation", || {
                events.cancelled.load(Ordering::SeqCst) == 1
            })
            .await;
            promptly("the handler's end", || {
                events.finished.load(Ordering::SeqCst) == 1
            })
            .await;
            assert_eq!(
                client.double(number(4)).await.unwrap().value,
                8,
                "{transport:?}"
            );
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Case 2: a client stream whose handler waits to read; the client sends one message, keeps
/// its sender, then cancels or lets its deadline pass. The handler's read fails at once, with
/// the status that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_expired_client_stream_wakes_its_waiting_reader() {
    bounded(async {
        for transport in TRANSPORTS {
            // The deadline's end races the client's reset of its stream: several runs.
            for by_deadline in [false, true, true, true, true] {
                let events = Arc::new(Events::default());
                let server = start(events.clone()).await;
                let client =
                    CalculatorClient::new(transport.channel(&server, events.clone()).await);
                let (sender, requests) = rust_rpc::stream::channel();
                let mut ctrl = RpcController::new();
                let token = ctrl.cancel_token();
                let mut call = client.sum(requests).controller(&mut ctrl);
                if by_deadline {
                    call = call.timeout(Duration::from_millis(200));
                }
                let driver = async {
                    sender.send(number(1)).await.unwrap();
                    wait_for(|| events.read.load(Ordering::SeqCst) == 1).await;
                    if !by_deadline {
                        token.cancel();
                    }
                };
                let (result, ()) = tokio::join!(call, driver);
                let expected = if by_deadline {
                    Code::DeadlineExceeded
                } else {
                    Code::Cancelled
                };
                assert_eq!(result.unwrap_err().code(), expected, "{transport:?}");
                promptly("the handler's end", || {
                    events.finished.load(Ordering::SeqCst) == 1
                })
                .await;
                // The handler's read says why the call ended, as the client's result does.
                let ended = events.ended_with.lock().unwrap().clone();
                assert_eq!(ended, [expected], "{transport:?}");
                // The sender is still held; the call is over all the same.
                drop(sender);
                tokio::time::timeout(Duration::from_secs(2), server.shutdown())
                    .await
                    .expect("shutdown returns")
                    .unwrap();
            }
        }
    })
    .await;
}

/// A handler that stopped reading its client stream while the client keeps sending: the
/// client's sends wait for credit without blocking the connection, and a shutdown with a grace
/// period ends within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_stops_reading_holds_up_only_its_call() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(StopsReading::server(events.clone()))
            .add_service(CalculatorServer::new(Calc::new(events.clone())))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        // 10,000 requests of 1 KiB: far more than a window.
        let requests: Vec<Text> = (0..10_000)
            .map(|_| Text {
                text: "x".repeat(1024),
                ..Default::default()
            })
            .collect();
        let stuck = tokio::spawn({
            let channel = channel.clone();
            async move {
                Call::<ClientStreaming<Text, Text>>::client_streaming(
                    &channel,
                    &STOPS_READING.methods[0],
                    requests,
                )
                .await
            }
        });
        wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The connection still serves other calls.
        let calculator = CalculatorClient::new(channel.clone());
        let started = Instant::now();
        assert_eq!(calculator.double(number(3)).await.unwrap().value, 6);
        assert!(started.elapsed() < PROMPTLY);
        let started = Instant::now();
        server
            .shutdown_timeout(Duration::from_millis(100))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
        assert_eq!(stuck.await.unwrap().unwrap_err().code(), Code::Unavailable);
    })
    .await;
}

/// A notify_on_cancel callback that panics: the call still ends, the server keeps serving, and
/// shutdown is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_cancel_callback_holds_nothing_up() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(StopsReading::server(events.clone()))
            .add_service(CalculatorServer::new(Calc::new(events.clone())))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        let mut ctrl = RpcController::new();
        let token = ctrl.cancel_token();
        let call =
            Call::<Unary<Text, Text>>::unary(&channel, &STOPS_READING.methods[1], Text::default())
                .controller(&mut ctrl);
        let (result, ()) = tokio::join!(call, async {
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            token.cancel();
        });
        assert_eq!(result.unwrap_err().code(), Code::Cancelled);
        promptly("the handler's end", || {
            events.finished.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(
            CalculatorClient::new(channel)
                .double(number(5))
                .await
                .unwrap()
                .value,
            10
        );
        tokio::time::timeout(Duration::from_secs(2), server.shutdown())
            .await
            .expect("shutdown returns")
            .unwrap();
    })
    .await;
}

/// Calls whose cancel callbacks cancel each other: each handler's callback cancels every
/// other call it knows of, which ends those calls on the connection and in its call table.
/// Callbacks run while a lock of the call table is held would deadlock on that.
struct CancelsOthers {
    tokens: std::sync::Mutex<Vec<rust_rpc::CancelToken>>,
    events: Arc<Events>,
}

impl rust_rpc_testdata::ours::services::Calculator for CancelsOthers {
    async fn double(
        &self,
        ctrl: &mut RpcController,
        _request: rust_rpc_testdata::ours::services::Number,
    ) -> Result<rust_rpc_testdata::ours::services::Number, rust_rpc::Status> {
        let token = ctrl.cancel_token();
        let others: Vec<_> = {
            let mut tokens = self.tokens.lock().unwrap();
            tokens.push(token);
            tokens.clone()
        };
        let events = self.events.clone();
        ctrl.notify_on_cancel(rust_rpc::Closure::new(move || {
            for other in &others {
                other.cancel();
            }
            events.cancelled.fetch_add(1, Ordering::SeqCst);
        }));
        self.events.started.fetch_add(1, Ordering::SeqCst);
        ctrl.cancelled().await;
        self.events.finished.fetch_add(1, Ordering::SeqCst);
        Err(rust_rpc::Status::cancelled("gave up"))
    }
}

/// A connection that closes under calls whose cancel callbacks reach each other: every
/// handler ends, and the server goes on serving and shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_callbacks_may_cancel_other_calls_of_their_connection() {
    bounded(async {
        for grpc in [false, true] {
            let events = Arc::new(Events::default());
            let service = CalculatorServer::new(CancelsOthers {
                tokens: Default::default(),
                events: events.clone(),
            });
            let server = serve_alone(grpc, service).await;
            let addr = server.local_addr();
            let channel: Arc<dyn rust_rpc::RpcChannel> = if grpc {
                Arc::new(rust_rpc::grpc::GrpcChannel::connect(addr).await.unwrap())
            } else {
                Arc::new(TcpChannel::connect(addr).await.unwrap())
            };
            let client = CalculatorClient::new(channel);
            let calls: Vec<_> = (0..3)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { client.double(number(1)).await })
                })
                .collect();
            wait_for(|| events.started.load(Ordering::SeqCst) == 3).await;
            // The client goes away: its connection closes under the three calls.
            for call in &calls {
                call.abort();
            }
            drop(client);
            promptly("every handler's end", || {
                events.finished.load(Ordering::SeqCst) == 3
            })
            .await;
            assert_eq!(events.cancelled.load(Ordering::SeqCst), 3, "grpc: {grpc}");
            tokio::time::timeout(Duration::from_secs(2), server.shutdown())
                .await
                .expect("shutdown returns")
                .unwrap();
        }
    })
    .await;
}

/// Case 4: a response that does not decode is `INTERNAL`, unary or streamed, and in a stream
/// it is the call's result.
#[tokio::test]
async fn a_response_that_does_not_decode_is_internal_either_way() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(StopsReading::server(events.clone()))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let tcp: Arc<dyn rust_rpc::RpcChannel> =
            Arc::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let local: Arc<dyn rust_rpc::RpcChannel> =
            Arc::new(InProcessChannel::new(StopsReading::server(events.clone())));
        for channel in [tcp, local] {
            let err = Call::<Unary<Text, Text>>::unary(
                &channel,
                &STOPS_READING.methods[2],
                Text::default(),
            )
            .await
            .unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{err}");

            let mut stream = Call::<ServerStreaming<Text, Text>>::server_streaming(
                &channel,
                &STOPS_READING.methods[3],
                Text::default(),
            )
            .await
            .unwrap();
            assert_eq!(stream.message().await.unwrap().unwrap().text, "fine");
            let err = stream.message().await.unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{err}");
            assert!(
                stream.message().await.unwrap().is_none(),
                "the call is over"
            );

            // Through the trait form, the call's own result is that error.
            let (sender, mut receiver) = rust_rpc::stream::channel::<Text>();
            let result = rust_rpc::service::codegen::call_server_streaming(
                &channel,
                &STOPS_READING.methods[3],
                &mut RpcController::new(),
                Text::default(),
                sender,
            )
            .await;
            assert_eq!(result.unwrap_err().code(), Code::Internal);
            assert_eq!(receiver.message().await.unwrap().unwrap().text, "fine");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

/// A server that sends a response over the client's limit (it ignores the client's SETTINGS):
/// that call fails with `RESOURCE_EXHAUSTED`, and the connection carries the next call.
#[tokio::test]
async fn an_oversize_response_fails_only_its_call_on_the_client() {
    bounded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut preface = [0u8; 12];
            stream.read_exact(&mut preface).await.unwrap();
            stream.write_all(PREFACE).await.unwrap();
            // A server's SETTINGS: `server` (field 4) set, nothing else announced.
            write_frame(&mut stream, frame::SETTINGS, 0, 0, &[0x20, 0x01]).await;
            let mut raw = RawClient { stream };
            let mut answered = 0;
            while answered < 2 {
                let Some((kind, id, _)) = raw.read_frame().await else {
                    break;
                };
                if kind != frame::MESSAGE {
                    continue;
                }
                let reply = if answered == 0 {
                    vec![b'y'; 5000]
                } else {
                    vec![0x0a, 0x02, b'o', b'k']
                };
                write_frame(&mut raw.stream, frame::MESSAGE, 0, id, &reply).await;
                write_frame(&mut raw.stream, frame::STATUS, 0, id, &[]).await;
                answered += 1;
            }
            // Hold the connection until the client is done.
            let mut rest = Vec::new();
            let _ = raw.stream.read_to_end(&mut rest).await;
        });
        let channel =
            TcpChannel::connect_with_limits(addr, Limits::default().with_max_frame_size(1024))
                .await
                .unwrap();
        let method = &STOPS_READING.methods[2];
        let err = Call::<Unary<Text, Text>>::unary(&channel, method, Text::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
        let ok = Call::<Unary<Text, Text>>::unary(&channel, method, Text::default())
            .await
            .unwrap();
        assert_eq!(ok.text, "ok");
        drop(channel);
        peer.await.unwrap();
    })
    .await;
}

/// A streamed response over the client's limit fails that call with `RESOURCE_EXHAUSTED`
/// after the messages before it, and the server hears it: its handler ends while the client
/// still holds the stream, and the server shuts down. Over TCP and gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_streamed_response_ends_the_call_on_both_sides() {
    bounded(async {
        for grpc in [false, true] {
            let events = Arc::new(Events::default());
            let server = serve_alone(grpc, StopsReading::server(events.clone())).await;
            let channel: Arc<dyn rust_rpc::RpcChannel> = if grpc {
                Arc::new(
                    rust_rpc::grpc::GrpcChannel::builder(server.local_addr())
                        .max_receive_message_size(1024)
                        .connect()
                        .await
                        .unwrap(),
                )
            } else {
                Arc::new(
                    TcpChannel::connect_with_limits(
                        server.local_addr(),
                        Limits::default().with_max_frame_size(1024),
                    )
                    .await
                    .unwrap(),
                )
            };
            let mut stream = Call::<ServerStreaming<Text, Text>>::server_streaming(
                &channel,
                &STOPS_READING.methods[4],
                Text::default(),
            )
            .await
            .unwrap();
            // Let the oversize message arrive before the first is read.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(stream.message().await.unwrap().unwrap().text, "fine");
            let err = stream.message().await.unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted, "grpc {grpc}: {err}");
            promptly("the handler's end", || {
                events.finished.load(Ordering::SeqCst) == 1
            })
            .await;
            tokio::time::timeout(PROMPTLY, server.shutdown())
                .await
                .expect("shutdown returns while the client holds its stream")
                .unwrap();
            drop(stream);
        }
    })
    .await;
}

/// A handler whose client's deadline passes learns that the deadline passed, not that the
/// client cancelled: the client's cancellation at its deadline and the server's own timer race,
/// and either way the handler sees `DEADLINE_EXCEEDED`. Over TCP, gRPC and in process, ten
/// calls each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_sees_deadline_exceeded_when_the_deadline_passes() {
    bounded(async {
        for (grpc, local) in [(false, false), (true, false), (false, true)] {
            let events = Arc::new(Events::default());
            let server = serve_alone(grpc, StopsReading::server(events.clone())).await;
            let channel: Arc<dyn rust_rpc::RpcChannel> = if local {
                Arc::new(InProcessChannel::new(StopsReading::server(events.clone())))
            } else if grpc {
                Arc::new(
                    rust_rpc::grpc::GrpcChannel::connect(server.local_addr())
                        .await
                        .unwrap(),
                )
            } else {
                Arc::new(TcpChannel::connect(server.local_addr()).await.unwrap())
            };
            for _ in 0..10 {
                let mut ctrl = RpcController::with_timeout(Duration::from_millis(100));
                let result = Call::<Unary<Text, Text>>::unary(
                    &channel,
                    &STOPS_READING.methods[5],
                    Text::default(),
                )
                .controller(&mut ctrl)
                .await;
                assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
            }
            promptly("every handler's end", || {
                events.ended_with.lock().unwrap().len() == 10
            })
            .await;
            let ended = events.ended_with.lock().unwrap().clone();
            assert!(
                ended.iter().all(|c| *c == Code::DeadlineExceeded),
                "grpc {grpc}, in process {local}: {ended:?}"
            );
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

async fn write_frame(
    stream: &mut tokio::net::TcpStream,
    kind: u8,
    flags: u8,
    id: u64,
    payload: &[u8],
) {
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&[kind, flags, 0, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    stream.write_all(&out).await.unwrap();
}

/// A service written by hand against the type-erased trait, to misbehave in ways generated
/// code cannot: stop reading, panic in a cancel callback, send bytes that do not decode.
struct StopsReading {
    events: Arc<Events>,
}

impl StopsReading {
    fn server(events: Arc<Events>) -> StopsReading {
        StopsReading { events }
    }
}

const fn method(name: &'static str, index: usize, client: bool, server: bool) -> MethodDescriptor {
    MethodDescriptor {
        name,
        full_name: "",
        service: "test.Misbehaving",
        index,
        input_type: "services.Text",
        output_type: "services.Text",
        client_streaming: client,
        server_streaming: server,
    }
}

static STOPS_READING: ServiceDescriptor = ServiceDescriptor {
    name: "Misbehaving",
    full_name: "test.Misbehaving",
    methods: &[
        method("ReadOne", 0, true, false),
        method("PanicOnCancel", 1, false, false),
        method("BadUnary", 2, false, false),
        method("BadStream", 3, false, true),
        method("Oversize", 4, false, true),
        method("WaitForTheEnd", 5, false, false),
    ],
};

/// A field 1 `string` holding `ff`: not UTF-8, so no `Text` decodes from it.
const NOT_UTF8: &[u8] = &[0x0a, 0x01, 0xff];

impl Service for StopsReading {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &STOPS_READING
    }

    fn call_method<'a>(
        &'a self,
        method_index: usize,
        ctrl: &'a mut RpcController,
        mut call: ServerCall,
    ) -> BoxFuture<'a, Result<Option<Bytes>, Status>> {
        Box::pin(async move {
            self.events.started.fetch_add(1, Ordering::SeqCst);
            let _finished = Finished(self.events.clone());
            match method_index {
                0 => {
                    // Reads one request, then waits for the end without reading more.
                    call.requests.next_bytes().await?;
                    ctrl.cancelled().await;
                    Err(Status::cancelled("gave up"))
                }
                1 => {
                    ctrl.notify_on_cancel(Closure::new(|| panic!("a callback that panics")));
                    ctrl.cancelled().await;
                    Err(Status::cancelled("gave up"))
                }
                2 => Ok(Some(Bytes::from_static(NOT_UTF8))),
                5 => {
                    // Waits for the call's end and records why it ended.
                    ctrl.cancelled().await;
                    if let Some(reason) = ctrl.cancel_token().reason() {
                        let mut ended = self.events.ended_with.lock().unwrap();
                        ended.push(reason.code());
                    }
                    Err(Status::cancelled("gave up"))
                }
                4 => {
                    // One message that fits, one over the client's limit, then more until
                    // sending fails: the client's failure must end this handler.
                    let fine = Bytes::from_static(&[0x0a, 0x04, b'f', b'i', b'n', b'e']);
                    call.responses.send_bytes(fine.clone()).await?;
                    let mut big = vec![0x0a, 0x88, 0x27];
                    big.resize(3 + 5000, b'y');
                    call.responses.send_bytes(Bytes::from(big)).await?;
                    loop {
                        call.responses.send_bytes(fine.clone()).await?;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                _ => {
                    call.responses
                        .send_bytes(Bytes::from_static(&[0x0a, 0x04, b'f', b'i', b'n', b'e']))
                        .await?;
                    call.responses
                        .send_bytes(Bytes::from_static(NOT_UTF8))
                        .await?;
                    call.responses
                        .send_bytes(Bytes::from_static(&[0x0a, 0x01, b'z']))
                        .await?;
                    Ok(None)
                }
            }
        })
    }
}

/// Counts a handler as finished when it is dropped, however that happens.
struct Finished(Arc<Events>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::SeqCst);
    }
}
