use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{oneshot, watch, Notify};

use super::io::{FrameReader, FrameWriter};
use super::wire::{Envelope, FrameType};
use super::{encode_frame, metadata_from_wire, metadata_to_wire, FrameSink, Limits};
use crate::controller::CancelToken;
use crate::service::{CatchUnwind, RequestBody, Service};
use crate::stream::{byte_channel, ByteSink, SinkInner, DEFAULT_STREAM_CAPACITY};
use crate::{RpcController, Status};

/// Collects services and limits, then binds a [`Server`].
#[derive(Default)]
pub struct ServerBuilder {
    services: HashMap<&'static str, Arc<dyn Service>>,
    limits: Limits,
}

impl ServerBuilder {
    /// Hosts `service`; calls are routed to it by its fully qualified name. A second service
    /// with the same name replaces the first.
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services
            .insert(service.descriptor().full_name, Arc::new(service));
        self
    }

    /// Sets the largest frame accepted or sent.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes;
        self
    }

    /// Sets how many calls one connection may have in flight.
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.limits.max_concurrent_calls = calls;
        self
    }

    /// Listens on `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let (stop, _) = watch::channel(false);
        let (force, _) = watch::channel(false);
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                services: self.services,
                limits: self.limits,
                connections: AtomicUsize::new(0),
                idle: Notify::new(),
                stop,
                force,
            }),
        })
    }
}

struct Shared {
    services: HashMap<&'static str, Arc<dyn Service>>,
    limits: Limits,
    /// Open connections; each lives until its calls have sent their last frame.
    connections: AtomicUsize,
    idle: Notify,
    /// Set when shutdown starts: no new calls.
    stop: watch::Sender<bool>,
    /// Set when the grace period is over: cancel what is left and close.
    force: watch::Sender<bool>,
}

/// A bound TCP server hosting any number of services; many connections, and many concurrent
/// calls on each.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> io::Result<()> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: no new connections are
    /// accepted, new calls on open connections fail with `unavailable`, and calls in flight
    /// (streams included) run to completion and get their responses.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let shared = self.shared.clone();
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            serve_connection(stream, &shared).await;
                            if shared.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
                                shared.idle.notify_waiters();
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
        drop(self.listener);
        let _ = self.shared.stop.send(true);
        let shared = &self.shared;
        crate::wait::until(&shared.idle, || {
            (shared.connections.load(Ordering::SeqCst) == 0).then_some(())
        })
        .await;
        Ok(())
    }

    /// Serves on a background task; the handle shuts it down.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let (trigger, signal) = oneshot::channel::<()>();
        let force = self.shared.force.clone();
        let task = tokio::spawn(self.serve_until(async move {
            let _ = signal.await;
        }));
        Ok(ServerHandle {
            addr,
            trigger,
            force,
            task,
        })
    }
}

/// A server running in the background.
pub struct ServerHandle {
    addr: SocketAddr,
    trigger: oneshot::Sender<()>,
    force: watch::Sender<bool>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets calls in flight finish, and waits for them.
    pub async fn shutdown(self) -> io::Result<()> {
        let _ = self.trigger.send(());
        self.task
            .await
            .map_err(|e| io::Error::other(format!("server task failed: {e}")))?
    }

    /// Like [`shutdown`](ServerHandle::shutdown), but gives calls in flight only `grace` to
    /// finish: then their handlers are cancelled and their connections closed, so a handler
    /// that ignores cancellation cannot hold the shutdown up.
    pub async fn shutdown_timeout(self, grace: std::time::Duration) -> io::Result<()> {
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

/// What the connection's reader needs to know about one call in flight.
struct CallEntry {
    cancel: CancelToken,
    /// Where the client's stream messages go, until its STREAM_END.
    requests: Option<ByteSink>,
}

type Calls = Arc<Mutex<HashMap<u64, CallEntry>>>;

fn lock(calls: &Calls) -> std::sync::MutexGuard<'_, HashMap<u64, CallEntry>> {
    // Nothing panics while holding this lock; recover the map rather than propagate.
    calls.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let stream = Arc::new(stream);
    let mut frames = FrameReader::new(stream.clone(), shared.limits.max_frame_size);
    let (writer, flush) = FrameWriter::new(stream);
    tokio::spawn(flush);
    let calls: Calls = Arc::default();
    let call_ended = Arc::new(Notify::new());
    let mut stop = shared.stop.subscribe();
    let mut stopping = *stop.borrow();
    let mut force = shared.force.subscribe();
    let client_gone = loop {
        if stopping && lock(&calls).is_empty() {
            break false;
        }
        // Shutdown is checked first so that a client that never pauses cannot delay it.
        let envelope = tokio::select! {
            biased;
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
            () = call_ended.notified(), if stopping => continue,
            // The grace period is over: treat the client as gone.
            _ = force.changed(), if stopping => break true,
            frame = frames.next() => match frame {
                Ok(Some(envelope)) => envelope,
                // End of stream, an oversize frame, or bytes that are not a frame: this
                // connection is done; others are untouched.
                Ok(None) | Err(_) => break true,
            },
        };
        match envelope.r#type {
            FrameType::REQUEST if stopping => {
                send_error(
                    &writer,
                    envelope.call_id,
                    &Status::unavailable("the server is shutting down"),
                );
            }
            FrameType::REQUEST => start_call(envelope, shared, &calls, &call_ended, &writer),
            FrameType::STREAM_MESSAGE => {
                let sink = lock(&calls)
                    .get(&envelope.call_id)
                    .and_then(|c| c.requests.clone());
                if let Some(sink) = sink {
                    // The handler may have stopped reading; that is its call to make.
                    let _ = sink.send_bytes(envelope.payload).await;
                }
            }
            FrameType::STREAM_END => {
                if let Some(call) = lock(&calls).get_mut(&envelope.call_id) {
                    call.requests = None;
                }
            }
            FrameType::CANCEL => {
                let token = lock(&calls)
                    .get(&envelope.call_id)
                    .map(|c| c.cancel.clone());
                if let Some(token) = token {
                    token.cancel();
                }
            }
            // A client has no business sending anything else.
            _ => break true,
        }
    };
    if client_gone {
        // Nobody will read these calls' results.
        for call in lock(&calls).values() {
            call.cancel.cancel();
        }
        writer.abort();
    } else {
        // Every call has queued its last frame; let them reach the client.
        writer.close(true).await;
    }
}

