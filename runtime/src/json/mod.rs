//! Protobuf's canonical JSON mapping (<https://protobuf.dev/programming-guides/json/>), on
//! `serde`.
//!
//! Code generated with the compiler's `json` option implements [`serde::Serialize`] and
//! [`serde::Deserialize`] for every message, so messages work with `serde_json` and with any
//! serde-based format, and embed in a program's own serde types. The mapping is protobuf's:
//! fields by their JSON name (the `.proto` name is accepted too), 64-bit integers as strings,
//! enums by name (numbers accepted), `bytes` in base64 (both alphabets accepted), `NaN` and
//! `Infinity` as strings, and the well-known types in their own forms (`Timestamp` as RFC 3339
//! text, `Duration` as `"1.5s"`, `Any` with `@type`, ...).
//!
//! [`to_string`] and [`from_str`] use the defaults; [`to_string_with`] and [`from_str_with`]
//! take [`JsonOptions`] (print default values, use `.proto` field names, skip unknown fields,
//! the [`TypeRegistry`] that `Any` values are resolved in). Serde has no way to hand options
//! down a value, so the options apply to the calls made inside these functions, on this
//! thread; `serde_json::to_string` and friends called directly use the defaults.
//!
//! Parsing fails on a field the message does not declare (unless asked to skip them), on a
//! field given twice (under either name), on two members of one oneof, and on values out of
//! their type's range; output fails on a `Timestamp`, `Duration` or `FieldMask` the JSON form
//! cannot express, on a `Value` holding `NaN` or an infinity, and on an `Any` whose type the
//! registry does not know. Values nest at most [`RECURSION_LIMIT`] messages deep both ways.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

pub use serde;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};

use crate::encoding::{
    Bool, Bytes, ClosedEnum, Codec, Double, Enum, Fixed32, Fixed64, Float, Int32, Int64, LaxStr,
    MapField, MsgCodec, SFixed32, SFixed64, SInt32, SInt64, SharedBytes, Str, UInt32, UInt64,
};
use crate::{Enumeration, Name};

mod wkt;
pub use wkt::{JsonExtension, TypeRegistry};

/// How deeply messages may nest in JSON that is read or written (the binary codec's limit).
pub const RECURSION_LIMIT: u32 = crate::encoding::DEFAULT_RECURSION_LIMIT;

/// Options for [`to_string_with`] and [`from_str_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JsonOptions {
    /// Output: also print fields without presence that hold their default value (`0`, `""`,
    /// empty lists and maps), as protobuf's `always_print_fields_with_no_presence`. Fields
    /// with presence (messages, `optional`, oneof members) are printed when set, as always.
    pub emit_defaults: bool,
    /// Output: name fields as in the `.proto` (`foo_bar`) instead of their JSON name
    /// (`fooBar`).
    pub proto_names: bool,
    /// Input: skip fields the message does not declare, and enum names the enum does not
    /// declare, instead of failing.
    pub ignore_unknown_fields: bool,
    /// Where `google.protobuf.Any` values find their types, both ways; `None` knows only the
    /// well-known types.
    pub registry: Option<Arc<TypeRegistry>>,
}

impl JsonOptions {
    /// The defaults: no default values printed, JSON names, unknown fields refused.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`emit_defaults`](Self::emit_defaults).
    pub fn emit_defaults(mut self, yes: bool) -> Self {
        self.emit_defaults = yes;
        self
    }
    /// Sets [`proto_names`](Self::proto_names).
    pub fn proto_names(mut self, yes: bool) -> Self {
        self.proto_names = yes;
        self
    }
    /// Sets [`ignore_unknown_fields`](Self::ignore_unknown_fields).
    pub fn ignore_unknown_fields(mut self, yes: bool) -> Self {
        self.ignore_unknown_fields = yes;
        self
    }
    /// Sets [`registry`](Self::registry).
    pub fn registry(mut self, registry: Arc<TypeRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }
}

struct State {
    options: JsonOptions,
    depth: u32,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State { options: JsonOptions::default(), depth: 0 });
}

