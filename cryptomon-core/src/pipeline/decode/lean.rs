//! The borrowed serde types a snapshot is decoded into: only what the metrics use, with every
//! other value checked as strictly as if it were decoded.
//!
//! A derived decoder skips the members it does not know without checking them: a number out of
//! `f64` range or a lone surrogate escape there would pass, and fail every reader that decodes
//! the whole snapshot (Athena, DuckDB). So a snapshot and its quotes are read by visitors
//! that hand every member they do not keep to [`Checked`], which makes the decoder parse it.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::model::{SourceName, Tick};

/// A snapshot as the transform reads it.
pub(super) struct Lean<'a> {
    pub(super) schema: Cow<'a, str>,
    pub(super) source: SourceName,
    pub(super) tick: Tick,
    pub(super) collected_at: DateTime<Utc>,
    pub(super) quotes: Vec<LeanQuote<'a>>,
}

/// A quote as the metrics use it: its pair, price and volume, and the other numbers only as far
/// as the contract checks them (see [`LeanQuote::check_unused`]).
pub(super) struct LeanQuote<'a> {
    pub(super) pair: Cow<'a, str>,
    pub(super) price: f64,
    pub(super) volume_24h: Option<f64>,
    /// `bid`, `ask`, `quote_volume_24h`, `high_24h` and `low_24h`, in that order.
    unused: [Option<Unused>; 5],
}

/// The names of [`LeanQuote::unused`]'s numbers, in its order.
const UNUSED: [&str; 5] = ["bid", "ask", "quote_volume_24h", "high_24h", "low_24h"];

impl LeanQuote<'_> {
    /// The unused numbers as a snapshot must have them: a number or `null`, never negative.
    pub(super) fn check_unused(&self) -> Result<(), String> {
        for (name, value) in UNUSED.iter().zip(&self.unused) {
            match value {
                None => {}
                // `-0` and `-1e-400` are zero, not negative.
                Some(Unused::Number(v)) if *v < 0.0 => {
                    return Err(format!("{}: a negative {name}", self.pair));
                }
                Some(Unused::Number(_)) => {}
                Some(Unused::Other(what)) => {
                    return Err(format!(
                        "malformed snapshot: {name} of {} is {what:.40}, not a number",
                        self.pair
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A string, borrowed from the text unless it has an escape (serde's `Cow<str>` always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
}

/// Sets `slot` from the map's next value, refusing a member given twice.
fn set_once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> Deserialize<'de> for Lean<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LeanVisitor)
    }
}

struct LeanVisitor;

impl<'de> Visitor<'de> for LeanVisitor {
    type Value = Lean<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lean<'de>, A::Error> {
        let (mut schema, mut source, mut tick, mut collected_at, mut quotes) =
            (None, None, None, None, None);
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "schema" => set_once::<Text<'de>, _>(&mut schema, "schema", &mut map)?,
                "source" => set_once(&mut source, "source", &mut map)?,
                "tick" => set_once(&mut tick, "tick", &mut map)?,
                "collected_at" => set_once(&mut collected_at, "collected_at", &mut map)?,
                "quotes" => set_once(&mut quotes, "quotes", &mut map)?,
                _ => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Lean {
            schema: schema.ok_or_else(|| de::Error::missing_field("schema"))?.0,
            source: source.ok_or_else(|| de::Error::missing_field("source"))?,
            tick: tick.ok_or_else(|| de::Error::missing_field("tick"))?,
            collected_at: collected_at.ok_or_else(|| de::Error::missing_field("collected_at"))?,
            quotes: quotes.ok_or_else(|| de::Error::missing_field("quotes"))?,
        })
    }
}

impl<'de> Deserialize<'de> for LeanQuote<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(QuoteVisitor)
    }
}

struct QuoteVisitor;

impl<'de> Visitor<'de> for QuoteVisitor {
    type Value = LeanQuote<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quote object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanQuote<'de>, A::Error> {
        let (mut pair, mut price, mut volume) = (None::<Text<'de>>, None, None);
        let mut unused: [Option<Option<Unused>>; 5] = Default::default();
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "pair" => set_once(&mut pair, "pair", &mut map)?,
                "price" => set_once(&mut price, "price", &mut map)?,
                "volume_24h" => set_once(&mut volume, "volume_24h", &mut map)?,
                other => match UNUSED.iter().position(|&name| name == other) {
                    Some(at) => set_once(&mut unused[at], UNUSED[at], &mut map)?,
                    None => {
                        map.next_value::<Checked>()?;
                    }
                },
            }
        }
        Ok(LeanQuote {
            pair: pair.ok_or_else(|| de::Error::missing_field("pair"))?.0,
            price: price.ok_or_else(|| de::Error::missing_field("price"))?,
            volume_24h: volume.flatten(),
            unused: unused.map(Option::flatten),
        })
    }
}

/// A number the metrics do not use: its value, only for its sign, or what it is instead.
enum Unused {
    Number(f64),
    Other(String),
}

impl<'de> Deserialize<'de> for Unused {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnusedVisitor)
    }
}

struct UnusedVisitor;

impl<'de> Visitor<'de> for UnusedVisitor {
    type Value = Unused;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Unused, E> {
        Ok(Unused::Number(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Unused, E> {
        Ok(Unused::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Unused, E> {
        Ok(Unused::Number(v as f64))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Unused, E> {
        Ok(Unused::Other(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Unused, E> {
        Ok(Unused::Other(format!("{v:?}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Unused, A::Error> {
        Checked.visit_seq(seq)?;
        Ok(Unused::Other("an array".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Unused, A::Error> {
        Checked.visit_map(map)?;
        Ok(Unused::Other("an object".into()))
    }
}

/// Any JSON value, read in full (so the decoder checks its numbers' range and its strings'
/// escapes) and dropped.
pub(super) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_none<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        Checked::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}
