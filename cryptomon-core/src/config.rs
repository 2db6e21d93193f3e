//! The configuration file (`cryptomon.toml`): the collection interval and the sources to collect.
//!
//! Parsing is pure (no network, no environment): [`Config::from_toml_str`] reads and validates,
//! [`Config::load`] reads a file. This module holds the file's format and the checks that do not
//! depend on an exchange (an unknown kind, a malformed pair, a timeout longer than the interval),
//! so a mistake stops the program with a message naming the source entry and the pair, instead
//! of failing every minute. What each exchange accepts (the pairs it can express, the fields it
//! uses) is its own module's to say: `exchange::validate` checks it (with the file's name through
//! [`Config::load_checked`]), and building the sources does too.
//!
//! ```
//! use cryptomon_core::config::{Config, ExchangeKind, PairSelection};
//!
//! let config = Config::from_toml_str(r#"
//!     interval_secs = 60
//!     [[sources]]
//!     kind = "kraken"
//!     pairs = ["BTC-USD", "ETH-USD"]
//!     [[sources]]
//!     kind = "binance"
//!     pairs = "all"
//! "#)?;
//! assert_eq!(config.sources[0].kind, ExchangeKind::Kraken);
//! assert_eq!(config.sources[1].pairs, PairSelection::All);
//! # Ok::<(), cryptomon_core::Error>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Pair, SourceName};

mod backfill;
pub use backfill::{BackfillConfig, DEFAULT_BACKFILL_HOURS, MAX_BACKFILL_HOURS};

/// The collection interval when the file does not set one: the contract's one minute.
pub const DEFAULT_INTERVAL_SECS: u32 = 60;

/// How far ahead of the clock a snapshot's tick may be when the file does not say: five
/// minutes, as a collector's clock may run a little fast, but not hours.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u32 = 300;

/// The pairs the default configuration watches on every exchange (quoted in USD, or USDT on
/// Binance, which lists no USD markets).
pub const DEFAULT_BASES: [&str; 3] = ["BTC", "ETH", "SOL"];

/// The largest response body a source reads unless its entry sets `max_body_bytes`: 16 MiB,
/// sixteen times Binance's whole market (`/api/v3/ticker/24hr` without symbols, ~1 MB), so a
/// growing exchange fits while an endless body stops well before it could exhaust a 128 MB
/// Lambda.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;

/// The exchanges cryptomon knows: a closed set, one module each in `exchange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExchangeKind {
    /// Coinbase Exchange (`api.exchange.coinbase.com`): ticker and stats per product.
    Coinbase,
    /// Kraken (`api.kraken.com`): one `Ticker` call for every pair.
    Kraken,
    /// Binance (`api.binance.com`): `ticker/24hr`, for listed symbols or every market.
    Binance,
    /// CoinGecko (`api.coingecko.com`): `simple/price` by coin id.
    Coingecko,
}

impl ExchangeKind {
    /// Every kind, in the order of the default configuration.
    pub const ALL: [ExchangeKind; 4] = [
        ExchangeKind::Coinbase,
        ExchangeKind::Kraken,
        ExchangeKind::Binance,
        ExchangeKind::Coingecko,
    ];

    /// The name used in the config file and, by default, as the source name (`kraken`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Coinbase => "coinbase",
            ExchangeKind::Kraken => "kraken",
            ExchangeKind::Binance => "binance",
            ExchangeKind::Coingecko => "coingecko",
        }
    }

    /// The public API's root, used unless the entry sets `base_url`.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ExchangeKind::Coinbase => "https://api.exchange.coinbase.com",
            ExchangeKind::Kraken => "https://api.kraken.com",
            ExchangeKind::Binance => "https://api.binance.com",
            ExchangeKind::Coingecko => "https://api.coingecko.com/api/v3",
        }
    }

    /// The pairs this kind watches in the default configuration.
    pub fn default_pairs(self) -> Vec<Pair> {
        let quote = match self {
            ExchangeKind::Binance => "USDT",
            _ => "USD",
        };
        DEFAULT_BASES
            .iter()
            .filter_map(|base| Pair::from_parts(base, quote).ok())
            .collect()
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExchangeKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ExchangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown source kind {s:?} (expected coinbase, kraken, binance or coingecko)"
                ))
            })
    }
}

