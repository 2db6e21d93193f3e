//! The Lambda functions' secrets and config from SSM Parameter Store on moto
//! (`CRYPTOMON_TEST_S3_ENDPOINT`, see `cryptomon_tests::moto`): SecureString parameters read
//! through `Settings` as the collector and transformer read them at cold start, then used by
//! a CoinGecko source and a webhook on local servers.

use cryptomon_core::alerting::{AlertEvent, EventStatus, SIGNATURE_HEADER, signature};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{Measure, Pair, SourceName, Tick};
use cryptomon_lambda::{HandlerError, ParameterStore, Settings, alerts, sources};
use cryptomon_mock::MemoryStore;
use cryptomon_tests::{moto, moto_endpoint};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_KEY: &str = "cg-demo-key-from-ssm-4f1c";
const WEBHOOK_SECRET: &str = "whsec-from-ssm-9b2e";
/// A webhook URL with its credential in the path, as Slack's are.
const HOOK_PATH: &str = "/hooks/T0001/B0001/url-token-from-ssm-77aa";

/// An SSM client on moto, and a path no other test uses (tests share one moto server).
async fn ssm(endpoint: &str, hint: &str) -> (aws_sdk_ssm::Client, String) {
    let config = moto::sdk_config(endpoint).await;
    let path = format!("/cryptomon-test/{}/", moto::unique_bucket(hint));
    (aws_sdk_ssm::Client::new(&config), path)
}

async fn put_secure(client: &aws_sdk_ssm::Client, name: &str, value: &str) {
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot put {name}: {e:?}"));
}

/// A Secrets Manager secret on moto, created with one raw request (an SDK for one call in one
/// test would cost more to build than it saves).
async fn create_secret(endpoint: &str, name: &str, value: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({"Name": name, "SecretString": value}).to_string();
    let authority = endpoint.trim_start_matches("http://");
    // moto picks the service from the credential scope; it checks no signature.
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: secretsmanager.CreateSecret\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, \
         Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.contains(" 200 "), "CreateSecret {name}: {answer}");
}

fn settings(config: &str, secrets_path: &str) -> Settings {
    Settings::from_lookup(|name| match name {
        "CRYPTOMON_BUCKET" => Some("market-data".to_owned()),
        "CRYPTOMON_CONFIG" => Some(config.to_owned()),
        "CRYPTOMON_SECRETS_PATH" => Some(secrets_path.to_owned()),
        _ => None,
    })
    .unwrap()
}

/// The config text and the secrets, read as the functions read them at cold start.
async fn cold_start(
    settings: &Settings,
    parameters: &ParameterStore,
) -> Result<(Option<String>, Secrets), HandlerError> {
    let config = settings
        .config
        .load(&MemoryStore::new(), parameters)
        .await?;
    Ok((config, settings.secrets(parameters).await?))
}

/// An AWS configuration for clients no test sends a request with (no SNS topic is set).
fn no_aws() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder().build()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [API_KEY, WEBHOOK_SECRET, "url-token-from-ssm"] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn event() -> AlertEvent {
    let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
    AlertEvent {
        schema: "cryptomon.alert/v1".into(),
        status: EventStatus::Fired,
        rule: "btc-above".into(),
        kind: "threshold".into(),
        source: Some(SourceName::new("coingecko").unwrap()),
        pair: Some(Pair::new("BTC-USD").unwrap()),
        measure: Some(Measure::Price),
        value: 101_000.0,
        reference: 100_000.0,
        ratio: 1.01,
        tick,
        fired_at: tick,
    }
}

