//! Protobuf's text format (<https://protobuf.dev/reference/protobuf/textformat-spec/>): what
//! `protoc --decode` prints and configuration files are written in.
//!
//! Code generated with the compiler's `text` option implements [`TextMessage`] for every
//! message; [`to_string`] prints one (fields by their `.proto` names, nested messages in
//! braces, two spaces of indentation) and [`from_str`] parses one. Parsing follows protobuf's
//! C++ parser: `:` is optional before a message, messages are in `{}` or `<>`, fields may end
//! in `,` or `;`, repeated fields take a list (`[1, 2]`) or repeat, strings are in either
//! quote, concatenate when adjacent and take C escapes (octal, hex, `\u`, `\U`), integers are
//! decimal, hex or octal, floats take `inf` and `nan`, enums a name or a number, groups their
//! type's name, extensions `[pkg.ext]`, and `Any` its expanded form
//! `[type.googleapis.com/pkg.Msg] { ... }` for the types a [`TypeRegistry`] knows.
//!
//! Parsing fails, with the line and column, on a name the message does not declare, a field
//! that is not repeated given twice, two members of one oneof, a value of the wrong kind or
//! out of its type's range, a `string` that is not UTF-8, and nesting deeper than
//! [`RECURSION_LIMIT`]. Input is read once, in time linear in its size.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::encoding::{
    encode_field, Bool, Bytes, ClosedEnum, Codec, Double, Enum, Fixed32, Fixed64, Float, Int32,
    Int64, LaxStr, MapField, MsgCodec, Reader, SFixed32, SFixed64, SInt32, SInt64, SharedBytes,
    Str, UInt32, UInt64,
};
use crate::{Enumeration, Message, Name, UnknownFields};

/// How deeply messages may nest in text that is parsed (the binary codec's limit).
pub const RECURSION_LIMIT: u32 = crate::encoding::DEFAULT_RECURSION_LIMIT;

/// Text that does not parse as the message, with where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TextError {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Options for [`to_string_with`] and [`from_str_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TextOptions {
    /// Output: also print the fields the message holds but does not declare, by number
    /// (`1001: 5`), as protobuf's printers can.
    pub print_unknown_fields: bool,
    /// Where `Any` values in expanded form and extensions (`[pkg.ext]`) find their types.
    pub registry: Option<Arc<TypeRegistry>>,
}

impl TextOptions {
    /// The defaults: unknown fields not printed, no types beyond the message's own.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`print_unknown_fields`](Self::print_unknown_fields).
    pub fn print_unknown_fields(mut self, yes: bool) -> Self {
        self.print_unknown_fields = yes;
        self
    }
    /// Sets [`registry`](Self::registry).
    pub fn registry(mut self, registry: Arc<TypeRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }
}

/// A message in text format: what generated code implements.
pub trait TextMessage: Message + Name + Default {
    /// Prints the fields that are set.
    #[doc(hidden)]
    fn print_fields(&self, p: &mut Printer<'_>);
    /// Parses the value of field `name` (its `.proto` name, or a group's type name); `false`
    /// for a name the message does not declare.
    #[doc(hidden)]
    fn parse_field(&mut self, name: &str, p: &mut FieldParser<'_, '_>) -> Result<bool, TextError>;
    /// The fields held beyond the schema (extensions among them), for printing.
    #[doc(hidden)]
    fn text_unknown_fields(&self) -> Option<&UnknownFields> {
        None
    }
}

/// The text of `msg`.
pub fn to_string<M: TextMessage>(msg: &M) -> String {
    to_string_with(msg, &TextOptions::default())
}

/// The text of `msg` with `options`.
pub fn to_string_with<M: TextMessage>(msg: &M, options: &TextOptions) -> String {
    let mut p = Printer {
        out: String::new(),
        indent: 0,
        options,
    };
    p.message_body(msg);
    p.out
}

/// Parses text as message `M`.
///
/// # Errors
/// What [`from_str_with`] says.
pub fn from_str<M: TextMessage>(text: &str) -> Result<M, TextError> {
    from_str_with(text, &TextOptions::default())
}

/// Parses text as message `M` with `options`.
///
/// # Errors
/// A [`TextError`] with the line and column: text that is not the text format, a name `M`
/// does not declare (or an extension or `Any` type the registry does not know), a field that
/// is not repeated given twice, two members of one oneof, a value of the wrong kind or out of
/// range, a `string` that is not UTF-8, nesting past [`RECURSION_LIMIT`].
pub fn from_str_with<M: TextMessage>(text: &str, options: &TextOptions) -> Result<M, TextError> {
    let mut p = Parser {
        lex: Lexer::new(text),
        peeked: None,
        depth: 0,
        options,
    };
    let mut msg = M::default();
    p.message_body(&mut msg, None)?;
    Ok(msg)
}

// ---------------------------------------------------------------------------------------------
// Printing

/// Where a message's text is written.
#[doc(hidden)]
pub struct Printer<'o> {
    out: String,
    indent: usize,
    options: &'o TextOptions,
}

