//! Services end to end: generated traits, stubs, clients and dispatch, in process and over TCP
//! on loopback, for every call shape and every error path. Every test is bounded in time.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rust_rpc::tcp::{Limits, Server, TcpChannel};
use rust_rpc::{Code, InProcessChannel, Metadata, RpcChannel, RpcController, Status};
use rust_rpc_testdata::ours::echo_service::{
    self as echo, EchoService, EchoServiceClient, EchoServiceServer, EchoServiceStub,
};
use rust_rpc_testdata::ours::services::{
    Calculator, CalculatorClient, CalculatorDyn, CalculatorServer, CalculatorStub, KeywordsStub,
    Number, Text,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        // A (host, port) pair names a server as well as a socket address does.
        let port = server.local_addr().port();
        let by_name = EchoServiceStub::new(TcpChannel::connect(("localhost", port)).await.unwrap());
        assert_eq!(greet(&by_name).await.unwrap(), "rust, welcome!");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_implementation_is_chosen_at_run_time_behind_dyn() {
    bounded(async {
        let server = start(Arc::default()).await;
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        for remote in [false, true] {
            // One type for both: a local implementation, or a stub that calls a server.
            let calculator = if remote {
                CalculatorDyn::new(CalculatorStub::new(channel.clone()))
            } else {
                CalculatorDyn::new(Calc::new(Arc::default()))
            };
            let doubled = calculator
                .double(&mut RpcController::new(), number(4))
                .await
                .unwrap();
            assert_eq!(doubled.value, 8, "remote: {remote}");
            // The `dyn` form implements the trait again, so it can be served too.
            let served = CalculatorClient::new(InProcessChannel::new(CalculatorServer::new(
                calculator.clone(),
            )));
            assert_eq!(served.double(number(5)).await.unwrap().value, 10);
        }
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

/// Every call shape through the trait form, with the channels the C++ pattern uses.
async fn every_shape_through_the_stub(stub: &CalculatorStub<Arc<dyn RpcChannel>>) {
    let doubled = stub
        .double(&mut RpcController::new(), number(21))
        .await
        .unwrap();
    assert_eq!(doubled.value, 42);

    // Server streaming: responses arrive while the call runs.
    let (tx, mut rx) = rust_rpc::stream::channel();
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
    let (tx, requests) = rust_rpc::stream::channel();
    let mut ctrl = RpcController::new();
    let (sum, ()) = tokio::join!(stub.sum(&mut ctrl, requests), async move {
        for v in 1..=100 {
            tx.send(&number(v)).await.unwrap();
        }
    });
    assert_eq!(sum.unwrap().value, 5050);

    // Bidirectional: each request answered before the next is sent.
    let (req_tx, requests) = rust_rpc::stream::channel();
    let (resp_tx, mut responses) = rust_rpc::stream::channel();
    let mut ctrl = RpcController::new();
    let (result, totals) = tokio::join!(
        stub.running_total(&mut ctrl, requests, resp_tx),
        async move {
            let mut totals = Vec::new();
            for v in [1, 2, 3, 4] {
                req_tx.send(number(v)).await.unwrap();
                totals.push(responses.message().await.unwrap().unwrap().value);
            }
            drop(req_tx);
            assert!(responses.message().await.unwrap().is_none());
            totals
        }
    );
    result.unwrap();
    assert_eq!(totals, [1, 3, 6, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_shape_works_through_the_trait() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let channel = transport.channel(&server, Arc::default()).await;
            every_shape_through_the_stub(&CalculatorStub::new(channel)).await;
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_shape_works_through_the_client() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, Arc::default()).await);
            assert_eq!(client.double(number(21)).await.unwrap().value, 42);

            // The response stream comes back before anything is read from it.
            let mut countdown = client.countdown(number(3)).await.unwrap();
            let mut seen = Vec::new();
            while let Some(n) = countdown.message().await.unwrap() {
                seen.push(n.value);
            }
            assert_eq!(seen, [3, 2, 1, 0], "{transport:?}");

            // Any iterator of requests.
            let sum = client.sum((1..=100).map(number)).await.unwrap();
            assert_eq!(sum.value, 5050);
            let sum = client.sum(vec![number(2), number(3)]).await.unwrap();
            assert_eq!(sum.value, 5);

            // In step, through a local channel: no task, no sleep.
            let (sender, requests) = rust_rpc::stream::channel();
            let mut totals = client.running_total(requests).await.unwrap();
            let mut seen = Vec::new();
            for v in [1, 2, 3, 4] {
                sender.send(number(v)).await.unwrap();
                seen.push(totals.message().await.unwrap().unwrap().value);
            }
            drop(sender);
            assert!(totals.message().await.unwrap().is_none());
            assert_eq!(seen, [1, 3, 6, 10]);

            // Options: a timeout, metadata, and a controller that keeps the response metadata.
            let mut ctrl = RpcController::new();
            let reply = client
                .double(number(-5))
                .timeout(Duration::from_secs(5))
                .metadata("x-factor", "7")
                .controller(&mut ctrl)
                .await
                .unwrap();
            assert_eq!(reply.value, 7);
            assert_eq!(ctrl.response_metadata().get("x-seen"), Some("yes"));
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_read_after_awaiting_the_call_loses_nothing_and_slows_no_other_call() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, Arc::default()).await);
            // 2,000 responses, far more than one window, not read for a while.
            let mut countdown = client.countdown(number(1999)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Meanwhile another call on the same connection goes straight through.
            let started = Instant::now();
            assert_eq!(client.double(number(1)).await.unwrap().value, 2);
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(500),
                "{transport:?}: took {took:?}"
            );
            let mut count = 0;
            let mut next = 1999;
            while let Some(n) = countdown.message().await.unwrap() {
                assert_eq!(n.value, next);
                next -= 1;
                count += 1;
            }
            assert_eq!(count, 2000, "{transport:?}");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn streaming_errors_reach_the_client() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let channel = transport.channel(&server, Arc::default()).await;
            let stub = CalculatorStub::new(channel.clone());
            let (tx, mut rx) = rust_rpc::stream::channel::<Number>();
            let mut ctrl = RpcController::new();
            let result = stub.countdown(&mut ctrl, number(-1), tx).await;
            assert_eq!(result.unwrap_err().code(), Code::InvalidArgument);
            // The caller's receiver sees a plain end: the error is the call's result.
            assert!(rx.message().await.unwrap().is_none());

            let client = CalculatorClient::new(channel);
            let mut stream = client.countdown(number(-1)).await.unwrap();
            let err = stream.message().await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert!(stream.message().await.unwrap().is_none());
        }
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

        let mut raw = RawClient::connect(server.local_addr()).await;
        raw.call(7, "services.Calculator", "Triple", &[]).await;
        let status = raw.status_of(7).await;
        assert_eq!(status.code, Code::Unimplemented as u32);
        assert!(status.message.contains("unknown method Triple"));
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_undecodable_request_is_invalid_argument() {
    bounded(async {
        let server = start(Arc::default()).await;
        let mut raw = RawClient::connect(server.local_addr()).await;
        // Field 1 with wire type 2 but a length past the end.
        raw.call(1, "services.Calculator", "Double", &[0x0a, 0x05])
            .await;
        let status = raw.status_of(1).await;
        assert_eq!(status.code, Code::InvalidArgument as u32);
        assert!(
            status.message.contains("cannot decode the request"),
            "{}",
            status.message
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_reused_call_id_fails_that_call_and_the_limit_holds() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(events.clone())))
            .max_concurrent_calls(2)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let mut raw = RawClient::connect(server.local_addr()).await;
        // Two calls that wait for cancellation fill the connection's two slots.
        raw.call(1, "services.Calculator", "Double", &encode(&number(-2)))
            .await;
        raw.call(2, "services.Calculator", "Double", &encode(&number(-2)))
            .await;
        wait_for(|| events.started.load(Ordering::SeqCst) == 2).await;
        // Reusing id 2 does not get past the limit, nor replace the call that holds it.
        raw.call(2, "services.Calculator", "Double", &encode(&number(4)))
            .await;
        let status = raw.status_of(2).await;
        assert_eq!(status.code, Code::InvalidArgument as u32, "{status:?}");
        assert!(status.message.contains("already in use"), "{status:?}");
        // A third id is over the limit.
        raw.call(3, "services.Calculator", "Double", &encode(&number(4)))
            .await;
        let status = raw.status_of(3).await;
        assert_eq!(status.code, Code::ResourceExhausted as u32);
        assert_eq!(events.started.load(Ordering::SeqCst), 2);
        // The first two calls are still there to be cancelled.
        raw.cancel(1).await;
        raw.cancel(2).await;
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 2).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_internal_and_the_server_keeps_serving() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, Arc::default()).await);
            let err = client.double(number(-1)).await.unwrap_err();
            assert_eq!(err.code(), Code::Internal);
            // The panic's own message stays on the server.
            assert_eq!(err.message(), "the handler panicked", "{transport:?}");
            assert_eq!(client.double(number(4)).await.unwrap().value, 8);
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

/// A call can end on the TCP server's connection task: a handler polled there first (on a
/// current-thread runtime) that finishes at once, or a CANCEL from the client. An
/// interceptor whose `on_end` panics there ends nothing but itself: the connection goes on
/// reading calls.
#[tokio::test(flavor = "current_thread")]
async fn an_interceptor_that_panics_at_a_calls_end_leaves_the_connection_serving() {
    use rust_rpc::interceptor::ServerInterceptor;
    use rust_rpc::MethodDescriptor;
    struct PanicsOnEnd;
    impl ServerInterceptor for PanicsOnEnd {
        fn on_end(&self, _: &'static MethodDescriptor, status: &Result<(), Status>) {
            if status.is_err() {
                panic!("an interceptor that panics");
            }
        }
    }
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(events.clone())))
            .interceptor(PanicsOnEnd)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let client = CalculatorClient::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        // A call that never ends keeps this connection open even if its task died, so a new
        // call would go to it and never be read (the channel reconnects only once it closes).
        let pinned = tokio::spawn({
            let client = client.clone();
            async move { client.double(number(-6)).await }
        });
        wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
        // Finished in its first poll; `on_end` panics after the status went out.
        let err = client.double(number(-3)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        // Given up on by the client: the CANCEL ends it on the connection's task.
        let gave_up = tokio::time::timeout(Duration::from_millis(200), client.double(number(-2)));
        assert!(gave_up.await.is_err());
        wait_for(|| events.cancelled.load(Ordering::SeqCst) == 1).await;
        // The same connection still reads calls.
        let reply = client
            .double(number(4))
            .timeout(Duration::from_secs(5))
            .await;
        assert_eq!(reply.unwrap().value, 8);
        pinned.abort();
        server
            .shutdown_timeout(Duration::from_millis(100))
            .await
            .unwrap();
    })
    .await;
}