/// The config from `ssm:` and both secrets from the path reach the exchange and the webhook:
/// the CoinGecko key in its header, the webhook secret in the signature.
#[tokio::test]
async fn config_and_secrets_from_ssm_reach_the_exchange_and_the_webhook() {
    let endpoint = moto_endpoint!("config_and_secrets_from_ssm_reach_the_exchange_and_the_webhook");
    let (client, secrets_path) = ssm(&endpoint, "secrets").await;
    let exchange = MockServer::start().await;
    Mock::given(path("/simple/price"))
        .and(header("x-cg-demo-api-key", API_KEY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"bitcoin": {"usd": 101000.5}})),
        )
        .expect(1)
        .mount(&exchange)
        .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&receiver)
        .await;

    put_secure(
        &client,
        &format!("{secrets_path}COINGECKO_API_KEY"),
        API_KEY,
    )
    .await;
    put_secure(
        &client,
        &format!("{secrets_path}WEBHOOK_SECRET"),
        WEBHOOK_SECRET,
    )
    .await;
    // More than one page (SSM gives at most 10 parameters a page), and one level deeper, which
    // is not read.
    for i in 0..11 {
        put_secure(&client, &format!("{secrets_path}FILLER_{i}"), "filler").await;
    }
    put_secure(&client, &format!("{secrets_path}nested/DEEPER"), "deeper").await;
    // The config beside its secrets, as docs/deploy.md lays them out (read as a secret too).
    let config_name = format!("{secrets_path}config");
    let config_text = format!(
        "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
         api_key_env = \"COINGECKO_API_KEY\"\n\n\
         [[alerts.webhooks]]\nurl = \"{}{HOOK_PATH}\"\nsecret_env = \"WEBHOOK_SECRET\"\n",
        exchange.uri(),
        receiver.uri()
    );
    put_secure(&client, &config_name, &config_text).await;

    let settings = settings(&format!("ssm:{config_name}"), &secrets_path);
    let parameters = ParameterStore::new(client);
    let (config, secrets) = cold_start(&settings, &parameters).await.unwrap();
    assert_eq!(config.as_deref(), Some(config_text.as_str()), "decrypted");
    let mut names: Vec<&str> = secrets.names().collect();
    names.retain(|n| !n.starts_with("FILLER_"));
    assert_eq!(names, ["COINGECKO_API_KEY", "WEBHOOK_SECRET", "config"]);
    assert_eq!(secrets.len(), 14, "every page, nothing deeper");

    let setup = sources::from_config(config.as_deref(), &secrets).unwrap();
    let fetched = setup.sources[0]
        .fetch(Tick::parse("2026-11-27T12:00:00Z").unwrap())
        .await
        .unwrap();
    assert_eq!(fetched.quotes[0].price, 101_000.5);

    let alerting = alerts::from_config(config.as_deref(), None, &secrets, &no_aws()).unwrap();
    alerting.notifiers[0]
        .notify("delivery-1", &[event()])
        .await
        .unwrap();
    let request = &receiver.received_requests().await.unwrap()[0];
    let sent = request.headers[SIGNATURE_HEADER].to_str().unwrap();
    let timestamp: i64 = sent
        .strip_prefix("t=")
        .and_then(|s| s.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        sent,
        signature(WEBHOOK_SECRET.as_bytes(), timestamp, &request.body),
        "signed with the secret from SSM"
    );

    assert_no_secret("Secrets' Debug", &format!("{secrets:?}"));
    assert_no_secret("Settings' Debug", &format!("{settings:?}"));
    assert_no_secret("the sources' Debug", &format!("{:?}", setup.sources));
    assert_no_secret("the notifiers' Debug", &format!("{:?}", alerting.notifiers));
}

/// A missing parameter and an empty path stop the cold start naming them; a missing secret
/// names itself; none of the messages shows a value.
#[tokio::test]
async fn missing_parameters_and_paths_are_named_without_values() {
    let endpoint = moto_endpoint!("missing_parameters_and_paths_are_named_without_values");
    let (client, secrets_path) = ssm(&endpoint, "missing").await;
    put_secure(
        &client,
        &format!("{secrets_path}WEBHOOK_SECRET"),
        WEBHOOK_SECRET,
    )
    .await;
    let parameters = ParameterStore::new(client.clone());

    let missing = format!("{secrets_path}no-such-config");
    let err = cold_start(
        &settings(&format!("ssm:{missing}"), &secrets_path),
        &parameters,
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message().starts_with("CRYPTOMON_CONFIG:")
            && err.message().contains(&missing)
            && err.message().contains("does not exist"),
        "{err}"
    );

    // A fresh stack's path holds nothing yet: no secrets, and no error until a name is needed.
    let empty = format!("{}-empty/", secrets_path.trim_end_matches('/'));
    let (_, none) = cold_start(&settings("", &empty), &parameters)
        .await
        .unwrap();
    let err = sources::from_config(
        Some(
            "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\napi_key_env = \"NOT_PUT\"\n",
        ),
        &none,
    )
    .unwrap_err();
    assert!(err.message().contains("NOT_PUT"), "{err}");

    // The path holds the webhook secret but not the API key the source names.
    let (_, secrets) = cold_start(&settings("", &secrets_path), &parameters)
        .await
        .unwrap();
    let config = "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\n\
                  api_key_env = \"COINGECKO_API_KEY\"\n";
    let err = sources::from_config(Some(config), &secrets).unwrap_err();
    assert!(err.message().contains("COINGECKO_API_KEY"), "{err}");
    assert_no_secret("a missing key's error", err.message());

    let hook = format!(
        "[[sources]]\nkind = \"kraken\"\n\n[[alerts.webhooks]]\nurl = \"http://127.0.0.1:9{HOOK_PATH}\"\nsecret_env = \"OTHER\"\n"
    );
    let err = alerts::from_config(Some(&hook), None, &secrets, &no_aws()).unwrap_err();
    assert!(err.message().contains("secret_env OTHER"), "{err}");
    assert_no_secret("a missing webhook secret's error", err.message());
    assert_no_secret("Secrets' Debug", &format!("{secrets:?}"));
}

/// `ssm:/aws/reference/secretsmanager/<id>` reads the config from a Secrets Manager secret.
#[tokio::test]
async fn the_config_may_be_a_secrets_manager_secret() {
    let endpoint = moto_endpoint!("the_config_may_be_a_secrets_manager_secret");
    let (client, _) = ssm(&endpoint, "reference").await;
    let secret_id = format!("cryptomon-config-{}", moto::unique_bucket("sm"));
    create_secret(&endpoint, &secret_id, "demo = true\n").await;
    let settings = settings(
        &format!("ssm:/aws/reference/secretsmanager/{secret_id}"),
        "",
    );
    let (config, secrets) = cold_start(&settings, &ParameterStore::new(client))
        .await
        .unwrap();
    assert_eq!(config.as_deref(), Some("demo = true\n"));
    assert!(secrets.is_empty());
}
