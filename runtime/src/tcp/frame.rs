//! Frames of the TCP protocol: the preface, the 16-byte header, and a cancel-safe reader
//! that checks every length before it allocates and skips the payload of an oversize frame
//! so that only its call fails.

use std::io;

use super::io::ReadSide;
use bytes::{Buf, Bytes, BytesMut};

use crate::Message;

/// What each side sends first: a magic and the protocol's version, ended by an empty line so
/// that an HTTP/1 server, which reads lines, answers at once (with an error we can name)
/// instead of waiting for more.
pub(crate) const PREFACE: [u8; 12] = *b"RRPC/2.0\r\n\r\n";
pub(crate) const VERSION: &str = "2.0";
pub(crate) const HEADER_LEN: usize = 16;

pub(crate) const SETTINGS: u8 = 1;
pub(crate) const HEADERS: u8 = 2;
pub(crate) const MESSAGE: u8 = 3;
pub(crate) const HALF_CLOSE: u8 = 4;
pub(crate) const STATUS: u8 = 5;
pub(crate) const CANCEL: u8 = 6;
pub(crate) const WINDOW_UPDATE: u8 = 7;
pub(crate) const GOAWAY: u8 = 8;

/// On MESSAGE from a client: the last request; no HALF_CLOSE follows.
pub(crate) const END_STREAM: u8 = 0x1;
/// On MESSAGE from a server: the call's last message, and the call ended OK with no trailers;
/// no STATUS follows. The one frame of a plain unary response.
pub(crate) const END_OK: u8 = 0x2;

/// How much to read at a time when no frame is pending.
const READ_CHUNK: usize = 64 * 1024;

/// Payloads smaller than this are copied out of the read buffer, so that a small message
/// kept unread cannot pin a whole read chunk; larger ones share it.
const COPY_BELOW: usize = 16 * 1024;

/// Appends a frame header and `payload` to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, kind: u8, flags: u8, call_id: u64, payload: &[u8]) {
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&call_id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends a frame whose payload is an encoded control message.
pub(crate) fn put_control(out: &mut Vec<u8>, kind: u8, call_id: u64, message: &impl Message) {
    let len = message.encoded_len();
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&call_id.to_be_bytes());
    message.encode_raw(out);
}

/// A frame as read.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) call_id: u64,
    pub(crate) payload: Bytes,
}

/// What the reader yields.
#[derive(Debug)]
pub(crate) enum Incoming {
    Frame(Frame),
    /// A frame over the size limit: its payload was skipped, unread.
    Oversize {
        kind: u8,
        call_id: u64,
        len: usize,
    },
}

/// Splits bytes into frames: the pure half of [`FrameReader`], apart so it can be fuzzed.
pub(crate) struct FrameDecoder {
    buf: BytesMut,
    /// Bytes of an oversize payload still to skip.
    skip: usize,
    max_frame_size: usize,
}

impl FrameDecoder {
    pub(crate) fn new(max_frame_size: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::with_capacity(READ_CHUNK),
            skip: 0,
            max_frame_size,
        }
    }

    /// Room to read into: the buffer, with spare capacity for at least a quarter chunk.
    fn spare(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        &mut self.buf
    }

    /// Takes the peer's preface off the front: `Ok(true)` once it is there, `Ok(false)` while
    /// more bytes are needed (or, with `eof`, an error), an error naming what the peer seems
    /// to speak otherwise.
    pub(crate) fn preface(&mut self, eof: bool) -> io::Result<bool> {
        let have = self.buf.len().min(PREFACE.len());
        let got = &self.buf[..have];
        if got == PREFACE {
            self.buf.advance(PREFACE.len());
            return Ok(true);
        }
        if eof && have == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection without a word",
            ));
        }
        // A foreign peer is given up on at its first byte that differs (and named from what
        // arrived with it, usually its whole first message).
        if eof || got != &PREFACE[..have] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                describe_foreign(got),
            ));
        }
        Ok(false)
    }

    /// Appends bytes that arrived (for tests and fuzzing; the reader reads into the buffer).
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame in the buffer, if there is one. Lengths are checked against the
    /// limit from the header; an oversize payload is skipped as it arrives, never stored.
    pub(crate) fn next(&mut self) -> io::Result<Option<Incoming>> {
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let Some(header) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = payload_len(header);
        let kind = header[4];
        let flags = header[5];
        if header[6] != 0 || header[7] != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame header with reserved bits set",
            ));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[8..16]);
        let call_id = u64::from_be_bytes(id);
        if len > self.max_frame_size {
            self.buf.advance(HEADER_LEN);
            let n = len.min(self.buf.len());
            self.buf.advance(n);
            self.skip = len - n;
            return Ok(Some(Incoming::Oversize { kind, call_id, len }));
        }
        if self.buf.len() < HEADER_LEN + len {
            // The length is within the limit, so this reservation is bounded.
            self.buf.reserve(HEADER_LEN + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        // Control frames are read at once and dropped, so they may share the buffer; a small
        // message may wait unread for long, so it gets its own copy.
        let payload = if kind == MESSAGE && len < COPY_BELOW {
            let payload = Bytes::copy_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            payload
        } else {
            self.buf.split_to(len).freeze()
        };
        Ok(Some(Incoming::Frame(Frame {
            kind,
            flags,
            call_id,
            payload,
        })))
    }

    /// Whether a whole frame is buffered, ready for `next`.
    fn has_whole_frame(&self) -> bool {
        self.skip == 0
            && self
                .buf
                .first_chunk::<HEADER_LEN>()
                .is_some_and(|header| self.buf.len() - HEADER_LEN >= payload_len(header))
    }

    /// Whether bytes of an unfinished frame are held.
    fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty() || self.skip > 0
    }
}

