//! The JSON routes: health, summary, metrics, one metric, candles, alerts.
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cryptomon_core::alerting::{KeyedAlertEvent, Rule};
use cryptomon_core::{
    CandleInterval, Error, Measure, Pair, Point, SeriesSummary, SourceName, Tick, engine, pipeline,
};
use serde::Deserialize;

use super::aggregates::{ViewKey, json_bytes};
use super::alert_log::MAX_LOOKBACK_DAYS;
use super::errors::{ApiError, ErrorBody};
use super::http_cache::{NO_STORE, body_etag, cached_json, matches};
use super::limits::LimitErrors;
use super::model::{AlertEvents, Health, MetricDetail, MetricInfo, MetricStats, SourceHealth};
use super::params::{MetricIdParam, RuleNameParam, TimeParam, parse_metric_id, parse_time};
use super::state::AppState;

/// Status, freshness of each source, version.
#[utoipa::path(get, path = "/api/health", tag = "status",
    responses(
        (status = 200, description = "Aggregates loaded, or none yet (`status: empty`)", body = Health),
        (status = 503, description = "The store cannot be read (`status: unavailable`)", body = Health),
        LimitErrors,
    ))]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let stale_after = state.options().stale_after.as_secs();
    let mut health = Health {
        status: "empty".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        as_of: None,
        age_secs: None,
        stale_after_secs: stale_after,
        sources: Vec::new(),
    };
    let mut status = StatusCode::OK;
    match state.aggregates().await {
        Ok(a) => {
            let now = Utc::now().timestamp();
            let as_of = a.summary.as_of;
            health.sources = SourceHealth::of_summary(&a.summary, now, stale_after);
            health.status = if health.sources.iter().any(|s| s.stale) {
                "stale"
            } else {
                "ok"
            }
            .into();
            health.as_of = Some(as_of.to_string());
            health.age_secs = Some(now - as_of.unix());
        }
        Err(ApiError::NoData) => {}
        Err(_) => {
            health.status = "unavailable".into();
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    (status, [(CACHE_CONTROL, NO_STORE)], Json(health)).into_response()
}

/// The summary of the latest transform (`cryptomon.summary/v1`).
#[utoipa::path(get, path = "/api/summary", tag = "aggregates",
    responses(
        (status = 200, description = "The summary", body = cryptomon_core::Summary),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 503, description = "No aggregates yet, or the store cannot be read", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed"))),
        LimitErrors,
    ))]
pub(crate) async fn summary(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = state.aggregates().await?;
    Ok(cached_json(&headers, &a.etag, a.summary_json.clone()))
}

/// Every metric: one per series and measure (`price`, and `volume` where the source gives one).
#[utoipa::path(get, path = "/api/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Every metric", body = Vec<MetricInfo>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 503, description = "No aggregates yet, or the store cannot be read", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed"))),
        LimitErrors,
    ))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = state.aggregates().await?;
    Ok(cached_json(&headers, &a.etag, a.metrics_json.clone()))
}

/// `GET /api/alerts` parameters.
#[derive(Debug, Deserialize)]
pub(crate) struct AlertsQuery {
    since: Option<String>,
    rule: Option<String>,
    pair: Option<String>,
}

/// Stored alert events (fired and resolved) of the configured rules.
#[utoipa::path(get, path = "/api/alerts", tag = "aggregates",
    params(
        ("since" = Option<TimeParam>, Query, description = "Earliest tick; default 24 h before \
            the latest aggregates. The look-back is at most 31 days: an earlier time counts from \
            that bound, which the answer's `since` gives"),
        ("rule" = Option<RuleNameParam>, Query, description = "Only this rule's events"),
        ("pair" = Option<Pair>, Query, description = "Only this pair's events"),
    ),
    responses(
        (status = 200, description = "The matching events", body = AlertEvents),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "A malformed or repeated parameter", body = ErrorBody),
        (status = 500, description = "A bug (logged)", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed"))),
        LimitErrors,
    ))]
