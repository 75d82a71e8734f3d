//! Strict JSON (RFC 8259): the one parser for everything the gate reads from outside (token
//! headers and payloads, JWKS, configurations, policy feeds, certificate facts — all of it
//! possibly hostile) and the compact writer for everything it writes (audit records, answers,
//! forwarded claims, claims handed to hosts).
//!
//! It accepts and refuses exactly what `serde_json` 1.x `from_slice` (without its
//! `float_roundtrip` and `arbitrary_precision` features, as the gate used it before) does, and
//! gives the same values, so that no token, key set or configuration changes meaning:
//! - only `null`, `true`, `false`, numbers, strings, arrays and objects; no comments, no
//!   trailing commas, no single quotes, nothing but whitespace (space, tab, LF, CR) around the
//!   value; no byte order mark;
//! - numbers as RFC 8259 §6 writes them: no leading zeros, no `+`, no `.5` or `5.`, an exponent
//!   with at least one digit. Integers that fit stay exact (`u64`, negative ones `i64`); every
//!   other number is an `f64` computed as `serde_json` does (the significand's first 19 or 20
//!   digits, as an `f64`, times or divided by a table power of ten: correctly rounded when the
//!   digits are below 2^53 and the power at most 10^22, as in `1.5` or `1700000000.25`,
//!   possibly one unit in the last place off beyond), `-0` is the float `-0.0`, and a number
//!   too large for an `f64` is an error;
//! - strings: valid UTF-8, no raw control characters, the RFC's escapes only, `\u` surrogate
//!   pairs combined, a lone surrogate refused;
//! - at most 127 nested arrays and objects (`serde_json`'s limit of 128), so that hostile input
//!   cannot exhaust the stack;
//! - objects ([`Object`]) are sorted by member name (byte order) and a member named twice keeps
//!   its last value, as `serde_json`'s default map (a `BTreeMap`) did; the writer writes them in
//!   that order. [`parse_unique_object`] instead refuses a repeated top-level member (token
//!   headers and payloads, feed documents).
//!
//! The writer gives `serde_json::to_string`'s bytes: no whitespace, strings escaped as
//! [`write_str`] does, integers in decimal, floats in the shortest form that reads back (`1.5`,
//! `1700000000.0`, `1e-7`, `1.7976931348623157e+308`, by the same `zmij` formatter `serde_json`
//! uses).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Nothing here may panic on any input: no unwrap/expect/panic and no indexing that can go out
// of bounds. Tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod sorted;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::sorted::SortedMap;

/// A JSON object: members sorted by name, each name once.
pub type Object = SortedMap<Value>;

/// A JSON value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Object),
}

/// A JSON number: an exact `u64`, an exact negative `i64`, or a finite `f64`. Numbers of
/// different kinds are never equal (`1` is not `1.0`), as in `serde_json`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(N);

#[derive(Clone, Copy, Debug, PartialEq)]
enum N {
    /// Non-negative integers.
    PosInt(u64),
    /// Negative integers only.
    NegInt(i64),
    /// Finite floats only.
    Float(f64),
}

impl Number {
    /// A float number, `None` when `f` is not finite.
    pub fn from_f64(f: f64) -> Option<Number> {
        f.is_finite().then_some(Number(N::Float(f)))
    }

    /// Whether this is an integer that fits a `u64`.
    pub fn is_u64(&self) -> bool {
        matches!(self.0, N::PosInt(_))
    }

    /// Whether this is an integer that fits an `i64`.
    pub fn is_i64(&self) -> bool {
        match self.0 {
            N::PosInt(n) => n <= i64::MAX as u64,
            N::NegInt(_) => true,
            N::Float(_) => false,
        }
    }

    /// Whether this is a float (any number with a fraction or an exponent, `-0`, or an integer
    /// beyond the 64-bit ranges).
    pub fn is_f64(&self) -> bool {
        matches!(self.0, N::Float(_))
    }

    /// The number as a `u64`, when it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            N::PosInt(n) => Some(n),
            N::NegInt(_) | N::Float(_) => None,
        }
    }

    /// The number as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            N::PosInt(n) => i64::try_from(n).ok(),
            N::NegInt(n) => Some(n),
            N::Float(_) => None,
        }
    }

    /// The number as an `f64` (integers beyond 2^53 rounded). Always `Some`.
    pub fn as_f64(&self) -> Option<f64> {
        Some(match self.0 {
            N::PosInt(n) => n as f64,
            N::NegInt(n) => n as f64,
            N::Float(f) => f,
        })
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Number {
        Number(N::PosInt(n))
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        match u64::try_from(n) {
            Ok(n) => Number(N::PosInt(n)),
            Err(_) => Number(N::NegInt(n)),
        }
    }
}

macro_rules! number_from {
    ($($unsigned:ty),* ; $($signed:ty),*) => {
        $(impl From<$unsigned> for Number {
            fn from(n: $unsigned) -> Number {
                Number(N::PosInt(n as u64))
            }
        }
        impl From<$unsigned> for Value {
            fn from(n: $unsigned) -> Value {
                Value::Number(Number::from(n))
            }
        })*
        $(impl From<$signed> for Number {
            fn from(n: $signed) -> Number {
                Number::from(n as i64)
            }
        }
        impl From<$signed> for Value {
            fn from(n: $signed) -> Value {
                Value::Number(Number::from(n))
            }
        })*
    };
}

number_from!(u8, u16, u32, usize; i8, i16, i32, isize);

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(n.into())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n.into())
    }
}