/// Which markets a source collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairSelection {
    /// Every market the exchange lists (`pairs = "all"`, where the exchange supports it).
    All,
    /// These canonical pairs, each once.
    List(Vec<Pair>),
}

/// One `[[sources]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// The exchange.
    pub kind: ExchangeKind,
    /// The name snapshots and store keys carry; the kind unless the entry sets `name` (two
    /// entries of one kind need distinct names, or their snapshots would share a key).
    pub name: SourceName,
    /// The markets to collect.
    pub pairs: PairSelection,
    /// The API root without a trailing `/` (the kind's default unless overridden).
    pub base_url: String,
    /// Per-request timeout in seconds, if the entry sets one.
    pub timeout_secs: Option<u64>,
    /// The largest response body read, in bytes; a longer one fails the fetch
    /// ([`DEFAULT_MAX_BODY_BYTES`] unless the entry sets one).
    pub max_body_bytes: u64,
    /// The name of the environment variable holding an API key (CoinGecko only). The key itself
    /// is never part of the configuration.
    pub api_key_env: Option<String>,
    /// Coin ids by pair (`"BTC-USD" = "bitcoin"`), the entry's `ids` table as written (CoinGecko
    /// only; its module adds the built-in ids of well-known assets).
    pub ids: BTreeMap<Pair, String>,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seconds between collections (the tick length), 1 to 86 400.
    pub interval_secs: u32,
    /// How far ahead of the clock a snapshot's tick may be, 0 to 86 400 s: `collect` refuses a
    /// tick further ahead, and the transform skips (never deletes) such a snapshot.
    pub max_clock_skew_secs: u32,
    /// The sources, in file order, each name once.
    pub sources: Vec<SourceConfig>,
    /// The `[alerts]` table, kept as written; interpreted by the alerting code, not here.
    pub alerts: Option<toml::Value>,
    /// The `[prometheus]` table, kept as written; interpreted by the server's `/metrics`.
    pub prometheus: Option<toml::Value>,
    /// The `[backfill]` table.
    pub backfill: BackfillConfig,
}

impl Default for Config {
    /// BTC, ETH and SOL on all four exchanges, once a minute.
    fn default() -> Self {
        let sources = ExchangeKind::ALL
            .into_iter()
            .map(|kind| SourceConfig {
                kind,
                name: SourceName::new(kind.as_str()).expect("kind names are valid"),
                pairs: PairSelection::List(kind.default_pairs()),
                base_url: kind.default_base_url().to_owned(),
                timeout_secs: None,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                api_key_env: None,
                ids: BTreeMap::new(),
            })
            .collect();
        Config {
            interval_secs: DEFAULT_INTERVAL_SECS,
            max_clock_skew_secs: DEFAULT_MAX_CLOCK_SKEW_SECS,
            sources,
            alerts: None,
            prometheus: None,
            backfill: BackfillConfig::default(),
        }
    }
}

impl FromStr for Config {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Config::from_toml_str(s)
    }
}

/// The file as written, before validation. Unknown keys are refused so a typo (`timout_secs`)
/// is an error, not a silently ignored setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    interval_secs: Option<i64>,
    #[serde(default)]
    max_clock_skew_secs: Option<i64>,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    alerts: Option<toml::Value>,
    #[serde(default)]
    prometheus: Option<toml::Value>,
    backfill: Option<backfill::RawBackfill>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pairs: Option<RawPairs>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    timeout_secs: Option<i64>,
    #[serde(default)]
    max_body_bytes: Option<i64>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    ids: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPairs {
    Word(String),
    List(Vec<String>),
}

