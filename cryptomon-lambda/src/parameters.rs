//! [`ParameterStore`]: secrets and the config read from SSM Parameter Store at cold start.
//!
//! Every read asks for decryption, so SecureString parameters arrive as plain text. Errors name
//! the parameter or path and, when access is denied, the IAM action the function's role lacks;
//! no error, log line or `Debug` output holds a parameter's value.

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use cryptomon_core::secrets::Secrets;

use crate::error::HandlerError;

/// Reads parameters from SSM Parameter Store, decrypted.
#[derive(Debug, Clone)]
pub struct ParameterStore {
    client: aws_sdk_ssm::Client,
}

impl ParameterStore {
    /// A store over a ready client.
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        ParameterStore { client }
    }

    /// A store configured from `aws`, the function's one AWS configuration (building the
    /// client makes no request).
    pub fn from_sdk_config(aws: &aws_config::SdkConfig) -> Self {
        ParameterStore::new(aws_sdk_ssm::Client::new(aws))
    }

    fn client(&self) -> &aws_sdk_ssm::Client {
        &self.client
    }

    /// The value of the parameter `name` (`GetParameter`). A name under
    /// `/aws/reference/secretsmanager/` reads a Secrets Manager secret.
    pub async fn parameter(&self, name: &str) -> Result<String, HandlerError> {
        let request = Request::parameter(name);
        let output = self
            .client()
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| request.failure(e))?;
        output
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or_else(|| {
                HandlerError::non_retryable(format!("SSM parameter {name} has no value"))
            })
    }

    /// Every parameter directly under `path` (`GetParametersByPath`, not recursive, all pages),
    /// keyed by the last segment of its name: `/cryptomon/prod/COINGECKO_API_KEY` is the
    /// secret `COINGECKO_API_KEY`. A path holding no parameter gives no secrets: the template
    /// sets the stage's path on every stack, and a fresh one has nothing there yet (a name the
    /// config needs and nobody put in place then stops the function, naming it).
    pub async fn secrets_under(&self, path: &str) -> Result<Secrets, HandlerError> {
        let request = Request::path(path);
        // Sent without its trailing `/`, so IAM checks one resource, `parameter/cryptomon/prod`,
        // however the path is written.
        let listed = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let client = self.client();
        let mut values = Vec::new();
        let mut next_token = None;
        loop {
            let page = client
                .get_parameters_by_path()
                .path(listed)
                .recursive(false)
                .with_decryption(true)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| request.failure(e))?;
            for parameter in page.parameters() {
                if let (Some(name), Some(value)) = (parameter.name(), parameter.value()) {
                    let key = name.rsplit('/').next().unwrap_or(name);
                    values.push((key.to_owned(), value.to_owned()));
                }
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        if values.is_empty() {
            tracing::info!(
                path,
                "no secrets under the SSM path: the config's names come from the environment"
            );
        }
        Ok(values.into_iter().collect())
    }
}

/// What was asked of SSM, to name it and the IAM action it needs in an error.
struct Request<'a> {
    action: &'static str,
    what: &'static str,
    name: &'a str,
}

impl<'a> Request<'a> {
    fn parameter(name: &'a str) -> Self {
        Request {
            action: "ssm:GetParameter",
            what: "parameter",
            name,
        }
    }

    fn path(name: &'a str) -> Self {
        Request {
            action: "ssm:GetParametersByPath",
            what: "path",
            name,
        }
    }

    /// The failure of this request, with its retry class. SSM's own message is kept: it names
    /// the principal and resource, never a value.
    fn failure<E, R>(&self, err: SdkError<E, R>) -> HandlerError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let Request { action, what, name } = self;
        let (code, said) = match &err {
            SdkError::ServiceError(e) => (
                e.err().code().unwrap_or("unknown").to_owned(),
                e.err().message().unwrap_or("no message").to_owned(),
            ),
            other => (
                "no answer".to_owned(),
                aws_sdk_ssm::error::DisplayErrorContext(other).to_string(),
            ),
        };
        let retryable = matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ) || matches!(
            code.as_str(),
            "ThrottlingException" | "InternalServerError" | "InternalFailure"
        );
        let message = match code.as_str() {
            "ParameterNotFound" => {
                format!("SSM {what} {name} does not exist in this account and region")
            }
            "AccessDeniedException" if said.contains("kms:") => format!(
                "SSM {what} {name}: access denied by KMS: the function's role needs kms:Decrypt \
                 on the key that encrypts it ({said})"
            ),
            "AccessDeniedException" => format!(
                "SSM {what} {name}: access denied: the function's role needs {action} on it \
                 ({said})"
            ),
            _ => format!("SSM {what} {name}: {action} failed: {code}: {said}"),
        };
        if retryable {
            HandlerError::retryable(message)
        } else {
            HandlerError::non_retryable(message)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_sdk_ssm::config::retry::RetryConfig;
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// A store on `endpoint`, without retries.
    pub(crate) fn store_at(endpoint: &str) -> ParameterStore {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .build();
        ParameterStore::new(aws_sdk_ssm::Client::from_conf(config))
    }

    /// An SSM endpoint answering every `target` request with error `code`.
    async fn ssm_failing(target: &str, code: &str, message: &str) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(header(
                "x-amz-target",
                format!("AmazonSSM.{target}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(serde_json::json!({"__type": code, "message": message})),
            )
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn access_denied_names_the_path_and_the_missing_action() {
        let server = ssm_failing(
            "GetParametersByPath",
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/collector is not authorized to \
             perform: ssm:GetParametersByPath on resource: \
             arn:aws:ssm:eu-west-1:123456789012:parameter/cryptomon/prod",
        )
        .await;
        let err = store_at(&server.uri())
            .secrets_under("/cryptomon/prod/")
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        let message = err.message();
        assert!(
            message.contains("/cryptomon/prod/")
                && message.contains("access denied")
                && message.contains("needs ssm:GetParametersByPath"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_denied_key_asks_for_kms_decrypt() {
        let server = ssm_failing(
            "GetParameter",
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/collector is not authorized to \
             perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:123456789012:key/1234",
        )
        .await;
        let err = store_at(&server.uri())
            .parameter("/cryptomon/prod/config")
            .await
            .unwrap_err();
        assert!(
            err.message().contains("/cryptomon/prod/config")
                && err.message().contains("needs kms:Decrypt"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn throttling_may_pass() {
        let server = ssm_failing("GetParameter", "ThrottlingException", "Rate exceeded").await;
        let err = store_at(&server.uri())
            .parameter("/cryptomon/prod/config")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.message().contains("ThrottlingException"), "{err}");
    }
}
