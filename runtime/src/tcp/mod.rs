//! The slim TCP transport: rust-rpc's own protocol, version 2, written down in
//! `runtime/PROTOCOL.md`.
//!
//! Each side opens with an 8-byte preface and a SETTINGS frame; then every frame is a
//! 16-byte header (payload length, type, flags, call id) and its payload. Many calls share a
//! connection, each with its own flow-control window in each direction, so a reader that
//! stops holds up only its own call. Frame lengths are checked against
//! [`Limits::max_frame_size`] from the header, before anything is allocated; an oversize
//! message fails its own call with `RESOURCE_EXHAUSTED` and the connection goes on.

mod client;
mod frame;
mod io;
mod server;

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::{Code, Metadata, Status};

pub use client::{TcpChannel, TcpChannelBuilder};
#[doc(hidden)]
pub use frame::check_frames;
pub use server::{Server, ServerBuilder, ServerHandle};

/// The control frames' payloads, generated from `runtime/proto/wire.proto`.
#[allow(missing_docs)]
pub mod wire {
    include!("rust_rpc.wire.rs");
}

use wire::MetadataEntry;

/// Bounds that protect either side of a connection from its peer.
///
/// Memory per connection is bounded in bytes: at most `max_concurrent_calls` calls, each
/// buffering at most `window` bytes of unread messages plus one message of up to
/// `max_frame_size` bytes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame payload accepted or sent, in bytes: a message, or a frame of metadata
    /// (default 4 MiB). A larger message fails its own call with `RESOURCE_EXHAUSTED`.
    pub max_frame_size: usize,
    /// Most calls one connection may have in flight on a server (default 1024); further
    /// calls fail with `RESOURCE_EXHAUSTED`.
    pub max_concurrent_calls: usize,
    /// Bytes of unread messages buffered per call and direction before the sender must wait
    /// (default and minimum 64 KiB).
    pub window: usize,
    /// How long a new connection may take to exchange prefaces (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 4 * 1024 * 1024,
            max_concurrent_calls: 1024,
            window: crate::call::DEFAULT_WINDOW,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The defaults with `bytes` as the largest frame payload.
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The window actually used: never below the protocol's default, which a peer may rely
    /// on before it has read this side's SETTINGS.
    fn effective_window(&self) -> usize {
        self.window.max(crate::call::DEFAULT_WINDOW)
    }
}

pub(crate) fn metadata_to_wire(metadata: &Metadata) -> Vec<MetadataEntry> {
    metadata
        .iter()
        .map(|(key, value)| MetadataEntry {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn metadata_from_wire(entries: Vec<MetadataEntry>) -> Metadata {
    entries.into_iter().map(|e| (e.key, e.value)).collect()
}

pub(crate) fn status_from_wire(code: u32, message: String) -> Result<(), Status> {
    match Code::from_u32(code) {
        Code::Ok => Ok(()),
        code => Err(Status::new(code, message)),
    }
}

/// A sender's credit for one call and direction: how many bytes it may still send before the
/// receiver's WINDOW_UPDATE. A message may be sent while the credit is positive, and costs its
/// length, so a message larger than the window still goes once the receiver has caught up.
pub(crate) struct Credit {
    credit: Mutex<i64>,
    granted: Notify,
}

impl Credit {
    pub(crate) fn new(window: usize) -> Credit {
        Credit {
            credit: Mutex::new(window as i64),
            granted: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, i64> {
        self.credit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the credit is positive, then takes `len` bytes of it.
    pub(crate) async fn acquire(&self, len: usize) {
        crate::wait::until(&self.granted, || {
            let mut credit = self.lock();
            (*credit > 0).then(|| *credit -= len as i64)
        })
        .await
    }

    pub(crate) fn grant(&self, bytes: u32) {
        *self.lock() += i64::from(bytes);
        self.granted.notify_waiters();
    }
}