/// Runs `f` with `options` in force on this thread, restoring the previous ones after (also
/// when `f` panics), so that calls nest.
fn with_options<R>(options: &JsonOptions, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<JsonOptions>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                STATE.with(|s| s.borrow_mut().options = previous);
            }
        }
    }
    let previous = STATE.with(|s| std::mem::replace(&mut s.borrow_mut().options, options.clone()));
    let _restore = Restore(Some(previous));
    f()
}

fn options<R>(f: impl FnOnce(&JsonOptions) -> R) -> R {
    STATE.with(|s| f(&s.borrow().options))
}

/// One level of message nesting, released on drop; `None` past [`RECURSION_LIMIT`].
struct Depth;

/// Runs one level of recursion with room on the stack: serde's visitors take several KB a
/// level (tens in debug builds), so 100 levels could overflow a thread's stack; this grows it
/// on the heap when little is left.
fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 1024 * 1024, f)
}

impl Depth {
    fn enter() -> Option<Depth> {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            // The outermost message and RECURSION_LIMIT levels below it, as the binary
            // decoder allows.
            if s.depth > RECURSION_LIMIT {
                return None;
            }
            s.depth += 1;
            Some(Depth)
        })
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        STATE.with(|s| s.borrow_mut().depth -= 1);
    }
}

const TOO_DEEP: &str = "messages nest deeper than the recursion limit";

/// JSON text of `value` with the default options.
///
/// # Errors
/// What [`to_string_with`] says.
pub fn to_string<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    to_string_with(value, &JsonOptions::default())
}

/// JSON text of `value` with `options`.
///
/// # Errors
/// A value the JSON form cannot express: a `Timestamp` or `Duration` out of its range, a
/// `FieldMask` path that does not survive the name conversion, a `Value` number that is `NaN`
/// or infinite, an `Any` whose type the registry does not know or whose bytes do not decode,
/// messages nested past [`RECURSION_LIMIT`].
pub fn to_string_with<T: serde::Serialize + ?Sized>(
    value: &T,
    options: &JsonOptions,
) -> Result<String, serde_json::Error> {
    with_options(options, || serde_json::to_string(value))
}

/// Parses JSON text with the default options.
///
/// # Errors
/// What [`from_str_with`] says.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    from_str_with(text, &JsonOptions::default())
}

/// Parses JSON text with `options`.
///
/// # Errors
/// Text that is not JSON, or JSON that does not fit the message: a field it does not declare
/// (unless [`JsonOptions::ignore_unknown_fields`]), a field given twice, two members of one
/// oneof, a value of the wrong kind or out of its type's range, bad base64, a well-known
/// type's text that does not parse, nesting past [`RECURSION_LIMIT`].
pub fn from_str_with<T: serde::de::DeserializeOwned>(
    text: &str,
    options: &JsonOptions,
) -> Result<T, serde_json::Error> {
    with_options(options, || {
        // serde_json's own limit counts brackets (128), and a message nested in a repeated
        // field or a map takes two: what `to_string_with` writes could fail to read back. Every
        // recursive reader here counts levels itself (messages, `Value`s, skipped unknown
        // values), against RECURSION_LIMIT.
        let mut de = serde_json::Deserializer::from_str(text);
        de.disable_recursion_limit();
        let value = T::deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    })
}