impl From<f64> for Value {
    /// A float; `null` when `f` is not finite (as `serde_json` does).
    fn from(f: f64) -> Value {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(String::from(s))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Value {
        Value::Object(o)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Clone + Into<Value>> From<&[T]> for Value {
    fn from(items: &[T]) -> Value {
        Value::Array(items.iter().cloned().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// The value, or `null`.
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl Value {
    /// Parse `bytes` as one JSON value (see the module documentation).
    ///
    /// # Errors
    /// Where and why the bytes are not JSON.
    pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
        parse(bytes)
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is a string.
    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    /// Whether this is a number.
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// Whether this is an integer that fits a `u64`.
    pub fn is_u64(&self) -> bool {
        self.as_number().is_some_and(Number::is_u64)
    }

    /// Whether this is an integer that fits an `i64`.
    pub fn is_i64(&self) -> bool {
        self.as_number().is_some_and(Number::is_i64)
    }

    /// Whether this is a float number.
    pub fn is_f64(&self) -> bool {
        self.as_number().is_some_and(Number::is_f64)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as a `u64`, if this is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// The number as an `i64`, if this is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as an `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutable, if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The members, mutable, if this is an object.
    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The member `name`, if this is an object that has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(name))
    }

    /// The compact JSON text of this value (as `serde_json::to_string`).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write(&mut out, self);
        out
    }
}

static NULL: Value = Value::Null;

impl core::ops::Index<&str> for Value {
    type Output = Value;

    /// The member `name`, or `null` when this is not an object or has no such member (never
    /// panics, as `serde_json`'s).
    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl core::ops::Index<usize> for Value {
    type Output = Value;

    /// The element at `i`, or `null` when this is not an array or is shorter.
    fn index(&self, i: usize) -> &Value {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl PartialEq<u64> for Value {
    fn eq(&self, other: &u64) -> bool {
        self.as_u64() == Some(*other)
    }
}

impl PartialEq<i64> for Value {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl fmt::Display for Value {
    /// The compact JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_number(&mut out, self);
        f.write_str(&out)
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Append the compact JSON text of `value` to `out`.
pub fn write(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item);
            }
            out.push(']');
        }
        Value::Object(o) => write_object(out, o),
    }
}

/// Append the compact JSON text of an object (members in name order) to `out`.
pub fn write_object(out: &mut String, object: &Object) {
    out.push('{');
    for (i, (name, value)) in object.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, name);
        out.push(':');
        write(out, value);
    }
    out.push('}');
}

/// The compact JSON text of an object.
pub fn object_to_json(object: &Object) -> String {
    let mut out = String::new();
    write_object(&mut out, object);
    out
}

/// Append a number: integers in decimal, floats in the shortest form that reads back.
pub fn write_number(out: &mut String, n: &Number) {
    match n.0 {
        N::PosInt(n) => write_u64(out, n),
        N::NegInt(n) => {
            out.push('-');
            write_u64(out, n.unsigned_abs());
        }
        N::Float(f) if f.is_finite() => out.push_str(zmij::Buffer::new().format_finite(f)),
        N::Float(_) => out.push_str("null"),
    }
}

/// Append `n` in decimal.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

/// `s` as a JSON string, quotes included (for messages that name a value from a document).
/// Printable ASCII comes out as `{:?}` would write it, without linking `core`'s Unicode
/// printability tables (~5 KB of the npm module).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    out
}

/// Append `s` as a JSON string, quotes included, escaped as `serde_json` does: `"` and `\`,
/// control characters as `\b \f \n \r \t` or `\u00xx` (lower-case hex); everything else,
/// `/` and non-ASCII included, as is.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    if !needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte: a character boundary.
        out.push_str(s.get(start..i).unwrap_or(""));
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or(""));
    out.push('"');
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
}

