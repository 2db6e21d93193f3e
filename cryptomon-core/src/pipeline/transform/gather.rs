//! Gathering what is new: the keys a run was told of or listed (see [`super::listing`]), read
//! where the manifest has not taken them in, and decoded.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};

use super::super::decode::{Samples, decode_samples};
use super::super::state::Manifest;
use super::listing::{Scope, window_first_date};
use super::options::{Clock, TransformOptions};
use super::report::{Io, Skipped};
use crate::engine::WindowBuilder;
use crate::error::{Error, Result};
use crate::keys::{BACKFILL_PREFIX, BackfillKey, RawKey, parse_backfill_key, parse_raw_key};
use crate::model::{Backfill, SourceName, Tick};
use crate::store::{Object, Store, StoreExt};

/// Reads in flight at once: enough to hide S3 latency, few enough to stay polite.
const READ_CONCURRENCY: usize = 16;
/// Snapshots decoded per hand-off to the blocking pool.
const DECODE_BATCH: usize = 32;
/// Decode batches in flight at once: one per core of a small machine, and one filling up.
const DECODE_BATCHES: usize = 3;
/// What arrived since the state was written.
pub(super) struct Gathered {
    /// The new snapshots' samples.
    pub(super) builder: WindowBuilder,
    /// Objects newly found unusable (recorded in the manifest too).
    pub(super) skipped: Vec<Skipped>,
    /// Objects reported but not recorded: dated too far ahead of the clock (left for a later
    /// run), or handed off but not keys of the contract.
    pub(super) unrecorded: Vec<Skipped>,
    /// Raw objects read to be taken in.
    pub(super) new_objects: usize,
    /// New snapshots left unread at the deadline.
    pub(super) deferred: usize,
    /// Whether the run listed the store (and left a new mark).
    pub(super) reconciled: bool,
}