/// The payload length a frame header announces.
fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize
}

/// Reads frames from a stream.
pub(crate) struct FrameReader {
    stream: ReadSide,
    decoder: FrameDecoder,
}

impl FrameReader {
    pub(crate) fn new(stream: ReadSide, max_frame_size: usize) -> Self {
        FrameReader {
            stream,
            decoder: FrameDecoder::new(max_frame_size),
        }
    }

    /// Whether `next` has a whole frame without reading.
    pub(crate) fn has_whole_frame(&self) -> bool {
        self.decoder.has_whole_frame()
    }

    /// Reads more bytes; `Ok(false)` at the end of the stream. Cancel-safe.
    async fn fill(&mut self) -> io::Result<bool> {
        Ok(self.stream.read_buf(self.decoder.spare()).await? > 0)
    }

    /// Reads the peer's preface. A peer that sends something else gets an error that names
    /// what it seems to be.
    pub(crate) async fn preface(&mut self) -> io::Result<()> {
        let mut eof = false;
        loop {
            if self.decoder.preface(eof)? {
                return Ok(());
            }
            eof = !self.fill().await?;
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream between frames. Cancel-safe: bytes
    /// read stay in the buffer if the future is dropped.
    pub(crate) async fn next(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if let Some(incoming) = self.decoder.next()? {
                return Ok(Some(incoming));
            }
            if !self.fill().await? {
                if !self.decoder.is_mid_frame() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed inside a frame",
                ));
            }
        }
    }
}

/// Runs the frame decoder over `data` fed in pieces of the given sizes, and checks what any
/// split must give: the same frames as the whole at once, control payloads that decode or fail
/// cleanly, and no payload over the limit. For the fuzz target; panics on a violation.
#[doc(hidden)]
pub fn check_frames(data: &[u8], splits: &[u8], max_frame_size: usize) {
    use super::wire::{CallStatus, GoAway, RequestHeaders, ResponseHeaders, Settings};
    fn run(pieces: &mut dyn Iterator<Item = &[u8]>, max: usize) -> Vec<String> {
        let mut decoder = FrameDecoder::new(max);
        let mut seen = Vec::new();
        'feed: for piece in pieces {
            decoder.feed(piece);
            loop {
                match decoder.next() {
                    Ok(Some(Incoming::Frame(f))) => {
                        assert!(f.payload.len() <= max);
                        let decoded = match f.kind {
                            SETTINGS => Settings::decode_bytes(&f.payload).is_ok(),
                            HEADERS => {
                                RequestHeaders::decode_bytes(&f.payload).is_ok()
                                    | ResponseHeaders::decode_bytes(&f.payload).is_ok()
                            }
                            STATUS => CallStatus::decode_bytes(&f.payload).is_ok(),
                            GOAWAY => GoAway::decode_bytes(&f.payload).is_ok(),
                            _ => true,
                        };
                        seen.push(format!(
                            "{} {} {} {:?} {decoded}",
                            f.kind, f.flags, f.call_id, f.payload
                        ));
                    }
                    Ok(Some(Incoming::Oversize { kind, call_id, len })) => {
                        assert!(len > max);
                        seen.push(format!("oversize {kind} {call_id} {len}"));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        seen.push(format!("error {e}"));
                        break 'feed;
                    }
                }
            }
        }
        seen
    }
    let whole = run(&mut std::iter::once(data), max_frame_size);
    let mut rest = data;
    let mut sizes = splits.iter().map(|s| usize::from(*s) + 1).cycle();
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        let n = if splits.is_empty() {
            rest.len()
        } else {
            sizes.next().unwrap_or(1).min(rest.len())
        };
        pieces.push(&rest[..n]);
        rest = &rest[n..];
    }
    let split = run(&mut pieces.into_iter(), max_frame_size);
    assert_eq!(whole, split, "splitting the input changed the frames");
}

/// Names what a peer that does not speak this protocol seems to speak, from its first bytes.
fn describe_foreign(got: &[u8]) -> String {
    if got.starts_with(b"RRPC/") && got.len() == PREFACE.len() {
        let version = String::from_utf8_lossy(&got[5..8]);
        return format!(
            "the peer speaks version {version} of rust-rpc's TCP protocol; this side speaks version {VERSION}"
        );
    }
    let what = crate::net::Peer::from_first_bytes(got).map_or("something else", |p| p.name());
    format!(
        "the peer does not speak rust-rpc's TCP protocol: it looks like {what} (first bytes: {})",
        crate::net::hex(got)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_peers_are_named() {
        assert!(describe_foreign(b"HTTP/1.1").contains("HTTP/1"));
        assert!(describe_foreign(b"<!DOCTYPE HT").contains("an HTTP server"));
        assert!(describe_foreign(&[0, 0, 0x12, 0x04, 0, 0, 0, 0]).contains("HTTP/2"));
        assert!(describe_foreign(&[0x15, 0x03, 0x03, 0, 2, 2, 0x46, 0]).contains("TLS"));
        assert!(describe_foreign(b"RRPC/3.0\r\n\r\n").contains("version 3.0"));
    }

    #[test]
    fn frames_round_trip_through_the_header() {
        let mut out = Vec::new();
        put_frame(&mut out, MESSAGE, END_STREAM, 7, b"hello");
        assert_eq!(out.len(), HEADER_LEN + 5);
        assert_eq!(&out[..4], &5u32.to_be_bytes());
        assert_eq!(out[4], MESSAGE);
        assert_eq!(out[5], END_STREAM);
        assert_eq!(&out[8..16], &7u64.to_be_bytes());
    }
}