impl Config {
    /// Parses and validates a configuration. Errors name the entry (`sources[1] (kraken)`) and,
    /// where one is to blame, the pair.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim().to_owned()))?;
        let interval_secs = match raw.interval_secs {
            None => DEFAULT_INTERVAL_SECS,
            Some(s) if (1..=86_400).contains(&s) => s as u32,
            Some(s) => {
                return Err(Error::Config(format!(
                    "interval_secs = {s}: must be between 1 and 86400"
                )));
            }
        };
        let max_clock_skew_secs = match raw.max_clock_skew_secs {
            None => DEFAULT_MAX_CLOCK_SKEW_SECS,
            Some(s) if (0..=86_400).contains(&s) => s as u32,
            Some(s) => {
                return Err(Error::Config(format!(
                    "max_clock_skew_secs = {s}: must be between 0 and 86400"
                )));
            }
        };
        if raw.sources.is_empty() {
            return Err(Error::Config(
                "no [[sources]] entry: nothing to collect".to_owned(),
            ));
        }
        let mut names = HashSet::new();
        let mut sources = Vec::with_capacity(raw.sources.len());
        for (index, entry) in raw.sources.into_iter().enumerate() {
            let source = validate_source(index, entry, interval_secs)?;
            if !names.insert(source.name.clone()) {
                return Err(Error::Config(format!(
                    "sources[{index}] ({}): another entry already uses the name {:?}; \
                     set a distinct `name` so their snapshots do not share keys",
                    source.kind,
                    source.name.as_str()
                )));
            }
            sources.push(source);
        }
        let backfill = match raw.backfill {
            Some(table) => table.validate()?,
            None => BackfillConfig::default(),
        };
        Ok(Config {
            interval_secs,
            max_clock_skew_secs,
            sources,
            alerts: raw.alerts,
            prometheus: raw.prometheus,
            backfill,
        })
    }

    /// Reads and validates a configuration file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), config_message(e))))
    }
    /// [`Config::load`], then `check`, whose error names the file too: a check the file format
    /// does not know, such as `exchange::validate` (what each exchange accepts).
    pub fn load_checked(
        path: impl AsRef<Path>,
        check: impl FnOnce(&Config) -> Result<()>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let config = Config::load(path)?;
        check(&config)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), config_message(e))))?;
        Ok(config)
    }
}

fn config_message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