pub(crate) async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::BadRequest("malformed query string (each parameter at most once)".into())
    })?;
    // Events exist without aggregates only in odd cases; the clock anchors them then.
    let as_of = match state.aggregates().await {
        Ok(a) => Some(a.summary.as_of),
        Err(ApiError::NoData) => None,
        Err(e) => return Err(e),
    };
    let anchor = as_of.unwrap_or_else(|| Tick::floor(Utc::now(), 60));
    let since = match q.since.as_deref() {
        None => anchor.add_secs(-86_400),
        Some(s) => parse_time("since", s)?,
    };
    // The look-back is bounded so a request cannot list years of partitions; any valid time is
    // still answered, from the bound.
    let since = since.max(anchor.add_secs(-86_400 * MAX_LOOKBACK_DAYS as i64));
    if let Some(rule) = &q.rule
        && !Rule::is_valid_name(rule)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid rule {:?}: a rule name is 1 to 64 of a-z, 0-9, - and _",
            rule.chars().take(70).collect::<String>()
        )));
    }
    if let Some(p) = &q.pair {
        Pair::new(p).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let (rule, pair) = (q.rule, q.pair);
    let events = state
        .alert_log()
        .query(
            state.store().as_ref(),
            as_of,
            since,
            rule.as_deref(),
            pair.as_deref(),
        )
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let body = json_bytes(&AlertEvents {
        since,
        events: events.iter().map(|e| KeyedAlertEvent::from(&**e)).collect(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    Ok(cached_json(&headers, &body_etag(&body), body))
}

/// One metric over the last 24 h: its points, stats and rank.
#[utoipa::path(get, path = "/api/metrics/{id}", tag = "metrics",
    params(("id" = MetricIdParam, Path, description = "The metric: `source:pair:measure`")),
    responses(
        (status = 200, description = "The metric", body = MetricDetail),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 404, description = "No such metric", body = ErrorBody),
        (status = 500, description = "A bug (logged)", body = ErrorBody),
        (status = 503, description = "No aggregates yet, or the store cannot be read", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed"))),
        LimitErrors,
    ))]
pub(crate) async fn metric(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::BadRequest("invalid metric id".into()))?;
    parse_metric_id(&id)?;
    let a = state.aggregates().await?;
    let entry = a
        .metrics
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("unknown metric {id}")))?
        .clone();
    if matches(&headers, &a.etag) {
        return Ok(cached_json(&headers, &a.etag, Default::default()));
    }
    let series = a.summary.series[entry.series].clone();
    let ranked = a.ranked;
    let as_of = a.summary.as_of.to_string();
    let key = ViewKey::Metric(id.clone());
    let body = a
        .view(key, move |window| {
            let points = engine::points(window, &series.source, &series.pair, entry.measure)?;
            let (stats, rank, ranked_on_measure, volatility_rank) = match entry.measure {
                Measure::Price => (
                    price_stats(&series),
                    series.price_rank,
                    ranked.price,
                    series.volatility_rank,
                ),
                Measure::Volume => (
                    point_stats(&points),
                    series.volume_rank,
                    ranked.volume,
                    None,
                ),
            };
            json_bytes(&MetricDetail {
                id,
                source: series.source.to_string(),
                pair: series.pair.to_string(),
                measure: entry.measure.to_string(),
                as_of,
                points,
                stats,
                rank,
                ranked: ranked_on_measure,
                volatility_rank,
                volatility_ranked: ranked.volatility,
            })
        })
        .await?;
    Ok(cached_json(&headers, &a.etag, body))
}

/// The summary's price metrics, exactly as the transform computed them.
fn price_stats(s: &SeriesSummary) -> MetricStats {
    MetricStats {
        samples: s.samples,
        first: s.first,
        last: s.last,
        change_pct: s.change_pct,
        high: s.high,
        low: s.low,
        mean: s.mean,
        std: s.price_std,
        volatility_pct: s.volatility_pct,
        max_drawdown_pct: Some(s.max_drawdown_pct),
        rsi_14: s.rsi_14,
        sma_60: s.sma_60,
        ema_60: Some(s.ema_60),
        gaps: Some(s.gaps),
    }
}

