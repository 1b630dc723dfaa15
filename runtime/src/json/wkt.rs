//! The well-known types whose JSON form is not an object of their fields, and the registry
//! that `Any` resolves types in.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};

use super::{options, Depth, Got, JsonCodec, JsonMessage, TOO_DEEP};
use crate::encoding as enc;
use crate::wkt::{
    value::Kind, Any, BoolValue, BytesValue, DoubleValue, Duration, FieldMask, FloatValue,
    Int32Value, Int64Value, ListValue, NullValue, StringValue, Struct, Timestamp, UInt32Value,
    UInt64Value, Value, MAX_DURATION_SECONDS, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS,
    NANOS_PER_SECOND,
};
use crate::{Message, Name};

type ToJson = fn(&[u8]) -> Result<serde_json::Value, String>;
type FromJson = fn(serde_json::Value) -> Result<Vec<u8>, String>;

#[derive(Clone, Copy)]
struct Entry {
    to_json: ToJson,
    from_json: FromJson,
    /// A well-known type with a JSON form of its own, which `Any` holds under `"value"`.
    own_form: bool,
}

/// The message types that `google.protobuf.Any` values can hold in JSON, by full name: an
/// `Any` is written as its message's JSON with an `"@type"` member, which takes knowing the
/// type. A new registry knows the well-known types; add a program's own with
/// [`register`](Self::register).
///
/// Extensions appear in JSON as `"[full.name]"` members of the messages they extend; those
/// the registry knows ([`register_extension`](Self::register_extension)) are written and read,
/// others stay in the message's unknown fields unwritten.
#[derive(Clone)]
pub struct TypeRegistry {
    types: HashMap<&'static str, Entry>,
    /// Extensions by the full name of the message they extend, then their own full name.
    extensions: HashMap<&'static str, Vec<&'static dyn JsonExtension>>,
}

impl fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.types.keys().collect();
        names.sort();
        f.debug_struct("TypeRegistry")
            .field("types", &names)
            .finish()
    }
}

impl Default for TypeRegistry {
    fn default() -> Self {
        Self::new()
    }
}

fn to_json<M: JsonMessage + Message + Name + Default>(
    bytes: &[u8],
) -> Result<serde_json::Value, String> {
    let msg = M::decode(bytes).map_err(|e| e.to_string())?;
    serde_json::to_value(AsSerialize(&msg)).map_err(|e| e.to_string())
}

fn from_json<M: JsonMessage + Message + Name + Default>(
    value: serde_json::Value,
) -> Result<Vec<u8>, String> {
    let msg: M = super::deserialize(value).map_err(|e| e.to_string())?;
    Ok(msg.encode_to_vec())
}

struct AsSerialize<'a, M>(&'a M);
impl<M: JsonMessage> serde::Serialize for AsSerialize<'_, M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.write_json(s)
    }
}

impl TypeRegistry {
    /// A registry of the well-known types.
    pub fn new() -> Self {
        let mut registry = TypeRegistry {
            types: HashMap::new(),
            extensions: HashMap::new(),
        };
        registry
            .own_form::<Any>()
            .own_form::<Timestamp>()
            .own_form::<Duration>()
            .own_form::<FieldMask>()
            .own_form::<Struct>()
            .own_form::<Value>()
            .own_form::<ListValue>()
            .own_form::<DoubleValue>()
            .own_form::<FloatValue>()
            .own_form::<Int64Value>()
            .own_form::<UInt64Value>()
            .own_form::<Int32Value>()
            .own_form::<UInt32Value>()
            .own_form::<BoolValue>()
            .own_form::<StringValue>()
            .own_form::<BytesValue>()
            .register::<crate::wkt::Empty>();
        registry
    }

