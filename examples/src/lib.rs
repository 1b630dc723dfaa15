//! The examples' generated code and the service implementations the server binaries host.

/// Generated from `proto/*.proto` by `build.rs`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/_include.rs"));
}

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use proto::{echo, kv, numbers, pi};
use rust_rpc::{proto, RpcController, Status, StreamSender, Streaming};
use tokio::sync::broadcast;

/// The classic echo service; its replies name the server that answered.
#[derive(Default)]
pub struct Echo {
    served_by: Arc<OnceLock<String>>,
}

impl Echo {
    /// An echo service whose replies name the endpoint recorded in
    /// [`served_by`](Echo::served_by) (empty until then).
    pub fn new() -> Echo {
        Echo::default()
    }

    /// Where the server's endpoint (`host:port`) is recorded once it is bound.
    pub fn served_by(&self) -> Arc<OnceLock<String>> {
        self.served_by.clone()
    }
}

impl echo::EchoService for Echo {
    async fn echo(
        &self,
        _ctrl: &mut RpcController,
        request: echo::EchoRequest,
    ) -> Result<echo::EchoResponse, Status> {
        Ok(proto!(echo::EchoResponse {
            message: format!("{}, welcome!", request.message),
            served_by: self.served_by.get().cloned().unwrap_or_default(),
        }))
    }

    async fn add(
        &self,
        _ctrl: &mut RpcController,
        request: echo::AddRequest,
    ) -> Result<echo::AddResponse, Status> {
        let result = request.a.checked_add(request.b).ok_or_else(|| {
            Status::out_of_range(format!("{} + {} overflows an int32", request.a, request.b))
        })?;
        Ok(proto!(echo::AddResponse { result }))
    }
}

/// The gRPC tutorial's pi calculator: the Leibniz series with `n` terms.
pub struct PiCalculator;

/// Approximates pi with `n` terms of the Leibniz series.
pub fn leibniz(n: i32) -> Result<f64, Status> {
    if n <= 0 {
        return Err(Status::invalid_argument(format!(
            "n must be positive, got {n}"
        )));
    }
    let sum: f64 = (0..n)
        .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 } / (2 * k + 1) as f64)
        .sum();
    Ok(4.0 * sum)
}

impl pi::PiCalculator for PiCalculator {
    async fn calc(
        &self,
        _ctrl: &mut RpcController,
        request: pi::PiRequest,
    ) -> Result<pi::PiResponse, Status> {
        Ok(proto!(pi::PiResponse {
            value: leibniz(request.n)?,
        }))
    }

    async fn calc_stream(
        &self,
        _ctrl: &mut RpcController,
        mut requests: Streaming<pi::PiRequest>,
        responses: StreamSender<pi::PiResponse>,
    ) -> Result<(), Status> {
        while let Some(request) = requests.message().await? {
            responses
                .send(&proto!(pi::PiResponse {
                    value: leibniz(request.n)?,
                }))
                .await?;
        }
        Ok(())
    }
}

/// The streaming example: one method of each call shape.
pub struct Numbers;

fn number(value: i64) -> numbers::Number {
    proto!(numbers::Number { value })
}

impl numbers::Numbers for Numbers {
    async fn square(
        &self,
        _ctrl: &mut RpcController,
        request: numbers::Number,
    ) -> Result<numbers::Number, Status> {
        let square = request
            .value
            .checked_mul(request.value)
            .ok_or_else(|| Status::out_of_range("the square overflows an int64"))?;
        Ok(number(square))
    }

    async fn fibonacci(
        &self,
        ctrl: &mut RpcController,
        request: numbers::Number,
        responses: StreamSender<numbers::Number>,
    ) -> Result<(), Status> {
        if !(0..=92).contains(&request.value) {
            return Err(Status::invalid_argument(
                "ask for 0 to 92 numbers (the 93rd overflows an int64)",
            ));
        }
        let (mut a, mut b) = (0i64, 1i64);
        for _ in 0..request.value {
            if ctrl.is_cancelled() {
                return Err(Status::cancelled("the client cancelled"));
            }
            responses.send(&number(a)).await?;
            (a, b) = (b, a.saturating_add(b));
        }
        Ok(())
    }

    async fn summarize(
        &self,
        _ctrl: &mut RpcController,
        mut requests: Streaming<numbers::Number>,
    ) -> Result<numbers::Stats, Status> {
        let (mut count, mut sum) = (0i64, 0i64);
        while let Some(n) = requests.message().await? {
            count += 1;
            sum = sum.saturating_add(n.value);
        }
        let mean = if count == 0 {
            0.0
        } else {
            sum as f64 / count as f64
        };
        Ok(proto!(numbers::Stats { count, sum, mean }))
    }

