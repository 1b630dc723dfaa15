//! Channels over many servers: a target names a set of endpoints, a [`Resolver`] keeps that
//! set current, and a [`Policy`] picks one endpoint per call. The shape is gRPC's (name
//! resolution, then load balancing per call; `doc/naming.md` and `doc/load-balancing.md` in
//! the grpc repository).
//!
//! ```no_run
//! # async fn run() -> Result<(), rust_rpc::Status> {
//! use rust_rpc::balance::{BalancedChannel, Policy};
//!
//! let channel = BalancedChannel::builder("static:///10.0.0.1:50051,10.0.0.2:50051")
//!     .map_err(|e| rust_rpc::Status::invalid_argument(e.to_string()))?
//!     .policy(Policy::RoundRobin)
//!     .build();
//! // `channel` is an `RpcChannel`: hand it to any generated client or stub.
//! # Ok(()) }
//! ```
//!
//! Each endpoint has a connection of its own, owned as a lone `TcpChannel` or
//! `GrpcChannel` owns one (connect timeout, backoff with jitter after
//! a failure). Calls go to endpoints that can take them now before those still connecting
//! (so a peer that never answers holds up one call, not all of them), and an endpoint whose
//! connection failed is left out of the picks until its backoff has passed. The first call
//! starts the resolver and waits for its first answer (DNS); an address listed twice is one
//! endpoint. A call that never reached a server (its endpoint could not be
//! connected) moves to another endpoint at once, within the call's deadline, and so does a call
//! with a single request that a server refused unprocessed (GOAWAY, REFUSED_STREAM). A call
//! that reached a server is sent again only if its method has a [`RetryPolicy`]
//! ([`BalancedChannelBuilder::retry`]), gRPC's retry policy, whose attempts share the call's
//! deadline. Endpoints that the resolver adds or removes join or leave without
//! failing the calls in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

mod retry;
pub use retry::RetryPolicy;

use crate::call::{ClientCall, OutgoingCall};
use crate::net::Readiness;
use crate::service::{BoxFuture, MethodDescriptor, RpcChannel};
use crate::{Code, Status};

/// One server a target resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// `host:port`.
    pub addr: String,
    /// Its share of the calls under [`Policy::Weighted`], relative to the others' (default 1;
    /// 0 takes none while another endpoint has weight; if all have 0, they share evenly).
    pub weight: u32,
    /// The transport to speak to it, as a registry entry may name it; `None` is the
    /// channel's own ([`BalancedChannelBuilder::transport`]).
    pub transport: Option<Transport>,
}

impl Address {
    /// `addr` with weight 1.
    pub fn new(addr: impl Into<String>) -> Address {
        Address {
            addr: addr.into(),
            weight: 1,
            transport: None,
        }
    }

    /// This address with `weight`.
    pub fn with_weight(mut self, weight: u32) -> Address {
        self.weight = weight;
        self
    }

    /// This address, spoken to over `transport` whatever the channel's transport is.
    pub fn with_transport(mut self, transport: Transport) -> Address {
        self.transport = Some(transport);
        self
    }
}

/// Keeps the set of endpoints of a target current: a registry's watch, DNS, a list of your
/// own. The channel reads the latest set from the receiver before every call.
pub trait Resolver: Send + Sync + 'static {
    /// Starts resolving; the receiver always holds the latest set. A resolver that cannot
    /// resolve for a while keeps the last set it sent, as a registry that went away should
    /// not take every endpoint with it.
    fn resolve(&self) -> watch::Receiver<Vec<Address>>;

    /// Asks for a new resolution soon: the channel calls it when it cannot connect to an
    /// endpoint, which may mean the set is stale. Resolvers that are told of every change (a
    /// registry's watch) or that cannot change (a fixed list) keep the default, which does
    /// nothing.
    fn refresh(&self) {}

    /// Why the set is empty, when the resolver knows (a name that did not resolve, a registry
    /// that cannot be read): calls that find no endpoint fail with it in their `UNAVAILABLE`.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// A fixed list of endpoints.
#[derive(Clone, Debug)]
pub struct StaticResolver(pub Vec<Address>);

