//! The parts of gRPC's wire format that are not HTTP/2 itself: message prefixes, timeouts,
//! status and message headers, and metadata.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::{Code, Metadata, Status};

/// Bytes before every message: a compressed flag and a big-endian length.
pub(crate) const PREFIX_LEN: usize = 5;

pub(crate) const CONTENT_TYPE: &str = "application/grpc";

/// What this side reads besides `identity`, for `grpc-accept-encoding`.
pub(crate) const ACCEPT_ENCODING: &str = "gzip";

/// A message encoding gRPC negotiates with `grpc-encoding` and `grpc-accept-encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// gzip (RFC 1952), which every gRPC implementation supports.
    Gzip,
}

impl Encoding {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
        }
    }

    /// The encoding named `name`; `None` for `identity` and for names this side does not
    /// support.
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name.trim() {
            "gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }

    fn compress(self, message: &[u8], out: &mut BytesMut) -> Result<(), Status> {
        use std::io::Write;
        match self {
            Encoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    BytesMutWriter(out),
                    flate2::Compression::default(),
                );
                encoder
                    .write_all(message)
                    .and_then(|()| encoder.finish().map(drop))
                    .map_err(|e| Status::internal(format!("gzip failed: {e}")))
            }
        }
    }

    /// Decompresses `message`, failing with `RESOURCE_EXHAUSTED` as soon as the output passes
    /// `limit` bytes (so a small bomb cannot cost more than the limit), and with `INTERNAL`
    /// for data that is not valid in this encoding.
    fn decompress(self, message: &[u8], limit: usize) -> Result<Bytes, Status> {
        use std::io::Read;
        match self {
            Encoding::Gzip => {
                let mut out = Vec::new();
                let decoder = flate2::read::GzDecoder::new(message);
                let read = decoder
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        Status::internal(format!("a gzip message does not decompress: {e}"))
                    })?;
                if read > limit {
                    return Err(Status::resource_exhausted(format!(
                        "a message decompresses to over the limit of {limit} bytes"
                    )));
                }
                Ok(Bytes::from(out))
            }
        }
    }
}