/// A JSON value read whole (for `Any` and extensions, whose type is known only at run time):
/// a key given twice in an object is an error, as it is in messages, and nesting is counted
/// against [`RECURSION_LIMIT`].
pub(crate) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        grow(|| d.deserialize_any(self))
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictValue)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "key \"{}\" is given more than once",
                    shorten(&key)
                )));
            }
            out.insert(key, value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// A value skipped (an unknown field's, on request), its nesting counted.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        grow(|| d.deserialize_any(self))
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Text from the input for an error message: at most 40 characters of it.
fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(40) {
        Some((cut, _)) => Cow::Owned(format!("{}...", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

/// What one JSON value read for a field gives.
#[doc(hidden)]
pub enum Got<T> {
    /// A value.
    Value(T),
    /// `null`: the field's default (unset, for fields with presence).
    Null,
    /// A value the options say to skip (an undeclared enum name): the field is left as it was.
    Skip,
}

impl<T> Got<T> {
    /// The value, changed by `f`; `Null` and `Skip` stay.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Got<U> {
        match self {
            Got::Value(v) => Got::Value(f(v)),
            Got::Null => Got::Null,
            Got::Skip => Got::Skip,
        }
    }
}

/// The JSON form of the values of one protobuf type, by the codec marker generated code
/// already names for the binary form.
#[doc(hidden)]
pub trait JsonCodec: Codec {
    /// Writes one value.
    fn write_json<S: Serializer>(value: &Self::Value, s: S) -> Result<S::Ok, S::Error>;
    /// Reads one value.
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self::Value>, D::Error>;
}

/// A message's JSON form: generated messages get it from [`JsonFields`]; the well-known types
/// that have a form of their own (`Timestamp`, `Any`, `Value`, ...) implement it by hand.
pub trait JsonMessage: Sized {
    /// Writes the message as one JSON value.
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Reads the message from one JSON value; [`Got::Null`] for `null` (except for
    /// `google.protobuf.Value`, which holds it).
    #[doc(hidden)]
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error>;
}

/// A message written as a JSON object of its fields: what generated code implements.
#[doc(hidden)]
pub trait JsonFields: Name + Default {
    /// For a message with extension ranges: where its extensions are (its unknown fields),
    /// which JSON writes as `"[full.name]"` members for the extensions the registry knows.
    fn json_extensions(&self) -> Option<&crate::UnknownFields> {
        None
    }
    /// The same, to add extensions read from JSON.
    fn json_extensions_mut(&mut self) -> Option<&mut crate::UnknownFields> {
        None
    }
    /// Writes the fields that are set (and the defaults, where the options ask).
    fn write_fields<S: SerializeMap>(&self, w: &mut FieldWriter<'_, S>) -> Result<(), S::Error>;
    /// Reads the value of field `key` (its JSON or its `.proto` name); `false` for a key the
    /// message does not declare, whose value is then still to be read.
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        r: &mut FieldReader<'_, A>,
    ) -> Result<bool, A::Error>;
}

impl<M: JsonFields> JsonMessage for M {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        grow(|| write_object(self, s))
    }

    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        grow(|| d.deserialize_any(ObjectVisitor::<M>(PhantomData)))
    }
}

/// The object form of a message with fields.
fn write_object<M: JsonFields, S: Serializer>(msg: &M, s: S) -> Result<S::Ok, S::Error> {
    let _depth = Depth::enter().ok_or_else(|| ser::Error::custom(TOO_DEEP))?;
    let (emit_defaults, proto_names) = options(|o| (o.emit_defaults, o.proto_names));
    let mut map = s.serialize_map(None)?;
    msg.write_fields(&mut FieldWriter {
        map: &mut map,
        emit_defaults,
        proto_names,
    })?;
    if let Some(unknown) = msg.json_extensions() {
        wkt::write_extensions(M::FULL_NAME, unknown, &mut map)?;
    }
    map.end()
}

/// Reads a message for a `Deserialize` impl. `null` is refused: as a whole input it is not a
/// message (a field that is `null` is unset, but fields are read by their codecs, not here).
#[doc(hidden)]
pub fn deserialize<'de, M: JsonMessage + Name, D: Deserializer<'de>>(d: D) -> Result<M, D::Error> {
    match M::read_json(d)? {
        Got::Value(m) => Ok(m),
        Got::Null | Got::Skip => Err(de::Error::custom(format_args!(
            "null is not a {} message",
            M::FULL_NAME
        ))),
    }
}

/// The fields of one message being written.
#[doc(hidden)]
pub struct FieldWriter<'a, S> {
    map: &'a mut S,
    emit_defaults: bool,
    proto_names: bool,
}

impl<S: SerializeMap> FieldWriter<'_, S> {
    fn name<'n>(&self, json: &'n str, proto: &'n str) -> &'n str {
        if self.proto_names {
            proto
        } else {
            json
        }
    }

    /// A field without presence: written when not the default, or when defaults are asked.
    pub fn implicit<C: JsonCodec>(
        &mut self,
        json: &str,
        proto: &str,
        value: &C::Value,
    ) -> Result<(), S::Error> {
        if self.emit_defaults || !C::is_default(value) {
            self.value::<C>(json, proto, value)?;
        }
        Ok(())
    }

    /// A field that is set (explicit presence, a oneof member).
    pub fn value<C: JsonCodec>(
        &mut self,
        json: &str,
        proto: &str,
        value: &C::Value,
    ) -> Result<(), S::Error> {
        let name = self.name(json, proto);
        self.map.serialize_entry(name, &Write::<C>(value))
    }

    /// A repeated field: written when not empty, or when defaults are asked.
    pub fn repeated<C: JsonCodec>(
        &mut self,
        json: &str,
        proto: &str,
        values: &[C::Value],
    ) -> Result<(), S::Error> {
        if self.emit_defaults || !values.is_empty() {
            let name = self.name(json, proto);
            self.map.serialize_entry(name, &WriteList::<C>(values))?;
        }
        Ok(())
    }

    /// A map field: written when not empty, or when defaults are asked.
    pub fn map<K: JsonKey, V: JsonCodec, F: MapField<K::Value, V::Value>>(
        &mut self,
        json: &str,
        proto: &str,
        map: &F,
    ) -> Result<(), S::Error> {
        if self.emit_defaults || map.entry_count() != 0 {
            let name = self.name(json, proto);
            self.map
                .serialize_entry(name, &WriteMap::<K, V, F>(map, PhantomData))?;
        }
        Ok(())
    }
}