    /// Adds message type `M`, so `Any` values holding it can be written and read.
    pub fn register<M: JsonMessage + Message + Name + Default + 'static>(&mut self) -> &mut Self {
        self.add::<M>(false)
    }

    fn own_form<M: JsonMessage + Message + Name + Default + 'static>(&mut self) -> &mut Self {
        self.add::<M>(true)
    }

    fn add<M: JsonMessage + Message + Name + Default + 'static>(
        &mut self,
        own_form: bool,
    ) -> &mut Self {
        self.types.insert(
            M::FULL_NAME,
            Entry {
                to_json: to_json::<M>,
                from_json: from_json::<M>,
                own_form,
            },
        );
        self
    }

    /// Adds extension `ext` (a generated extension constant), so JSON writes and reads it as
    /// the `"[full.name]"` member of the messages it extends.
    pub fn register_extension(&mut self, ext: &'static dyn JsonExtension) -> &mut Self {
        let list = self.extensions.entry(ext.extendee()).or_default();
        list.retain(|e| e.full_name() != ext.full_name());
        list.push(ext);
        self
    }

    /// The entry for a type URL: the full name is what follows its last `/`.
    fn find(&self, type_url: &str) -> Option<Entry> {
        let name = type_url.rsplit('/').next().unwrap_or(type_url);
        self.types.get(name).copied()
    }
}

/// The registry of the options in force, or one of the well-known types.
fn lookup(type_url: &str) -> Option<Entry> {
    static WELL_KNOWN: OnceLock<TypeRegistry> = OnceLock::new();
    let mine: Option<Arc<TypeRegistry>> = options(|o| o.registry.clone());
    match mine {
        Some(registry) => registry.find(type_url),
        None => WELL_KNOWN.get_or_init(TypeRegistry::new).find(type_url),
    }
}

/// The extensions of `extendee` that the registry in force knows.
fn extensions_of(extendee: &str) -> Vec<&'static dyn JsonExtension> {
    let mine: Option<Arc<TypeRegistry>> = options(|o| o.registry.clone());
    mine.and_then(|r| r.extensions.get(extendee).cloned())
        .unwrap_or_default()
}

/// An extension as JSON knows it: implemented by generated extension constants
/// ([`Extension`](crate::extension::Extension),
/// [`RepeatedExtension`](crate::extension::RepeatedExtension)) whose values have a JSON form.
pub trait JsonExtension: Send + Sync {
    /// The full name of the message it extends.
    fn extendee(&self) -> &'static str;
    /// Its own full name, which JSON writes in brackets.
    fn full_name(&self) -> &'static str;
    /// Its value in `unknown` as JSON, or `None` when the message holds none.
    #[doc(hidden)]
    fn json_value(
        &self,
        unknown: &crate::UnknownFields,
    ) -> Result<Option<serde_json::Value>, String>;
    /// Puts the value `json` says into `unknown`, replacing what was there.
    #[doc(hidden)]
    fn set_json_value(
        &self,
        json: serde_json::Value,
        unknown: &mut crate::UnknownFields,
    ) -> Result<(), String>;
}

impl<M, C> JsonExtension for crate::extension::Extension<M, C>
where
    M: crate::Extendable + Name,
    C: JsonCodec,
{
    fn extendee(&self) -> &'static str {
        M::FULL_NAME
    }
    fn full_name(&self) -> &'static str {
        crate::extension::Extension::full_name(self)
    }
    fn json_value(
        &self,
        unknown: &crate::UnknownFields,
    ) -> Result<Option<serde_json::Value>, String> {
        use crate::extension::ExtensionField;
        match self.read(unknown).map_err(|e| e.to_string())? {
            Some(value) => serde_json::to_value(super::Write::<C>(&value))
                .map(Some)
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }
    fn set_json_value(
        &self,
        json: serde_json::Value,
        unknown: &mut crate::UnknownFields,
    ) -> Result<(), String> {
        use crate::extension::ExtensionField;
        match C::read_json(json).map_err(|e| e.to_string())? {
            Got::Value(v) => self.write(unknown, Some(v)),
            Got::Null => self.write(unknown, None),
            Got::Skip => {}
        }
        Ok(())
    }
}

