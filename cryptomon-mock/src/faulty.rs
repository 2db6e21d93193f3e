//! Fault injection: [`FaultyStore`] and [`FaultySource`] wrap a real store or source and fail the
//! calls a test chooses, deterministically.
//!
//! Both count what goes through them, so benchmarks can report reads, writes and bytes, and
//! tests can assert that a pipeline made exactly the calls it should.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cryptomon_core::{
    Error, Fetch, Fetched, PutMode, Result, Source, SourceName, Store, Tick, Version,
};

/// A store operation, as [`FaultyStore`] counts and matches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`Store::get_opts`].
    Get,
    /// [`Store::put_opts`].
    Put,
    /// [`Store::list`] and [`Store::list_prefixes`].
    List,
}

impl Op {
    /// The name [`Error::Store`] carries in `op`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::List => "list",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error inside an injected [`Error::Store`] or reported by a [`FaultySource`]; tests can
/// downcast the `source` of an `Error::Store` to it to tell an injected failure from a real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault(pub String);

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault: {}", self.0)
    }
}

impl std::error::Error for InjectedFault {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    /// The n-th call (1-based), of `Fault::op` if set, else of any operation.
    NthCall(u64),
    /// Every call whose key (or listing prefix) starts with this.
    KeyPrefix(String),
    /// Every write once this many writes have succeeded.
    AfterWrites(u64),
    /// Every call.
    Always,
}

/// When and how a [`FaultyStore`] fails. Build one with a constructor, then narrow it with
/// [`Fault::on`] and choose the error with [`Fault::retryable`] / [`Fault::lose_response`].
///
/// Faults are retryable by default, as most real store failures (throttling, timeouts) are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    trigger: Trigger,
    op: Option<Op>,
    retryable: bool,
    lose_response: bool,
    conflict: bool,
    /// Set by [`Fault::slowed_by`]: the call is delayed by this and then goes through.
    delay: Option<Duration>,
}

impl Fault {
    fn new(trigger: Trigger) -> Self {
        Fault {
            trigger,
            op: None,
            retryable: true,
            lose_response: false,
            conflict: false,
            delay: None,
        }
    }

    /// Fails the `n`-th call (1-based) of any operation; with [`Fault::on`], the `n`-th call of
    /// that operation.
    pub fn nth_call(n: u64) -> Self {
        Fault::new(Trigger::NthCall(n))
    }

    /// Fails every call whose key (or listing prefix) starts with `prefix`.
    pub fn key_prefix(prefix: impl Into<String>) -> Self {
        Fault::new(Trigger::KeyPrefix(prefix.into()))
    }

    /// A crash after `k` successful writes: every later write fails, reads and lists still work.
    /// Not retryable by default: the store is gone.
    pub fn crash_after_writes(k: u64) -> Self {
        Fault {
            op: Some(Op::Put),
            retryable: false,
            ..Fault::new(Trigger::AfterWrites(k))
        }
    }

    /// Fails every call (of the operation given with [`Fault::on`]).
    pub fn always() -> Self {
        Fault::new(Trigger::Always)
    }

    /// Restricts the fault to one operation.
    pub fn on(mut self, op: Op) -> Self {
        self.op = Some(op);
        self
    }

    /// Whether the injected [`Error::Store`] says a retry may help.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Lets the call reach the inner store and fails only its answer, as when a request succeeds
    /// but the connection drops before the response: a write happens although the caller sees
    /// an error. Tests idempotency of retries.
    pub fn lose_response(mut self) -> Self {
        self.lose_response = true;
        self
    }