    async fn running_max(
        &self,
        _ctrl: &mut RpcController,
        mut requests: Streaming<numbers::Number>,
        responses: StreamSender<numbers::Number>,
    ) -> Result<(), Status> {
        let mut max = i64::MIN;
        while let Some(n) = requests.message().await? {
            max = max.max(n.value);
            responses.send(&number(max)).await?;
        }
        Ok(())
    }
}

/// The key-value store, in memory: entries by key, and a broadcast of every write for the
/// watchers.
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, kv::Entry>>,
    changes: broadcast::Sender<kv::Entry>,
}

impl Default for MemoryKv {
    fn default() -> Self {
        MemoryKv {
            entries: Mutex::default(),
            changes: broadcast::channel(1024).0,
        }
    }
}

impl MemoryKv {
    fn write(&self, request: kv::PutRequest) -> Result<i64, Status> {
        let mut entry = request
            .entry
            .ok_or_else(|| Status::invalid_argument("a put needs an entry"))?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let current = entries.get(&entry.key).map_or(0, |e| e.version);
        if let Some(expected) = request.if_version {
            if expected != current {
                return Err(Status::failed_precondition(format!(
                    "{} is at version {current}, not {expected}",
                    entry.key
                )));
            }
        }
        entry.version = current + 1;
        entries.insert(entry.key.clone(), entry.clone());
        drop(entries);
        // Nobody watching is fine.
        let _ = self.changes.send(entry.clone());
        Ok(entry.version)
    }
}

impl kv::Kv for MemoryKv {
    async fn get(
        &self,
        _ctrl: &mut RpcController,
        request: kv::GetRequest,
    ) -> Result<kv::GetResponse, Status> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(proto!(kv::GetResponse {
            entry: entries.get(&request.key).cloned(),
        }))
    }

    async fn put(
        &self,
        _ctrl: &mut RpcController,
        request: kv::PutRequest,
    ) -> Result<kv::PutResponse, Status> {
        Ok(proto!(kv::PutResponse {
            version: self.write(request)?,
        }))
    }

    async fn watch(
        &self,
        ctrl: &mut RpcController,
        request: kv::WatchRequest,
        events: StreamSender<kv::Event>,
    ) -> Result<(), Status> {
        let mut changes = self.changes.subscribe();
        // Tell the client the watch is in place: writes from now on reach it.
        ctrl.send_headers();
        loop {
            let entry = match changes.recv().await {
                Ok(entry) => entry,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Err(Status::resource_exhausted(format!(
                        "the watcher fell {missed} changes behind"
                    )))
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            };
            if entry.key.starts_with(&request.prefix) {
                let event = proto!(kv::Event {
                    kind: kv::event::Kind::PUT,
                    change: Some(kv::event::Change::Entry(entry)),
                });
                // Fails once the client stops reading or cancels: the watch ends with it.
                events.send(event).await?;
            }
        }
    }

    async fn put_many(
        &self,
        _ctrl: &mut RpcController,
        mut requests: Streaming<kv::PutRequest>,
    ) -> Result<kv::PutManyResponse, Status> {
        let mut response = kv::PutManyResponse::default();
        while let Some(request) = requests.message().await? {
            response.last_version = self.write(request)?;
            response.written += 1;
        }
        Ok(response)
    }
}

/// The transport an example speaks: rust-rpc's TCP protocol or standard gRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// rust-rpc's own TCP protocol.
    Tcp,
    /// gRPC over HTTP/2, which clients in any language reach.
    Grpc,
}

/// A client channel over either transport.
pub type Channel = std::sync::Arc<dyn rust_rpc::RpcChannel>;

/// Serves `service` on `addr` over `transport` until Ctrl-C or SIGTERM, then shuts down
/// gracefully.
pub async fn serve(
    transport: Transport,
    addr: &str,
    service: impl rust_rpc::Service,
) -> std::io::Result<()> {
    serve_with(transport, addr, service, Options::default(), |_| {}).await
}

/// Where a server lists itself: an etcd registry, the service key, and its weight.
pub struct Listing {
    /// The registry.
    pub registry: rust_rpc::etcd::Registry,
    /// The service key the server is listed under.
    pub service: String,
    /// Its share of the calls under weighted balancing.
    pub weight: u32,
    /// The address clients dial, where it is not the one the server is bound to.
    pub advertise: Option<String>,
}