impl Printer<'_> {
    fn line_start(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    fn message_body<M: TextMessage>(&mut self, msg: &M) {
        msg.print_fields(self);
        if let Some(unknown) = msg.text_unknown_fields() {
            // Extensions the registry knows are printed by name, and so not again by number.
            let mut named = Vec::new();
            if let Some(registry) = self.options.registry.clone() {
                for ext in registry.extensions.get(M::FULL_NAME).into_iter().flatten() {
                    ext.print(unknown, self);
                    named.push(ext.number());
                }
            }
            if self.options.print_unknown_fields {
                self.unknown(unknown.as_bytes(), 0, &named);
            }
        }
    }

    /// One field: `name: value` for scalars, `name { ... }` for messages.
    fn field<C: TextCodec>(&mut self, name: &str, value: &C::Value) {
        self.line_start();
        self.out.push_str(name);
        if C::IS_MESSAGE {
            self.out.push_str(" {\n");
            self.indent += 1;
            C::print(value, self);
            self.indent -= 1;
            self.line_start();
            self.out.push_str("}\n");
        } else {
            self.out.push_str(": ");
            C::print(value, self);
            self.out.push('\n');
        }
    }

    /// A field without presence: printed when not the default.
    pub fn implicit<C: TextCodec>(&mut self, name: &str, value: &C::Value) {
        if !C::is_default(value) {
            self.field::<C>(name, value);
        }
    }

    /// A field that is set (explicit presence, a oneof member).
    pub fn value<C: TextCodec>(&mut self, name: &str, value: &C::Value) {
        self.field::<C>(name, value);
    }

    /// A repeated field: one line per element.
    pub fn repeated<C: TextCodec>(&mut self, name: &str, values: &[C::Value]) {
        for value in values {
            self.field::<C>(name, value);
        }
    }

    /// A map field: one `name { key: ... value: ... }` per entry, in key order (as protobuf's
    /// printers sort them).
    pub fn map<K: TextCodec, V: TextCodec, F: MapField<K::Value, V::Value>>(
        &mut self,
        name: &str,
        map: &F,
    ) where
        K::Value: Ord,
    {
        let mut entries: Vec<_> = map.entries().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in entries {
            self.line_start();
            self.out.push_str(name);
            self.out.push_str(" {\n");
            self.indent += 1;
            self.field::<K>("key", key);
            self.field::<V>("value", value);
            self.indent -= 1;
            self.line_start();
            self.out.push_str("}\n");
        }
    }

    /// Fields by number, as they are on the wire: varints and fixed values as numbers,
    /// length-delimited ones as bytes, groups in braces.
    fn unknown(&mut self, mut bytes: &[u8], depth: u32, skip: &[u32]) {
        while !bytes.is_empty() {
            let mut r = Reader::new(bytes);
            let Ok(Some(tag)) = r.next_tag() else { return };
            let number = tag >> 3;
            let start = r.position();
            if r.skip_field(tag).is_err() {
                return;
            }
            let body = &bytes[start..r.position()];
            bytes = &bytes[r.position()..];
            if skip.contains(&number) {
                continue;
            }
            self.line_start();
            let _ = write!(self.out, "{number}");
            let mut v = Reader::new(body);
            match tag & 7 {
                0 => {
                    let _ = writeln!(self.out, ": {}", v.read_uint64().unwrap_or_default());
                }
                1 => {
                    let _ = writeln!(
                        self.out,
                        ": 0x{:016x}",
                        v.read_fixed64().unwrap_or_default()
                    );
                }
                5 => {
                    let _ = writeln!(self.out, ": 0x{:08x}", v.read_fixed32().unwrap_or_default());
                }
                2 => {
                    let inner = v.read_len_slice().unwrap_or_default();
                    // Bytes that read as fields print as a message, as protobuf's printers
                    // do, to a bounded depth.
                    if depth < RECURSION_LIMIT && !inner.is_empty() && reads_as_fields(inner) {
                        self.out.push_str(" {\n");
                        self.indent += 1;
                        self.unknown(inner, depth + 1, &[]);
                        self.indent -= 1;
                        self.line_start();
                        self.out.push_str("}\n");
                    } else {
                        self.out.push_str(": ");
                        escape_bytes(inner, &mut self.out);
                        self.out.push('\n');
                    }
                }
                _ => {
                    // A group: its fields, then the end tag, which `skip_field` included.
                    self.out.push_str(" {\n");
                    self.indent += 1;
                    let end = body
                        .len()
                        .saturating_sub(crate::encoding::varint_len(u64::from((number << 3) | 4)));
                    self.unknown(&body[..end], depth + 1, &[]);
                    self.indent -= 1;
                    self.line_start();
                    self.out.push_str("}\n");
                }
            }
        }
    }
}

