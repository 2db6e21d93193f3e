//! One pass over a snapshot as the collector writes it, taking out what the metrics use.
//!
//! It stays because serde_json through the same borrowed types made a full transform only 31x
//! faster than the pandas peer, where the floor is 40x (docs/performance.md).
//! The scanner knows the snapshot's shape and checks the JSON grammar as it goes (strings,
//! numbers, nesting). It gives up on anything it does not expect: an escape in a field it keeps,
//! a missing or repeated field, deep nesting, a syntax error, a snapshot the contract refuses. It
//! then returns `None`, and the caller decodes with serde_json. That path says precisely what is
//! wrong, and it is the reference this one is tested against: where the scanner answers,
//! serde_json gives the same samples.
//!
//! Two things make it fast. A quote's keys are recognised by comparing the text with the names
//! a quote's members have (`quote_known_keys`), not read and looked up; a quote with another key
//! is read the general way. And a number's digits are read eight at a time, its value with them
//! where it is exact (`digit_run`, `exact`), not by a second pass in `str::parse`.
//!
//! The caller has checked the text is UTF-8. What serde_json does not check in the values it
//! skips (surrogate escapes, number range) the caller checks before a fallback to it; the scanner
//! checks them itself, in every value, and gives up on a bad one.

mod digits;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use self::digits::{digit_run, exact};
use super::{QuoteView, Samples, SamplesBuilder, hex4, out_of_range};
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
    fn quote(self) -> Option<(&'a str, QuoteView<'a>)> {
        let [bid, ask, quote_volume_24h, high_24h, low_24h] = self.unused.map(Option::flatten);
        let pair = self.pair?;
        let quote = QuoteView {
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
    fn quotes(&mut self) -> Option<SamplesBuilder<'a>> {
        // Room for as many quotes as the rest of the text could hold at 128 bytes each (a
        // quote with a few numbers is about 200), up to `MAX_ROOM`: growing the set of pairs
        // seen as it fills rehashes it each time.
        let room = ((self.text.len() - self.at) / 128 + 1).min(MAX_ROOM);
        let mut taken = SamplesBuilder::with_capacity(room);
        self.array(|s| {
            let (pair, quote) = s.quote()?;
            taken.take(pair, &quote).ok()
        })?;
        Some(taken)
    }

    /// A quote and its pair: by [`Scanner::quote_known_keys`] if it can, by
    /// [`Scanner::quote_any_keys`] if not. Both read the values alike ([`QuoteMembers`]): the
    /// first only reads fewer quotes.
    fn quote(&mut self) -> Option<(&'a str, QuoteView<'a>)> {
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
    fn quote_known_keys(&mut self) -> Option<(&'a str, QuoteView<'a>)> {
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
    fn quote_any_keys(&mut self) -> Option<(&'a str, QuoteView<'a>)> {
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
