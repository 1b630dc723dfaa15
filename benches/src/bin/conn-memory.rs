//! Resident memory of a server per idle connection and per call in flight, for rust-rpc's TCP
//! transport, rust-rpc's gRPC transport and tonic, in one run. Each server runs in a child
//! process of its own (this binary, `serve <kind>`), so that its resident set holds nothing of
//! the clients'; the parent reads the child's `VmRSS` from `/proc`.
//!
//! For each server: one connection and call to warm it up, then `CONNECTIONS` (default 10,000)
//! client connections that each make one call and then stay open, idle; then `CALLS` (default
//! 10,000) calls held open by the handler, spread over the first `HOLDING_CONNECTIONS`
//! (default 100) of those connections. Kernel socket buffers are not in a process's resident
//! set, so they are not counted.
//!
//! ```sh
//! cargo run --release -p rust-rpc-benches --bin conn-memory
//! ```
//!
//! Both processes hold one file descriptor per connection: the open-file limit (`ulimit -n`)
//! must be above `CONNECTIONS` plus a few.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use rust_rpc::RpcController;
use rust_rpc_benches::{ours, tonic_echo};

/// The request message that makes a handler hold its call open until the process ends.
const HOLD: &str = "hold";

/// Calls that have reached a handler and are held there (the `Add` method reports it).
static HELD: AtomicI32 = AtomicI32::new(0);

/// The servers measured, by the name `serve` takes.
const KINDS: [&str; 3] = ["rust-rpc", "rust-rpc-grpc", "tonic"];

struct Echo;

impl ours::echo::EchoService for Echo {
    async fn echo(
        &self,
        _ctrl: &mut RpcController,
        request: ours::echo::EchoRequest,
    ) -> Result<ours::echo::EchoResponse, rust_rpc::Status> {
        if request.message == HOLD {
            HELD.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(rust_rpc::proto!(ours::echo::EchoResponse {
            message: request.message
        }))
    }

    async fn add(
        &self,
        _ctrl: &mut RpcController,
        _request: ours::echo::AddRequest,
    ) -> Result<ours::echo::AddResponse, rust_rpc::Status> {
        Ok(rust_rpc::proto!(ours::echo::AddResponse {
            result: HELD.load(Ordering::SeqCst)
        }))
    }
}

struct TonicEcho;

#[tonic::async_trait]
impl tonic_echo::echo::echo_service_server::EchoService for TonicEcho {
    async fn echo(
        &self,
        request: tonic::Request<tonic_echo::echo::EchoRequest>,
    ) -> Result<tonic::Response<tonic_echo::echo::EchoResponse>, tonic::Status> {
        let message = request.into_inner().message;
        if message == HOLD {
            HELD.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(tonic::Response::new(tonic_echo::echo::EchoResponse {
            message,
            served_by: String::new(),
        }))
    }

    async fn add(
        &self,
        _request: tonic::Request<tonic_echo::echo::AddRequest>,
    ) -> Result<tonic::Response<tonic_echo::echo::AddResponse>, tonic::Status> {
        Ok(tonic::Response::new(tonic_echo::echo::AddResponse {
            result: HELD.load(Ordering::SeqCst),
        }))
    }
}

/// The child: serves `kind` on a free port, prints the port, and serves until killed.
async fn serve(kind: &str) {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("conn-memory serve {kind}: {what}: {e}");
        std::process::exit(1)
    };
    // rust-rpc's two servers take the same steps through types of their own.
    macro_rules! serve_ours {
        ($server:path) => {{
            let server = <$server>::builder()
                .add_service(ours::echo::EchoServiceServer::new(Echo))
                .bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| fail("bind", &e));
            println!(
                "{}",
                server.local_addr().unwrap_or_else(|e| fail("address", &e))
            );
            server.serve().await
        }};
    }
    let served = match kind {
        "rust-rpc" => serve_ours!(rust_rpc::tcp::Server),
        "rust-rpc-grpc" => serve_ours!(rust_rpc::grpc::Server),
        "tonic" => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| fail("bind", &e));
            println!(
                "{}",
                listener
                    .local_addr()
                    .unwrap_or_else(|e| fail("address", &e))
            );
            tonic::transport::Server::builder()
                .add_service(
                    tonic_echo::echo::echo_service_server::EchoServiceServer::new(TonicEcho),
                )
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .map_err(std::io::Error::other)
        }
        _ => fail(
            "unknown server",
            &"expected rust-rpc, rust-rpc-grpc or tonic",
        ),
    };
    if let Err(e) = served {
        fail("serve", &e);
    }
}