/// `io::Write` into a `BytesMut`, so compression writes straight after the prefix.
struct BytesMutWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BytesMutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Prefixes `message` for the wire, compressed with `encoding` if there is one.
pub(crate) fn frame(message: &[u8], encoding: Option<Encoding>) -> Result<Bytes, Status> {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + message.len());
    out.extend_from_slice(&[0; PREFIX_LEN]);
    match encoding {
        Some(encoding) => {
            encoding.compress(message, &mut out)?;
            out[0] = 1;
        }
        None => out.extend_from_slice(message),
    }
    let len = u32::try_from(out.len() - PREFIX_LEN)
        .map_err(|_| Status::resource_exhausted("a message of 4 GiB or more"))?;
    out[1..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// Splits the DATA of a stream into messages, whatever the boundaries of its frames: a prefix
/// or a message may be split across any number of frames, and one frame may hold many
/// messages.
pub(crate) struct Deframer {
    buffer: BytesMut,
    limit: usize,
    /// What the peer said compressed messages are compressed with.
    encoding: Option<Encoding>,
    /// Whether the message returned last was compressed.
    last_compressed: bool,
}

impl Deframer {
    /// A deframer that refuses messages over `limit` bytes (before and after decompression)
    /// and reads compressed ones with `encoding`.
    pub(crate) fn new(limit: usize, encoding: Option<Encoding>) -> Self {
        Deframer {
            buffer: BytesMut::new(),
            limit,
            encoding,
            last_compressed: false,
        }
    }

    /// Whether the message [`next`](Deframer::next) returned last arrived compressed.
    pub(crate) fn last_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Adds the bytes of one DATA frame.
    pub(crate) fn push(&mut self, data: Bytes) {
        if self.buffer.is_empty() {
            // Kept as it is until a message is cut from it: a message that a frame holds
            // whole is handed on without a copy.
            self.buffer = BytesMut::from(data);
        } else {
            self.buffer.extend_from_slice(&data);
        }
    }

    /// The next whole message, if the bytes for one have arrived. Fails for a message over
    /// the limit (from its prefix, before it is buffered) and for a compressed one.
    pub(crate) fn next(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        let flag = self.buffer[0];
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        let encoding = match flag {
            0 => None,
            1 => match self.encoding {
                Some(encoding) => Some(encoding),
                None => {
                    return Err(Status::internal(
                        "a compressed message arrived, but the call named no grpc-encoding",
                    ))
                }
            },
            other => {
                return Err(Status::internal(format!(
                    "a message prefix with the unknown flag {other}"
                )))
            }
        };
        if len > self.limit {
            return Err(Status::resource_exhausted(format!(
                "a message of {len} bytes is over the limit of {} bytes",
                self.limit
            )));
        }
        if self.buffer.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buffer.advance(PREFIX_LEN);
        let message = self.buffer.split_to(len).freeze();
        self.last_compressed = encoding.is_some();
        match encoding {
            Some(encoding) => encoding.decompress(&message, self.limit).map(Some),
            None => Ok(Some(message)),
        }
    }

    /// Bytes buffered: messages not yet taken, and the start of one not yet complete.
    pub(crate) fn remaining(&self) -> usize {
        self.buffer.len()
    }

    /// Whether the first buffered message has arrived whole.
    pub(crate) fn head_complete(&self) -> bool {
        self.buffer.len() >= PREFIX_LEN
            && self.buffer.len()
                >= PREFIX_LEN
                    + u32::from_be_bytes([
                        self.buffer[1],
                        self.buffer[2],
                        self.buffer[3],
                        self.buffer[4],
                    ]) as usize
    }
}

/// Feeds `data` to a deframer (gzip agreed) in the chunks `splits` cut it into and returns
/// the messages or the error: for fuzzing and tests.
pub fn check_deframer(data: &[u8], splits: &[usize], limit: usize) -> Result<Vec<Bytes>, Status> {
    let mut deframer = Deframer::new(limit, Some(Encoding::Gzip));
    let mut messages = Vec::new();
    let mut rest = data;
    for &split in splits.iter().chain(std::iter::once(&usize::MAX)) {
        let (chunk, tail) = rest.split_at(split.min(rest.len()));
        rest = tail;
        deframer.push(Bytes::copy_from_slice(chunk));
        while let Some(message) = deframer.next()? {
            messages.push(message);
        }
        if rest.is_empty() {
            break;
        }
    }
    if deframer.remaining() > 0 {
        return Err(Status::internal("the stream ended inside a message"));
    }
    Ok(messages)
}

/// `grpc-timeout` for `timeout`: at most 8 digits and the finest unit they can hold,
/// rounded up so that the server never stops before the client.
pub fn encode_timeout(timeout: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let value = nanos.div_ceil(per);
        if value <= MAX {
            return format!("{value}{unit}");
        }
    }
    format!("{MAX}H")
}

