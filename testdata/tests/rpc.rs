//! Services end to end: generated traits, stubs and dispatch, in process and over TCP on
//! loopback, for every call shape and every error path. Every test is bounded in time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rust_rpc::tcp::{Server, ServerHandle, TcpChannel};
use rust_rpc::{Closure, Code, InProcessChannel, RpcController, Status, StreamSender, Streaming};
use rust_rpc_testdata::ours::echo_service::{
    self as echo, EchoService, EchoServiceServer, EchoServiceStub,
};
use rust_rpc_testdata::ours::services::{
    Calculator, CalculatorServer, CalculatorStub, KeywordsStub, Number, Text,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

/// Echo implements only `Echo`; `Add` keeps the generated default.
struct Echo;

impl EchoService for Echo {
    async fn echo(
        &self,
        _ctrl: &mut RpcController,
        request: echo::EchoRequest,
    ) -> Result<echo::EchoResponse, Status> {
        Ok(echo::EchoResponse {
            message: format!("{}, welcome!", request.message),
            ..Default::default()
        })
    }
}

/// What the calculator's handlers report back to a test.
#[derive(Default)]
struct Events {
    cancelled: AtomicUsize,
    started: AtomicUsize,
}

struct Calc {
    events: Arc<Events>,
}

fn number(value: i64) -> Number {
    Number {
        value,
        ..Default::default()
    }
}

impl Calculator for Calc {
    async fn double(&self, ctrl: &mut RpcController, request: Number) -> Result<Number, Status> {
        self.events.started.fetch_add(1, Ordering::SeqCst);
        match request.value {
            -1 => panic!("asked to panic"),
            -2 => {
                // Waits for the deadline or a cancellation, and records that it saw it.
                let events = self.events.clone();
                ctrl.notify_on_cancel(Closure::new(move || {
                    events.cancelled.fetch_add(1, Ordering::SeqCst);
                }));
                ctrl.cancelled().await;
                Err(Status::cancelled("gave up"))
            }
            -3 => {
                ctrl.set_failed(Status::failed_precondition(
                    "refused through the controller",
                ));
                Ok(number(0))
            }
            -4 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(number(-8))
            }
            -6 => {
                // Ignores cancellation altogether.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(number(0))
            }
            -5 => Ok(Number {
                value: 1,
                unknown_fields: Default::default(),
            })
            .map(|mut n: Number| {
                n.value = ctrl
                    .metadata()
                    .get("x-factor")
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(0);
                ctrl.response_metadata_mut().insert("x-seen", "yes");
                n
            }),
            v => Ok(number(v * 2)),
        }
    }

    async fn countdown(
        &self,
        _ctrl: &mut RpcController,
        request: Number,
        responses: StreamSender<Number>,
    ) -> Result<(), Status> {
        if request.value < 0 {
            return Err(Status::invalid_argument(
                "cannot count down from a negative number",
            ));
        }
        for v in (0..=request.value).rev() {
            responses.send(&number(v)).await?;
        }
        Ok(())
    }

    async fn sum(
        &self,
        _ctrl: &mut RpcController,
        mut requests: Streaming<Number>,
    ) -> Result<Number, Status> {
        let mut total = 0;
        while let Some(n) = requests.message().await? {
            total += n.value;
        }
        Ok(number(total))
    }

    async fn running_total(
        &self,
        ctrl: &mut RpcController,
        mut requests: Streaming<Number>,
        responses: StreamSender<Number>,
    ) -> Result<(), Status> {
        let mut total = 0;
        loop {
            tokio::select! {
                next = requests.message() => match next? {
                    Some(n) => {
                        total += n.value;
                        responses.send(&number(total)).await?;
                    }
                    None => return Ok(()),
                },
                () = ctrl.cancelled() => {
                    self.events.cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(Status::cancelled("the client went away"));
                }
            }
        }
    }
}

async fn start(events: Arc<Events>) -> ServerHandle {
    Server::builder()
        .add_service(CalculatorServer::new(Calc { events }))
        .add_service(EchoServiceServer::new(Echo))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
        .spawn()
        .expect("spawn")
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test took too long")
}

/// Code written against the trait, run against a local implementation and a stub alike.
async fn greet(service: &impl EchoService) -> Result<String, Status> {
    let reply = service
        .echo(
            &mut RpcController::new(),
            echo::EchoRequest {
                message: "rust".into(),
                ..Default::default()
            },
        )
        .await?;
    Ok(reply.message)
}