impl Resolver for StaticResolver {
    fn resolve(&self) -> watch::Receiver<Vec<Address>> {
        watch::channel(self.0.clone()).1
    }
}

/// The addresses a DNS name resolves to (every A and AAAA record, with the port), resolved
/// again every `interval` (30 s by default) for as long as a channel uses them, and when the
/// channel cannot connect to one of them (at most once a second).
#[derive(Clone, Debug)]
pub struct DnsResolver {
    host_port: String,
    interval: Duration,
    refresh: Arc<tokio::sync::Notify>,
    failure: Arc<Mutex<Option<String>>>,
}

/// The least time between two resolutions that a failed connection asks for.
const DNS_MIN_REFRESH: Duration = Duration::from_secs(1);

impl DnsResolver {
    /// Resolves `host_port` (`name:port`).
    pub fn new(host_port: impl Into<String>) -> DnsResolver {
        DnsResolver {
            host_port: host_port.into(),
            interval: Duration::from_secs(30),
            refresh: Arc::new(tokio::sync::Notify::new()),
            failure: Arc::default(),
        }
    }

    /// Resolves again every `interval`.
    pub fn interval(mut self, interval: Duration) -> DnsResolver {
        self.interval = interval;
        self
    }
}

impl Resolver for DnsResolver {
    fn resolve(&self) -> watch::Receiver<Vec<Address>> {
        let (sender, receiver) = watch::channel(Vec::new());
        let this = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let (mut addresses, failure): (Vec<Address>, _) =
                    match tokio::net::lookup_host(this.host_port.as_str()).await {
                        Ok(found) => (found.map(|a| Address::new(a.to_string())).collect(), None),
                        Err(e) => (
                            Vec::new(),
                            Some(format!("{} did not resolve: {e}", this.host_port)),
                        ),
                    };
                addresses.sort_by(|a, b| a.addr.cmp(&b.addr));
                addresses.dedup();
                *this.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
                if first {
                    // The first answer is sent whatever it is, so that calls waiting for it
                    // learn that the name resolved to nothing.
                    first = false;
                    sender.send_replace(addresses);
                } else if !addresses.is_empty() {
                    // An empty or failed answer later keeps the last good set.
                    sender.send_if_modified(|current| {
                        let changed = *current != addresses;
                        if changed {
                            *current = addresses;
                        }
                        changed
                    });
                }
                let resolved = tokio::time::Instant::now();
                tokio::select! {
                    () = tokio::time::sleep(this.interval) => {}
                    () = this.refresh.notified() => {
                        tokio::select! {
                            () = tokio::time::sleep_until(resolved + DNS_MIN_REFRESH) => {}
                            () = sender.closed() => return,
                        }
                    }
                    () = sender.closed() => return,
                }
            }
        });
        receiver
    }

    fn refresh(&self) {
        // A permit is kept if the task is resolving now, so the request is not lost.
        self.refresh.notify_one();
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How a [`BalancedChannel`] picks the endpoint of each call, among those not backing off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// The first endpoint in the resolver's order that is not backing off: one server takes
    /// every call, the next ones take over when it fails.
    #[default]
    PickFirst,
    /// Each endpoint in turn.
    RoundRobin,
    /// At random, in proportion to the endpoints' weights.
    Weighted,
    /// The less loaded of two endpoints chosen at random (the "power of two choices"): the one
    /// with fewer calls in flight from this channel.
    LeastLoaded,
}

/// The transport a [`BalancedChannel`] speaks to its endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// rust-rpc's TCP protocol.
    #[cfg(feature = "tcp")]
    #[cfg_attr(feature = "tcp", default)]
    Tcp,
    /// gRPC over HTTP/2.
    #[cfg(feature = "grpc")]
    #[cfg_attr(not(feature = "tcp"), default)]
    Grpc,
}

/// Why a target could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid target {target:?}: {reason}")]
pub struct TargetError {
    target: String,
    reason: &'static str,
}

/// Configures a [`BalancedChannel`].
pub struct BalancedChannelBuilder {
    resolver: Arc<dyn Resolver>,
    policy: Policy,
    transport: Transport,
    connect_timeout: Duration,
    retry: HashMap<String, RetryPolicy>,
}

