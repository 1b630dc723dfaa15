//! What the network transports share on the client side: targets, and the owner of the one
//! connection a channel keeps to its target (connect timeout, re-resolution on every attempt,
//! backoff after failures); and on the server side, accepting connections and shutting down.
//! A transport supplies the handshake that turns a TCP stream into
//! its own connection type; a channel over many endpoints keeps one owner per endpoint.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{lookup_host, TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};

use crate::call::ServerCore;
use crate::service::BoxFuture;
use crate::Status;

/// A server to connect to: `"host:port"` (a name, an IPv4 address, or a bracketed IPv6 one),
/// a socket address, or a `(host, port)` pair, as `tokio::net::TcpStream::connect` takes. The
/// channel keeps it as `host:port` text and resolves it again on every connection attempt.
pub trait IntoTarget {
    /// The target as `host:port`.
    fn into_target(self) -> String;
}

impl IntoTarget for &str {
    fn into_target(self) -> String {
        self.to_owned()
    }
}

impl IntoTarget for String {
    fn into_target(self) -> String {
        self
    }
}

impl IntoTarget for &String {
    fn into_target(self) -> String {
        self.clone()
    }
}

macro_rules! displayed_targets {
    ($($ty:ty),*) => {$(
        impl IntoTarget for $ty {
            fn into_target(self) -> String {
                self.to_string()
            }
        }
    )*};
}

displayed_targets!(SocketAddr, std::net::SocketAddrV4, std::net::SocketAddrV6);

/// `host:port`, with an IPv6 address bracketed so its colons stay apart from the port's.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

macro_rules! host_targets {
    ($($ty:ty),*) => {$(
        impl IntoTarget for ($ty, u16) {
            fn into_target(self) -> String {
                host_port(&self.0, self.1)
            }
        }
    )*};
}

host_targets!(&str, String, &String);

macro_rules! ip_targets {
    ($($ty:ty),*) => {$(
        impl IntoTarget for ($ty, u16) {
            fn into_target(self) -> String {
                SocketAddr::from(self).to_string()
            }
        }
    )*};
}

ip_targets!(std::net::IpAddr, std::net::Ipv4Addr, std::net::Ipv6Addr);

/// How a transport turns a connected TCP stream into a live connection of its own.
pub(crate) trait Handshake: Send + Sync + 'static {
    /// The transport's connection.
    type Connection: Send + Sync + 'static;

    /// Speaks the transport's opening over `stream`.
    fn handshake(&self, stream: TcpStream) -> BoxFuture<'_, io::Result<Arc<Self::Connection>>>;

    /// Whether `connection` may take new calls (not closed, not told to go away).
    fn usable(connection: &Self::Connection) -> bool;
}

/// Where an endpoint's connection stands, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Readiness {
    /// Connected, taking calls.
    Ready,
    /// Not connected, free to try (never tried, closed, or past its backoff).
    Idle,
    /// A connection attempt is under way.
    Connecting,
    /// The last attempt failed and its backoff has not passed: calls fail fast.
    BackingOff,
}

/// The state of an endpoint's one connection.
pub(crate) enum State<C> {
    Idle,
    Connecting,
    Ready(Arc<C>, SocketAddr),
    /// The last attempt failed; calls fail fast until `retry_at`.
    Failed {
        error: Status,
        /// What kind of failure it was, for `connect`'s `io::Error`.
        kind: io::ErrorKind,
        retry_at: Instant,
        attempts: u32,
    },
}

/// The owner of one connection to one target, shared by the calls of a channel.
pub(crate) struct Endpoint<H: Handshake> {
    pub(crate) target: String,
    pub(crate) handshake: H,
    connect_timeout: Duration,
    state: Mutex<State<H::Connection>>,
    changed: Notify,
}