#[tokio::test]
async fn the_trait_runs_locally_in_process_and_remotely() {
    bounded(async {
        assert_eq!(greet(&Echo).await.unwrap(), "rust, welcome!");
        let in_process = EchoServiceStub::new(InProcessChannel::new(EchoServiceServer::new(Echo)));
        assert_eq!(greet(&in_process).await.unwrap(), "rust, welcome!");
        let server = start(Arc::default()).await;
        let remote = EchoServiceStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        assert_eq!(greet(&remote).await.unwrap(), "rust, welcome!");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_method_left_out_answers_unimplemented_naming_it() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = EchoServiceStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::new();
        let err = stub
            .add(
                &mut ctrl,
                echo::AddRequest {
                    a: 2,
                    b: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert_eq!(err.message(), "Method Add() not implemented");
        assert!(ctrl.failed());
        assert_eq!(ctrl.error_text(), Some("Method Add() not implemented"));
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_shape_works_over_tcp() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());

        let doubled = stub
            .double(&mut RpcController::new(), number(21))
            .await
            .unwrap();
        assert_eq!(doubled.value, 42);

        // Server streaming: responses arrive while the call runs.
        let (tx, mut rx) = rust_rpc::stream::channel(4);
        let mut ctrl = RpcController::new();
        let (result, received) = tokio::join!(stub.countdown(&mut ctrl, number(5), tx), async {
            let mut seen = Vec::new();
            while let Some(n) = rx.message().await.unwrap() {
                seen.push(n.value);
            }
            seen
        });
        result.unwrap();
        assert_eq!(received, [5, 4, 3, 2, 1, 0]);

        // Client streaming.
        let (tx, requests) = rust_rpc::stream::channel(4);
        let mut ctrl = RpcController::new();
        let (sum, ()) = tokio::join!(stub.sum(&mut ctrl, requests), async move {
            for v in 1..=100 {
                tx.send(&number(v)).await.unwrap();
            }
        });
        assert_eq!(sum.unwrap().value, 5050);

        // Bidirectional: each request answered before the next is sent.
        let (req_tx, requests) = rust_rpc::stream::channel(1);
        let (resp_tx, mut responses) = rust_rpc::stream::channel(1);
        let mut ctrl = RpcController::new();
        let (result, totals) = tokio::join!(
            stub.running_total(&mut ctrl, requests, resp_tx),
            async move {
                let mut totals = Vec::new();
                for v in [1, 2, 3, 4] {
                    req_tx.send(&number(v)).await.unwrap();
                    totals.push(responses.message().await.unwrap().unwrap().value);
                }
                drop(req_tx);
                assert!(responses.message().await.unwrap().is_none());
                totals
            }
        );
        result.unwrap();
        assert_eq!(totals, [1, 3, 6, 10]);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn streaming_errors_reach_the_client() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let (tx, mut rx) = rust_rpc::stream::channel(4);
        let mut ctrl = RpcController::new();
        let (result, last) = tokio::join!(stub.countdown(&mut ctrl, number(-1), tx), rx.message());
        assert_eq!(result.unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(last.unwrap_err().code(), Code::InvalidArgument);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn unknown_services_and_methods_are_unimplemented() {
    bounded(async {
        let server = start(Arc::default()).await;
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        let keywords = KeywordsStub::new(channel.clone());
        use rust_rpc_testdata::ours::services::Keywords;
        let err = keywords
            .r#type(&mut RpcController::new(), Text::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert!(
            err.message().contains("unknown service services.Keywords"),
            "{err}"
        );

        let reply = raw_call(server.local_addr(), "services.Calculator", "Triple", vec![]).await;
        assert_eq!(reply.error_code, Code::Unimplemented as u32);
        assert!(reply.error_message.contains("unknown method Triple"));
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Sends one REQUEST frame by hand and reads the answer.
async fn raw_call(
    addr: std::net::SocketAddr,
    service: &str,
    method: &str,
    payload: Vec<u8>,
) -> rust_rpc::tcp::wire::Envelope {
    use rust_rpc::tcp::wire::{Envelope, FrameType};
    use rust_rpc::Message;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let envelope = Envelope {
        r#type: FrameType::REQUEST,
        call_id: 7,
        service: service.into(),
        method: method.into(),
        payload,
        ..Default::default()
    };
    let body = envelope.encode_to_vec();
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    let len = stream.read_u32().await.unwrap();
    let mut reply = vec![0; len as usize];
    stream.read_exact(&mut reply).await.unwrap();
    let reply = Envelope::decode(&reply).unwrap();
    assert_eq!(reply.call_id, 7);
    reply
}

#[tokio::test]
async fn an_undecodable_request_is_invalid_argument() {
    bounded(async {
        let server = start(Arc::default()).await;
        // Field 1 with wire type 2 but a length past the end.
        let reply = raw_call(
            server.local_addr(),
            "services.Calculator",
            "Double",
            vec![0x0a, 0x05],
        )
        .await;
        assert_eq!(reply.error_code, Code::InvalidArgument as u32);
        assert!(
            reply.error_message.contains("cannot decode the request"),
            "{}",
            reply.error_message
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_internal_and_the_server_keeps_serving() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let err = stub
            .double(&mut RpcController::new(), number(-1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().contains("asked to panic"), "{err}");
        assert_eq!(
            stub.double(&mut RpcController::new(), number(4))
                .await
                .unwrap()
                .value,
            8
        );

        // In process too.
        let local = CalculatorStub::new(InProcessChannel::new(CalculatorServer::new(Calc {
            events: Arc::default(),
        })));
        assert_eq!(
            local
                .double(&mut RpcController::new(), number(-1))
                .await
                .unwrap_err()
                .code(),
            Code::Internal
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_fails_the_client_and_cancels_the_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::with_timeout(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let err = stub.double(&mut ctrl, number(-2)).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_secs(5));
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 1).await;

        // In process, the deadline is enforced the same way.
        let local = CalculatorStub::new(InProcessChannel::new(CalculatorServer::new(Calc {
            events: events.clone(),
        })));
        let err = local
            .double(
                &mut RpcController::with_timeout(Duration::from_millis(50)),
                number(-2),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 2).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_client_reaches_the_server_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::new();
        let token = ctrl.cancel_token();
        let canceller = async {
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(stub.double(&mut ctrl, number(-2)), canceller);
        assert_eq!(result.unwrap_err().code(), Code::Cancelled);
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 1).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn metadata_and_controller_failures_cross_the_wire() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::new();
        ctrl.metadata_mut().insert("x-factor", "17");
        let reply = stub.double(&mut ctrl, number(-5)).await.unwrap();
        assert_eq!(reply.value, 17);
        assert_eq!(ctrl.response_metadata().get("x-seen"), Some("yes"));

        let err = stub
            .double(&mut RpcController::new(), number(-3))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(err.message(), "refused through the controller");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_share_one_connection() {
    bounded(async {
        let server = start(Arc::default()).await;
        let stub = Arc::new(CalculatorStub::new(
            TcpChannel::connect(server.local_addr()).await.unwrap(),
        ));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..1000i64 {
            let stub = stub.clone();
            calls
                .spawn(async move { (i, stub.double(&mut RpcController::new(), number(i)).await) });
        }
        let mut seen = 0;
        while let Some(joined) = calls.join_next().await {
            let (i, reply) = joined.unwrap();
            assert_eq!(
                reply.unwrap().value,
                i * 2,
                "call {i} got another call's answer"
            );
            seen += 1;
        }
        assert_eq!(seen, 1000);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_do_not_disturb_a_good_one() {
    bounded(async {
        let server = start(Arc::default()).await;
        let addr = server.local_addr();
        let good = CalculatorStub::new(TcpChannel::connect(addr).await.unwrap());
        let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
        let good_client = tokio::spawn(async move {
            let mut calls = 0;
            loop {
                let v = calls as i64;
                assert_eq!(
                    good.double(&mut RpcController::new(), number(v))
                        .await
                        .unwrap()
                        .value,
                    v * 2
                );
                calls += 1;
                if stop_rx.try_recv().is_ok() {
                    return calls;
                }
            }
        });

        // Garbage: a length and bytes that are not an envelope.
        let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
        garbage
            .write_all(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        assert_closed(&mut garbage).await;

        // An oversize length: refused before anything is allocated for it.
        let mut oversize = tokio::net::TcpStream::connect(addr).await.unwrap();
        oversize.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert_closed(&mut oversize).await;

        // A client that starts a bidirectional stream and disconnects in the middle.
        {
            let quitter = CalculatorStub::new(TcpChannel::connect(addr).await.unwrap());
            let (req_tx, requests) = rust_rpc::stream::channel(1);
            let (resp_tx, mut responses) = rust_rpc::stream::channel(1);
            let call = tokio::spawn(async move {
                quitter
                    .running_total(&mut RpcController::new(), requests, resp_tx)
                    .await
            });
            req_tx.send(&number(1)).await.unwrap();
            assert_eq!(responses.message().await.unwrap().unwrap().value, 1);
            call.abort();
        }

        stop_tx.send(()).await.unwrap();
        let calls = good_client.await.unwrap();
        assert!(calls > 0);
        server.shutdown().await.unwrap();
    })
    .await;
}

async fn assert_closed(stream: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the server closes the connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the connection to close, read {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_the_connection_drops() {
    bounded(async {
        let server = start(Arc::default()).await;
        let addr = server.local_addr();
        let stub = CalculatorStub::new(TcpChannel::connect(addr).await.unwrap());
        assert_eq!(
            stub.double(&mut RpcController::new(), number(1))
                .await
                .unwrap()
                .value,
            2
        );
        server.shutdown().await.unwrap();

        let err = stub
            .double(&mut RpcController::new(), number(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);

        let again = Server::builder()
            .add_service(CalculatorServer::new(Calc {
                events: Arc::default(),
            }))
            .bind(addr)
            .await
            .expect("rebind the same port")
            .spawn()
            .unwrap();
        assert_eq!(
            stub.double(&mut RpcController::new(), number(3))
                .await
                .unwrap()
                .value,
            6
        );
        again.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_calls_in_flight_finish() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::new();
        let (reply, shut) = tokio::join!(stub.double(&mut ctrl, number(-4)), async {
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            server.shutdown().await
        });
        shut.unwrap();
        assert_eq!(
            reply.unwrap().value,
            -8,
            "the call in flight got its answer"
        );
    })
    .await;
}

#[tokio::test]
async fn frames_over_the_limit_are_refused() {
    bounded(async {
        let server = Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .max_frame_size(1024)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let limits = rust_rpc::tcp::Limits {
            max_frame_size: 1024,
            ..Default::default()
        };
        let stub = EchoServiceStub::new(
            TcpChannel::connect_with_limits(server.local_addr(), limits)
                .await
                .unwrap(),
        );
        let big = echo::EchoRequest {
            message: "x".repeat(2000),
            ..Default::default()
        };
        let err = stub.echo(&mut RpcController::new(), big).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        let ok = stub
            .echo(
                &mut RpcController::new(),
                echo::EchoRequest {
                    message: "small".into(),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(ok.unwrap().message, "small, welcome!");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn descriptors_describe_the_service() {
    use rust_rpc_testdata::ours::services::CALCULATOR_DESCRIPTOR as D;
    assert_eq!(D.full_name, "services.Calculator");
    let shapes: Vec<_> = D
        .methods
        .iter()
        .map(|m| (m.name, m.index, m.client_streaming, m.server_streaming))
        .collect();
    assert_eq!(
        shapes,
        [
            ("Double", 0, false, false),
            ("Countdown", 1, false, true),
            ("Sum", 2, true, false),
            ("RunningTotal", 3, true, true),
            ("Twice", 4, false, false)
        ]
    );
    assert_eq!(D.methods[0].full_name, "services.Calculator.Double");
    assert_eq!(D.methods[0].input_type, "services.Number");
    assert_eq!(D.method("Sum").map(|m| m.index), Some(2));
}

#[tokio::test]
async fn callbacks_complete_calls_in_the_c_plus_plus_style() {
    bounded(async {
        let stub = EchoServiceStub::new(InProcessChannel::new(EchoServiceServer::new(Echo)));
        let (tx, rx) = tokio::sync::oneshot::channel();
        rust_rpc::spawn_with_callback(
            async move {
                stub.echo(
                    &mut RpcController::new(),
                    echo::EchoRequest {
                        message: "cb".into(),
                        ..Default::default()
                    },
                )
                .await
            },
            move |reply| {
                let _ = tx.send(reply);
            },
        );
        assert_eq!(rx.await.unwrap().unwrap().message, "cb, welcome!");
    })
    .await;
}

async fn wait_for(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_flight_finishes_during_shutdown_while_new_calls_are_refused() {
    bounded(async {
        let server = start(Arc::default()).await;
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        let stub = CalculatorStub::new(channel.clone());
        let (req_tx, requests) = rust_rpc::stream::channel(1);
        let (resp_tx, mut responses) = rust_rpc::stream::channel::<Number>(1);
        let mut ctrl = RpcController::new();
        let client = async {
            req_tx.send(&number(5)).await.unwrap();
            assert_eq!(responses.message().await.unwrap().unwrap().value, 5);
            let shutdown = tokio::spawn(server.shutdown());
            // Until the server has begun shutting down, a new call could still be accepted.
            let refused = loop {
                match stub.double(&mut RpcController::new(), number(1)).await {
                    Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    Err(status) => break status,
                }
            };
            assert_eq!(refused.code(), Code::Unavailable);
            req_tx.send(&number(6)).await.unwrap();
            assert_eq!(responses.message().await.unwrap().unwrap().value, 11);
            drop(req_tx);
            assert!(responses.message().await.unwrap().is_none());
            shutdown.await.unwrap().unwrap();
        };
        let (result, ()) = tokio::join!(stub.running_total(&mut ctrl, requests, resp_tx), client);
        result.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_grace_period_does_not_wait_for_a_stuck_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let stub = CalculatorStub::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut ctrl = RpcController::new();
        let (reply, shut) = tokio::join!(stub.double(&mut ctrl, number(-6)), async {
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            let started = std::time::Instant::now();
            let result = server.shutdown_timeout(Duration::from_millis(100)).await;
            (result, started.elapsed())
        });
        let (result, took) = shut;
        result.unwrap();
        assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
        assert_eq!(
            reply.unwrap_err().code(),
            Code::Unavailable,
            "the stuck call's connection was closed"
        );
    })
    .await;
}
