//! Reading what the last transform wrote: the summary and the window state.

use crate::engine::Window;
use crate::error::{Error, Result};
use crate::keys::SUMMARY_KEY;
use crate::model::Summary;
use crate::store::{Store, StoreExt};

/// Reads the summary the last transform wrote. A series, spread or alert that cannot be read is
/// left out and logged (see [`Summary::from_json`]).
pub async fn read_summary(store: &dyn Store) -> Result<Option<Summary>> {
    let Some(object) = store.get(SUMMARY_KEY).await? else {
        return Ok(None);
    };
    let (summary, degraded) = Summary::from_json(&object.body).map_err(|reason| Error::Decode {
        key: SUMMARY_KEY.into(),
        reason,
    })?;
    for part in &degraded {
        tracing::warn!(key = SUMMARY_KEY, %part, "left out of the summary read");
    }
    Ok(Some(summary))
}

/// Reads the window state the last transform wrote (see [`load_window`](super::load_window)).
pub async fn read_window(store: &dyn Store) -> Result<Option<Window>> {
    Ok(super::state::load_window(store, None)
        .await?
        .map(|s| Window::clone(&s.window)))
}
