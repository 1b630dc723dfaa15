//! Calls from plain threads through `rust_rpc::blocking`: a server on its own tokio runtime,
//! clients on threads with none, every call shape, on both network transports.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rust_rpc::blocking::Runtime;
use rust_rpc::Code;
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer};

/// Runs a server for the test's length on a runtime of its own, as another process would.
fn server(grpc: bool) -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Runtime::new().expect("a server runtime");
    let handle = runtime.block_on(serve_alone(
        grpc,
        CalculatorServer::new(Calc::new(Arc::new(Events::default()))),
    ));
    let addr = handle.local_addr().to_string();
    // Detached: it serves until its runtime is dropped at the end of the test.
    drop(handle);
    (runtime, addr)
}

#[test]
fn plain_threads_make_every_kind_of_call_on_one_shared_runtime() {
    for grpc in [false, true] {
        let (_server, addr) = server(grpc);
        let runtime = Runtime::new().expect("a blocking runtime");
        let channel: Arc<dyn rust_rpc::RpcChannel> = if grpc {
            Arc::new(
                runtime
                    .wait(rust_rpc::grpc::GrpcChannel::connect(addr.as_str()))
                    .expect("connect"),
            )
        } else {
            Arc::new(
                runtime
                    .wait(rust_rpc::tcp::TcpChannel::connect(addr.as_str()))
                    .expect("connect"),
            )
        };
        let client = CalculatorClient::new(channel);
        // Four threads share the runtime and the connection.
        std::thread::scope(|scope| {
            for t in 0..4i64 {
                let (runtime, client) = (runtime.clone(), client.clone());
                scope.spawn(move || {
                    for i in 0..50 {
                        let n = t * 1000 + i;
                        let reply = runtime.wait(client.double(number(n))).expect("double");
                        assert_eq!(reply.value, 2 * n);
                    }
                });
            }
        });
        // A response stream, one wait per message.
        let mut stream = runtime
            .wait(client.countdown(number(3)))
            .expect("countdown");
        let mut got = Vec::new();
        while let Some(n) = runtime.wait(stream.message()).expect("a message") {
            got.push(n.value);
        }
        assert_eq!(got, [3, 2, 1, 0]);
        // A request stream from an iterator.
        let sum = runtime.wait(client.sum((1..=4).map(number))).expect("sum");
        assert_eq!(sum.value, 10);
        // Deadlines hold: the handler for -2 waits for its cancellation.
        let err = runtime
            .wait(
                client
                    .double(number(-2))
                    .timeout(Duration::from_millis(100)),
            )
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    }
}

#[test]
#[should_panic(expected = "runtime")]
fn waiting_inside_an_async_task_is_refused_loudly() {
    let runtime = Runtime::new().expect("a blocking runtime");
    let other = tokio::runtime::Runtime::new().expect("a runtime");
    other.block_on(async {
        runtime.wait(async {});
    });
}