impl<M, C> JsonExtension for crate::extension::RepeatedExtension<M, C>
where
    M: crate::Extendable + Name,
    C: JsonCodec,
{
    fn extendee(&self) -> &'static str {
        M::FULL_NAME
    }
    fn full_name(&self) -> &'static str {
        crate::extension::RepeatedExtension::full_name(self)
    }
    fn json_value(
        &self,
        unknown: &crate::UnknownFields,
    ) -> Result<Option<serde_json::Value>, String> {
        use crate::extension::ExtensionField;
        let values = self.read(unknown).map_err(|e| e.to_string())?;
        if values.is_empty() {
            return Ok(None);
        }
        serde_json::to_value(super::WriteList::<C>(&values))
            .map(Some)
            .map_err(|e| e.to_string())
    }
    fn set_json_value(
        &self,
        json: serde_json::Value,
        unknown: &mut crate::UnknownFields,
    ) -> Result<(), String> {
        use crate::extension::ExtensionField;
        use serde::de::DeserializeSeed as _;
        let values = super::ReadList::<C>(std::marker::PhantomData)
            .deserialize(json)
            .map_err(|e| e.to_string())?;
        self.write(unknown, values.unwrap_or_default());
        Ok(())
    }
}

/// Writes the extensions the registry knows of `extendee` that `unknown` holds.
pub(super) fn write_extensions<S: SerializeMap>(
    extendee: &str,
    unknown: &crate::UnknownFields,
    map: &mut S,
) -> Result<(), S::Error> {
    for ext in extensions_of(extendee) {
        if let Some(value) = ext.json_value(unknown).map_err(ser::Error::custom)? {
            map.serialize_entry(&format!("[{}]", ext.full_name()), &value)?;
        }
    }
    Ok(())
}

/// Reads the value of member `key` (`"[full.name]"`) as the extension of that name, if the
/// registry knows one of `extendee`; `false` (value not read) if not.
pub(super) fn read_extension<'de, A: MapAccess<'de>>(
    extendee: &str,
    key: &str,
    unknown: &mut crate::UnknownFields,
    map: &mut A,
) -> Result<bool, A::Error> {
    let Some(name) = key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) else {
        return Ok(false);
    };
    let Some(ext) = extensions_of(extendee)
        .into_iter()
        .find(|e| e.full_name() == name)
    else {
        return Ok(false);
    };
    let json = map.next_value_seed(super::StrictValue)?;
    ext.set_json_value(json, unknown)
        .map_err(de::Error::custom)?;
    Ok(true)
}

/// `Serialize` and `Deserialize` for the types this module gives a JSON form.
macro_rules! serde_impls {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                JsonMessage::write_json(self, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::deserialize(d)
            }
        }
    )*};
}

serde_impls!(
    Any,
    Timestamp,
    Duration,
    FieldMask,
    Struct,
    Value,
    ListValue,
    DoubleValue,
    FloatValue,
    Int64Value,
    UInt64Value,
    Int32Value,
    UInt32Value,
    BoolValue,
    StringValue,
    BytesValue
);

impl JsonMessage for Any {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if self.type_url.is_empty() && self.value.is_empty() {
            return map.end();
        }
        if self.type_url.is_empty() {
            return Err(ser::Error::custom("an Any with a value but no type_url"));
        }
        let entry = lookup(&self.type_url).ok_or_else(|| {
            ser::Error::custom(format_args!(
                "Any holds {}, which the type registry does not know",
                self.type_url
            ))
        })?;
        let value = (entry.to_json)(&self.value).map_err(|e| {
            ser::Error::custom(format_args!("the {} an Any holds: {e}", self.type_url))
        })?;
        map.serialize_entry("@type", &self.type_url)?;
        match value {
            serde_json::Value::Object(fields) if !entry.own_form => {
                for (k, v) in &fields {
                    map.serialize_entry(k, v)?;
                }
            }
            value => map.serialize_entry("value", &value)?,
        }
        map.end()
    }

    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        let mut object = match de::DeserializeSeed::deserialize(super::StrictValue, d)? {
            serde_json::Value::Null => return Ok(Got::Null),
            serde_json::Value::Object(object) => object,
            _ => return Err(de::Error::custom("expected a JSON object for an Any")),
        };
        let type_url = match object.remove("@type") {
            Some(serde_json::Value::String(url)) => url,
            Some(_) => return Err(de::Error::custom("an Any's @type is not a string")),
            None if object.is_empty() => return Ok(Got::Value(Any::default())),
            None => return Err(de::Error::custom("an Any with fields has no @type")),
        };
        let entry = lookup(&type_url).ok_or_else(|| {
            de::Error::custom(format_args!(
                "Any holds {type_url}, which the type registry does not know"
            ))
        })?;
        let payload = if entry.own_form {
            let value = object
                .remove("value")
                .ok_or_else(|| de::Error::custom("an Any of a well-known type has no value"))?;
            if let Some(key) = object.keys().next() {
                return Err(de::Error::custom(format_args!(
                    "an Any of a well-known type has a member \"{key}\""
                )));
            }
            value
        } else {
            serde_json::Value::Object(object)
        };
        let value = (entry.from_json)(payload).map_err(de::Error::custom)?;
        Ok(Got::Value(Any {
            type_url,
            value,
            ..Default::default()
        }))
    }
}

