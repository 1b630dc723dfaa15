use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::net::{lookup_host, TcpStream, ToSocketAddrs};
use tokio::sync::oneshot;

use super::io::{FrameReader, FrameWriter};
use super::wire::{Envelope, FrameType};
use super::{encode_frame, metadata_from_wire, metadata_to_wire, status_from_wire, Limits};
use crate::service::{BoxFuture, MethodDescriptor, RequestBody, RpcChannel};
use crate::stream::{ByteSink, ByteStream};
use crate::{Metadata, RpcController, Status};

/// A client channel over one TCP connection, shared by every call made through it.
///
/// Calls are multiplexed by call id, so any number may be in flight at once. If the
/// connection drops, calls in flight fail with `unavailable` and the next call reconnects.
/// Deadlines are enforced here as well as sent to the server, so a call never outlives its
/// deadline even if the server does not answer. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct TcpChannel {
    inner: Arc<ChannelInner>,
}

struct ChannelInner {
    addr: SocketAddr,
    limits: Limits,
    next_call_id: AtomicU64,
    /// The live connection; read on every call, so a plain mutex held only to clone it.
    connection: Mutex<Option<Arc<Connection>>>,
    /// Serialises reconnecting, so concurrent calls after a drop open one connection.
    reconnecting: tokio::sync::Mutex<()>,
}

/// The result of a call as the reader hands it over: a payload (absent for streams) and the
/// response metadata.
type Completion = Result<(Option<Vec<u8>>, Metadata), Status>;

struct Pending {
    done: oneshot::Sender<Completion>,
    /// Where response stream messages go, for server-streaming calls.
    responses: Option<ByteSink>,
}

struct Connection {
    writer: Arc<FrameWriter>,
    pending: Mutex<HashMap<u64, Pending>>,
    closed: AtomicBool,
}

impl Drop for Connection {
    /// The last channel and call using the connection are gone: close the socket, which also
    /// ends its reader and flush tasks.
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl Connection {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        // Nothing panics while holding this lock; recover the map rather than propagate.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, envelope: &Envelope) -> Result<(), Status> {
        let busy = self.pending().len() > 1;
        self.writer
            .send(&encode_frame(envelope), busy)
            .await
            .map_err(|_| Status::unavailable("the connection closed"))
    }

    fn cancel(&self, call_id: u64) {
        self.pending().remove(&call_id);
        self.writer.try_send(&encode_frame(&Envelope {
            r#type: FrameType::CANCEL,
            call_id,
            ..Default::default()
        }));
    }
}

impl TcpChannel {
    /// Connects to `addr` with the default [`Limits`].
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpChannel> {
        Self::connect_with_limits(addr, Limits::default()).await
    }

