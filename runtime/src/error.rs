use std::fmt;

/// Why bytes could not be decoded as a message, and where.
///
/// The offset counts from the start of the buffer handed to `decode` or `merge`, so it points
/// into the caller's bytes even when the fault sits deep inside a nested message.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
}

/// The kinds of malformed input the decoder recognises.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside a varint.
    TruncatedVarint,
    /// A varint ran longer than ten bytes.
    VarintTooLong,
    /// The input ended inside a fixed-width value.
    TruncatedFixed,
    /// A length prefix pointed past the end of the enclosing message.
    LengthOutOfBounds {
        /// The length the input claimed.
        length: u64,
        /// The bytes left in the enclosing message.
        remaining: usize,
    },
    /// A `string` field held bytes that are not UTF-8.
    InvalidUtf8,
    /// A tag used wire type 6 or 7, which do not exist.
    InvalidWireType(u32),
    /// A known field arrived with a wire type its declaration does not allow.
    WrongWireType {
        /// The field number.
        field: u32,
        /// The wire type that arrived.
        wire_type: u32,
    },
    /// A tag carried field number 0 or one above 2^29 - 1.
    InvalidFieldNumber(u64),
    /// Messages or groups nested deeper than the recursion limit.
    RecursionLimit(u32),
    /// A start-group tag was never closed, or closed with another field number.
    UnterminatedGroup(u32),
    /// An end-group tag where no group was open.
    UnexpectedEndGroup(u32),
    /// A packed field's length is not a multiple of its element width.
    PackedLengthMismatch,
}

impl DecodeError {
    /// Creates an error of `kind` at byte `offset` of the input.
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError { kind, offset }
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// Byte offset into the input where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::TruncatedVarint => f.write_str("truncated varint"),
            DecodeErrorKind::VarintTooLong => f.write_str("varint longer than 10 bytes"),
            DecodeErrorKind::TruncatedFixed => f.write_str("truncated fixed-width value"),
            DecodeErrorKind::LengthOutOfBounds { length, remaining } => write!(
                f,
                "length {length} runs past the end of the message ({remaining} bytes left)"
            ),
            DecodeErrorKind::InvalidUtf8 => f.write_str("string field is not valid UTF-8"),
            DecodeErrorKind::InvalidWireType(wt) => write!(f, "invalid wire type {wt}"),
            DecodeErrorKind::WrongWireType { field, wire_type } => {
                write!(f, "field {field} cannot have wire type {wire_type}")
            }
            DecodeErrorKind::InvalidFieldNumber(n) => write!(f, "invalid field number {n}"),
            DecodeErrorKind::RecursionLimit(limit) => {
                write!(
                    f,
                    "messages nested deeper than the recursion limit of {limit}"
                )
            }
            DecodeErrorKind::UnterminatedGroup(n) => write!(f, "group {n} is not terminated"),
            DecodeErrorKind::UnexpectedEndGroup(n) => {
                write!(f, "end-group tag for field {n} without a matching start")
            }
            DecodeErrorKind::PackedLengthMismatch => {
                f.write_str("packed field length is not a multiple of its element size")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecodeError({self})")
    }
}

impl std::error::Error for DecodeError {}

/// Why a message value could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value nests messages or groups deeper than the limit, which no decoded value does.
    #[error("the message nests deeper than the encoding limit of {limit} levels")]
    TooDeep {
        /// The limit, [`crate::encoding::ENCODE_RECURSION_LIMIT`].
        limit: u32,
    },
}

impl EncodeError {
    pub(crate) fn too_deep(limit: u32) -> Self {
        EncodeError::TooDeep { limit }
    }
}