impl std::fmt::Debug for BalancedChannelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedChannelBuilder")
            .field("policy", &self.policy)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl BalancedChannelBuilder {
    /// Picks endpoints by `policy` (default [`Policy::PickFirst`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Speaks `transport` to every endpoint (default TCP when that feature is on).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Bounds each connection attempt to an endpoint (default 20 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries the calls of `name` by `policy`: `name` is a service (`package.Service`: all
    /// its methods) or one method (`package.Service/Method`), as in the `name` list of gRPC's
    /// service config; a method's own policy wins over its service's. Only calls with a single
    /// request (unary and server-streaming) are retried; see [`RetryPolicy`].
    pub fn retry(mut self, name: &str, policy: RetryPolicy) -> Self {
        self.retry
            .insert(name.trim_start_matches('/').to_owned(), policy);
        self
    }

    /// The channel; it starts resolving at its first call (on the caller's tokio runtime) and
    /// connects to each endpoint when a call first picks it.
    pub fn build(self) -> BalancedChannel {
        BalancedChannel {
            inner: Arc::new(Inner {
                resolver: self.resolver,
                addresses: Mutex::new(None),
                answered: AtomicBool::new(false),
                endpoints: Mutex::new(HashMap::new()),
                policy: self.policy,
                transport: self.transport,
                connect_timeout: self.connect_timeout,
                retry: self.retry,
                next: AtomicUsize::new(0),
                random: AtomicU64::new(seed()),
            }),
        }
    }
}

/// A client channel over the endpoints of a target, one picked per call by a [`Policy`].
/// Cloning is cheap and shares the endpoints and their connections.
#[derive(Clone)]
pub struct BalancedChannel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BalancedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedChannel")
            .field("policy", &self.inner.policy)
            .field("endpoints", &self.inner.lock_endpoints().len())
            .finish()
    }
}

impl BalancedChannel {
    /// Configures a channel to `target`: `static:///host1:port1,host2:port2` (a fixed list),
    /// `dns:///name:port` (every address of the name, resolved again every 30 s),
    /// `etcd://host:port/<service>` (the endpoints registered under the service key in etcd,
    /// watched; several etcd endpoints may be listed, separated by commas; needs the `etcd`
    /// feature, see [`crate::etcd`]), or a plain `host:port` (one endpoint, resolved on every
    /// connection attempt). Fails for another scheme or an empty list.
    pub fn builder(target: &str) -> Result<BalancedChannelBuilder, TargetError> {
        let error = |reason| TargetError {
            target: target.to_owned(),
            reason,
        };
        let resolver: Arc<dyn Resolver> = if let Some(list) = target.strip_prefix("static:///") {
            let addresses: Vec<Address> = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(Address::new)
                .collect();
            if addresses.is_empty() {
                return Err(error("static:/// names no address"));
            }
            Arc::new(StaticResolver(addresses))
        } else if let Some(name) = target.strip_prefix("dns:///") {
            let port = name.rsplit_once(':').map(|(_, port)| port);
            if name.is_empty() || port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(error("dns:/// needs name:port"));
            }
            Arc::new(DnsResolver::new(name))
        } else if let Some(rest) = target.strip_prefix("etcd://") {
            #[cfg(feature = "etcd")]
            {
                let Some((endpoints, service)) = rest.split_once('/') else {
                    return Err(error("etcd:// needs host:port/<service key>"));
                };
                if service.trim_matches('/').is_empty() {
                    return Err(error("etcd:// needs host:port/<service key>"));
                }
                let registry = crate::etcd::Registry::new(endpoints)
                    .map_err(|_| error("etcd:// needs host:port[,host:port...] before the key"))?;
                Arc::new(registry.resolver(service))
            }
            #[cfg(not(feature = "etcd"))]
            {
                let _ = rest;
                return Err(error("etcd:// targets need rust-rpc's `etcd` feature"));
            }
        } else if target.contains("://") {
            return Err(error("the scheme is not static:///, dns:/// or etcd://"));
        } else if target.is_empty() {
            return Err(error("empty"));
        } else {
            Arc::new(StaticResolver(vec![Address::new(target)]))
        };
        Ok(Self::with_resolver(resolver))
    }

    /// Configures a channel whose endpoints come from `resolver`.
    pub fn with_resolver(resolver: Arc<dyn Resolver>) -> BalancedChannelBuilder {
        BalancedChannelBuilder {
            resolver,
            policy: Policy::default(),
            transport: Transport::default(),
            connect_timeout: Duration::from_secs(20),
            retry: HashMap::new(),
        }
    }

    /// The endpoints the resolver gave last, in its order (none before the first call).
    pub fn addresses(&self) -> Vec<Address> {
        self.inner
            .lock_addresses()
            .as_ref()
            .map(|r| r.borrow().clone())
            .unwrap_or_default()
    }
}