/// Whether `bytes` are a whole sequence of well-formed fields.
fn reads_as_fields(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes);
    loop {
        match r.next_tag() {
            Ok(None) => return r.no_open_group().is_ok(),
            Ok(Some(tag)) if tag >> 3 != 0 && tag & 7 != 4 => {
                if r.skip_field(tag).is_err() {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Writes `bytes` as a double-quoted literal: printable ASCII as is, the rest as C escapes
/// (octal for bytes outside ASCII).
fn escape_bytes(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        escape_byte(b, out);
    }
    out.push('"');
}

fn escape_byte(b: u8, out: &mut String) {
    match b {
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        b'"' => out.push_str("\\\""),
        b'\'' => out.push_str("\\'"),
        b'\\' => out.push_str("\\\\"),
        0x20..=0x7e => out.push(b as char),
        _ => {
            let _ = write!(out, "\\{b:03o}");
        }
    }
}

/// Writes a string: as bytes, except that characters beyond ASCII stay as they are.
fn escape_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() {
            escape_byte(c as u8, out);
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Lexing

#[derive(Clone, Debug, PartialEq)]
enum Token<'a> {
    Ident(&'a str),
    /// A number as written, without a sign (`12`, `0x1f`, `1.5e3`, `2f`).
    Number(&'a str),
    /// One string literal, escapes applied.
    Str(Vec<u8>),
    Punct(u8),
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    /// An error at byte `pos`, with its line and column counted from the start (once, on the
    /// error path).
    fn error_at(&self, pos: usize, message: impl Into<String>) -> TextError {
        let mut pos = pos.min(self.text.len());
        while !self.text.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &self.text[..pos];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        TextError {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => self.pos += 1,
                b'#' => {
                    while self.pos < bytes.len() && bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token and where it starts, or `None` at the end.
    fn next(&mut self) -> Result<Option<(Token<'a>, usize)>, TextError> {
        self.skip_space();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok(None);
        };
        let token = if b.is_ascii_alphabetic() || b == b'_' {
            while self.pos < bytes.len()
                && (bytes[self.pos].is_ascii_alphanumeric() || bytes[self.pos] == b'_')
            {
                self.pos += 1;
            }
            Token::Ident(&self.text[start..self.pos])
        } else if b.is_ascii_digit()
            || (b == b'.' && bytes.get(start + 1).is_some_and(u8::is_ascii_digit))
        {
            self.pos += 1;
            while self.pos < bytes.len() {
                let c = bytes[self.pos];
                let exponent_sign = matches!(c, b'+' | b'-')
                    && matches!(bytes[self.pos - 1], b'e' | b'E')
                    && !self.text[start..self.pos].starts_with("0x")
                    && !self.text[start..self.pos].starts_with("0X");
                if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            Token::Number(&self.text[start..self.pos])
        } else if b == b'"' || b == b'\'' {
            Token::Str(self.string(b)?)
        } else {
            self.pos += 1;
            Token::Punct(b)
        };
        Ok(Some((token, start)))
    }

    /// One quoted literal, from its opening quote.
    fn string(&mut self, quote: u8) -> Result<Vec<u8>, TextError> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(self.error_at(start, "a string literal is not closed"));
            };
            self.pos += 1;
            match b {
                b'\n' => return Err(self.error_at(start, "a string literal holds a line break")),
                b if b == quote => return Ok(out),
                b'\\' => self.escape(&mut out)?,
                b => out.push(b),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), TextError> {
        let bytes = self.text.as_bytes();
        let at = self.pos - 1;
        let Some(&c) = bytes.get(self.pos) else {
            return Err(self.error_at(at, "a string literal ends in a backslash"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'?' | b'\\' | b'\'' | b'"' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let digits = |lex: &mut Self, max: usize, radix: u32| -> u32 {
            let mut value = 0u32;
            let mut n = 0;
            while n < max {
                match bytes
                    .get(lex.pos)
                    .and_then(|&d| (d as char).to_digit(radix))
                {
                    Some(d) => {
                        value = value * radix + d;
                        lex.pos += 1;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                u32::MAX
            } else {
                value
            }
        };
        match c {
            b'0'..=b'7' => {
                self.pos -= 1;
                let v = digits(self, 3, 8);
                if v > 0xff {
                    return Err(self.error_at(at, "an octal escape above \\377"));
                }
                out.push(v as u8);
            }
            b'x' | b'X' => {
                let v = digits(self, 2, 16);
                if v == u32::MAX {
                    return Err(self.error_at(at, "\\x without hex digits"));
                }
                out.push(v as u8);
            }
            b'u' | b'U' => {
                let width = if c == b'u' { 4 } else { 8 };
                let hex = self.text.get(self.pos..self.pos + width).unwrap_or("");
                let code = (hex.len() == width && hex.bytes().all(|d| d.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten();
                let ch = code.and_then(char::from_u32).ok_or_else(|| {
                    self.error_at(at, "a \\u or \\U escape that is not a Unicode scalar value")
                })?;
                self.pos += width;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(self.error_at(at, format!("unknown escape \\{}", c as char))),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Reads text-format tokens for the codecs and generated code.
#[doc(hidden)]
pub struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<(Token<'a>, usize)>,
    depth: u32,
    options: &'a TextOptions,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<Option<&Token<'a>>, TextError> {
        if self.peeked.is_none() {
            self.peeked = self.lex.next()?;
        }
        Ok(self.peeked.as_ref().map(|(t, _)| t))
    }

    fn take(&mut self) -> Result<Option<(Token<'a>, usize)>, TextError> {
        match self.peeked.take() {
            Some(t) => Ok(Some(t)),
            None => self.lex.next(),
        }
    }

    /// Where the next token starts (without reading it, so a lexing error is not lost).
    fn here(&mut self) -> usize {
        match &self.peeked {
            Some((_, at)) => *at,
            None => {
                self.lex.skip_space();
                self.lex.pos
            }
        }
    }

    fn error(&mut self, message: impl Into<String>) -> TextError {
        let at = self.here();
        self.lex.error_at(at, message)
    }

    fn at_punct(&mut self, p: u8) -> Result<bool, TextError> {
        Ok(self.peek()? == Some(&Token::Punct(p)))
    }

    fn eat_punct(&mut self, p: u8) -> Result<bool, TextError> {
        if self.at_punct(p)? {
            self.peeked = None;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect_punct(&mut self, p: u8) -> Result<(), TextError> {
        if self.eat_punct(p)? {
            Ok(())
        } else {
            Err(self.error(format!("expected '{}'", p as char)))
        }
    }

    /// The fields of a message up to `close` (or the end of the text for the outermost).
    fn message_body<M: TextMessage>(
        &mut self,
        msg: &mut M,
        close: Option<u8>,
    ) -> Result<(), TextError> {
        let mut seen = Vec::new();
        loop {
            match (self.peek()?, close) {
                (None, None) => return Ok(()),
                (None, Some(c)) => return Err(self.error(format!("expected '{}'", c as char))),
                (Some(Token::Punct(p)), Some(c)) if *p == c => {
                    self.peeked = None;
                    return Ok(());
                }
                _ => {}
            }
            self.field(msg, &mut seen)?;
            self.end_of_field()?;
        }
    }

    fn field<M: TextMessage>(&mut self, msg: &mut M, seen: &mut Vec<u32>) -> Result<(), TextError> {
        let at = self.here();
        match self.take()? {
            Some((Token::Ident(name), _)) => {
                let mut fp = FieldParser {
                    p: self,
                    seen,
                    name,
                };
                if msg.parse_field(name, &mut fp)? {
                    return Ok(());
                }
                Err(self.lex.error_at(
                    at,
                    format!("{} has no field named \"{name}\"", M::FULL_NAME),
                ))
            }
            Some((Token::Punct(b'['), _)) => {
                let name = self.bracketed_name()?;
                let bytes = if let Some((_, type_name)) = name.rsplit_once('/') {
                    if M::FULL_NAME != "google.protobuf.Any" {
                        return Err(self
                            .lex
                            .error_at(at, "an expanded Any in a message that is not an Any"));
                    }
                    let entry = self.registry_type(type_name).ok_or_else(|| {
                        self.lex
                            .error_at(at, format!("the type registry does not know {type_name}"))
                    })?;
                    self.eat_punct(b':')?;
                    let value = (entry.parse)(self)?;
                    let mut bytes = Vec::new();
                    encode_field::<Str>(1, &name, &mut bytes);
                    encode_field::<Bytes>(2, &value, &mut bytes);
                    bytes
                } else {
                    let ext = self
                        .registry_extension(M::FULL_NAME, &name)
                        .ok_or_else(|| {
                            self.lex.error_at(
                                at,
                                format!(
                                    "{} has no extension {name} the type registry knows",
                                    M::FULL_NAME
                                ),
                            )
                        })?;
                    if !ext.is_repeated() {
                        if seen.contains(&ext.number()) {
                            return Err(self.lex.error_at(
                                at,
                                format!("extension [{name}] is given more than once"),
                            ));
                        }
                        seen.push(ext.number());
                    }
                    ext.parse(self)?
                };
                msg.merge(&bytes)
                    .map_err(|e| self.lex.error_at(at, e.to_string()))?;
                Ok(())
            }
            _ => Err(self.lex.error_at(at, "expected a field name")),
        }
    }

    /// `pkg.ext` or `type.googleapis.com/pkg.Msg`, after `[` and up to `]`.
    fn bracketed_name(&mut self) -> Result<String, TextError> {
        let mut name = String::new();
        loop {
            match self.take()? {
                Some((Token::Punct(b']'), _)) if !name.is_empty() => return Ok(name),
                Some((Token::Ident(part), _)) => name.push_str(part),
                Some((Token::Punct(p @ (b'.' | b'/')), _)) => name.push(p as char),
                _ => return Err(self.error("expected an extension or type name in brackets")),
            }
        }
    }

    fn registry_type(&self, name: &str) -> Option<TypeEntry> {
        self.options.registry.as_ref()?.types.get(name).copied()
    }

    fn registry_extension(&self, extendee: &str, name: &str) -> Option<&'static dyn TextExtension> {
        self.options
            .registry
            .as_ref()?
            .extensions
            .get(extendee)?
            .iter()
            .find(|e| e.full_name() == name)
            .copied()
    }

    /// The `{` or `<` that opens a message (or a map entry, `what`); returns what closes it.
    fn open_block(&mut self, what: &str) -> Result<u8, TextError> {
        if self.eat_punct(b'{')? {
            Ok(b'}')
        } else if self.eat_punct(b'<')? {
            Ok(b'>')
        } else {
            Err(self.error(format!("expected '{{' or '<' before {what}")))
        }
    }

    /// The `,` or `;` that may end a field.
    fn end_of_field(&mut self) -> Result<(), TextError> {
        if !self.eat_punct(b',')? {
            self.eat_punct(b';')?;
        }
        Ok(())
    }

    /// A message value: `{ ... }` or `< ... >`.
    fn message<M: TextMessage>(&mut self) -> Result<M, TextError> {
        let close = self.open_block("a message")?;
        if self.depth >= RECURSION_LIMIT {
            return Err(self.error("messages nest deeper than the recursion limit"));
        }
        self.depth += 1;
        let mut msg = M::default();
        let result = self.message_body(&mut msg, Some(close));
        self.depth -= 1;
        result.map(|()| msg)
    }

    /// A signed number token: `-` (as its own token) and the number.
    fn signed_number(&mut self) -> Result<(bool, Token<'a>), TextError> {
        let negative = self.eat_punct(b'-')?;
        match self.take()? {
            Some((t @ (Token::Number(_) | Token::Ident(_)), _)) => Ok((negative, t)),
            _ => Err(self.error("expected a number")),
        }
    }

    fn integer(&mut self, min: i128, max: i128, what: &str) -> Result<i128, TextError> {
        let at = self.here();
        let (negative, token) = self.signed_number()?;
        let Token::Number(text) = token else {
            return Err(self.lex.error_at(at, format!("expected {what}")));
        };
        let magnitude =
            if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16).ok()
            } else if text.len() > 1 && text.starts_with('0') {
                u64::from_str_radix(&text[1..], 8).ok()
            } else {
                text.parse::<u64>().ok()
            };
        let magnitude =
            magnitude.ok_or_else(|| self.lex.error_at(at, format!("\"{text}\" is not {what}")))?;
        let value = if negative {
            -i128::from(magnitude)
        } else {
            i128::from(magnitude)
        };
        if value < min || value > max {
            return Err(self
                .lex
                .error_at(at, format!("{value} is out of range for {what}")));
        }
        Ok(value)
    }

    fn float(&mut self) -> Result<f64, TextError> {
        let at = self.here();
        let (negative, token) = self.signed_number()?;
        let value = match token {
            Token::Ident(word) => match word.to_ascii_lowercase().as_str() {
                "inf" | "infinity" => f64::INFINITY,
                "nan" => f64::NAN,
                _ => return Err(self.lex.error_at(at, format!("\"{word}\" is not a number"))),
            },
            Token::Number(text) => {
                let digits = text.strip_suffix(['f', 'F']).unwrap_or(text);
                let parsed = if digits.starts_with("0x") || digits.starts_with("0X") {
                    None
                } else {
                    digits.parse::<f64>().ok()
                };
                parsed
                    .ok_or_else(|| self.lex.error_at(at, format!("\"{text}\" is not a number")))?
            }
            _ => return Err(self.lex.error_at(at, "expected a number")),
        };
        // `-nan` is NaN: the sign of a NaN is not kept (it prints as `nan`).
        Ok(if value.is_nan() {
            f64::NAN
        } else if negative {
            -value
        } else {
            value
        })
    }

    fn bytes(&mut self) -> Result<Vec<u8>, TextError> {
        let mut out = match self.take()? {
            Some((Token::Str(s), _)) => s,
            _ => return Err(self.error("expected a string")),
        };
        while let Some(Token::Str(_)) = self.peek()? {
            if let Some((Token::Str(more), _)) = self.take()? {
                out.extend_from_slice(&more);
            }
        }
        Ok(out)
    }

    fn ident(&mut self) -> Result<(&'a str, usize), TextError> {
        match self.take()? {
            Some((Token::Ident(word), at)) => Ok((word, at)),
            _ => Err(self.error("expected a name")),
        }
    }
}

/// Reads the value of one field; generated `parse_field` calls one method per field.
#[doc(hidden)]
pub struct FieldParser<'p, 'a> {
    p: &'p mut Parser<'a>,
    seen: &'p mut Vec<u32>,
    /// The field's name as written, for error messages.
    name: &'p str,
}

impl FieldParser<'_, '_> {
    fn first_time(&mut self, number: u32) -> Result<(), TextError> {
        if self.seen.contains(&number) {
            return Err(self.p.error(format!(
                "field \"{}\" (number {number}) is given more than once",
                self.name
            )));
        }
        self.seen.push(number);
        Ok(())
    }

    /// `:` before a value: required for scalars, optional for messages.
    fn separator<C: TextCodec>(&mut self) -> Result<(), TextError> {
        if C::IS_MESSAGE {
            self.p.eat_punct(b':')?;
            Ok(())
        } else {
            self.p.expect_punct(b':')
        }
    }

    fn single<C: TextCodec>(&mut self, number: u32) -> Result<C::Value, TextError> {
        self.first_time(number)?;
        self.separator::<C>()?;
        C::parse(self.p)
    }

    /// A field without presence.
    pub fn implicit<C: TextCodec>(
        &mut self,
        number: u32,
        field: &mut C::Value,
    ) -> Result<bool, TextError> {
        *field = self.single::<C>(number)?;
        Ok(true)
    }

    /// A field with presence.
    pub fn optional<C: TextCodec>(
        &mut self,
        number: u32,
        field: &mut Option<C::Value>,
    ) -> Result<bool, TextError> {
        *field = Some(self.single::<C>(number)?);
        Ok(true)
    }

    /// A message field held in a `Box`.
    pub fn boxed<C: TextCodec>(
        &mut self,
        number: u32,
        field: &mut Option<Box<C::Value>>,
    ) -> Result<bool, TextError> {
        *field = Some(Box::new(self.single::<C>(number)?));
        Ok(true)
    }

    /// A member of a oneof: an error if another member is set.
    pub fn oneof<C: TextCodec, O>(
        &mut self,
        number: u32,
        field: &mut Option<O>,
        member: impl FnOnce(C::Value) -> O,
    ) -> Result<bool, TextError> {
        if field.is_some() {
            return Err(self.p.error(format!(
                "field {number} is a member of a oneof that another field already set"
            )));
        }
        let value = self.single::<C>(number)?;
        *field = Some(member(value));
        Ok(true)
    }

    /// A repeated field: one value, or a list `[a, b]`; each occurrence appends.
    pub fn repeated<C: TextCodec>(&mut self, field: &mut Vec<C::Value>) -> Result<bool, TextError> {
        self.separator::<C>()?;
        self.one_or_list(|p| {
            field.push(C::parse(p.p)?);
            Ok(())
        })?;
        Ok(true)
    }

    /// One value, or a list `[a, b]` (maybe empty) of them, each read by `each`.
    fn one_or_list(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<(), TextError>,
    ) -> Result<(), TextError> {
        if !self.p.eat_punct(b'[')? {
            return each(self);
        }
        if self.p.eat_punct(b']')? {
            return Ok(());
        }
        loop {
            each(self)?;
            if self.p.eat_punct(b']')? {
                return Ok(());
            }
            self.p.expect_punct(b',')?;
        }
    }

    /// A map field: entries `{ key: ... value: ... }`, one per occurrence or in a list; a
    /// later entry replaces an earlier one with the same key.
    pub fn map<K: TextCodec, V: TextCodec, F: MapField<K::Value, V::Value>>(
        &mut self,
        field: &mut F,
    ) -> Result<bool, TextError> {
        self.p.eat_punct(b':')?;
        self.one_or_list(|p| p.map_entry::<K, V, F>(field))?;
        Ok(true)
    }

    fn map_entry<K: TextCodec, V: TextCodec, F: MapField<K::Value, V::Value>>(
        &mut self,
        field: &mut F,
    ) -> Result<(), TextError> {
        let close = self.p.open_block("a map entry")?;
        let (mut key, mut value) = (None, None);
        let mut seen = Vec::new();
        while !self.p.eat_punct(close)? {
            let (name, at) = self.p.ident()?;
            let mut entry = FieldParser {
                p: &mut *self.p,
                seen: &mut seen,
                name,
            };
            match name {
                "key" => key = Some(entry.single::<K>(1)?),
                "value" => value = Some(entry.single::<V>(2)?),
                _ => {
                    return Err(self
                        .p
                        .lex
                        .error_at(at, format!("a map entry has no field named \"{name}\"")))
                }
            }
            self.p.end_of_field()?;
        }
        field.put(key.unwrap_or_default(), value.unwrap_or_default());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// The text form of the values of one protobuf type, by codec marker.
#[doc(hidden)]
pub trait TextCodec: Codec {
    /// Whether values are messages: printed in braces, `:` optional before them.
    const IS_MESSAGE: bool = false;
    /// Prints one value.
    fn print(value: &Self::Value, p: &mut Printer<'_>);
    /// Parses one value.
    fn parse(p: &mut Parser<'_>) -> Result<Self::Value, TextError>;
}

macro_rules! text_ints {
    ($($codec:ty => $ty:ty, $what:literal;)*) => {$(
        impl TextCodec for $codec {
            fn print(value: &$ty, p: &mut Printer<'_>) {
                let _ = write!(p.out, "{value}");
            }
            fn parse(p: &mut Parser<'_>) -> Result<$ty, TextError> {
                let v = p.integer(i128::from(<$ty>::MIN), i128::from(<$ty>::MAX), $what)?;
                Ok(v as $ty)
            }
        }
    )*};
}

text_ints! {
    Int32 => i32, "an int32";
    SInt32 => i32, "an int32";
    SFixed32 => i32, "an int32";
    UInt32 => u32, "a uint32";
    Fixed32 => u32, "a uint32";
    Int64 => i64, "an int64";
    SInt64 => i64, "an int64";
    SFixed64 => i64, "an int64";
    UInt64 => u64, "a uint64";
    Fixed64 => u64, "a uint64";
}

impl TextCodec for Double {
    fn print(value: &f64, p: &mut Printer<'_>) {
        if value.is_nan() {
            p.out.push_str("nan");
        } else {
            let _ = write!(p.out, "{value:?}");
        }
    }
    fn parse(p: &mut Parser<'_>) -> Result<f64, TextError> {
        p.float()
    }
}

impl TextCodec for Float {
    fn print(value: &f32, p: &mut Printer<'_>) {
        if value.is_nan() {
            p.out.push_str("nan");
        } else {
            let _ = write!(p.out, "{value:?}");
        }
    }
    fn parse(p: &mut Parser<'_>) -> Result<f32, TextError> {
        // Out of `float`'s range becomes an infinity, as protobuf's parsers do.
        Ok(p.float()? as f32)
    }
}

impl TextCodec for Bool {
    fn print(value: &bool, p: &mut Printer<'_>) {
        p.out.push_str(if *value { "true" } else { "false" });
    }
    fn parse(p: &mut Parser<'_>) -> Result<bool, TextError> {
        let at = p.here();
        match p.take()? {
            Some((Token::Ident("true" | "True" | "t"), _)) | Some((Token::Number("1"), _)) => {
                Ok(true)
            }
            Some((Token::Ident("false" | "False" | "f"), _)) | Some((Token::Number("0"), _)) => {
                Ok(false)
            }
            _ => Err(p.lex.error_at(at, "expected true or false")),
        }
    }
}

fn parse_string(p: &mut Parser<'_>) -> Result<String, TextError> {
    let at = p.here();
    let bytes = p.bytes()?;
    String::from_utf8(bytes).map_err(|_| p.lex.error_at(at, "a string field's value is not UTF-8"))
}

impl TextCodec for Str {
    fn print(value: &String, p: &mut Printer<'_>) {
        escape_str(value, &mut p.out);
    }
    fn parse(p: &mut Parser<'_>) -> Result<String, TextError> {
        parse_string(p)
    }
}

impl TextCodec for LaxStr {
    fn print(value: &String, p: &mut Printer<'_>) {
        escape_str(value, &mut p.out);
    }
    fn parse(p: &mut Parser<'_>) -> Result<String, TextError> {
        parse_string(p)
    }
}

impl TextCodec for Bytes {
    fn print(value: &Vec<u8>, p: &mut Printer<'_>) {
        escape_bytes(value, &mut p.out);
    }
    fn parse(p: &mut Parser<'_>) -> Result<Vec<u8>, TextError> {
        p.bytes()
    }
}

impl TextCodec for SharedBytes {
    fn print(value: &bytes::Bytes, p: &mut Printer<'_>) {
        escape_bytes(value, &mut p.out);
    }
    fn parse(p: &mut Parser<'_>) -> Result<bytes::Bytes, TextError> {
        p.bytes().map(Into::into)
    }
}

fn print_enum<E: Enumeration>(value: E, p: &mut Printer<'_>) {
    match value.name() {
        Some(name) => p.out.push_str(name),
        None => {
            let _ = write!(p.out, "{}", Into::<i32>::into(value));
        }
    }
}

fn parse_enum<E: Enumeration>(p: &mut Parser<'_>, closed: bool) -> Result<E, TextError> {
    let at = p.here();
    let value = if let Some(Token::Ident(_)) = p.peek()? {
        let (name, _) = p.ident()?;
        E::from_name(name).ok_or_else(|| {
            p.lex.error_at(
                at,
                format!("{} has no value named \"{name}\"", E::FULL_NAME),
            )
        })?
    } else {
        E::from(p.integer(i128::from(i32::MIN), i128::from(i32::MAX), "an enum number")? as i32)
    };
    if closed && !value.is_known() {
        return Err(p.lex.error_at(
            at,
            format!(
                "{} has no value numbered {}",
                E::FULL_NAME,
                Into::<i32>::into(value)
            ),
        ));
    }
    Ok(value)
}

impl<E: Enumeration> TextCodec for Enum<E> {
    fn print(value: &E, p: &mut Printer<'_>) {
        print_enum(*value, p)
    }
    fn parse(p: &mut Parser<'_>) -> Result<E, TextError> {
        parse_enum(p, false)
    }
}

impl<E: Enumeration> TextCodec for ClosedEnum<E> {
    fn print(value: &E, p: &mut Printer<'_>) {
        print_enum(*value, p)
    }
    fn parse(p: &mut Parser<'_>) -> Result<E, TextError> {
        parse_enum(p, true)
    }
}

impl<M, N> TextCodec for MsgCodec<M, N>
where
    MsgCodec<M, N>: Codec<Value = M>,
    M: TextMessage,
{
    const IS_MESSAGE: bool = true;
    fn print(value: &M, p: &mut Printer<'_>) {
        p.message_body(value);
    }
    fn parse(p: &mut Parser<'_>) -> Result<M, TextError> {
        p.message()
    }
}

impl<M: TextMessage + 'static, const NUMBER: u32> TextCodec
    for crate::encoding::GroupCodec<M, NUMBER>
{
    const IS_MESSAGE: bool = true;
    fn print(value: &M, p: &mut Printer<'_>) {
        p.message_body(value);
    }
    fn parse(p: &mut Parser<'_>) -> Result<M, TextError> {
        p.message()
    }
}

// ---------------------------------------------------------------------------------------------
// Registry

#[derive(Clone, Copy)]
struct TypeEntry {
    /// Parses a message block of the type and encodes it.
    parse: fn(&mut Parser<'_>) -> Result<Vec<u8>, TextError>,
}

/// The message types and extensions text may name in brackets: `Any` values in expanded form
/// (`[type.googleapis.com/pkg.Msg] { ... }`) and extensions (`[pkg.ext]: ...`). A new registry
/// knows the well-known types. Extensions it
/// knows are also printed; `Any` values are always printed as their `type_url` and `value`,
/// which every parser reads.
#[derive(Clone)]
pub struct TypeRegistry {
    types: HashMap<&'static str, TypeEntry>,
    extensions: HashMap<&'static str, Vec<&'static dyn TextExtension>>,
}

impl Default for TypeRegistry {
    fn default() -> Self {
        Self::new()
    }
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

fn parse_encoded<M: TextMessage>(p: &mut Parser<'_>) -> Result<Vec<u8>, TextError> {
    p.message::<M>().map(|m| m.encode_to_vec())
}

impl TypeRegistry {
    /// A registry of the well-known types.
    pub fn new() -> Self {
        use crate::wkt;
        let mut registry = TypeRegistry {
            types: HashMap::new(),
            extensions: HashMap::new(),
        };
        registry
            .register::<wkt::Any>()
            .register::<wkt::Timestamp>()
            .register::<wkt::Duration>()
            .register::<wkt::FieldMask>()
            .register::<wkt::Struct>()
            .register::<wkt::Value>()
            .register::<wkt::ListValue>()
            .register::<wkt::Empty>()
            .register::<wkt::DoubleValue>()
            .register::<wkt::FloatValue>()
            .register::<wkt::Int64Value>()
            .register::<wkt::UInt64Value>()
            .register::<wkt::Int32Value>()
            .register::<wkt::UInt32Value>()
            .register::<wkt::BoolValue>()
            .register::<wkt::StringValue>()
            .register::<wkt::BytesValue>();
        registry
    }

    /// Adds message type `M`, so `Any` values holding it can be written in expanded form.
    pub fn register<M: TextMessage + 'static>(&mut self) -> &mut Self {
        self.types.insert(
            M::FULL_NAME,
            TypeEntry {
                parse: parse_encoded::<M>,
            },
        );
        self
    }

    /// Adds extension `ext` (a generated extension constant), so text reads and prints it as
    /// `[full.name]` in the messages it extends.
    pub fn register_extension(&mut self, ext: &'static dyn TextExtension) -> &mut Self {
        let list = self.extensions.entry(ext.extendee()).or_default();
        list.retain(|e| e.full_name() != ext.full_name());
        list.push(ext);
        self
    }
}

/// An extension as text knows it: implemented by generated extension constants whose values
/// have a text form.
pub trait TextExtension: Send + Sync {
    /// The full name of the message it extends.
    fn extendee(&self) -> &'static str;
    /// Its own full name, which text writes in brackets.
    fn full_name(&self) -> &'static str;
    /// Its field number.
    #[doc(hidden)]
    fn number(&self) -> u32;
    /// Whether it is repeated (a singular one may be given once).
    #[doc(hidden)]
    fn is_repeated(&self) -> bool;
    /// Prints its value in `unknown`, if the message holds one.
    #[doc(hidden)]
    fn print(&self, unknown: &UnknownFields, p: &mut Printer<'_>);
    /// Parses one occurrence (from the `:` on) into the wire form of the message it extends.
    #[doc(hidden)]
    fn parse(&self, p: &mut Parser<'_>) -> Result<Vec<u8>, TextError>;
}

impl<M, C> TextExtension for crate::extension::Extension<M, C>
where
    M: crate::Extendable + Name,
    C: TextCodec,
{
    fn extendee(&self) -> &'static str {
        M::FULL_NAME
    }
    fn full_name(&self) -> &'static str {
        crate::extension::Extension::full_name(self)
    }
    fn number(&self) -> u32 {
        crate::extension::ExtensionField::<M>::number(self)
    }
    fn is_repeated(&self) -> bool {
        false
    }
    fn print(&self, unknown: &UnknownFields, p: &mut Printer<'_>) {
        use crate::extension::ExtensionField;
        if let Ok(Some(value)) = self.read(unknown) {
            p.field::<C>(&format!("[{}]", self.full_name()), &value);
        }
    }
    fn parse(&self, p: &mut Parser<'_>) -> Result<Vec<u8>, TextError> {
        let mut seen = Vec::new();
        let value = FieldParser {
            p,
            seen: &mut seen,
            name: self.full_name(),
        }
        .single::<C>(0)?;
        let mut bytes = Vec::new();
        encode_field::<C>(TextExtension::number(self), &value, &mut bytes);
        Ok(bytes)
    }
}

impl<M, C> TextExtension for crate::extension::RepeatedExtension<M, C>
where
    M: crate::Extendable + Name,
    C: TextCodec,
{
    fn extendee(&self) -> &'static str {
        M::FULL_NAME
    }
    fn full_name(&self) -> &'static str {
        crate::extension::RepeatedExtension::full_name(self)
    }
    fn number(&self) -> u32 {
        crate::extension::ExtensionField::<M>::number(self)
    }
    fn is_repeated(&self) -> bool {
        true
    }
    fn print(&self, unknown: &UnknownFields, p: &mut Printer<'_>) {
        use crate::extension::ExtensionField;
        if let Ok(values) = self.read(unknown) {
            p.repeated::<C>(&format!("[{}]", self.full_name()), &values);
        }
    }
    fn parse(&self, p: &mut Parser<'_>) -> Result<Vec<u8>, TextError> {
        let mut seen = Vec::new();
        let mut values = Vec::new();
        FieldParser {
            p,
            seen: &mut seen,
            name: self.full_name(),
        }
        .repeated::<C>(&mut values)?;
        let mut bytes = Vec::new();
        for value in &values {
            encode_field::<C>(TextExtension::number(self), value, &mut bytes);
        }
        Ok(bytes)
    }
}
