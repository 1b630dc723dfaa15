use std::fmt::Debug;

use bytes::Bytes;

use crate::encoding::{self, Reader};
use crate::error::{DecodeError, EncodeError};

/// A protobuf message: a generated struct that knows its own wire encoding.
///
/// Generated code implements the three required methods; everything else is provided. The
/// trait is object safe: `&dyn Message` and `Box<dyn Message>` encode, and merge into an
/// existing value; constructing a message (`decode`) needs the concrete type.
pub trait Message: Debug + Send + Sync {
    /// Number of bytes [`encode_raw`](Message::encode_raw) appends.
    ///
    /// Messages nested deeper than [`encoding::ENCODE_RECURSION_LIMIT`] are not walked past
    /// the limit; the `encode*` methods check for that and refuse such values.
    fn encoded_len(&self) -> usize;

    /// Appends the message's fields, without a length prefix. Generated code implements it;
    /// call [`encode`](Message::encode) or [`encode_to_vec`](Message::encode_to_vec) instead,
    /// which check the nesting depth first.
    fn encode_raw(&self, buf: &mut Vec<u8>);

    /// Reads fields until the reader's current message or group ends, merging them into `self`.
    ///
    /// Singular fields take the last value seen, repeated fields append, and embedded messages
    /// merge, as the protobuf spec requires.
    fn merge_from(&mut self, reader: &mut Reader<'_>) -> Result<(), DecodeError>;

    /// Appends the encoded message to `buf`, reserving the space first.
    ///
    /// # Panics
    /// If the value nests messages deeper than [`encoding::ENCODE_RECURSION_LIMIT`], which no
    /// decoded value does; [`try_encode_to_bytes`](Message::try_encode_to_bytes) reports it
    /// as an error instead.
    fn encode(&self, buf: &mut Vec<u8>) {
        let len = encoding::checked_len(self).unwrap_or_else(|e| panic!("{e}"));
        buf.reserve(len);
        self.encode_raw(buf);
    }

    /// Encodes the message into a new, exactly sized vector.
    ///
    /// # Panics
    /// As [`encode`](Message::encode), for values nested past the limit.
    fn encode_to_vec(&self) -> Vec<u8> {
        let len = encoding::checked_len(self).unwrap_or_else(|e| panic!("{e}"));
        let mut buf = Vec::with_capacity(len);
        self.encode_raw(&mut buf);
        buf
    }

    /// Encodes the message into a new [`Bytes`], the form transports carry.
    ///
    /// # Panics
    /// As [`encode`](Message::encode), for values nested past the limit.
    fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Encodes the message into a new [`Bytes`], or fails if it nests messages deeper than
    /// [`encoding::ENCODE_RECURSION_LIMIT`].
    fn try_encode_to_bytes(&self) -> Result<Bytes, EncodeError> {
        let len = encoding::checked_len(self)?;
        let mut buf = Vec::with_capacity(len);
        self.encode_raw(&mut buf);
        Ok(Bytes::from(buf))
    }

    /// Appends the message preceded by its length as a varint.
    ///
    /// # Panics
    /// As [`encode`](Message::encode), for values nested past the limit.
    fn encode_length_delimited(&self, buf: &mut Vec<u8>) {
        let len = encoding::checked_len(self).unwrap_or_else(|e| panic!("{e}"));
        buf.reserve(len + encoding::varint_len(len as u64));
        encoding::encode_varint(len as u64, buf);
        self.encode_raw(buf);
    }

    /// Merges the fields encoded in `bytes` into `self`.
    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut reader = Reader::new(bytes);
        self.merge_from(&mut reader)?;
        reader.no_open_group()
    }

    /// Merges the fields encoded in `bytes` into `self`; fields generated as
    /// [`Bytes`] share `bytes`' buffer instead of copying out of it.
    fn merge_bytes(&mut self, bytes: &Bytes) -> Result<(), DecodeError> {
        let mut reader = Reader::from_bytes(bytes);
        self.merge_from(&mut reader)?;
        reader.no_open_group()
    }

    /// Decodes a message from `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>
    where
        Self: Default + Sized,
    {
        let mut msg = Self::default();
        msg.merge(bytes)?;
        Ok(msg)
    }

    /// Decodes a message from a [`Bytes`]; fields generated as `Bytes` share its buffer
    /// instead of copying out of it.
    fn decode_bytes(bytes: &Bytes) -> Result<Self, DecodeError>
    where
        Self: Default + Sized,
    {
        let mut msg = Self::default();
        msg.merge_bytes(bytes)?;
        Ok(msg)
    }

    /// Decodes a message preceded by its length as a varint, and returns it with the number
    /// of bytes it took, prefix included, so the caller can go on after it.
    fn decode_length_delimited(bytes: &[u8]) -> Result<(Self, usize), DecodeError>
    where
        Self: Default + Sized,
    {
        let mut reader = Reader::new(bytes);
        let mut msg = Self::default();
        reader.read_message(&mut msg)?;
        Ok((msg, reader.position()))
    }

    /// Whether every proto2 `required` field is set, in this message and in the messages it
    /// holds. Decoding and encoding do not check it (a message with a required field unset
    /// still decodes, and re-encodes to the same bytes): call this where the schema's promise
    /// matters.
    fn is_initialized(&self) -> bool {
        self.missing_required_fields().is_empty()
    }

    /// The proto2 `required` fields that are unset, in this message and in the messages it
    /// holds, as paths of `.proto` field names (`id`, `child.id`, `items[2].id`,
    /// `by_name["a"].id`); empty when [`is_initialized`](Message::is_initialized). Values nested
    /// deeper than [`encoding::ENCODE_RECURSION_LIMIT`] are not walked past it.
    fn missing_required_fields(&self) -> Vec<String> {
        let mut missing = Vec::new();
        self.collect_missing_required("", 0, &mut missing);
        missing
    }

    /// Appends to `out` the paths of unset `required` fields, each after `path` (which ends in
    /// `.` when not empty); `depth` counts the messages above this one. Generated code
    /// implements it for messages that can reach a required field.
    #[doc(hidden)]
    fn collect_missing_required(&self, path: &str, depth: u32, out: &mut Vec<String>) {
        let _ = (path, depth, out);
    }

    /// Resets every field to its default. Generated messages keep the allocations of their
    /// strings, byte strings, repeated fields, maps and unknown fields, so a message cleared
    /// and merged again (`clear()` then `merge(bytes)`, C++'s `Clear()`-and-reuse) allocates
    /// only for what outgrows them; values in `Option`s and oneofs are dropped.
    fn clear(&mut self)
    where
        Self: Default + Sized,
    {
        *self = Self::default();
    }
}

/// The protobuf name of a generated message, apart from [`Message`] so that `Message` stays
/// usable as `dyn Message`.
pub trait Name {
    /// The fully qualified protobuf name, such as `echo.EchoRequest`.
    const FULL_NAME: &'static str;

    /// The type URL that `google.protobuf.Any` names the message by:
    /// `type.googleapis.com/` and the full name.
    fn type_url() -> String {
        format!("type.googleapis.com/{}", Self::FULL_NAME)
    }
}