struct Inner {
    resolver: Arc<dyn Resolver>,
    /// The resolver's set, once the first call has started it.
    addresses: Mutex<Option<watch::Receiver<Vec<Address>>>>,
    /// The resolver has sent a set (or will send none): calls no longer wait for one.
    answered: AtomicBool,
    /// One per address seen, kept while the resolver lists it.
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    policy: Policy,
    transport: Transport,
    connect_timeout: Duration,
    /// Retry policies by `package.Service` or `package.Service/Method`.
    retry: HashMap<String, RetryPolicy>,
    /// The round-robin position.
    next: AtomicUsize,
    /// State of the random numbers for `Weighted` and `LeastLoaded`.
    random: AtomicU64,
}

/// One endpoint's connection, and the calls this channel has in flight on it.
struct Endpoint {
    address: Address,
    channel: Subchannel,
    in_flight: Arc<AtomicUsize>,
}

#[derive(Clone)]
enum Subchannel {
    #[cfg(feature = "tcp")]
    Tcp(crate::tcp::TcpChannel),
    #[cfg(feature = "grpc")]
    Grpc(crate::grpc::GrpcChannel),
}

impl Subchannel {
    fn readiness(&self) -> Readiness {
        match self {
            #[cfg(feature = "tcp")]
            Subchannel::Tcp(channel) => channel.readiness(),
            #[cfg(feature = "grpc")]
            Subchannel::Grpc(channel) => channel.readiness(),
        }
    }

    fn as_channel(&self) -> &dyn RpcChannel {
        match self {
            #[cfg(feature = "tcp")]
            Subchannel::Tcp(channel) => channel,
            #[cfg(feature = "grpc")]
            Subchannel::Grpc(channel) => channel,
        }
    }
}

/// A seed for the channel's random numbers: the clock's nanoseconds.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

