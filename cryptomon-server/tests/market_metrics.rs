//! The market gauges of `/metrics` built from a summary: names, labels and values, series that
//! left the window, the `[prometheus]` selection and its limit.

use cryptomon_core::{Pair, SeriesSummary, SourceName, Spread, Summary, Tick};
use cryptomon_server::api::{DEFAULT_MAX_SERIES, MarketExport, render_market};

const AS_OF: &str = "2026-12-07T12:00:00Z";

fn series(source: &str, pair: &str, last: f64) -> SeriesSummary {
    SeriesSummary {
        source: SourceName::new(source).unwrap(),
        pair: Pair::new(pair).unwrap(),
        samples: 1440,
        first: 100.0,
        last,
        last_tick: Tick::parse(AS_OF).unwrap(),
        change_pct: (last / 100.0 - 1.0) * 100.0,
        high: last.max(100.0),
        low: last.min(100.0),
        mean: 100.0,
        volatility_pct: Some(42.5),
        max_drawdown_pct: 1.0,
        rsi_14: None,
        sma_60: None,
        ema_60: last,
        gaps: 0,
        price_std: Some(1.0),
        volume_last: None,
        volume_std: None,
        volatility_rank: Some(0.25),
        price_rank: Some(0.5),
        volume_rank: None,
    }
}

fn summary(series: Vec<SeriesSummary>) -> Summary {
    Summary {
        schema: "cryptomon.summary/v1".into(),
        as_of: Tick::parse(AS_OF).unwrap(),
        window_minutes: 1440,
        series,
        spreads: vec![Spread {
            pair: Pair::new("BTC-USD").unwrap(),
            sources: 2,
            min: 100.0,
            max: 101.0,
            min_source: SourceName::new("kraken").unwrap(),
            max_source: SourceName::new("coinbase").unwrap(),
            spread_bps: 100.0,
        }],
        alerts: Vec::new(),
    }
}

/// The clock 90 s after `AS_OF`.
fn now() -> i64 {
    Tick::parse(AS_OF).unwrap().unix() + 90
}

fn render(summary: &Summary, export: &MarketExport) -> String {
    render_market(summary, now(), 180, export).0
}

#[test]
fn each_series_has_its_gauges_in_base_units() {
    let text = render(
        &summary(vec![
            series("kraken", "BTC-USD", 101.0),
            series("coinbase", "BTC-USD", 100.5),
        ]),
        &MarketExport::default(),
    );
    let labels = r#"{source="kraken",pair="BTC-USD",quote="USD"}"#;
    for line in [
        format!("cryptomon_price{labels} 101\n"),
        format!(
            "cryptomon_price_change_ratio{labels} {}\n",
            1.0000000000000009 / 100.0
        ),
        format!("cryptomon_volatility_ratio{labels} 0.425\n"),
        format!("cryptomon_price_rank_ratio{labels} 0.5\n"),
        format!("cryptomon_last_sample_age_seconds{labels} 90\n"),
        "cryptomon_spread_ratio{pair=\"BTC-USD\",quote=\"USD\"} 0.01\n".to_owned(),
        "cryptomon_source_last_sample_age_seconds{source=\"kraken\"} 90\n".to_owned(),
        "cryptomon_source_stale{source=\"kraken\"} 0\n".to_owned(),
        "cryptomon_data_age_seconds 90\n".to_owned(),
        "cryptomon_series_over_limit 0\n".to_owned(),
        "# TYPE cryptomon_price gauge\n".to_owned(),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    // A rank the summary leaves undefined is no sample, not a 0.
    assert!(!text.contains("cryptomon_volume_rank_ratio{"), "{text}");
}

#[test]
fn a_series_that_left_the_window_leaves_metrics() {
    let before = render(
        &summary(vec![
            series("kraken", "BTC-USD", 101.0),
            series("kraken", "ETH-USD", 3000.0),
        ]),
        &MarketExport::default(),
    );
    assert!(before.contains("pair=\"ETH-USD\""), "{before}");
    let after = render(
        &summary(vec![series("kraken", "BTC-USD", 101.0)]),
        &MarketExport::default(),
    );
    assert!(
        !after.contains("ETH-USD"),
        "a gauge outlived its series:\n{after}"
    );
    assert!(after.contains("cryptomon_price{source=\"kraken\",pair=\"BTC-USD\""));
}

#[test]
fn a_stale_source_says_so() {
    let mut old = series("kraken", "ETH-USD", 3000.0);
    old.last_tick = Tick::parse("2026-12-07T11:50:00Z").unwrap();
    let text = render(
        &summary(vec![series("coinbase", "BTC-USD", 101.0), old]),
        &MarketExport::default(),
    );
    assert!(
        text.contains("cryptomon_source_stale{source=\"kraken\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("cryptomon_source_stale{source=\"coinbase\"} 0\n"),
        "{text}"
    );
}

#[test]
fn the_config_selects_and_bounds_the_series() {
    let all = summary(vec![
        series("coinbase", "BTC-USD", 101.0),
        series("kraken", "BTC-USD", 101.0),
        series("kraken", "ETH-USD", 3000.0),
        series("kraken", "SOL-USD", 150.0),
    ]);
    let export = MarketExport::from_toml(Some(
        &toml::from_str("sources = [\"kraken\"]\nmax_series = 2").unwrap(),
    ))
    .unwrap();
    let (text, over_limit) = render_market(&all, now(), 180, &export);
    assert_eq!(over_limit, 1);
    let prices = text
        .lines()
        .filter(|l| l.starts_with("cryptomon_price{"))
        .count();
    assert_eq!(prices, 2, "{text}");
    assert!(!text.contains("coinbase"), "{text}");
    assert!(text.contains("cryptomon_series_over_limit 1\n"), "{text}");

    let export =
        MarketExport::from_toml(Some(&toml::from_str("pairs = [\"ETH-USD\"]").unwrap())).unwrap();
    let text = render(&all, &export);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("cryptomon_price{"))
            .count(),
        1
    );
    assert!(
        !text.contains("cryptomon_spread_ratio{"),
        "BTC-USD's spread is not selected"
    );
}

#[test]
fn the_default_exports_every_series_up_to_the_limit() {
    assert_eq!(
        MarketExport::from_toml(None).unwrap(),
        MarketExport::default()
    );
    assert_eq!(MarketExport::default().max_series, DEFAULT_MAX_SERIES);
}

#[test]
fn a_bad_prometheus_table_names_the_key() {
    for (text, needle) in [
        ("max_series = -1", "max_series = -1"),
        ("pairs = [\"btc-usd\"]", "pairs[0] = \"btc-usd\""),
        ("sources = [\"Kraken\"]", "sources[0] = \"Kraken\""),
        ("max_sereis = 3", "max_sereis"),
    ] {
        let error = MarketExport::from_toml(Some(&toml::from_str(text).unwrap())).unwrap_err();
        assert!(
            error.contains(needle) && error.starts_with("[prometheus]"),
            "{text}: {error}"
        );
    }
}