    /// Delays the matching calls by `delay` and then lets them through, as a slow network does:
    /// no error. Tests deadlines (`Fault::key_prefix("raw/").on(Op::Get).slowed_by(d)`).
    pub fn slowed_by(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Fails with [`Error::Precondition`], as a conditional write does when another writer
    /// changed the key. With [`Fault::lose_response`], it is what the SDK's retry of a
    /// conditional write sees when the first attempt landed but its answer was lost.
    pub fn as_conflict(mut self) -> Self {
        self.conflict = true;
        self
    }

    fn matches(&self, call: &Call<'_>, successful_writes: u64) -> bool {
        if self.op.is_some_and(|op| op != call.op) {
            return false;
        }
        match &self.trigger {
            Trigger::NthCall(n) => {
                let number = if self.op.is_some() {
                    call.op_number
                } else {
                    call.number
                };
                number == *n
            }
            Trigger::KeyPrefix(prefix) => call.key.starts_with(prefix.as_str()),
            Trigger::AfterWrites(k) => call.op == Op::Put && successful_writes >= *k,
            Trigger::Always => true,
        }
    }

    fn error(&self, call: &Call<'_>) -> Error {
        if self.conflict {
            return Error::Precondition {
                key: call.key.to_owned(),
            };
        }
        Error::Store {
            op: call.op.as_str(),
            key: call.key.to_owned(),
            retryable: self.retryable,
            source: Box::new(InjectedFault(format!(
                "{} #{} (call #{}) matched {:?}",
                call.op, call.op_number, call.number, self.trigger
            ))),
        }
    }
}

/// What went through a [`FaultyStore`] since it was built or [reset](FaultyStore::reset_counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// `get_opts` calls, failed ones included.
    pub reads: u64,
    /// `put_opts` calls, failed ones included.
    pub writes: u64,
    /// `list` and `list_prefixes` calls, failed ones included.
    pub lists: u64,
    /// Reads answered [`Fetch::NotModified`].
    pub not_modified: u64,
    /// Body bytes of the objects read.
    pub bytes_read: u64,
    /// Body bytes of the writes the inner store accepted.
    pub bytes_written: u64,
    /// Keys (or prefixes) returned by lists.
    pub keys_listed: u64,
    /// Calls that failed with an injected fault.
    pub injected: u64,
}

impl StoreCounters {
    /// Every call, whatever the operation.
    pub fn calls(&self) -> u64 {
        self.reads + self.writes + self.lists
    }
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<Fault>,
    calls: u64,
    op_calls: [u64; 3],
    successful_writes: u64,
    counters: StoreCounters,
}

struct Call<'a> {
    op: Op,
    key: &'a str,
    number: u64,
    op_number: u64,
}

/// A [`Store`] that forwards to `S` and fails the calls its [`Fault`]s match.
///
/// Faults are checked in the order they were added; the first that matches fails the call.
/// Unless it [loses the response](Fault::lose_response), a failing call never reaches the inner
/// store. Call numbers count every call, failed ones included.
///
/// ```
/// use cryptomon_core::{Error, StoreExt};
/// use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = FaultyStore::new(MemoryStore::new())
///     .with_fault(Fault::nth_call(2).on(Op::Put).retryable(true));
/// store.put("a", "1".into()).await.unwrap();
/// let err = store.put("b", "2".into()).await.unwrap_err();
/// assert!(matches!(err, Error::Store { op: "put", retryable: true, .. }));
/// store.put("b", "2".into()).await.unwrap(); // the third put goes through
/// assert_eq!(store.counters().writes, 3);
/// assert_eq!(store.inner().len(), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    state: Mutex<State>,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner` with no fault: a transparent, counting store.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            state: Mutex::default(),
        }
    }

    /// Adds a fault (builder form of [`FaultyStore::add_fault`]).
    pub fn with_fault(self, fault: Fault) -> Self {
        self.add_fault(fault);
        self
    }

    /// Adds a fault, for instance once a test has set up its data.
    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every fault: the store works again.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// What went through so far.
    pub fn counters(&self) -> StoreCounters {
        self.lock().counters
    }

    /// Zeroes the counters and the call numbers that [`Fault::nth_call`] and
    /// [`Fault::crash_after_writes`] count from; the faults stay.
    pub fn reset_counters(&self) {
        let mut state = self.lock();
        state.counters = StoreCounters::default();
        state.calls = 0;
        state.op_calls = [0; 3];
        state.successful_writes = 0;
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters stay meaningful after a panicking test thread: every update is one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers the call and returns the failure it triggers, if any.
    fn begin(&self, op: Op, key: &str) -> Option<Injection> {
        let mut state = self.lock();
        state.calls += 1;
        state.op_calls[op.index()] += 1;
        match op {
            Op::Get => state.counters.reads += 1,
            Op::Put => state.counters.writes += 1,
            Op::List => state.counters.lists += 1,
        }
        let call = Call {
            op,
            key,
            number: state.calls,
            op_number: state.op_calls[op.index()],
        };
        let fault = state
            .faults
            .iter()
            .find(|f| f.matches(&call, state.successful_writes))?;
        let injection = match fault.delay {
            Some(delay) => Injection::Delay(delay),
            None => Injection::Failure {
                lose_response: fault.lose_response,
                error: fault.error(&call),
            },
        };
        state.counters.injected += 1;
        Some(injection)
    }
}

