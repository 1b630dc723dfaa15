//! What the service tests share: implementations that report what happened to them, a server
//! and channels over each transport, a client that writes TCP frames by hand, and bounds.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rust_rpc::call::ServerCore;
use rust_rpc::tcp::wire::{CallStatus, RequestHeaders, Settings};
use rust_rpc::tcp::{Server, ServerHandle, TcpChannel};
use rust_rpc::{
    Closure, InProcessChannel, Message, RpcChannel, RpcController, Service, Status, StreamSender,
    Streaming,
};
use rust_rpc_testdata::ours::echo_service::{self as echo, EchoService, EchoServiceServer};
use rust_rpc_testdata::ours::services::{Calculator, CalculatorServer, Number};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const LIMIT: Duration = Duration::from_secs(20);

/// Echo implements only `Echo`; `Add` keeps the generated default.
pub struct Echo;

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
pub struct Events {
    /// Handlers that started.
    pub started: AtomicUsize,
    /// Handlers that saw their call cancelled.
    pub cancelled: AtomicUsize,
    /// Handlers that are over: returned, or dropped by the server.
    pub finished: AtomicUsize,
    /// Messages streaming handlers sent.
    pub sent: AtomicUsize,
    /// Messages streaming handlers read.
    pub read: AtomicUsize,
    /// Why handlers that waited for their call's end saw it end.
    pub ended_with: std::sync::Mutex<Vec<rust_rpc::Code>>,
}

/// Counts a handler as finished when it is dropped, however that happens.
struct Finished(Arc<Events>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct Calc {
    pub events: Arc<Events>,
}

impl Calc {
    pub fn new(events: Arc<Events>) -> Self {
        Calc { events }
    }
}

pub fn number(value: i64) -> Number {
    Number {
        value,
        ..Default::default()
    }
}

impl Calculator for Calc {
    /// Doubles, except for a few values that ask for a behaviour.
    async fn double(&self, ctrl: &mut RpcController, request: Number) -> Result<Number, Status> {
        self.events.started.fetch_add(1, Ordering::SeqCst);
        let _finished = Finished(self.events.clone());
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
            -5 => {
                ctrl.response_metadata_mut().insert("x-seen", "yes");
                ctrl.trailers_mut().insert("x-trailer", "done");
                let factor = ctrl
                    .metadata()
                    .get("x-factor")
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(0);
                Ok(number(factor))
            }
            -7 => Err(Status::with_details(
                rust_rpc::Code::FailedPrecondition,
                "with details",
                &b"\x08\x09details\xff"[..],
            )),
            -6 => {
                // Ignores cancellation altogether.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(number(0))
            }
            v => Ok(number(v * 2)),
        }
    }

    /// Counts down; from `-10 - n`, sends forever every `n` ms, ignoring all but its sends'
    /// results.
    async fn countdown(
        &self,
        _ctrl: &mut RpcController,
        request: Number,
        responses: StreamSender<Number>,
    ) -> Result<(), Status> {
        self.events.started.fetch_add(1, Ordering::SeqCst);
        let _finished = Finished(self.events.clone());
        if request.value <= -10 {
            let pause = Duration::from_millis((-10 - request.value) as u64);
            let mut i = 0;
            loop {
                responses.send(number(i)).await?;
                self.events.sent.fetch_add(1, Ordering::SeqCst);
                i += 1;
                tokio::time::sleep(pause).await;
            }
        }
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
        self.events.started.fetch_add(1, Ordering::SeqCst);
        let _finished = Finished(self.events.clone());
        let mut total = 0;
        loop {
            match requests.message().await {
                Ok(Some(n)) => {
                    self.events.read.fetch_add(1, Ordering::SeqCst);
                    total += n.value;
                }
                Ok(None) => return Ok(number(total)),
                Err(status) => {
                    let mut ended = self.events.ended_with.lock().unwrap();
                    ended.push(status.code());
                    return Err(status);
                }
            }
        }
    }

    async fn running_total(
        &self,
        ctrl: &mut RpcController,
        mut requests: Streaming<Number>,
        responses: StreamSender<Number>,
    ) -> Result<(), Status> {
        self.events.started.fetch_add(1, Ordering::SeqCst);
        let _finished = Finished(self.events.clone());
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

pub fn services(events: Arc<Events>) -> Vec<Arc<dyn Service>> {
    vec![
        Arc::new(CalculatorServer::new(Calc::new(events))),
        Arc::new(EchoServiceServer::new(Echo)),
    ]
}

/// The services, served over both network transports with the same events.
pub struct TestServer {
    tcp: ServerHandle,
    grpc: ServerHandle,
}

impl TestServer {
    /// The TCP server's address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.tcp.local_addr()
    }

    /// The gRPC server's address.
    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc.local_addr()
    }

    pub async fn shutdown(self) -> std::io::Result<()> {
        let (tcp, grpc) = tokio::join!(self.tcp.shutdown(), self.grpc.shutdown());
        tcp.and(grpc)
    }

    pub async fn shutdown_timeout(self, grace: Duration) -> std::io::Result<()> {
        let (tcp, grpc) = tokio::join!(
            self.tcp.shutdown_timeout(grace),
            self.grpc.shutdown_timeout(grace)
        );
        tcp.and(grpc)
    }
}