/// The string a JSON value of a well-known type is written as, or `null`.
fn read_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match enc::Str::read_json(d)? {
        Got::Value(s) => Ok(Some(s)),
        Got::Null | Got::Skip => Ok(None),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `.` and 3, 6 or 9 digits of `nanos`, as few as show it; nothing for 0.
fn push_fraction(out: &mut String, nanos: u32) {
    if nanos == 0 {
        return;
    }
    let _ = if nanos % 1_000_000 == 0 {
        write!(out, ".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        write!(out, ".{:06}", nanos / 1_000)
    } else {
        write!(out, ".{nanos:09}")
    };
}

/// Reads `count` ASCII digits at the start of `text` as a number.
fn digits(text: &str, count: usize) -> Option<i64> {
    let part = text.get(..count)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Reads `.` and 1 to 9 digits at the start of `text`, if there, as nanoseconds; returns them
/// with the rest of the text.
fn fraction(text: &str) -> Option<(i64, &str)> {
    let Some(rest) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let count = rest.bytes().take_while(u8::is_ascii_digit).count();
    if count == 0 || count > 9 {
        return None;
    }
    let nanos = digits(rest, count)? * 10_i64.pow(9 - count as u32);
    Some((nanos, &rest[count..]))
}

fn format_timestamp(ts: &Timestamp) -> Option<String> {
    if !ts.is_valid() {
        return None;
    }
    let days = ts.seconds.div_euclid(86_400);
    let secs = ts.seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    push_fraction(&mut out, ts.nanos as u32);
    out.push('Z');
    Some(out)
}

/// RFC 3339 as the spec restricts it: `T` and `Z` upper case, up to 9 fraction digits, an
/// offset `±HH:MM` or `Z`, years 0001 to 9999.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (
        digits(text, 4)?,
        digits(&text[5..], 2)?,
        digits(&text[8..], 2)?,
    );
    let (hour, minute, second) = (
        digits(&text[11..], 2)?,
        digits(&text[14..], 2)?,
        digits(&text[17..], 2)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year == 0
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let (nanos, rest) = fraction(&text[19..])?;
    let offset = match rest.as_bytes() {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(&rest[1..], 2)?, digits(&rest[4..], 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
        return None;
    }
    Some(Timestamp {
        seconds,
        nanos: nanos as i32,
        ..Default::default()
    })
}

impl JsonMessage for Timestamp {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = format_timestamp(self).ok_or_else(|| {
            ser::Error::custom(
                "a Timestamp outside 0001-01-01 to 9999-12-31, or with nanos outside 0 to 999,999,999",
            )
        })?;
        s.serialize_str(&text)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        let Some(text) = read_text(d)? else {
            return Ok(Got::Null);
        };
        parse_timestamp(&text).map(Got::Value).ok_or_else(|| {
            de::Error::custom(format_args!(
                "\"{text}\" is not an RFC 3339 timestamp in range"
            ))
        })
    }
}

fn format_duration(d: &Duration) -> Option<String> {
    let (seconds, nanos) = (d.seconds, i64::from(d.nanos));
    if seconds.abs() > MAX_DURATION_SECONDS
        || nanos.abs() >= NANOS_PER_SECOND
        || (seconds < 0 && nanos > 0)
        || (seconds > 0 && nanos < 0)
    {
        return None;
    }
    let mut out = String::new();
    if seconds < 0 || nanos < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", seconds.unsigned_abs());
    push_fraction(&mut out, nanos.unsigned_abs() as u32);
    out.push('s');
    Some(out)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let body = text.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let count = body.bytes().take_while(u8::is_ascii_digit).count();
    if count == 0 || count > 12 {
        return None;
    }
    let seconds = digits(body, count)?;
    let (nanos, rest) = fraction(&body[count..])?;
    if !rest.is_empty() || seconds > MAX_DURATION_SECONDS {
        return None;
    }
    let sign = if negative { -1 } else { 1 };
    Some(Duration {
        seconds: sign * seconds,
        nanos: (sign * nanos) as i32,
        ..Default::default()
    })
}

impl JsonMessage for Duration {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = format_duration(self).ok_or_else(|| {
            ser::Error::custom("Duration out of range or with seconds and nanos of other signs")
        })?;
        s.serialize_str(&text)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        let Some(text) = read_text(d)? else {
            return Ok(Got::Null);
        };
        parse_duration(&text)
            .map(Got::Value)
            .ok_or_else(|| de::Error::custom(format_args!("\"{text}\" is not a duration in range")))
    }
}

/// `foo_bar.baz` as `fooBar.baz`; `None` for a path that would not come back the same
/// (upper case letters, `_` not followed by a lower case letter).
fn path_to_camel(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '_' => match chars.next() {
                Some(next) if next.is_ascii_lowercase() => out.push(next.to_ascii_uppercase()),
                _ => return None,
            },
            c if c.is_ascii_uppercase() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `fooBar.baz` as `foo_bar.baz`; `None` for a path with `_`, which JSON paths do not have.
fn path_to_snake(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        match c {
            '_' => return None,
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    Some(out)
}

impl JsonMessage for FieldMask {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::new();
        for (i, path) in self.paths.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let camel = path_to_camel(path).ok_or_else(|| {
                ser::Error::custom(format_args!(
                    "FieldMask path \"{path}\" has no JSON form that reads back the same"
                ))
            })?;
            out.push_str(&camel);
        }
        s.serialize_str(&out)
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        let Some(text) = read_text(d)? else {
            return Ok(Got::Null);
        };
        let mut paths = Vec::new();
        for path in text.split(',').filter(|p| !p.is_empty()) {
            paths.push(path_to_snake(path).ok_or_else(|| {
                de::Error::custom(format_args!(
                    "FieldMask path \"{path}\" is not lowerCamelCase"
                ))
            })?);
        }
        Ok(Got::Value(FieldMask {
            paths,
            ..Default::default()
        }))
    }
}

impl JsonMessage for Struct {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let _depth = Depth::enter().ok_or_else(|| ser::Error::custom(TOO_DEEP))?;
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, &AsSerialize(value))?;
        }
        map.end()
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        match d.deserialize_any(ValueVisitor)? {
            Value {
                kind: None | Some(Kind::NullValue(_)),
                ..
            } => Ok(Got::Null),
            Value {
                kind: Some(Kind::StructValue(s)),
                ..
            } => Ok(Got::Value(s)),
            _ => Err(de::Error::custom("expected a JSON object for a Struct")),
        }
    }
}