struct Write<'a, C: Codec>(&'a C::Value);
impl<C: JsonCodec> serde::Serialize for Write<'_, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        C::write_json(self.0, s)
    }
}

struct WriteList<'a, C: Codec>(&'a [C::Value]);
impl<C: JsonCodec> serde::Serialize for WriteList<'_, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for value in self.0 {
            seq.serialize_element(&Write::<C>(value))?;
        }
        seq.end()
    }
}

struct WriteMap<'a, K, V, F>(&'a F, PhantomData<(K, V)>);
impl<K: JsonKey, V: JsonCodec, F: MapField<K::Value, V::Value>> serde::Serialize
    for WriteMap<'_, K, V, F>
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.entry_count()))?;
        for (key, value) in self.0.entries() {
            map.serialize_entry(&K::key_text(key), &Write::<V>(value))?;
        }
        map.end()
    }
}

/// The fields of one message being read.
#[doc(hidden)]
pub struct FieldReader<'a, A> {
    map: &'a mut A,
    /// Numbers of the fields read so far: a field given twice is an error.
    seen: &'a mut Vec<u32>,
    /// The key being read, for error messages.
    key: &'a str,
}

impl<'de, A: MapAccess<'de>> FieldReader<'_, A> {
    fn first_time(&mut self, number: u32) -> Result<(), A::Error> {
        if self.seen.contains(&number) {
            return Err(de::Error::custom(format_args!(
                "field \"{}\" (number {number}) is given more than once (under either name)",
                shorten(self.key)
            )));
        }
        self.seen.push(number);
        Ok(())
    }

    fn next<C: JsonCodec>(&mut self, number: u32) -> Result<Got<C::Value>, A::Error> {
        self.first_time(number)?;
        self.map.next_value_seed(Read::<C>(PhantomData))
    }

    /// A field without presence; `null` sets the default.
    pub fn implicit<C: JsonCodec>(
        &mut self,
        number: u32,
        field: &mut C::Value,
    ) -> Result<bool, A::Error> {
        match self.next::<C>(number)? {
            Got::Value(v) => *field = v,
            Got::Null => *field = Default::default(),
            Got::Skip => {}
        }
        Ok(true)
    }

    /// A field with presence; `null` leaves it unset.
    pub fn optional<C: JsonCodec>(
        &mut self,
        number: u32,
        field: &mut Option<C::Value>,
    ) -> Result<bool, A::Error> {
        match self.next::<C>(number)? {
            Got::Value(v) => *field = Some(v),
            Got::Null => *field = None,
            Got::Skip => {}
        }
        Ok(true)
    }

    /// A message field held in a `Box`.
    pub fn boxed<C: JsonCodec>(
        &mut self,
        number: u32,
        field: &mut Option<Box<C::Value>>,
    ) -> Result<bool, A::Error> {
        match self.next::<C>(number)? {
            Got::Value(v) => *field = Some(Box::new(v)),
            Got::Null => *field = None,
            Got::Skip => {}
        }
        Ok(true)
    }

    /// A member of a oneof: an error if another member is already set.
    pub fn oneof<C: JsonCodec, O>(
        &mut self,
        number: u32,
        field: &mut Option<O>,
        member: impl FnOnce(C::Value) -> O,
    ) -> Result<bool, A::Error> {
        if let Got::Value(v) = self.next::<C>(number)? {
            if field.is_some() {
                return Err(de::Error::custom(format_args!(
                    "field \"{}\" (number {number}) is a member of a oneof that another field already set",
                    shorten(self.key)
                )));
            }
            *field = Some(member(v));
        }
        Ok(true)
    }

    /// A repeated field: a JSON array, or `null` for none.
    pub fn repeated<C: JsonCodec>(
        &mut self,
        number: u32,
        field: &mut Vec<C::Value>,
    ) -> Result<bool, A::Error> {
        self.first_time(number)?;
        *field = self
            .map
            .next_value_seed(ReadList::<C>(PhantomData))?
            .unwrap_or_default();
        Ok(true)
    }

    /// A map field: a JSON object with the keys as strings, or `null` for none.
    pub fn map<K: JsonKey, V: JsonCodec, F: MapField<K::Value, V::Value>>(
        &mut self,
        number: u32,
        field: &mut F,
    ) -> Result<bool, A::Error> {
        self.first_time(number)?;
        *field = self
            .map
            .next_value_seed(ReadMap::<K, V, F>(PhantomData))?
            .unwrap_or_default();
        Ok(true)
    }
}

