//! `GET /api/events`: server-sent events. A `summary` event carries the whole summary: first the
//! current one, then each new one as it lands; keep-alive comments hold idle proxies open.
//!
//! The latest state sits in a `watch` channel: a slow client skips to the newest summary
//! instead of queueing every one it missed.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::watch;

use super::cache::Aggregates;
use super::state::AppState;

type Latest = watch::Receiver<Option<Arc<Aggregates>>>;

/// Live updates: a `summary` event whenever new aggregates land, the current one first.
#[utoipa::path(get, path = "/api/events", tag = "status",
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: summary` with `data:` the summary JSON (cryptomon.summary/v1); \
                       `id:` the aggregates' ETag. Keep-alive comments every 15 s.")))]
pub(crate) async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Load what the store has, so a first visitor does not wait for the next transform.
    if let Err(error) = state.aggregates().await {
        tracing::debug!(%error, "no aggregates for a new event stream yet");
    }
    let latest = state.cache().subscribe();
    let closing = state.closing();
    let stream = futures::stream::unfold(
        (latest, closing, true),
        |(mut latest, mut closing, first)| async move {
            if *closing.borrow() {
                return None;
            }
            if !first {
                tokio::select! {
                    changed = latest.changed() => changed.ok()?,
                    _ = closing.wait_for(|&c| c) => return None,
                }
            }
            loop {
                if let Some(event) = summary_event(&mut latest) {
                    return Some((Ok(event), (latest, closing, false)));
                }
                // Nothing loaded yet: wait for the first aggregates.
                tokio::select! {
                    changed = latest.changed() => changed.ok()?,
                    _ = closing.wait_for(|&c| c) => return None,
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn summary_event(latest: &mut Latest) -> Option<Event> {
    let aggregates = latest.borrow_and_update().clone()?;
    // The stored summary is JSON written by serde: valid UTF-8 on one line.
    let data = std::str::from_utf8(&aggregates.summary_json).ok()?;
    let id = aggregates.etag.to_str().unwrap_or_default();
    Some(Event::default().event("summary").id(id).data(data))
}
