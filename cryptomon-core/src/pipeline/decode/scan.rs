//! One pass over a snapshot as the collector writes it, taking out what the metrics use.
//!
//! serde_json's derived decoder was about half of a full transform's CPU on the 85 MB of a day's
//! snapshots: a generic visitor per key and per value. This scanner knows the snapshot's shape
//! and checks the JSON grammar as it goes (strings, numbers, nesting). It gives up on anything
//! it does not expect: an escape in a field it keeps, a missing or repeated field, deep nesting,
//! a syntax error, a snapshot the contract refuses. It then returns `None`, and the caller
//! decodes with serde_json. That path says precisely what is wrong, and it is the reference this
//! one is tested against: where the scanner answers, serde_json gives the same samples.
//!
//! Two things make it fast. A quote's keys are recognised by comparing the text with the names
//! a quote's members have (`quote_known_keys`), not read and looked up; a quote with another key
//! is read the general way. And a number's digits are read eight at a time, its value with them
//! where it is exact (`digit_run`, `exact`), not by a second pass in `str::parse`.
//!
//! The caller has checked the text is UTF-8. What serde_json does not check in the values it
//! skips (surrogate escapes, number range) the caller checks before a fallback to it; the scanner
//! checks them itself, in every value, and gives up on a bad one.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use super::{LeanQuote, Samples, Taken, hex4, out_of_range};
use crate::model::SNAPSHOT_SCHEMA;

/// The most quotes room is made for before a snapshot's quotes are read: about twice a whole
/// market's (Binance lists about 2,000 pairs). More still fit: the room grows.
const MAX_ROOM: usize = 1 << 12;

/// Nesting deeper than this is left to serde_json, which refuses more than 128 levels.
const MAX_DEPTH: usize = 100;

/// `text`'s samples, or `None` where serde_json must decide: where the scanner gives up, and
/// where the snapshot breaks the contract (the slow path then says how).
pub(super) fn scan(text: &str) -> Option<Samples> {
    let mut s = Scanner { text, at: 0 };
    let mut schema = None;
    let mut source = None;
    let mut tick = None;
    let mut collected_at = None;
    let mut quotes = None;
    s.object(|s, key| match key {
        "schema" => set_once(&mut schema, s.plain_string()?),
        "source" => set_once(&mut source, s.token_of::<crate::model::SourceName>()?),
        "tick" => set_once(&mut tick, s.token_of::<crate::model::Tick>()?),
        "collected_at" => set_once(&mut collected_at, s.token_of()?),
        "quotes" => set_once(&mut quotes, s.quotes()?),
        _ => s.skip_value(1),
    })?;
    s.ws();
    if s.at != text.len() || schema? != SNAPSHOT_SCHEMA {
        return None;
    }
    quotes?.samples(source?, tick?, collected_at?).ok()
}

