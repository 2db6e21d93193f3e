//! Alert rules the tests share, written as a config's `[alerts]` table.

use cryptomon_core::alerting::AlertConfig;

/// The brief's rule on volume: a value over 3x its last hour's mean. The golden data's last tick
/// has two such spikes.
pub const SPIKE: &str = r#"
[[alerts.rules]]
name = "volume-spike"
kind = "spike"
measure = "volume"
factor = 3.0
window_minutes = 60
cooldown_minutes = 30
"#;

/// The rules of a config's `[alerts]` table, checked.
pub fn rules(text: &str) -> AlertConfig {
    let value: toml::Value = toml::from_str(text).expect("valid TOML");
    AlertConfig::from_toml(value.get("alerts")).expect("valid [alerts]")
}
