//! Writing frames to a shared `TcpStream`, built for few task switches per call.
//!
//! [`FrameWriter`] writes a frame straight from the sending task when the socket takes it
//! whole, and hands the rest to a background flush only when the socket would block, so an
//! idle connection costs no extra task switch while a busy one still batches its writes.

use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpStream;
use tokio::sync::Notify;

/// The bytes under a connection: a TCP socket, shared by reader and writer through its
/// readiness, or TLS over one, split in two halves.
pub(crate) enum Socket {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls {
        stream: Box<tokio_rustls::TlsStream<TcpStream>>,
        /// The same socket, to close it from outside the TLS stream.
        raw: socket2::Socket,
    },
}

impl Socket {
    /// TLS over `tcp`, once its handshake is done.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(stream: tokio_rustls::TlsStream<TcpStream>) -> io::Result<Socket> {
        let raw = socket2::SockRef::from(stream.get_ref().0).try_clone()?;
        Ok(Socket::Tls {
            stream: Box::new(stream),
            raw,
        })
    }

    /// The reading and the writing side.
    pub(crate) fn split(self) -> (ReadSide, WriteSide) {
        match self {
            Socket::Plain(tcp) => (ReadSide::Plain(tcp.clone()), WriteSide::Plain(tcp)),
            #[cfg(feature = "tls")]
            Socket::Tls { stream, raw } => {
                let (read, write) = tokio::io::split(*stream);
                (
                    ReadSide::Tls(read),
                    WriteSide::Tls {
                        write: tokio::sync::Mutex::new(write),
                        raw,
                    },
                )
            }
        }
    }
}

/// Where a [`FrameReader`](super::frame::FrameReader) reads from.
pub(crate) enum ReadSide {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

impl ReadSide {
    /// Reads more bytes into `buf`; `Ok(0)` at the end of the stream. Cancel-safe.
    pub(crate) async fn read_buf(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            ReadSide::Plain(tcp) => loop {
                tcp.readable().await?;
                match tcp.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    read => return read,
                }
            },
            #[cfg(feature = "tls")]
            ReadSide::Tls(read) => tokio::io::AsyncReadExt::read_buf(read, buf).await,
        }
    }
}

/// Where a [`FrameWriter`] writes to.
pub(crate) enum WriteSide {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls {
        /// Written only by the flush task; the lock is never contended.
        write: tokio::sync::Mutex<tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>>,
        raw: socket2::Socket,
    },
}

impl WriteSide {
    /// The socket, when there is no TLS over it: written from any task through readiness.
    fn plain(&self) -> Option<&Arc<TcpStream>> {
        match self {
            WriteSide::Plain(tcp) => Some(tcp),
            #[cfg(feature = "tls")]
            WriteSide::Tls { .. } => None,
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            WriteSide::Plain(tcp) => socket2::SockRef::from(&**tcp).shutdown(how),
            #[cfg(feature = "tls")]
            WriteSide::Tls { raw, .. } => raw.shutdown(how),
        };
    }
}

/// A backlog above this makes senders of messages wait for the flush to catch up; control
/// frames (small, a bounded number per call) are queued regardless.
const BACKLOG_HIGH_WATER: usize = 4 * 1024 * 1024;

/// The largest write buffer a connection keeps for reuse, in bytes.
const SPARE_CAPACITY: usize = 64 * 1024;

struct WriteState {
    /// Bytes waiting for the flush task, in order.
    backlog: Vec<u8>,
    /// Whether the flush task owns the socket's write side right now.
    flushing: bool,
    /// Set once writing failed or the writer was closed; sends fail from then on.
    closed: bool,
}

/// Writes frames to a stream shared by many tasks, in the order they are sent.
pub(crate) struct FrameWriter {
    stream: WriteSide,
    state: Mutex<WriteState>,
    /// Wakes the flush task when a backlog appears.
    work: Notify,
    /// Wakes senders waiting for the backlog to shrink, and `close` waiting for it to empty.
    drained: Notify,
}

impl FrameWriter {
    /// A writer and the flush task that must be spawned alongside it.
    pub(crate) fn new(
        stream: WriteSide,
    ) -> (
        Arc<FrameWriter>,
        impl std::future::Future<Output = ()> + Send,
    ) {
        let writer = Arc::new(FrameWriter {
            stream,
            state: Mutex::new(WriteState {
                backlog: Vec::new(),
                flushing: false,
                closed: false,
            }),
            work: Notify::new(),
            drained: Notify::new(),
        });
        let flush = writer.clone().flush_loop();
        (writer, flush)
    }