/// The duration a `grpc-timeout` value gives: 1 to 8 ASCII digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`). `None` for anything else.
pub fn decode_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `grpc-message` text: bytes outside printable ASCII, and `%`, as `%XX` of their UTF-8.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a `grpc-message` leniently, as the spec asks: a `%` not followed by two hex digits
/// is kept as it is, and bytes that are not UTF-8 become U+FFFD. The status is never lost
/// over its message.
pub fn percent_decode(value: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' && i + 2 < value.len() {
            if let (Some(hi), Some(lo)) = (hex(value[i + 1]), hex(value[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers that gRPC or HTTP/2 itself uses, never metadata.
fn reserved(name: &str) -> bool {
    matches!(
        name,
        "content-type" | "te" | "content-length" | "host" | "connection"
    ) || (name.starts_with("grpc-") && name != "grpc-status-details-bin")
}

/// The metadata among `headers`: every header that is not reserved and whose value is text.
/// Binary (`-bin`) values stay in their base64 text, as they travel.
pub(crate) fn metadata_from_headers(headers: &HeaderMap) -> Metadata {
    let mut metadata = Metadata::new();
    for (name, value) in headers {
        if reserved(name.as_str()) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            metadata.append(name.as_str(), value);
        }
    }
    metadata
}

/// Adds `metadata` to `headers`. Fails on a key that is not a lowercase header name or is
/// reserved by gRPC, and on a value that is not visible ASCII.
pub(crate) fn put_metadata(headers: &mut HeaderMap, metadata: &Metadata) -> Result<(), Status> {
    for (key, value) in metadata.iter() {
        let name = HeaderName::from_bytes(key.as_bytes())
            .ok()
            .filter(|n| n.as_str() == key && !reserved(key))
            .ok_or_else(|| {
                Status::internal(format!(
                    "metadata key {key:?} is not a lowercase header name gRPC leaves free"
                ))
            })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            Status::internal(format!(
                "the value of metadata key {key:?} is not visible ASCII"
            ))
        })?;
        headers.append(name, value);
    }
    Ok(())
}

/// Most bytes of `grpc-message` sent, percent-encoded. Peers bound a header block (16 KiB in
/// gRPC's C core and here by default, often 8 KiB before they complain) and fail the whole
/// call over one that is larger, losing its code: a longer message is cut short instead.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// Most bytes of `grpc-status-details-bin` sent, base64-encoded; larger details are left out
/// (the message says so), for the same reason.
const MAX_DETAILS_BYTES: usize = 8 * 1024;

/// Puts `grpc-status`, `grpc-message` and `grpc-status-details-bin` for `status` into
/// `headers`, within the sizes above.
pub(crate) fn put_status(headers: &mut HeaderMap, status: &Result<(), Status>) {
    let (code, message) = match status {
        Ok(()) => (0, ""),
        Err(status) => (status.code() as u32, status.message()),
    };
    headers.insert("grpc-status", HeaderValue::from(code));
    let mut note = String::new();
    if let Err(status) = status {
        if !status.details().is_empty() {
            use base64::Engine as _;
            let encoded = crate::metadata::BASE64.encode(status.details());
            if encoded.len() > MAX_DETAILS_BYTES {
                note = format!(
                    " (status details of {} bytes left out: over the {MAX_DETAILS_BYTES} bytes \
                     a response's headers can carry)",
                    status.details().len()
                );
            } else if let Ok(value) = HeaderValue::from_str(&encoded) {
                headers.insert("grpc-status-details-bin", value);
            }
        }
    }
    if !message.is_empty() || !note.is_empty() {
        let mut encoded = percent_encode(message);
        if encoded.len() > MAX_MESSAGE_BYTES {
            encoded = percent_encode(&shorten(message, MAX_MESSAGE_BYTES));
        }
        encoded.push_str(&percent_encode(&note));
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert("grpc-message", value);
        }
    }
}

