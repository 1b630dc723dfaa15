//! Extensions (proto2 `extend`, and editions'): fields declared apart from the message they
//! extend, by number in one of its extension ranges.
//!
//! A message with extension ranges keeps its extensions where it keeps every field its own
//! schema does not declare: in its [`UnknownFields`], in wire form. So an extension nobody
//! here knows still round-trips, and one that is known is read from those bytes when asked
//! for ([`Extendable::extension`]) and written back into them when set. Generated code
//! declares each extension as a typed identifier (a `const` [`Extension`] or
//! [`RepeatedExtension`]) that names the extended message and the field's type.

use std::marker::PhantomData;

use crate::encoding::{encode_key, Codec, Reader, WireType};
use crate::error::DecodeError;
use crate::{Message, UnknownFields};

/// A message with extension ranges: generated code implements it for messages that declare
/// `extensions` and keep unknown fields, which is where the extensions live.
pub trait Extendable: Message + Sized {
    /// The fields the message holds beyond its own schema's, extensions among them.
    fn unknown_fields(&self) -> &UnknownFields;

    /// The same, to change.
    fn unknown_fields_mut(&mut self) -> &mut UnknownFields;

    /// The value of extension `ext`: for a singular one `Option<T>` (the last value on the
    /// wire; message values merged, as for any field), for a repeated one `Vec<T>`.
    ///
    /// # Errors
    /// A `DecodeError` when the bytes held for the extension's number do not decode as its
    /// type (a value written by a peer with another definition of it).
    fn extension<E: ExtensionField<Self>>(&self, ext: &E) -> Result<E::Value, DecodeError> {
        ext.read(self.unknown_fields())
    }

    /// Whether the message holds a value for extension `ext` (of its wire type).
    fn has_extension<E: ExtensionField<Self>>(&self, ext: &E) -> bool {
        let tags = ext.tags();
        fields(self.unknown_fields()).any(|(tag, _)| tags.contains(&tag))
    }

    /// Sets extension `ext` to `value`, replacing what the message held for it; `None` or an
    /// empty `Vec` clears it.
    fn set_extension<E: ExtensionField<Self>>(&mut self, ext: &E, value: E::Value) {
        ext.write(self.unknown_fields_mut(), value);
    }

    /// Removes extension `ext` from the message.
    fn clear_extension<E: ExtensionField<Self>>(&mut self, ext: &E) {
        self.unknown_fields_mut()
            .retain_fields(|tag, _| tag >> 3 != ext.number());
    }
}

/// An extension of message `M`: how to find, read and write its value in `M`'s unknown fields.
/// Implemented by [`Extension`] and [`RepeatedExtension`].
pub trait ExtensionField<M> {
    /// What the extension holds: `Option<T>` or `Vec<T>`.
    type Value;
    /// The extension's field number.
    fn number(&self) -> u32;
    /// The keys (number and wire type) its values are written under.
    fn tags(&self) -> Vec<u32>;
    /// Reads the value from `unknown`.
    fn read(&self, unknown: &UnknownFields) -> Result<Self::Value, DecodeError>;
    /// Replaces the value in `unknown`.
    fn write(&self, unknown: &mut UnknownFields, value: Self::Value);
}

/// A singular extension of message `M` whose values are of codec `C` (`Int32`, `Str`,
/// `Msg<N>`...).
pub struct Extension<M, C> {
    number: u32,
    full_name: &'static str,
    marker: PhantomData<fn() -> (M, C)>,
}

/// A repeated extension of message `M` whose values are of codec `C`, written packed when
/// `packed` says so (both forms are read).
pub struct RepeatedExtension<M, C> {
    number: u32,
    full_name: &'static str,
    packed: bool,
    marker: PhantomData<fn() -> (M, C)>,
}

impl<M, C> Extension<M, C> {
    /// The extension numbered `number`, named `full_name` (`pkg.name`, or `pkg.Msg.name` for
    /// one declared inside a message).
    pub const fn new(number: u32, full_name: &'static str) -> Self {
        Extension {
            number,
            full_name,
            marker: PhantomData,
        }
    }

    /// The extension's fully qualified name.
    pub const fn full_name(&self) -> &'static str {
        self.full_name
    }
}

impl<M, C> RepeatedExtension<M, C> {
    /// As [`Extension::new`]; `packed` chooses how values are written.
    pub const fn new(number: u32, full_name: &'static str, packed: bool) -> Self {
        RepeatedExtension {
            number,
            full_name,
            packed,
            marker: PhantomData,
        }
    }