/// A byte that ends a string's plain run: its closing quote, an escape, or a control
/// character (which JSON refuses in a string).
fn special_in_string(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The length of the plain run of a string's bytes from `at`, `None` if the text ends first.
fn plain_run(bytes: &[u8], at: usize) -> Option<usize> {
    bytes[at..].iter().position(|&b| special_in_string(b))
}

/// The run of ASCII digits from `at`: its length, and `mantissa` times ten to that length plus
/// the digits' value (wrapping past 19 digits, where the caller stops using it). With `VALUE`
/// false only the length is worked out, and `mantissa` is left alone: the numbers of a quote the
/// metrics do not use (four of a quote's six) need only be checked.
///
/// Eight bytes at a time: which of them are digits and their value come from a few integer
/// operations on the eight as one `u64`, where a loop over the bytes would end on a branch that
/// a number's varying length makes the processor guess wrong about once a number.
fn digit_run<const VALUE: bool>(bytes: &[u8], at: usize, mantissa: &mut u64) -> usize {
    let mut n = 0;
    while let Some(chunk) = bytes.get(at + n..at + n + 8) {
        let chunk = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let count = if VALUE {
            let (count, value) = leading_digits(chunk);
            *mantissa = mantissa.wrapping_mul(POW10_U64[count]).wrapping_add(value);
            count
        } else {
            leading_digit_count(chunk)
        };
        n += count;
        if count < 8 {
            return n;
        }
    }
    // The text's last few bytes.
    for &b in bytes[at + n..].iter().take_while(|b| b.is_ascii_digit()) {
        if VALUE {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        n += 1;
    }
    n
}

/// Ten to the powers 0 to 8.
const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Each byte of `chunk` less '0' (a digit becomes its value 0-9; anything else becomes 10 or
/// more, or borrows from the byte after it: a borrow only reaches bytes after the first
/// non-digit, which are not used), and the top bit of each byte that is not a digit (10 or more:
/// 0x76 + 10 = 0x80; carries again only reach bytes after the first non-digit).
fn digit_values(chunk: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let values = chunk.wrapping_sub(ONES * u64::from(b'0'));
    let not_digit = (values | values.wrapping_add(ONES * 0x76)) & (ONES * 0x80);
    (values, not_digit)
}

/// How many of the eight bytes in `chunk` (the first in its low byte) are ASCII digits before
/// the first that is not.
fn leading_digit_count(chunk: u64) -> usize {
    (digit_values(chunk).1.trailing_zeros() / 8) as usize
}

/// How many of the eight bytes in `chunk` (the first in its low byte) are ASCII digits before
/// the first that is not, and the value of those digits.
fn leading_digits(chunk: u64) -> (usize, u64) {
    let (values, not_digit) = digit_values(chunk);
    let count = (not_digit.trailing_zeros() / 8) as usize;
    // The `count` digits moved to the top bytes, zeros (digit values) before them, then
    // combined pairwise: 8 digits to 4 two-digit values, to 2 four-digit ones, to one.
    let digits = values.checked_shl(64 - 8 * count as u32).unwrap_or(0);
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    let quads = (pairs & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let quads = quads
        .wrapping_add(((pairs >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)));
    (count, u64::from((quads >> 32) as u32))
}

/// The powers of ten an `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The number whose digits read as the integer `mantissa`, `fraction` of them after the point,
/// if both `mantissa` and 10^`fraction` are exact in an `f64`. One division of two exact values
/// is correctly rounded, so this is the `f64` `str::parse` gives (Clinger's fast path, which
/// the standard library's parser also takes, after reading the digits a second time). A
/// snapshot's prices have 8 to 14 digits: nearly all take this path.
fn exact(mantissa: u64, fraction: usize, negative: bool) -> Option<f64> {
    if mantissa > 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / *POW10.get(fraction)?;
    Some(if negative { -value } else { value })
}

/// A quote's members, in the order the collector writes them (that of `model::Quote`'s fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Pair,
    Price,
    Bid,
    Ask,
    Volume,
    QuoteVolume,
    High,
    Low,
    ExchangeTime,
}

impl Member {
    /// The member `key` names, `None` for a key a quote does not have.
    fn named(key: &str) -> Option<Member> {
        Some(match key {
            "pair" => Member::Pair,
            "price" => Member::Price,
            "bid" => Member::Bid,
            "ask" => Member::Ask,
            "volume_24h" => Member::Volume,
            "quote_volume_24h" => Member::QuoteVolume,
            "high_24h" => Member::High,
            "low_24h" => Member::Low,
            "exchange_time" => Member::ExchangeTime,
            _ => return None,
        })
    }

    /// The member whose key `rest` starts with (the key, its closing quote and a colon), and the
    /// length of that text. Each arm compares with a constant, which the compiler turns into a
    /// few loads and compares, not a call to `memcmp`.
    fn at_start_of(rest: &[u8]) -> Option<(Member, usize)> {
        macro_rules! key {
            ($member:expr, $text:literal) => {
                rest.starts_with($text).then_some(($member, $text.len()))
            };
        }
        match rest.get(1)? {
            b'p' => key!(Member::Pair, b"\"pair\":").or_else(|| key!(Member::Price, b"\"price\":")),
            b'b' => key!(Member::Bid, b"\"bid\":"),
            b'a' => key!(Member::Ask, b"\"ask\":"),
            b'v' => key!(Member::Volume, b"\"volume_24h\":"),
            b'q' => key!(Member::QuoteVolume, b"\"quote_volume_24h\":"),
            b'h' => key!(Member::High, b"\"high_24h\":"),
            b'l' => key!(Member::Low, b"\"low_24h\":"),
            b'e' => key!(Member::ExchangeTime, b"\"exchange_time\":"),
            _ => None,
        }
    }
}

/// A quote's members as read so far, whichever way its keys were read.
#[derive(Default)]
struct QuoteMembers<'a> {
    pair: Option<&'a str>,
    price: Option<f64>,
    volume: Option<Option<f64>>,
    /// bid, ask, quote_volume_24h, high_24h, low_24h: checked, not parsed.
    unused: [Option<Option<&'a str>>; 5],
    exchange_time: bool,
}

impl<'a> QuoteMembers<'a> {
    /// Reads the value of `member`, whose key `s` has just read; gives up on a member read
    /// before (serde_json refuses a repeated field, even `exchange_time`, whose value it
    /// ignores).
    // Inlined into both readers: left to the compiler, it stayed a call, and decoding a day's
    // snapshots took 2-3% longer (the best of 15 decodes, 165 against 161 ms).
    #[inline(always)]
    fn read(&mut self, s: &mut Scanner<'a>, member: Member) -> Option<()> {
        let unused = match member {
            Member::Pair => return set_once(&mut self.pair, s.plain_string()?),
            Member::Price => return set_once(&mut self.price, s.float()?),
            Member::Volume => return set_once(&mut self.volume, s.optional_float()?),
            Member::ExchangeTime => {
                if std::mem::replace(&mut self.exchange_time, true) {
                    return None;
                }
                return s.skip_value(2);
            }
            Member::Bid => 0,
            Member::Ask => 1,
            Member::QuoteVolume => 2,
            Member::High => 3,
            Member::Low => 4,
        };
        set_once(&mut self.unused[unused], s.optional_number()?)
    }

    /// The quote and its pair, if it had both a pair and a price.
    fn quote(self) -> Option<(&'a str, LeanQuote<'a>)> {
        let [bid, ask, quote_volume_24h, high_24h, low_24h] = self.unused.map(Option::flatten);
        let pair = self.pair?;
        let quote = LeanQuote {
            pair: Cow::Borrowed(pair),
            price: self.price?,
            volume_24h: self.volume.flatten(),
            bid,
            ask,
            quote_volume_24h,
            high_24h,
            low_24h,
            _exchange_time: None,
        };
        Some((pair, quote))
    }
}

/// Stores a field's value, giving up on a second one (serde_json refuses a duplicate field).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips white space, then takes `byte`.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Skips white space, then takes `byte` if it is next.
    fn eat_if(&mut self, byte: u8) -> bool {
        self.ws();
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    /// An object, each member handed to `member` with its key (which must then consume the
    /// value). A key with an escape is given up on: it may name a field.
    fn object(&mut self, member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.members(true, member)
    }

    /// An object's members; with `named` false, keys are only checked and given as `""`.
    fn members(
        &mut self,
        named: bool,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let key = if named {
                self.plain_string()?
            } else {
                (self.peek()? == b'"').then(|| self.skip_string())??;
                ""
            };
            self.eat(b':')?;
            member(self, key)?;
            if !self.eat_if(b',') {
                return self.eat(b'}');
            }
        }
    }

    /// A string without escapes, its content borrowed. Escapes are rare in what a collector
    /// writes and serde_json decodes them.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.ws();
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let bytes = &self.text.as_bytes()[start..];
        let len = plain_run(bytes, 0)?;
        if bytes[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // On a UTF-8 text, the bytes between two ASCII quotes are whole characters.
        self.text.get(start..start + len)
    }

    /// Any string, escapes checked as JSON has them, and as serde_json checks them where it
    /// decodes (an unpaired surrogate is given up on).
    fn skip_string(&mut self) -> Option<()> {
        self.at += 1; // the opening quote, seen by the caller
        let bytes = self.text.as_bytes();
        loop {
            self.at += plain_run(bytes, self.at)?;
            let b = bytes[self.at];
            self.at += 1;
            match b {
                b'"' => return Some(()),
                b'\\' => {}
                _ => return None, // a control character
            }
            match *bytes.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => match self.hex_escape()? {
                    0xDC00..=0xDFFF => return None,
                    0xD800..=0xDBFF => {
                        if bytes.get(self.at..self.at + 2)? != b"\\u" {
                            return None;
                        }
                        self.at += 1;
                        if !matches!(self.hex_escape()?, 0xDC00..=0xDFFF) {
                            return None;
                        }
                    }
                    _ => {}
                },
                _ => return None,
            }
        }
    }

    /// The four hex digits after the `u` at `self.at`.
    fn hex_escape(&mut self) -> Option<u16> {
        let unit = hex4(self.text.as_bytes(), self.at + 1)?;
        self.at += 5;
        Some(unit)
    }

    /// A number as JSON writes it (`-`, no leading zero, digits after a `.` and in an exponent),
    /// its text borrowed, and its value when the digits give it exactly (see [`exact`]).
    fn number(&mut self) -> Option<(&'a str, Option<f64>)> {
        self.number_of::<true>()
    }

    /// A number as [`Scanner::number`] checks it, its value not worked out.
    fn number_text(&mut self) -> Option<&'a str> {
        self.number_of::<false>().map(|(text, _)| text)
    }

    /// [`Scanner::number`], its value worked out only with `VALUE`.
    #[inline(always)]
    fn number_of<const VALUE: bool>(&mut self) -> Option<(&'a str, Option<f64>)> {
        self.ws();
        let bytes = self.text.as_bytes();
        let start = self.at;
        let negative = bytes.get(start) == Some(&b'-');
        let mut at = start + usize::from(negative);
        // The digits' value as an integer, read on the way: correct while there are at most
        // 19 of them (anything longer is read by `str::parse` instead).
        let mut mantissa = 0u64;
        let mut take_digits = |at: &mut usize| {
            let n = digit_run::<VALUE>(bytes, *at, &mut mantissa);
            *at += n;
            n
        };
        let mut count = match bytes.get(at)? {
            b'0' => {
                at += 1;
                1
            }
            b'1'..=b'9' => take_digits(&mut at),
            _ => return None,
        };
        let mut fraction = 0;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            fraction = take_digits(&mut at);
            if fraction == 0 {
                return None;
            }
            count += fraction;
        }
        let exponent = matches!(bytes.get(at), Some(b'e' | b'E'));
        if exponent {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            // Its value is not needed: only a number without one takes the exact path.
            let n = digit_run::<false>(bytes, at, &mut 0);
            if n == 0 {
                return None;
            }
            at += n;
        }
        self.at = at;
        let number = &self.text[start..at];
        // Out of range, serde_json refuses it where it decodes it, and the fallback's checks
        // where it skips it: neither is this scanner's to accept.
        if out_of_range(number.as_bytes(), exponent) {
            return None;
        }
        let value = (VALUE && !exponent && count <= 19)
            .then(|| exact(mantissa, fraction, negative))
            .flatten();
        Some((number, value))
    }

    /// A number as an `f64`, as serde_json reads it (both round correctly; see the tests).
    fn float(&mut self) -> Option<f64> {
        let value = match self.number()? {
            (_, Some(value)) => value,
            (text, None) => text.parse::<f64>().ok()?,
        };
        value.is_finite().then_some(value)
    }

    /// `null`, taken if it is next.
    fn null(&mut self) -> bool {
        self.ws();
        let next = self.text.as_bytes()[self.at..].starts_with(b"null");
        self.at += if next { 4 } else { 0 };
        next
    }

    fn optional_float(&mut self) -> Option<Option<f64>> {
        if self.null() {
            Some(None)
        } else {
            self.float().map(Some)
        }
    }

    fn optional_number(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            Some(None)
        } else {
            self.number_text().map(Some)
        }
    }

    /// A string decoded by `T`'s own `Deserialize`, so that a value means here what it means
    /// to serde_json.
    fn token_of<T: DeserializeOwned>(&mut self) -> Option<T> {
        self.ws();
        let start = self.at;
        self.plain_string()?;
        serde_json::from_str(&self.text[start..self.at]).ok()
    }

    /// An array, each item consumed by `item`.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if !self.eat_if(b',') {
                return self.eat(b']');
            }
        }
    }

    /// The quotes, each taken in (and checked) as soon as it is read.
    fn quotes(&mut self) -> Option<Taken<'a>> {
        // Room for as many quotes as the rest of the text could hold at 128 bytes each (a
        // quote with a few numbers is about 200), up to `MAX_ROOM`: growing the set of pairs
        // seen as it fills rehashes it each time.
        let room = ((self.text.len() - self.at) / 128 + 1).min(MAX_ROOM);
        let mut taken = Taken::with_capacity(room);
        self.array(|s| {
            let (pair, quote) = s.quote()?;
            taken.take(pair, &quote).ok()
        })?;
        Some(taken)
    }

    /// A quote and its pair: by [`Scanner::quote_known_keys`] if it can, by
    /// [`Scanner::quote_any_keys`] if not. Both read the values alike ([`QuoteMembers`]): the
    /// first only reads fewer quotes.
    fn quote(&mut self) -> Option<(&'a str, LeanQuote<'a>)> {
        let start = self.at;
        self.quote_known_keys().or_else(|| {
            self.at = start;
            self.quote_any_keys()
        })
    }

    /// A quote whose keys are all a quote's own, each with its colon right after it. A key is
    /// recognised by comparing the text with the names it may be ([`Member::at_start_of`]), not
    /// read byte by byte and then matched against every name (a call to `memcmp` each).
    /// Anything else gives up.
    fn quote_known_keys(&mut self) -> Option<(&'a str, LeanQuote<'a>)> {
        let mut members = QuoteMembers::default();
        self.eat(b'{')?;
        loop {
            self.ws();
            let (member, len) = Member::at_start_of(&self.text.as_bytes()[self.at..])?;
            self.at += len;
            members.read(self, member)?;
            if !self.eat_if(b',') {
                self.eat(b'}')?;
                return members.quote();
            }
        }
    }

    /// A quote with any keys: those a quote does not have are checked and skipped.
    fn quote_any_keys(&mut self) -> Option<(&'a str, LeanQuote<'a>)> {
        let mut members = QuoteMembers::default();
        self.object(|s, key| match Member::named(key) {
            Some(member) => members.read(s, member),
            None => s.skip_value(2),
        })?;
        members.quote()
    }

    /// Any JSON value, checked and skipped, `depth` levels down.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.members(false, |s, _| s.skip_value(depth + 1)),
            b'[' => self.array(|s| s.skip_value(depth + 1)),
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.null().then_some(()),
            _ => self.number_text().map(drop),
        }
    }

    fn word(&mut self, word: &str) -> Option<()> {
        let next = self.text.as_bytes()[self.at..].starts_with(word.as_bytes());
        next.then(|| self.at += word.len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a decoded snapshot holds, floats as bits (`-0.0` is not `0.0`).
    type View = (String, String, i64, Vec<(String, u64, Option<u64>)>);

    fn view(samples: &Samples) -> View {
        let quotes = samples.iter().map(|(pair, price, volume)| {
            (pair.to_owned(), price.to_bits(), volume.map(f64::to_bits))
        });
        (
            samples.source.to_string(),
            samples.tick.to_string(),
            samples.collected_at_ms,
            quotes.collect(),
        )
    }

    /// The reference: serde_json's derived decoder, the checks before it and the contract's
    /// after it, as `decode_samples` falls back to.
    fn reference(text: &str) -> Option<View> {
        super::super::decode_slowly(text.as_bytes(), text)
            .ok()
            .map(|s| view(&s))
    }

    fn ws() -> BoxedStrategy<String> {
        prop_oneof![4 => Just(String::new()), 1 => "[ \t\n\r]{1,3}"].boxed()
    }

    /// Numbers, seldom negative: a negative price or optional number makes the whole snapshot
    /// refused, and most snapshots should be read for the comparison to say much.
    fn number() -> BoxedStrategy<String> {
        prop_oneof![
            40 => "(0|[1-9][0-9]{0,8})\\.[0-9]{1,8}",
            8 => "(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?",
            1 => "-(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
            1 => Just("-0".to_owned()),
            1 => Just("0.0".to_owned()),
            1 => Just("1e-400".to_owned()),
            // Not JSON: the scanner must give up on them as serde_json refuses them.
            1 => prop_oneof![
                Just("01"),
                Just("1."),
                Just(".5"),
                Just("+1"),
                Just("1e"),
                Just("-")
            ]
            .prop_map(str::to_owned),
        ]
        .boxed()
    }

    fn string() -> BoxedStrategy<String> {
        prop_oneof![
            // Plain text and valid escapes, as most strings are.
            30 => "\"([a-zA-Z0-9 :.é-]|\\\\[nt\"\\\\/]|\\\\u00[0-9a-fA-F]{2})*\"",
            // Escapes of every kind, surrogates paired or not, and a few that are not JSON.
            1 => "\"([a-zA-Z0-9 :.é-]|\\\\[nt\"\\\\/]|\\\\u00[0-9a-fA-F]{2}|\\\\x|\\\\u[dD][89abAB][0-9a-f]{2}(\\\\u[dD][c-fC-F][0-9a-f]{2})?|\\\\u[dD][c-f][0-9a-f]{2})*\"",
        ]
        .boxed()
    }

    /// Any JSON value (and a few near misses), nested a little.
    fn value() -> BoxedStrategy<String> {
        let leaf = prop_oneof![
            4 => Just("null".to_owned()),
            4 => Just("true".to_owned()),
            4 => Just("false".to_owned()),
            1 => Just("nul".to_owned()),
            8 => number(),
            8 => string(),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec((ws(), inner.clone()), 0..4).prop_map(|items| {
                    let items: Vec<_> = items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::vec((string(), inner), 0..4).prop_map(|members| {
                    let members: Vec<_> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", members.join(", "))
                }),
            ]
        })
        .boxed()
    }

    fn optional_number() -> BoxedStrategy<String> {
        prop_oneof![3 => number(), 1 => Just("null".to_owned())].boxed()
    }

    /// A quote's members, in any order, some missing, some twice, some unknown; and whether
    /// the scanner may give up on it where serde_json does not (an escape in the pair, a
    /// repeated member).
    fn quote() -> BoxedStrategy<(String, bool)> {
        let pair = prop_oneof![
            40 => "\"[A-Z]{2,5}-[A-Z]{3,4}\"".prop_map(|p| (p, false)),
            1 => Just(("\"BTC\\u002DUSD\"".to_owned(), true)),
            1 => string().prop_map(|p| { let escaped = p.contains('\\'); (p, escaped) }),
        ];
        let price = prop_oneof![40 => number(), 1 => Just("null".to_owned()), 1 => string()];
        // In the collector's order (the order of the members matters to neither reader, but a
        // quote as the collector writes it should be among those tried).
        let keys = [
            "bid",
            "ask",
            "volume_24h",
            "quote_volume_24h",
            "high_24h",
            "low_24h",
        ];
        let optional =
            keys.map(|k| prop::option::weighted(0.7, optional_number().prop_map(move |v| (k, v))));
        let exchange_time = prop::option::weighted(0.6, value());
        let extra = prop::option::weighted(0.2, ("\"[a-z_]{1,6}\"", value()));
        let twice = prop::option::weighted(
            0.02,
            prop::sample::select(vec!["pair", "price", "bid", "volume_24h", "exchange_time"]),
        );
        let pair = prop::option::weighted(0.99, pair);
        let price = prop::option::weighted(0.99, price);
        (pair, price, optional, exchange_time, extra, twice, ws())
            .prop_flat_map(|(pair, price, optional, exchange_time, extra, twice, w)| {
                let mut may_give_up = pair.as_ref().is_some_and(|p| p.1);
                let mut members = Vec::new();
                members.extend(pair.map(|p| format!("\"pair\":{}", p.0)));
                members.extend(price.map(|p| format!("\"price\":{w}{p}")));
                let optional = optional.into_iter().flatten();
                members.extend(optional.map(|(k, v)| format!("\"{k}\": {v}")));
                members.extend(exchange_time.map(|v| format!("\"exchange_time\":{v}")));
                members.extend(extra.map(|(k, v)| format!("{k}:{v}")));
                if let Some(key) = twice
                    && let Some(m) = members
                        .iter()
                        .find(|m| m.starts_with(&format!("\"{key}\"")))
                {
                    members.push(m.clone());
                    may_give_up = true;
                }
                let members = prop_oneof![Just(members.clone()), Just(members).prop_shuffle()];
                members.prop_map(move |m| (format!("{{{}}}", m.join(",")), may_give_up))
            })
            .boxed()
    }

    /// A snapshot as a collector writes it, or nearly; and whether the scanner may give up on
    /// it where serde_json does not.
    fn snapshot() -> BoxedStrategy<(String, bool)> {
        let schema =
            prop_oneof![30 => Just("\"cryptomon.snapshot/v1\""), 1 => Just("\"other/v1\"")];
        let source = prop_oneof![
            30 => Just(("\"kraken\"", false)),
            1 => Just(("\"Kraken\"", false)),
            1 => Just(("\"kra\\u006En\"", true)),
        ];
        let tick = prop_oneof![
            9 => Just("\"2026-11-27T06:53:00Z\""),
            1 => Just("\"2026-11-27T06:53:30Z\""),
        ];
        let collected = prop_oneof![
            30 => Just("\"2026-11-27T06:53:01.417Z\""),
            1 => Just("\"2026-11-27 06:53\""),
            1 => Just("\"2026-11-27T07:53:01+01:00\""),
        ];
        let quotes = prop::collection::vec((ws(), quote()), 1..5).prop_map(|quotes| {
            let may_give_up = quotes.iter().any(|(_, (_, g))| *g);
            let q: Vec<_> = quotes
                .into_iter()
                .map(|(w, (q, _))| format!("{w}{q}"))
                .collect();
            (format!("[{}]", q.join(",")), may_give_up)
        });
        let raw = prop::option::weighted(0.5, value());
        (schema, source, tick, collected, quotes, raw, ws())
            .prop_flat_map(|(schema, source, tick, collected, quotes, raw, w)| {
                let may_give_up = source.1 || quotes.1;
                let mut members = vec![
                    format!("\"schema\":{schema}"),
                    format!("\"source\":{w}{}", source.0),
                    format!("\"tick\":{tick}"),
                    format!("\"collected_at\" : {collected}"),
                    format!("\"quotes\":{}", quotes.0),
                ];
                members.extend(raw.map(|r| format!("\"raw\":{r}")));
                let w = w.clone();
                Just(members)
                    .prop_shuffle()
                    .prop_map(move |m| (format!("{w}{{{}}}{w}", m.join(",")), may_give_up))
            })
            .boxed()
    }

    /// One byte edit at a spot: a deletion, or a JSON-significant byte put in or over one.
    fn mutated(text: String, at: usize, edit: u8, byte: u8) -> String {
        let mut bytes = text.into_bytes();
        let at = at % (bytes.len() + 1);
        let byte = b"{}[],:\"\\ 0-.e\n"[usize::from(byte) % 14];
        match edit % 3 {
            0 if at < bytes.len() => drop(bytes.remove(at)),
            1 if at < bytes.len() => bytes[at] = byte,
            _ => bytes.insert(at, byte),
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Where the scanner answers, serde_json gives the same; and it answers whenever
        /// serde_json accepts, but for an escape in a field it keeps or a repeated member.
        #[test]
        fn the_scanner_agrees_with_serde_json((text, may_give_up) in snapshot()) {
            let fast = scan(&text).map(|l| view(&l));
            let slow = reference(&text);
            if fast.is_some() || !may_give_up {
                prop_assert_eq!(&fast, &slow, "{}", text);
            }
        }

        /// Broken snapshots: the scanner never accepts what serde_json refuses, nor reads it
        /// otherwise.
        #[test]
        fn the_scanner_never_accepts_what_serde_json_refuses(
            (text, _) in snapshot(), at in any::<usize>(), edit in any::<u8>(), byte in any::<u8>()
        ) {
            let text = mutated(text, at, edit, byte);
            if let Some(fast) = scan(&text) {
                prop_assert_eq!(Some(view(&fast)), reference(&text), "{}", text);
            }
        }
    }

    #[test]
    fn a_collector_snapshot_is_scanned() {
        let text = r#"{"schema":"cryptomon.snapshot/v1","source":"kraken","tick":"2026-11-27T06:53:00Z",
            "collected_at":"2026-11-27T06:53:01.417Z","quotes":[{"pair":"BTC-USD","price":93316.76697217,
            "bid":93314.90063683,"ask":null,"volume_24h":5065.0005,"high_24h":95183.10231161,
            "low_24h":91450.43163273,"exchange_time":"2026-11-27T06:53:00Z"},
            {"pair":"ETH-USD","price":3076,"volume_24h":null}],"raw":{"note":"synth\u00e9tic","n":[1,2.5e3,{}]}}"#;
        let fast = scan(text).expect("the scanner reads a collector's snapshot");
        assert_eq!(Some(view(&fast)), reference(text));
        assert_eq!(
            fast.iter().collect::<Vec<_>>(),
            [
                ("BTC-USD", 93316.76697217, Some(5065.0005)),
                ("ETH-USD", 3076.0, None)
            ]
        );
    }

    #[test]
    fn the_scanner_gives_up_on_what_it_does_not_expect() {
        let base = |quote: &str| {
            format!(
                r#"{{"schema":"cryptomon.snapshot/v1","source":"kraken","tick":"2026-11-27T06:53:00Z","collected_at":"2026-11-27T06:53:01Z","quotes":[{quote}]}}"#
            )
        };
        for quote in [
            r#"{"pair":"BTC\u002DUSD","price":1}"#,
            r#"{"pair":"BTC-USD","price":1,"price":2}"#,
            r#"{"pair":"BTC-USD"}"#,
            r#"{"pair":"BTC-USD","price":1e999}"#,
            r#"{"pair":"BTC-USD","pr\u0069ce":1}"#,
            r#"{"pair":"BTC-USD","price":1,"exchange_time":"a","exchange_time":"b"}"#,
            r#"{"pair":"BTC-USD","price":01}"#,
            r#"{"pair":"BTC-USD","price":1,"x":"tab	in a string"}"#,
        ] {
            assert!(scan(&base(quote)).is_none(), "{quote}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(
            scan(&base(&format!(
                r#"{{"pair":"BTC-USD","price":1,"x":{deep}}}"#
            )))
            .is_none()
        );
        assert!(scan(&format!("{} x", base(r#"{"pair":"BTC-USD","price":1}"#))).is_none());
    }

    /// The fast path knows every key the collector writes: a quote written from the model, every
    /// field set, is read by it, to the same values as by the general path.
    #[test]
    fn a_quote_as_the_collector_writes_it_is_read_by_its_keys() {
        let quote = crate::model::Quote {
            bid: Some(93314.90063683),
            ask: Some(93318.63330751),
            volume_24h: Some(5065.0005),
            quote_volume_24h: Some(472_000_000.5),
            high_24h: Some(95183.10231161),
            low_24h: Some(91450.43163273),
            exchange_time: Some("2026-11-27T06:53:00Z".parse().unwrap()),
            ..crate::model::Quote::new(crate::model::Pair::new("BTC-USD").unwrap(), 93316.76697217)
        };
        let text = serde_json::to_string(&quote).unwrap();
        let in_order = Scanner { text: &text, at: 0 }.quote_known_keys();
        let any_order = Scanner { text: &text, at: 0 }.quote_any_keys();
        let view = |q: Option<(&str, LeanQuote<'_>)>| {
            q.map(|(_, q)| {
                (
                    q.pair.into_owned(),
                    q.price,
                    q.volume_24h,
                    [q.bid, q.ask, q.quote_volume_24h, q.high_24h, q.low_24h]
                        .map(|u| u.map(str::to_owned)),
                )
            })
        };
        let in_order = view(in_order);
        assert!(in_order.is_some(), "{text} was not read by its keys");
        assert_eq!(in_order, view(any_order));
    }

    /// A naive reading of the digits at the start of eight bytes.
    fn naive_digits(bytes: &[u8]) -> (usize, u64) {
        let count = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = bytes[..count]
            .iter()
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
        (count, value)
    }

    fn digits_then_anything() -> BoxedStrategy<Vec<u8>> {
        ("[0-9]{0,8}", prop::collection::vec(any::<u8>(), 8))
            .prop_map(|(digits, rest)| {
                let mut bytes = digits.into_bytes();
                bytes.extend(rest);
                bytes.truncate(8);
                bytes
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Eight bytes at a time read as one at a time would, whatever follows the digits
        /// (the bytes next to '0' and '9', and those that borrow or carry, included).
        #[test]
        fn leading_digits_reads_as_a_loop_over_the_bytes(bytes in digits_then_anything()) {
            let chunk = u64::from_le_bytes(bytes.clone().try_into().unwrap());
            prop_assert_eq!(leading_digits(chunk), naive_digits(&bytes));
        }

        /// A run of digits of any length, anywhere in the text, near its end too.
        #[test]
        fn digit_run_reads_every_digit(prefix in "[0-9a]{0,3}", digits in "[0-9]{0,30}", tail in "[^0-9]{0,9}") {
            let text = format!("{prefix}{digits}{tail}");
            let mut mantissa = 7;
            let n = digit_run::<true>(text.as_bytes(), prefix.len(), &mut mantissa);
            prop_assert_eq!(n, digits.len());
            // Counting only: the same length, the mantissa untouched.
            let mut untouched = 7;
            prop_assert_eq!(digit_run::<false>(text.as_bytes(), prefix.len(), &mut untouched), n);
            prop_assert_eq!(untouched, 7);
            if digits.len() <= 17 {
                let want = format!("7{digits}").parse::<u64>().unwrap();
                prop_assert_eq!(mantissa, want);
            }
        }

        /// The value read on the way is the one `str::parse` gives, to the bit.
        #[test]
        fn a_number_reads_as_str_parse_does(text in "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,24})?") {
            let mut scanner = Scanner { text: &text, at: 0 };
            let value = scanner.float().map(f64::to_bits);
            prop_assert_eq!(value, text.parse::<f64>().ok().map(f64::to_bits), "{}", text);
            prop_assert_eq!(scanner.at, text.len());
        }
    }
}
