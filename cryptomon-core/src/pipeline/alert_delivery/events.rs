//! Reading the alert events stored under `alerts/`.

use crate::alerting::{ALERTS_PREFIX, AlertEvent};
use crate::error::Result;
use crate::store::{Store, StoreExt};

/// The stored events of the dates from `from` to `to` (inclusive, at most 31 days), oldest
/// first. An unreadable event object is skipped with a warning.
pub async fn read_events(
    store: &dyn Store,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<AlertEvent>> {
    let mut events = Vec::new();
    for key in list_event_keys(store, from, to).await? {
        if let Some(event) = read_event(store, &key).await? {
            events.push(event);
        }
    }
    events.sort_by_key(|e| (e.tick, e.key()));
    Ok(events)
}

/// The keys of stored events of the dates from `from` to `to` (inclusive, at most 31 days).
pub async fn list_event_keys(
    store: &dyn Store,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut date = from.max(to - chrono::Days::new(30));
    while date <= to {
        keys.extend(
            store
                .list(&format!("{ALERTS_PREFIX}date={date}/"))
                .await?
                .into_iter()
                .filter(|k| k.ends_with(".json")),
        );
        date = date + chrono::Days::new(1);
    }
    Ok(keys)
}

/// One stored event; `None` (with a warning) when it is gone or unreadable.
pub async fn read_event(store: &dyn Store, key: &str) -> Result<Option<AlertEvent>> {
    let Some(object) = store.get(key).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<AlertEvent>(&object.body) {
        Ok(event) => Ok(Some(event)),
        Err(error) => {
            tracing::warn!(key, %error, "unreadable alert event skipped");
            Ok(None)
        }
    }
}