/// Finds what `manifest` has not taken in (the keys `told` names, and what [`Scope`] lists),
/// reads and decodes it, and records it in `manifest`.
///
/// A key whose tick is further ahead of `clock` than it allows is neither read nor recorded:
/// it is reported in `unrecorded`, and taken in by the first run whose clock has reached it. So
/// is a key it was told of that is not a key of the contract. Reading stops at `deadline` once a
/// first batch is in: what is unread is not recorded either, and the next run lists again to
/// find it.
pub(super) async fn gather_new(
    store: &dyn Store,
    has_prior: bool,
    manifest: &mut Manifest,
    io: &mut Io,
    clock: Clock,
    options: &TransformOptions,
) -> Result<Gathered> {
    let parse = |key: String| {
        let input = Input::parse(&key);
        (key, input)
    };
    let told: Option<Vec<(String, Option<Input>)>> = options
        .handoff
        .as_ref()
        .map(|keys| keys.iter().cloned().map(parse).collect());
    let in_time = |t: &Tick| clock.check("tick", *t).is_ok();
    let latest_told = told.as_ref().map(|told| {
        told.iter()
            .filter_map(|(_, i)| i.as_ref().map(Input::tick))
            .filter(in_time)
            .max()
    });
    let scope = Scope::of(has_prior, manifest, latest_told, options.reconcile_every);
    let mut keys: Vec<(String, Option<Input>)> = scope
        .list(store, io)
        .await?
        .into_iter()
        .map(parse)
        .collect();
    let mut unrecorded = Vec::new();
    for (key, input) in told.into_iter().flatten() {
        if input.is_some() {
            keys.push((key, input));
        } else {
            unrecorded.push(Skipped {
                key,
                reason: "handed off, but not a snapshot or backfill key of the contract".into(),
            });
        }
    }
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    let listed_through = scope.lists().then(|| {
        keys.iter()
            .filter_map(|(_, i)| i.as_ref().map(Input::tick))
            .chain(manifest.as_of)
            .filter(in_time)
            .max()
            .map(|t| t.min(clock.now()))
    });

    // What is new: keys the manifest has not taken in or skipped.
    let mut skipped = Vec::new();
    let mut to_read: Vec<(String, Input)> = Vec::new();
    for (key, input) in keys {
        if manifest.has(&key, input.as_ref().map(|i| (i.ledger(), i.tick()))) {
            continue;
        }
        match input {
            Some(input) => match clock.check("tick", input.tick()) {
                Ok(()) => to_read.push((key, input)),
                Err(why) => {
                    let reason =
                        format!("{why}: left in the store, taken in once the clock reaches it");
                    tracing::warn!(key, %reason, "skipping an object from the future");
                    unrecorded.push(Skipped { key, reason });
                }
            },
            None => skipped.push(Skipped {
                key,
                reason: "not a snapshot or backfill key of the contract".into(),
            }),
        }
    }
    if !has_prior {
        // A rebuild reads only the partitions that can hold the window of the latest key.
        if let Some(latest) = to_read.iter().map(|(_, i)| i.tick()).max() {
            let first_date = window_first_date(latest);
            to_read.retain(|(_, i)| i.tick().date() >= first_date);
        }
    }

    let mut builder = WindowBuilder::new();
    let to_take = to_read.len();
    let mut taken = 0;
    // A series gets a sample from each snapshot of its source: room for all of them at once,
    // not a doubling (and both copies) every time one fills.
    let mut per_source: BTreeMap<&SourceName, usize> = BTreeMap::new();
    for (_, input) in &to_read {
        if let Input::Snapshot(raw) = input {
            *per_source.entry(&raw.source).or_default() += 1;
        }
    }
    for (source, objects) in per_source {
        builder.reserve_per_series(source, objects);
    }
    // Decoding is CPU work, done on the blocking pool a batch at a time, several batches at once
    // so every core decodes, while the next reads are in flight. A batch, not an object: a
    // hand-off to the pool (a thread wake-up) per snapshot costs more than its decoding.
    let batches = stream::iter(to_read)
        .map(|(key, input)| async move {
            let got = store.get(&key).await;
            (key, input, got)
        })
        .buffered(READ_CONCURRENCY)
        .chunks(DECODE_BATCH);
    let mut batches = batches
        .map(|batch| tokio::task::spawn_blocking(move || decode_batch(batch)))
        .buffered(DECODE_BATCHES);
    loop {
        // The first batch is always awaited, so every run makes progress, however slow the
        // store: a run that read nothing would have nothing to write.
        let next = match options.deadline.filter(|_| taken > 0) {
            Some(deadline) => match tokio::time::timeout_at(deadline, batches.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => batches.next().await,
        };
        let Some(batch) = next else { break };
        let batch = batch.map_err(|e| Error::Engine(format!("decode task failed: {e}")))?;
        taken += batch.len();
        for (key, input, got) in batch {
            let Some((len, decoded)) = got? else {
                continue; // deleted between list and get (a lifecycle rule): nothing to take in
            };
            io.read += 1;
            io.bytes_read += len;
            match decoded {
                Ok(decoded) => {
                    decoded.push_into(&mut builder)?;
                    manifest.add(input.ledger(), input.tick());
                }
                Err(reason) => {
                    tracing::warn!(key, %reason, "skipping unreadable object");
                    skipped.push(Skipped { key, reason });
                }
            }
        }
    }
    drop(batches);
    let deferred = to_take - taken;
    if deferred > 0 {
        tracing::warn!(
            deferred,
            taken,
            "deadline reached: the snapshots not read yet are left for the next run"
        );
    }
    for s in &skipped {
        manifest.skipped.insert(s.key.clone(), s.reason.clone());
    }
    match listed_through {
        // Keys left unread are in no manifest and may be in no later hand-off: the next run
        // lists the whole window to find them.
        Some(_) | None if deferred > 0 => manifest.reconciled_at = None,
        Some(mark) => manifest.reconciled_at = mark,
        None => {}
    }
    Ok(Gathered {
        builder,
        skipped,
        unrecorded,
        new_objects: taken,
        deferred,
        reconciled: scope.lists(),
    })
}

/// An object a transform takes in: a snapshot, or an hour of a backfill.
pub(crate) enum Input {
    Snapshot(RawKey),
    Backfill(BackfillKey, String),
}

impl Input {
    /// The object under `key`, if it is a snapshot or backfill key of the contract.
    pub(crate) fn parse(key: &str) -> Option<Input> {
        if let Some(raw) = parse_raw_key(key) {
            return Some(Input::Snapshot(raw));
        }
        let backfill = parse_backfill_key(key)?;
        let ledger = format!("{BACKFILL_PREFIX}{}", backfill.source);
        Some(Input::Backfill(backfill, ledger))
    }

    /// The tick of its key (a backfill's hour).
    fn tick(&self) -> Tick {
        match self {
            Input::Snapshot(raw) => raw.tick,
            Input::Backfill(b, _) => b.hour,
        }
    }

    /// Where the manifest records it: a snapshot under its source's name, a backfill under
    /// `backfill/` and the name.
    fn ledger(&self) -> &str {
        match self {
            Input::Snapshot(raw) => raw.source.as_str(),
            Input::Backfill(_, ledger) => ledger,
        }
    }
}

/// What an object decodes to.
pub(crate) enum Decoded {
    Snapshot(Samples),
    Backfill(Backfill),
}

impl Decoded {
    /// `body`, the object under `key`, decoded as `input` says it is, or why it cannot be.
    pub(crate) fn of(key: &str, input: &Input, body: &[u8]) -> DecodeResult {
        match input {
            Input::Snapshot(_) => decode_samples(body).map(Decoded::Snapshot),
            Input::Backfill(..) => Backfill::from_json(key, body)
                .map(Decoded::Backfill)
                .map_err(|e| e.to_string()),
        }
    }

    /// Whether it is a backfilled hour.
    pub(crate) fn is_backfill(&self) -> bool {
        matches!(self, Decoded::Backfill(_))
    }

    pub(crate) fn push_into(&self, builder: &mut WindowBuilder) -> Result<()> {
        match self {
            Decoded::Snapshot(samples) => samples.push_into(builder),
            Decoded::Backfill(b) => {
                let fetched = b.fetched_at.timestamp_millis();
                for series in &b.series {
                    for s in &series.samples {
                        builder.push_backfill(
                            &b.source,
                            &series.pair,
                            s.tick,
                            fetched,
                            s.price,
                            s.volume_24h,
                        );
                    }
                }
                Ok(())
            }
        }
    }
}

/// An object's decoding: its size and what it holds (or why it cannot be used), `None` if it
/// was deleted between list and get.
type Read = (String, Input, Result<Option<(u64, DecodeResult)>>);
pub(crate) type DecodeResult = std::result::Result<Decoded, String>;

/// Decodes objects that were read, on one blocking thread.
fn decode_batch(objects: Vec<(String, Input, Result<Option<Object>>)>) -> Vec<Read> {
    objects
        .into_iter()
        .map(|(key, input, got)| {
            let got =
                got.map(|o| o.map(|o| (o.body.len() as u64, Decoded::of(&key, &input, &o.body))));
            (key, input, got)
        })
        .collect()
}
