//! `S3Store`: a store in an S3 bucket, under a key prefix, on AWS or any S3-compatible server.
//!
//! Each [`Store`] call is one S3 request (a listing one per 1,000 keys):
//!
//! | store call | S3 request |
//! |---|---|
//! | `get_opts(key, None)` | `GetObject` |
//! | `get_opts(key, Some(v))` | `GetObject` with `If-None-Match: v` (a 304 transfers nothing) |
//! | `put_opts(key, _, Overwrite)` | `PutObject` |
//! | `put_opts(key, _, Create)` | `PutObject` with `If-None-Match: *` |
//! | `put_opts(key, _, Update(v))` | `PutObject` with `If-Match: v` |
//! | `list(prefix)` | `ListObjectsV2`, following continuation tokens |
//! | `list_prefixes(prefix)` | `ListObjectsV2` with the delimiter `/` |
//!
//! Versions are ETags. S3 writes are atomic and strongly consistent, and its conditional writes
//! are compare-and-swaps across every writer, which is what the [`Store`] contract asks.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{Fetch, Object, PutMode, Store, Version};
use crate::error::{Error, Message, Result};
use crate::keys::{validate_key, validate_prefix};

/// Region used when the environment names none: the SDK refuses to sign without one, and
/// S3-compatible servers ignore it.
const FALLBACK_REGION: &str = "us-east-1";

/// Where a store lives: a bucket and a key prefix inside it (`s3://bucket/prefix`).
///
/// The prefix is empty or ends in `/`; store keys are relative to it, so the same data can sit
/// at the root of one bucket and under `cryptomon/` in another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    bucket: String,
    prefix: String,
}

impl S3Location {
    /// A bucket and a prefix (`""`, `"p"` or `"p/"` and deeper; a trailing `/` is added).
    pub fn new(bucket: &str, prefix: &str) -> Result<Self> {
        check_bucket(bucket)?;
        let trimmed = prefix.trim_end_matches('/');
        let prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}/")
        };
        validate_prefix(&prefix).map_err(|e| invalid_url(&format!("s3://{bucket}/{prefix}"), e))?;
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::Config(format!(
                "S3 location {url:?} does not start with s3:// (expected s3://bucket/prefix)"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Location::new(bucket, prefix).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("S3 location {url:?}: {m}")),
            other => other,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket: empty or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object key in the bucket of a store key.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl FromStr for S3Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        S3Location::parse(s)
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{}",
            self.bucket,
            self.prefix.trim_end_matches('/')
        )
    }
}

fn invalid_url(url: &str, e: Error) -> Error {
    Error::Config(format!("invalid key prefix in {url:?}: {e}"))
}

/// S3's bucket naming rules (3-63 characters of `a-z0-9.-`, starting and ending with a letter
/// or digit): checked up front so a typo is a config error, not an opaque 400 later.
fn check_bucket(bucket: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Config(format!(
            "invalid bucket name {bucket:?}: {reason}"
        )))
    };
    if bucket.is_empty() {
        return bad("empty (expected s3://bucket/prefix)");
    }
    if !(3..=63).contains(&bucket.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lower-case letters, digits, '.' and '-' are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(bucket.as_bytes()[0]) || !edge_ok(bucket.as_bytes()[bucket.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    Ok(())
}

/// A store in an S3 bucket under a key prefix.
///
/// Build it from the standard AWS environment with [`S3Store::from_env`] (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credentials from the usual chain), from an SDK config with
/// [`S3Store::from_sdk_config`], or from a ready client with [`S3Store::new`]. With a custom
/// endpoint (an S3-compatible server such as MinIO or moto) requests use path-style addressing,
/// since such servers rarely resolve `bucket.host` names.
///
/// Errors name the `s3://bucket/key` involved and carry the S3 error code and HTTP status;
/// throttling (503 `SlowDown`), 5xx answers, timeouts and dropped connections are retryable,
/// a missing bucket or denied access is not. The SDK's own retries (3 attempts, backoff) run
/// before an error reaches the caller.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    location: S3Location,
}

impl S3Store {
    /// A store over a ready client.
    pub fn new(client: Client, location: S3Location) -> Self {
        S3Store { client, location }
    }

    /// A store over a client built from `config`: its region (or `us-east-1` if it has none),
    /// endpoint and credentials; path-style addressing when the config has a custom endpoint.
    pub fn from_sdk_config(config: &aws_config::SdkConfig, location: S3Location) -> Self {
        let mut builder = aws_sdk_s3::config::Builder::from(config);
        if config.region().is_none() {
            builder = builder.region(Region::new(FALLBACK_REGION));
        }
        let custom_endpoint =
            config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        if custom_endpoint {
            builder = builder.force_path_style(true);
        }
        S3Store::new(Client::from_conf(builder.build()), location)
    }

    /// A store at `location` configured from the standard AWS environment: `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`), `AWS_ACCESS_KEY_ID` and the rest of the
    /// credential chain (profile, container and instance roles, the Lambda role).
    ///
    /// Nothing is sent yet: a missing bucket or bad credentials show at the first call.
    pub async fn from_env(location: S3Location) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        S3Store::from_sdk_config(&config, location)
    }

    /// [`S3Store::from_env`] at an `s3://bucket/prefix` URL.
    pub async fn from_url(url: &str) -> Result<Self> {
        Ok(S3Store::from_env(S3Location::parse(url)?).await)
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// The SDK client, for what the store does not do (creating a bucket in a test, say).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn failure<E>(&self, op: &'static str, key: &str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = S3Failure::new(op, &self.location, key, err);
        let retryable = failure.retryable;
        Error::store(op, key, retryable, Message(failure.to_string()))
    }

    /// A `ListObjectsV2` of the objects under `prefix` (relative to the store's).
    fn list_request(&self, prefix: &str) -> ListObjectsV2FluentBuilder {
        self.client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(self.location.object_key(prefix))
    }

    /// Every key under `prefix` (after `start_after`, when given), sorted, over as many pages
    /// as it takes.
    async fn list_from(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        if let Some(after) = start_after {
            validate_prefix(after)?;
        }
        let mut pages = self
            .list_request(prefix)
            .set_start_after(start_after.map(|k| self.location.object_key(k)))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failure("list", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object
                    .key()
                    .and_then(|k| k.strip_prefix(&self.location.prefix))
                else {
                    continue;
                };
                // Console "folder" markers (`raw/`) and other keys no store could have written
                // are not objects of ours.
                if validate_key(key).is_ok() {
                    keys.push(key.to_owned());
                }
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps the contract whatever the server.
        keys.sort_unstable();
        Ok(keys)
    }
}

type HttpResponse = aws_sdk_s3::config::http::HttpResponse;
type ListObjectsV2FluentBuilder =
    aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder;

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.fmt(f)
    }
}