/// The frame that ends a call with `status`.
fn error_envelope(call_id: u64, status: &Status) -> Envelope {
    Envelope {
        r#type: FrameType::ERROR,
        call_id,
        error_code: status.code() as u32,
        error_message: status.message().to_owned(),
        ..Default::default()
    }
}

fn send_error(writer: &FrameWriter, call_id: u64, status: &Status) {
    let frame = encode_frame(&error_envelope(call_id, status));
    // A full backlog means a client that does not read; dropping its error is fine.
    let _ = writer.try_send(&frame);
}

fn start_call(
    envelope: Envelope,
    shared: &Arc<Shared>,
    calls: &Calls,
    call_ended: &Arc<Notify>,
    writer: &Arc<FrameWriter>,
) {
    let call_id = envelope.call_id;
    let Some(service) = shared.services.get(envelope.service.as_str()).cloned() else {
        return send_error(
            writer,
            call_id,
            &Status::unimplemented(format!("unknown service {}", envelope.service)),
        );
    };
    let Some(method) = service.descriptor().method(&envelope.method) else {
        return send_error(
            writer,
            call_id,
            &Status::unimplemented(format!(
                "unknown method {} of {}",
                envelope.method, envelope.service
            )),
        );
    };
    let cancel = CancelToken::new();
    let mut ctrl = RpcController::new();
    ctrl.set_cancel_token(cancel.clone());
    if envelope.timeout_micros > 0 {
        ctrl.set_deadline(
            Instant::now().checked_add(Duration::from_micros(envelope.timeout_micros)),
        );
    }
    ctrl.set_metadata(metadata_from_wire(envelope.metadata));
    let (request, requests) = if method.client_streaming {
        let (sink, stream) = byte_channel(DEFAULT_STREAM_CAPACITY);
        (RequestBody::Stream(stream), Some(sink))
    } else {
        (RequestBody::Unary(envelope.payload), None)
    };
    let responses = method.server_streaming.then(|| {
        ByteSink(SinkInner::Frames(FrameSink {
            call_id,
            writer: writer.clone(),
            max_frame_size: shared.limits.max_frame_size,
        }))
    });
    {
        let mut table = lock(calls);
        if table.len() >= shared.limits.max_concurrent_calls {
            drop(table);
            return send_error(
                writer,
                call_id,
                &Status::resource_exhausted("too many calls in flight on this connection"),
            );
        }
        table.insert(
            call_id,
            CallEntry {
                cancel: cancel.clone(),
                requests,
            },
        );
    }
    let shared = shared.clone();
    let calls = calls.clone();
    let call_ended = call_ended.clone();
    let writer = writer.clone();
    let index = method.index;
    tokio::spawn(async move {
        let deadline = ctrl.deadline();
        let mut deadline_sent = false;
        let result = {
            let call = CatchUnwind(service.call_method(index, &mut ctrl, request, responses));
            tokio::pin!(call);
            let first = match deadline {
                Some(deadline) => tokio::select! {
                    biased;
                    result = &mut call => Some(result),
                    () = tokio::time::sleep_until(deadline.into()) => None,
                },
                None => Some(call.as_mut().await),
            };
            match first {
                Some(result) => result,
                None => {
                    // Tell the client now, and let the handler see the cancellation and stop.
                    cancel.cancel();
                    send_error(
                        &writer,
                        call_id,
                        &Status::deadline_exceeded("the deadline passed on the server"),
                    );
                    deadline_sent = true;
                    call.await
                }
            }
        };
        if !deadline_sent {
            let metadata = metadata_to_wire(ctrl.response_metadata());
            let envelope = match result {
                Ok(Some(payload)) => Envelope {
                    r#type: FrameType::RESPONSE,
                    call_id,
                    metadata,
                    payload,
                    ..Default::default()
                },
                Ok(None) => Envelope {
                    r#type: FrameType::STREAM_END,
                    call_id,
                    metadata,
                    ..Default::default()
                },
                Err(status) => Envelope {
                    metadata,
                    ..error_envelope(call_id, &status)
                },
            };
            let frame = encode_frame(&envelope);
            let frame = if frame.len() - 4 > shared.limits.max_frame_size {
                let status = Status::resource_exhausted("the response is over the frame limit");
                encode_frame(&error_envelope(call_id, &status))
            } else {
                frame
            };
            let busy = lock(&calls).len() > 1;
            let _ = writer.send(&frame, busy).await;
        }
        lock(&calls).remove(&call_id);
        call_ended.notify_one();
    });
}
