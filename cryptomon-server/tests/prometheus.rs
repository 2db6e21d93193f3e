//! A real Prometheus scrapes `serve()` over the demo market: the scraped gauges equal
//! `/api/summary`'s values, every panel of the Grafana dashboard (`deploy/grafana/`) returns
//! data, and the alerting rules (`deploy/prometheus/`) evaluate without error.
//!
//! Prometheus comes from `eval "$(scripts/prometheus.sh start)"`, which sets
//! `CRYPTOMON_TEST_PROMETHEUS` (its address) and `CRYPTOMON_TEST_PROMETHEUS_TARGETS` (the
//! directory of its scrape targets, where a test adds its server). Without them the tests are
//! skipped, except under `CI=true`, where they fail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptomon_core::config::Config;
use cryptomon_core::pipeline::Alerting;
use cryptomon_core::secrets::Secrets;
use cryptomon_mock::MemoryStore;
use cryptomon_server::{ServeOptions, demo_sources, serve};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const URL_VAR: &str = "CRYPTOMON_TEST_PROMETHEUS";
const TARGETS_VAR: &str = "CRYPTOMON_TEST_PROMETHEUS_TARGETS";
const DASHBOARD: &str = include_str!("../../deploy/grafana/cryptomon.json");

/// A rule that fires for every series at once, so the alert event counter has data.
const ALERT_CONFIG: &str = r#"
[[sources]]
kind = "kraken"

[[alerts.rules]]
name = "any-price"
kind = "threshold"
above = 0.000001
"#;

/// Prometheus's address and its targets directory, or `None` to skip.
fn prometheus(test: &str) -> Option<(String, String)> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var(URL_VAR), var(TARGETS_VAR)) {
        (Some(url), Some(targets)) => Some((url.trim_end_matches('/').to_owned(), targets)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{test}: {URL_VAR} or {TARGETS_VAR} is not set under CI=true; install Debian's \
             `prometheus` and run `eval \"$(scripts/prometheus.sh start)\"`"
        ),
        _ => {
            eprintln!(
                "{test}: skipped, {URL_VAR} is not set; to run it, install Debian's \
                 `prometheus` and run `eval \"$(scripts/prometheus.sh start)\"`"
            );
            None
        }
    }
}

/// A demo `serve()` with an alert rule, scraped by Prometheus; stops when dropped.
struct Scraped {
    base: String,
    instance: String,
    target_file: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
}

impl Drop for Scraped {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.target_file);
    }
}