/// An S3 failure taken apart: what the caller needs to decide (status, code, retry class) and
/// what a person needs to act (where, and what S3 said).
#[derive(Debug)]
struct S3Failure {
    /// `s3://bucket/object-key` (or the listed prefix).
    url: String,
    status: Option<u16>,
    code: Option<String>,
    detail: String,
    retryable: bool,
    /// The IAM action the call needs, named in access-denied messages.
    action: &'static str,
}

impl S3Failure {
    fn new<E>(
        op: &'static str,
        location: &S3Location,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let url = format!("s3://{}/{}", location.bucket, location.object_key(key));
        let action = match op {
            "get" => "s3:GetObject",
            "put" => "s3:PutObject",
            _ => "s3:ListBucket",
        };
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, retryable, detail) = match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().map(str::to_owned);
                let message = service.err().message().unwrap_or("").to_owned();
                let retryable = retryable_answer(status, code.as_deref());
                (code, retryable, message)
            }
            // No usable answer: the request may never have arrived, or the answer was cut.
            SdkError::TimeoutError(_) => (None, true, "timed out".to_owned()),
            SdkError::DispatchFailure(d) => {
                (None, !d.is_user(), format!("{}", DisplayErrorContext(&err)))
            }
            SdkError::ResponseError(_) => (None, true, format!("{}", DisplayErrorContext(&err))),
            // Built wrong on our side (bad input, no credentials): the same call fails again.
            _ => (None, false, format!("{}", DisplayErrorContext(&err))),
        };
        S3Failure {
            url,
            status,
            code,
            detail,
            retryable,
            action,
        }
    }
}

/// Whether an S3 error answer may go away on its own.
fn retryable_answer(status: Option<u16>, code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "SlowDown"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable"
                | "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    ) || matches!(status, Some(408 | 429 | 500 | 502 | 503 | 504))
}

impl fmt::Display for S3Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.url)?;
        match (&self.code, self.status) {
            (Some(code), Some(status)) => write!(f, "{code} (HTTP {status})")?,
            (Some(code), None) => write!(f, "{code}")?,
            (None, Some(status)) => write!(f, "HTTP {status}")?,
            (None, None) => f.write_str("no answer")?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        match self.code.as_deref() {
            Some("NoSuchBucket") => f.write_str(" (create the bucket or fix the store URL)")?,
            Some("AccessDenied") | Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") => {
                write!(
                    f,
                    " (check the credentials and that the policy allows {}",
                    self.action
                )?;
                // S3 hides whether a key exists from a caller that may not list the bucket.
                if self.action == "s3:GetObject" {
                    f.write_str(
                        "; S3 also answers 403 for a missing key when the caller may not \
                         s3:ListBucket the bucket",
                    )?;
                }
                f.write_str(")")?
            }
            _ => {}
        }
        if self.retryable {
            f.write_str(" [retryable]")?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Failure {}

/// The status and code of a service error answer, if the error is one.
fn answer<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<&str>) {
    match err {
        SdkError::ServiceError(s) => (Some(s.raw().status().as_u16()), s.err().code()),
        _ => (None, None),
    }
}

