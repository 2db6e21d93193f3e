//! [`HttpSource`], the one [`Source`] of every exchange, and the [`Exchange`] trait that holds
//! what differs between exchanges: the entries it accepts, its requests, the error in its bodies
//! and the reading of its answers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

use super::batch::QuoteBatch;
use super::http::{HttpClient, HttpPolicy};
use super::reply::{Reply, excerpt};
use super::throttle::Throttle;
use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::model::{SourceName, Tick};
use crate::secrets::Secrets;
use crate::source::{Fetched, Source};

/// One GET of a fetch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The endpoint, without a query.
    pub(crate) url: String,
    /// The query parameters, encoded by the HTTP client.
    pub(crate) query: Vec<(&'static str, String)>,
}

impl Request {
    /// A GET of `url` without a query.
    pub(crate) fn to(url: String) -> Self {
        Request {
            url,
            query: Vec::new(),
        }
    }
}

/// An error an exchange reports in a body, and whether a later attempt may succeed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// The exchange's words, with its code where it gives one.
    pub(crate) message: String,
    /// Whether the exchange said to try again later (throttled, busy).
    pub(crate) retryable: bool,
}

impl Refusal {
    /// An error the same request would get again (an unknown pair, a bad key).
    pub(crate) fn permanent(message: String) -> Self {
        Refusal {
            message,
            retryable: false,
        }
    }
}

/// What one exchange adds to [`HttpSource`]; the HTTP layer does the rest (rate, retries,
/// timeouts, body cap, API key).
///
/// # Contract
///
/// - `new` accepts the entries the exchange can serve, and refuses any other with a message
///   that names the field or the pair (the caller adds the entry).
/// - `requests` are sent in order, [`Exchange::CONCURRENCY`] at a time, each retried by the
///   HTTP layer as its [`HttpPolicy`] says.
/// - `error` finds the exchange's error in a body, whatever its HTTP status: some exchanges
///   report errors with a 200.
/// - `parse` gets each request's JSON body, or why there is none, in the order of `requests`;
///   with a single request, only a body (its failure is the fetch's). It pushes quotes and
///   problems into the batch and returns the JSON kept as the snapshot's raw answer, or why the
///   answer as a whole is unusable.
pub(crate) trait Exchange: fmt::Debug + Send + Sync + Sized + 'static {
    /// Requests per period sent to the exchange, from its documented public limits.
    const RATE: (u32, Duration);

    /// Requests of one fetch in flight at once.
    const CONCURRENCY: usize = 1;

    /// The exchange's part of a source for `config`, or why the entry does not suit it.
    fn new(config: &SourceConfig) -> std::result::Result<Self, String>;

    /// The header an API key goes in, for an exchange that takes one (`api_key_env`).
    fn key_header(&self) -> Option<&'static str> {
        None
    }

    /// The requests of one fetch.
    fn requests(&self) -> Vec<Request>;

    /// The error `body` reports, if it is an error body.
    fn error(&self, body: &Value) -> Option<Refusal>;

    /// Reads the bodies of one fetch into `batch` and returns the raw answer to keep.
    fn parse(
        &self,
        bodies: Vec<Result<Value>>,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<Value, String>;
}

/// The body of an exchange that sends one request.
pub(crate) fn sole_body(bodies: Vec<Result<Value>>) -> std::result::Result<Value, String> {
    match <[_; 1]>::try_from(bodies) {
        Ok([Ok(body)]) => Ok(body),
        _ => Err("expected the answer of one request".to_owned()),
    }
}

/// An exchange's public market data over HTTPS, for one `[[sources]]` entry.
#[derive(Debug)]
pub(crate) struct HttpSource<E> {
    name: SourceName,
    exchange: E,
    http: HttpClient,
}

impl<E: Exchange> HttpSource<E> {
    /// A source for the entry `config`, with a request rate of its own.
    pub(crate) fn new(
        config: &SourceConfig,
        policy: &HttpPolicy,
        secrets: &Secrets,
    ) -> Result<Self> {
        Self::with_throttle(config, policy, secrets, Throttle::new(E::RATE.0, E::RATE.1))
    }