    /// The extension's fully qualified name.
    pub const fn full_name(&self) -> &'static str {
        self.full_name
    }
}

impl<M, C> std::fmt::Debug for Extension<M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extension({} = {})", self.full_name, self.number)
    }
}

impl<M, C> std::fmt::Debug for RepeatedExtension<M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RepeatedExtension({} = {})", self.full_name, self.number)
    }
}

/// Each field of `unknown` (written whole by the decoder or by [`ExtensionField::write`]) as
/// its key and the bytes of its value, in order.
fn fields(unknown: &UnknownFields) -> impl Iterator<Item = (u32, &[u8])> {
    let raw = unknown.as_bytes();
    let mut r = Reader::new(raw);
    std::iter::from_fn(move || {
        let tag = r.next_tag().ok()??;
        let start = r.position();
        r.skip_field(tag).ok()?;
        Some((tag, &raw[start..r.position()]))
    })
}

fn key(number: u32, wire_type: WireType) -> u32 {
    (number << 3) | wire_type as u32
}

impl<M, C: Codec> ExtensionField<M> for Extension<M, C> {
    type Value = Option<C::Value>;

    fn number(&self) -> u32 {
        self.number
    }

    fn tags(&self) -> Vec<u32> {
        vec![key(self.number, C::WIRE_TYPE)]
    }

    fn read(&self, unknown: &UnknownFields) -> Result<Option<C::Value>, DecodeError> {
        let tag = key(self.number, C::WIRE_TYPE);
        let mut value: Option<C::Value> = None;
        for (_, bytes) in fields(unknown).filter(|(t, _)| *t == tag) {
            let mut r = Reader::new(bytes);
            // Message values merge into what came before; scalars take the last. A value the
            // type cannot hold leaves the previous one (a closed enum's undeclared number),
            // or none (a string that is not UTF-8, which is still the latest value).
            let had = value.is_some();
            let mut next = value.take().unwrap_or_default();
            if C::try_merge(&mut next, &mut r)? || (had && !C::REFUSED_IS_VALUE) {
                value = Some(next);
            }
        }
        Ok(value)
    }

    fn write(&self, unknown: &mut UnknownFields, value: Option<C::Value>) {
        unknown.retain_fields(|tag, _| tag >> 3 != self.number);
        if let Some(value) = value {
            let mut buf = Vec::new();
            encode_key(self.number, C::WIRE_TYPE, &mut buf);
            C::encode(&value, &mut buf);
            unknown.extend_raw(&buf);
        }
    }
}

impl<M, C: Codec> ExtensionField<M> for RepeatedExtension<M, C> {
    type Value = Vec<C::Value>;

    fn number(&self) -> u32 {
        self.number
    }

    fn tags(&self) -> Vec<u32> {
        let own = key(self.number, C::WIRE_TYPE);
        let packable = matches!(
            C::WIRE_TYPE,
            WireType::Varint | WireType::Fixed32 | WireType::Fixed64
        );
        if packable {
            vec![own, key(self.number, WireType::Len)]
        } else {
            vec![own]
        }
    }

    fn read(&self, unknown: &UnknownFields) -> Result<Vec<C::Value>, DecodeError> {
        let tags = self.tags();
        let mut values = Vec::new();
        for (tag, bytes) in fields(unknown).filter(|(t, _)| tags.contains(t)) {
            let mut r = Reader::new(bytes);
            if tag & 7 == C::WIRE_TYPE as u32 {
                let mut value = C::Value::default();
                if C::try_merge(&mut value, &mut r)? {
                    values.push(value);
                }
            } else {
                let len = r.read_len()?;
                let end = r.position() + len;
                while r.position() < end {
                    let mut value = C::Value::default();
                    if C::try_merge(&mut value, &mut r)? {
                        values.push(value);
                    }
                }
            }
        }
        Ok(values)
    }

    fn write(&self, unknown: &mut UnknownFields, values: Vec<C::Value>) {
        unknown.retain_fields(|tag, _| tag >> 3 != self.number);
        if values.is_empty() {
            return;
        }
        let mut buf = Vec::new();
        if self.packed && self.tags().len() == 2 {
            encode_key(self.number, WireType::Len, &mut buf);
            let len: usize = values.iter().map(C::len).sum();
            crate::encoding::encode_varint(len as u64, &mut buf);
            for value in &values {
                C::encode(value, &mut buf);
            }
        } else {
            for value in &values {
                encode_key(self.number, C::WIRE_TYPE, &mut buf);
                C::encode(value, &mut buf);
            }
        }
        unknown.extend_raw(&buf);
    }
}