#[async_trait]
impl Store for S3Store {
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch> {
        validate_key(key)?;
        let mut request = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.location.object_key(key));
        if let Some(version) = if_none_match {
            request = request.if_none_match(&version.0);
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(err) => {
                return match answer(&err) {
                    (Some(304), _) => Ok(Fetch::NotModified),
                    // A 404 is a missing key unless the bucket itself is missing.
                    (_, Some("NoSuchKey")) => Ok(Fetch::Missing),
                    (Some(404), code) if code != Some("NoSuchBucket") => Ok(Fetch::Missing),
                    _ => Err(self.failure("get", key, err)),
                };
            }
        };
        let version = Version(output.e_tag.clone().unwrap_or_default());
        let body = output.body.collect().await.map_err(|e| {
            // The answer was cut mid-body: the next attempt may get all of it.
            Error::store(
                "get",
                key,
                true,
                Message(format!(
                    "s3://{}/{}: reading the body failed: {e}",
                    self.location.bucket,
                    self.location.object_key(key)
                )),
            )
        })?;
        Ok(Fetch::Found(Object {
            body: body.into_bytes(),
            version,
        }))
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        validate_key(key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(self.location.object_key(key))
            .content_type(content_type(key))
            .body(ByteStream::from(body));
        request = match &mode {
            PutMode::Overwrite => request,
            PutMode::Create => request.if_none_match("*"),
            PutMode::Update(version) => request.if_match(&version.0),
        };
        match request.send().await {
            Ok(output) => output.e_tag.map(Version).ok_or_else(|| {
                Error::store(
                    "put",
                    key,
                    false,
                    Message(format!(
                        "s3://{}/{}: the server answered without an ETag",
                        self.location.bucket,
                        self.location.object_key(key)
                    )),
                )
            }),
            // 412: the condition failed. 409: a concurrent conditional write to the same key
            // won the race; for the caller that is the same outcome.
            Err(err) => match (answer(&err), &mode) {
                ((Some(412 | 409), _), PutMode::Create) => {
                    Err(Error::AlreadyExists { key: key.into() })
                }
                ((Some(412 | 409), _), PutMode::Update(_)) => {
                    Err(Error::Precondition { key: key.into() })
                }
                // If-Match on a key that is gone: the version expected is not there.
                ((Some(404), Some("NoSuchKey")), PutMode::Update(_)) => {
                    Err(Error::Precondition { key: key.into() })
                }
                _ => Err(self.failure("put", key, err)),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.list_from(prefix, None).await
    }

    /// `StartAfter` on the wire: S3 skips the keys before it without billing a page for them.
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<String>> {
        self.list_from(prefix, Some(start_after)).await
    }

    /// One `ListObjectsV2` with the delimiter `/` per 1,000 common prefixes: the sources and
    /// date partitions, without listing every snapshot in them.
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(Error::InvalidKey {
                key: prefix.to_owned(),
                reason: "a prefix of directories must end in '/'",
            });
        }
        let mut pages = self
            .list_request(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut prefixes = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failure("list", prefix, e))?;
            for common in page.common_prefixes() {
                let Some(p) = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(&self.location.prefix))
                else {
                    continue;
                };
                if validate_prefix(p).is_ok() && p.len() > prefix.len() {
                    prefixes.push(p.to_owned());
                }
            }
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        Ok(prefixes)
    }
}

/// The `Content-Type` stored with an object, so the bucket serves and previews it sensibly.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".parquet") {
        "application/vnd.apache.parquet"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_display() {
        let l = S3Location::parse("s3://my-bucket/some/prefix").unwrap();
        assert_eq!(l.bucket(), "my-bucket");
        assert_eq!(l.prefix(), "some/prefix/");
        assert_eq!(l.object_key("raw/a.json"), "some/prefix/raw/a.json");
        assert_eq!(l.to_string(), "s3://my-bucket/some/prefix");
        let root = S3Location::parse("s3://my-bucket").unwrap();
        assert_eq!(root.prefix(), "");
        assert_eq!(root.object_key("raw/a.json"), "raw/a.json");
        assert_eq!(S3Location::parse("s3://my-bucket/").unwrap(), root);
        assert_eq!(
            S3Location::parse("s3://b12/p/").unwrap().prefix(),
            "p/",
            "a trailing slash is the same prefix"
        );
    }

    #[test]
    fn bad_locations_say_what_is_wrong() {
        for (url, needle) in [
            ("my-bucket/p", "does not start with s3://"),
            ("s3://", "empty"),
            ("s3:///p", "empty"),
            ("s3://ab/p", "3 to 63"),
            ("s3://My_Bucket/p", "lower-case"),
            ("s3://-bucket/p", "start and end"),
            ("s3://bucket/a//b", "empty path segment"),
            ("s3://bucket/../x", "'.' or '..'"),
        ] {
            let err = S3Location::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn retry_classes() {
        assert!(retryable_answer(Some(503), Some("SlowDown")));
        assert!(retryable_answer(Some(500), Some("InternalError")));
        assert!(retryable_answer(Some(502), None));
        assert!(!retryable_answer(Some(403), Some("AccessDenied")));
        assert!(!retryable_answer(Some(404), Some("NoSuchBucket")));
        assert!(!retryable_answer(Some(400), Some("InvalidRequest")));
    }
}