/// What a fault does to one call.
enum Injection {
    /// The call fails: at once, or with `lose_response` once the inner store answered.
    Failure { lose_response: bool, error: Error },
    /// The call waits, then goes through.
    Delay(Duration),
}

/// Fails the call at once, or waits, unless the fault lets it reach the inner store first;
/// returns the error left to give once the inner store answered.
async fn before(injection: Option<Injection>) -> Result<Option<Error>> {
    match injection {
        Some(Injection::Failure {
            lose_response: false,
            error,
        }) => Err(error),
        Some(Injection::Failure { error, .. }) => Ok(Some(error)),
        Some(Injection::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// What the caller sees once the inner store answered.
fn after<T>(lost: Option<Error>, result: Result<T>) -> Result<T> {
    match lost {
        Some(error) => Err(error),
        None => result,
    }
}

impl<S: Store> fmt::Display for FaultyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "faulty {}", self.inner)
    }
}

#[async_trait]
impl<S: Store> Store for FaultyStore<S> {
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch> {
        let injection = before(self.begin(Op::Get, key)).await?;
        let result = self.inner.get_opts(key, if_none_match).await;
        if let Ok(fetch) = &result {
            let mut state = self.lock();
            match fetch {
                Fetch::Found(o) => state.counters.bytes_read += o.body.len() as u64,
                Fetch::NotModified => state.counters.not_modified += 1,
                Fetch::Missing => {}
            }
        }
        after(injection, result)
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        let injection = before(self.begin(Op::Put, key)).await?;
        let len = body.len() as u64;
        let result = self.inner.put_opts(key, body, mode).await;
        if result.is_ok() {
            let mut state = self.lock();
            state.successful_writes += 1;
            state.counters.bytes_written += len;
        }
        after(injection, result)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let injection = before(self.begin(Op::List, prefix)).await?;
        let result = self.inner.list(prefix).await;
        if let Ok(keys) = &result {
            self.lock().counters.keys_listed += keys.len() as u64;
        }
        after(injection, result)
    }

    /// Forwarded, so the inner store's own answer is used (and counted as a list).
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<String>> {
        let injection = before(self.begin(Op::List, prefix)).await?;
        let result = self.inner.list_after(prefix, start_after).await;
        if let Ok(keys) = &result {
            self.lock().counters.keys_listed += keys.len() as u64;
        }
        after(injection, result)
    }

    /// Forwarded, so the inner store's own answer is used (and counted as a list).
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        let injection = before(self.begin(Op::List, prefix)).await?;
        let result = self.inner.list_prefixes(prefix).await;
        if let Ok(keys) = &result {
            self.lock().counters.keys_listed += keys.len() as u64;
        }
        after(injection, result)
    }
}

/// What a [`FaultySource`] does to a fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceFault {
    /// Fails with [`Error::Source`].
    Fail {
        /// Whether the error says a later attempt may succeed.
        retryable: bool,
    },
    /// Returns the inner quotes with the first price set to NaN: garbage that breaks the
    /// `Source` contract on purpose, to test that the pipeline refuses it.
    NanPrice,
    /// Returns the inner quotes with the first one repeated.
    DuplicatePair,
    /// Returns an answer with no quote.
    NoQuotes,
    /// Waits this long, then answers as the inner source would: for timeout tests.
    Delay(Duration),
}

