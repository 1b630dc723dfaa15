//! Wire-format primitives: varints, wire types and the [`Reader`] that decoding goes through.
//!
//! Users rarely need this module directly: the [`Message`] trait's provided methods are the
//! public face of the codec. The codec markers and field helpers that generated code calls
//! (so that each message's `encode_raw`, `encoded_len` and `merge_from` stay short) are public
//! for that code but hidden from the documentation: their names and signatures follow the
//! generator, not semver.
//!
//! Encoding appends to a `Vec<u8>`. Decoding goes through a [`Reader`], which tracks one
//! absolute position in the caller's buffer and a limit for the message being read, so errors
//! can name the byte offset where they happened.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::{Enumeration, Message, UnknownFields};

/// The six wire types of the protobuf encoding (two of them only delimit groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WireType {
    /// A varint: integers, bools, enums.
    Varint = 0,
    /// Eight little-endian bytes: `fixed64`, `sfixed64`, `double`.
    Fixed64 = 1,
    /// A length and that many bytes: strings, bytes, messages, packed repeated fields.
    Len = 2,
    /// Opens a proto2 group.
    StartGroup = 3,
    /// Closes a proto2 group.
    EndGroup = 4,
    /// Four little-endian bytes: `fixed32`, `sfixed32`, `float`.
    Fixed32 = 5,
}

/// Recursion limit applied by [`Reader::new`], as in the C++ and Go implementations.
pub const DEFAULT_RECURSION_LIMIT: u32 = 100;

/// How deeply messages and groups may nest in a value that is encoded: the decoder's default
/// limit, so every value that decodes also encodes, and a value built in memory cannot
/// overflow the stack of the encoder.
pub const ENCODE_RECURSION_LIMIT: u32 = DEFAULT_RECURSION_LIMIT;

/// The `encoded_len` walk's state on this thread, in one cell so that entering a nested
/// message costs one thread-local read and write.
#[derive(Clone, Copy)]
struct LenWalk {
    /// Nesting depth of the walk.
    depth: u32,
    /// Set when the walk met a message nested past [`ENCODE_RECURSION_LIMIT`].
    too_deep: bool,
}

thread_local! {
    static LEN_WALK: Cell<LenWalk> = const {
        Cell::new(LenWalk {
            depth: 0,
            too_deep: false,
        })
    };
    /// Nested messages measured so far, in debug builds: see [`nested_visits`].
    static VISITS: Cell<u64> = const { Cell::new(0) };
}

/// How many nested messages the `encoded_len` walk has measured on this thread so far, in
/// builds with debug assertions (0 in release builds, which do not count).
///
/// Encoding a value measures each nested message once (writing then needs no measuring), so
/// the difference across one `encode_to_vec` is the number of nested messages: a count of
/// encoding work that repeats exactly, for tests that check it grows linearly.
#[doc(hidden)]
pub fn nested_visits() -> u64 {
    VISITS.with(Cell::get)
}

/// Counts levels of nesting in the `encoded_len` walk for as long as it lives.
struct LenDepth(u32);

impl LenDepth {
    /// Enters `levels` levels of nesting for one nested message, or records that the value is
    /// too deep and returns `None`, so the walk stops there instead of recursing without bound.
    #[inline]
    fn enter(levels: u32) -> Option<LenDepth> {
        if cfg!(debug_assertions) {
            VISITS.with(|v| v.set(v.get() + 1));
        }
        LEN_WALK.with(|w| {
            let mut walk = w.get();
            if walk.depth + levels > ENCODE_RECURSION_LIMIT {
                walk.too_deep = true;
                w.set(walk);
                return None;
            }
            walk.depth += levels;
            w.set(walk);
            Some(LenDepth(levels))
        })
    }
}

impl Drop for LenDepth {
    #[inline]
    fn drop(&mut self) {
        LEN_WALK.with(|w| {
            let mut walk = w.get();
            walk.depth -= self.0;
            w.set(walk);
        });
    }
}

/// `encoded_len` of a message nested `levels` deep below the current one (2 for a map's
/// value: the entry is a message too, and the decoder counts it), walked only within the
/// nesting limit.
#[inline]
fn nested_len<M: Message + ?Sized>(msg: &M, levels: u32) -> usize {
    match LenDepth::enter(levels) {
        Some(_depth) => msg.encoded_len(),
        None => 0,
    }
}

/// The encoded length of a top-level message, or an error if it nests past
/// [`ENCODE_RECURSION_LIMIT`]. Every `encode*` method checks this before writing: the write
/// itself then recurses no deeper than this walk did.
pub(crate) fn checked_len<M: Message + ?Sized>(msg: &M) -> Result<usize, EncodeError> {
    let outer = LEN_WALK.with(|w| {
        let mut walk = w.get();
        let outer = walk.too_deep;
        walk.too_deep = false;
        w.set(walk);
        outer
    });
    let len = msg.encoded_len();
    let too_deep = LEN_WALK.with(|w| {
        let mut walk = w.get();
        let too_deep = walk.too_deep;
        walk.too_deep = outer;
        w.set(walk);
        too_deep
    });
    if too_deep {
        return Err(EncodeError::too_deep(ENCODE_RECURSION_LIMIT));
    }
    Ok(len)
}

/// Number of bytes `value` takes as a varint.
#[inline]
pub const fn varint_len(value: u64) -> usize {
    // Index of the highest set bit, times 9/64, rounded: 7 bits per byte without a loop or a
    // division. `^ 63` turns the leading-zero count into that index in one instruction.
    let highest_bit = ((value | 1).leading_zeros() ^ 63) as usize;
    (highest_bit * 9 + 73) / 64
}

/// Number of bytes a field key with this field number takes.
#[inline]
pub const fn key_len(number: u32) -> usize {
    varint_len((number as u64) << 3)
}