impl JsonMessage for ListValue {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let _depth = Depth::enter().ok_or_else(|| ser::Error::custom(TOO_DEEP))?;
        let mut seq = s.serialize_seq(Some(self.values.len()))?;
        for value in &self.values {
            seq.serialize_element(&AsSerialize(value))?;
        }
        seq.end()
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        match d.deserialize_any(ValueVisitor)? {
            Value {
                kind: None | Some(Kind::NullValue(_)),
                ..
            } => Ok(Got::Null),
            Value {
                kind: Some(Kind::ListValue(l)),
                ..
            } => Ok(Got::Value(l)),
            _ => Err(de::Error::custom("expected a JSON array for a ListValue")),
        }
    }
}

impl JsonMessage for Value {
    fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::grow(|| self.write_kind(s))
    }
    fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
        super::grow(|| d.deserialize_any(ValueVisitor)).map(Got::Value)
    }
}

impl Value {
    fn write_kind<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.kind {
            None => Err(ser::Error::custom(
                "a Value with no kind set has no JSON form",
            )),
            Some(Kind::NullValue(_)) => s.serialize_unit(),
            Some(Kind::NumberValue(n)) if !n.is_finite() => Err(ser::Error::custom(
                "a Value number that is NaN or infinite has no JSON form",
            )),
            Some(Kind::NumberValue(n)) => s.serialize_f64(*n),
            Some(Kind::StringValue(text)) => s.serialize_str(text),
            Some(Kind::BoolValue(b)) => s.serialize_bool(*b),
            Some(Kind::StructValue(st)) => st.write_json(s),
            Some(Kind::ListValue(list)) => list.write_json(s),
        }
    }
}