struct Read<C>(PhantomData<C>);
impl<'de, C: JsonCodec> DeserializeSeed<'de> for Read<C> {
    type Value = Got<C::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        C::read_json(d)
    }
}

struct ReadList<C>(PhantomData<C>);
impl<'de, C: JsonCodec> DeserializeSeed<'de> for ReadList<C> {
    type Value = Option<Vec<C::Value>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de, C: JsonCodec> Visitor<'de> for ReadList<C> {
    type Value = Option<Vec<C::Value>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(got) = seq.next_element_seed(Read::<C>(PhantomData))? {
            match got {
                Got::Value(v) => values.push(v),
                Got::Null => return Err(de::Error::custom("null is not a list element")),
                Got::Skip => {}
            }
        }
        Ok(Some(values))
    }
}

struct ReadMap<K, V, F>(PhantomData<(K, V, F)>);
impl<'de, K: JsonKey, V: JsonCodec, F: MapField<K::Value, V::Value>> DeserializeSeed<'de>
    for ReadMap<K, V, F>
{
    type Value = Option<F>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de, K: JsonKey, V: JsonCodec, F: MapField<K::Value, V::Value>> Visitor<'de>
    for ReadMap<K, V, F>
{
    type Value = Option<F>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = F::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let key = K::parse_key(&key).ok_or_else(|| {
                de::Error::custom(format_args!("map key \"{key}\" does not fit the key type"))
            })?;
            match map.next_value_seed(Read::<V>(PhantomData))? {
                Got::Value(v) => {
                    if out.has_key(&key) {
                        return Err(de::Error::custom("map key given more than once"));
                    }
                    out.put(key, v)
                }
                Got::Null => return Err(de::Error::custom("null is not a map value")),
                Got::Skip => {}
            }
        }
        Ok(Some(out))
    }
}

/// A key of a JSON object, borrowed from the input where it has no escapes.
struct KeySeed;
impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}
impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct ObjectVisitor<M>(PhantomData<M>);
impl<'de, M: JsonFields> Visitor<'de> for ObjectVisitor<M> {
    type Value = Got<M>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object for {}", M::FULL_NAME)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Got::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        let ignore_unknown = options(|o| o.ignore_unknown_fields);
        let mut msg = M::default();
        let mut seen = Vec::new();
        let mut extensions_seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let mut r = FieldReader {
                map: &mut map,
                seen: &mut seen,
                key: &key,
            };
            if !msg.read_field(&key, &mut r)? {
                if key.starts_with('[') {
                    if let Some(unknown) = msg.json_extensions_mut() {
                        if wkt::read_extension(M::FULL_NAME, &key, unknown, &mut map)? {
                            if extensions_seen.iter().any(|k| *k == *key) {
                                return Err(de::Error::custom(format_args!(
                                    "extension {} is given more than once",
                                    shorten(&key)
                                )));
                            }
                            extensions_seen.push(key.into_owned());
                            continue;
                        }
                    }
                }
                if !ignore_unknown {
                    return Err(de::Error::custom(format_args!(
                        "{} has no field named \"{}\"",
                        M::FULL_NAME,
                        shorten(&key)
                    )));
                }
                map.next_value_seed(Skip)?;
            }
        }
        Ok(Got::Value(msg))
    }
}

