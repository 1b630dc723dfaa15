//! Echo servers that list themselves in a real etcd (Debian's `etcd-server`, unpacked by
//! `testdata/etcd/fetch.sh`), started by each test on 127.0.0.1 with free ports and a data
//! directory of its own, and clients that find them there. Every wait is bounded; etcd and the
//! servers are killed when a test ends, however it ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::proto::echo::{EchoRequest, EchoServiceClient};
use rust_rpc::balance::{BalancedChannel, Policy};
use rust_rpc::etcd::Registry;

/// How long etcd or a server may take to start, or a registry change to be seen.
const LIMIT: Duration = Duration::from_secs(30);
const SERVICE: &str = "services/echo";

/// The etcd binary: `RUST_RPC_ETCD`, else where `testdata/etcd/fetch.sh` unpacks it, else
/// `etcd` on the PATH.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RUST_RPC_ETCD") {
        return path.into();
    }
    let cache = std::env::var_os("RUST_RPC_ETCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/rust-rpc-etcd")
        });
    let unpacked = cache.join("usr/bin/etcd");
    if unpacked.is_file() {
        return unpacked;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!("no etcd: run testdata/etcd/fetch.sh (it unpacks Debian's etcd-server)")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One etcd member on loopback; killed, and its data removed, when dropped.
struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    async fn start() -> Etcd {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rust-rpc-etcd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd's directory");
        let mut etcd = Etcd {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
        };
        etcd.run().await;
        etcd
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Starts the member (again, on the same ports and data) and waits until it answers.
    async fn run(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))
            .expect("etcd's log");
        let child = Command::new(etcd_binary())
            .args(["--name", "test", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let registry = Registry::new(&self.endpoint()).expect("a registry");
        let started = Instant::now();
        while registry.endpoints("probe").await.is_err() {
            assert!(
                started.elapsed() < LIMIT,
                "etcd did not answer within {LIMIT:?}: {}",
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An echo-server process listed in etcd; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts `echo-server` with `args` and waits until it says it is registered.
    fn start(etcd: &Etcd, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
            .args(["--register", &format!("etcd://{}", etcd.endpoint())])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start echo-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut addr = None;
        let deadline = Instant::now() + LIMIT;
        loop {
            let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("echo-server {args:?} did not register within {LIMIT:?}");
                }
            };
            if let Some(rest) = line.strip_prefix("listening on ") {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.starts_with("registered under ") {
                break;
            }
        }
        Server {
            child,
            addr: addr.expect("a listening line before the registered one"),
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: a graceful shutdown. Waits for the process to end.
    fn sigterm(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let started = Instant::now();
        while self.child.try_wait().expect("poll echo-server").is_none() {
            assert!(started.elapsed() < LIMIT, "echo-server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Waits until the registry lists exactly `expected` (in any order) under the service.
async fn until_listed(registry: &Registry, expected: &[&str], within: Duration) {
    let started = Instant::now();
    let mut expected: Vec<&str> = expected.to_vec();
    expected.sort_unstable();
    loop {
        let listed = registry.endpoints(SERVICE).await.unwrap_or_default();
        let mut listed: Vec<&str> = listed.iter().map(|a| a.addr.as_str()).collect();
        listed.sort_unstable();
        if listed == expected {
            return;
        }
        assert!(
            started.elapsed() < within,
            "etcd lists {listed:?}, not {expected:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One Echo call's outcome: when it started, and who answered (or the error).
type Outcome = (Instant, Result<String, String>);

/// Echo calls through `client` from `workers` tasks until `stop` is set.
fn run_calls(
    client: Arc<EchoServiceClient<BalancedChannel>>,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Vec<Outcome>>>, Vec<tokio::task::JoinHandle<()>>) {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..workers)
        .map(|_| {
            let (client, stop, outcomes) = (client.clone(), stop.clone(), outcomes.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = client
                        .echo(EchoRequest::default())
                        .timeout(Duration::from_secs(5))
                        .await
                        .map(|r| r.served_by)
                        .map_err(|s| s.to_string());
                    outcomes.lock().unwrap().push((started, result));
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    (outcomes, tasks)
}

fn balanced(target: &str, policy: Policy) -> Arc<EchoServiceClient<BalancedChannel>> {
    Arc::new(EchoServiceClient::new(
        BalancedChannel::builder(target)
            .expect("a target")
            .policy(policy)
            .build(),
    ))
}

/// Answered calls per endpoint, among `outcomes` that started after `from`.
fn answered_by(outcomes: &[Outcome], from: Instant, addr: &str) -> usize {
    outcomes
        .iter()
        .filter(|(started, result)| *started >= from && result.as_deref() == Ok(addr))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_from_the_registry_share_the_calls() {
    let etcd = Etcd::start().await;
    let servers: Vec<Server> = [("1", "tcp"), ("1", "grpc"), ("2", "tcp")]
        .iter()
        .map(|(weight, transport)| {
            Server::start(
                &etcd,
                &[
                    "--addr",
                    "127.0.0.1:0",
                    "--weight",
                    weight,
                    "--transport",
                    transport,
                ],
            )
        })
        .collect();
    // The client's own transport is TCP: the gRPC server is reached over gRPC because its
    // entry says so.
    let output = Command::new(env!("CARGO_BIN_EXE_echo-client"))
        .args(["--target", &format!("etcd://{}/{SERVICE}", etcd.endpoint())])
        .args([
            "--policy",
            "weighted",
            "--calls",
            "4000",
            "--concurrency",
            "8",
        ])
        .output()
        .expect("run echo-client");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"ok=4000 failed=0"), "{out}");
    for (server, share) in servers.iter().zip([25.0, 25.0, 50.0]) {
        let count: f64 = lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{} ", server.addr)))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count for {} in {out}", server.addr));
        let percent = count / 40.0;
        assert!(
            (percent - share).abs() <= 5.0,
            "{} took {percent}% of the calls, not {share}% within 5 points:\n{out}",
            server.addr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_costs_only_its_calls_in_flight_and_comes_back_when_restarted() {
    let etcd = Etcd::start().await;
    let registry = Registry::new(&etcd.endpoint()).expect("a registry");
    let args = ["--addr", "127.0.0.1:0", "--transport", "grpc", "--ttl", "2"];
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, &args)).collect();
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let client = balanced(
        &format!("etcd://{}/{SERVICE}", etcd.endpoint()),
        Policy::RoundRobin,
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    const WORKERS: usize = 4;
    let (outcomes, tasks) = run_calls(client, WORKERS, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    servers[1].sigkill();
    let killed = Instant::now();
    // The lease runs out (TTL 2 s): the entry goes, and the calls go on without it.
    let others = [addrs[0].as_str(), addrs[2].as_str()];
    until_listed(&registry, &others, Duration::from_secs(10)).await;
    let expired = Instant::now();

    // Restarted on the same address, it is listed again and gets calls again.
    let port_args = [
        "--addr",
        addrs[1].as_str(),
        "--transport",
        "grpc",
        "--ttl",
        "2",
    ];
    // Calls may reach it from the moment it registers, before `start` returns.
    let restarting = Instant::now();
    servers[1] = Server::start(&etcd, &port_args);
    let restarted = Instant::now();
    let back = loop {
        let seen = answered_by(&outcomes.lock().unwrap(), restarted, &addrs[1]);
        if seen > 0 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "the restarted server got no call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a worker");
    }

    let outcomes = outcomes.lock().unwrap();
    // The client learns of the death when its connection reads the reset: allow it a moment
    // on a loaded machine.
    let noticed = killed + Duration::from_millis(250);
    let failed: Vec<&Outcome> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    // Only calls in flight on the killed server when it died may fail: at most one per worker,
    // all of them started before the kill.
    assert!(
        failed.len() <= WORKERS,
        "{} calls failed: {failed:?}",
        failed.len()
    );
    for (started, result) in &failed {
        assert!(
            *started <= noticed,
            "a call that started {:?} after the kill failed: {result:?}",
            started.duration_since(killed)
        );
    }
    let before: usize = outcomes.iter().filter(|(s, _)| *s < killed).count();
    assert!(before > 30, "only {before} calls before the kill");
    for addr in &addrs {
        assert!(answered_by(&outcomes, Instant::now() - Duration::from_secs(3600), addr) > 0);
    }
    // Between the kill and the restart the others took every call.
    let meanwhile = outcomes
        .iter()
        .filter(|(s, r)| *s > noticed && *s < restarting && r.is_ok())
        .count();
    assert!(
        meanwhile > 30,
        "only {meanwhile} calls between kill and restart"
    );
    assert_eq!(
        answered_by(&outcomes, noticed, &addrs[1]) - answered_by(&outcomes, restarting, &addrs[1]),
        0
    );
    eprintln!(
        "kill to expiry {:?}, restart to first call {back:?}",
        expired.duration_since(killed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_deregisters_at_once_and_fails_no_call() {
    let etcd = Etcd::start().await;
    let registry = Registry::new(&etcd.endpoint()).expect("a registry");
    // A TTL of 60 s: only deregistration can remove the entry within the test.
    let args = ["--addr", "127.0.0.1:0", "--transport", "tcp", "--ttl", "60"];
    let mut servers: Vec<Server> = (0..2).map(|_| Server::start(&etcd, &args)).collect();
    let client = balanced(
        &format!("etcd://{}/{SERVICE}", etcd.endpoint()),
        Policy::RoundRobin,
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (outcomes, tasks) = run_calls(client, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let shutdown = Instant::now();
    servers[0].sigterm();
    until_listed(
        &registry,
        &[servers[1].addr.as_str()],
        Duration::from_secs(1),
    )
    .await;
    let gone = shutdown.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a worker");
    }
    let outcomes = outcomes.lock().unwrap();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let after = answered_by(&outcomes, shutdown, &servers[1].addr);
    assert!(after > 10, "only {after} calls after the shutdown");
    eprintln!("shutdown to deregistered: {gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_their_endpoints_while_etcd_is_down_and_watch_again_after() {
    let mut etcd = Etcd::start().await;
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--transport",
        "grpc",
        "--ttl",
        "30",
    ];
    let first = Server::start(&etcd, &args);
    let client = balanced(
        &format!("etcd://{}/{SERVICE}", etcd.endpoint()),
        Policy::RoundRobin,
    );
    let call = |client: Arc<EchoServiceClient<BalancedChannel>>| async move {
        client
            .echo(EchoRequest::default())
            .timeout(Duration::from_secs(5))
            .await
            .map(|r| r.served_by)
    };
    assert_eq!(call(client.clone()).await.expect("a call"), first.addr);

    etcd.kill();
    for _ in 0..50 {
        assert_eq!(call(client.clone()).await.expect("a call"), first.addr);
    }
    etcd.run().await;
    // A server that registers after the restart is found through the resumed watch.
    let second = Server::start(&etcd, &args);
    let started = Instant::now();
    loop {
        if call(client.clone()).await.expect("a call") == second.addr {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the client did not see the server registered after etcd's restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "restart to the new server's first call: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_removed_under_a_live_registration_is_written_back() {
    let etcd = Etcd::start().await;
    let registry = Registry::new(&etcd.endpoint())
        .expect("a registry")
        .ttl(Duration::from_secs(3));
    let endpoint = rust_rpc::etcd::Endpoint::new("10.1.1.1:50051");
    let first = registry
        .register("services/same", endpoint.clone().weight(1))
        .await
        .expect("registered");
    // A second registration of the same address takes the entry over, then ends.
    let second = registry
        .register("services/same", endpoint.weight(5))
        .await
        .expect("registered");
    let listed = registry.endpoints("services/same").await.unwrap();
    assert_eq!(listed.iter().map(|a| a.weight).collect::<Vec<_>>(), [5]);
    second.deregister().await.expect("deregistered");
    assert!(registry
        .endpoints("services/same")
        .await
        .unwrap()
        .is_empty());
    // The first, still alive, writes its entry back within a keep-alive round (TTL / 3).
    let started = Instant::now();
    loop {
        let listed = registry.endpoints("services/same").await.unwrap();
        if let [address] = listed.as_slice() {
            assert_eq!(
                (address.addr.as_str(), address.weight),
                ("10.1.1.1:50051", 1)
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not written back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.deregister().await.expect("deregistered");
    let err = registry
        .register("/", rust_rpc::etcd::Endpoint::new("10.1.1.1:1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), rust_rpc::Code::InvalidArgument, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_find_no_endpoint_say_why() {
    let etcd = Etcd::start().await;
    let call = |target: String| async move {
        let client = balanced(&target, Policy::RoundRobin);
        client
            .echo(EchoRequest::default())
            .timeout(Duration::from_secs(5))
            .await
            .unwrap_err()
    };
    let err = call(format!("etcd://{}/services/none", etcd.endpoint())).await;
    assert_eq!(err.code(), rust_rpc::Code::Unavailable);
    assert!(
        err.message()
            .contains("nothing is registered under services/none/"),
        "{err}"
    );
    let err = call(format!("etcd://127.0.0.1:{}/services/echo", free_port())).await;
    assert_eq!(err.code(), rust_rpc::Code::Unavailable);
    assert!(err.message().contains("could not be read"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_bound_to_every_interface_lists_the_address_it_advertises() {
    let etcd = Etcd::start().await;
    let port = free_port().to_string();
    let advertised = format!("127.0.0.1:{port}");
    let bound = format!("0.0.0.0:{port}");
    // Without --advertise, it says what is missing and does not start.
    let output = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args([
            "--addr",
            &bound,
            "--register",
            &format!("etcd://{}", etcd.endpoint()),
        ])
        .output()
        .expect("run echo-server");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("add --advertise HOST:PORT"), "{err}");

    let _server = Server::start(&etcd, &["--addr", &bound, "--advertise", &advertised]);
    let registry = Registry::new(&etcd.endpoint()).expect("a registry");
    until_listed(&registry, &[advertised.as_str()], Duration::from_secs(1)).await;
    let client = balanced(
        &format!("etcd://{}/{SERVICE}", etcd.endpoint()),
        Policy::RoundRobin,
    );
    let reply = client
        .echo(EchoRequest::default())
        .timeout(Duration::from_secs(5))
        .await
        .expect("a call");
    assert_eq!(reply.served_by, advertised);
}
