use std::fmt::Debug;

use crate::encoding::{self, Reader};
use crate::error::DecodeError;

/// A protobuf message: a generated struct that knows its own wire encoding.
///
/// Generated code implements the three required methods; everything else is provided.
pub trait Message: Default + Debug + Send + Sync + Sized {
    /// The message's fully qualified protobuf name, such as `echo.EchoRequest`.
    const FULL_NAME: &'static str;

    /// Number of bytes [`encode_raw`](Message::encode_raw) appends.
    fn encoded_len(&self) -> usize;

    /// Appends the message's fields, without a length prefix.
    fn encode_raw(&self, buf: &mut Vec<u8>);

    /// Reads fields until the reader's current message or group ends, merging them into `self`.
    ///
    /// Singular fields take the last value seen, repeated fields append, and embedded messages
    /// merge, as the protobuf spec requires.
    fn merge_from(&mut self, reader: &mut Reader<'_>) -> Result<(), DecodeError>;

    /// The message's fully qualified protobuf name.
    fn full_name(&self) -> &'static str {
        Self::FULL_NAME
    }

    /// Appends the encoded message to `buf`, reserving the space first.
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.reserve(self.encoded_len());
        self.encode_raw(buf);
    }

    /// Encodes the message into a new, exactly sized vector.
    fn encode_to_vec(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_raw(&mut buf);
        buf
    }

    /// Appends the message preceded by its length as a varint.
    fn encode_length_delimited(&self, buf: &mut Vec<u8>) {
        let len = self.encoded_len();
        buf.reserve(len + encoding::varint_len(len as u64));
        encoding::encode_varint(len as u64, buf);
        self.encode_raw(buf);
    }

    /// Decodes a message from `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut msg = Self::default();
        msg.merge(bytes)?;
        Ok(msg)
    }

    /// Decodes a message preceded by its length as a varint; bytes after it are ignored.
    fn decode_length_delimited(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let mut msg = Self::default();
        reader.read_message(&mut msg)?;
        Ok(msg)
    }

    /// Merges the fields encoded in `bytes` into `self`.
    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut reader = Reader::new(bytes);
        self.merge_from(&mut reader)?;
        reader.no_open_group()
    }

    /// Resets every field to its default.
    fn clear(&mut self) {
        *self = Self::default();
    }
}