/// Seconds of backoff after `attempts` failed attempts in a row: 1, 1.6, 2.56, ... up to 120,
/// each spread by up to 20% either way (gRPC's connection backoff).
fn backoff(attempts: u32) -> Duration {
    let base = (1.6f64)
        .powi(attempts.saturating_sub(1).min(20) as i32)
        .min(120.0);
    // Jitter from the clock's low bits: enough to spread clients that failed together.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0;
    Duration::from_secs_f64(base * jitter)
}

impl<H: Handshake> Endpoint<H> {
    pub(crate) fn new(target: String, handshake: H, connect_timeout: Duration) -> Self {
        Endpoint {
            target,
            handshake,
            connect_timeout,
            state: Mutex::new(State::Idle),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<H::Connection>> {
        // No user code runs under this lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live connection: an existing one, one in progress, or a new attempt. Never holds
    /// the lock across connecting; the caller bounds the wait with its deadline.
    pub(crate) async fn connection(self: &Arc<Self>) -> Result<Arc<H::Connection>, Status> {
        crate::wait::until(&self.changed, || {
            let mut state = self.lock();
            match &*state {
                State::Ready(connection, _) if H::usable(connection) => {
                    return Some(Ok(connection.clone()));
                }
                State::Connecting => return None,
                State::Failed {
                    error, retry_at, ..
                } if Instant::now() < *retry_at => return Some(Err(error.clone())),
                _ => {}
            }
            let attempts = match &*state {
                State::Failed { attempts, .. } => *attempts,
                _ => 0,
            };
            *state = State::Connecting;
            drop(state);
            tokio::spawn(self.clone().attempt(attempts));
            None
        })
        .await
    }

    /// Waits for a first connection; the error says why none could be made.
    pub(crate) async fn connect(self: &Arc<Self>) -> io::Result<()> {
        if let Err(status) = self.connection().await {
            let kind = match &*self.lock() {
                State::Failed { kind, .. } => *kind,
                _ => io::ErrorKind::Other,
            };
            return Err(io::Error::new(kind, status.message().to_owned()));
        }
        Ok(())
    }

    /// The connection, if one is ready to take a call now.
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    pub(crate) fn ready_connection(&self) -> Option<Arc<H::Connection>> {
        match &*self.lock() {
            State::Ready(connection, _) if H::usable(connection) => Some(connection.clone()),
            _ => None,
        }
    }

    /// Where the connection stands, for a balancer that prefers endpoints ready to take a
    /// call now.
    pub(crate) fn readiness(&self) -> Readiness {
        match &*self.lock() {
            State::Ready(connection, _) if H::usable(connection) => Readiness::Ready,
            State::Connecting => Readiness::Connecting,
            State::Failed { retry_at, .. } if Instant::now() < *retry_at => Readiness::BackingOff,
            _ => Readiness::Idle,
        }
    }

    /// The address of the live connection's server, if there is one.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        match &*self.lock() {
            State::Ready(_, addr) => Some(*addr),
            _ => None,
        }
    }

    /// One connection attempt, on a task of its own so that no caller's deadline cuts it
    /// short for the others.
    async fn attempt(self: Arc<Self>, previous_failures: u32) {
        let result = tokio::time::timeout(self.connect_timeout, self.open()).await;
        let failed = |error: Status, kind| {
            let attempts = previous_failures + 1;
            State::Failed {
                error,
                kind,
                retry_at: Instant::now() + backoff(attempts),
                attempts,
            }
        };
        let next = match result {
            Ok(Ok((connection, addr))) => State::Ready(connection, addr),
            Ok(Err(e)) => failed(
                Status::unavailable(format!("cannot connect to {}: {e}", self.target)),
                e.kind(),
            ),
            Err(_) => failed(
                Status::unavailable(format!(
                    "cannot connect to {}: no answer within {:?}",
                    self.target, self.connect_timeout
                )),
                io::ErrorKind::TimedOut,
            ),
        };
        *self.lock() = next;
        self.changed.notify_waiters();
    }

    /// Resolves the target, connects to the first address that answers, and hands the stream
    /// to the transport's handshake.
    async fn open(&self) -> io::Result<(Arc<H::Connection>, SocketAddr)> {
        if let Some((_, rest)) = self.target.split_once("://") {
            // tonic's form (`http://host:port`), which a resolver reports as an unknown name.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot connect to '{}': a channel's target is host:port, without a scheme \
                     ('{}'); the schemes dns:///, static:/// and etcd:// are \
                     `rust_rpc::balance`'s",
                    self.target,
                    rest.trim_start_matches('/')
                ),
            ));
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
        for addr in lookup_host(self.target.as_str()).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let connection = self.handshake.handshake(stream).await?;
                    return Ok((connection, addr));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// What a peer that does not speak a transport's protocol seems to speak, told from the first
/// bytes it sent: both transports name such a peer in their connect errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    RustRpcTcp,
    Http1,
    /// An HTTP server that answered with a page and no status line.
    HttpPage,
    Http2,
    Tls,
}