async fn start_scraped(targets: &str, name: &str) -> Scraped {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = listener.local_addr().unwrap().to_string();
    let config = Config::from_toml_str(ALERT_CONFIG).unwrap();
    let options = ServeOptions {
        seed_history: true,
        alerting: Alerting::from_config(&config, &Secrets::default()).unwrap(),
        ..ServeOptions::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let store = Arc::new(MemoryStore::new());
        serve(listener, store, demo_sources(), options, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let target_file =
        std::path::Path::new(targets).join(format!("{name}-{}.json", std::process::id()));
    let entry = serde_json::json!([{ "targets": [instance] }]);
    // Written whole, then renamed: Prometheus never reads half a file.
    let partial = target_file.with_extension("tmp");
    std::fs::write(&partial, entry.to_string()).unwrap();
    std::fs::rename(&partial, &target_file).unwrap();
    Scraped {
        base: format!("http://{instance}"),
        instance,
        target_file,
        _stop: stop,
    }
}

/// The result vector of an instant query.
async fn query(http: &reqwest::Client, prometheus: &str, promql: &str) -> Vec<Value> {
    let body: Value = http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until `promql` returns at least one sample; returns them.
async fn until_data(http: &reqwest::Client, prometheus: &str, promql: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let result = query(http, prometheus, promql).await;
        if !result.is_empty() {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "no data for {promql} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

fn label<'a>(sample: &'a Value, name: &str) -> &'a str {
    sample["metric"][name].as_str().unwrap_or_default()
}

/// The values of one gauge scraped from `instance`, by (source, pair).
async fn gauge(
    http: &reqwest::Client,
    prometheus: &str,
    name: &str,
    instance: &str,
) -> std::collections::BTreeMap<(String, String), f64> {
    query(
        http,
        prometheus,
        &format!("{name}{{instance=\"{instance}\"}}"),
    )
    .await
    .iter()
    .map(|s| {
        (
            (label(s, "source").to_owned(), label(s, "pair").to_owned()),
            value(s),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_summary_and_every_dashboard_panel_has_data() {
    let test = "prometheus_scrapes_the_summary_and_every_dashboard_panel_has_data";
    let Some((prometheus, targets)) = prometheus(test) else {
        return;
    };
    let server = start_scraped(&targets, "summary").await;
    let http = reqwest::Client::new();
    let instance = &server.instance;
    until_data(
        &http,
        &prometheus,
        &format!("cryptomon_price{{instance=\"{instance}\"}}"),
    )
    .await;

    // The summary changes at each minute: compare a scrape with the summary of the same as_of.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (summary, scraped) = loop {
        let summary: Value = http
            .get(format!("{}/api/summary", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let as_of = chrono::DateTime::parse_from_rfc3339(summary["as_of"].as_str().unwrap())
            .unwrap()
            .timestamp() as f64;
        let stamp = query(
            &http,
            &prometheus,
            &format!("cryptomon_data_timestamp_seconds{{instance=\"{instance}\"}}"),
        )
        .await;
        let mut scraped = std::collections::BTreeMap::new();
        for name in [
            "cryptomon_price",
            "cryptomon_price_change_ratio",
            "cryptomon_volatility_ratio",
            "cryptomon_volatility_rank_ratio",
            "cryptomon_price_rank_ratio",
            "cryptomon_volume_rank_ratio",
            "cryptomon_last_sample_age_seconds",
        ] {
            scraped.insert(name, gauge(&http, &prometheus, name, instance).await);
        }
        let stamp_after = query(
            &http,
            &prometheus,
            &format!("cryptomon_data_timestamp_seconds{{instance=\"{instance}\"}}"),
        )
        .await;
        if stamp.first().map(value) == Some(as_of) && stamp_after.first().map(value) == Some(as_of)
        {
            break (summary, scraped);
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never held the summary's as_of {as_of}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let series = summary["series"].as_array().unwrap();
    assert_eq!(series.len(), 36);
    assert_eq!(
        scraped["cryptomon_price"].len(),
        series.len(),
        "one price per series"
    );
    let now = chrono::Utc::now().timestamp() as f64;
    for s in series {
        let key = (
            s["source"].as_str().unwrap().to_owned(),
            s["pair"].as_str().unwrap().to_owned(),
        );
        let get = |name: &str| scraped[name].get(&key).copied();
        let f = |field: &str| s[field].as_f64();
        assert_eq!(get("cryptomon_price"), f("last"), "{key:?} price");
        assert_eq!(
            get("cryptomon_price_change_ratio"),
            f("change_pct").map(|v| v / 100.0),
            "{key:?} change"
        );
        assert_eq!(
            get("cryptomon_volatility_ratio"),
            f("volatility_pct").map(|v| v / 100.0),
            "{key:?} volatility"
        );
        assert_eq!(
            get("cryptomon_volatility_rank_ratio"),
            f("volatility_rank"),
            "{key:?} volatility rank"
        );
        assert_eq!(
            get("cryptomon_price_rank_ratio"),
            f("price_rank"),
            "{key:?} price rank"
        );
        assert_eq!(
            get("cryptomon_volume_rank_ratio"),
            f("volume_rank"),
            "{key:?} volume rank"
        );
        let last_tick = chrono::DateTime::parse_from_rfc3339(s["last_tick"].as_str().unwrap())
            .unwrap()
            .timestamp() as f64;
        let age = get("cryptomon_last_sample_age_seconds").unwrap();
        // Scraped a moment before `now` (a minute's leeway for a loaded machine).
        assert!(
            (now - last_tick - 60.0..=now - last_tick).contains(&age),
            "{key:?} age {age}, tick {last_tick}, now {now}"
        );
    }
    let spreads = query(
        &http,
        &prometheus,
        &format!("cryptomon_spread_ratio{{instance=\"{instance}\"}}"),
    )
    .await;
    assert_eq!(spreads.len(), summary["spreads"].as_array().unwrap().len());
    for spread in summary["spreads"].as_array().unwrap() {
        let pair = spread["pair"].as_str().unwrap();
        let scraped = spreads.iter().find(|s| label(s, "pair") == pair).map(value);
        assert_eq!(
            scraped,
            spread["spread_bps"].as_f64().map(|v| v / 10_000.0),
            "{pair} spread"
        );
    }
    let stale = query(
        &http,
        &prometheus,
        &format!("cryptomon_source_stale{{instance=\"{instance}\"}}"),
    )
    .await;
    assert_eq!(stale.len(), 3, "one per demo source");
    assert!(stale.iter().all(|s| value(s) == 0.0), "{stale:?}");

    promtool_checks_metrics(&http, &server.base).await;
    every_panel_has_data(&http, &prometheus).await;
    rules_evaluate(&http, &prometheus).await;
}

/// `promtool check metrics` (Prometheus's linter of names, units and help texts) finds nothing
/// to say about `/metrics`.
async fn promtool_checks_metrics(http: &reqwest::Client, base: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("cryptomon_alert_events_total{rule=\"any-price\",status=\"fired\"}"),
        "{text}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package has it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every query of the dashboard (panels and variables), its variables set to "All", returns
/// data; every data source is the import's input, so importing needs no edits.
async fn every_panel_has_data(http: &reqwest::Client, prometheus: &str) {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let all = |expr: &str| {
        ["$instance", "$source", "$pair"]
            .iter()
            .fold(expr.to_owned(), |e, v| e.replace(v, ".*"))
    };
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        assert_eq!(variable["datasource"]["uid"], "${DS_PROMETHEUS}");
        // `label_values(METRIC, LABEL)` as PromQL: the label's values are those of the series.
        let definition = variable["definition"].as_str().unwrap();
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap();
        let (metric, label_name) = inner.rsplit_once(", ").unwrap();
        let result = until_data(
            http,
            prometheus,
            &format!("count by ({label_name}) ({})", all(metric)),
        )
        .await;
        assert!(
            result.iter().all(|s| !label(s, label_name).is_empty()),
            "{definition}"
        );
    }
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let expr = all(target["expr"].as_str().unwrap());
            assert!(
                !expr.contains('$'),
                "{title}: a variable the test does not set: {expr}"
            );
            let result = until_data(http, prometheus, &expr).await;
            eprintln!(
                "panel {title:?}: {expr} -> {} series, first {}",
                result.len(),
                result[0]["value"][1]
            );
            queries += 1;
        }
    }
    assert!(queries >= 15, "{queries} panel queries");
}

/// Prometheus loaded every alerting rule and evaluates each without error on real data.
async fn rules_evaluate(http: &reqwest::Client, prometheus: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = http
            .get(format!("{prometheus}/api/v1/rules"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rules: Vec<&Value> = body["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        assert_eq!(
            rules.len(),
            6,
            "the rules of deploy/prometheus/alerts.yml: {body}"
        );
        let failing: Vec<_> = rules.iter().filter(|r| r["health"] != "ok").collect();
        if failing.is_empty() {
            // The demo is healthy: nothing is stale or failing.
            let firing: Vec<_> = rules
                .iter()
                .filter(|r| r["state"] == "firing")
                .map(|r| &r["name"])
                .collect();
            assert!(firing.is_empty(), "firing on a healthy demo: {firing:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rules not evaluated cleanly: {failing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