/// Whether `s` holds a byte JSON escapes: a control character, `"` or `\`. Eight bytes per step
/// (records are written on every request): a word has a byte below 0x20 exactly when
/// `(w - 0x20…20) & !w & 0x80…80` is not zero, and a byte equal to `c` when `w ^ c…c` has a
/// zero byte.
#[doc(hidden)]
pub fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH != 0;
    let mut words = s.chunks_exact(8);
    for chunk in &mut words {
        let w = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        if below(w, 0x20) || below(w ^ (ONES * 0x22), 1) || below(w ^ (ONES * 0x5c), 1) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Why bytes are not JSON: a short reason and where (line and column, both from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: &'static str,
    line: usize,
    column: usize,
}

impl Error {
    /// The reason, e.g. `trailing comma`.
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The line of the offending byte (from 1).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column (byte) of the offending byte in its line (from 1).
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Why bytes are not an acceptable object for [`parse_unique_object`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// Not UTF-8 or not JSON.
    Syntax(Error),
    /// JSON, but not an object.
    NotObject,
    /// An object with a repeated top-level member name.
    Duplicate,
}

const EOF_VALUE: &str = "EOF while parsing a value";
const EOF_LIST: &str = "EOF while parsing a list";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_STRING: &str = "EOF while parsing a string";
const EXPECTED_VALUE: &str = "expected value";
const EXPECTED_IDENT: &str = "expected ident";
const EXPECTED_COLON: &str = "expected `:`";
const EXPECTED_LIST: &str = "expected `,` or `]`";
const EXPECTED_OBJECT: &str = "expected `,` or `}`";
const KEY_NOT_STRING: &str = "key must be a string";
const TRAILING_COMMA: &str = "trailing comma";
const TRAILING: &str = "trailing characters";
const INVALID_NUMBER: &str = "invalid number";
const OUT_OF_RANGE: &str = "number out of range";
const INVALID_ESCAPE: &str = "invalid escape";
const INVALID_UNICODE: &str = "invalid unicode code point";
const CONTROL: &str = "control character (\\u0000-\\u001F) found while parsing a string";
const LONE_SURROGATE: &str = "lone leading surrogate in hex escape";
const HEX_END: &str = "unexpected end of hex escape";
const TOO_DEEP: &str = "recursion limit exceeded";

/// The bytes of `w` (little-endian) that end a plain run in a string: `"`, `\` and bytes below
/// 0x20, each marked by its high bit. A byte of `x` is zero exactly when `(x - 0x01…) & !x &
/// 0x80…` marks it, and below `n` (n ≤ 0x80) when `(x - n…) & !x & 0x80…` does; a borrow only
/// runs upwards from a marked byte, so the lowest mark is always a true one.
const fn stops(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * b'"' as u64);
    let backslash = w ^ (ONES * b'\\' as u64);
    let found = (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (w.wrapping_sub(ONES * 0x20) & !w);
    found & HIGH
}

/// Parse `bytes` as one JSON value: nothing but whitespace may follow it.
///
/// # Errors
/// Where and why the bytes are not JSON.
pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
    let mut p = Parser::new(bytes);
    let value = p.value()?;
    p.end()?;
    Ok(value)
}

/// Parse `bytes` as one JSON object whose top-level member names are unique (RFC 7515 §4 and
/// RFC 8725 §3.1 ask a verifier to refuse or consistently handle duplicates; first-wins parsers
/// have been exploited). Nested objects keep the last of a repeated member, as [`parse`] does.
///
/// The error is the one `serde_json` gave when reading into a map that refuses duplicates: a
/// document that starts as an array, string, number or literal (once that scalar is read) is
/// [`ObjectError::NotObject`] whatever follows; an object is [`ObjectError::Duplicate`] as soon
/// as a member repeats an earlier one, even when a syntax error comes later.
///
/// # Errors
/// [`ObjectError`].
pub fn parse_unique_object(bytes: &[u8]) -> Result<Object, ObjectError> {
    let mut p = Parser::new(bytes);
    p.skip_whitespace();
    match p.peek() {
        Some(b'{') => {
            p.enter().map_err(ObjectError::Syntax)?;
            p.pos += 1;
            let mut members = Members::new(16);
            let read = p.members(&mut members).and_then(|()| p.end());
            // The members read before any error: a repeated name among them was refused when
            // its value had been read, before anything after it.
            let (object, repeated) = members.finish();
            if repeated {
                return Err(ObjectError::Duplicate);
            }
            read.map_err(ObjectError::Syntax)?;
            Ok(object)
        }
        Some(b'[') => Err(ObjectError::NotObject),
        Some(_) => {
            p.value().map_err(ObjectError::Syntax)?;
            Err(ObjectError::NotObject)
        }
        None => Err(ObjectError::Syntax(p.error(EOF_VALUE))),
    }
}

/// An object's members as they are read. The first [`Members::IN_ORDER`] (all of a token's
/// payload) go straight to their place in name order, a repeated name replacing the value it
/// had: no sort and no allocation beyond the map's own. Any further ones are kept in document
/// order and sorted in with the rest once, at the end, so a huge object costs O(n log n).
struct Members {
    map: Object,
    rest: Vec<(String, Value)>,
    /// Whether a name came twice.
    repeated: bool,
}

impl Members {
    const IN_ORDER: usize = 32;

    /// Room for `capacity` members at once: 16 for a token's payload; 0 for nested objects,
    /// so that a document of many empty objects allocates nothing for them.
    fn new(capacity: usize) -> Members {
        Members {
            map: SortedMap::with_capacity(capacity),
            rest: Vec::new(),
            repeated: false,
        }
    }

    fn push(&mut self, name: String, value: Value) {
        if self.rest.is_empty() && self.map.len() < Members::IN_ORDER {
            self.repeated |= self.map.insert(name, value).is_some();
        } else {
            self.rest.push((name, value));
        }
    }

    /// The object, a later member with a repeated name winning, and whether a name repeated.
    fn finish(self) -> (Object, bool) {
        let Members {
            map,
            rest,
            mut repeated,
        } = self;
        if rest.is_empty() {
            return (map, repeated);
        }
        // Every member in the map came before every one in `rest`.
        let mut entries: Vec<(String, Value)> = map.into_iter().collect();
        entries.extend(rest);
        let map = SortedMap::from_entries(entries, |kept, later| {
            repeated = true;
            *kept = later;
        });
        (map, repeated)
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    /// `bytes` when they are all UTF-8 (checked once); otherwise each string is checked.
    text: Option<&'a str>,
    pos: usize,
    /// Arrays and objects that may still open; 0 is an error (`serde_json`'s counter: 127
    /// levels of nesting pass, 128 do not).
    remaining_depth: u8,
}

/// The powers of ten an `f64` holds (`serde_json`'s table).
static POW10: [f64; 309] = [
    1e000, 1e001, 1e002, 1e003, 1e004, 1e005, 1e006, 1e007, 1e008, 1e009, 1e010, 1e011, 1e012,
    1e013, 1e014, 1e015, 1e016, 1e017, 1e018, 1e019, 1e020, 1e021, 1e022, 1e023, 1e024, 1e025,
    1e026, 1e027, 1e028, 1e029, 1e030, 1e031, 1e032, 1e033, 1e034, 1e035, 1e036, 1e037, 1e038,
    1e039, 1e040, 1e041, 1e042, 1e043, 1e044, 1e045, 1e046, 1e047, 1e048, 1e049, 1e050, 1e051,
    1e052, 1e053, 1e054, 1e055, 1e056, 1e057, 1e058, 1e059, 1e060, 1e061, 1e062, 1e063, 1e064,
    1e065, 1e066, 1e067, 1e068, 1e069, 1e070, 1e071, 1e072, 1e073, 1e074, 1e075, 1e076, 1e077,
    1e078, 1e079, 1e080, 1e081, 1e082, 1e083, 1e084, 1e085, 1e086, 1e087, 1e088, 1e089, 1e090,
    1e091, 1e092, 1e093, 1e094, 1e095, 1e096, 1e097, 1e098, 1e099, 1e100, 1e101, 1e102, 1e103,
    1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116,
    1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129,
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142,
    1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155,
    1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168,
    1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181,
    1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194,
    1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207,
    1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220,
    1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233,
    1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246,
    1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259,
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272,
    1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285,
    1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298,
    1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Parser<'a> {
        Parser {
            bytes,
            text: core::str::from_utf8(bytes).ok(),
            pos: 0,
            remaining_depth: 128,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    #[cold]
    fn error(&self, message: &'static str) -> Error {
        let before = self.bytes.get(..self.pos).unwrap_or(self.bytes);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Error {
            message,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before.len() - line_start,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// After the value: only whitespace.
    fn end(&mut self) -> Result<(), Error> {
        self.skip_whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error(TRAILING)),
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.remaining_depth = self.remaining_depth.saturating_sub(1);
        if self.remaining_depth == 0 {
            return Err(self.error(TOO_DEEP));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.remaining_depth = self.remaining_depth.saturating_add(1);
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error(EOF_VALUE)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let items = self.array()?;
                self.leave();
                Ok(Value::Array(items))
            }
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let mut members = Members::new(0);
                self.members(&mut members)?;
                self.leave();
                Ok(Value::Object(members.finish().0))
            }
            Some(_) => Err(self.error(EXPECTED_VALUE)),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, Error> {
        for &want in word {
            match self.peek() {
                None => return Err(self.error(EOF_VALUE)),
                Some(b) if b != want => return Err(self.error(EXPECTED_IDENT)),
                Some(_) => self.pos += 1,
            }
        }
        Ok(value)
    }

    /// After `[`, through `]`.
    fn array(&mut self) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.next() {
                Some(b',') => {
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        return Err(self.error(TRAILING_COMMA));
                    }
                }
                Some(b']') => return Ok(items),
                None => return Err(self.error(EOF_LIST)),
                Some(_) => return Err(self.error(EXPECTED_LIST)),
            }
        }
    }

    /// After `{`, through `}`: the members into `out` (which keeps those read before an error).
    fn members(&mut self, out: &mut Members) -> Result<(), Error> {
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let name = match self.next() {
                Some(b'"') => self.string()?,
                None => return Err(self.error(EOF_OBJECT)),
                Some(_) => return Err(self.error(KEY_NOT_STRING)),
            };
            self.skip_whitespace();
            match self.next() {
                Some(b':') => {}
                None => return Err(self.error(EOF_OBJECT)),
                Some(_) => return Err(self.error(EXPECTED_COLON)),
            }
            let value = self.value()?;
            out.push(name, value);
            self.skip_whitespace();
            match self.next() {
                Some(b',') => {
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b'}') => return Err(self.error(TRAILING_COMMA)),
                        None => return Err(self.error(EOF_VALUE)),
                        Some(_) => {}
                    }
                }
                Some(b'}') => return Ok(()),
                None => return Err(self.error(EOF_OBJECT)),
                Some(_) => return Err(self.error(EXPECTED_OBJECT)),
            }
        }
    }

    /// After the opening quote, through the closing one.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        // Most strings have no escape: checked and copied in one piece.
        loop {
            self.skip_plain();
            match self.peek() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => {
                    // Both ends are ASCII quotes, so in valid text they are char boundaries.
                    let s = match self.text.and_then(|t| t.get(start..self.pos)) {
                        Some(s) => s,
                        None => {
                            let raw = self.bytes.get(start..self.pos).unwrap_or(&[]);
                            core::str::from_utf8(raw).map_err(|_| self.error(INVALID_UNICODE))?
                        }
                    };
                    self.pos += 1;
                    return Ok(String::from(s));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(self.error(CONTROL)),
                Some(_) => self.pos += 1,
            }
        }
        let mut buf = self.bytes.get(start..self.pos).unwrap_or(&[]).to_vec();
        loop {
            match self.next() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => {
                    return String::from_utf8(buf).map_err(|_| self.error(INVALID_UNICODE));
                }
                Some(b'\\') => self.escape(&mut buf)?,
                Some(0..=0x1f) => return Err(self.error(CONTROL)),
                Some(b) => buf.push(b),
            }
        }
    }

    /// Past bytes eight at a time up to the first that ends or escapes a string or is a control
    /// character; the byte loop in [`Parser::string`] reads the last few bytes of the input.
    fn skip_plain(&mut self) {
        while let Some(&[a, b, c, d, e, f, g, h]) = self.bytes.get(self.pos..self.pos + 8) {
            let stops = stops(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
            if stops != 0 {
                self.pos += (stops.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
    }

    /// After a backslash.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let byte = match self.next() {
            None => return Err(self.error(EOF_STRING)),
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let c = self.unicode_escape()?;
                buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            Some(_) => return Err(self.error(INVALID_ESCAPE)),
        };
        buf.push(byte);
        Ok(())
    }

    /// After `\u`: one character, a surrogate pair combined.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let n = self.hex4()?;
        if (0xDC00..=0xDFFF).contains(&n) {
            return Err(self.error(LONE_SURROGATE));
        }
        if !(0xD800..=0xDBFF).contains(&n) {
            return char::from_u32(n).ok_or_else(|| self.error(INVALID_UNICODE));
        }
        for want in [b'\\', b'u'] {
            match self.next() {
                None => return Err(self.error(EOF_STRING)),
                Some(b) if b != want => return Err(self.error(HEX_END)),
                Some(_) => {}
            }
        }
        let low = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return Err(self.error(LONE_SURROGATE));
        }
        let c = (((n - 0xD800) << 10) | (low - 0xDC00)) + 0x1_0000;
        char::from_u32(c).ok_or_else(|| self.error(INVALID_UNICODE))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            self.pos = self.bytes.len();
            return Err(self.error(EOF_STRING));
        };
        let mut n = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error(INVALID_ESCAPE)),
            };
            n = n * 16 + u32::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    // Numbers, step by step as `serde_json` reads them (without its `float_roundtrip` feature),
    // so that every number has the value it had.

    fn number(&mut self) -> Result<Number, Error> {
        let positive = if self.peek() == Some(b'-') {
            self.pos += 1;
            false
        } else {
            true
        };
        let n = match self.next() {
            None => return Err(self.error(EOF_VALUE)),
            Some(b'0') => {
                // One leading zero only.
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error(INVALID_NUMBER));
                }
                self.after_integer(positive, 0)?
            }
            Some(c @ b'1'..=b'9') => {
                let mut significand = u64::from(c - b'0');
                loop {
                    match self.peek() {
                        Some(c @ b'0'..=b'9') => match grow(significand, c) {
                            Some(s) => {
                                self.pos += 1;
                                significand = s;
                            }
                            None => break N::Float(self.long_integer(positive, significand)?),
                        },
                        _ => break self.after_integer(positive, significand)?,
                    }
                }
            }
            Some(_) => return Err(self.error(INVALID_NUMBER)),
        };
        Ok(Number(n))
    }

    fn after_integer(&mut self, positive: bool, significand: u64) -> Result<N, Error> {
        Ok(match self.peek() {
            Some(b'.') => N::Float(self.decimal(positive, significand, 0)?),
            Some(b'e' | b'E') => N::Float(self.exponent(positive, significand, 0)?),
            _ if positive => N::PosInt(significand),
            _ => {
                let neg = (significand as i64).wrapping_neg();
                // Below i64::MIN, and `-0`, are floats.
                if neg >= 0 {
                    N::Float(-(significand as f64))
                } else {
                    N::NegInt(neg)
                }
            }
        })
    }

    /// At `.`.
    fn decimal(
        &mut self,
        positive: bool,
        mut significand: u64,
        exponent_before_point: i32,
    ) -> Result<f64, Error> {
        self.pos += 1;
        let mut exponent_after_point: i32 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            match grow(significand, c) {
                Some(s) => {
                    self.pos += 1;
                    significand = s;
                    exponent_after_point = exponent_after_point.saturating_sub(1);
                }
                None => {
                    let exponent = exponent_before_point.saturating_add(exponent_after_point);
                    return self.decimal_overflow(positive, significand, exponent);
                }
            }
        }
        // At least one digit after the point.
        if exponent_after_point == 0 {
            return Err(self.error(match self.peek() {
                Some(_) => INVALID_NUMBER,
                None => EOF_VALUE,
            }));
        }
        let exponent = exponent_before_point.saturating_add(exponent_after_point);
        match self.peek() {
            Some(b'e' | b'E') => self.exponent(positive, significand, exponent),
            _ => self.float_of(positive, significand, exponent),
        }
    }

    /// At `e` or `E`.
    fn exponent(&mut self, positive: bool, significand: u64, start: i32) -> Result<f64, Error> {
        self.pos += 1;
        let positive_exponent = match self.peek() {
            Some(b'+') => {
                self.pos += 1;
                true
            }
            Some(b'-') => {
                self.pos += 1;
                false
            }
            _ => true,
        };
        let mut exponent = match self.next() {
            Some(c @ b'0'..=b'9') => i32::from(c - b'0'),
            Some(_) => return Err(self.error(INVALID_NUMBER)),
            None => return Err(self.error(EOF_VALUE)),
        };
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.pos += 1;
            match exponent
                .checked_mul(10)
                .and_then(|e| e.checked_add(i32::from(c - b'0')))
            {
                Some(e) => exponent = e,
                None => {
                    return self.exponent_overflow(positive, significand == 0, positive_exponent)
                }
            }
        }
        let exponent = if positive_exponent {
            start.saturating_add(exponent)
        } else {
            start.saturating_sub(exponent)
        };
        self.float_of(positive, significand, exponent)
    }

    /// An exponent beyond `i32`: zero, or out of range.
    #[cold]
    fn exponent_overflow(
        &mut self,
        positive: bool,
        zero_significand: bool,
        positive_exponent: bool,
    ) -> Result<f64, Error> {
        if !zero_significand && positive_exponent {
            return Err(self.error(OUT_OF_RANGE));
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(if positive { 0.0 } else { -0.0 })
    }

    /// Fraction digits beyond what a `u64` holds are read and ignored.
    #[cold]
    fn decimal_overflow(
        &mut self,
        positive: bool,
        significand: u64,
        exponent: i32,
    ) -> Result<f64, Error> {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'e' | b'E') => self.exponent(positive, significand, exponent),
            _ => self.float_of(positive, significand, exponent),
        }
    }

    /// Integer digits beyond what a `u64` holds: each one a power of ten.
    #[cold]
    fn long_integer(&mut self, positive: bool, significand: u64) -> Result<f64, Error> {
        let mut exponent: i32 = 0;
        loop {
            match self.peek() {
                Some(b'0'..=b'9') => {
                    self.pos += 1;
                    exponent = exponent.saturating_add(1);
                }
                Some(b'.') => return self.decimal(positive, significand, exponent),
                Some(b'e' | b'E') => return self.exponent(positive, significand, exponent),
                _ => return self.float_of(positive, significand, exponent),
            }
        }
    }

    fn float_of(&self, positive: bool, significand: u64, mut exponent: i32) -> Result<f64, Error> {
        let mut f = significand as f64;
        loop {
            match POW10.get(exponent.unsigned_abs() as usize) {
                Some(&pow) => {
                    if exponent >= 0 {
                        f *= pow;
                        if f.is_infinite() {
                            return Err(self.error(OUT_OF_RANGE));
                        }
                    } else {
                        f /= pow;
                    }
                    break;
                }
                None => {
                    if f == 0.0 {
                        break;
                    }
                    if exponent >= 0 {
                        return Err(self.error(OUT_OF_RANGE));
                    }
                    f /= 1e308;
                    exponent += 308;
                }
            }
        }
        Ok(if positive { f } else { -f })
    }
}