fn validate_source(index: usize, raw: RawSource, interval_secs: u32) -> Result<SourceConfig> {
    let kind: ExchangeKind = raw
        .kind
        .parse()
        .map_err(|e| Error::Config(format!("sources[{index}]: {}", config_message(e))))?;
    let at = |detail: String| Error::Config(format!("sources[{index}] ({kind}): {detail}"));
    let at_pair = |pair: &str, detail: String| at(format!("pair {pair:?}: {detail}"));

    let name = match raw.name {
        Some(n) => SourceName::new(&n).map_err(|e| at(e.to_string()))?,
        None => SourceName::new(kind.as_str()).expect("kind names are valid"),
    };

    let pairs = match raw.pairs {
        None => PairSelection::List(kind.default_pairs()),
        Some(RawPairs::Word(w)) if w == "all" => PairSelection::All,
        Some(RawPairs::Word(w)) => {
            return Err(at(format!(
                "pairs = {w:?}: expected a list of pairs like [\"BTC-USD\"] or \"all\""
            )));
        }
        Some(RawPairs::List(list)) => {
            if list.is_empty() {
                return Err(at("pairs is empty".to_owned()));
            }
            let mut seen = HashSet::new();
            let mut pairs = Vec::with_capacity(list.len());
            for p in &list {
                let pair = Pair::new(p).map_err(|e| at_pair(p, e.to_string()))?;
                if !seen.insert(pair.clone()) {
                    return Err(at_pair(p, "listed twice".to_owned()));
                }
                pairs.push(pair);
            }
            PairSelection::List(pairs)
        }
    };

    let base_url = match raw.base_url {
        None => kind.default_base_url().to_owned(),
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at(format!(
                    "base_url {url:?} must start with http:// or https://"
                )));
            }
            url.trim_end_matches('/').to_owned()
        }
    };

    let timeout_secs = match raw.timeout_secs {
        None => None,
        Some(t) if t >= 1 && t < i64::from(interval_secs) => Some(t as u64),
        Some(t) => {
            return Err(at(format!(
                "timeout_secs = {t}: must be at least 1 and shorter than interval_secs ({interval_secs})"
            )));
        }
    };

    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(b) if b >= 1 => b as u64,
        Some(b) => {
            return Err(at(format!(
                "max_body_bytes = {b}: must be a positive number of bytes"
            )));
        }
    };

    if let Some(var) = &raw.api_key_env
        && (var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(at(format!(
            "api_key_env {var:?} is not an environment variable name (it names the variable, \
             it does not hold the key)"
        )));
    }

    let mut ids = BTreeMap::new();
    for (p, id) in raw.ids {
        let pair = Pair::new(&p).map_err(|e| at_pair(&p, format!("in ids: {e}")))?;
        ids.insert(pair, id);
    }

    Ok(SourceConfig {
        kind,
        name,
        pairs,
        base_url,
        timeout_secs,
        max_body_bytes,
        api_key_env: raw.api_key_env,
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn default_watches_three_bases_on_four_exchanges() {
        let c = Config::default();
        assert_eq!(c.interval_secs, 60);
        let kinds: Vec<_> = c.sources.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, ExchangeKind::ALL);
        for s in &c.sources {
            let PairSelection::List(pairs) = &s.pairs else {
                panic!("default lists pairs")
            };
            let bases: Vec<_> = pairs.iter().map(Pair::base).collect();
            assert_eq!(bases, DEFAULT_BASES, "{}", s.kind);
            assert_eq!(s.name.as_str(), s.kind.as_str());
        }
        let binance = &c.sources[2];
        assert_eq!(
            binance.pairs,
            PairSelection::List(vec![
                Pair::new("BTC-USDT").unwrap(),
                Pair::new("ETH-USDT").unwrap(),
                Pair::new("SOL-USDT").unwrap()
            ])
        );
    }

    #[test]
    fn issue_example_parses() {
        let c = Config::from_toml_str(
            r#"
            interval_secs = 60
            [[sources]]
            kind = "kraken"                       # coinbase | kraken | binance | coingecko
            pairs = ["BTC-USD", "ETH-USD"]
            base_url = "https://api.kraken.com/"
            timeout_secs = 10
            max_body_bytes = 8388608
            [[sources]]
            kind = "coingecko"
            pairs = ["BTC-USD", "AKT-USD"]
            api_key_env = "CG_KEY"
            ids = { "AKT-USD" = "akash-network" }
            [alerts]
            factor = 3.0
            "#,
        )
        .unwrap();
        let k = &c.sources[0];
        assert_eq!(k.base_url, "https://api.kraken.com");
        assert_eq!(k.timeout_secs, Some(10));
        assert_eq!(k.max_body_bytes, 8 << 20);
        let g = &c.sources[1];
        assert_eq!(g.api_key_env.as_deref(), Some("CG_KEY"));
        assert_eq!(g.ids[&Pair::new("AKT-USD").unwrap()], "akash-network");
        assert_eq!(g.ids.len(), 1, "only the file's ids");
        assert_eq!(g.base_url, "https://api.coingecko.com/api/v3");
        assert_eq!(g.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.alerts.unwrap()["factor"].as_float(), Some(3.0));
    }

    #[test]
    fn errors_name_the_entry_and_the_pair() {
        let e = err("[[sources]]\nkind = \"kraken\"\n[[sources]]\nkind = \"bitstamp\"\n");
        assert!(e.contains("sources[1]") && e.contains("bitstamp"), "{e}");

        let e = err("[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\", \"eth-usd\"]\n");
        assert!(
            e.contains("sources[0] (kraken)") && e.contains("eth-usd"),
            "{e}"
        );

        let e = err("[[sources]]\nkind = \"coingecko\"\nids = { \"btc\" = \"bitcoin\" }\n");
        assert!(
            e.contains("sources[0] (coingecko)") && e.contains("in ids") && e.contains("btc"),
            "{e}"
        );

        let e = err("[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\", \"BTC-USD\"]\n");
        assert!(e.contains("BTC-USD") && e.contains("twice"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let e = err("[[sources]]\nkind = \"kraken\"\ntimout_secs = 3\n");
        assert!(e.contains("timout_secs") && e.contains("line 3"), "{e}");
        let e = err("intervall_secs = 60\n[[sources]]\nkind = \"kraken\"\n");
        assert!(e.contains("intervall_secs"), "{e}");
    }

    #[test]
    fn other_invalid_values_are_refused() {
        let base = "[[sources]]\nkind = \"kraken\"\n";
        assert!(err(&format!("interval_secs = 0\n{base}")).contains("interval_secs"));
        assert!(err(&format!("max_clock_skew_secs = -1\n{base}")).contains("max_clock_skew_secs"));
        assert!(
            err(&format!("max_clock_skew_secs = 86401\n{base}")).contains("max_clock_skew_secs")
        );
        assert!(err(&format!("{base}timeout_secs = 60\n")).contains("timeout_secs"));
        assert!(err(&format!("{base}max_body_bytes = 0\n")).contains("max_body_bytes = 0"));
        assert!(err(&format!("{base}base_url = \"ftp://x\"\n")).contains("base_url"));
        assert!(err(&format!("{base}pairs = []\n")).contains("empty"));
        assert!(err(&format!("{base}pairs = \"some\"\n")).contains("all"));
        assert!(err(&format!("{base}{base}")).contains("distinct `name`"));
        assert!(err("interval_secs = 60\n").contains("no [[sources]]"));
        let e = err("[[sources]]\nkind = \"coingecko\"\napi_key_env = \"sk-live-123 abc\"\n");
        assert!(e.contains("environment variable name"), "{e}");
    }

    #[test]
    fn two_entries_of_one_kind_with_distinct_names() {
        let c = Config::from_toml_str(
            "[[sources]]\nkind = \"binance\"\n[[sources]]\nkind = \"binance\"\nname = \"binance_all\"\npairs = \"all\"\n",
        )
        .unwrap();
        assert_eq!(c.sources[1].name.as_str(), "binance_all");
        assert_eq!(c.sources[1].pairs, PairSelection::All);
        assert_eq!(
            c.sources[0].pairs,
            PairSelection::List(ExchangeKind::Binance.default_pairs())
        );
    }

    #[test]
    fn example_file_at_the_repo_root_is_the_default() {
        let example = include_str!("../../cryptomon.toml");
        assert_eq!(Config::from_toml_str(example).unwrap(), Config::default());
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cryptomon.toml");
        std::fs::write(&path, "[[sources]]\nkind = \"nope\"\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("cryptomon.toml") && e.contains("nope"), "{e}");
        assert!(Config::load(dir.path().join("missing.toml")).is_err());
        std::fs::write(&path, "[[sources]]\nkind = \"kraken\"\n").unwrap();
        let refuse = |_: &Config| Err(Error::Config("sources[0] (kraken): no".to_owned()));
        let e = Config::load_checked(&path, refuse).unwrap_err().to_string();
        assert!(
            e.ends_with("cryptomon.toml: sources[0] (kraken): no"),
            "{e}"
        );
    }
}