pub async fn start(events: Arc<Events>) -> TestServer {
    let tcp = Server::builder()
        .add_service(CalculatorServer::new(Calc::new(events.clone())))
        .add_service(EchoServiceServer::new(Echo))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
        .spawn()
        .expect("spawn");
    let grpc = rust_rpc::grpc::Server::builder()
        .add_service(CalculatorServer::new(Calc::new(events)))
        .add_service(EchoServiceServer::new(Echo))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
        .spawn()
        .expect("spawn");
    TestServer { tcp, grpc }
}

/// A server of its own on loopback hosting `service`, over gRPC or the TCP transport (both
/// servers' handles are the one `ServerHandle` type).
pub async fn serve_alone(grpc: bool, service: impl Service) -> ServerHandle {
    if grpc {
        rust_rpc::grpc::Server::builder()
            .add_service(service)
            .bind("127.0.0.1:0")
            .await
            .expect("bind")
            .spawn()
            .expect("spawn")
    } else {
        Server::builder()
            .add_service(service)
            .bind("127.0.0.1:0")
            .await
            .expect("bind")
            .spawn()
            .expect("spawn")
    }
}

/// The ways a client reaches the services; the same behaviour is expected of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The TCP server started by [`start`], over loopback.
    Tcp,
    /// A fresh in-process server core, whose calculator reports to the given events.
    InProcess,
    /// The gRPC server started by [`start`], over loopback.
    Grpc,
}

pub const TRANSPORTS: [Transport; 3] = [Transport::Tcp, Transport::InProcess, Transport::Grpc];

impl Transport {
    pub async fn channel(self, server: &TestServer, events: Arc<Events>) -> Arc<dyn RpcChannel> {
        match self {
            Transport::Tcp => Arc::new(TcpChannel::connect(server.local_addr()).await.unwrap()),
            Transport::Grpc => Arc::new(
                rust_rpc::grpc::GrpcChannel::connect(server.grpc_addr())
                    .await
                    .unwrap(),
            ),
            Transport::InProcess => Arc::new(InProcessChannel::with_core(Arc::new(
                ServerCore::new(services(events), Vec::new()),
            ))),
        }
    }
}

pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test took too long")
}

pub async fn wait_for(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn encode(message: &impl Message) -> Vec<u8> {
    message.encode_to_vec()
}

pub async fn assert_closed(stream: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server closes the connection");
        match read {
            Ok(0) | Err(_) => return,
            // The server's own preface and SETTINGS may come first.
            Ok(_) => continue,
        }
    }
}

/// The TCP protocol's preface, as `runtime/PROTOCOL.md` gives it.
pub const PREFACE: &[u8; 12] = b"RRPC/2.0\r\n\r\n";