/// Plain statistics of a measure the summary does not describe point by point (volume).
fn point_stats(points: &[Point]) -> MetricStats {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return MetricStats::default();
    };
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.v).sum::<f64>() / n;
    let std = (points.len() >= 2)
        .then(|| (points.iter().map(|p| (p.v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    let change_pct = if first.v > 0.0 {
        (last.v / first.v - 1.0) * 100.0
    } else {
        0.0
    };
    MetricStats {
        samples: points.len() as u32,
        first: first.v,
        last: last.v,
        change_pct,
        high: points.iter().map(|p| p.v).fold(f64::MIN, f64::max),
        low: points.iter().map(|p| p.v).fold(f64::MAX, f64::min),
        mean,
        std,
        ..MetricStats::default()
    }
}

/// The query of `/api/candles`; every field optional here so a missing one gets a clear 400.
#[derive(Debug, Deserialize)]
pub(crate) struct CandlesQuery {
    source: Option<String>,
    pair: Option<String>,
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The candles of one series (`cryptomon.candles/v1`): of the window state (the last 24 h), or
/// with `from` or `to`, of any range, from the window and the stored history days.
#[utoipa::path(get, path = "/api/candles", tag = "aggregates",
    params(
        ("source" = SourceName, Query, description = "The series' source"),
        ("pair" = Pair, Query, description = "The series' pair"),
        ("interval" = Option<CandleInterval>, Query, description = "The candles' length; \
            default `5m`"),
        ("from" = Option<TimeParam>, Query, description = "Earliest tick; default 24 h before \
            `to`. The range may hold at most 5,000 candles, counted from its first stored \
            sample"),
        ("to" = Option<TimeParam>, Query, description = "Latest tick; default the latest \
            aggregates' `as_of`"),
    ),
    responses(
        (status = 200, description = "The candles; history days that could not be read are \
            listed in `skipped_days`", body = cryptomon_core::Candles),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "A missing, malformed or repeated parameter, `from` after \
            `to`, or a range of more than 5,000 candles", body = ErrorBody),
        (status = 404, description = "No such series", body = ErrorBody),
        (status = 500, description = "A bug (logged)", body = ErrorBody),
        (status = 503, description = "No aggregates yet, or the store cannot be read", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed"))),
        LimitErrors,
    ))]
pub(crate) async fn candles(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CandlesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::BadRequest("malformed query string (each parameter at most once)".into())
    })?;
    let required = |v: Option<String>, name: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::BadRequest(format!("missing parameter {name}")))
    };
    let source = SourceName::new(&required(q.source, "source")?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let pair =
        Pair::new(&required(q.pair, "pair")?).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let interval = match q.interval.as_deref() {
        None => CandleInterval::M5,
        Some(s) => s.parse::<CandleInterval>().map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid interval {:?}: expected 1m, 5m, 15m, 1h or 1d",
                s.chars().take(16).collect::<String>()
            ))
        })?,
    };
    let from = q
        .from
        .as_deref()
        .map(|s| parse_time("from", s))
        .transpose()?;
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::BadRequest(format!(
            "invalid from {from}: after to {to}"
        )));
    }
    let a = state.aggregates().await?;
    if from.is_some() || to.is_some() {
        let to = to.unwrap_or(a.summary.as_of);
        let from = from.unwrap_or(to.add_secs(-86_400));
        if from > to {
            return Err(ApiError::BadRequest(format!(
                "invalid from {from}: after to {to} (the latest aggregates)"
            )));
        }
        let candles = pipeline::range_candles(
            state.store().as_ref(),
            state.history(),
            a.window().cloned(),
            &source,
            &pair,
            interval,
            from,
            to,
        )
        .await
        .map_err(|e| match e {
            Error::TooManyCandles { .. } => ApiError::BadRequest(e.to_string()),
            Error::UnknownSeries { .. } => {
                ApiError::NotFound(format!("unknown series {source}:{pair}"))
            }
            e if e.is_retryable() || matches!(e, Error::Store { .. }) => ApiError::unavailable(&e),
            e => ApiError::internal(&e),
        })?;
        let body = json_bytes(&candles).map_err(|e| ApiError::internal(&e))?;
        return Ok(cached_json(&headers, &body_etag(&body), body));
    }
    let window = a.window().ok_or(ApiError::NoData)?;
    let sid = window
        .sid(&source, &pair)
        .ok_or_else(|| ApiError::NotFound(format!("unknown series {source}:{pair}")))?;
    if matches(&headers, &a.etag) {
        return Ok(cached_json(&headers, &a.etag, Default::default()));
    }
    let body = a
        .view(ViewKey::Candles(sid, interval), move |window| {
            json_bytes(&engine::candles(window, &source, &pair, interval)?)
        })
        .await?;
    Ok(cached_json(&headers, &a.etag, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_stats_are_computed_from_points() {
        let t = Tick::from_unix(0);
        let points: Vec<Point> = [100.0, 200.0, 300.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| Point {
                t: t.add_secs(60 * i as i64),
                v,
            })
            .collect();
        let s = point_stats(&points);
        assert_eq!(
            (s.samples, s.first, s.last, s.high, s.low),
            (3, 100.0, 300.0, 300.0, 100.0)
        );
        assert!((s.mean - 200.0).abs() < 1e-12);
        assert!((s.std.unwrap() - 100.0).abs() < 1e-12);
        assert!((s.change_pct - 200.0).abs() < 1e-12);
        assert_eq!(s.rsi_14, None);
    }
}
