//! The market gauges of `/metrics`: each series' price, change, volatility, ranks and age, each
//! pair's spread and each source's freshness, in Prometheus's text format, built from the loaded
//! summary at every scrape.
//!
//! Built at every scrape, not kept in a registry: a series that left the window leaves
//! `/metrics` with it instead of staying at its last value. [`MarketExport`] (the config's
//! `[prometheus]` table) bounds which series are exported. The line format and its escaping are
//! `metrics_exporter_prometheus::formatting`'s, the exporter of the operational counters.
//!
//! Names follow Prometheus's conventions: base units (`_seconds`), percentages as `_ratio`
//! (`change_pct` 2.5 is `cryptomon_price_change_ratio` 0.025). Series carry the labels `source`,
//! `pair` and `quote` (the pair's quote currency, the unit of its price).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use cryptomon_core::{Pair, SeriesSummary, SourceName, Summary};
use metrics_exporter_prometheus::formatting::{
    sanitize_label_value, write_help_line, write_type_line,
};
use serde::Deserialize;

use super::errors::ApiError;
use super::model::SourceHealth;
use super::state::AppState;

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Series exported when the config does not say.
pub const DEFAULT_MAX_SERIES: usize = 500;

/// The most series a config may ask for.
const MAX_SERIES_LIMIT: usize = 100_000;

/// The gauges of one series: name, help, value (given the series and the clock in Unix seconds;
/// `None` leaves the series out of that gauge). Adding a gauge is adding a line.
type SeriesGauge = (
    &'static str,
    &'static str,
    fn(&SeriesSummary, i64) -> Option<f64>,
);

#[rustfmt::skip]
const SERIES_GAUGES: &[SeriesGauge] = &[
    ("cryptomon_price", "Last price of the series, in its quote currency.", |s, _| Some(s.last)),
    ("cryptomon_price_change_ratio", "Change of the price over the 24 h window: last / first - 1.", |s, _| Some(s.change_pct / 100.0)),
    ("cryptomon_volatility_ratio", "Annualised volatility of one-minute log returns over the window (volatility_pct / 100).", |s, _| s.volatility_pct.map(|v| v / 100.0)),
    ("cryptomon_volatility_rank_ratio", "Share of the series whose volatility_pct is at most this one's.", |s, _| s.volatility_rank),
    ("cryptomon_price_rank_ratio", "Share of the series whose price standard deviation (absolute: favours expensive assets) is at most this one's.", |s, _| s.price_rank),
    ("cryptomon_volume_rank_ratio", "Share of the series whose volume standard deviation is at most this one's.", |s, _| s.volume_rank),
    ("cryptomon_last_sample_age_seconds", "Seconds since the series' last sample.", |s, now| Some((now - s.last_tick.unix()) as f64)),
];

/// Which series `/metrics` exports: the config's `[prometheus]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketExport {
    /// Only the series of these sources (`None`: every source).
    pub sources: Option<BTreeSet<String>>,
    /// Only the series and spreads of these pairs (`None`: every pair).
    pub pairs: Option<BTreeSet<String>>,
    /// At most this many series (and spreads), in the summary's order; the rest are left out,
    /// counted by `cryptomon_series_over_limit`, and a warning is logged once per summary.
    pub max_series: usize,
}

impl Default for MarketExport {
    fn default() -> Self {
        MarketExport {
            sources: None,
            pairs: None,
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    #[serde(default)]
    sources: Option<Vec<String>>,
    #[serde(default)]
    pairs: Option<Vec<String>>,
    #[serde(default)]
    max_series: Option<i64>,
}

impl MarketExport {
    /// Reads the `[prometheus]` table (`None`: the defaults); the error names the bad key.
    pub fn from_toml(table: Option<&toml::Value>) -> Result<Self, String> {
        let Some(table) = table else {
            return Ok(MarketExport::default());
        };
        let raw: RawExport = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| format!("[prometheus]: {}", e.message()))?;
        let sources = raw
            .sources
            .map(|names| {
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| {
                        SourceName::new(&name)
                            .map(|_| name.clone())
                            .map_err(|e| format!("[prometheus] sources[{i}] = {name:?}: {e}"))
                    })
                    .collect::<Result<BTreeSet<_>, _>>()
            })
            .transpose()?;
        let pairs = raw
            .pairs
            .map(|pairs| {
                pairs
                    .into_iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        Pair::check(&pair)
                            .map(|()| pair.clone())
                            .map_err(|e| format!("[prometheus] pairs[{i}] = {pair:?}: {e}"))
                    })
                    .collect::<Result<BTreeSet<_>, _>>()
            })
            .transpose()?;
        let max_series = match raw.max_series {
            None => DEFAULT_MAX_SERIES,
            Some(n) if (0..=MAX_SERIES_LIMIT as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(format!(
                    "[prometheus] max_series = {n}: must be between 0 and {MAX_SERIES_LIMIT}"
                ));
            }
        };
        Ok(MarketExport {
            sources,
            pairs,
            max_series,
        })
    }

    fn takes_source(&self, source: &str) -> bool {
        self.sources.as_ref().is_none_or(|s| s.contains(source))
    }

    fn takes_pair(&self, pair: &str) -> bool {
        self.pairs.as_ref().is_none_or(|p| p.contains(pair))
    }
}

