//! Channels over many servers (`rust_rpc::balance`), with real servers on loopback: each
//! policy spreads calls as it says, calls that cannot reach a server go to another, servers
//! that leave or join the resolver's set are followed, on both transports.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rust_rpc::balance::{Address, BalancedChannel, Policy, Resolver, RetryPolicy, Transport};
use rust_rpc::tcp::ServerHandle;
use rust_rpc::Code;
use rust_rpc_testdata::ours::services::{CalculatorClient, CalculatorServer};

/// A server of its own, whose handlers count into `events`.
async fn server(grpc: bool, events: Arc<Events>) -> ServerHandle {
    serve_alone(grpc, CalculatorServer::new(Calc::new(events))).await
}

async fn servers(n: usize, grpc: bool) -> (Vec<ServerHandle>, Vec<Arc<Events>>) {
    let mut handles = Vec::new();
    let mut events = Vec::new();
    for _ in 0..n {
        let e = Arc::new(Events::default());
        handles.push(server(grpc, e.clone()).await);
        events.push(e);
    }
    (handles, events)
}

fn counts(events: &[Arc<Events>]) -> Vec<usize> {
    events
        .iter()
        .map(|e| e.started.load(Ordering::SeqCst))
        .collect()
}

/// A port with nothing listening on it.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn calls(client: &CalculatorClient<BalancedChannel>, n: usize) {
    for i in 0..n as i64 {
        assert_eq!(client.double(number(i)).await.unwrap().value, 2 * i);
    }
}

#[tokio::test]
async fn round_robin_takes_each_server_in_turn_on_both_transports() {
    bounded(async {
        for (grpc, transport) in [(false, Transport::Tcp), (true, Transport::Grpc)] {
            let (handles, events) = servers(3, grpc).await;
            let list: Vec<String> = handles.iter().map(|h| h.local_addr().to_string()).collect();
            let channel = BalancedChannel::builder(&format!("static:///{}", list.join(",")))
                .unwrap()
                .policy(Policy::RoundRobin)
                .transport(transport)
                .build();
            calls(&CalculatorClient::new(channel), 300).await;
            assert_eq!(counts(&events), [100, 100, 100], "grpc: {grpc}");
            for handle in handles {
                handle.shutdown().await.unwrap();
            }
        }
    })
    .await;
}