/// One JSON scalar as read, before its field's type interprets it.
enum Raw<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'de, str>),
}

impl Raw<'_> {
    fn what(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::I64(_) | Raw::U64(_) | Raw::F64(_) => "a number",
            Raw::Str(_) => "a string",
        }
    }
}

struct RawVisitor;
impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON number, string, boolean or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Raw::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Raw::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Raw::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }
}

fn read_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Raw<'de>, D::Error> {
    d.deserialize_any(RawVisitor)
}

fn wrong<E: de::Error>(raw: &Raw<'_>, wanted: &str) -> E {
    E::custom(format_args!("expected {wanted}, got {}", raw.what()))
}

/// Whether `text` is a plain JSON-style number (digits, sign, point, exponent): `str::parse`
/// alone would also take `inf` and `NaN`, which only a float field's own names may spell.
fn numeric(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// An integer from a number or a string holding one; floats must be whole (`1e5`, `2.0`).
fn integer<E: de::Error>(raw: &Raw<'_>, wanted: &str) -> Result<i128, E> {
    let from_float = |f: f64| {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.9e19 {
            Ok(f as i128)
        } else if f.is_finite() && f.fract() != 0.0 {
            Err(E::custom(format_args!(
                "{f} is not a whole number, as {wanted} must be"
            )))
        } else {
            Err(E::custom(format_args!(
                "the number is out of range for {wanted}"
            )))
        }
    };
    match raw {
        Raw::I64(v) => Ok(i128::from(*v)),
        Raw::U64(v) => Ok(i128::from(*v)),
        Raw::F64(f) => from_float(*f),
        Raw::Str(s) if numeric(s) && !s.starts_with('+') => match s.parse::<i128>() {
            Ok(v) => Ok(v),
            Err(_) => from_float(
                s.parse::<f64>()
                    .map_err(|_| E::custom(format_args!("\"{}\" is not a number", shorten(s))))?,
            ),
        },
        other => Err(wrong(other, wanted)),
    }
}

fn in_range<T: TryFrom<i128>, E: de::Error>(v: i128, wanted: &str) -> Result<T, E> {
    T::try_from(v).map_err(|_| E::custom(format_args!("{v} is out of range for {wanted}")))
}

macro_rules! json_ints {
    ($($codec:ty => $ty:ty, $name:literal, $quoted:literal;)*) => {$(
        impl JsonCodec for $codec {
            fn write_json<S: Serializer>(value: &$ty, s: S) -> Result<S::Ok, S::Error> {
                if $quoted {
                    s.collect_str(value)
                } else {
                    serde::Serialize::serialize(value, s)
                }
            }
            fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<$ty>, D::Error> {
                match read_raw(d)? {
                    Raw::Null => Ok(Got::Null),
                    raw => Ok(Got::Value(in_range(integer(&raw, $name)?, $name)?)),
                }
            }
        }
    )*};
}

json_ints! {
    Int32 => i32, "an int32", false;
    SInt32 => i32, "an int32", false;
    SFixed32 => i32, "an int32", false;
    UInt32 => u32, "a uint32", false;
    Fixed32 => u32, "a uint32", false;
    Int64 => i64, "an int64", true;
    SInt64 => i64, "an int64", true;
    SFixed64 => i64, "an int64", true;
    UInt64 => u64, "a uint64", true;
    Fixed64 => u64, "a uint64", true;
}

/// A float from a number, a string holding one, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn float<E: de::Error>(raw: &Raw<'_>) -> Result<f64, E> {
    match raw {
        Raw::I64(v) => Ok(*v as f64),
        Raw::U64(v) => Ok(*v as f64),
        Raw::F64(v) => Ok(*v),
        Raw::Str(s) => match &**s {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            s if numeric(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(E::custom(format_args!("\"{s}\" is not a number in range"))),
            },
            s => Err(E::custom(format_args!("\"{s}\" is not a number"))),
        },
        other => Err(wrong(other, "a number")),
    }
}