impl Listing {
    /// The endpoint to list for `--advertise`, spoken to over `transport`; `None` lists the
    /// address the server is bound to.
    fn advertised(
        &self,
        transport: rust_rpc::balance::Transport,
    ) -> Option<rust_rpc::etcd::Endpoint> {
        let addr = self.advertise.clone()?;
        Some(
            rust_rpc::etcd::Endpoint::new(addr)
                .transport(transport)
                .weight(self.weight),
        )
    }
}

/// Bearer-token authentication, as an interceptor on each side: the client adds
/// `authorization: Bearer <token>` to every call, the server rejects calls without it with
/// `UNAUTHENTICATED` before any handler runs.
pub mod auth {
    use rust_rpc::interceptor::{ClientInterceptor, ServerInterceptor};
    use rust_rpc::service::MethodDescriptor;
    use rust_rpc::{Metadata, Status};

    /// Adds the token to every call of the channel it wraps
    /// (`rust_rpc::interceptor::Intercepted::new(channel).with(BearerToken(..))`).
    pub struct BearerToken(pub String);

    impl ClientInterceptor for BearerToken {
        fn on_call(
            &self,
            _: &'static MethodDescriptor,
            metadata: &mut Metadata,
        ) -> Result<(), Status> {
            metadata.insert("authorization", format!("Bearer {}", self.0));
            Ok(())
        }
    }

    /// Lets through only calls that carry the token (`Server::builder().interceptor(..)`).
    pub struct RequireToken(pub String);

    impl ServerInterceptor for RequireToken {
        fn on_call(
            &self,
            _: &'static MethodDescriptor,
            metadata: &mut Metadata,
        ) -> Result<(), Status> {
            let presented = metadata
                .get("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
            if !same(presented.as_bytes(), self.0.as_bytes()) {
                return Err(Status::unauthenticated("wrong bearer token"));
            }
            // The handler has no need of the secret.
            metadata.remove("authorization");
            Ok(())
        }
    }

    /// Compares in time that depends on the lengths only, not on where the first difference is.
    fn same(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What else a server does beside serving: list itself in a registry, require a token.
#[derive(Default)]
pub struct Options {
    /// Where to list the server while it serves (removed when it shuts down gracefully).
    pub listing: Option<Listing>,
    /// A bearer token every call must carry.
    pub token: Option<String>,
}

/// Like [`serve`], telling `bound` the address the server got (before it takes calls), with
/// `options`.
pub async fn serve_with(
    transport: Transport,
    addr: &str,
    service: impl rust_rpc::Service,
    options: Options,
    bound: impl FnOnce(&str),
) -> std::io::Result<()> {
    let Options { listing, token } = options;
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        println!("shutting down");
    };
    let registration_failed =
        |status: Status| std::io::Error::other(format!("cannot register in etcd: {status}"));
    match transport {
        Transport::Tcp => {
            let mut builder = rust_rpc::tcp::Server::builder().add_service(service);
            if let Some(token) = token {
                builder = builder.interceptor(auth::RequireToken(token));
            }
            let server = builder.bind(addr).await?;
            let local = server.local_addr()?;
            bound(&local.to_string());
            println!("listening on {local} (tcp)");
            if let Some(l) = listing {
                match l.advertised(rust_rpc::balance::Transport::Tcp) {
                    Some(endpoint) => {
                        server
                            .register_endpoint(&l.registry, &l.service, endpoint)
                            .await
                    }
                    None => server.register(&l.registry, &l.service, l.weight).await,
                }
                .map_err(registration_failed)?;
                println!("registered under {}", l.service);
            }
            server.serve_until(stop).await
        }
        Transport::Grpc => {
            let mut builder = rust_rpc::grpc::Server::builder().add_service(service);
            if let Some(token) = token {
                builder = builder.interceptor(auth::RequireToken(token));
            }
            let server = builder.bind(addr).await?;
            let local = server.local_addr()?;
            bound(&local.to_string());
            println!("listening on {local} (grpc)");
            if let Some(l) = listing {
                match l.advertised(rust_rpc::balance::Transport::Grpc) {
                    Some(endpoint) => {
                        server
                            .register_endpoint(&l.registry, &l.service, endpoint)
                            .await
                    }
                    None => server.register(&l.registry, &l.service, l.weight).await,
                }
                .map_err(registration_failed)?;
                println!("registered under {}", l.service);
            }
            server.serve_until(stop).await
        }
    }
}

/// Connects to `addr` over `transport`.
pub async fn connect(transport: Transport, addr: &str) -> std::io::Result<Channel> {
    Ok(match transport {
        Transport::Tcp => std::sync::Arc::new(rust_rpc::tcp::TcpChannel::connect(addr).await?),
        Transport::Grpc => std::sync::Arc::new(rust_rpc::grpc::GrpcChannel::connect(addr).await?),
    })
}