impl Peer {
    /// The peer `first` comes from; `None` when the bytes match nothing known.
    pub(crate) fn from_first_bytes(first: &[u8]) -> Option<Peer> {
        if first.starts_with(b"RRPC/") {
            Some(Peer::RustRpcTcp)
        } else if first.starts_with(b"HTTP/") {
            Some(Peer::Http1)
        } else if first.starts_with(b"<") {
            // rust-rpc's preface reads as a request line without a version, which some HTTP
            // servers answer the HTTP/0.9 way: with the page alone.
            Some(Peer::HttpPage)
        } else if first.len() >= 4 && first[3] == 0x04 {
            // An HTTP/2 SETTINGS frame: the first thing an HTTP/2 server sends.
            Some(Peer::Http2)
        } else if matches!(first.first(), Some(0x15 | 0x16)) {
            // A TLS alert or handshake record.
            Some(Peer::Tls)
        } else {
            None
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::RustRpcTcp => "a rust-rpc TCP server",
            Peer::Http1 => "an HTTP/1 server",
            Peer::HttpPage => "an HTTP server (it answered with a page)",
            Peer::Http2 => "an HTTP/2 server, gRPC perhaps",
            Peer::Tls => "a TLS server",
        }
    }
}

/// Bytes as hex pairs (`15 03 03`), for errors that quote what a peer sent.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

/// Binds a listener to the first address `addr` resolves to that takes it; the error names
/// the address ("cannot listen on 127.0.0.1:50051: Address already in use").
pub(crate) async fn bind(addr: impl tokio::net::ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = io::Error::new(
        io::ErrorKind::InvalidInput,
        "the address resolved to nothing",
    );
    for at in lookup_host(addr).await? {
        match TcpListener::bind(at).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = io::Error::new(e.kind(), format!("cannot listen on {at}: {e}")),
        }
    }
    Err(last)
}

/// What every network server shares: the call core with its services, the count of open
/// connections, and the two signals of a shutdown.
pub(crate) struct Hosting {
    pub(crate) core: ServerCore,
    /// Open connections; each lives until its calls have sent their last frame.
    connections: AtomicUsize,
    idle: Notify,
    /// Set when shutdown starts: no new calls.
    pub(crate) stop: watch::Sender<bool>,
    /// Set when the grace period is over: cancel what is left and close.
    pub(crate) force: watch::Sender<bool>,
    /// Registry entries removed when shutdown starts.
    #[cfg(feature = "etcd")]
    pub(crate) registrations: crate::etcd::Registrations,
}

impl Hosting {
    pub(crate) fn new(core: ServerCore) -> Hosting {
        Hosting {
            core,
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
            stop: watch::channel(false).0,
            force: watch::channel(false).0,
            #[cfg(feature = "etcd")]
            registrations: Default::default(),
        }
    }
}

/// A transport's server state: its hosting, and how it serves one accepted connection.
pub(crate) trait Host: Send + Sync + 'static {
    fn hosting(&self) -> &Hosting;

    /// Serves one connection until it closes, or until shutdown has let its calls finish.
    fn serve_connection(self: Arc<Self>, stream: TcpStream) -> BoxFuture<'static, ()>;
}

