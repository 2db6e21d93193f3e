//! The stored alert events (`alerts/date=.../`), for `GET /api/alerts` and the `alert` events
//! of `/api/events`.
//!
//! Events are immutable once stored, so each is read once and kept. A date partition more than
//! a day older than the data is listed once; the recent ones are listed again at most every
//! `check_every`, or at once after new aggregates land (their events are recorded right after).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use cryptomon_core::alerting::AlertEvent;
use cryptomon_core::{Error, Store, Tick, pipeline};
use tokio::sync::{Mutex, broadcast};

/// How far back `since` may reach, in days before the data's date.
pub(crate) const MAX_LOOKBACK_DAYS: u64 = 31;
/// After new aggregates, recent partitions are re-listed on every refresh for this long: a
/// transform records its events just after it writes the aggregates.
const SETTLE: Duration = Duration::from_secs(10);

/// The kept events and what has been listed.
#[derive(Debug)]
pub(crate) struct AlertLog {
    inner: Mutex<Inner>,
    new_events: broadcast::Sender<Arc<AlertEvent>>,
    check_every: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every event read, by key.
    events: BTreeMap<String, Arc<AlertEvent>>,
    /// Old partitions already listed (they take no new events).
    sealed: BTreeSet<NaiveDate>,
    /// When the recent partitions were last listed.
    listed_recent: Option<Instant>,
    /// When new aggregates were last seen.
    changed: Option<Instant>,
    /// Events read from the recent partitions, by rule and status: what `/metrics` counts.
    recent_counts: BTreeMap<(String, &'static str), u64>,
}

impl AlertLog {
    pub(crate) fn new(check_every: Duration) -> Self {
        AlertLog {
            inner: Mutex::new(Inner::default()),
            new_events: broadcast::channel(256).0,
            check_every,
        }
    }

    /// New events as they are found (after the first listing).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<AlertEvent>> {
        self.new_events.subscribe()
    }

    /// Called when the aggregates were checked; `changed` when new ones landed. Lists the
    /// recent partitions if aggregates changed in the last few seconds.
    pub(crate) async fn after_refresh(
        &self,
        store: &dyn Store,
        changed: bool,
        as_of: Option<Tick>,
    ) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let now = Instant::now();
        if changed {
            inner.changed = Some(now);
        }
        if inner.changed.is_some_and(|t| now - t <= SETTLE) {
            self.list_recent(&mut inner, store, &recent_dates(as_of))
                .await?;
        }
        Ok(())
    }

    /// Lists the recent partitions once if they never were, so the events found later are
    /// news: an event stream calls this when it opens.
    pub(crate) async fn prime(&self, store: &dyn Store, as_of: Option<Tick>) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        if inner.listed_recent.is_none() {
            self.list_recent(&mut inner, store, &recent_dates(as_of))
                .await?;
        }
        Ok(())
    }

    /// How many events of each rule and status were read from the recent partitions since the
    /// process started (those of the last day or two at start included): a counter, since
    /// events are never forgotten. Old partitions that a query reaches back to are not counted.
    pub(crate) async fn recent_counts(&self) -> Vec<(String, &'static str, u64)> {
        let inner = self.inner.lock().await;
        inner
            .recent_counts
            .iter()
            .map(|((rule, status), n)| (rule.clone(), *status, *n))
            .collect()
    }

    /// The events with a tick at or after `since`, of `rule` and `pair` if given, oldest first.
    pub(crate) async fn query(
        &self,
        store: &dyn Store,
        as_of: Option<Tick>,
        since: Tick,
        rule: Option<&str>,
        pair: Option<&str>,
    ) -> Result<Vec<Arc<AlertEvent>>, Error> {
        let recent = recent_dates(as_of);
        let last = recent
            .last()
            .copied()
            .unwrap_or(since.to_datetime().date_naive());
        let mut inner = self.inner.lock().await;
        // Partitions other than the recent ones: listed once.
        let mut date = since.to_datetime().date_naive();
        while date <= last {
            if !recent.contains(&date) && !inner.sealed.contains(&date) {
                let keys = pipeline::list_event_keys(store, date, date).await?;
                read_new(&mut inner, store, keys).await?;
                inner.sealed.insert(date);
            }
            date = date + Days::new(1);
        }
        if inner
            .listed_recent
            .is_none_or(|t| t.elapsed() >= self.check_every)
        {
            self.list_recent(&mut inner, store, &recent).await?;
        }
        Ok(inner
            .events
            .values()
            .filter(|e| e.tick >= since)
            .filter(|e| rule.is_none_or(|r| e.rule == r))
            .filter(|e| pair.is_none_or(|p| e.pair.as_ref().is_some_and(|x| x.as_str() == p)))
            .cloned()
            .collect())
    }

    async fn list_recent(
        &self,
        inner: &mut Inner,
        store: &dyn Store,
        recent: &BTreeSet<NaiveDate>,
    ) -> Result<(), Error> {
        let first = inner.listed_recent.is_none();
        let mut keys = Vec::new();
        for &date in recent {
            keys.extend(pipeline::list_event_keys(store, date, date).await?);
        }
        let new = read_new(inner, store, keys).await?;
        inner.listed_recent = Some(Instant::now());
        for event in &new {
            *inner
                .recent_counts
                .entry((event.rule.clone(), event.status.as_str()))
                .or_default() += 1;
        }
        // The first listing is history, not news.
        if !first {
            for event in new {
                // No subscriber is not an error.
                let _ = self.new_events.send(event);
            }
        }
        Ok(())
    }
}

/// The partitions that can still take events: the data's date and the clock's (a `stale` event
/// is dated by the clock), each with the day before (a tick just past midnight).
fn recent_dates(as_of: Option<Tick>) -> BTreeSet<NaiveDate> {
    let clock = chrono::Utc::now().date_naive();
    [Some(clock), as_of.map(|t| t.to_datetime().date_naive())]
        .into_iter()
        .flatten()
        .flat_map(|d| [d - Days::new(1), d])
        .collect()
}

/// Reads the keys not read yet; returns the new events, oldest first.
async fn read_new(
    inner: &mut Inner,
    store: &dyn Store,
    keys: Vec<String>,
) -> Result<Vec<Arc<AlertEvent>>, Error> {
    let mut new = Vec::new();
    for key in keys {
        if inner.events.contains_key(&key) {
            continue;
        }
        if let Some(event) = pipeline::read_event(store, &key).await? {
            let event = Arc::new(event);
            inner.events.insert(key, event.clone());
            new.push(event);
        }
    }
    new.sort_by_key(|e| (e.tick, e.key()));
    Ok(new)
}
