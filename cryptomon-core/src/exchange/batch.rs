//! [`QuoteBatch`]: the quotes of one fetch as they are parsed, with what was dropped and why.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::{Pair, Quote, SourceName};
use crate::source::Fetched;

/// Most problem lines kept per fetch. Binance's every-market answer holds hundreds of delisted
/// markets priced `0`; listing each every minute would bury the lines that matter.
pub(crate) const MAX_PROBLEM_LINES: usize = 20;

/// Quotes gathered while parsing one answer: each checked against the contract, each pair once.
#[derive(Debug)]
pub(crate) struct QuoteBatch {
    source: SourceName,
    quotes: Vec<Quote>,
    seen: HashSet<Pair>,
    problems: Vec<String>,
    more_problems: usize,
    /// The first request that failed, which decides whether an empty batch may be retried.
    failure: Option<Error>,
}

impl QuoteBatch {
    /// An empty batch for `source`.
    pub(crate) fn new(source: &SourceName) -> Self {
        QuoteBatch {
            source: source.clone(),
            quotes: Vec::new(),
            seen: HashSet::new(),
            problems: Vec::new(),
            more_problems: 0,
            failure: None,
        }
    }

    /// Keeps `quote` if it passes [`Quote::check`] and its pair is new; otherwise records why not.
    pub(crate) fn push(&mut self, quote: Quote) {
        if let Err(why) = quote.check() {
            self.problem(format!("{}: dropped: {why}", quote.pair));
        } else if self.seen.contains(&quote.pair) {
            self.problem(format!(
                "{}: dropped: pair appears twice in the answer",
                quote.pair
            ));
        } else {
            self.seen.insert(quote.pair.clone());
            self.quotes.push(quote);
        }
    }

    /// Records one problem line (capped at [`MAX_PROBLEM_LINES`]; the rest are counted).
    pub(crate) fn problem(&mut self, line: String) {
        if self.problems.len() < MAX_PROBLEM_LINES {
            self.problems.push(line);
        } else {
            self.more_problems += 1;
        }
    }

    /// Records that the request for `pair` failed with `error`: the pair is dropped.
    pub(crate) fn failed(&mut self, pair: &Pair, error: Error) {
        let message = match &error {
            Error::Source { message, .. } => message.clone(),
            other => other.to_string(),
        };
        self.problem(format!("{pair}: dropped: {message}"));
        self.failure.get_or_insert(error);
    }

    /// Records each of `wanted` that has no quote as missing from the answer.
    pub(crate) fn report_missing<'a>(&mut self, wanted: impl IntoIterator<Item = &'a Pair>) {
        let missing: Vec<&Pair> = wanted
            .into_iter()
            .filter(|p| !self.seen.contains(*p))
            .collect();
        for pair in missing {
            if !self
                .problems
                .iter()
                .any(|l| l.starts_with(&format!("{pair}:")))
            {
                self.problem(format!("{pair}: missing from the answer"));
            }
        }
    }

    /// The fetch, or an error when no quote survived: an answer with nothing valid in it must
    /// not become a snapshot.
    pub(crate) fn finish(
        mut self,
        raw: serde_json::Value,
        fetched_at: DateTime<Utc>,
    ) -> Result<Fetched> {
        if self.more_problems > 0 {
            self.problems
                .push(format!("... and {} more problems", self.more_problems));
        }
        if self.quotes.is_empty() {
            // With nothing but one failed request, its error says why better than a summary.
            if self.problems.len() == 1
                && let Some(failure) = self.failure.take()
            {
                return Err(failure);
            }
            let why = if self.problems.is_empty() {
                "the answer holds no quote".to_owned()
            } else {
                format!(
                    "no valid quote in the answer ({})",
                    self.problems.join("; ")
                )
            };
            return Err(Error::Source {
                source_name: self.source.to_string(),
                message: why,
                retryable: self.failure.as_ref().is_some_and(Error::is_retryable),
            });
        }
        Ok(Fetched {
            quotes: self.quotes,
            raw,
            fetched_at,
            problems: self.problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(p: &str) -> Pair {
        Pair::new(p).unwrap()
    }

    #[test]
    fn bad_and_duplicate_quotes_are_dropped_and_reported() {
        let mut b = QuoteBatch::new(&SourceName::new("kraken").unwrap());
        b.push(Quote::new(pair("BTC-USD"), 1.0));
        b.push(Quote::new(pair("ETH-USD"), 0.0));
        b.push(Quote::new(pair("BTC-USD"), 2.0));
        b.report_missing(&[pair("BTC-USD"), pair("ETH-USD"), pair("SOL-USD")]);
        let f = b.finish(serde_json::json!({}), Utc::now()).unwrap();
        assert_eq!(f.quotes, vec![Quote::new(pair("BTC-USD"), 1.0)]);
        assert_eq!(f.problems.len(), 3, "{:?}", f.problems);
        assert!(f.problems[0].starts_with("ETH-USD: dropped: price 0"));
        assert!(f.problems[1].contains("twice"));
        assert_eq!(f.problems[2], "SOL-USD: missing from the answer");
    }

    #[test]
    fn no_valid_quote_is_an_error_that_says_why() {
        let mut b = QuoteBatch::new(&SourceName::new("kraken").unwrap());
        b.push(Quote::new(pair("BTC-USD"), f64::NAN));
        let e = b.finish(serde_json::json!({}), Utc::now()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("kraken") && msg.contains("BTC-USD") && msg.contains("NaN"),
            "{msg}"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn problem_lines_are_capped() {
        let mut b = QuoteBatch::new(&SourceName::new("binance").unwrap());
        b.push(Quote::new(pair("BTC-USDT"), 1.0));
        for i in 0..(MAX_PROBLEM_LINES + 5) {
            b.problem(format!("line {i}"));
        }
        let f = b.finish(serde_json::json!({}), Utc::now()).unwrap();
        assert_eq!(f.problems.len(), MAX_PROBLEM_LINES + 1);
        assert_eq!(f.problems.last().unwrap(), "... and 5 more problems");
    }
}