fn value(kind: Kind) -> Value {
    Value {
        kind: Some(kind),
        ..Default::default()
    }
}

/// Any JSON value as a `google.protobuf.Value`.
struct ValueVisitor;
impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(value(Kind::NullValue(NullValue::default())))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(value(Kind::BoolValue(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(value(Kind::StringValue(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(value(Kind::StringValue(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        let mut values = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            values.push(v);
        }
        Ok(value(Kind::ListValue(ListValue {
            values,
            ..Default::default()
        })))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let _depth = Depth::enter().ok_or_else(|| de::Error::custom(TOO_DEEP))?;
        let mut fields = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed)?;
            if fields.insert(key, v).is_some() {
                return Err(de::Error::custom("a Struct key is given more than once"));
            }
        }
        Ok(value(Kind::StructValue(Struct {
            fields,
            ..Default::default()
        })))
    }
}

struct ValueSeed;
impl<'de> de::DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        super::grow(|| d.deserialize_any(ValueVisitor))
    }
}

/// The wrappers: JSON writes the wrapped value alone.
macro_rules! wrappers {
    ($($ty:ty => $codec:ty),*) => {$(
        impl JsonMessage for $ty {
            fn write_json<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$codec>::write_json(&self.value, s)
            }
            fn read_json<'de, D: Deserializer<'de>>(d: D) -> Result<Got<Self>, D::Error> {
                Ok(<$codec>::read_json(d)?.map(|value| Self { value, ..Default::default() }))
            }
        }
    )*};
}

wrappers!(
    DoubleValue => enc::Double,
    FloatValue => enc::Float,
    Int64Value => enc::Int64,
    UInt64Value => enc::UInt64,
    Int32Value => enc::Int32,
    UInt32Value => enc::UInt32,
    BoolValue => enc::Bool,
    StringValue => enc::Str,
    BytesValue => enc::Bytes
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        for days in [-719_162, -1, 0, 1, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
    }

    #[test]
    fn timestamps_read_back() {
        for text in [
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2000-02-29T12:34:56.120Z",
        ] {
            let ts = parse_timestamp(text).expect(text);
            assert_eq!(format_timestamp(&ts).as_deref(), Some(text));
        }
        let offset = parse_timestamp("1970-01-01T08:00:00+08:00").expect("offset");
        assert_eq!(offset.seconds, 0);
        for bad in [
            "1970-01-01T00:00:00z",
            "1970-01-01 00:00:00Z",
            "1970-02-30T00:00:00Z",
            "0000-12-31T00:00:00Z",
            "1970-01-01T00:00:00.1234567890Z",
            "1970-01-01T00:00:00",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn durations_read_back() {
        for text in [
            "0s",
            "1.500s",
            "-0.000001s",
            "315576000000s",
            "-3.000000001s",
        ] {
            let d = parse_duration(text).expect(text);
            assert_eq!(format_duration(&d).as_deref(), Some(text));
        }
        for bad in [
            "1",
            "s",
            "1.s",
            "+1s",
            "315576000001s",
            "1.0000000001s",
            " 1s",
        ] {
            assert!(parse_duration(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn field_mask_paths_convert_or_refuse() {
        assert_eq!(
            path_to_camel("foo_bar.baz_qux").as_deref(),
            Some("fooBar.bazQux")
        );
        assert_eq!(
            path_to_snake("fooBar.bazQux").as_deref(),
            Some("foo_bar.baz_qux")
        );
        for bad in ["foo__bar", "foo_3_bar", "fooBar", "foo_"] {
            assert!(path_to_camel(bad).is_none(), "{bad}");
        }
        assert!(path_to_snake("foo_bar").is_none());
    }
}
