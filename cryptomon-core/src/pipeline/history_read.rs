//! Reading history: one series' samples over a time range from the stored history days, through
//! a [`HistoryCache`] of decoded (day, series) samples.
//!
//! A closed day is never rewritten except by `cryptomon history repair`, so a cached entry stays
//! good as long as its object keeps its version: each read asks the store for the day only if it
//! changed (a conditional read), and decodes it again only then.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use lru::LruCache;

use crate::engine::history::{day_start, read_series};
use crate::error::Result;
use crate::keys::{HISTORY_PREFIX, history_key};
use crate::model::{Pair, Point, SkippedDay, SourceName, Tick};
use crate::store::{Fetch, Store, Version};

/// Bytes of decoded samples a [`HistoryCache`] keeps by default: about 2,900 full
/// (day, series) entries, a month of minutes for some 95 series.
pub const DEFAULT_HISTORY_CACHE_BYTES: usize = 64 << 20;

/// Days read from the store at once.
const CONCURRENT_DAYS: usize = 8;

/// A bounded least-recently-used cache of decoded (day, series) samples, shared by the requests
/// of a server. Bounded in bytes, not entries: a full day of one series is some 23 KB.
#[derive(Debug)]
pub struct HistoryCache {
    budget: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    entries: LruCache<DayKey, Arc<DaySeries>>,
    bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DayKey {
    date: String,
    source: SourceName,
    pair: Pair,
}

/// One series' samples of one stored day, and the day's version they were decoded from.
#[derive(Debug)]
struct DaySeries {
    version: Version,
    /// `None`: the day holds no such series.
    points: Option<Vec<Point>>,
}

impl DaySeries {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 64
            + self
                .points
                .as_ref()
                .map_or(0, |p| p.len() * std::mem::size_of::<Point>())
    }
}

impl Default for HistoryCache {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_CACHE_BYTES)
    }
}

/// One series' history over a range: its samples and the days that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryRead {
    /// Price samples in tick order, within the range.
    pub points: Vec<Point>,
    /// Whether any day read holds the series (even outside the range's ticks).
    pub found: bool,
    /// Days that could not be read (undecodable, or the store failed), left out.
    pub skipped: Vec<SkippedDay>,
}

