//! `GET /api/events`: server-sent events. A `summary` event carries the whole summary: first the
//! current one, then each new one as it lands; an `alert` event for each new alert event;
//! keep-alive comments hold idle proxies open.
//!
//! The latest state sits in a `watch` channel: a slow client skips to the newest summary
//! instead of queueing every one it missed.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use cryptomon_core::alerting::{AlertEvent, KeyedAlertEvent};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use super::aggregates::Aggregates;
use super::state::AppState;

type Latest = watch::Receiver<Option<Arc<Aggregates>>>;

/// Live updates: a `summary` event whenever new aggregates land, the current one first, and an
/// `alert` event for each alert event stored after the stream opened.
#[utoipa::path(get, path = "/api/events", tag = "status",
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: summary` with `data:` the summary JSON (cryptomon.summary/v1) and \
                       `id:` the aggregates' ETag; `event: alert` with `data:` an alert event \
                       (cryptomon.alert/v1, as in /api/alerts). Keep-alive comments every 15 s."),
        super::limits::LimitErrors,
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Load what the store has, so a first visitor does not wait for the next transform.
    if let Err(error) = state.aggregates().await {
        tracing::debug!(%error, "no aggregates for a new event stream yet");
    }
    // Alert events already stored are history (`/api/alerts` has them); only later ones are
    // pushed.
    if let Err(error) = state
        .alert_log()
        .prime(state.store().as_ref(), state.loaded_as_of())
        .await
    {
        tracing::debug!(%error, "cannot list the stored alert events");
    }
    let streams = Streams {
        latest: state.cache().subscribe(),
        alerts: state.alert_log().subscribe(),
        closing: state.closing(),
        first: true,
    };
    let stream = futures::stream::unfold(streams, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What one event stream listens to.
struct Streams {
    latest: Latest,
    alerts: broadcast::Receiver<Arc<AlertEvent>>,
    closing: watch::Receiver<bool>,
    /// The current summary is still to be sent.
    first: bool,
}

impl Streams {
    /// The next event; `None` ends the stream (shutdown).
    async fn next(&mut self) -> Option<Event> {
        if self.first {
            self.first = false;
            if let Some(event) = summary_event(&mut self.latest) {
                return Some(event);
            }
        }
        loop {
            if *self.closing.borrow() {
                return None;
            }
            tokio::select! {
                changed = self.latest.changed() => {
                    changed.ok()?;
                    if let Some(event) = summary_event(&mut self.latest) {
                        return Some(event);
                    }
                }
                alert = self.alerts.recv() => match alert {
                    Ok(alert) => return Some(alert_event(&alert)),
                    // A slow client misses alerts rather than holding memory; /api/alerts
                    // has them all.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.closing.wait_for(|&c| c) => return None,
            }
        }
    }
}

fn alert_event(event: &AlertEvent) -> Event {
    let data = serde_json::to_string(&KeyedAlertEvent::from(event)).unwrap_or_default();
    Event::default().event("alert").data(data)
}

fn summary_event(latest: &mut Latest) -> Option<Event> {
    let aggregates = latest.borrow_and_update().clone()?;
    // The stored summary is JSON written by serde: valid UTF-8 on one line.
    let data = std::str::from_utf8(&aggregates.summary_json).ok()?;
    let id = aggregates.etag.to_str().unwrap_or_default();
    Some(Event::default().event("summary").id(id).data(data))
}