/// Echoes where the handler ran: "one task" when its first poll and the one after a yield ran
/// on the same tokio task, "moved" when the first ran on another (the connection's).
struct WhereRun;

impl EchoService for WhereRun {
    async fn echo(
        &self,
        _: &mut RpcController,
        _: echo::EchoRequest,
    ) -> Result<echo::EchoResponse, Status> {
        let first = tokio::task::try_id();
        tokio::task::yield_now().await;
        let then = tokio::task::try_id();
        let place = if first == then { "one task" } else { "moved" };
        Ok(rust_rpc::proto!(echo::EchoResponse {
            message: place.to_owned()
        }))
    }
}

async fn where_handlers_run() -> String {
    let server = Server::builder()
        .add_service(EchoServiceServer::new(WhereRun))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
        .unwrap();
    let client = EchoServiceClient::new(TcpChannel::connect(server.local_addr()).await.unwrap());
    let reply = client.echo(rust_rpc::proto!(echo::EchoRequest {})).await;
    server.shutdown().await.unwrap();
    reply.unwrap().message
}

/// On a multi-thread runtime every handler runs on a task of its own from its first poll, so
/// calls on one connection run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_on_tasks_of_their_own_on_a_multi_thread_runtime() {
    assert_eq!(bounded(where_handlers_run()).await, "one task");
}