/// Appends `value` as a varint.
#[inline]
pub fn encode_varint(mut value: u64, buf: &mut Vec<u8>) {
    if value < 0x80 {
        buf.push(value as u8);
        return;
    }
    // Byte by byte: callers reserve the message's size first, so every push hits capacity
    // that is already there, and a short loop beats copying from a scratch array.
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends the key of field `number` with wire type `wire_type`.
#[inline]
pub fn encode_key(number: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(((number as u64) << 3) | wire_type as u64, buf);
}

#[inline]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes a length prefix and a body produced by `body`, without measuring the body first.
///
/// One byte is set aside for the length; if the body turns out to need a longer prefix, the
/// body is shifted. Nested messages are therefore walked once on encode rather than once per
/// level of nesting.
#[inline]
#[doc(hidden)]
pub fn encode_len_delimited(buf: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.push(0);
    body(buf);
    let len = buf.len() - start - 1;
    if len < 0x80 {
        buf[start] = len as u8;
        return;
    }
    let prefix = varint_len(len as u64);
    buf.resize(buf.len() + prefix - 1, 0);
    buf.copy_within(start + 1..start + 1 + len, start + prefix);
    let mut value = len as u64;
    let mut i = start;
    while value >= 0x80 {
        buf[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    buf[i] = value as u8;
}

/// A cursor over an encoded message.
///
/// All offsets are absolute positions in the buffer given to [`Reader::new`]; nested messages
/// narrow `limit` instead of slicing, so an error deep inside still reports where it is.
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The `Bytes` that `buf` is, when decoding from one: `Bytes` fields share it.
    source: Option<&'a bytes::Bytes>,
    pos: usize,
    limit: usize,
    depth: u32,
    recursion_limit: u32,
    tag_start: usize,
    /// The key `next_tag` returned last.
    last_tag: u32,
    /// Field number of the end-group tag that stopped the innermost loop; 0 when none did.
    ended_group: u32,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`, with the default recursion limit.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            source: None,
            pos: 0,
            limit: buf.len(),
            depth: 0,
            recursion_limit: DEFAULT_RECURSION_LIMIT,
            tag_start: 0,
            last_tag: 0,
            ended_group: 0,
        }
    }

    /// A reader over the whole of `bytes`: fields generated as [`bytes::Bytes`] take slices of
    /// it instead of copies.
    pub fn from_bytes(bytes: &'a bytes::Bytes) -> Self {
        Reader {
            source: Some(bytes),
            ..Reader::new(bytes)
        }
    }

    /// Sets how deeply messages and groups may nest before decoding fails.
    pub fn with_recursion_limit(mut self, limit: u32) -> Self {
        self.recursion_limit = limit;
        self
    }

    /// Current absolute position.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn error(&self, kind: DecodeErrorKind, offset: usize) -> DecodeError {
        DecodeError::new(kind, offset)
    }

    /// Reads the next field key, or `None` at the end of the current message or group.
    #[inline]
    pub fn next_tag(&mut self) -> Result<Option<u32>, DecodeError> {
        if self.pos >= self.limit {
            return Ok(None);
        }
        self.tag_start = self.pos;
        let tag = self.read_varint()?;
        if tag > u64::from(u32::MAX) || tag >> 3 == 0 {
            return Err(self.error(
                DecodeErrorKind::InvalidFieldNumber(tag >> 3),
                self.tag_start,
            ));
        }
        let tag = tag as u32;
        match tag & 7 {
            4 => {
                self.ended_group = tag >> 3;
                Ok(None)
            }
            6 | 7 => Err(self.error(DecodeErrorKind::InvalidWireType(tag & 7), self.tag_start)),
            _ => {
                self.last_tag = tag;
                Ok(Some(tag))
            }
        }
    }

    /// The key of the field being read: the one [`next_tag`](Reader::next_tag) returned last.
    #[inline]
    pub fn last_tag(&self) -> u32 {
        self.last_tag
    }

    /// The error for a known field that arrived with a wire type it cannot have.
    #[cold]
    pub fn wrong_wire_type(&self, tag: u32) -> DecodeError {
        self.error(
            DecodeErrorKind::WrongWireType {
                field: tag >> 3,
                wire_type: tag & 7,
            },
            self.tag_start,
        )
    }

    /// Fails unless `tag` has wire type `expected`.
    #[inline]
    pub fn expect(&self, tag: u32, expected: WireType) -> Result<(), DecodeError> {
        if tag & 7 == expected as u32 {
            Ok(())
        } else {
            Err(self.wrong_wire_type(tag))
        }
    }

    /// Reads a varint of up to ten bytes.
    #[inline]
    pub fn read_varint(&mut self) -> Result<u64, DecodeError> {
        let bytes = &self.buf[..self.limit];
        if let Some(&b) = bytes.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            // Two-byte varints (values below 16384) are common enough to stay inline.
            if let Some(&b2) = bytes.get(self.pos + 1) {
                if b2 < 0x80 {
                    self.pos += 2;
                    return Ok(u64::from(b & 0x7f) | (u64::from(b2) << 7));
                }
            }
        }
        self.read_varint_slow()
    }

    #[inline(never)]
    fn read_varint_slow(&mut self) -> Result<u64, DecodeError> {
        let bytes = &self.buf[self.pos..self.limit];
        // Away from the end of the input a whole varint's worth of bytes is there: over a
        // fixed-size array the loop has no bounds to check and unrolls.
        let read = match bytes.first_chunk::<10>() {
            Some(chunk) => varint_from(chunk.iter()),
            None => varint_from(bytes.iter()),
        };
        match read {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None if bytes.len() >= 10 => Err(self.error(DecodeErrorKind::VarintTooLong, self.pos)),
            None => Err(self.error(DecodeErrorKind::TruncatedVarint, self.pos)),
        }
    }

    #[inline]
    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        match self.buf[..self.limit].get(self.pos..self.pos + N) {
            Some(bytes) => {
                self.pos += N;
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                Ok(out)
            }
            None => Err(self.error(DecodeErrorKind::TruncatedFixed, self.pos)),
        }
    }

    /// Reads a length prefix and checks it against the bytes that remain.
    #[inline]
    pub fn read_len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let len = self.read_varint()?;
        let remaining = self.limit - self.pos;
        if len > remaining as u64 {
            return Err(self.error(
                DecodeErrorKind::LengthOutOfBounds {
                    length: len,
                    remaining,
                },
                at,
            ));
        }
        Ok(len as usize)
    }

    /// Reads a length-delimited value and returns its bytes, borrowed from the input.
    #[inline]
    pub fn read_len_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_len()?;
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    /// Reads an `int32`.
    #[inline]
    pub fn read_int32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.read_varint()? as i32)
    }
    /// Reads an `int64`.
    #[inline]
    pub fn read_int64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.read_varint()? as i64)
    }
    /// Reads a `uint32`.
    #[inline]
    pub fn read_uint32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.read_varint()? as u32)
    }
    /// Reads a `uint64`.
    #[inline]
    pub fn read_uint64(&mut self) -> Result<u64, DecodeError> {
        self.read_varint()
    }
    /// Reads a zigzag `sint32`.
    #[inline]
    pub fn read_sint32(&mut self) -> Result<i32, DecodeError> {
        let v = self.read_varint()? as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }
    /// Reads a zigzag `sint64`.
    #[inline]
    pub fn read_sint64(&mut self) -> Result<i64, DecodeError> {
        let v = self.read_varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    /// Reads a `bool`.
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_varint()? != 0)
    }
    /// Reads a `fixed32`.
    #[inline]
    pub fn read_fixed32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }
    /// Reads a `fixed64`.
    #[inline]
    pub fn read_fixed64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }
    /// Reads an `sfixed32`.
    #[inline]
    pub fn read_sfixed32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.read_array()?))
    }
    /// Reads an `sfixed64`.
    #[inline]
    pub fn read_sfixed64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.read_array()?))
    }
    /// Reads a `float`.
    #[inline]
    pub fn read_float(&mut self) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.read_array()?))
    }
    /// Reads a `double`.
    #[inline]
    pub fn read_double(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.read_array()?))
    }

    /// Replaces `dst` with a length-delimited UTF-8 string, reusing its allocation.
    #[inline]
    pub fn read_string_into(&mut self, dst: &mut String) -> Result<(), DecodeError> {
        let at = self.pos;
        let bytes = self.read_len_slice()?;
        match utf8(bytes) {
            Ok(s) => {
                assign_str(dst, s);
                Ok(())
            }
            Err(_) => Err(self.error(DecodeErrorKind::InvalidUtf8, at)),
        }
    }

    /// Reads a length-delimited UTF-8 string.
    #[inline]
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let mut s = String::new();
        self.read_string_into(&mut s)?;
        Ok(s)
    }

    /// Replaces `dst` with a length-delimited byte string, reusing its allocation.
    #[inline]
    pub fn read_bytes_into(&mut self, dst: &mut Vec<u8>) -> Result<(), DecodeError> {
        let bytes = self.read_len_slice()?;
        if dst.capacity() == 0 {
            *dst = bytes.to_vec();
        } else {
            dst.clear();
            dst.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Reads a length-delimited byte string.
    #[inline]
    pub fn read_bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_len_slice()?.to_vec())
    }

    /// Reads a length-delimited byte string as [`bytes::Bytes`]: a slice of the input when the
    /// reader was made by [`Reader::from_bytes`], a copy otherwise.
    #[inline]
    pub fn read_shared_bytes(&mut self) -> Result<bytes::Bytes, DecodeError> {
        let slice = self.read_len_slice()?;
        Ok(match self.source {
            // `slice` lies inside `source`, which is what `slice_ref` needs.
            Some(source) => source.slice_ref(slice),
            None => bytes::Bytes::copy_from_slice(slice),
        })
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= self.recursion_limit {
            return Err(self.error(
                DecodeErrorKind::RecursionLimit(self.recursion_limit),
                self.tag_start,
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// Runs `body` over the next `len` bytes as if they were the whole input.
    #[inline]
    fn with_limit<T>(
        &mut self,
        len: usize,
        body: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let outer = self.limit;
        self.limit = self.pos + len;
        let out = body(self)?;
        self.limit = outer;
        Ok(out)
    }

    /// Merges a length-delimited embedded message into `msg`.
    #[inline]
    pub fn read_message<M: Message>(&mut self, msg: &mut M) -> Result<(), DecodeError> {
        let len = self.read_len()?;
        self.enter()?;
        self.with_limit(len, |r| {
            msg.merge_from(r)?;
            r.no_open_group()
        })?;
        self.depth -= 1;
        Ok(())
    }

    /// Merges a group (proto2) into `msg`; the start-group tag for `number` has been read.
    pub fn read_group<M: Message>(&mut self, number: u32, msg: &mut M) -> Result<(), DecodeError> {
        self.enter()?;
        msg.merge_from(self)?;
        self.close_group(number)?;
        self.depth -= 1;
        Ok(())
    }

    fn close_group(&mut self, number: u32) -> Result<(), DecodeError> {
        if self.ended_group != number {
            return Err(self.error(DecodeErrorKind::UnterminatedGroup(number), self.pos));
        }
        self.ended_group = 0;
        Ok(())
    }

    /// Fails if the last loop over fields stopped at an end-group tag that nothing opened.
    pub fn no_open_group(&self) -> Result<(), DecodeError> {
        if self.ended_group != 0 {
            return Err(self.error(
                DecodeErrorKind::UnexpectedEndGroup(self.ended_group),
                self.tag_start,
            ));
        }
        Ok(())
    }

    /// Skips the value of a field whose key `tag` was just read.
    pub fn skip_field(&mut self, tag: u32) -> Result<(), DecodeError> {
        match tag & 7 {
            0 => {
                self.read_varint()?;
            }
            1 => {
                self.read_array::<8>()?;
            }
            2 => {
                self.read_len_slice()?;
            }
            3 => {
                self.enter()?;
                while let Some(inner) = self.next_tag()? {
                    self.skip_field(inner)?;
                }
                self.close_group(tag >> 3)?;
                self.depth -= 1;
            }
            5 => {
                self.read_array::<4>()?;
            }
            wt => return Err(self.error(DecodeErrorKind::InvalidWireType(wt), self.tag_start)),
        }
        Ok(())
    }

    /// Skips a field not in the schema and keeps its bytes, key included, in `unknown`.
    pub fn keep_unknown(
        &mut self,
        tag: u32,
        unknown: &mut UnknownFields,
    ) -> Result<(), DecodeError> {
        let start = self.tag_start;
        self.skip_field(tag)?;
        unknown.extend_raw(&self.buf[start..self.pos]);
        Ok(())
    }

    /// Reads a packed run of values of codec `C` into `out`.
    #[inline]
    pub fn read_packed<C: Codec>(&mut self, out: &mut Vec<C::Value>) -> Result<(), DecodeError> {
        let len = self.read_len()?;
        if let Some(width) = C::FIXED_WIDTH {
            if len % width != 0 {
                return Err(self.error(DecodeErrorKind::PackedLengthMismatch, self.pos));
            }
            // The bytes are present, so this reservation is bounded by the input.
            out.reserve(len / width);
        }
        self.with_limit(len, |r| {
            while r.pos < r.limit {
                let mut value = C::Value::default();
                C::merge(&mut value, r)?;
                out.push(value);
            }
            Ok(())
        })
    }
}

/// Encoding rules for one protobuf field type, keyed by a zero-sized marker type.
///
/// Generated code names the marker (`Int32`, `Str`, `Msg<M>` …) and the generic helpers in
/// this module do the rest, so the per-type logic lives here once.
#[doc(hidden)]
pub trait Codec: Sized {
    /// The Rust type a field of this protobuf type holds.
    type Value: Default + 'static;
    /// The wire type a single value uses.
    const WIRE_TYPE: WireType;
    /// Width of a fixed-size value, for packed decoding; `None` for varints and lengths.
    const FIXED_WIDTH: Option<usize> = None;
    /// Encoded size of one value, including its length prefix but not its key.
    fn len(value: &Self::Value) -> usize;
    /// Appends one value, including its length prefix but not its key.
    fn encode(value: &Self::Value, buf: &mut Vec<u8>);
    /// Reads one value into `value` (merging for messages).
    fn merge(value: &mut Self::Value, r: &mut Reader<'_>) -> Result<(), DecodeError>;
    /// Whether proto3 implicit presence would leave this value off the wire.
    fn is_default(value: &Self::Value) -> bool;

    /// Whether a value this codec refuses ([`try_merge`](Codec::try_merge)) is still the
    /// field's latest value: a string that is not UTF-8 is (the field reads as unset while
    /// the bytes wait in the unknown fields, and a later value replaces them); a closed enum's
    /// undeclared number is not (the spec makes it an unknown field, and the field keeps what
    /// it held).
    const REFUSED_IS_VALUE: bool = false;

    /// Reads one value into `value`, or returns `Ok(false)` and leaves `value` as it was when
    /// the bytes are well formed but the field cannot hold what they say: a number a closed
    /// enum does not declare, a string that is not UTF-8 where the field's features skip
    /// validation. The caller then keeps the field's bytes with the unknown fields, as
    /// protobuf's reference parsers do.
    #[inline]
    fn try_merge(value: &mut Self::Value, r: &mut Reader<'_>) -> Result<bool, DecodeError> {
        Self::merge(value, r).map(|()| true)
    }

    /// Encoded size of field `number` holding `value`, or 0 for a default value, which map
    /// entries leave out.
    #[inline]
    fn non_default_len(number: u32, value: &Self::Value) -> usize {
        let mut len = 0;
        implicit_len::<Self>(&mut len, number, value);
        len
    }

    /// Appends field `number` holding `value`, unless the value is the default.
    #[inline]
    fn encode_non_default(number: u32, value: &Self::Value, buf: &mut Vec<u8>) {
        encode_implicit::<Self>(number, value, buf)
    }
}

/// Marker for codecs whose repeated fields may use the packed encoding.
#[doc(hidden)]
pub trait Packable: Codec {}

macro_rules! varint_codec {
    ($name:ident, $ty:ty, $read:ident, |$v:ident| $to_u64:expr) => {
        #[doc = concat!("Codec for `", stringify!($name), "` fields.")]
        #[doc(hidden)]
        pub struct $name;
        impl Codec for $name {
            type Value = $ty;
            const WIRE_TYPE: WireType = WireType::Varint;
            #[inline]
            fn len($v: &$ty) -> usize {
                let $v = *$v;
                varint_len($to_u64)
            }
            #[inline]
            fn encode($v: &$ty, buf: &mut Vec<u8>) {
                let $v = *$v;
                encode_varint($to_u64, buf)
            }
            #[inline]
            fn merge(value: &mut $ty, r: &mut Reader<'_>) -> Result<(), DecodeError> {
                *value = r.$read()?;
                Ok(())
            }
            #[inline]
            fn is_default(value: &$ty) -> bool {
                *value == <$ty>::default()
            }
        }
        impl Packable for $name {}
    };
}

varint_codec!(Int32, i32, read_int32, |v| v as i64 as u64);
varint_codec!(Int64, i64, read_int64, |v| v as u64);
varint_codec!(UInt32, u32, read_uint32, |v| u64::from(v));
varint_codec!(UInt64, u64, read_uint64, |v| v);
varint_codec!(SInt32, i32, read_sint32, |v| u64::from(zigzag32(v)));
varint_codec!(SInt64, i64, read_sint64, |v| zigzag64(v));
varint_codec!(Bool, bool, read_bool, |v| u64::from(v));

macro_rules! fixed_codec {
    ($name:ident, $ty:ty, $read:ident, $wire:ident, $width:expr, |$v:ident| $is_default:expr) => {
        #[doc = concat!("Codec for `", stringify!($name), "` fields.")]
        #[doc(hidden)]
        pub struct $name;
        impl Codec for $name {
            type Value = $ty;
            const WIRE_TYPE: WireType = WireType::$wire;
            const FIXED_WIDTH: Option<usize> = Some($width);
            #[inline]
            fn len(_: &$ty) -> usize {
                $width
            }
            #[inline]
            fn encode(value: &$ty, buf: &mut Vec<u8>) {
                buf.extend_from_slice(&value.to_le_bytes())
            }
            #[inline]
            fn merge(value: &mut $ty, r: &mut Reader<'_>) -> Result<(), DecodeError> {
                *value = r.$read()?;
                Ok(())
            }
            #[inline]
            fn is_default($v: &$ty) -> bool {
                $is_default
            }
        }
        impl Packable for $name {}
    };
}

fixed_codec!(Fixed32, u32, read_fixed32, Fixed32, 4, |v| *v == 0);
fixed_codec!(Fixed64, u64, read_fixed64, Fixed64, 8, |v| *v == 0);
fixed_codec!(SFixed32, i32, read_sfixed32, Fixed32, 4, |v| *v == 0);
fixed_codec!(SFixed64, i64, read_sfixed64, Fixed64, 8, |v| *v == 0);
// Proto3 leaves a float off the wire only when every bit is zero, so -0.0 is still sent.
fixed_codec!(Float, f32, read_float, Fixed32, 4, |v| v.to_bits() == 0);
fixed_codec!(Double, f64, read_double, Fixed64, 8, |v| v.to_bits() == 0);

/// Codec for `string` fields.
#[doc(hidden)]
pub struct Str;
impl Codec for Str {
    type Value = String;
    const WIRE_TYPE: WireType = WireType::Len;
    #[inline]
    fn len(value: &String) -> usize {
        varint_len(value.len() as u64) + value.len()
    }
    #[inline]
    fn encode(value: &String, buf: &mut Vec<u8>) {
        encode_varint(value.len() as u64, buf);
        buf.extend_from_slice(value.as_bytes());
    }
    #[inline]
    fn merge(value: &mut String, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.read_string_into(value)
    }
    #[inline]
    fn is_default(value: &String) -> bool {
        value.is_empty()
    }
}

/// Codec for `bytes` fields.
#[doc(hidden)]
pub struct Bytes;
impl Codec for Bytes {
    type Value = Vec<u8>;
    const WIRE_TYPE: WireType = WireType::Len;
    #[inline]
    fn len(value: &Vec<u8>) -> usize {
        varint_len(value.len() as u64) + value.len()
    }
    #[inline]
    fn encode(value: &Vec<u8>, buf: &mut Vec<u8>) {
        encode_varint(value.len() as u64, buf);
        buf.extend_from_slice(value);
    }
    #[inline]
    fn merge(value: &mut Vec<u8>, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.read_bytes_into(value)
    }
    #[inline]
    fn is_default(value: &Vec<u8>) -> bool {
        value.is_empty()
    }
}

/// Codec for `bytes` fields generated as [`bytes::Bytes`], which decoding from a `Bytes`
/// fills without copying.
#[doc(hidden)]
pub struct SharedBytes;
impl Codec for SharedBytes {
    type Value = bytes::Bytes;
    const WIRE_TYPE: WireType = WireType::Len;
    #[inline]
    fn len(value: &bytes::Bytes) -> usize {
        varint_len(value.len() as u64) + value.len()
    }
    #[inline]
    fn encode(value: &bytes::Bytes, buf: &mut Vec<u8>) {
        encode_varint(value.len() as u64, buf);
        buf.extend_from_slice(value);
    }
    #[inline]
    fn merge(value: &mut bytes::Bytes, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        *value = r.read_shared_bytes()?;
        Ok(())
    }
    #[inline]
    fn is_default(value: &bytes::Bytes) -> bool {
        value.is_empty()
    }
}

/// Codec for enum fields of enum type `E`.
#[doc(hidden)]
pub struct Enum<E>(std::marker::PhantomData<E>);
impl<E: Enumeration> Codec for Enum<E> {
    type Value = E;
    const WIRE_TYPE: WireType = WireType::Varint;
    #[inline]
    fn len(value: &E) -> usize {
        varint_len(Into::<i32>::into(*value) as i64 as u64)
    }
    #[inline]
    fn encode(value: &E, buf: &mut Vec<u8>) {
        encode_varint(Into::<i32>::into(*value) as i64 as u64, buf)
    }
    #[inline]
    fn merge(value: &mut E, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        *value = E::from(r.read_int32()?);
        Ok(())
    }
    #[inline]
    fn is_default(value: &E) -> bool {
        Into::<i32>::into(*value) == 0
    }
}
impl<E: Enumeration> Packable for Enum<E> {}

/// Codec for `string` fields whose features skip UTF-8 validation (proto2, or editions'
/// `utf8_validation = NONE`). A Rust `String` holds only UTF-8, so a value that is not goes to
/// the message's unknown fields, bytes unchanged, and is written back on encode.
#[doc(hidden)]
pub struct LaxStr;
impl Codec for LaxStr {
    type Value = String;
    const WIRE_TYPE: WireType = WireType::Len;
    const REFUSED_IS_VALUE: bool = true;
    #[inline]
    fn len(value: &String) -> usize {
        Str::len(value)
    }
    #[inline]
    fn encode(value: &String, buf: &mut Vec<u8>) {
        Str::encode(value, buf)
    }
    #[inline]
    fn merge(value: &mut String, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.read_string_into(value)
    }
    #[inline]
    fn is_default(value: &String) -> bool {
        value.is_empty()
    }
    #[inline]
    fn try_merge(value: &mut String, r: &mut Reader<'_>) -> Result<bool, DecodeError> {
        let bytes = r.read_len_slice()?;
        match utf8(bytes) {
            Ok(s) => {
                assign_str(value, s);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

/// A varint's value and length from its first (at most 10) bytes; `None` when none of them
/// ends it.
#[inline(always)]
fn varint_from<'b>(bytes: impl Iterator<Item = &'b u8>) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Replaces `dst` with `s`: a fresh field gets one exact allocation, without the growth path;
/// one that has room keeps its allocation.
#[inline]
fn assign_str(dst: &mut String, s: &str) {
    if dst.capacity() == 0 {
        *dst = s.to_owned();
    } else {
        dst.clear();
        dst.push_str(s);
    }
}

/// Whether every byte is ASCII. `<[u8]>::is_ascii` tests a string under 8 bytes a byte at a
/// time, and most strings on the wire are that short: this reads 1-3 bytes as the first,
/// middle and last byte and 4-7 as two overlapping `u32`s, and longer strings a `u64` at a
/// time with an overlapping last word.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(HIGH, u64::from_le_bytes)
    };
    let half = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(HIGH as u32, u32::from_le_bytes)
    };
    let n = bytes.len();
    match n {
        0 => true,
        1..=3 => (bytes[0] | bytes[n / 2] | bytes[n - 1]) < 0x80,
        4..=7 => (half(0) | half(n - 4)) & HIGH as u32 == 0,
        _ => {
            let mut seen = word(n - 8);
            for chunk in bytes.chunks_exact(8) {
                seen |= chunk.try_into().map_or(HIGH, u64::from_le_bytes);
            }
            seen & HIGH == 0
        }
    }
}

/// `bytes` as a `str`, if they are UTF-8. Most strings on the wire are ASCII, which a word at
/// a time confirms faster than the general validation does for short strings.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if is_ascii(bytes) {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Codec for fields of a closed enum `E` (proto2 enums, editions' `enum_type = CLOSED`): a
/// number `E` does not declare goes to the message's unknown fields, as the spec says, and the
/// field keeps its value.
#[doc(hidden)]
pub struct ClosedEnum<E>(std::marker::PhantomData<E>);
impl<E: Enumeration> Codec for ClosedEnum<E> {
    type Value = E;
    const WIRE_TYPE: WireType = WireType::Varint;
    #[inline]
    fn len(value: &E) -> usize {
        Enum::<E>::len(value)
    }
    #[inline]
    fn encode(value: &E, buf: &mut Vec<u8>) {
        Enum::<E>::encode(value, buf)
    }
    #[inline]
    fn merge(value: &mut E, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        Enum::<E>::merge(value, r)
    }
    #[inline]
    fn is_default(value: &E) -> bool {
        Enum::<E>::is_default(value)
    }
    #[inline]
    fn try_merge(value: &mut E, r: &mut Reader<'_>) -> Result<bool, DecodeError> {
        let read = E::from(r.read_int32()?);
        if read.is_known() {
            *value = read;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
impl<E: Enumeration> Packable for ClosedEnum<E> {}

/// How deep a message field nests: a fixed depth, or without bound.
#[doc(hidden)]
pub trait Nesting {
    /// The `encoded_len` of a nested message, `levels` below the current one.
    fn len<M: Message + ?Sized>(msg: &M, levels: u32) -> usize;
}

/// For fields whose type cannot reach back to the message holding them: values nest no
/// deeper than the schema, so the walk need not count.
#[doc(hidden)]
pub struct Bounded;

impl Nesting for Bounded {
    #[inline]
    fn len<M: Message + ?Sized>(msg: &M, _levels: u32) -> usize {
        msg.encoded_len()
    }
}

/// For fields on a cycle of message types: values can nest without bound, so the walk counts
/// the nesting and stops at the limit.
#[doc(hidden)]
pub struct Unbounded;

impl Nesting for Unbounded {
    #[inline]
    fn len<M: Message + ?Sized>(msg: &M, levels: u32) -> usize {
        nested_len(msg, levels)
    }
}

/// Codec for embedded message fields of type `M`, nesting as `N` says.
#[doc(hidden)]
pub struct MsgCodec<M, N>(std::marker::PhantomData<(M, N)>);

/// Codec for a message field whose type cannot reach back to its container.
#[doc(hidden)]
pub type Msg<M> = MsgCodec<M, Bounded>;

/// Codec for a message field on a cycle of message types (a tree, a `Struct`).
#[doc(hidden)]
pub type RecMsg<M> = MsgCodec<M, Unbounded>;

impl<M: Message + Default + 'static, N: Nesting + 'static> Codec for MsgCodec<M, N> {
    type Value = M;
    const WIRE_TYPE: WireType = WireType::Len;
    #[inline]
    fn len(value: &M) -> usize {
        let len = N::len(value, 1);
        varint_len(len as u64) + len
    }
    #[inline]
    fn encode(value: &M, buf: &mut Vec<u8>) {
        encode_len_delimited(buf, |buf| value.encode_raw(buf));
    }
    #[inline]
    fn merge(value: &mut M, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.read_message(value)
    }
    /// Only map entries ask this (through the two methods below, which walk the value once);
    /// an empty message may be left out of them.
    #[inline]
    fn is_default(value: &M) -> bool {
        N::len(value, 1) == 0
    }
    /// A map entry is a message too, and the decoder counts it as a level of nesting: so
    /// does this walk, so that what encodes also decodes.
    #[inline]
    fn non_default_len(number: u32, value: &M) -> usize {
        match N::len(value, 2) {
            0 => 0,
            len => key_len(number) + varint_len(len as u64) + len,
        }
    }
    /// Writes the value without measuring it first, and takes it back off if it was empty, so
    /// that encoding stays one walk of the value however deeply maps nest.
    #[inline]
    fn encode_non_default(number: u32, value: &M, buf: &mut Vec<u8>) {
        let start = buf.len();
        encode_key(number, WireType::Len, buf);
        let body = buf.len();
        encode_len_delimited(buf, |buf| value.encode_raw(buf));
        if buf.len() == body + 1 {
            buf.truncate(start);
        }
    }
}

/// Encoded size of one field: key and value.
#[inline]
#[doc(hidden)]
pub fn field_len<C: Codec>(number: u32, value: &C::Value) -> usize {
    key_len(number) + C::len(value)
}

/// Appends one field: key and value.
#[inline]
#[doc(hidden)]
pub fn encode_field<C: Codec>(number: u32, value: &C::Value, buf: &mut Vec<u8>) {
    encode_key(number, C::WIRE_TYPE, buf);
    C::encode(value, buf);
}

// The four helpers below stand for the `if` that generated code would otherwise write out for
// each field. They are `inline(always)` so that the optimizer sees that same `if` around the
// same calls: left to its heuristics, it kept some of them out of line, and the rest it
// compiled to more instructions (measured with callgrind on `benches/`' codec-profile).

/// Adds to `len` the encoded size of a field with implicit presence (proto3's plain scalars),
/// unless it holds its default, which is left off the wire.
#[inline(always)]
#[doc(hidden)]
pub fn implicit_len<C: Codec>(len: &mut usize, number: u32, value: &C::Value) {
    if !C::is_default(value) {
        *len += field_len::<C>(number, value);
    }
}

/// Appends a field with implicit presence, unless it holds its default.
#[inline(always)]
#[doc(hidden)]
pub fn encode_implicit<C: Codec>(number: u32, value: &C::Value, buf: &mut Vec<u8>) {
    if !C::is_default(value) {
        encode_field::<C>(number, value, buf);
    }
}

/// Adds to `len` the encoded size of a field with explicit presence, if it is set.
#[inline(always)]
#[doc(hidden)]
pub fn optional_len<C: Codec>(len: &mut usize, number: u32, value: Option<&C::Value>) {
    if let Some(value) = value {
        *len += field_len::<C>(number, value);
    }
}

/// Appends a field with explicit presence, if it is set.
#[inline(always)]
#[doc(hidden)]
pub fn encode_optional<C: Codec>(number: u32, value: Option<&C::Value>, buf: &mut Vec<u8>) {
    if let Some(value) = value {
        encode_field::<C>(number, value, buf);
    }
}

/// Encoded size of a repeated field, one key per element.
#[inline]
#[doc(hidden)]
pub fn repeated_len<C: Codec>(number: u32, values: &[C::Value]) -> usize {
    let body: usize = match C::FIXED_WIDTH {
        Some(width) => width * values.len(),
        None => values.iter().map(C::len).sum(),
    };
    key_len(number) * values.len() + body
}

/// Appends a repeated field, one key per element.
#[inline]
#[doc(hidden)]
pub fn encode_repeated<C: Codec>(number: u32, values: &[C::Value], buf: &mut Vec<u8>) {
    for value in values {
        encode_field::<C>(number, value, buf);
    }
}

#[inline]
fn packed_body_len<C: Packable>(values: &[C::Value]) -> usize {
    match C::FIXED_WIDTH {
        Some(width) => width * values.len(),
        None => values.iter().map(C::len).sum(),
    }
}

/// Encoded size of a packed repeated field; an empty one takes no bytes.
#[inline]
#[doc(hidden)]
pub fn packed_len<C: Packable>(number: u32, values: &[C::Value]) -> usize {
    if values.is_empty() {
        return 0;
    }
    let body = packed_body_len::<C>(values);
    key_len(number) + varint_len(body as u64) + body
}

/// Appends a packed repeated field; an empty one writes nothing.
#[inline]
#[doc(hidden)]
pub fn encode_packed<C: Packable>(number: u32, values: &[C::Value], buf: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    encode_key(number, WireType::Len, buf);
    encode_varint(packed_body_len::<C>(values) as u64, buf);
    for value in values {
        C::encode(value, buf);
    }
}

/// Reads one occurrence of a repeated field, accepting packed and unpacked forms alike.
#[inline]
#[doc(hidden)]
pub fn merge_repeated<C: Codec>(
    tag: u32,
    values: &mut Vec<C::Value>,
    r: &mut Reader<'_>,
) -> Result<(), DecodeError> {
    let wire_type = tag & 7;
    if wire_type == C::WIRE_TYPE as u32 {
        let mut value = C::Value::default();
        C::merge(&mut value, r)?;
        values.push(value);
        Ok(())
    } else if wire_type == WireType::Len as u32 && is_packable_wire::<C>() {
        r.read_packed::<C>(values)
    } else {
        Err(r.wrong_wire_type(tag))
    }
}

#[inline]
fn is_packable_wire<C: Codec>() -> bool {
    matches!(
        C::WIRE_TYPE,
        WireType::Varint | WireType::Fixed32 | WireType::Fixed64
    )
}

/// What a generated `Message::clear` keeps: a field emptied with its allocation, taken out
/// of the message so that the rest can be reset at once.
#[doc(hidden)]
pub trait Cleared: Default {
    fn clear_in_place(&mut self);
}

impl Cleared for String {
    fn clear_in_place(&mut self) {
        self.clear();
    }
}
impl<T> Cleared for Vec<T> {
    fn clear_in_place(&mut self) {
        self.clear();
    }
}
impl<K, V, S: std::hash::BuildHasher + Default> Cleared for std::collections::HashMap<K, V, S> {
    fn clear_in_place(&mut self) {
        self.clear();
    }
}
impl<K, V> Cleared for std::collections::BTreeMap<K, V> {
    fn clear_in_place(&mut self) {
        self.clear();
    }
}
impl Cleared for crate::UnknownFields {
    fn clear_in_place(&mut self) {
        self.clear();
    }
}

/// `field` emptied, its allocation kept, and `Default` left in its place.
#[doc(hidden)]
#[inline]
pub fn cleared<T: Cleared>(field: &mut T) -> T {
    let mut value = std::mem::take(field);
    value.clear_in_place();
    value
}

/// Reads one field with a single value. Generated code matches the whole key, wire type
/// included, so a field that arrives with another wire type never gets here: it is kept with
/// the unknown fields, as protobuf's reference parsers do.
#[inline]
#[doc(hidden)]
pub fn merge_field<C: Codec>(value: &mut C::Value, r: &mut Reader<'_>) -> Result<(), DecodeError> {
    C::merge(value, r)
}

/// Reads one value into a fresh default: a oneof member that was not already set.
#[inline]
#[doc(hidden)]
pub fn read_value<C: Codec>(r: &mut Reader<'_>) -> Result<C::Value, DecodeError> {
    let mut value = C::Value::default();
    C::merge(&mut value, r)?;
    Ok(value)
}

/// Reads one field with explicit presence (`Option<T>`).
#[inline]
#[doc(hidden)]
pub fn merge_optional<C: Codec>(
    value: &mut Option<C::Value>,
    r: &mut Reader<'_>,
) -> Result<(), DecodeError> {
    C::merge(value.get_or_insert_with(Default::default), r)
}

/// Where decoding puts the bytes of a value a field cannot hold ([`Codec::try_merge`]): the
/// message's [`UnknownFields`], or `()` for a message generated to drop unknown fields.
#[doc(hidden)]
pub trait UnknownSink {
    /// Keeps already-encoded fields, keys included.
    fn keep(&mut self, raw: &[u8]);
    /// Drops the kept fields whose key is one of `tags`: values a later one of their field
    /// (or oneof) has replaced.
    fn forget(&mut self, tags: &[u32]);
    /// Drops the kept fields under `tag` that `replaced` picks by their value's bytes (map
    /// entries a later entry of the same key has replaced).
    fn forget_where(&mut self, tag: u32, replaced: &mut dyn FnMut(&[u8]) -> bool);
}

impl UnknownSink for UnknownFields {
    #[inline]
    fn keep(&mut self, raw: &[u8]) {
        self.extend_raw(raw);
    }
    #[inline]
    fn forget(&mut self, tags: &[u32]) {
        if !self.is_empty() {
            self.retain_fields(|tag, _| !tags.contains(&tag));
        }
    }
    fn forget_where(&mut self, tag: u32, replaced: &mut dyn FnMut(&[u8]) -> bool) {
        if !self.is_empty() {
            self.retain_fields(|t, value| t != tag || !replaced(value));
        }
    }
}

impl UnknownSink for () {
    #[inline]
    fn keep(&mut self, _raw: &[u8]) {}
    #[inline]
    fn forget(&mut self, _tags: &[u32]) {}
    fn forget_where(&mut self, _tag: u32, _replaced: &mut dyn FnMut(&[u8]) -> bool) {}
}

/// Reads one value of a field whose codec can refuse it ([`Codec::try_merge`]): `Some` with
/// the value, or `None` after handing the field's bytes, key included, to `unknown`.
#[inline]
#[doc(hidden)]
pub fn read_or_keep<C: Codec>(
    r: &mut Reader<'_>,
    unknown: &mut impl UnknownSink,
) -> Result<Option<C::Value>, DecodeError> {
    let start = r.tag_start;
    let mut value = C::Value::default();
    if C::try_merge(&mut value, r)? {
        Ok(Some(value))
    } else {
        unknown.keep(&r.buf[start..r.pos]);
        Ok(None)
    }
}

/// [`merge_field`] for a codec that can refuse the value: a refused value goes to `unknown`.
/// The last value on the wire wins, as for any singular field: where a refused value still
/// counts ([`Codec::REFUSED_IS_VALUE`]) it resets the field, and a value read after it drops
/// it from `unknown`; otherwise the field keeps what it held.
#[inline]
#[doc(hidden)]
pub fn merge_field_or_keep<C: Codec>(
    value: &mut C::Value,
    r: &mut Reader<'_>,
    unknown: &mut impl UnknownSink,
) -> Result<(), DecodeError> {
    let tag = r.last_tag();
    match read_or_keep::<C>(r, unknown)? {
        Some(read) => {
            *value = read;
            if C::REFUSED_IS_VALUE {
                unknown.forget(&[tag]);
            }
        }
        None if C::REFUSED_IS_VALUE => *value = C::Value::default(),
        None => {}
    }
    Ok(())
}

/// [`merge_optional`] for a codec that can refuse the value, as [`merge_field_or_keep`]; a
/// refused value that still counts leaves the field unset.
#[inline]
#[doc(hidden)]
pub fn merge_optional_or_keep<C: Codec>(
    value: &mut Option<C::Value>,
    r: &mut Reader<'_>,
    unknown: &mut impl UnknownSink,
) -> Result<(), DecodeError> {
    let tag = r.last_tag();
    match read_or_keep::<C>(r, unknown)? {
        Some(read) => {
            *value = Some(read);
            if C::REFUSED_IS_VALUE {
                unknown.forget(&[tag]);
            }
        }
        None if C::REFUSED_IS_VALUE => *value = None,
        None => {}
    }
    Ok(())
}

/// [`merge_repeated`] for a codec that can refuse values: each refused element goes to
/// `unknown` as a field of its own (a packed run is split, element by element), and the
/// others to `values` in order.
#[doc(hidden)]
pub fn merge_repeated_or_keep<C: Codec>(
    tag: u32,
    values: &mut Vec<C::Value>,
    r: &mut Reader<'_>,
    unknown: &mut impl UnknownSink,
) -> Result<(), DecodeError> {
    let wire_type = tag & 7;
    if wire_type == C::WIRE_TYPE as u32 {
        if let Some(value) = read_or_keep::<C>(r, unknown)? {
            values.push(value);
        }
        Ok(())
    } else if wire_type == WireType::Len as u32 && is_packable_wire::<C>() {
        let len = r.read_len()?;
        r.with_limit(len, |r| {
            while r.pos < r.limit {
                let start = r.pos;
                let mut value = C::Value::default();
                if C::try_merge(&mut value, r)? {
                    values.push(value);
                } else {
                    let mut element = Vec::with_capacity(16);
                    encode_key(tag >> 3, C::WIRE_TYPE, &mut element);
                    element.extend_from_slice(&r.buf[start..r.pos]);
                    unknown.keep(&element);
                }
            }
            Ok(())
        })
    } else {
        Err(r.wrong_wire_type(tag))
    }
}

/// Encoded size of a group field (start tag, body, end tag).
#[inline]
#[doc(hidden)]
pub fn group_len<M: Message>(number: u32, msg: &M) -> usize {
    2 * key_len(number) + msg.encoded_len()
}

/// [`group_len`] for a group on a cycle of message types, counting the nesting.
#[inline]
#[doc(hidden)]
pub fn rec_group_len<M: Message>(number: u32, msg: &M) -> usize {
    2 * key_len(number) + nested_len(msg, 1)
}

/// Appends a group field (start tag, body, end tag).
#[inline]
#[doc(hidden)]
pub fn encode_group<M: Message>(number: u32, msg: &M, buf: &mut Vec<u8>) {
    encode_key(number, WireType::StartGroup, buf);
    msg.encode_raw(buf);
    encode_key(number, WireType::EndGroup, buf);
}

/// Codec for a group (proto2 `group`, editions' `DELIMITED`) as an extension's value. The
/// field number is part of the type because the value ends with an end-group key, which
/// [`Codec::encode`] writes without being told the number.
#[doc(hidden)]
pub struct GroupCodec<M, const NUMBER: u32>(std::marker::PhantomData<M>);

impl<M: Message + Default + 'static, const NUMBER: u32> Codec for GroupCodec<M, NUMBER> {
    type Value = M;
    const WIRE_TYPE: WireType = WireType::StartGroup;
    /// The body and the end-group key (the start-group key is the field's key). An extension's
    /// value has no parent to bound its depth, so the walk counts.
    #[inline]
    fn len(value: &M) -> usize {
        nested_len(value, 1) + key_len(NUMBER)
    }
    #[inline]
    fn encode(value: &M, buf: &mut Vec<u8>) {
        value.encode_raw(buf);
        encode_key(NUMBER, WireType::EndGroup, buf);
    }
    #[inline]
    fn merge(value: &mut M, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.read_group(NUMBER, value)
    }
    #[inline]
    fn is_default(value: &M) -> bool {
        nested_len(value, 1) == 0
    }
}

/// Reads a group field into `msg`; its start-group key `tag` was just read.
#[inline]
#[doc(hidden)]
pub fn merge_group<M: Message>(
    tag: u32,
    msg: &mut M,
    r: &mut Reader<'_>,
) -> Result<(), DecodeError> {
    r.read_group(tag >> 3, msg)
}

/// The map types a `map<K, V>` field may be generated as.
#[doc(hidden)]
pub trait MapField<K: 'static, V: 'static>: Default {
    /// Visits every entry.
    fn entries(&self) -> impl Iterator<Item = (&K, &V)>;
    /// Number of entries.
    fn entry_count(&self) -> usize;
    /// Inserts or replaces an entry; later entries win, as the spec says.
    fn put(&mut self, key: K, value: V);
    /// Removes the entry of `key`, if there is one.
    fn remove_key(&mut self, key: &K);
    /// Whether the map has an entry for `key`.
    fn has_key(&self, key: &K) -> bool;
}

impl<K: Eq + Hash + 'static, V: 'static, S: std::hash::BuildHasher + Default> MapField<K, V>
    for HashMap<K, V, S>
{
    fn entries(&self) -> impl Iterator<Item = (&K, &V)> {
        self.iter()
    }
    fn entry_count(&self) -> usize {
        self.len()
    }
    fn put(&mut self, key: K, value: V) {
        self.insert(key, value);
    }
    fn remove_key(&mut self, key: &K) {
        self.remove(key);
    }
    fn has_key(&self, key: &K) -> bool {
        self.contains_key(key)
    }
}

impl<K: Ord + 'static, V: 'static> MapField<K, V> for BTreeMap<K, V> {
    fn entries(&self) -> impl Iterator<Item = (&K, &V)> {
        self.iter()
    }
    fn entry_count(&self) -> usize {
        self.len()
    }
    fn put(&mut self, key: K, value: V) {
        self.insert(key, value);
    }
    fn remove_key(&mut self, key: &K) {
        self.remove(key);
    }
    fn has_key(&self, key: &K) -> bool {
        self.contains_key(key)
    }
}

/// Encoded size of a map field, one entry message per pair. Default keys and values are left
/// out of their entry, which decodes them as defaults.
#[doc(hidden)]
pub fn map_len<K: Codec, V: Codec, M: MapField<K::Value, V::Value>>(number: u32, map: &M) -> usize {
    let entries: usize = map
        .entries()
        .map(|(k, v)| {
            let body = K::non_default_len(1, k) + V::non_default_len(2, v);
            varint_len(body as u64) + body
        })
        .sum();
    key_len(number) * map.entry_count() + entries
}

/// Appends a map field, one entry message per pair. Each entry is written with its length
/// patched in afterwards, so a value is walked once however deeply maps nest.
#[doc(hidden)]
pub fn encode_map<K: Codec, V: Codec, M: MapField<K::Value, V::Value>>(
    number: u32,
    map: &M,
    buf: &mut Vec<u8>,
) {
    for (k, v) in map.entries() {
        encode_key(number, WireType::Len, buf);
        encode_len_delimited(buf, |buf| {
            K::encode_non_default(1, k, buf);
            V::encode_non_default(2, v, buf);
        });
    }
}

/// Reads one map entry and inserts it; a missing key or value takes its default. An entry
/// that holds anything else (a key or value with another wire type, another field) or a value
/// its codec refuses (a closed enum's undeclared number, a string without UTF-8 validation
/// that is not UTF-8) goes whole, bytes unchanged, to `unknown`, as upb keeps it. For a refused
/// value that still counts ([`Codec::REFUSED_IS_VALUE`]), the last entry of a key wins as for
/// any map: such an entry removes its key from the map, and a later entry of the key drops it
/// from `unknown`.
#[doc(hidden)]
pub fn merge_map_entry<K: Codec, V: Codec, M: MapField<K::Value, V::Value>>(
    map: &mut M,
    r: &mut Reader<'_>,
    unknown: &mut impl UnknownSink,
) -> Result<(), DecodeError>
where
    K::Value: PartialEq,
{
    let start = r.tag_start;
    let tag = r.last_tag();
    let lax = K::REFUSED_IS_VALUE || V::REFUSED_IS_VALUE;
    match read_map_entry::<K, V>(r)? {
        Entry::Held(key, value) => {
            if lax {
                unknown.forget_where(tag, &mut |kept| {
                    matches!(read_map_entry::<K, V>(&mut Reader::new(kept)),
                        Ok(Entry::Refused { key: Some(k), value_counts: true }) if k == key)
                });
            }
            map.put(key, value);
        }
        Entry::Refused { key, value_counts } => {
            if let (Some(key), true) = (key, value_counts) {
                map.remove_key(&key);
            }
            unknown.keep(&r.buf[start..r.pos]);
        }
    }
    Ok(())
}

/// Whether `entry` (a kept map entry's value bytes) is a value that was not UTF-8 for a key
/// `map` now has: the program set the key since, so the kept entry is stale and is left out on
/// encode. Generated code calls it for maps of proto2 strings.
#[doc(hidden)]
pub fn map_entry_replaced<K: Codec, V: Codec, M: MapField<K::Value, V::Value>>(
    map: &M,
    entry: &[u8],
) -> bool {
    matches!(
        read_map_entry::<K, V>(&mut Reader::new(entry)),
        Ok(Entry::Refused { key: Some(key), value_counts: true }) if map.has_key(&key)
    )
}

/// What one map entry held.
enum Entry<K, V> {
    Held(K, V),
    /// The entry cannot be placed. `key` is its key when that was read; `value_counts` when
    /// the only trouble is a value that is still the key's latest one (a string that is not
    /// UTF-8).
    Refused {
        key: Option<K>,
        value_counts: bool,
    },
}

/// Reads one map entry (its length prefix first).
fn read_map_entry<K: Codec, V: Codec>(
    r: &mut Reader<'_>,
) -> Result<Entry<K::Value, V::Value>, DecodeError> {
    let key_tag = (1 << 3) | K::WIRE_TYPE as u32;
    let value_tag = (2 << 3) | V::WIRE_TYPE as u32;
    let len = r.read_len()?;
    r.enter()?;
    let entry = r.with_limit(len, |r| {
        let mut key = K::Value::default();
        let mut value = V::Value::default();
        // A refused key or value makes the entry unplaceable even if a later one replaces
        // it, as upb decides: the entry is kept whole.
        let (mut key_held, mut value_held, mut clean) = (true, true, true);
        while let Some(tag) = r.next_tag()? {
            if tag == key_tag {
                key_held &= K::try_merge(&mut key, r)?;
            } else if tag == value_tag {
                value_held &= V::try_merge(&mut value, r)?;
            } else {
                r.skip_field(tag)?;
                clean = false;
            }
        }
        r.no_open_group()?;
        Ok(if key_held && value_held && clean {
            Entry::Held(key, value)
        } else {
            Entry::Refused {
                value_counts: key_held && clean && V::REFUSED_IS_VALUE,
                key: key_held.then_some(key),
            }
        })
    })?;
    r.depth -= 1;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_byte_over_0x7f_at_any_place_in_any_length_is_not_ascii() {
        for len in 0..40 {
            let ascii = vec![b'a'; len];
            assert!(is_ascii(&ascii), "{len}");
            assert_eq!(utf8(&ascii).ok(), std::str::from_utf8(&ascii).ok());
            for at in 0..len {
                for high in [0x80, 0xc3, 0xff] {
                    let mut bytes = ascii.clone();
                    bytes[at] = high;
                    assert!(!is_ascii(&bytes), "{len} {at} {high:#x}");
                    assert_eq!(utf8(&bytes).is_ok(), std::str::from_utf8(&bytes).is_ok());
                }
            }
        }
    }

    #[test]
    fn varint_len_matches_encoding() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let mut buf = Vec::new();
                encode_varint(v, &mut buf);
                assert_eq!(buf.len(), varint_len(v), "value {v}");
                let mut r = Reader::new(&buf);
                assert_eq!(r.read_varint().unwrap(), v);
            }
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    /// The same varints read at the end of the input and followed by more bytes (two paths of
    /// the reader), canonical or not, give the same value and length.
    #[test]
    fn varints_read_alike_at_the_end_and_inside_the_input() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let mut buf = Vec::new();
                encode_varint(v, &mut buf);
                cases.push(buf);
            }
        }
        // Random bytes cut at every length, with the last byte's continuation bit cleared:
        // over-long (non-canonical) encodings and 10-byte ones whose last byte has high bits.
        for _ in 0..2000 {
            for len in 1..=10 {
                let mut buf = Vec::new();
                for i in 0..len {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let b = (seed >> 56) as u8;
                    buf.push(if i + 1 == len { b & 0x7f } else { b | 0x80 });
                }
                cases.push(buf);
            }
        }
        for case in cases {
            let at_end = Reader::new(&case).read_varint();
            let mut padded = case.clone();
            padded.extend_from_slice(&[0xff; 12]);
            let mut r = Reader::new(&padded);
            let inside = r.read_varint();
            assert_eq!(inside, at_end, "{case:02x?}");
            assert_eq!(r.position(), case.len(), "{case:02x?}");
        }
        // Eleven continuation bytes are too long wherever they are.
        let long = [0x80u8; 11];
        assert!(Reader::new(&long).read_varint().is_err());
        assert!(Reader::new(&[long.as_slice(), &[0u8; 12]].concat())
            .read_varint()
            .is_err());
    }

    #[test]
    fn len_delimited_backpatch_shifts_long_bodies() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut buf = vec![0xAA];
            encode_len_delimited(&mut buf, |b| b.extend(std::iter::repeat_n(7u8, len)));
            let mut r = Reader::new(&buf[1..]);
            assert_eq!(r.read_len_slice().unwrap().len(), len);
            assert_eq!(buf.len(), 1 + varint_len(len as u64) + len);
            assert_eq!(buf[0], 0xAA);
        }
    }

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, i32::MIN as i64] {
            let mut buf = Vec::new();
            SInt64::encode(&v, &mut buf);
            assert_eq!(Reader::new(&buf).read_sint64().unwrap(), v);
        }
        for v in [0i32, -1, 1, i32::MIN, i32::MAX] {
            let mut buf = Vec::new();
            SInt32::encode(&v, &mut buf);
            assert_eq!(Reader::new(&buf).read_sint32().unwrap(), v);
        }
    }

    #[test]
    fn negative_int32_takes_ten_bytes() {
        let mut buf = Vec::new();
        Int32::encode(&-1, &mut buf);
        assert_eq!(buf.len(), 10);
        assert_eq!(Int32::len(&-1), 10);
        assert_eq!(Reader::new(&buf).read_int32().unwrap(), -1);
    }

    #[test]
    fn malformed_varints_report_offsets() {
        let err = Reader::new(&[0x80, 0x80]).read_varint().unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::TruncatedVarint);
        let err = Reader::new(&[0xff; 11]).read_varint().unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::VarintTooLong);
        assert_eq!(err.offset(), 0);
    }

    #[test]
    fn length_past_end_is_rejected_before_allocating() {
        // Claims 2^62 bytes; only two follow.
        let mut buf = Vec::new();
        encode_varint(1 << 62, &mut buf);
        buf.extend_from_slice(b"ab");
        let err = Reader::new(&buf).read_bytes().unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::LengthOutOfBounds { remaining: 2, .. }
        ));
    }

    #[test]
    fn tags_with_bad_numbers_or_wire_types_fail() {
        let err = Reader::new(&[0x00]).next_tag().unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::InvalidFieldNumber(0));
        let err = Reader::new(&[0x0e]).next_tag().unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::InvalidWireType(6));
        let mut too_big = Vec::new();
        encode_varint(1 << 35, &mut too_big);
        assert!(Reader::new(&too_big).next_tag().is_err());
    }

    #[test]
    fn unknown_groups_are_skipped_to_their_end() {
        // field 1 start-group, field 2 varint 5, field 1 end-group, then field 3 varint 1.
        let buf = [0x0b, 0x10, 0x05, 0x0c, 0x18, 0x01];
        let mut r = Reader::new(&buf);
        let tag = r.next_tag().unwrap().unwrap();
        let mut unknown = UnknownFields::default();
        r.keep_unknown(tag, &mut unknown).unwrap();
        assert_eq!(unknown.as_bytes(), &buf[..4]);
        assert_eq!(r.next_tag().unwrap(), Some(0x18));
    }

    #[test]
    fn mismatched_group_end_fails() {
        let buf = [0x0b, 0x14];
        let mut r = Reader::new(&buf);
        let tag = r.next_tag().unwrap().unwrap();
        let err = r.skip_field(tag).unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::UnterminatedGroup(1));
    }

    #[test]
    fn deeply_nested_groups_hit_the_recursion_limit() {
        let mut buf = vec![0x0b; 200];
        buf.extend(vec![0x0c; 200]);
        let mut r = Reader::new(&buf);
        let tag = r.next_tag().unwrap().unwrap();
        let err = r.skip_field(tag).unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::RecursionLimit(100));
    }

    #[test]
    fn packed_fixed_with_ragged_length_fails() {
        let buf = [0x03, 1, 2, 3];
        let mut out = Vec::new();
        let err = Reader::new(&buf)
            .read_packed::<Fixed32>(&mut out)
            .unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::PackedLengthMismatch);
    }

    #[test]
    fn packed_and_unpacked_both_decode() {
        let mut values: Vec<i32> = Vec::new();
        // unpacked: key (1, varint), 3
        let mut r = Reader::new(&[0x08, 0x03]);
        let tag = r.next_tag().unwrap().unwrap();
        merge_repeated::<Int32>(tag, &mut values, &mut r).unwrap();
        // packed: key (1, len), len 2, 4, 5
        let mut r = Reader::new(&[0x0a, 0x02, 0x04, 0x05]);
        let tag = r.next_tag().unwrap().unwrap();
        merge_repeated::<Int32>(tag, &mut values, &mut r).unwrap();
        assert_eq!(values, [3, 4, 5]);
    }

    #[test]
    fn invalid_utf8_is_rejected_with_offset() {
        let buf = [0x02, 0xc3, 0x28];
        let err = Reader::new(&buf).read_string().unwrap_err();
        assert_eq!(*err.kind(), DecodeErrorKind::InvalidUtf8);
        assert_eq!(err.offset(), 0);
    }
}
