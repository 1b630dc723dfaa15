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

use crate::{Code, Message, Metadata, Status};

pub use crate::net::IntoTarget;
pub use crate::net::ServerHandle;
pub use client::{TcpChannel, TcpChannelBuilder};
#[doc(hidden)]
pub use frame::check_frames;
pub use server::{Server, ServerBuilder};

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
    /// Largest frame payload this side accepts, in bytes: a message, or a frame of metadata
    /// (default 4 MiB), announced to the peer. What this side sends is checked against the
    /// peer's announced limit. A larger message fails its own call with `RESOURCE_EXHAUSTED`.
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

/// The start of a call, as a HEADERS frame from a client carries it: `RequestHeaders` in
/// `wire.proto`, read and written here by hand so that the names are borrowed, not copied, on
/// every call.
pub(crate) struct CallStart<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) timeout_micros: u64,
    pub(crate) metadata: Metadata,
}

impl<'a> CallStart<'a> {
    /// Reads an encoded `RequestHeaders`; unknown fields are skipped.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<CallStart<'a>, crate::DecodeError> {
        use crate::encoding::{Reader, WireType};
        let mut start = CallStart {
            service: "",
            method: "",
            timeout_micros: 0,
            metadata: Metadata::new(),
        };
        let mut r = Reader::new(bytes);
        let text = |r: &mut Reader<'a>, tag: u32| -> Result<&'a str, crate::DecodeError> {
            r.expect(tag, WireType::Len)?;
            let at = r.position();
            crate::encoding::utf8(r.read_len_slice()?)
                .map_err(|_| crate::DecodeError::new(crate::DecodeErrorKind::InvalidUtf8, at))
        };
        while let Some(tag) = r.next_tag()? {
            match tag >> 3 {
                1 => start.service = text(&mut r, tag)?,
                2 => start.method = text(&mut r, tag)?,
                3 => {
                    r.expect(tag, WireType::Varint)?;
                    start.timeout_micros = r.read_uint64()?;
                }
                4 => {
                    r.expect(tag, WireType::Len)?;
                    let entry = MetadataEntry::decode(r.read_len_slice()?)?;
                    start.metadata.append(entry.key, entry.value);
                }
                _ => r.skip_field(tag)?,
            }
        }
        r.no_open_group()?;
        Ok(start)
    }

    /// Appends the encoded `RequestHeaders`.
    fn encode(&self, out: &mut Vec<u8>) {
        use crate::encoding::{encode_key, encode_varint, WireType};
        // Empty strings are left out, as proto3 leaves out every default.
        let put_str = |out: &mut Vec<u8>, field: u32, text: &str| {
            if !text.is_empty() {
                encode_key(field, WireType::Len, out);
                encode_varint(text.len() as u64, out);
                out.extend_from_slice(text.as_bytes());
            }
        };
        put_str(out, 1, self.service);
        put_str(out, 2, self.method);
        if self.timeout_micros > 0 {
            encode_key(3, WireType::Varint, out);
            encode_varint(self.timeout_micros, out);
        }
        for (key, value) in self.metadata.iter() {
            let body = str_field_len(1, key) + str_field_len(2, value);
            encode_key(4, WireType::Len, out);
            encode_varint(body as u64, out);
            put_str(out, 1, key);
            put_str(out, 2, value);
        }
    }

    fn encoded_len(&self) -> usize {
        let mut len = str_field_len(1, self.service) + str_field_len(2, self.method);
        if self.timeout_micros > 0 {
            len += 1 + crate::encoding::varint_len(self.timeout_micros);
        }
        for (key, value) in self.metadata.iter() {
            let body = str_field_len(1, key) + str_field_len(2, value);
            len += 1 + crate::encoding::varint_len(body as u64) + body;
        }
        len
    }

    /// Appends the HEADERS frame that starts call `call_id`.
    pub(crate) fn put_frame(&self, out: &mut Vec<u8>, call_id: u64) {
        let len = self.encoded_len();
        out.reserve(frame::HEADER_LEN + len);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(&[frame::HEADERS, 0, 0, 0]);
        out.extend_from_slice(&call_id.to_be_bytes());
        self.encode(out);
    }
}

/// Encoded size of a string field, left out when empty.
fn str_field_len(field: u32, text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    crate::encoding::key_len(field) + crate::encoding::varint_len(text.len() as u64) + text.len()
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

pub(crate) fn status_from_wire(code: u32, message: String, details: Vec<u8>) -> Result<(), Status> {
    match Code::from_u32(code) {
        Code::Ok => Ok(()),
        code => Err(Status::with_details(code, message, details)),
    }
}

/// Hashes call ids for the per-connection call tables: a multiply, where the default
/// SipHash costs a hundred instructions on every frame. Ids are chosen by the peer, but a
/// table holds at most `max_concurrent_calls` entries, so colliding ids cost at most that
/// many probes.
#[derive(Clone, Copy, Default)]
pub(crate) struct CallIds;

impl std::hash::BuildHasher for CallIds {
    type Hasher = CallIdHasher;

    fn build_hasher(&self) -> CallIdHasher {
        CallIdHasher(0)
    }
}

#[derive(Default)]
pub(crate) struct CallIdHasher(u64);

impl std::hash::Hasher for CallIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: the high bits, which hashbrown uses, depend on every bit of id.
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A table of calls by id.
pub(crate) type CallTable<V> = std::collections::HashMap<u64, V, CallIds>;

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

    /// Sends one MESSAGE frame of call `call_id` once this credit allows: a stream's send, on
    /// either end. Messages of a stream come in a row, so they may batch.
    pub(crate) async fn send_message(
        &self,
        writer: &io::FrameWriter,
        call_id: u64,
        message: &[u8],
    ) -> Result<(), Status> {
        self.acquire(message.len()).await;
        let mut out = Vec::with_capacity(frame::HEADER_LEN + message.len());
        frame::put_frame(&mut out, frame::MESSAGE, 0, call_id, message);
        writer
            .send(&out, true)
            .await
            .map_err(|_| Status::unavailable("the connection closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written `RequestHeaders` codec agrees with the generated one both ways.
    #[test]
    fn call_start_matches_the_generated_request_headers() {
        let mut metadata = Metadata::new();
        metadata.append("authorization", "Bearer x");
        metadata.append("k", "");
        let start = CallStart {
            service: "echo.EchoService",
            method: "Echo",
            timeout_micros: 1_500_000,
            metadata: metadata.clone(),
        };
        let mut framed = Vec::new();
        start.put_frame(&mut framed, 9);
        let payload = &framed[frame::HEADER_LEN..];
        assert_eq!(&framed[..4], &(payload.len() as u32).to_be_bytes());
        let generated = wire::RequestHeaders::decode(payload).unwrap();
        assert_eq!(generated.service, "echo.EchoService");
        assert_eq!(generated.method, "Echo");
        assert_eq!(generated.timeout_micros, 1_500_000);
        assert_eq!(metadata_from_wire(generated.metadata.clone()), metadata);
        assert_eq!(generated.encode_to_vec(), payload);
        let back = CallStart::decode(payload).unwrap();
        assert_eq!(
            (back.service, back.method, back.timeout_micros),
            ("echo.EchoService", "Echo", 1_500_000)
        );
        assert_eq!(back.metadata, metadata);
        assert!(CallStart::decode(&[0x0a, 0x01, 0xff]).is_err());
    }
}