/// The market gauges of `summary` at `now` (Unix seconds), and how many selected series the
/// limit left out. A source is stale past `stale_after` seconds, as in `/api/health`.
pub fn render_market(
    summary: &Summary,
    now: i64,
    stale_after: u64,
    export: &MarketExport,
) -> (String, usize) {
    let mut out = String::new();
    let selected: Vec<&SeriesSummary> = summary
        .series
        .iter()
        .filter(|s| export.takes_source(s.source.as_str()) && export.takes_pair(s.pair.as_str()))
        .collect();
    let over_limit = selected.len().saturating_sub(export.max_series);
    let series = &selected[..selected.len() - over_limit];

    let as_of = summary.as_of.unix();
    #[rustfmt::skip]
    let totals = [
        ("cryptomon_data_timestamp_seconds", "Unix time of the summary's as_of, the latest tick in the store.", as_of as f64),
        ("cryptomon_data_age_seconds", "Seconds since the summary's as_of.", (now - as_of) as f64),
        ("cryptomon_series_over_limit", "Series selected for export but left out by [prometheus] max_series.", over_limit as f64),
    ];
    for (name, help, value) in totals {
        gauge(&mut out, name, help);
        sample(&mut out, name, &[], value);
    }

    for (name, help, value) in SERIES_GAUGES {
        gauge(&mut out, name, help);
        for s in series {
            if let Some(v) = value(s, now).filter(|v| v.is_finite()) {
                let labels = [
                    ("source", s.source.as_str()),
                    ("pair", s.pair.as_str()),
                    ("quote", s.pair.quote()),
                ];
                sample(&mut out, name, &labels, v);
            }
        }
    }

    let spread = "cryptomon_spread_ratio";
    gauge(
        &mut out,
        spread,
        "Cross-source spread of the pair's last prices: (max - min) / min.",
    );
    for s in summary
        .spreads
        .iter()
        .filter(|s| export.takes_pair(s.pair.as_str()))
        .take(export.max_series)
    {
        let labels = [("pair", s.pair.as_str()), ("quote", s.pair.quote())];
        sample(&mut out, spread, &labels, s.spread_bps / 10_000.0);
    }

    let health: Vec<SourceHealth> = SourceHealth::of_summary(summary, now, stale_after)
        .into_iter()
        .filter(|h| export.takes_source(&h.source))
        .collect();
    let (age, stale) = (
        "cryptomon_source_last_sample_age_seconds",
        "cryptomon_source_stale",
    );
    gauge(&mut out, age, "Seconds since the source's latest sample.");
    for h in &health {
        sample(&mut out, age, &[("source", &h.source)], h.age_secs as f64);
    }
    gauge(
        &mut out,
        stale,
        "1 when the source is stale (as /api/health says), else 0.",
    );
    for h in &health {
        sample(
            &mut out,
            stale,
            &[("source", &h.source)],
            f64::from(u8::from(h.stale)),
        );
    }
    (out, over_limit)
}

/// The market gauges of the loaded summary; empty before the first transform.
pub async fn market_metrics(state: &AppState) -> String {
    /// The `as_of` of the last summary whose over-limit warning was logged.
    static WARNED_FOR: AtomicI64 = AtomicI64::new(i64::MIN);
    let aggregates = match state.aggregates().await {
        Ok(a) => a,
        Err(ApiError::NoData) => return String::new(),
        Err(error) => {
            tracing::warn!(%error, "/metrics: cannot read the aggregates");
            return String::new();
        }
    };
    let summary = &aggregates.summary;
    let export = &state.options().market;
    let now = chrono::Utc::now().timestamp();
    let (text, over_limit) =
        render_market(summary, now, state.options().stale_after.as_secs(), export);
    if over_limit > 0
        && WARNED_FOR.swap(summary.as_of.unix(), Ordering::Relaxed) != summary.as_of.unix()
    {
        tracing::warn!(
            over_limit,
            max_series = export.max_series,
            "/metrics leaves out series past [prometheus] max_series; raise it or select sources and pairs"
        );
    }
    text
}

/// `GET /metrics` of a host that has only the market gauges (the api Lambda).
pub async fn market_metrics_response(state: AppState) -> Response {
    ([(CONTENT_TYPE, TEXT_FORMAT)], market_metrics(&state).await).into_response()
}

/// The counter of alert events read from the store, by rule and status.
pub(crate) async fn alert_event_metrics(state: &AppState) -> String {
    let name = "cryptomon_alert_events_total";
    let mut out = String::new();
    write_help_line(
        &mut out,
        name,
        None,
        None,
        "Alert events stored, by rule and status, as read since the process started.",
    );
    write_type_line(&mut out, name, None, None, "counter");
    for (rule, status, n) in state.alert_log().recent_counts().await {
        sample(
            &mut out,
            name,
            &[("rule", &rule), ("status", status)],
            n as f64,
        );
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str) {
    write_help_line(out, name, None, None, help);
    write_type_line(out, name, None, None, "gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", sanitize_label_value(value));
        }
        out.push('}');
    }
    // `Display` of an f64 is the shortest text that reads back to the same number.
    let _ = writeln!(out, " {value}");
}
