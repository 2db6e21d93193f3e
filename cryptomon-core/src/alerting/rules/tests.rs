//! The `[alerts]` table's parsing and checks.

use super::*;

fn parse(text: &str) -> Result<AlertConfig> {
    let value: toml::Value = toml::from_str(text).unwrap();
    AlertConfig::from_toml(value.get("alerts"))
}

#[test]
fn the_issue_example_parses() {
    let c = parse(
        r#"
        [[alerts.rules]]
        name = "volume-spike"
        kind = "spike"
        measure = "volume"
        factor = 3.0
        window_minutes = 60
        cooldown_minutes = 30
        [[alerts.webhooks]]
        url = "http://127.0.0.1:9000/hook"
        secret_env = "CRYPTOMON_WEBHOOK_SECRET"
        "#,
    )
    .unwrap();
    assert_eq!(
        c.rules[0].kind,
        RuleKind::Spike {
            measure: Measure::Volume,
            factor: 3.0,
            window_minutes: 60
        }
    );
    assert_eq!(c.rules[0].cooldown_minutes, 30);
    assert_eq!(c.webhooks[0].format, WebhookFormat::Json);
    assert_eq!(
        c.webhooks[0].secret_env.as_deref(),
        Some("CRYPTOMON_WEBHOOK_SECRET")
    );
}

#[test]
fn every_kind_with_its_fields() {
    let c = parse(
        r#"
        [[alerts.rules]]
        name = "btc-high"
        kind = "threshold"
        pair = "BTC-USD"
        above = 100000
        [[alerts.rules]]
        name = "moves"
        kind = "change"
        pct = 5
        [[alerts.rules]]
        name = "spread"
        kind = "spread"
        bps = 50
        [[alerts.rules]]
        name = "quiet"
        kind = "stale"
        source = "kraken"
        minutes = 5
        "#,
    )
    .unwrap();
    let kinds: Vec<&str> = c.rules.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["threshold", "change", "spread", "stale"]);
    assert_eq!(
        c.rules[1].kind,
        RuleKind::Change {
            pct: 5.0,
            window_minutes: 60
        }
    );
}

#[test]
fn bad_rules_are_refused_by_name() {
    for (text, want) in [
        (
            "name = \"x\"\nkind = \"spikes\"",
            "alert rule \"x\": kind \"spikes\"",
        ),
        (
            "name = \"x\"\nkind = \"spike\"\nfactor = -1",
            "alert rule \"x\": factor = -1",
        ),
        (
            "name = \"x\"\nkind = \"spike\"\nmeasure = \"temp\"",
            "measure \"temp\"",
        ),
        (
            "name = \"x\"\nkind = \"spike\"\nwindow_minutes = 5000",
            "window_minutes = 5000",
        ),
        (
            "name = \"x\"\nkind = \"threshold\"",
            "needs above, below or both",
        ),
        (
            "name = \"x\"\nkind = \"spread\"",
            "alert rule \"x\": kind \"spread\" needs bps",
        ),
        (
            "name = \"x\"\nkind = \"stale\"\nminutes = 5\npair = \"BTC-USD\"",
            "takes no pair",
        ),
        (
            "name = \"x\"\nkind = \"change\"\npct = 5\nbps = 3",
            "bps does not apply",
        ),
        ("name = \"X Y\"\nkind = \"stale\"\nminutes = 5", "a name is"),
        (
            "name = \"x\"\nkind = \"stale\"\nminutes = 5\nsource = \"../k\"",
            "source pattern",
        ),
        (
            "name = \"x\"\nkind = \"stale\"\nminute = 5",
            "unknown field `minute`",
        ),
    ] {
        let err = parse(&format!("[[alerts.rules]]\n{text}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
    let twice = "[[alerts.rules]]\nname = \"a\"\nkind = \"stale\"\nminutes = 1\n";
    let err = parse(&format!("{twice}{twice}")).unwrap_err().to_string();
    assert!(err.contains("\"a\": the name is used twice"), "{err}");
    let err = parse("[[alerts.webhooks]]\nurl = \"ftp://x\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an http(s) URL"), "{err}");
    let err = parse("[alerts]\ndelivery_attempts = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("delivery_attempts = 0 is outside"), "{err}");
    let err = parse("[[alerts.webhooks]]\nurl = \"http://x\"\nmax_body_bytes = 10")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[[alerts.webhooks]] #1: max_body_bytes = 10 is outside"),
        "{err}"
    );
    let c = parse("[[alerts.webhooks]]\nurl = \"http://x\"").unwrap();
    assert_eq!(c.delivery_attempts, DEFAULT_DELIVERY_ATTEMPTS);
    assert_eq!(c.webhooks[0].max_body_bytes, DEFAULT_WEBHOOK_MAX_BODY_BYTES);
}

#[test]
fn patterns() {
    let p = |s: &str| Pattern(s.into());
    assert!(p("*").matches("BTC-USD"));
    assert!(p("BTC-*").matches("BTC-USD"));
    assert!(!p("BTC-*").matches("ETH-USD"));
    assert!(p("*-USD").matches("ETH-USD"));
    assert!(!p("*-USD").matches("ETH-EUR"));
    assert!(p("B*-U*D").matches("BTC-USD"));
    assert!(p("kraken").matches("kraken"));
    assert!(!p("kraken").matches("kraken2"));
    assert!(!p("a*a").matches("a"));
    assert!(p("a*a").matches("aa"));
}