/// Frame types of the TCP protocol, as `runtime/PROTOCOL.md` numbers them.
pub mod frame {
    pub const SETTINGS: u8 = 1;
    pub const HEADERS: u8 = 2;
    pub const MESSAGE: u8 = 3;
    pub const HALF_CLOSE: u8 = 4;
    pub const STATUS: u8 = 5;
    pub const CANCEL: u8 = 6;
    pub const END_STREAM: u8 = 1;
    pub const END_OK: u8 = 2;
}

/// A client that writes the TCP protocol's frames by hand, to do what a real client would not.
pub struct RawClient {
    pub stream: tokio::net::TcpStream,
}

impl RawClient {
    /// Connects and exchanges prefaces.
    pub async fn connect(addr: std::net::SocketAddr) -> RawClient {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut client = RawClient { stream };
        client.stream.write_all(PREFACE).await.unwrap();
        client
            .frame(frame::SETTINGS, 0, 0, &encode(&Settings::default()))
            .await;
        let mut preface = [0u8; 12];
        client.stream.read_exact(&mut preface).await.unwrap();
        assert_eq!(&preface, PREFACE);
        let (kind, _, _) = client.read_frame().await.expect("the server's SETTINGS");
        assert_eq!(kind, frame::SETTINGS);
        client
    }

    pub async fn frame_header(&mut self, len: u32, kind: u8, flags: u8, call_id: u64) {
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[kind, flags, 0, 0]);
        header.extend_from_slice(&call_id.to_be_bytes());
        self.stream.write_all(&header).await.unwrap();
    }

    pub async fn frame(&mut self, kind: u8, flags: u8, call_id: u64, payload: &[u8]) {
        self.frame_header(payload.len() as u32, kind, flags, call_id)
            .await;
        self.stream.write_all(payload).await.unwrap();
    }

    /// Starts a call without its request.
    pub async fn call_without_request(&mut self, call_id: u64, service: &str, method: &str) {
        let headers = RequestHeaders {
            service: service.into(),
            method: method.into(),
            ..Default::default()
        };
        self.frame(frame::HEADERS, 0, call_id, &encode(&headers))
            .await;
    }

    /// Starts a call with its one request.
    pub async fn call(&mut self, call_id: u64, service: &str, method: &str, request: &[u8]) {
        self.call_without_request(call_id, service, method).await;
        self.message(call_id, request, true).await;
    }

    pub async fn message(&mut self, call_id: u64, payload: &[u8], last: bool) {
        let flags = if last { frame::END_STREAM } else { 0 };
        self.frame(frame::MESSAGE, flags, call_id, payload).await;
    }

    pub async fn cancel(&mut self, call_id: u64) {
        self.frame(frame::CANCEL, 0, call_id, &[]).await;
    }

    /// The next frame: its type, call id and payload; `None` once the server closed.
    pub async fn read_frame(&mut self) -> Option<(u8, u64, Vec<u8>)> {
        self.read_frame_with_flags()
            .await
            .map(|(kind, _, id, payload)| (kind, id, payload))
    }

    /// The next frame: its type, flags, call id and payload.
    pub async fn read_frame_with_flags(&mut self) -> Option<(u8, u8, u64, Vec<u8>)> {
        let mut header = [0u8; 16];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[8..]);
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((header[4], header[5], u64::from_be_bytes(id), payload))
    }

    /// Reads frames until the end of `call_id`: its STATUS, or a last MESSAGE flagged END_OK
    /// (an OK status, returned as the default `CallStatus`).
    pub async fn status_of(&mut self, call_id: u64) -> CallStatus {
        loop {
            let (kind, flags, id, payload) =
                self.read_frame_with_flags().await.expect("the call's end");
            if id != call_id {
                continue;
            }
            if kind == frame::STATUS {
                return CallStatus::decode(&payload).unwrap();
            }
            if kind == frame::MESSAGE && flags & frame::END_OK != 0 {
                return CallStatus::default();
            }
        }
    }

    pub async fn assert_closed(&mut self) {
        assert_closed(&mut self.stream).await;
    }
}