/// The longest start of `message` whose percent-encoding (with a closing "...") fits in
/// `limit` bytes.
fn shorten(message: &str, limit: usize) -> String {
    let mut used = 3;
    let mut end = 0;
    for (i, c) in message.char_indices() {
        let mut buf = [0; 4];
        let cost = percent_encode(c.encode_utf8(&mut buf)).len();
        if used + cost > limit {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    format!("{}...", &message[..end])
}

/// The status `headers` carry, if they carry `grpc-status`. A value that is not a number is
/// `UNKNOWN`, as gRPC's implementations read it.
pub(crate) fn status_from_headers(headers: &HeaderMap) -> Option<Result<(), Status>> {
    let raw = headers.get("grpc-status")?;
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    let code = std::str::from_utf8(raw.as_bytes())
        .ok()
        .and_then(|c| c.parse::<u32>().ok());
    let details = headers
        .get("grpc-status-details-bin")
        .and_then(|v| {
            use base64::Engine as _;
            crate::metadata::BASE64.decode(v.as_bytes()).ok()
        })
        .unwrap_or_default();
    Some(match code {
        Some(0) => Ok(()),
        Some(code) => Err(Status::with_details(Code::from_u32(code), message, details)),
        None => Err(Status::unknown(format!(
            "the server sent a grpc-status that is not a number: {:?}{}",
            String::from_utf8_lossy(raw.as_bytes()),
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        ))),
    })
}

/// The status for a response whose HTTP status is not 200: gRPC's table
/// (`doc/http-grpc-status-mapping.md`).
pub(crate) fn status_from_http(code: http::StatusCode) -> Status {
    let grpc = match code.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        grpc,
        format!("the server answered with HTTP status {code}, not a gRPC response"),
    )
}

/// Whether `headers` say the body is gRPC: `application/grpc`, alone or with a `+format` or
/// parameters after it.
pub(crate) fn is_grpc_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.strip_prefix(CONTENT_TYPE)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statuses_fit_a_header_block_and_keep_their_code() {
        let header_bytes = |headers: &HeaderMap| -> usize {
            headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len())
                .sum()
        };
        // A long message (some of it needing percent-encoding) and small details.
        let message = "é".repeat(10_000);
        let status = Status::with_details(Code::Aborted, message.clone(), vec![7u8; 100]);
        let mut headers = HeaderMap::new();
        put_status(&mut headers, &Err(status));
        assert!(
            header_bytes(&headers) < 8 * 1024,
            "{}",
            header_bytes(&headers)
        );
        let back = status_from_headers(&headers).unwrap().unwrap_err();
        assert_eq!(back.code(), Code::Aborted);
        assert!(back.message().ends_with("..."));
        assert!(message.starts_with(back.message().trim_end_matches("...")));
        assert_eq!(&back.details()[..], &[7u8; 100][..]);

        // Details too large to send are left out, and the message says so.
        let status = Status::with_details(Code::Aborted, "short", vec![1u8; 100_000]);
        let mut headers = HeaderMap::new();
        put_status(&mut headers, &Err(status));
        assert!(header_bytes(&headers) < 8 * 1024);
        let back = status_from_headers(&headers).unwrap().unwrap_err();
        assert!(back
            .message()
            .starts_with("short (status details of 100000 bytes left out"));
        assert!(back.details().is_empty());

        // A status that fits goes as it is.
        let mut headers = HeaderMap::new();
        put_status(&mut headers, &Err(Status::not_found("no such key")));
        let back = status_from_headers(&headers).unwrap().unwrap_err();
        assert_eq!(back.message(), "no such key");
    }

    #[test]
    fn a_grpc_status_that_is_not_a_number_is_named() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("abc"));
        let status = status_from_headers(&headers).unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unknown);
        assert!(status.message().contains("\"abc\""), "{status}");
    }

    #[test]
    fn timeouts_round_trip_in_the_finest_unit_that_fits() {
        assert_eq!(encode_timeout(Duration::from_nanos(1)), "1n");
        assert_eq!(encode_timeout(Duration::from_millis(100)), "100000u");
        assert_eq!(encode_timeout(Duration::from_secs(1)), "1000000u");
        assert_eq!(encode_timeout(Duration::from_secs(100_000)), "100000S");
        assert_eq!(encode_timeout(Duration::from_secs(u64::MAX)), "99999999H");
        for value in [
            "1H",
            "99999999H",
            "5M",
            "30S",
            "250m",
            "7u",
            "1n",
            "99999999n",
        ] {
            let d = decode_timeout(value.as_bytes()).unwrap();
            assert!(decode_timeout(encode_timeout(d).as_bytes()).unwrap() >= d);
        }
        for bad in ["", "S", "123456789S", "1s", "-1S", "1.5S", " 1S"] {
            assert_eq!(decode_timeout(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn messages_are_percent_encoded_and_decoded_leniently() {
        let text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
        assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
        assert_eq!(percent_encode("50% ok"), "50%25 ok");
        assert_eq!(percent_decode(b"bad %zz and %4"), "bad %zz and %4");
        assert_eq!(percent_decode(b"%FF%FE"), "\u{FFFD}\u{FFFD}");
        assert_eq!(percent_decode(b"%"), "%");
    }

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let mut data = Vec::new();
        for message in [&b""[..], b"a", &[7u8; 300]] {
            data.extend_from_slice(&frame(message, None).unwrap());
        }
        for size in 1..=data.len() {
            let splits = vec![size; data.len() / size];
            let messages = check_deframer(&data, &splits, 1000).unwrap();
            assert_eq!(messages.len(), 3);
            assert_eq!(&messages[1][..], b"a");
            assert_eq!(messages[2].len(), 300);
        }
        let err = check_deframer(&data, &[], 100).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(
            check_deframer(&data[..8], &[], 1000).unwrap_err().code(),
            Code::Internal
        );
        assert_eq!(
            check_deframer(&[1, 0, 0, 0, 0], &[], 10)
                .unwrap_err()
                .code(),
            Code::Internal
        );
    }

    #[test]
    fn http_errors_map_by_the_table() {
        assert_eq!(
            status_from_http(http::StatusCode::NOT_FOUND).code(),
            Code::Unimplemented
        );
        assert_eq!(
            status_from_http(http::StatusCode::BAD_GATEWAY).code(),
            Code::Unavailable
        );
        assert_eq!(
            status_from_http(http::StatusCode::IM_A_TEAPOT).code(),
            Code::Unknown
        );
    }
}