impl HistoryCache {
    /// A cache keeping at most `budget` bytes of decoded samples (0: keeps nothing).
    pub fn new(budget: usize) -> Self {
        HistoryCache {
            budget,
            inner: Mutex::new(CacheInner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// Bytes of samples held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A poisoned cache is still a valid cache: every change is a whole insert or removal.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &DayKey) -> Option<Arc<DaySeries>> {
        self.lock().entries.get(key).cloned()
    }

    fn insert(&self, key: DayKey, value: Arc<DaySeries>) {
        let size = value.bytes();
        if size > self.budget {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.put(key, value) {
            inner.bytes -= old.bytes();
        }
        inner.bytes += size;
        while inner.bytes > self.budget {
            match inner.entries.pop_lru() {
                Some((_, old)) => inner.bytes -= old.bytes(),
                None => break,
            }
        }
    }

    /// The price samples of `source:pair` with ticks in `[from, to]` from every stored history
    /// day the range touches. A day that cannot be read is skipped, logged and reported; only a
    /// failure to list the days is an error.
    pub async fn read(
        &self,
        store: &dyn Store,
        source: &SourceName,
        pair: &Pair,
        from: Tick,
        to: Tick,
    ) -> Result<HistoryRead> {
        let dates = stored_days(store, from, to).await?;
        Ok(self.read_days(store, source, pair, dates, from, to).await)
    }

    /// [`HistoryCache::read`] over the stored days `dates`, already listed.
    pub(crate) async fn read_days(
        &self,
        store: &dyn Store,
        source: &SourceName,
        pair: &Pair,
        dates: Vec<String>,
        from: Tick,
        to: Tick,
    ) -> HistoryRead {
        let days = futures::stream::iter(dates)
            .map(|date| async move {
                let got = self.day(store, source, pair, &date).await;
                (date, got)
            })
            .buffered(CONCURRENT_DAYS);
        futures::pin_mut!(days);
        let mut out = HistoryRead::default();
        while let Some((date, got)) = days.next().await {
            match got {
                Ok(Some(day)) => {
                    let Some(points) = &day.points else { continue };
                    out.found = true;
                    out.points.extend(
                        points
                            .iter()
                            .filter(|p| (from..=to).contains(&p.t))
                            .copied(),
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    let key = history_key(&date);
                    tracing::warn!(%key, error = %e, "history day skipped: cannot be read");
                    out.skipped.push(SkippedDay {
                        date,
                        reason: e.to_string(),
                    });
                }
            }
        }
        out
    }

    /// One day's entry for the series: cached if the stored day still has its version, else
    /// read and decoded; `None` if the day is gone.
    async fn day(
        &self,
        store: &dyn Store,
        source: &SourceName,
        pair: &Pair,
        date: &str,
    ) -> Result<Option<Arc<DaySeries>>> {
        let key = DayKey {
            date: date.to_owned(),
            source: source.clone(),
            pair: pair.clone(),
        };
        let cached = self.get(&key);
        let object = match store
            .get_opts(&history_key(date), cached.as_ref().map(|c| &c.version))
            .await?
        {
            Fetch::NotModified => return Ok(cached),
            Fetch::Missing => return Ok(None),
            Fetch::Found(object) => object,
        };
        let (s, p) = (source.to_string(), pair.to_string());
        let body = object.body;
        let points = super::blocking(move || read_series(&body, &s, &p))
            .await
            .map_err(|e| crate::error::Error::Decode {
                key: history_key(date),
                reason: e.to_string(),
            })?;
        let entry = Arc::new(DaySeries {
            version: object.version,
            points,
        });
        self.insert(key, entry.clone());
        Ok(Some(entry))
    }
}

/// The price samples of `source:pair` in `[from, to]` from the stored history, without a cache
/// kept between calls (a command reading once).
pub async fn read_history(
    store: &dyn Store,
    source: &SourceName,
    pair: &Pair,
    from: Tick,
    to: Tick,
) -> Result<HistoryRead> {
    HistoryCache::new(0)
        .read(store, source, pair, from, to)
        .await
}

/// The dates (`YYYY-MM-DD`) of the stored history days that hold ticks of `[from, to]`, oldest
/// first.
pub async fn stored_days(store: &dyn Store, from: Tick, to: Tick) -> Result<Vec<String>> {
    let (first, last) = (day_start(from), day_start(to));
    Ok(store
        .list_prefixes(HISTORY_PREFIX)
        .await?
        .iter()
        .filter_map(|p| {
            let date = p.strip_prefix(HISTORY_PREFIX)?.strip_prefix("date=")?;
            let date = date.strip_suffix('/')?;
            let day = Tick::parse(&format!("{date}T00:00:00Z")).ok()?;
            (day.date() == date && (first..=last).contains(&day)).then(|| date.to_owned())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(points: usize) -> Arc<DaySeries> {
        Arc::new(DaySeries {
            version: Version("v1".into()),
            points: Some(vec![
                Point {
                    t: Tick::from_unix(0),
                    v: 1.0
                };
                points
            ]),
        })
    }

    fn key(date: &str) -> DayKey {
        DayKey {
            date: date.into(),
            source: SourceName::new("alpha").unwrap(),
            pair: Pair::new("BTC-USD").unwrap(),
        }
    }

    #[test]
    fn the_cache_keeps_its_byte_budget_by_dropping_the_least_recently_used() {
        let one = entry(1440).bytes();
        let cache = HistoryCache::new(2 * one + one / 2);
        cache.insert(key("2026-12-01"), entry(1440));
        cache.insert(key("2026-12-02"), entry(1440));
        // Reading the 1st makes the 2nd the least recently used.
        assert!(cache.get(&key("2026-12-01")).is_some());
        cache.insert(key("2026-12-03"), entry(1440));
        assert!(cache.get(&key("2026-12-02")).is_none());
        assert!(cache.get(&key("2026-12-01")).is_some());
        assert!(cache.get(&key("2026-12-03")).is_some());
        assert_eq!(cache.bytes(), 2 * one);
        // An entry larger than the whole budget is not kept.
        let small = HistoryCache::new(one / 2);
        small.insert(key("2026-12-01"), entry(1440));
        assert_eq!(small.bytes(), 0);
    }
}