/// Accepts connections on `listener` for `host` until `shutdown` completes, then shuts down
/// gracefully: no new connections, each connection told to stop taking calls (in the
/// transport's way), and calls in flight run to completion; returns once their handlers have.
/// If the force signal comes meanwhile, handlers still running are dropped.
pub(crate) async fn serve_until<H: Host>(
    listener: TcpListener,
    host: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let host = host.clone();
                    host.hosting().connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        host.clone().serve_connection(stream).await;
                        let hosting = host.hosting();
                        if hosting.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
                            hosting.idle.notify_waiters();
                        }
                    });
                }
                // Running out of descriptors or a connection reset before accept: keep
                // serving the connections we have.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let hosting = host.hosting();
    // Out of the registry first, so that clients stop choosing this server while it drains.
    #[cfg(feature = "etcd")]
    hosting.registrations.deregister_all().await;
    let _ = hosting.stop.send(true);
    crate::wait::until(&hosting.idle, || {
        (hosting.connections.load(Ordering::SeqCst) == 0).then_some(())
    })
    .await;
    // Handlers of calls that already ended may still run; at the end of a grace period
    // they are dropped.
    let mut force = hosting.force.subscribe();
    loop {
        if *force.borrow_and_update() {
            hosting.core.abort_handlers();
            hosting.core.idle().await;
            break;
        }
        tokio::select! {
            () = hosting.core.idle() => break,
            _ = force.changed() => {}
        }
    }
    Ok(())
}

/// Serves on a background task; the handle shuts it down.
pub(crate) fn spawn<H: Host>(listener: TcpListener, host: Arc<H>) -> io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (trigger, signal) = oneshot::channel::<()>();
    let force = host.hosting().force.clone();
    let task = tokio::spawn(serve_until(listener, host, async move {
        // A dropped handle is no request to stop.
        if signal.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    Ok(ServerHandle {
        addr,
        trigger,
        force,
        task,
    })
}

/// A server running in the background. Dropping it detaches the server, which then runs
/// until the runtime ends; keep it to shut the server down.
pub struct ServerHandle {
    addr: SocketAddr,
    trigger: oneshot::Sender<()>,
    force: watch::Sender<bool>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets calls in flight finish, and waits for their handlers, however
    /// long: an open stream (a watch, say) keeps it waiting until its handler returns, and the
    /// handler is not told. A server with long-lived streams wants
    /// [`shutdown_timeout`](ServerHandle::shutdown_timeout).
    pub async fn shutdown(self) -> io::Result<()> {
        let _ = self.trigger.send(());
        self.task
            .await
            .map_err(|e| io::Error::other(format!("server task failed: {e}")))?
    }

    /// Like [`shutdown`](ServerHandle::shutdown), but gives calls in flight only `grace`:
    /// then the calls left are cancelled (their clients get `UNAVAILABLE`), their connections
    /// closed, and handlers still running are dropped at their next await, so a handler that
    /// ignores cancellation cannot hold the shutdown up.
    pub async fn shutdown_timeout(self, grace: Duration) -> io::Result<()> {
        let _ = self.trigger.send(());
        let mut task = self.task;
        let joined = match tokio::time::timeout(grace, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                let _ = self.force.send(true);
                task.await
            }
        };
        joined.map_err(|e| io::Error::other(format!("server task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn targets_become_host_and_port() {
        assert_eq!("example.com:80".into_target(), "example.com:80");
        assert_eq!(("example.com", 80).into_target(), "example.com:80");
        assert_eq!((String::from("::1"), 80).into_target(), "[::1]:80");
        assert_eq!(("[::1]", 80).into_target(), "[::1]:80");
        assert_eq!((Ipv4Addr::LOCALHOST, 80).into_target(), "127.0.0.1:80");
        assert_eq!((Ipv6Addr::LOCALHOST, 80).into_target(), "[::1]:80");
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(addr.into_target(), "127.0.0.1:80");
    }
}