impl Inner {
    fn lock_addresses(&self) -> MutexGuard<'_, Option<watch::Receiver<Vec<Address>>>> {
        // No user code runs under this lock.
        self.addresses.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_endpoints(&self) -> MutexGuard<'_, HashMap<String, Arc<Endpoint>>> {
        // No user code runs under this lock.
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A random number (splitmix64 over a shared counter): good enough to spread calls.
    fn random(&self) -> u64 {
        let mut z = self
            .random
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn subchannel(&self, address: &Address) -> Subchannel {
        let addr = address.addr.as_str();
        match address.transport.unwrap_or(self.transport) {
            #[cfg(feature = "tcp")]
            Transport::Tcp => Subchannel::Tcp(
                crate::tcp::TcpChannel::builder(addr)
                    .connect_timeout(self.connect_timeout)
                    .connect_lazy(),
            ),
            #[cfg(feature = "grpc")]
            Transport::Grpc => Subchannel::Grpc(
                crate::grpc::GrpcChannel::builder(addr)
                    .connect_timeout(self.connect_timeout)
                    .connect_lazy(),
            ),
        }
    }

    /// The endpoints of the resolver's latest set, in its order, made for addresses that are
    /// new and dropped for those that are gone (their calls in flight keep what they hold).
    fn current(&self) -> Vec<Arc<Endpoint>> {
        // Both locks at once, addresses first, so that an older set is never installed over a
        // newer one.
        let mut receiver = self.lock_addresses();
        let receiver = receiver.get_or_insert_with(|| self.resolver.resolve());
        // A change, or a resolver that will send none, is an answer.
        if receiver.has_changed().unwrap_or(true) {
            self.answered.store(true, Ordering::Relaxed);
        }
        let mut addresses = receiver.borrow_and_update().clone();
        // An address listed twice is one endpoint (its first entry counts).
        let mut seen = std::collections::HashSet::new();
        addresses.retain(|a| seen.insert(a.addr.clone()));
        let mut endpoints = self.lock_endpoints();
        if endpoints.len() != addresses.len()
            || addresses
                .iter()
                .any(|a| endpoints.get(&a.addr).is_none_or(|e| e.address != *a))
        {
            let mut next = HashMap::with_capacity(addresses.len());
            for address in &addresses {
                let endpoint = match endpoints.remove(&address.addr) {
                    Some(endpoint) if endpoint.address == *address => endpoint,
                    // A new weight keeps the connection; a new transport needs another.
                    Some(endpoint) if endpoint.address.transport == address.transport => {
                        Arc::new(Endpoint {
                            address: address.clone(),
                            channel: endpoint.channel.clone(),
                            in_flight: endpoint.in_flight.clone(),
                        })
                    }
                    _ => Arc::new(Endpoint {
                        address: address.clone(),
                        channel: self.subchannel(address),
                        in_flight: Arc::new(AtomicUsize::new(0)),
                    }),
                };
                next.insert(address.addr.clone(), endpoint);
            }
            *endpoints = next;
        }
        addresses
            .iter()
            .filter_map(|a| endpoints.get(&a.addr).cloned())
            .collect()
    }

    /// The endpoint for the next call among `candidates` (none empty).
    fn pick(&self, candidates: &[Arc<Endpoint>]) -> usize {
        match self.policy {
            Policy::PickFirst => 0,
            Policy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % candidates.len(),
            Policy::Weighted => {
                let total: u64 = candidates.iter().map(|e| u64::from(e.address.weight)).sum();
                if total == 0 {
                    return (self.random() % candidates.len() as u64) as usize;
                }
                let mut point = self.random() % total;
                for (i, endpoint) in candidates.iter().enumerate() {
                    let weight = u64::from(endpoint.address.weight);
                    if point < weight {
                        return i;
                    }
                    point -= weight;
                }
                candidates.len() - 1
            }
            Policy::LeastLoaded => {
                let n = candidates.len() as u64;
                if n == 1 {
                    return 0;
                }
                // Two different endpoints.
                let a = (self.random() % n) as usize;
                let b = (a + 1 + (self.random() % (n - 1)) as usize) % n as usize;
                let load = |i: usize| candidates[i].in_flight.load(Ordering::Relaxed);
                if load(b) < load(a) {
                    b
                } else {
                    a
                }
            }
        }
    }
}

/// Counts a call in flight on its endpoint from its pick until its responses end (or its
/// start fails), so that calls starting together see each other.
struct InFlight(Option<Arc<AtomicUsize>>);

impl InFlight {
    fn new(endpoint: &Endpoint) -> InFlight {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Some(endpoint.in_flight.clone()))
    }