fn write_float<S: Serializer>(v: f64, s: S, single: bool) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if v.is_infinite() {
        s.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else if single {
        s.serialize_f32(v as f32)
    } else {
        s.serialize_f64(v)
    }
}

impl JsonCodec for Double {
    fn write_json<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        write_float(*value, s, false)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<f64>, D::Error> {
        match read_raw(d)? {
            Raw::Null => Ok(Got::Null),
            raw => float(&raw).map(Got::Value),
        }
    }
}

impl JsonCodec for Float {
    fn write_json<S: Serializer>(value: &f32, s: S) -> Result<S::Ok, S::Error> {
        write_float(f64::from(*value), s, true)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<f32>, D::Error> {
        match read_raw(d)? {
            Raw::Null => Ok(Got::Null),
            raw => {
                let v = float(&raw)?;
                let single = v as f32;
                if v.is_finite() && single.is_infinite() {
                    return Err(de::Error::custom(format_args!(
                        "{v} is out of range for a float"
                    )));
                }
                Ok(Got::Value(single))
            }
        }
    }
}

impl JsonCodec for Bool {
    fn write_json<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*value)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<bool>, D::Error> {
        match read_raw(d)? {
            Raw::Null => Ok(Got::Null),
            Raw::Bool(b) => Ok(Got::Value(b)),
            other => Err(wrong(&other, "a boolean")),
        }
    }
}

fn read_string<'de, D: Deserializer<'de>>(d: D) -> Result<Got<String>, D::Error> {
    match read_raw(d)? {
        Raw::Null => Ok(Got::Null),
        Raw::Str(s) => Ok(Got::Value(s.into_owned())),
        other => Err(wrong(&other, "a string")),
    }
}

