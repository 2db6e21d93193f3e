//! Objects the pipelines read back from the store, each through its public reader: the summary,
//! the alert state and an alert event. Each is read or refused; what is read can be written
//! again and read back the same; never a panic.

use crate::runtime;
use bytes::Bytes;
use cryptomon_core::alerting::AlertState;
use cryptomon_core::keys::SUMMARY_KEY;
use cryptomon_core::pipeline::{read_event, read_summary};
use cryptomon_core::{StoreExt, Summary};
use cryptomon_mock::MemoryStore;

/// The summary as the API and the transformer read it: one that is read serialises and reads
/// back equal.
pub fn summary(data: &[u8]) {
    let store = MemoryStore::new();
    let read = runtime().block_on(async {
        store
            .put(SUMMARY_KEY, Bytes::copy_from_slice(data))
            .await
            .expect("a memory store takes any bytes");
        read_summary(&store).await
    });
    if let Ok(Some(summary)) = read {
        let json = serde_json::to_vec(&summary).expect("a summary that was read serialises");
        let again: Summary = serde_json::from_slice(&json)
            .unwrap_or_else(|e| panic!("a summary written from one read is unreadable: {e}"));
        assert_eq!(
            serde_json::to_value(&again).ok(),
            serde_json::to_value(&summary).ok(),
            "the summary changed in a round trip"
        );
    }
}

/// The alert state: one that is decoded encodes and decodes back equal.
pub fn alert_state(data: &[u8]) {
    if let Ok(state) = AlertState::decode(data) {
        let again = AlertState::decode(&state.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&state),
            "the state changed in a round trip"
        );
    }
}

/// An alert event under `alerts/`: one that is read has a key, a text and reads back equal.
pub fn alert_event(data: &[u8]) {
    let store = MemoryStore::new();
    let key = "alerts/date=2026-12-01/fuzz.json";
    let read = runtime().block_on(async {
        store
            .put(key, Bytes::copy_from_slice(data))
            .await
            .expect("a memory store takes any bytes");
        read_event(&store, key).await
    });
    match read {
        Ok(Some(event)) => {
            assert!(event.key().starts_with("alerts/date="), "{}", event.key());
            let _ = event.text();
            let json = serde_json::to_vec(&event).expect("an event that was read serialises");
            let again: cryptomon_core::alerting::AlertEvent = serde_json::from_slice(&json)
                .unwrap_or_else(|e| panic!("an event written from one read is unreadable: {e}"));
            assert_eq!(
                serde_json::to_value(&again).ok(),
                serde_json::to_value(&event).ok()
            );
        }
        Ok(None) => {}
        Err(e) => panic!("a stored object present in memory failed to read: {e}"),
    }
}

/// The window state's head as the transform reads it (`decode_head`: the Parquet window and its
/// manifest): read or refused, never a panic; a state that is read is written again and read
/// back with as many rows.
///
/// polars panics on some malformed files (in polars-parquet's footer decoder, in polars-arrow's
/// bitmaps); `Window::from_parquet` catches a panic of its Parquet read and refuses the file.
/// libfuzzer's panic hook would abort at such a panic before it is caught, so this target's hook
/// lets a panic raised inside a polars crate unwind; one that escapes the catch still aborts
/// (libfuzzer-sys aborts on any panic that reaches it), as does any panic of our own code.
pub fn window_state(data: &[u8]) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_polars = info
                .location()
                .is_some_and(|l| l.file().contains("/polars-"));
            if !in_polars {
                fuzzer_hook(info);
            }
        }));
    });
    use cryptomon_core::pipeline::fuzzing::{decode_window_state, reencode_window_state};
    if let Ok(rows) = decode_window_state(data) {
        assert_eq!(
            reencode_window_state(data),
            Ok(rows),
            "a window state written from one read reads back with other rows"
        );
    }
}
