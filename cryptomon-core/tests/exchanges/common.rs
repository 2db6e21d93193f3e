//! What the exchange tests share: fixtures, policies, a source pointed at a mock server, and
//! the table of error bodies every exchange is checked against.

use std::path::PathBuf;
use std::time::Duration;

use cryptomon_core::config::Config;
use cryptomon_core::exchange::{HttpPolicy, build_sources_with};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynSource, Error, Fetched, Quote, Tick};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const TICK: Tick = Tick::from_unix(1_796_000_000);

pub(crate) fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An answer with `status` and the fixture `name` as its JSON body.
pub(crate) fn json_body(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

/// Fast retries and a short budget, for tests on real time.
pub(crate) fn quick_policy() -> HttpPolicy {
    HttpPolicy {
        timeout: Some(Duration::from_millis(300)),
        max_retries: 2,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        budget: Duration::from_secs(5),
        rate_limit_pause: Duration::from_secs(10),
        pool_idle_timeout: None,
    }
}

/// The production shape for tests with paused time: no request timer and no pool timer, which
/// paused time would fire while the mock server (on its own thread) answers.
pub(crate) fn paused_policy() -> HttpPolicy {
    HttpPolicy {
        timeout: None,
        pool_idle_timeout: None,
        ..HttpPolicy::for_interval(60)
    }
}

/// Kraken's docs' ticker, for BTC-USD.
pub(crate) const KRAKEN_DOCS: &str = "kraken/ticker_xbtusd_docs_example.json";
/// Binance's docs' FULL ticker, for BNB-BTC.
pub(crate) const BNB_FULL: &str = "binance/ticker_24hr_docs_example_full.json";

/// Kraken's entry for BTC-USD.
pub(crate) const KRAKEN_BTC: &str = "kind = \"kraken\"\npairs = [\"BTC-USD\"]";
/// Binance's entry for the market of its docs' example.
pub(crate) const BINANCE_BNB: &str = "kind = \"binance\"\npairs = [\"BNB-BTC\"]";
/// Binance's entry for BTC-USDT.
pub(crate) const BINANCE_BTC: &str = "kind = \"binance\"\npairs = [\"BTC-USDT\"]";

/// A server answering GETs of `url_path` with `answer`, which must be asked for `times` times.
pub(crate) async fn serve(url_path: &str, answer: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(url_path))
        .respond_with(answer)
        .expect(times)
        .mount(&server)
        .await;
    server
}

/// The sources of `text` (a whole config file).
pub(crate) fn sources(text: &str, policy: &HttpPolicy) -> Vec<DynSource> {
    let config = Config::from_toml_str(text).unwrap();
    build_sources_with(&config, policy, &Secrets::default()).unwrap()
}

/// The one source of a `[[sources]]` entry pointed at `server`.
pub(crate) fn source(server: &MockServer, entry: &str, policy: &HttpPolicy) -> DynSource {
    let text = format!("[[sources]]\nbase_url = \"{}\"\n{entry}\n", server.uri());
    sources(&text, policy).remove(0)
}

pub(crate) fn quote_of<'a>(fetched: &'a Fetched, pair: &str) -> &'a Quote {
    fetched
        .quotes
        .iter()
        .find(|q| q.pair.as_str() == pair)
        .unwrap_or_else(|| panic!("no {pair} in {:?}", fetched.quotes))
}

/// The message of a source error, after the source's name, and whether it may be retried.
pub(crate) fn source_error(e: Error) -> (String, bool) {
    let retryable = e.is_retryable();
    match e {
        Error::Source {
            source_name,
            message,
            ..
        } => (format!("{source_name}: {message}"), retryable),
        other => panic!("expected a source error, got {other}"),
    }
}

pub(crate) async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// An answer a fetch must turn into an error.
pub(crate) struct ErrorCase {
    /// The HTTP status of every answer.
    pub(crate) status: u16,
    /// The body, a fixture.
    pub(crate) fixture: &'static str,
    /// A part of the error message.
    pub(crate) expected: &'static str,
    /// Whether the error says a later attempt may succeed.
    pub(crate) retryable: bool,
    /// How many requests the fetch sends: no retry of an answer, however many endpoints.
    pub(crate) requests: u64,
}

/// Each case, on a fresh server answering every request with it, fails the fetch of `entry`
/// with an error naming the source.
pub(crate) async fn assert_errors(entry: &str, cases: &[ErrorCase]) {
    for case in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(json_body(case.status, case.fixture))
            .expect(case.requests)
            .mount(&server)
            .await;
        let s = source(&server, entry, &quick_policy());
        let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
        let file = case.fixture;
        assert!(
            message.starts_with(&format!("{}: ", s.name())),
            "{file}: {message}"
        );
        assert!(message.contains(case.expected), "{file}: {message}");
        assert_eq!(retryable, case.retryable, "{file}: {message}");
    }
}