impl JsonCodec for Str {
    fn write_json<S: Serializer>(value: &String, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<String>, D::Error> {
        read_string(d)
    }
}

impl JsonCodec for LaxStr {
    fn write_json<S: Serializer>(value: &String, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<String>, D::Error> {
        read_string(d)
    }
}

fn write_base64<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes base64 in either alphabet (standard or URL-safe), padded or not, as the spec asks
/// parsers to accept.
fn base64_decode<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    // Bits left over in the last symbol are ignored, as protobuf's own parsers do.
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let alphabet = if text.contains(['-', '_']) {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config)
        .decode(text)
        .map_err(|e| E::custom(format_args!("bytes are not base64: {e}")))
}

fn read_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Vec<u8>>, D::Error> {
    match read_raw(d)? {
        Raw::Null => Ok(Got::Null),
        Raw::Str(s) => base64_decode(&s).map(Got::Value),
        other => Err(wrong(&other, "a base64 string")),
    }
}

impl JsonCodec for Bytes {
    fn write_json<S: Serializer>(value: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        write_base64(value, s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Vec<u8>>, D::Error> {
        read_bytes(d)
    }
}

impl JsonCodec for SharedBytes {
    fn write_json<S: Serializer>(value: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        write_base64(value, s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<bytes::Bytes>, D::Error> {
        Ok(read_bytes(d)?.map(Into::into))
    }
}

const NULL_VALUE: &str = "google.protobuf.NullValue";

fn write_enum<E: Enumeration, S: Serializer>(value: E, s: S) -> Result<S::Ok, S::Error> {
    if E::FULL_NAME == NULL_VALUE {
        return s.serialize_unit();
    }
    match value.name() {
        Some(name) => s.serialize_str(name),
        None => s.serialize_i32(value.into()),
    }
}

/// An enum value by name or number; `closed` refuses numbers the enum does not declare.
fn read_enum<'de, E: Enumeration, D: Deserializer<'de>>(
    d: D,
    closed: bool,
) -> Result<Got<E>, D::Error> {
    let raw = read_raw(d)?;
    let value = match &raw {
        Raw::Null if E::FULL_NAME == NULL_VALUE => return Ok(Got::Value(E::default())),
        Raw::Null => return Ok(Got::Null),
        Raw::Str(name) => match E::from_name(name) {
            Some(v) => v,
            None if options(|o| o.ignore_unknown_fields) => return Ok(Got::Skip),
            None => {
                return Err(de::Error::custom(format_args!(
                    "{} has no value named \"{name}\"",
                    E::FULL_NAME
                )))
            }
        },
        Raw::Bool(_) => return Err(wrong(&raw, "an enum name or number")),
        _ => E::from(in_range::<i32, _>(
            integer(&raw, "an enum number")?,
            "an enum number",
        )?),
    };
    // JSON writes a NullValue as `null`, whatever its number: one that is not 0 would not
    // read back.
    if E::FULL_NAME == NULL_VALUE && Into::<i32>::into(value) != 0 {
        return Err(de::Error::custom("a NullValue can only be null (0)"));
    }
    if closed && !value.is_known() {
        if options(|o| o.ignore_unknown_fields) {
            return Ok(Got::Skip);
        }
        return Err(de::Error::custom(format_args!(
            "{} has no value numbered {}",
            E::FULL_NAME,
            Into::<i32>::into(value)
        )));
    }
    Ok(Got::Value(value))
}

impl<E: Enumeration> JsonCodec for Enum<E> {
    fn write_json<S: Serializer>(value: &E, s: S) -> Result<S::Ok, S::Error> {
        write_enum(*value, s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<E>, D::Error> {
        read_enum(d, false)
    }
}

impl<E: Enumeration> JsonCodec for ClosedEnum<E> {
    fn write_json<S: Serializer>(value: &E, s: S) -> Result<S::Ok, S::Error> {
        write_enum(*value, s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<E>, D::Error> {
        read_enum(d, true)
    }
}

impl<M, N> JsonCodec for MsgCodec<M, N>
where
    MsgCodec<M, N>: Codec<Value = M>,
    M: JsonMessage,
{
    fn write_json<S: Serializer>(value: &M, s: S) -> Result<S::Ok, S::Error> {
        value.write_json(s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<M>, D::Error> {
        M::read_json(d)
    }
}

impl<M: JsonMessage + crate::Message + Default + 'static, const NUMBER: u32> JsonCodec
    for crate::encoding::GroupCodec<M, NUMBER>
{
    fn write_json<S: Serializer>(value: &M, s: S) -> Result<S::Ok, S::Error> {
        value.write_json(s)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<M>, D::Error> {
        M::read_json(d)
    }
}

/// Map keys, which JSON writes as strings whatever their type.
#[doc(hidden)]
pub trait JsonKey: Codec {
    /// The key as JSON object key text.
    fn key_text(key: &Self::Value) -> Cow<'_, str>;
    /// The key from JSON object key text, or `None` when the text does not fit the type.
    fn parse_key(text: &str) -> Option<Self::Value>;
}

macro_rules! json_int_keys {
    ($($codec:ty),*) => {$(
        impl JsonKey for $codec {
            fn key_text(key: &Self::Value) -> Cow<'_, str> {
                Cow::Owned(key.to_string())
            }
            fn parse_key(text: &str) -> Option<Self::Value> {
                if text.starts_with('+') {
                    return None;
                }
                text.parse().ok()
            }
        }
    )*};
}

json_int_keys!(Int32, SInt32, SFixed32, UInt32, Fixed32, Int64, SInt64, SFixed64, UInt64, Fixed64);

impl JsonKey for Bool {
    fn key_text(key: &bool) -> Cow<'_, str> {
        Cow::Borrowed(if *key { "true" } else { "false" })
    }
    fn parse_key(text: &str) -> Option<bool> {
        match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

impl JsonKey for Str {
    fn key_text(key: &String) -> Cow<'_, str> {
        Cow::Borrowed(key)
    }
    fn parse_key(text: &str) -> Option<String> {
        Some(text.to_owned())
    }
}

impl JsonKey for LaxStr {
    fn key_text(key: &String) -> Cow<'_, str> {
        Cow::Borrowed(key)
    }
    fn parse_key(text: &str) -> Option<String> {
        Some(text.to_owned())
    }
}