/// On a current-thread runtime a handler's first poll runs on the connection's task (its
/// request arrived with the call's start, in one write), and only a handler not done then
/// moves to a task of its own.
#[tokio::test(flavor = "current_thread")]
async fn handlers_are_first_polled_on_the_connections_task_on_a_current_thread_runtime() {
    assert_eq!(bounded(where_handlers_run()).await, "moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_fails_the_client_and_cancels_the_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        for (i, transport) in TRANSPORTS.into_iter().enumerate() {
            let client = CalculatorClient::new(transport.channel(&server, events.clone()).await);
            let started = Instant::now();
            let err = client
                .double(number(-2))
                .timeout(Duration::from_millis(100))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::DeadlineExceeded);
            assert!(started.elapsed() < Duration::from_secs(2));
            wait_for(|| events.cancelled.load(Ordering::SeqCst) == i + 1).await;
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_client_reaches_the_server_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, events.clone()).await);
            let mut ctrl = RpcController::new();
            let token = ctrl.cancel_token();
            let started = events.started.load(Ordering::SeqCst);
            let cancelled = events.cancelled.load(Ordering::SeqCst);
            let canceller = async {
                wait_for(|| events.started.load(Ordering::SeqCst) > started).await;
                token.cancel();
            };
            let (result, ()) =
                tokio::join!(client.double(number(-2)).controller(&mut ctrl), canceller);
            assert_eq!(result.unwrap_err().code(), Code::Cancelled, "{transport:?}");
            wait_for(|| events.cancelled.load(Ordering::SeqCst) > cancelled).await;
            // The controller serves the next call.
            let reply = client.double(number(2)).controller(&mut ctrl).await;
            assert_eq!(reply.unwrap().value, 4);
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn metadata_and_controller_failures_cross_the_wire() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let stub = CalculatorStub::new(transport.channel(&server, Arc::default()).await);
            let mut ctrl = RpcController::new();
            ctrl.metadata_mut().insert("x-factor", "17");
            let reply = stub.double(&mut ctrl, number(-5)).await.unwrap();
            assert_eq!(reply.value, 17);
            assert_eq!(ctrl.response_metadata().get("x-seen"), Some("yes"));
            assert_eq!(ctrl.trailers().get("x-trailer"), Some("done"));

            let err = stub
                .double(&mut RpcController::new(), number(-3))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition);
            assert_eq!(err.message(), "refused through the controller");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_share_one_connection() {
    bounded(async {
        let server = start(Arc::default()).await;
        let client = CalculatorClient::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..1000i64 {
            let client = client.clone();
            calls.spawn(async move { (i, client.double(number(i)).await) });
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
        let good = CalculatorClient::new(TcpChannel::connect(addr).await.unwrap());
        let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let good_client = {
            let (progress, stop) = (progress.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let v = progress.load(Ordering::SeqCst) as i64;
                    assert_eq!(good.double(number(v)).await.unwrap().value, v * 2);
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // While a bad client is connected and misbehaving, the good one must get 20 more calls
        // answered within 5 s (it makes thousands a second when nothing is in its way).
        let goes_on = |while_what: &'static str| {
            let progress = progress.clone();
            async move {
                let before = progress.load(Ordering::SeqCst);
                let waited = tokio::time::timeout(
                    Duration::from_secs(5),
                    wait_for(|| progress.load(Ordering::SeqCst) >= before + 20),
                )
                .await;
                assert!(
                    waited.is_ok(),
                    "the good client stalled while {while_what}: {} calls in 5 s",
                    progress.load(Ordering::SeqCst) - before
                );
            }
        };
        goes_on("nothing happened").await;

        // Bytes that are not the preface: closed at once.
        let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
        garbage
            .write_all(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        goes_on("a client sent garbage").await;
        assert_closed(&mut garbage).await;

        // A control frame claiming 4 GiB: refused from its header, before any allocation.
        let mut raw = RawClient::connect(addr).await;
        raw.frame_header(u32::MAX, 1, 0, 0).await;
        goes_on("a client claimed a 4 GiB frame").await;
        raw.assert_closed().await;

        // A client that connects and then says nothing at all.
        let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        goes_on("a client said nothing").await;

        // A client that starts a bidirectional stream, stops in the middle, and then
        // disconnects.
        let quitter = CalculatorClient::new(TcpChannel::connect(addr).await.unwrap());
        let (sender, requests) = rust_rpc::stream::channel();
        let mut totals = quitter.running_total(requests).await.unwrap();
        sender.send(number(1)).await.unwrap();
        assert_eq!(totals.message().await.unwrap().unwrap().value, 1);
        goes_on("a client held a stream open").await;
        drop((quitter, sender, totals, silent));
        goes_on("clients went away mid-stream").await;

        stop.store(true, Ordering::SeqCst);
        good_client.await.unwrap();
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_the_connection_drops() {
    bounded(async {
        let server = start(Arc::default()).await;
        let addr = server.local_addr();
        let client = CalculatorClient::new(TcpChannel::connect(addr).await.unwrap());
        assert_eq!(client.double(number(1)).await.unwrap().value, 2);
        server.shutdown().await.unwrap();

        let err = client.double(number(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);

        let again = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(Arc::default())))
            .bind(addr)
            .await
            .expect("rebind the same port")
            .spawn()
            .unwrap();
        // The channel fails fast until its backoff (about a second) has passed, then
        // connects again.
        let started = Instant::now();
        let reply = loop {
            match client.double(number(3)).await {
                Ok(reply) => break reply,
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable);
                    assert!(started.elapsed() < Duration::from_secs(3), "{status}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        assert_eq!(reply.value, 6);
        again.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_holds_while_connecting_to_a_peer_that_never_answers() {
    bounded(async {
        // A listener whose backlog is full and that never accepts: connects to it hang.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = socket2::Socket::from(listener);
        socket.listen(0).unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            let stream =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            stream.set_nonblocking(true).unwrap();
            let _ = stream.connect(&addr.into());
            fillers.push(stream);
        }
        let client = CalculatorClient::new(
            TcpChannel::builder(addr)
                .connect_timeout(Duration::from_secs(30))
                .connect_lazy(),
        );
        for _ in 0..2 {
            let started = Instant::now();
            let err = client
                .double(number(1))
                .timeout(Duration::from_millis(200))
                .await
                .unwrap_err();
            let took = started.elapsed();
            assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
            assert!(took < Duration::from_millis(1500), "took {took:?}");
        }

        // Without a deadline, the connect timeout alone ends the attempt, for either transport.
        let tcp = TcpChannel::builder(addr)
            .connect_timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap_err();
        let grpc = rust_rpc::grpc::GrpcChannel::builder(addr)
            .connect_timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap_err();
        for err in [tcp, grpc] {
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        }
        let client = CalculatorClient::new(
            TcpChannel::builder(addr)
                .connect_timeout(Duration::from_millis(200))
                .connect_lazy(),
        );
        let started = Instant::now();
        let err = client.double(number(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(started.elapsed() < Duration::from_millis(1500));
        drop(socket);
    })
    .await;
}

#[tokio::test]
async fn a_peer_of_another_protocol_is_named() {
    bounded(async {
        // An HTTP/2 server opens with a SETTINGS frame; an HTTP/1 one answers with a status line.
        for (greeting, expected) in [
            (
                &[0u8, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100][..],
                "HTTP/2",
            ),
            (b"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP/1"),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let greeting = greeting.to_vec();
            let peer = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.write_all(&greeting).await.unwrap();
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut sink))
                    .await;
            });
            let err = TcpChannel::connect(addr).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert!(err.to_string().contains("does not speak rust-rpc"), "{err}");
            peer.abort();
        }

        // An HTTP/1 server that, like most, answers only once it has read a request's header
        // lines: the preface ends with an empty line, so it answers at once.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let http = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            while !seen.ends_with(b"\r\n\r\n") {
                if stream.read_exact(&mut byte).await.is_err() {
                    return;
                }
                seen.push(byte[0]);
            }
            let _ = stream
                .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let started = Instant::now();
        let err = TcpChannel::connect(addr).await.unwrap_err();
        assert!(err.to_string().contains("HTTP/1"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        http.abort();

        // A peer that sends back every byte it gets is not taken for a server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let _ = tokio::io::copy(&mut read, &mut write).await;
        });
        let err = TcpChannel::connect(addr).await.unwrap_err();
        assert!(err.to_string().contains("not a rust-rpc server"), "{err}");
        echo.abort();
    })
    .await;
}

#[tokio::test]
async fn a_half_finished_handshake_is_closed_and_a_dropped_handle_keeps_serving() {
    bounded(async {
        let mut limits = Limits::default();
        limits.handshake_timeout = Duration::from_millis(200);
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(Arc::default())))
            .limits(limits)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        // Dropped at once: the server goes on serving.
        drop(server.spawn().unwrap());
        // The preface and nothing more: closed at the handshake timeout, not left open.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(PREFACE).await.unwrap();
        let started = Instant::now();
        assert_closed(&mut stream).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let client = CalculatorClient::new(TcpChannel::connect(addr).await.unwrap());
        assert_eq!(client.double(number(3)).await.unwrap().value, 6);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_calls_in_flight_finish() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let client = CalculatorClient::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let (reply, shut) = tokio::join!(client.double(number(-4)), async {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_fails_its_own_call_and_no_other() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(events.clone())))
            .add_service(EchoServiceServer::new(Echo))
            .max_frame_size(1024)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let channel = TcpChannel::connect_with_limits(
            server.local_addr(),
            Limits::default().with_max_frame_size(1024),
        )
        .await
        .unwrap();
        let echo = EchoServiceClient::new(channel.clone());
        let calculator = CalculatorClient::new(channel.clone());
        // An unrelated slow call shares the connection throughout.
        let slow = tokio::spawn({
            let calculator = calculator.clone();
            async move { calculator.double(number(-4)).await }
        });
        wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;

        // (a) A request whose message is just over the limit.
        let big = echo::EchoRequest {
            message: "x".repeat(1030),
            ..Default::default()
        };
        let err = echo.echo(big).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

        // (b) A 5,000-byte message in a client stream: checked before it is sent.
        let mut unknown = rust_rpc::UnknownFields::default();
        let mut field = vec![0x12, 0x88, 0x27];
        field.extend(std::iter::repeat_n(b'y', 5000));
        unknown.extend_raw(&field);
        let huge = Number {
            value: 1,
            unknown_fields: unknown,
        };
        let read_before = events.read.load(Ordering::SeqCst);
        let err = calculator
            .sum(vec![number(1), huge, number(2)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
        assert!(err.message().contains("over the limit"), "{err}");
        // The server saw at most the first number, never the huge one.
        assert!(events.read.load(Ordering::SeqCst) - read_before <= 1);

        // (c) A 5,000-byte response to a client whose limit is 1 KiB, from a server that
        // allows more.
        let roomy = Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let small = EchoServiceClient::new(
            TcpChannel::connect_with_limits(
                roomy.local_addr(),
                Limits::default().with_max_frame_size(1024),
            )
            .await
            .unwrap(),
        );
        let err = small
            .echo(echo::EchoRequest {
                message: "z".repeat(1020),
                ..Default::default()
            })
            .await;
        // The request (1,023 bytes) fits; its echo (1,033 bytes) does not.
        assert_eq!(err.unwrap_err().code(), Code::ResourceExhausted);
        let ok = small
            .echo(echo::EchoRequest {
                message: "small".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(ok.unwrap().message, "small, welcome!");

        // Calls after the oversize ones, and the slow one in flight, all went through.
        let ok = echo
            .echo(echo::EchoRequest {
                message: "small".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(ok.unwrap().message, "small, welcome!");
        assert_eq!(slow.await.unwrap().unwrap().value, -8);
        roomy.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_sends_an_oversize_frame_is_answered_on_that_call() {
    bounded(async {
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(Arc::default())))
            .max_frame_size(1024)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let mut raw = RawClient::connect(server.local_addr()).await;
        // A call whose request the client (ignoring the server's SETTINGS) makes too large.
        raw.call_without_request(5, "services.Calculator", "Sum")
            .await;
        raw.message(5, &vec![0x08; 4096], false).await;
        let status = raw.status_of(5).await;
        assert_eq!(status.code, Code::ResourceExhausted as u32, "{status:?}");
        // The connection goes on.
        raw.call(6, "services.Calculator", "Double", &encode(&number(21)))
            .await;
        let status = raw.status_of(6).await;
        assert_eq!(status.code, 0, "{status:?}");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn interceptors_see_every_call_on_both_sides() {
    use rust_rpc::interceptor::{ClientInterceptor, Intercepted, ServerInterceptor};
    use rust_rpc::MethodDescriptor;
    use std::sync::Mutex;

    /// Requires a bearer token and records how calls ended.
    #[derive(Clone, Default)]
    struct Auth(Arc<Mutex<Vec<String>>>);
    impl ServerInterceptor for Auth {
        fn on_call(&self, _: &'static MethodDescriptor, md: &mut Metadata) -> Result<(), Status> {
            match md.get("authorization") {
                Some("Bearer secret") => Ok(()),
                _ => Err(Status::unauthenticated("no valid token")),
            }
        }
        fn on_end(&self, method: &'static MethodDescriptor, status: &Result<(), Status>) {
            let code = status.as_ref().err().map_or(Code::Ok, Status::code);
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {code}", method.name));
        }
    }
    struct Token;
    impl ClientInterceptor for Token {
        fn on_call(&self, _: &'static MethodDescriptor, md: &mut Metadata) -> Result<(), Status> {
            md.insert("authorization", "Bearer secret");
            Ok(())
        }
    }

    bounded(async {
        let auth = Auth::default();
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc::new(Arc::default())))
            .interceptor(auth.clone())
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn()
            .unwrap();
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        let bare = CalculatorClient::new(channel.clone());
        let err = bare.double(number(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let with_token = CalculatorClient::new(Intercepted::new(channel).with(Token));
        assert_eq!(with_token.double(number(2)).await.unwrap().value, 4);
        let mut countdown = with_token.countdown(number(1)).await.unwrap();
        while countdown.message().await.unwrap().is_some() {}
        wait_for(|| auth.0.lock().unwrap().len() == 3).await;
        assert_eq!(
            *auth.0.lock().unwrap(),
            ["Double UNAUTHENTICATED", "Double OK", "Countdown OK"]
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_flight_finishes_during_shutdown_while_new_calls_are_refused() {
    bounded(async {
        let server = start(Arc::default()).await;
        let channel = TcpChannel::connect(server.local_addr()).await.unwrap();
        let client = CalculatorClient::new(channel.clone());
        let (sender, requests) = rust_rpc::stream::channel();
        let mut totals = client.running_total(requests).await.unwrap();
        sender.send(number(5)).await.unwrap();
        assert_eq!(totals.message().await.unwrap().unwrap().value, 5);
        let shutdown = tokio::spawn(server.shutdown());
        // Until the server has begun shutting down, a new call could still be accepted.
        let refused = loop {
            match client.double(number(1)).await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(status) => break status,
            }
        };
        assert_eq!(refused.code(), Code::Unavailable);
        sender.send(number(6)).await.unwrap();
        assert_eq!(totals.message().await.unwrap().unwrap().value, 11);
        drop(sender);
        assert!(totals.message().await.unwrap().is_none());
        shutdown.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_grace_period_does_not_wait_for_a_stuck_handler() {
    bounded(async {
        let events = Arc::new(Events::default());
        let server = start(events.clone()).await;
        let client = CalculatorClient::new(TcpChannel::connect(server.local_addr()).await.unwrap());
        let (reply, shut) = tokio::join!(client.double(number(-6)), async {
            wait_for(|| events.started.load(Ordering::SeqCst) == 1).await;
            let started = Instant::now();
            let result = server.shutdown_timeout(Duration::from_millis(100)).await;
            (result, started.elapsed())
        });
        let (result, took) = shut;
        result.unwrap();
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
        assert_eq!(
            reply.unwrap_err().code(),
            Code::Unavailable,
            "the stuck call's connection was closed"
        );
        // The stuck handler was dropped, not left running.
        wait_for(|| events.finished.load(Ordering::SeqCst) == 1).await;
    })
    .await;
}

/// A status with details for programs reaches the client whole, over every transport.
#[tokio::test]
async fn status_details_cross_the_wire() {
    bounded(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, Arc::default()).await);
            let err = client.double(number(-7)).await.unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition, "{transport:?}");
            assert_eq!(err.message(), "with details", "{transport:?}");
            assert_eq!(&err.details()[..], b"\x08\x09details\xff", "{transport:?}");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

/// tonic's target form (`http://host:port`) is the first thing a tonic user tries: the error
/// says what a target is, on both transports, instead of a failed name lookup.
#[tokio::test]
async fn a_target_with_a_scheme_is_told_what_a_target_is() {
    let tcp = TcpChannel::connect("http://127.0.0.1:50054")
        .await
        .unwrap_err();
    let grpc = rust_rpc::grpc::GrpcChannel::connect("http://127.0.0.1:50054")
        .await
        .unwrap_err();
    for error in [tcp.to_string(), grpc.to_string()] {
        assert!(
            error.contains("host:port, without a scheme ('127.0.0.1:50054')"),
            "{error}"
        );
    }
}

/// A port in use is named in the error, on both transports.
#[tokio::test]
async fn binding_a_port_in_use_names_the_address() {
    let taken = Server::builder().bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let tcp = Server::builder()
        .bind(addr)
        .await
        .err()
        .expect("the port is taken");
    let grpc = rust_rpc::grpc::Server::builder()
        .bind(addr)
        .await
        .err()
        .expect("the port is taken");
    for error in [tcp, grpc] {
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot listen on {addr}: ")),
            "{error}"
        );
    }
}
