//! Frame I/O on a shared `TcpStream`, built for few task switches per call.
//!
//! [`FrameReader`] keeps partial frames in its own buffer, so waiting for the next frame can
//! be cancelled (in a `select!`) without losing bytes, and one read can yield many frames.
//! [`FrameWriter`] writes a frame straight from the sending task when the socket takes it
//! whole, and hands the rest to a background flush only when the socket would block, so an
//! idle connection costs no extra task switch while a busy one still batches its writes.

use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::wire::Envelope;
use crate::Message;

/// How much to read at a time when no frame is pending.
const READ_CHUNK: usize = 64 * 1024;

/// A backlog above this makes senders wait for the flush to catch up.
const BACKLOG_HIGH_WATER: usize = 4 * 1024 * 1024;

/// Reads length-prefixed envelopes from a stream.
pub(crate) struct FrameReader {
    stream: Arc<TcpStream>,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    start: usize,
    max_frame_size: usize,
}

impl FrameReader {
    pub(crate) fn new(stream: Arc<TcpStream>, max_frame_size: usize) -> Self {
        FrameReader {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            max_frame_size,
        }
    }

    /// The next envelope; `Ok(None)` at a clean end of stream between frames. Cancel-safe.
    pub(crate) async fn next(&mut self) -> io::Result<Option<Envelope>> {
        loop {
            if let Some(envelope) = self.parse()? {
                return Ok(Some(envelope));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            self.stream.readable().await?;
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn parse(&mut self) -> io::Result<Option<Envelope>> {
        let pending = &self.buf[self.start..];
        let Some(prefix) = pending.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.max_frame_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes is over the limit of {}",
                    self.max_frame_size
                ),
            ));
        }
        let Some(body) = pending.get(4..4 + len) else {
            // The length has been checked against the limit, so this reservation is bounded.
            self.buf.reserve(4 + len - pending.len());
            return Ok(None);
        };
        let envelope = Envelope::decode(body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}")))?;
        self.start += 4 + len;
        Ok(Some(envelope))
    }
}

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
    stream: Arc<TcpStream>,
    state: Mutex<WriteState>,
    /// Wakes the flush task when a backlog appears.
    work: Notify,
    /// Wakes senders waiting for the backlog to shrink, and `close` waiting for it to empty.
    drained: Notify,
}

impl FrameWriter {
    /// A writer and the flush task that must be spawned alongside it.
    pub(crate) fn new(
        stream: Arc<TcpStream>,
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
                self.enqueue(&mut state, frame, busy);
                return Some(Ok(()));
            }
            None
        })
        .await
    }

    /// Sends a frame if it can without waiting (for best-effort frames such as CANCEL from
    /// a destructor); reports whether it did.
    pub(crate) fn try_send(&self, frame: &[u8]) -> bool {
        let mut state = self.lock();
        if state.closed || state.backlog.len() >= BACKLOG_HIGH_WATER {
            return false;
        }
        self.enqueue(&mut state, frame, true);
        true
    }

    fn enqueue(&self, state: &mut WriteState, frame: &[u8], busy: bool) {
        if state.flushing || !state.backlog.is_empty() {
            state.backlog.extend_from_slice(frame);
            return;
        }
        if busy {
            state.backlog.extend_from_slice(frame);
            state.flushing = true;
            self.work.notify_one();
            return;
        }
        // Nothing ahead of this frame: write it from this task, and hand over only what the
        // socket would not take.
        match self.stream.try_write(frame) {
            Ok(written) if written == frame.len() => return,
            Ok(written) => state.backlog.extend_from_slice(&frame[written..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                state.backlog.extend_from_slice(frame)
            }
            Err(_) => {
                state.closed = true;
                return;
            }
        }
        state.flushing = true;
        self.work.notify_one();
    }

    async fn flush_loop(self: Arc<Self>) {
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
                    std::mem::take(&mut state.backlog)
                };
                self.drained.notify_waiters();
                if self.write_all(&chunk).await.is_err() {
                    self.lock().closed = true;
                    self.drained.notify_waiters();
                    return;
                }
            }
        }
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(bytes) {
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
        let _ = socket2::SockRef::from(&*self.stream).shutdown(Shutdown::Both);
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
        let _ = socket2::SockRef::from(&*self.stream).shutdown(Shutdown::Write);
    }
}