    /// Connects to `addr`; `limits.max_frame_size` bounds the frames accepted and sent.
    pub async fn connect_with_limits(
        addr: impl ToSocketAddrs,
        limits: Limits,
    ) -> io::Result<TcpChannel> {
        let addr = lookup_host(addr).await?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing")
        })?;
        let channel = TcpChannel {
            inner: Arc::new(ChannelInner {
                addr,
                limits,
                next_call_id: AtomicU64::new(1),
                connection: Mutex::new(None),
                reconnecting: tokio::sync::Mutex::new(()),
            }),
        };
        let connection = channel.open().await?;
        *channel.slot() = Some(connection);
        Ok(channel)
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Connection>>> {
        // Nothing panics while holding this lock; recover the slot rather than propagate.
        self.inner
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn open(&self) -> io::Result<Arc<Connection>> {
        let stream = TcpStream::connect(self.inner.addr).await?;
        let _ = stream.set_nodelay(true);
        let stream = Arc::new(stream);
        let frames = FrameReader::new(stream.clone(), self.inner.limits.max_frame_size);
        let (writer, flush) = FrameWriter::new(stream);
        tokio::spawn(flush);
        let connection = Arc::new(Connection {
            writer,
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(read_responses(frames, Arc::downgrade(&connection)));
        Ok(connection)
    }

    fn live_connection(&self) -> Option<Arc<Connection>> {
        self.slot()
            .as_ref()
            .filter(|c| !c.closed.load(Ordering::SeqCst))
            .cloned()
    }

    /// The live connection, reconnecting if the last one closed.
    async fn connection(&self) -> Result<Arc<Connection>, Status> {
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        let _reconnecting = self.inner.reconnecting.lock().await;
        // Another call may have reconnected while this one waited.
        if let Some(connection) = self.live_connection() {
            return Ok(connection);
        }
        let connection = self.open().await.map_err(|e| {
            Status::unavailable(format!("cannot connect to {}: {e}", self.inner.addr))
        })?;
        *self.slot() = Some(connection.clone());
        Ok(connection)
    }

    async fn perform(
        &self,
        method: &'static MethodDescriptor,
        ctrl: &mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> Result<Option<Vec<u8>>, Status> {
        if ctrl.is_cancelled() {
            return Err(Status::cancelled(
                "the call was cancelled before it started",
            ));
        }
        let timeout = ctrl.remaining();
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Status::deadline_exceeded(
                "the deadline passed before the call started",
            ));
        }
        let connection = self.connection().await?;
        let call_id = self.inner.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (done, completion) = oneshot::channel();
        connection
            .pending()
            .insert(call_id, Pending { done, responses });
        let mut guard = CallGuard {
            connection: &connection,
            call_id,
            finished: false,
        };
        let (payload, request_stream) = match request {
            RequestBody::Unary(bytes) => (bytes, None),
            RequestBody::Stream(stream) => (Vec::new(), Some(stream)),
        };
        if payload.len() > self.inner.limits.max_frame_size {
            return Err(Status::resource_exhausted(
                "the request is over the frame limit",
            ));
        }
        connection
            .send(&Envelope {
                r#type: FrameType::REQUEST,
                call_id,
                service: method.service.to_owned(),
                method: method.name.to_owned(),
                timeout_micros: timeout
                    .map_or(0, |t| t.as_micros().clamp(1, u128::from(u64::MAX)) as u64),
                metadata: metadata_to_wire(ctrl.metadata()),
                payload,
                ..Default::default()
            })
            .await?;

        let exchange = exchange(&connection, call_id, request_stream, completion);
        let deadline = ctrl.deadline();
        let outcome = tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = sleep_until(deadline) => Err(Status::deadline_exceeded("the deadline passed before the server answered")),
            () = ctrl.cancelled() => Err(Status::cancelled("the call was cancelled")),
        };
        match outcome {
            Ok((payload, metadata)) => {
                guard.finished = true;
                ctrl.set_response_metadata(metadata);
                Ok(payload)
            }
            Err(status) => {
                // The reader already forgot a call that the server failed; for a deadline or a
                // cancellation the guard tells the server to stop.
                if status.code() != crate::Code::DeadlineExceeded
                    && status.code() != crate::Code::Cancelled
                {
                    guard.finished = true;
                }
                Err(status)
            }
        }
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends the request stream, if any, while waiting for the call's completion.
async fn exchange(
    connection: &Connection,
    call_id: u64,
    request_stream: Option<ByteStream>,
    completion: oneshot::Receiver<Completion>,
) -> Completion {
    let completion = async move {
        completion
            .await
            .unwrap_or_else(|_| Err(Status::unavailable("the connection closed")))
    };
    let Some(mut requests) = request_stream else {
        return completion.await;
    };
    let pump = async {
        while let Some(item) = requests.0.recv().await {
            let payload = item?;
            connection
                .send(&Envelope {
                    r#type: FrameType::STREAM_MESSAGE,
                    call_id,
                    payload,
                    ..Default::default()
                })
                .await?;
        }
        connection
            .send(&Envelope {
                r#type: FrameType::STREAM_END,
                call_id,
                ..Default::default()
            })
            .await
    };
    tokio::pin!(completion);
    tokio::pin!(pump);
    let mut pumping = true;
    loop {
        tokio::select! {
            done = &mut completion => return done,
            sent = &mut pump, if pumping => {
                pumping = false;
                // The caller's request stream failed: give up on the call.
                sent?;
            }
        }
    }
}

/// Forgets a call that ended without the server's word, and tells the server to stop it.
struct CallGuard<'a> {
    connection: &'a Connection,
    call_id: u64,
    finished: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.cancel(self.call_id);
        }
    }
}

async fn read_responses(mut frames: FrameReader, connection: Weak<Connection>) {
    while let Ok(Some(envelope)) = frames.next().await {
        // Nobody holds the connection any more: nothing is waiting for these frames.
        let Some(connection) = connection.upgrade() else {
            return;
        };
        let call_id = envelope.call_id;
        match envelope.r#type {
            FrameType::RESPONSE | FrameType::STREAM_END => {
                if let Some(pending) = connection.pending().remove(&call_id) {
                    let payload =
                        (envelope.r#type == FrameType::RESPONSE).then_some(envelope.payload);
                    let _ = pending
                        .done
                        .send(Ok((payload, metadata_from_wire(envelope.metadata))));
                }
            }
            FrameType::ERROR => {
                let status = status_from_wire(&envelope);
                let pending = connection.pending().remove(&call_id);
                if let Some(pending) = pending {
                    if let Some(responses) = pending.responses {
                        responses.send_error(status.clone()).await;
                    }
                    let _ = pending.done.send(Err(status));
                }
            }
            FrameType::STREAM_MESSAGE => {
                let sink = connection
                    .pending()
                    .get(&call_id)
                    .and_then(|p| p.responses.clone());
                if let Some(sink) = sink {
                    // A consumer that dropped its stream has lost interest; that is its call.
                    let _ = sink.send_bytes(envelope.payload).await;
                }
            }
            // Anything else from a server is a protocol error: drop the connection.
            _ => break,
        }
    }
    let Some(connection) = connection.upgrade() else {
        return;
    };
    connection.closed.store(true, Ordering::SeqCst);
    let orphans: Vec<Pending> = connection.pending().drain().map(|(_, p)| p).collect();
    for pending in orphans {
        let status = Status::unavailable("the connection closed");
        if let Some(responses) = pending.responses {
            responses.send_error(status.clone()).await;
        }
        let _ = pending.done.send(Err(status));
    }
}

impl RpcChannel for TcpChannel {
    fn call<'a>(
        &'a self,
        method: &'static MethodDescriptor,
        ctrl: &'a mut RpcController,
        request: RequestBody,
        responses: Option<ByteSink>,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Status>> {
        Box::pin(self.perform(method, ctrl, request, responses))
    }
}