    /// Hands the count to the started call, which gives it back at its end.
    fn until_end_of(mut self, call: &ClientCall) {
        if let Some(in_flight) = self.0.take() {
            call.responses.on_end(move |_| {
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(in_flight) = &self.0 {
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl BalancedChannel {
    /// Starts one attempt of a call on the best endpoint not in `avoid` (or in it, if no other
    /// is left). Returns the started call and the endpoint's address.
    async fn start_once(
        &self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
        avoid: &[String],
    ) -> Result<(ClientCall, String), Status> {
        let mut candidates = self.inner.current();
        if candidates.is_empty() && !self.inner.answered.load(Ordering::Relaxed) {
            // The resolver's first answer may be on its way (DNS): wait for it, within the
            // call's deadline.
            let receiver = self.inner.lock_addresses().clone();
            if let Some(mut receiver) = receiver {
                let _ = receiver.changed().await;
            }
            candidates = self.inner.current();
        }
        if candidates.is_empty() {
            return Err(Status::unavailable(match self.inner.resolver.failure() {
                Some(why) => format!("the target resolved to no endpoint: {why}"),
                None => "the target resolved to no endpoint".to_owned(),
            }));
        }
        // Under Weighted, an endpoint of weight 0 takes calls only when every endpoint has
        // weight 0 (then they share evenly), whichever of them are connected.
        if self.inner.policy == Policy::Weighted && candidates.iter().any(|e| e.address.weight > 0)
        {
            candidates.retain(|e| e.address.weight > 0);
        }
        // A retry goes to another endpoint where there is one.
        if candidates.iter().any(|e| !avoid.contains(&e.address.addr)) {
            candidates.retain(|e| !avoid.contains(&e.address.addr));
        }
        // Endpoints are tried best first: those that can take the call now (connected, or
        // free to connect; pick_first prefers the connected one it is on), then those still
        // connecting (a peer that never answers holds a call only while nothing better is
        // there), then those backing off after a failure. The policy picks within the best
        // group.
        let mut groups: Vec<(Readiness, Vec<Arc<Endpoint>>)> = Vec::new();
        for endpoint in candidates {
            let readiness = match endpoint.channel.readiness() {
                Readiness::Idle if self.inner.policy != Policy::PickFirst => Readiness::Ready,
                readiness => readiness,
            };
            match groups.iter_mut().find(|(r, _)| *r == readiness) {
                Some((_, group)) => group.push(endpoint),
                None => groups.push((readiness, vec![endpoint])),
            }
        }
        groups.sort_by_key(|(r, _)| *r);
        let mut last = None;
        for (_, mut candidates) in groups {
            while !candidates.is_empty() {
                let endpoint = candidates.remove(self.inner.pick(&candidates));
                let in_flight = InFlight::new(&endpoint);
                let mut attempt = call.clone();
                if attempt.request.is_some() && attempt.replay.is_none() {
                    attempt.replay = Some(self.replay(method, &call, &endpoint.address.addr));
                }
                match endpoint
                    .channel
                    .as_channel()
                    .start_call(method, attempt)
                    .await
                {
                    Ok(started) => {
                        in_flight.until_end_of(&started);
                        return Ok((started, endpoint.address.addr.clone()));
                    }
                    // Not connected: the call reached no server, so it may go elsewhere; and
                    // the resolver's set may be stale.
                    Err(status) if status.code() == Code::Unavailable => {
                        self.inner.resolver.refresh();
                        last = Some(status);
                    }
                    Err(status) => return Err(status),
                }
            }
        }
        Err(last.unwrap_or_else(|| Status::unavailable("no endpoint could be reached")))
    }

    /// Sends a call that the server at `refused_by` refused unprocessed to another endpoint
    /// (or, if none is left, to the same one again), once.
    fn replay(
        &self,
        method: &'static MethodDescriptor,
        call: &OutgoingCall,
        refused_by: &str,
    ) -> crate::call::Replay {
        let channel = self.clone();
        let call = call.clone();
        let avoid = vec![refused_by.to_owned()];
        crate::call::Replay::new(move |responses| {
            let (channel, mut call, avoid) = (channel.clone(), call.clone(), avoid.clone());
            // Once: a call refused again fails.
            call.replay = None;
            tokio::spawn(async move {
                match channel.start_once(method, call, &avoid).await {
                    Ok((started, _)) => retry::forward_all(started, &responses).await,
                    Err(status) => responses.abort(status),
                }
            });
        })
    }

    /// The retry policy for `method`, if it has one and its calls can be retried.
    fn retry_policy(&self, method: &MethodDescriptor) -> Option<&RetryPolicy> {
        if method.client_streaming || self.inner.retry.is_empty() {
            return None;
        }
        let retry = &self.inner.retry;
        retry
            .get(&format!("{}/{}", method.service, method.name))
            .or_else(|| retry.get(method.service))
            .filter(|p| p.max_attempts > 1)
    }
}

impl RpcChannel for BalancedChannel {
    fn start_call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        call: OutgoingCall,
    ) -> BoxFuture<'a, Result<ClientCall, Status>> {
        Box::pin(async move {
            match self.retry_policy(method) {
                Some(policy) if call.request.is_some() => {
                    Ok(retry::start(self.clone(), method, call, policy.clone()))
                }
                _ => self.start_once(method, call, &[]).await.map(|(c, _)| c),
            }
        })
    }
}
