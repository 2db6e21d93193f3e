//! Exchange answers: the input's first byte picks the HTTP status, the rest is the body.

use std::collections::HashSet;

use chrono::Utc;
use cryptomon_core::exchange::fuzzing::{ExchangeKind, read_answer};
use cryptomon_core::pipeline::fuzzing::decode_snapshot;
use cryptomon_core::{Snapshot, SourceName, Tick};

/// The statuses the recorded fixtures come with, and a server error.
pub const STATUSES: [u16; 8] = [200, 400, 404, 418, 429, 451, 500, 503];

/// Reads `data` as an answer of `kind`. An accepted answer has at least one quote, each valid
/// and once per pair, from a 2xx status, and the snapshot the collector would store from it
/// validates and decodes in the transform with as many samples.
pub fn check(kind: ExchangeKind, data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(first) % STATUSES.len()];
    let Ok(fetched) = read_answer(kind, status, body) else {
        return;
    };
    assert!(
        (200..300).contains(&status),
        "{kind}: quotes taken from an HTTP {status} answer"
    );
    assert!(
        !fetched.quotes.is_empty(),
        "{kind}: accepted without a quote"
    );
    let mut pairs = HashSet::new();
    for q in &fetched.quotes {
        if let Err(why) = q.check() {
            panic!("{kind}: an invalid quote was accepted: {why}: {q:?}");
        }
        assert!(pairs.insert(q.pair.clone()), "{kind}: {} twice", q.pair);
    }
    let snapshot = Snapshot::new(
        SourceName::new(&kind.to_string()).expect("a kind is a valid source name"),
        Tick::floor(Utc::now(), 60),
        fetched.fetched_at,
        fetched.quotes,
        fetched.raw,
    );
    if let Err(e) = snapshot.validate() {
        panic!("{kind}: the collector would store an invalid snapshot: {e}");
    }
    match decode_snapshot(&snapshot.to_json()) {
        Ok(n) => assert_eq!(n, snapshot.quotes.len(), "{kind}: samples lost in decoding"),
        Err(why) => panic!("{kind}: the transform refuses what the collector stores: {why}"),
    }
}