#[derive(Debug, Clone, PartialEq)]
enum FetchTrigger {
    Call(u64),
    Tick(Tick),
    Always,
}

/// A [`Source`] that forwards to `S` and spoils the fetches a test chooses.
///
/// Rules are checked in the order they were added; the first that matches applies.
///
/// ```
/// use cryptomon_core::{Error, Source, SourceName, Tick};
/// use cryptomon_mock::{FaultySource, SourceFault, SyntheticSource};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let source = FaultySource::new(SyntheticSource::demo())
///     .on_call(1, SourceFault::Fail { retryable: true });
/// let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
/// assert!(source.fetch(tick).await.unwrap_err().is_retryable());
/// assert_eq!(source.fetch(tick).await.unwrap().quotes.len(), 12);
/// assert_eq!(source.fetches(), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct FaultySource<S> {
    inner: S,
    rules: Mutex<Vec<(FetchTrigger, SourceFault)>>,
    fetches: AtomicU64,
}

impl<S: Source> FaultySource<S> {
    /// Wraps `inner` with no fault.
    pub fn new(inner: S) -> Self {
        FaultySource {
            inner,
            rules: Mutex::default(),
            fetches: AtomicU64::new(0),
        }
    }

    /// Applies `fault` to the `n`-th fetch (1-based).
    pub fn on_call(self, n: u64, fault: SourceFault) -> Self {
        self.push(FetchTrigger::Call(n), fault)
    }

    /// Applies `fault` to every fetch of `tick`.
    pub fn on_tick(self, tick: Tick, fault: SourceFault) -> Self {
        self.push(FetchTrigger::Tick(tick), fault)
    }

    /// Applies `fault` to every fetch.
    pub fn always(self, fault: SourceFault) -> Self {
        self.push(FetchTrigger::Always, fault)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.lock().clear();
    }

