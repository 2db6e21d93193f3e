//! The config file: `Config::from_toml_str`, then each exchange's checks of its entries and the
//! `[alerts]` table's rules and webhooks. Each is accepted or refused with an error; nothing may
//! panic.
#![no_main]

use cryptomon_core::alerting::AlertConfig;
use cryptomon_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml_str(text) {
        let _ = cryptomon_core::exchange::validate(&config);
        let _ = AlertConfig::from_toml(config.alerts.as_ref());
    }
    // The alert table alone, whatever the rest of the file says.
    if let Ok(value) = toml::from_str::<toml::Value>(text) {
        let _ = AlertConfig::from_toml(value.get("alerts"));
    }
});