#[tokio::test]
async fn weights_share_the_calls_out() {
    bounded(async {
        let (handles, events) = servers(3, false).await;
        let addresses = handles
            .iter()
            .zip([1, 1, 2])
            .map(|(h, w)| Address::new(h.local_addr().to_string()).with_weight(w))
            .collect();
        let resolver = Arc::new(rust_rpc::balance::StaticResolver(addresses));
        let channel = BalancedChannel::with_resolver(resolver)
            .policy(Policy::Weighted)
            .build();
        calls(&CalculatorClient::new(channel), 4000).await;
        let shares: Vec<f64> = counts(&events).iter().map(|&c| c as f64 / 4000.0).collect();
        for (share, expected) in shares.iter().zip([0.25, 0.25, 0.5]) {
            assert!((share - expected).abs() < 0.05, "shares {shares:?}");
        }
        for handle in handles {
            handle.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn weight_zero_takes_no_call_while_another_has_weight() {
    bounded(async {
        let (handles, events) = servers(3, false).await;
        let (set, receiver) = tokio::sync::watch::channel(vec![
            Address::new(handles[0].local_addr().to_string()).with_weight(0),
            Address::new(handles[1].local_addr().to_string()).with_weight(0),
            Address::new(handles[2].local_addr().to_string()).with_weight(1),
        ]);
        let client = CalculatorClient::new(
            BalancedChannel::with_resolver(Arc::new(Manual(receiver)))
                .policy(Policy::Weighted)
                .build(),
        );
        // Many at once from the start, while connections are still being made.
        let mut tasks = Vec::new();
        for i in 0..64 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                client.double(number(i)).await.unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(counts(&events), [0, 0, 64]);
        // All of weight 0: they share.
        set.send(vec![
            Address::new(handles[0].local_addr().to_string()).with_weight(0),
            Address::new(handles[1].local_addr().to_string()).with_weight(0),
        ])
        .unwrap();
        calls(&client, 40).await;
        let shared = counts(&events);
        assert!(shared[0] > 5 && shared[1] > 5, "{shared:?}");
    })
    .await;
}

#[tokio::test]
async fn pick_first_fails_over_and_no_call_is_lost() {
    bounded(async {
        let (mut handles, events) = servers(2, false).await;
        let target = format!(
            "static:///{},{},{}",
            closed_port(),
            handles[0].local_addr(),
            handles[1].local_addr()
        );
        let client = CalculatorClient::new(BalancedChannel::builder(&target).unwrap().build());
        // The first endpoint refuses connections: every call goes to the second.
        calls(&client, 20).await;
        assert_eq!(counts(&events), [20, 0]);
        // The second goes away: calls go to the third at once; a call that starts while its
        // connection's GOAWAY is still unread is refused unprocessed and sent to the third.
        let second = handles.remove(0);
        second.shutdown().await.unwrap();
        calls(&client, 20).await;
        assert_eq!(counts(&events), [20, 20]);
        handles.remove(0).shutdown().await.unwrap();
        // None left: the call fails with UNAVAILABLE, not a hang.
        let err = client.double(number(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
    })
    .await;
}

#[tokio::test]
async fn least_loaded_keeps_off_a_busy_server() {
    bounded(async {
        let (handles, events) = servers(2, false).await;
        let list: Vec<String> = handles.iter().map(|h| h.local_addr().to_string()).collect();
        let channel = BalancedChannel::builder(&format!("static:///{}", list.join(",")))
            .unwrap()
            .policy(Policy::LeastLoaded)
            .build();
        let client = CalculatorClient::new(channel);
        // A call that waits for its end holds one server; every later call goes to the other,
        // which has fewer in flight (round robin would alternate).
        let waiting = {
            let client = client.clone();
            tokio::spawn(async move { client.double(number(-2)).await })
        };
        wait_for(|| counts(&events).iter().sum::<usize>() == 1).await;
        let busy = counts(&events).iter().position(|&c| c == 1).unwrap();
        calls(&client, 6).await;
        let mut expected = [6, 6];
        expected[busy] = 1;
        assert_eq!(counts(&events), expected);
        waiting.abort();
        for handle in handles {
            handle
                .shutdown_timeout(Duration::from_millis(100))
                .await
                .unwrap();
        }
    })
    .await;
}

/// A resolver the test drives by hand.
struct Manual(tokio::sync::watch::Receiver<Vec<Address>>);

impl Resolver for Manual {
    fn resolve(&self) -> tokio::sync::watch::Receiver<Vec<Address>> {
        self.0.clone()
    }
}

/// A fixed set that counts the channel's requests for a fresh one.
struct Counting(Vec<Address>, Arc<std::sync::atomic::AtomicUsize>);

impl Resolver for Counting {
    fn resolve(&self) -> tokio::sync::watch::Receiver<Vec<Address>> {
        tokio::sync::watch::channel(self.0.clone()).1
    }

    fn refresh(&self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_endpoint_that_cannot_be_connected_asks_the_resolver_again() {
    bounded(async {
        let (handles, events) = servers(1, false).await;
        let refreshed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let resolver = Counting(
            vec![
                Address::new(closed_port()),
                Address::new(handles[0].local_addr().to_string()),
            ],
            refreshed.clone(),
        );
        let client =
            CalculatorClient::new(BalancedChannel::with_resolver(Arc::new(resolver)).build());
        calls(&client, 3).await;
        assert_eq!(counts(&events), [3]);
        // The closed port was tried first and failed; later calls skip it while it backs off.
        assert_eq!(refreshed.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn endpoints_follow_the_resolver() {
    bounded(async {
        let (handles, events) = servers(2, false).await;
        let (set, receiver) =
            tokio::sync::watch::channel(vec![Address::new(handles[0].local_addr().to_string())]);
        let channel = BalancedChannel::with_resolver(Arc::new(Manual(receiver)))
            .policy(Policy::RoundRobin)
            .build();
        let client = CalculatorClient::new(channel.clone());
        calls(&client, 10).await;
        assert_eq!(counts(&events), [10, 0]);
        // The second server joins.
        set.send(vec![
            Address::new(handles[0].local_addr().to_string()),
            Address::new(handles[1].local_addr().to_string()),
        ])
        .unwrap();
        calls(&client, 10).await;
        assert_eq!(counts(&events), [15, 5]);
        // The first leaves.
        set.send(vec![Address::new(handles[1].local_addr().to_string())])
            .unwrap();
        calls(&client, 10).await;
        assert_eq!(counts(&events), [15, 15]);
        assert_eq!(channel.addresses().len(), 1);
        for handle in handles {
            handle.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn dns_targets_resolve_and_bad_targets_are_refused() {
    bounded(async {
        let (handles, events) = servers(1, true).await;
        let target = format!("dns:///localhost:{}", handles[0].local_addr().port());
        let channel = BalancedChannel::builder(&target)
            .unwrap()
            .transport(Transport::Grpc)
            .build();
        let client = CalculatorClient::new(channel);
        // The first call waits for DNS's first answer.
        calls(&client, 5).await;
        assert_eq!(counts(&events)[0], 5);
        // A name that does not resolve fails its calls, without waiting for another answer.
        let nowhere = CalculatorClient::new(
            BalancedChannel::builder("dns:///no-such-host.invalid:1")
                .unwrap()
                .build(),
        );
        for _ in 0..2 {
            let err = nowhere.double(number(1)).await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
        }
        for bad in [
            "static:///",
            "dns:///",
            "dns:///localhost",
            "etcd://x",
            "etcd:///services/echo",
            "etcd://host/services/echo",
            "etcd://host:1/",
            "unknown://x:1",
            "",
        ] {
            assert!(BalancedChannel::builder(bad).is_err(), "{bad:?}");
        }
        handles
            .into_iter()
            .next()
            .unwrap()
            .shutdown()
            .await
            .unwrap();
    })
    .await;
}

/// A peer that never answers (a listener whose backlog is full) holds only the call that tried
/// it first: while it is still connecting, later calls go to the endpoint that answers.
#[tokio::test]
async fn an_endpoint_that_never_answers_holds_up_one_call_at_most() {
    bounded(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hole = listener.local_addr().unwrap();
        let socket = socket2::Socket::from(listener);
        socket.listen(0).unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            let stream =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            stream.set_nonblocking(true).unwrap();
            let _ = stream.connect(&hole.into());
            fillers.push(stream);
        }
        let (handles, events) = servers(1, false).await;
        let target = format!("static:///{hole},{}", handles[0].local_addr());
        let client = CalculatorClient::new(BalancedChannel::builder(&target).unwrap().build());
        let first = client
            .double(number(1))
            .timeout(Duration::from_millis(300))
            .await;
        if let Err(err) = &first {
            assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
        }
        for i in 0..10 {
            let n = client
                .double(number(i))
                .timeout(Duration::from_secs(2))
                .await
                .unwrap();
            assert_eq!(n.value, 2 * i);
        }
        assert!(counts(&events)[0] >= 10);
        drop(socket);
        handles
            .into_iter()
            .next()
            .unwrap()
            .shutdown()
            .await
            .unwrap();
    })
    .await;
}

/// A calculator that fails `Double` and `Countdown` with `UNAVAILABLE` (after `delay`) when
/// `failing`, as a server that is going away does, and counts the calls it got.
struct Flaky {
    failing: bool,
    delay: Duration,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl rust_rpc_testdata::ours::services::Calculator for Flaky {
    async fn double(
        &self,
        _ctrl: &mut rust_rpc::RpcController,
        request: rust_rpc_testdata::ours::services::Number,
    ) -> Result<rust_rpc_testdata::ours::services::Number, rust_rpc::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.failing {
            return Err(rust_rpc::Status::unavailable("going away"));
        }
        Ok(number(request.value * 2))
    }

    async fn countdown(
        &self,
        _ctrl: &mut rust_rpc::RpcController,
        request: rust_rpc_testdata::ours::services::Number,
        responses: rust_rpc::StreamSender<rust_rpc_testdata::ours::services::Number>,
    ) -> Result<(), rust_rpc::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing {
            return Err(rust_rpc::Status::unavailable("going away"));
        }
        for n in (0..request.value).rev() {
            responses.send(&number(n)).await?;
        }
        Ok(())
    }
}

async fn flaky(
    grpc: bool,
    failing: bool,
    delay: Duration,
) -> (ServerHandle, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = Flaky {
        failing,
        delay,
        calls: calls.clone(),
    };
    (
        serve_alone(grpc, CalculatorServer::new(service)).await,
        calls,
    )
}

#[tokio::test]
async fn a_retryable_method_moves_to_another_server_and_others_are_not_retried() {
    bounded(async {
        for (grpc, transport) in [(false, Transport::Tcp), (true, Transport::Grpc)] {
            let (failing, failing_calls) = flaky(grpc, true, Duration::ZERO).await;
            let (healthy, healthy_calls) = flaky(grpc, false, Duration::ZERO).await;
            // pick_first puts every first attempt on the failing server.
            let target = format!(
                "static:///{},{}",
                failing.local_addr(),
                healthy.local_addr()
            );
            let policy = RetryPolicy::new(3, [Code::Unavailable]).backoff(
                Duration::from_millis(1),
                Duration::from_millis(10),
                2.0,
            );
            let channel = BalancedChannel::builder(&target)
                .unwrap()
                .transport(transport)
                .retry("services.Calculator/Double", policy)
                .build();
            let client = CalculatorClient::new(channel);
            assert_eq!(client.double(number(7)).await.unwrap().value, 14);
            assert_eq!(failing_calls.load(Ordering::SeqCst), 1);
            assert_eq!(healthy_calls.load(Ordering::SeqCst), 1);

            // Countdown has no policy: its failure is the call's, and it is sent once.
            let mut stream = client.countdown(number(3)).await.unwrap();
            let err = stream.message().await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
            assert_eq!(failing_calls.load(Ordering::SeqCst), 2);
            assert_eq!(healthy_calls.load(Ordering::SeqCst), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn a_streaming_method_is_retried_until_its_first_response() {
    bounded(async {
        let (failing, failing_calls) = flaky(true, true, Duration::ZERO).await;
        let (healthy, healthy_calls) = flaky(true, false, Duration::ZERO).await;
        let target = format!(
            "static:///{},{}",
            failing.local_addr(),
            healthy.local_addr()
        );
        let channel = BalancedChannel::builder(&target)
            .unwrap()
            .transport(Transport::Grpc)
            // The whole service.
            .retry(
                "services.Calculator",
                RetryPolicy::new(2, [Code::Unavailable]).backoff(
                    Duration::from_millis(1),
                    Duration::from_millis(1),
                    1.0,
                ),
            )
            .build();
        let client = CalculatorClient::new(channel);
        let mut stream = client.countdown(number(3)).await.unwrap();
        let mut got = Vec::new();
        while let Some(n) = stream.message().await.unwrap() {
            got.push(n.value);
        }
        assert_eq!(got, [2, 1, 0]);
        assert_eq!(failing_calls.load(Ordering::SeqCst), 1);
        assert_eq!(healthy_calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn a_deadline_spans_every_attempt() {
    bounded(async {
        // Both servers fail after 150 ms. Attempts with a deadline of their own would run
        // all five (about 750 ms) and end UNAVAILABLE; the call's one deadline of 400 ms ends
        // it in the third.
        let (a, a_calls) = flaky(false, true, Duration::from_millis(150)).await;
        let (b, b_calls) = flaky(false, true, Duration::from_millis(150)).await;
        let target = format!("static:///{},{}", a.local_addr(), b.local_addr());
        let channel = BalancedChannel::builder(&target)
            .unwrap()
            .policy(Policy::RoundRobin)
            .retry(
                "services.Calculator/Double",
                RetryPolicy::new(5, [Code::Unavailable]).backoff(
                    Duration::from_millis(50),
                    Duration::from_millis(50),
                    1.0,
                ),
            )
            .build();
        let client = CalculatorClient::new(channel);
        let started = std::time::Instant::now();
        let err = client
            .double(number(1))
            .timeout(Duration::from_millis(400))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
        assert!(
            elapsed >= Duration::from_millis(390) && elapsed < Duration::from_millis(700),
            "{elapsed:?}"
        );
        let attempts = a_calls.load(Ordering::SeqCst) + b_calls.load(Ordering::SeqCst);
        assert!((2..=3).contains(&attempts), "{attempts} attempts");
    })
    .await;
}

/// A TCP-protocol peer that refuses every call unprocessed: GOAWAY with last call id 0 as soon
/// as a call starts, as a server that began shutting down as the call was on its way does.
async fn refusing_tcp_peer() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut preface = [0u8; 12];
                if stream.read_exact(&mut preface).await.is_err() {
                    return;
                }
                stream.write_all(PREFACE).await.unwrap();
                let mut raw = RawClient { stream };
                // A server's SETTINGS: `server` (field 4) set.
                raw.frame(frame::SETTINGS, 0, 0, &[0x20, 0x01]).await;
                while let Some((kind, _, _)) = raw.read_frame().await {
                    if kind == frame::HEADERS {
                        let goaway = rust_rpc::tcp::wire::GoAway {
                            last_call_id: 0,
                            message: "shutting down".into(),
                            ..Default::default()
                        };
                        raw.frame(8, 0, 0, &encode(&goaway)).await;
                    }
                }
            });
        }
    });
    addr
}

/// An HTTP/2 peer that refuses every stream with REFUSED_STREAM.
async fn refusing_grpc_peer() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let respond: &mut h2::server::SendResponse<bytes::Bytes> = &mut respond;
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_call_refused_unprocessed_goes_to_another_server() {
    bounded(async {
        for (grpc, transport) in [(false, Transport::Tcp), (true, Transport::Grpc)] {
            let refusing = if grpc {
                refusing_grpc_peer().await
            } else {
                refusing_tcp_peer().await
            };
            let (healthy, events) = servers(1, grpc).await;
            // pick_first sends every call to the refusing peer first.
            let target = format!("static:///{refusing},{}", healthy[0].local_addr());
            let channel = BalancedChannel::builder(&target)
                .unwrap()
                .transport(transport)
                .build();
            let client = CalculatorClient::new(channel);
            for i in 0..5 {
                let reply = client
                    .double(number(i))
                    .timeout(Duration::from_secs(5))
                    .await;
                assert_eq!(reply.unwrap().value, 2 * i, "grpc: {grpc}");
            }
            // A server-streaming call too.
            let mut stream = client.countdown(number(2)).await.unwrap();
            let mut got = Vec::new();
            while let Some(n) = stream.message().await.unwrap() {
                got.push(n.value);
            }
            assert_eq!(got, [2, 1, 0]);
            assert_eq!(counts(&events), [6], "grpc: {grpc}");
        }
    })
    .await;
}