    /// Fetches so far, spoiled ones included.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn push(self, trigger: FetchTrigger, fault: SourceFault) -> Self {
        self.lock().push((trigger, fault));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(FetchTrigger, SourceFault)>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl<S: Source> Source for FaultySource<S> {
    fn name(&self) -> &SourceName {
        self.inner.name()
    }

    async fn fetch(&self, tick: Tick) -> Result<Fetched> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = self
            .lock()
            .iter()
            .find(|(trigger, _)| match trigger {
                FetchTrigger::Call(k) => *k == n,
                FetchTrigger::Tick(t) => *t == tick,
                FetchTrigger::Always => true,
            })
            .map(|(_, fault)| fault.clone());
        let Some(fault) = fault else {
            return self.inner.fetch(tick).await;
        };
        let fail = |retryable| Error::Source {
            source_name: self.inner.name().to_string(),
            message: InjectedFault(format!("fetch #{n} of tick {tick}")).to_string(),
            retryable,
        };
        match fault {
            SourceFault::Fail { retryable } => Err(fail(retryable)),
            SourceFault::Delay(d) => {
                tokio::time::sleep(d).await;
                self.inner.fetch(tick).await
            }
            SourceFault::NanPrice => {
                let mut f = self.inner.fetch(tick).await?;
                if let Some(q) = f.quotes.first_mut() {
                    q.price = f64::NAN;
                }
                Ok(f)
            }
            SourceFault::DuplicatePair => {
                let mut f = self.inner.fetch(tick).await?;
                if let Some(q) = f.quotes.first().cloned() {
                    f.quotes.push(q);
                }
                Ok(f)
            }
            SourceFault::NoQuotes => {
                let mut f = self.inner.fetch(tick).await?;
                f.quotes.clear();
                Ok(f)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cryptomon_core::{StoreExt, collect};

    use super::*;
    use crate::{MemoryStore, SyntheticSource};

    fn tick() -> Tick {
        Tick::parse("2026-11-27T12:00:00Z").unwrap()
    }

    fn injected(e: &Error) -> bool {
        match e {
            Error::Store { source, .. } => source.downcast_ref::<InjectedFault>().is_some(),
            _ => false,
        }
    }

    #[tokio::test]
    async fn nth_call_overall_and_per_op() {
        let store = FaultyStore::new(MemoryStore::new())
            .with_fault(Fault::nth_call(2))
            .with_fault(Fault::nth_call(2).on(Op::Get).retryable(false));
        store.put("a", "1".into()).await.unwrap(); // call 1
        let e = store.get("a").await.unwrap_err(); // call 2
        assert!(injected(&e) && e.is_retryable(), "{e}");
        let e = store.get("a").await.unwrap_err(); // get #2
        assert!(injected(&e) && !e.is_retryable(), "{e}");
        assert_eq!(&store.get("a").await.unwrap().unwrap().body[..], b"1");
        let c = store.counters();
        assert_eq!((c.reads, c.writes, c.injected, c.bytes_read), (3, 1, 2, 1));
        assert_eq!(c.calls(), 4);
    }

    #[tokio::test]
    async fn key_prefix_faults_name_the_key() {
        let store = FaultyStore::new(MemoryStore::new())
            .with_fault(Fault::key_prefix("aggregates/").on(Op::Put));
        store.put("raw/x", "1".into()).await.unwrap();
        let e = store
            .put("aggregates/summary.json", "{}".into())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("aggregates/summary.json"), "{e}");
        assert!(
            store
                .get("aggregates/summary.json")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.list("aggregates/").await.unwrap().len(), 0);
        store.clear_faults();
        store
            .put("aggregates/summary.json", "{}".into())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn crash_after_writes_fails_every_later_write() {
        let store = FaultyStore::new(MemoryStore::new()).with_fault(Fault::crash_after_writes(2));
        store.put("a", "1".into()).await.unwrap();
        store.put("b", "2".into()).await.unwrap();
        for key in ["c", "d", "a"] {
            let e = store.put(key, "3".into()).await.unwrap_err();
            assert!(!e.is_retryable() && injected(&e), "{e}");
        }
        assert_eq!(store.list("").await.unwrap(), ["a", "b"]);
        assert_eq!(store.inner().len(), 2);
        store.reset_counters();
        store.put("c", "3".into()).await.unwrap();
    }

    #[tokio::test]
    async fn lost_responses_still_write() {
        let store = FaultyStore::new(MemoryStore::new())
            .with_fault(Fault::nth_call(1).on(Op::Put).lose_response());
        let source = SyntheticSource::demo();
        // The first collect's write lands but reports failure; the retry finds it in place.
        assert!(collect(&source, &store, tick()).await.is_err());
        let report = collect(&source, &store, tick()).await.unwrap();
        assert!(!report.written);
        assert_eq!(store.inner().len(), 1);
        assert_eq!(store.counters().writes, 2);
    }

    #[tokio::test]
    async fn faulty_source_spoils_chosen_fetches() {
        let store = MemoryStore::new();
        let t = tick();
        let source = FaultySource::new(SyntheticSource::demo())
            .on_tick(t.add_secs(60), SourceFault::NanPrice)
            .on_call(1, SourceFault::Fail { retryable: false })
            .on_call(3, SourceFault::DuplicatePair)
            .on_call(4, SourceFault::NoQuotes);
        let e = collect(&source, &store, t).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Source {
                    retryable: false,
                    ..
                }
            ),
            "{e}"
        );
        let e = collect(&source, &store, t.add_secs(60)).await.unwrap_err();
        assert!(
            e.to_string().contains("BTC-USD") && e.to_string().contains("NaN"),
            "{e}"
        );
        let e = collect(&source, &store, t).await.unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = collect(&source, &store, t).await.unwrap_err();
        assert!(e.to_string().contains("no quote"), "{e}");
        assert!(store.is_empty());
        assert!(collect(&source, &store, t).await.unwrap().written);
        assert_eq!(source.fetches(), 5);
    }

    #[tokio::test]
    async fn delays_can_time_out() {
        let source = FaultySource::new(SyntheticSource::demo())
            .always(SourceFault::Delay(Duration::from_millis(200)));
        let slow = tokio::time::timeout(Duration::from_millis(20), source.fetch(tick())).await;
        assert!(slow.is_err());
        source.clear_faults();
        assert!(source.fetch(tick()).await.is_ok());
    }
}