    /// A source for the entry `config`, sharing `throttle` with the other sources of its
    /// exchange. The key, if the entry names one in `api_key_env`, is read from `secrets` now.
    pub(crate) fn with_throttle(
        config: &SourceConfig,
        policy: &HttpPolicy,
        secrets: &Secrets,
        throttle: Arc<Throttle>,
    ) -> Result<Self> {
        let exchange = E::new(config).map_err(Error::Config)?;
        let api_key = match (&config.api_key_env, exchange.key_header()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "api_key_env is not used by {}",
                    config.kind
                )));
            }
            (Some(var), Some(header)) => {
                let key = secrets
                    .get(var)
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "source {}: api_key_env names {var}, which is not set",
                            config.name
                        ))
                    })?;
                Some((header, key.trim().to_owned()))
            }
        };
        Ok(HttpSource {
            name: config.name.clone(),
            http: HttpClient::new(
                &config.name,
                policy,
                config.max_body_bytes,
                throttle,
                api_key,
            )?,
            exchange,
        })
    }

    /// The exchange's part, for the fuzzing hooks.
    pub(crate) fn exchange(&self) -> &E {
        &self.exchange
    }

    /// The fetch made of the replies to `requests`, in their order: its quotes, or why it
    /// gives none.
    pub(crate) fn read(
        &self,
        requests: &[Request],
        replies: Vec<Result<Reply>>,
        fetched_at: DateTime<Utc>,
    ) -> Result<Fetched> {
        let status = replies
            .first()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.status);
        let bodies: Vec<Result<Value>> = requests
            .iter()
            .zip(replies)
            .map(|(request, reply)| reply.and_then(|reply| self.body(&request.url, &reply)))
            .collect();
        // With one request, its failure is the fetch's.
        let bodies = match <[_; 1]>::try_from(bodies) {
            Ok([only]) => vec![Ok(only?)],
            Err(bodies) => bodies,
        };
        let mut batch = QuoteBatch::new(&self.name);
        let raw = self.exchange.parse(bodies, &mut batch).map_err(|why| {
            let url = requests.first().map_or("", |r| r.url.as_str());
            let status = status.map_or_else(String::new, |s| format!("HTTP {s}: "));
            self.http.error(format!("GET {url}: {status}{why}"), false)
        })?;
        batch.finish(raw, fetched_at)
    }

    /// The JSON body of `reply`, or the error it stands for (see [`json_body`]).
    fn body(&self, url: &str, reply: &Reply) -> Result<Value> {
        json_body(&self.http, url, reply, |body| self.exchange.error(body))
    }
}

/// The JSON body of `reply`, or the error it stands for: not JSON, an error the exchange reports
/// in it (`refused`), or a status other than 2xx. Shared by the ticker and candle clients.
pub(super) fn json_body(
    http: &HttpClient,
    url: &str,
    reply: &Reply,
    refused: impl FnOnce(&Value) -> Option<Refusal>,
) -> Result<Value> {
    let body = reply
        .json()
        .map_err(|why| http.error(format!("GET {url}: {why}"), false))?;
    if let Some(Refusal { message, retryable }) = refused(&body) {
        return Err(http.error(
            format!("GET {url}: HTTP {}: {message}", reply.status),
            retryable,
        ));
    }
    if !reply.is_success() {
        // A 4xx that is not a rate limit (a bad symbol, a restricted location) is an answer,
        // not an accident: the same request would get it again.
        return Err(http.error(
            format!("GET {url}: HTTP {}: {}", reply.status, excerpt(&reply.body)),
            false,
        ));
    }
    Ok(body)
}

#[async_trait]
impl<E: Exchange> Source for HttpSource<E> {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, _tick: Tick) -> Result<Fetched> {
        let deadline = self.http.deadline();
        let requests = self.exchange.requests();
        // By index: a closure over `&Request` trips the `Send` check of `async_trait` futures.
        let replies: Vec<Result<Reply>> = futures::stream::iter(0..requests.len())
            .map(|i| {
                self.http
                    .get(&requests[i].url, &requests[i].query, deadline)
            })
            .buffered(E::CONCURRENCY)
            .collect()
            .await;
        self.read(&requests, replies, Utc::now())
    }
}

/// What the exchanges' unit tests share: an entry and the reading of one answer.
#[cfg(test)]
pub(crate) mod testing {
    use bytes::Bytes;

    use super::*;
    use crate::config::{DEFAULT_MAX_BODY_BYTES, ExchangeKind, PairSelection};
    use crate::model::Pair;

    /// An entry of `kind` for `pairs` (`None`: every market), on a port nothing listens on.
    pub(crate) fn entry(kind: ExchangeKind, pairs: Option<&[&str]>) -> SourceConfig {
        SourceConfig {
            kind,
            name: SourceName::new(kind.as_str()).unwrap(),
            pairs: match pairs {
                None => PairSelection::All,
                Some(p) => PairSelection::List(p.iter().map(|p| Pair::new(p).unwrap()).collect()),
            },
            base_url: "http://127.0.0.1:9".to_owned(),
            timeout_secs: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            api_key_env: None,
            ids: Default::default(),
        }
    }

    /// The source of `entry`.
    pub(crate) fn source<E: Exchange>(entry: &SourceConfig) -> HttpSource<E> {
        HttpSource::new(entry, &HttpPolicy::default(), &Secrets::default()).unwrap()
    }

    /// What `source` makes of a 200 answer with `body` to its one request.
    pub(crate) fn read_ok<E: Exchange>(source: &HttpSource<E>, body: Value) -> Result<Fetched> {
        let reply = Reply {
            status: 200,
            body: Bytes::from(body.to_string()),
        };
        source.read(&source.exchange.requests(), vec![Ok(reply)], Utc::now())
    }
}