    fn lock(&self) -> MutexGuard<'_, WriteState> {
        // Nothing panics while holding this lock; recover the state rather than propagate.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one encoded frame. Cancel-safe: the frame is either queued whole or not at all.
    ///
    /// `busy` says other calls share the connection right now: the frame then goes to the
    /// flush task, which writes whatever has gathered in one system call. An idle
    /// connection writes from this task, saving the switch to the flush task.
    pub(crate) async fn send(&self, frame: &[u8], busy: bool) -> io::Result<()> {
        crate::wait::until(&self.drained, || {
            let mut state = self.lock();
            if state.closed {
                return Some(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the connection is closed",
                )));
            }
            if state.backlog.len() < BACKLOG_HIGH_WATER {
                self.enqueue(&mut state, busy, |out| out.extend_from_slice(frame));
                return Some(Ok(()));
            }
            None
        })
        .await
    }

    /// Queues a control frame without waiting, whatever the backlog: frames that end or
    /// steer a call (STATUS, CANCEL, WINDOW_UPDATE) must not wait behind messages, and are
    /// sent from places that cannot wait. Dropped once the writer is closed.
    pub(crate) fn push(&self, frame: &[u8]) {
        self.push_with(true, |out| out.extend_from_slice(frame));
    }

    /// [`push`](FrameWriter::push) for frames that `put` appends to the connection's own
    /// buffer (which saves them a buffer of their own and a copy), written from this task when
    /// the connection is idle (`busy` false): for frames that start or end a call, where the
    /// switch to the flush task would be a call's whole latency again.
    /// Returns false, having dropped the frames, once the writer is closed.
    pub(crate) fn push_with(&self, busy: bool, put: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut state = self.lock();
        if !state.closed {
            self.enqueue(&mut state, busy, put);
        }
        !state.closed
    }

    /// Whether [`send`](FrameWriter::send) would queue a frame without waiting.
    pub(crate) fn has_room(&self) -> bool {
        let state = self.lock();
        !state.closed && state.backlog.len() < BACKLOG_HIGH_WATER
    }

    /// Appends what `put` writes to the backlog, and sees that it gets written.
    fn enqueue(&self, state: &mut WriteState, busy: bool, put: impl FnOnce(&mut Vec<u8>)) {
        let idle = !state.flushing && state.backlog.is_empty();
        put(&mut state.backlog);
        if !idle || state.backlog.is_empty() {
            // The flush task is on it (or there is nothing to write).
            return;
        }
        // Nothing ahead of these bytes: unless other calls are about to add more, write them
        // from this task, and hand over only what the socket would not take. TLS goes through
        // the flush task, which owns its writes.
        if let (false, Some(tcp)) = (busy, self.stream.plain()) {
            match tcp.try_write(&state.backlog) {
                Ok(written) if written == state.backlog.len() => {
                    state.backlog.clear();
                    // A buffer grown by a large message is let go, as the flush task does.
                    if state.backlog.capacity() > SPARE_CAPACITY {
                        state.backlog = Vec::new();
                    }
                    return;
                }
                Ok(written) => {
                    state.backlog.drain(..written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    state.backlog.clear();
                    state.closed = true;
                    return;
                }
            }
        }
        state.flushing = true;
        self.work.notify_one();
    }

    async fn flush_loop(self: Arc<Self>) {
        // The buffer last written goes back as the next backlog, so a busy connection does not
        // grow a fresh one for every batch; one grown past SPARE_CAPACITY (a large message) is
        // let go.
        let mut spare = Vec::new();
        loop {
            self.work.notified().await;
            loop {
                let chunk = {
                    let mut state = self.lock();
                    if state.closed {
                        self.drained.notify_waiters();
                        return;
                    }
                    if state.backlog.is_empty() {
                        state.flushing = false;
                        self.drained.notify_waiters();
                        break;
                    }
                    std::mem::replace(&mut state.backlog, std::mem::take(&mut spare))
                };
                self.drained.notify_waiters();
                if self.write_all(&chunk).await.is_err() {
                    self.lock().closed = true;
                    self.drained.notify_waiters();
                    return;
                }
                if chunk.capacity() <= SPARE_CAPACITY {
                    spare = chunk;
                    spare.clear();
                }
            }
        }
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let WriteSide::Tls { write, .. } = &self.stream {
            use tokio::io::AsyncWriteExt as _;
            let mut write = write.lock().await;
            write.write_all(bytes).await?;
            return write.flush().await;
        }
        let Some(tcp) = self.stream.plain() else {
            return Ok(());
        };
        while !bytes.is_empty() {
            tcp.writable().await?;
            match tcp.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stops at once, dropping anything queued, and closes both directions of the socket.
    pub(crate) fn abort(&self) {
        self.lock().closed = true;
        self.work.notify_one();
        self.drained.notify_waiters();
        self.stream.shutdown(Shutdown::Both);
    }

    /// Stops writing: with `drain`, after everything queued has gone out. Sends the peer an
    /// end of stream and stops the flush task.
    pub(crate) async fn close(&self, drain: bool) {
        if drain {
            crate::wait::until(&self.drained, || {
                let state = self.lock();
                (state.closed || (!state.flushing && state.backlog.is_empty())).then_some(())
            })
            .await;
        }
        self.lock().closed = true;
        self.work.notify_one();
        #[cfg(feature = "tls")]
        if let WriteSide::Tls { write, .. } = &self.stream {
            // TLS's close_notify, then the end of the TCP stream: the peer reads a clean end.
            use tokio::io::AsyncWriteExt as _;
            let _ = write.lock().await.shutdown().await;
        }
        self.stream.shutdown(Shutdown::Write);
    }
}