/// `significand * 10 + digit`, unless that overflows a `u64`.
fn grow(significand: u64, digit: u8) -> Option<u64> {
    significand
        .checked_mul(10)
        .and_then(|s| s.checked_add(u64::from(digit - b'0')))
}

/// A `serde_json` value as a [`Value`], number kinds kept (the tests' reference documents).
#[cfg(test)]
fn from_serde(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(if let Some(u) = n.as_u64() {
            Number::from(u)
        } else if let Some(i) = n.as_i64() {
            Number::from(i)
        } else {
            Number(N::Float(n.as_f64().unwrap_or(0.0)))
        }),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use proptest::prelude::*;

    fn ok(text: &str) -> Value {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn refused(text: &[u8]) -> Error {
        match parse(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => e,
        }
    }

    /// What `serde_json` makes of `bytes`, as a [`Value`], or `None` when it refuses them.
    fn serde(bytes: &[u8]) -> Option<serde_json::Value> {
        serde_json::from_slice::<serde_json::Value>(bytes).ok()
    }

    /// Our parser and `serde_json` agree on `bytes`: both refuse them, or both give the same
    /// value (number kinds, float bits and member order included).
    fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
        let ours = parse(bytes);
        let theirs = serde(bytes);
        match (&ours, &theirs) {
            (Err(_), None) => {}
            (Ok(v), Some(t)) => {
                prop_assert_eq!(v, &from_serde(t), "{:?}", bytes);
                prop_assert_eq!(
                    v.to_json(),
                    serde_json::to_string(t).unwrap(),
                    "{:?}",
                    bytes
                );
            }
            _ => prop_assert!(
                false,
                "{:?}: ours {:?}, serde_json {:?}",
                bytes,
                ours,
                theirs
            ),
        }
        Ok(())
    }

    #[test]
    fn values_and_their_text() {
        let v = ok(r#" {"b": [1, -2, 1.5, true, null, "x"], "a": {"z": {}, "y": []}} "#);
        assert_eq!(
            v.to_json(),
            r#"{"a":{"y":[],"z":{}},"b":[1,-2,1.5,true,null,"x"]}"#
        );
        assert_eq!(v["b"][0].as_u64(), Some(1));
        assert_eq!(v["b"][1].as_i64(), Some(-2));
        assert_eq!(v["b"][1].as_u64(), None);
        assert_eq!(v["b"][2].as_f64(), Some(1.5));
        assert_eq!(v["b"][2].as_u64(), None);
        assert_eq!(v["b"][3], true);
        assert!(v["b"][4].is_null());
        assert_eq!(v["b"][5], "x");
        assert!(v["missing"].is_null() && v["b"][99].is_null() && v["b"]["x"].is_null());
        assert_eq!(
            v.get("a").and_then(Value::as_object).map(Object::len),
            Some(2)
        );
        assert_eq!(v.to_string(), v.to_json());
    }

    #[test]
    fn numbers_keep_their_kind_as_serde_json_did() {
        let n = |t: &str| ok(t);
        assert_eq!(n("1"), Value::from(1u64));
        assert_ne!(n("1"), n("1.0"), "1 and 1.0 are different numbers");
        assert_eq!(n("1.0").as_f64(), Some(1.0));
        assert_eq!(n("1.0").as_u64(), None);
        assert_eq!(n("1e3").as_u64(), None);
        assert_eq!(n("1e3").as_f64(), Some(1000.0));
        assert_eq!(n("1e3").to_json(), "1000.0");
        assert_eq!(n("-0").to_json(), "-0.0");
        assert!(n("-0").is_f64() && n("-0").as_i64().is_none());
        assert_eq!(n("0").to_json(), "0");
        assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
        assert!(n("18446744073709551616").is_f64());
        assert_eq!(n("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert!(n("-9223372036854775809").is_f64());
        assert_eq!(n("1700000000").as_f64(), Some(1.7e9));
        assert_eq!(n("1.7e9").to_json(), "1700000000.0");
        assert_eq!(n("0.1").to_json(), "0.1");
        assert_eq!(n("1e-7").to_json(), "1e-7");
        assert_eq!(n("1e21").to_json(), "1e+21");
        assert_eq!(
            n("123456789012345678901234567890").to_json(),
            "1.2345678901234568e+29"
        );
        assert_eq!(n("1.7976931348623157e308").as_f64(), Some(f64::MAX));
        assert_eq!(n("1e-400").to_json(), "0.0");
        assert_eq!(n("-1e-400").to_json(), "-0.0");
        assert_eq!(n("0e999999999999").as_f64(), Some(0.0));
        assert_eq!(n("1e-999999999999").as_f64(), Some(0.0));
        for big in ["1e309", "-1e309", "1e999999999999", "2e308", "1.8e308"] {
            assert_eq!(refused(big.as_bytes()).message(), OUT_OF_RANGE, "{big}");
        }
        assert_eq!(Value::from(f64::NAN), Value::Null);
        assert_eq!(Value::from(-3i32).to_json(), "-3");
        assert_eq!(
            Value::from(3i32).as_u64(),
            Some(3),
            "non-negative signed: u64"
        );
    }

    #[test]
    fn the_grammar_is_strict() {
        for bad in [
            "",
            " ",
            "01",
            "-01",
            "+1",
            ".5",
            "5.",
            "-",
            "1e",
            "1e+",
            "1.e5",
            "0x10",
            "NaN",
            "Infinity",
            "-Infinity",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1,}",
            "{,}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{a:1}",
            "{'a':1}",
            "['a']",
            "[1]]",
            "{}}",
            "nul",
            "nulll",
            "True",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "/*c*/1",
            "1//c",
            "[1]\u{0}",
            "\u{a0}1",
            "1\u{b}",
            "\u{c}1",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} was accepted");
            assert!(
                serde(bad.as_bytes()).is_none(),
                "{bad:?}: serde_json accepts it"
            );
        }
        for good in [
            "0",
            "-0",
            "0.0",
            "1E5",
            "1e+5",
            "1e-5",
            "-1.5E-05",
            " \t\r\n[ ] ",
            "\"\"",
        ] {
            ok(good);
        }
    }

    #[test]
    fn strings_escapes_and_surrogates() {
        assert_eq!(ok(r#""\ud83d\ude00""#), "😀");
        assert_eq!(ok(r#""\u00e9\n\t\"\\\/\b\f\r""#), "é\n\t\"\\/\u{8}\u{c}\r");
        assert_eq!(ok(r#""\u0000""#), "\u{0}");
        assert_eq!(ok("\"é☃𝄞\""), "é☃𝄞");
        for lone in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800""#,
            r#""\ud800x""#,
            r#""\ud800\n""#,
            r#""\ude00\ud83d""#,
        ] {
            assert!(parse(lone.as_bytes()).is_err(), "{lone}");
        }
        assert_eq!(refused(b"\"a\x00b\"").message(), CONTROL);
        assert_eq!(refused(b"\"a\x1fb\"").message(), CONTROL);
        ok("\"a\u{7f}b\"");
        assert_eq!(refused(b"\"\xff\"").message(), INVALID_UNICODE);
        assert_eq!(refused(b"\"\xc3\"").message(), INVALID_UNICODE);
        assert_eq!(
            refused(b"\"\xed\xa0\x80\"").message(),
            INVALID_UNICODE,
            "UTF-8 surrogate"
        );
        assert_eq!(refused(b"\"\\u00e9\xc3\"").message(), INVALID_UNICODE);
        assert_eq!(refused(b"\xef\xbb\xbf{}").message(), EXPECTED_VALUE, "BOM");
        assert_eq!(refused(b"{} x").message(), TRAILING);
        assert_eq!(refused(b"{}\x00").message(), TRAILING);
    }

    #[test]
    fn nesting_stops_at_serde_jsons_limit_without_exhausting_the_stack() {
        // `levels` arrays and/or objects around a 0.
        let nested = |levels: usize, open: &str, close: &str| {
            let per = open.matches(['[', '{']).count();
            let n = levels / per;
            format!("{}0{}", open.repeat(n), close.repeat(n)).into_bytes()
        };
        for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")] {
            for levels in [2, 126, 127, 128, 129, 200, 10_000] {
                let text = nested(levels, open, close);
                agree(&text).unwrap();
                agree_unique(&text).unwrap();
                assert_eq!(parse(&text).is_ok(), levels <= 127, "{levels} × {open}");
            }
        }
        assert_eq!(refused(&nested(128, "[", "]")).message(), TOO_DEEP);
        assert_eq!(
            refused(&"[".repeat(100_000).into_bytes()).message(),
            TOO_DEEP
        );
        assert_eq!(
            refused(&"{\"a\":".repeat(100_000).into_bytes()).message(),
            TOO_DEEP
        );
        assert_eq!(
            parse_unique_object(&format!("{{\"a\":{}", "[".repeat(100_000)).into_bytes()),
            Err(ObjectError::Syntax(Error {
                message: TOO_DEEP,
                line: 1,
                column: 132
            }))
        );
    }

    #[test]
    fn a_repeated_member_keeps_its_last_value_except_at_the_top_of_a_unique_object() {
        let v = ok(r#"{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}"#);
        assert_eq!(v.to_json(), r#"{"a":3,"b":{"x":2}}"#);
        assert_eq!(
            v,
            from_serde(&serde(br#"{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}"#).unwrap())
        );
        let unique = |t: &str| parse_unique_object(t.as_bytes());
        assert_eq!(unique(r#"{"a":1,"a":2}"#), Err(ObjectError::Duplicate));
        assert_eq!(
            unique(r#"{"b":{"x":1,"x":2}}"#).map(|o| Value::Object(o).to_json()),
            Ok(String::from(r#"{"b":{"x":2}}"#))
        );
        // The repeat is seen as soon as the second value is read: before later syntax errors.
        assert_eq!(unique(r#"{"a":1,"a":2,}"#), Err(ObjectError::Duplicate));
        assert_eq!(unique(r#"{"a":1,"a":2} x"#), Err(ObjectError::Duplicate));
        assert!(matches!(
            unique(r#"{"a":1,"b":2,}"#),
            Err(ObjectError::Syntax(_))
        ));
        assert!(matches!(
            unique(r#"{"a":1,"a":[}"#),
            Err(ObjectError::Syntax(_))
        ));
        // Anything else is not an object once its first value is read.
        assert_eq!(unique("[1,"), Err(ObjectError::NotObject));
        assert_eq!(unique("[\"\u{0}"), Err(ObjectError::NotObject));
        assert_eq!(unique("1x"), Err(ObjectError::NotObject));
        assert_eq!(unique("\"x\" y"), Err(ObjectError::NotObject));
        assert_eq!(unique("null"), Err(ObjectError::NotObject));
        assert!(matches!(unique("nul"), Err(ObjectError::Syntax(_))));
        assert!(matches!(unique("01"), Err(ObjectError::Syntax(_))));
        assert!(matches!(unique("\"\\x\""), Err(ObjectError::Syntax(_))));
        assert!(matches!(unique(""), Err(ObjectError::Syntax(_))));
    }

    #[test]
    fn errors_say_where() {
        let e = refused(b"{\n  \"a\": tru\n}");
        assert_eq!(e.to_string(), "expected ident at line 2 column 11");
        assert_eq!(
            refused(b"[1,]").to_string(),
            "trailing comma at line 1 column 4"
        );
        assert_eq!(
            refused(b"").to_string(),
            "EOF while parsing a value at line 1 column 1"
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let odd = "tab\there \"quoted\" back\\slash \u{1} \u{1f} nl\n cr\r \u{8}\u{c} \u{7f} é ☃ 𝄞 </script>";
        let mut out = String::new();
        write_str(&mut out, odd);
        assert_eq!(out, serde_json::to_string(odd).unwrap());
        for b in 0..=0x7fu8 {
            let s = String::from(char::from(b));
            let mut out = String::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn the_word_at_a_time_escape_check_agrees_with_the_byte_check() {
        let naive = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 1..=19 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', 0x80, 0xff, 0x21, 0x5d, 0x1f] {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        assert_eq!(needs_escape(&s), naive(&s), "{s:?}");
                    }
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        let cases = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            0.1,
            0.3,
            1e-5,
            1e-6,
            1.5e-7,
            123456.789,
            1e15,
            1e16,
            9007199254740993.0,
            1e21,
            1e22,
            1.7e9,
            1767268800.5,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
        ];
        for f in cases {
            let ours = Value::from(f).to_json();
            assert_eq!(ours, serde_json::to_string(&f).unwrap(), "{f:e}");
        }
    }

    /// The old parser of unique objects: `serde_json` reading into a map that refuses a repeated
    /// member, as `token::parse_object` did before this module.
    mod old {
        use alloc::string::{String, ToString};
        use core::fmt;
        use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

        type Map = serde_json::Map<String, serde_json::Value>;

        pub(super) fn parse_object(bytes: &[u8]) -> Result<Map, &'static str> {
            match serde_json::from_slice::<UniqueObject>(bytes) {
                Ok(UniqueObject(map)) => Ok(map),
                Err(e) if e.is_data() && e.to_string().starts_with(DUPLICATE) => Err("duplicate"),
                Err(e) if e.is_data() => Err("not object"),
                Err(_) => Err("syntax"),
            }
        }

        const DUPLICATE: &str = "duplicate member name";
        const NOT_OBJECT: &str = "not a JSON object";

        struct UniqueObject(Map);

        impl<'de> Deserialize<'de> for UniqueObject {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(UniqueObjectVisitor)
            }
        }

        struct UniqueObjectVisitor;

        impl<'de> Visitor<'de> for UniqueObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value: serde_json::Value = access.next_value()?;
                    if map.insert(key, value).is_some() {
                        return Err(serde::de::Error::custom(DUPLICATE));
                    }
                }
                Ok(UniqueObject(map))
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<UniqueObject, E> {
                Err(E::custom(NOT_OBJECT))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                _: A,
            ) -> Result<UniqueObject, A::Error> {
                Err(serde::de::Error::custom(NOT_OBJECT))
            }
        }
    }

    fn agree_unique(bytes: &[u8]) -> Result<(), TestCaseError> {
        let ours = parse_unique_object(bytes).map_err(|e| match e {
            ObjectError::Syntax(_) => "syntax",
            ObjectError::NotObject => "not object",
            ObjectError::Duplicate => "duplicate",
        });
        let theirs = old::parse_object(bytes);
        match (&ours, &theirs) {
            (Ok(o), Ok(t)) => prop_assert_eq!(
                Value::Object(o.clone()),
                from_serde(&serde_json::Value::Object(t.clone())),
                "{:?}",
                bytes
            ),
            (Err(a), Err(b)) => prop_assert_eq!(a, b, "{:?}", bytes),
            _ => prop_assert!(false, "{:?}: ours {:?}, old {:?}", bytes, ours, theirs),
        }
        Ok(())
    }

    /// JSON values as `serde_json` holds them: every number kind, any float, strings with any
    /// character (controls, quotes, surrogate-pair characters).
    fn serde_values() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_filter_map("finite", |bits| {
                serde_json::Number::from_f64(f64::from_bits(bits)).map(serde_json::Value::Number)
            }),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
            "[ -~\u{0}-\u{1f}é😀\"\\\\]{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                proptest::collection::vec(("[a-e\"\\\\é]{0,3}", inner), 0..8)
                    .prop_map(|m| { serde_json::Value::Object(m.into_iter().collect()) }),
            ]
        })
    }

    /// Valid JSON text with random whitespace between tokens.
    fn spaced(v: &serde_json::Value, ws: &mut impl Iterator<Item = u8>, out: &mut Vec<u8>) {
        fn space(ws: &mut impl Iterator<Item = u8>, out: &mut Vec<u8>) {
            let n = ws.next().unwrap_or(0);
            for i in 0..(n % 3) {
                out.push(b" \t\n\r"[usize::from((n >> (2 + i)) & 3)]);
            }
        }
        let space = |out: &mut Vec<u8>, ws: &mut _| space(ws, out);
        space(out, ws);
        match v {
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    spaced(item, ws, out);
                }
                space(out, ws);
                out.push(b']');
            }
            serde_json::Value::Object(m) => {
                out.push(b'{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    space(out, ws);
                    out.extend_from_slice(serde_json::to_string(k).unwrap().as_bytes());
                    space(out, ws);
                    out.push(b':');
                    spaced(item, ws, out);
                }
                space(out, ws);
                out.push(b'}');
            }
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
        space(out, ws);
    }

    /// Pieces JSON-ish bytes are made of: tokens, broken tokens, escapes, odd bytes.
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b"{"[..]),
            Just(&b"}"[..]),
            Just(&b"["[..]),
            Just(&b"]"[..]),
            Just(&b","[..]),
            Just(&b":"[..]),
            Just(&b"\""[..]),
            Just(&b"\"a\""[..]),
            Just(&b"\"a\":"[..]),
            Just(&b"\"b\":1"[..]),
            Just(&b" "[..]),
            Just(&b"\n"[..]),
            Just(&b"\x0b"[..]),
            Just(&b"\x0c"[..]),
            Just(&b"\\"[..]),
            Just(&b"\\u"[..]),
            Just(&b"\\ud83d"[..]),
            Just(&b"\\ude00"[..]),
            Just(&b"\\u00e9"[..]),
            Just(&b"\\n"[..]),
            Just(&b"\\/"[..]),
            Just(&b"\\x"[..]),
            Just(&b"null"[..]),
            Just(&b"nul"[..]),
            Just(&b"true"[..]),
            Just(&b"false"[..]),
            Just(&b"-"[..]),
            Just(&b"+"[..]),
            Just(&b"0"[..]),
            Just(&b"1"[..]),
            Just(&b"9"[..]),
            Just(&b"."[..]),
            Just(&b"e"[..]),
            Just(&b"E"[..]),
            Just(&b"e-"[..]),
            Just(&b"18446744073709551616"[..]),
            Just(&b"9223372036854775808"[..]),
            Just(&b"e308"[..]),
            Just(&b"e400"[..]),
            Just(&b"\x00"[..]),
            Just(&b"\x1f"[..]),
            Just(&b"\x7f"[..]),
            Just(&b"\xff"[..]),
            Just(&b"\xc3"[..]),
            Just(&b"\xc3\xa9"[..]),
            Just(&b"\xef\xbb\xbf"[..]),
            Just(&b"\xed\xa0\x80"[..]),
            Just(&b"/*"[..]),
            Just(&b"'"[..]),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    /// Number-shaped text: sign, digits, fraction, exponent, each possibly broken.
    fn numbers() -> impl Strategy<Value = String> {
        (
            "-?",
            prop_oneof!["0", "[1-9][0-9]{0,24}", "0[0-9]", "", "[0-9]{30,330}"],
            prop_oneof!["", "\\.[0-9]{1,25}", "\\.", "\\.[0-9]{300,400}"],
            prop_oneof![
                "",
                "[eE][+-]?[0-9]{1,3}",
                "[eE][+-]?",
                "[eE][+-]?[0-9]{8,12}"
            ],
            prop_oneof!["", " ", "x", ",", "]"],
        )
            .prop_map(|(s, i, f, e, t)| format!("{s}{i}{f}{e}{t}"))
    }

    fn is_stop(b: u8) -> bool {
        b == b'"' || b == b'\\' || b < 0x20
    }

    /// The index of the first stop byte among eight, by the mask's lowest mark.
    fn first_stop(w: u64) -> Option<u32> {
        let m = stops(w);
        (m != 0).then(|| m.trailing_zeros() / 8)
    }

    #[test]
    fn the_eight_byte_scan_finds_the_first_byte_that_ends_a_plain_run() {
        for at in 0..8 {
            for b in 0..=255u8 {
                for fill in [b'a', 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa0, 0xff] {
                    // A stop after the byte too, so a false mark above a true one would show.
                    for later in [fill, b'"', 0x00] {
                        let mut bytes = [fill; 8];
                        bytes[at] = b;
                        if at < 7 {
                            bytes[7] = later;
                        }
                        let want = bytes.iter().position(|&x| is_stop(x)).map(|i| i as u32);
                        assert_eq!(first_stop(u64::from_le_bytes(bytes)), want, "{bytes:?}");
                    }
                }
            }
        }
    }

    /// Only a token's payload (the top of `parse_unique_object`) gets room for 16 members at
    /// once: a document of many small objects must not cost 16 slots for each of them.
    #[test]
    fn nested_objects_take_only_the_room_they_use() {
        let doc = parse(br#"[{}, {"a": 1}, {"b": {}}]"#).unwrap();
        let Value::Array(items) = &doc else {
            panic!("not an array")
        };
        let capacities: Vec<usize> = items
            .iter()
            .map(|v| v.as_object().unwrap().capacity())
            .collect();
        assert_eq!(capacities[0], 0);
        assert!(capacities[1] <= 4 && capacities[2] <= 4, "{capacities:?}");
        let top = parse_unique_object(br#"{"a": {}}"#).unwrap();
        assert_eq!(top.get("a").unwrap().as_object().unwrap().capacity(), 0);
    }

    #[test]
    fn long_strings_with_a_stop_at_every_offset_read_as_serde_json_reads_them() {
        let stops: [&[u8]; 10] = [
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            b"\"",
            b"\xff",
            b"\xc3",
        ];
        for len in 0..40 {
            for stop in stops {
                let body = [b"a".repeat(len).as_slice(), stop, &b"b".repeat(len % 9)].concat();
                agree(&[b"\"".as_slice(), &body, b"\""].concat()).unwrap();
                agree_unique(&[b"{\"k".as_slice(), &body, b"\":\"", &body, b"\"}"].concat())
                    .unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_eight_byte_scan_agrees_with_the_byte_rule(w in any::<u64>()) {
            let want = w.to_le_bytes().iter().position(|&x| is_stop(x)).map(|i| i as u32);
            prop_assert_eq!(first_stop(w), want);
        }

        #[test]
        fn valid_documents_read_as_serde_json_reads_them(v in serde_values(), ws in any::<Vec<u8>>()) {
            let mut text = Vec::new();
            spaced(&v, &mut ws.into_iter().cycle(), &mut text);
            let ours = parse(&text);
            prop_assert!(ours.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&text), ours);
            agree(&text)?;
            agree_unique(&text)?;
        }

        #[test]
        fn the_writer_writes_serde_jsons_bytes(v in serde_values()) {
            prop_assert_eq!(from_serde(&v).to_json(), serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn broken_documents_are_refused_as_serde_json_refuses_them(
            v in serde_values(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut text = serde_json::to_vec(&v).unwrap();
            for (at, byte, op) in edits {
                let at = if text.is_empty() { 0 } else { at % text.len() };
                match op {
                    0 => text.insert(at, byte),
                    1 if !text.is_empty() => { text.remove(at); }
                    _ if !text.is_empty() => text[at] = byte,
                    _ => text.push(byte),
                }
            }
            agree(&text)?;
            agree_unique(&text)?;
        }

        #[test]
        fn json_ish_bytes_are_judged_as_serde_json_judges_them(bytes in pieces()) {
            agree(&bytes)?;
            agree_unique(&bytes)?;
            let wrapped = [b"{\"k\":[".as_slice(), &bytes, b"]}"].concat();
            agree(&wrapped)?;
            agree_unique(&wrapped)?;
        }

        #[test]
        fn numbers_read_as_serde_json_reads_them(n in numbers()) {
            agree(n.as_bytes())?;
            agree(format!("[{n}]").as_bytes())?;
            agree_unique(format!("{{\"n\":{n}}}").as_bytes())?;
        }

        #[test]
        fn any_bytes_are_judged_as_serde_json_judges_them(bytes in any::<Vec<u8>>()) {
            agree(&bytes)?;
            agree_unique(&bytes)?;
        }

        #[test]
        fn strings_read_as_serde_json_reads_them(s in "(\\\\u[dD][89abAB][0-9a-fA-F]{2}|\\\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\\\u[0-9a-fA-F]{4}|\\\\[\"\\\\/bfnrtu x]|[a-z é\u{0}\u{1f}\u{7f}])*") {
            agree(format!("\"{s}\"").as_bytes())?;
            agree_unique(format!("{{\"{s}\":1}}").as_bytes())?;
        }

        #[test]
        fn members_in_any_order_and_repeated_read_as_serde_json_reads_them(
            members in proptest::prop_oneof![
                proptest::collection::vec(("[a-c]{0,2}", any::<u8>()), 0..12),
                // Past the members kept in order as they are read.
                proptest::collection::vec(("[a-f]{0,3}", any::<u8>()), 20..90),
            ],
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            agree(text.as_bytes())?;
            agree_unique(text.as_bytes())?;
            agree(format!("[{text}]").as_bytes())?;
            agree_unique(format!("{{\"x\":{text}}}").as_bytes())?;
        }
    }
}