/// A client of any of the three servers, on a connection of its own.
#[derive(Clone)]
enum Client {
    Ours(ours::echo::EchoServiceClient<rust_rpc::tcp::TcpChannel>),
    Grpc(ours::echo::EchoServiceClient<rust_rpc::grpc::GrpcChannel>),
    Tonic(tonic_echo::echo::echo_service_client::EchoServiceClient<tonic::transport::Channel>),
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl Client {
    async fn connect(kind: &str, addr: SocketAddr) -> Result<Client, Failure> {
        Ok(match kind {
            "rust-rpc" => Client::Ours(ours::echo::EchoServiceClient::new(
                rust_rpc::tcp::TcpChannel::connect(addr).await?,
            )),
            "rust-rpc-grpc" => Client::Grpc(ours::echo::EchoServiceClient::new(
                rust_rpc::grpc::GrpcChannel::connect(addr).await?,
            )),
            _ => Client::Tonic(
                tonic_echo::echo::echo_service_client::EchoServiceClient::new(
                    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                        .connect()
                        .await?,
                ),
            ),
        })
    }

    async fn echo(&self, message: &str) -> Result<(), Failure> {
        match self {
            Client::Ours(client) => {
                client
                    .echo(rust_rpc::proto!(ours::echo::EchoRequest {
                        message: message.to_owned()
                    }))
                    .await?;
            }
            Client::Grpc(client) => {
                client
                    .echo(rust_rpc::proto!(ours::echo::EchoRequest {
                        message: message.to_owned()
                    }))
                    .await?;
            }
            Client::Tonic(client) => {
                client
                    .clone()
                    .echo(tonic_echo::echo::EchoRequest {
                        message: message.to_owned(),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// How many calls the server holds.
    async fn held(&self) -> Result<i32, Failure> {
        Ok(match self {
            Client::Ours(client) => {
                client
                    .add(rust_rpc::proto!(ours::echo::AddRequest {}))
                    .await?
                    .result
            }
            Client::Grpc(client) => {
                client
                    .add(rust_rpc::proto!(ours::echo::AddRequest {}))
                    .await?
                    .result
            }
            Client::Tonic(client) => {
                client
                    .clone()
                    .add(tonic_echo::echo::AddRequest { a: 0, b: 0 })
                    .await?
                    .into_inner()
                    .result
            }
        })
    }
}

/// The child's resident set, in KiB.
fn resident_kib(child: &Child) -> Result<u64, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/<pid>/status".into())
}

/// Resident memory once allocation has settled: the reading after a short pause.
async fn settled_kib(child: &Child) -> Result<u64, Failure> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    resident_kib(child)
}

struct Figures {
    kind: &'static str,
    base_kib: u64,
    per_connection: f64,
    per_call: f64,
}

/// Kills the child when dropped, however the measurement ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn measure(
    kind: &'static str,
    connections: usize,
    calls: usize,
    holding: usize,
) -> Result<Figures, Failure> {
    let mut server = Server(
        Command::new(std::env::current_exe()?)
            .args(["serve", kind])
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let stdout = server.0.stdout.take().ok_or("no stdout from the server")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .parse()
        .map_err(|e| format!("the server printed {line:?}: {e}"))?;

    let probe = Client::connect(kind, addr).await?;
    probe.echo("warm up").await?;
    let base = settled_kib(&server.0).await?;

    // Connected 100 at a time: one at a time, 10,000 handshakes take minutes.
    let mut clients = Vec::with_capacity(connections);
    while clients.len() < connections {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..(connections - clients.len()).min(100) {
            batch.spawn(async move {
                let client = Client::connect(kind, addr).await?;
                client.echo("hello").await?;
                Ok::<_, Failure>(client)
            });
        }
        while let Some(joined) = batch.join_next().await {
            clients.push(joined??);
        }
    }
    let idle = settled_kib(&server.0).await?;

    let holding = holding.clamp(1, connections.max(1));
    let mut held = tokio::task::JoinSet::new();
    for i in 0..calls {
        let client = clients[i % holding].clone();
        held.spawn(async move {
            let _ = client.echo(HOLD).await;
        });
    }
    let start = Instant::now();
    while usize::try_from(probe.held().await?).unwrap_or(0) < calls {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("{kind}: the held calls did not all reach the server").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy = settled_kib(&server.0).await?;
    held.abort_all();
    drop(server);
    Ok(Figures {
        kind,
        base_kib: base,
        per_connection: (idle.saturating_sub(base) * 1024) as f64 / connections.max(1) as f64,
        per_call: (busy.saturating_sub(idle) * 1024) as f64 / calls.max(1) as f64,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.get(1).map(String::as_str) == Some("serve") {
        runtime.block_on(serve(args.get(2).map_or("", String::as_str)));
        return;
    }
    let connections = rust_rpc_benches::setting("CONNECTIONS", 10_000);
    let calls = rust_rpc_benches::setting("CALLS", 10_000);
    let holding = rust_rpc_benches::setting("HOLDING_CONNECTIONS", 100);
    println!(
        "{connections} idle connections; {calls} calls held over {holding} of them; server's resident memory"
    );
    println!();
    println!("| server | resident at start | per idle connection | per call in flight |");
    println!("| --- | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for kind in KINDS {
        match runtime.block_on(measure(kind, connections, calls, holding)) {
            Ok(f) => {
                println!(
                    "| {} | {:.1} MiB | {:.0} B | {:.0} B |",
                    f.kind,
                    f.base_kib as f64 / 1024.0,
                    f.per_connection,
                    f.per_call
                );
                rows.push(f);
            }
            Err(e) => {
                eprintln!("conn-memory: {kind}: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(tonic) = rows.iter().find(|f| f.kind == "tonic") {
        println!();
        println!("| ratio to tonic | per idle connection | per call in flight |");
        println!("| --- | ---: | ---: |");
        for f in rows.iter().filter(|f| f.kind != "tonic") {
            println!(
                "| {} | {:.2} | {:.2} |",
                f.kind,
                f.per_connection / tonic.per_connection,
                f.per_call / tonic.per_call
            );
        }
    }
}
