//! `GET /`: the dashboard, a single page whose every asset is embedded in the binary (it must
//! work offline, and on Lambda there is no directory to serve from).

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use rust_embed::RustEmbed;

use super::errors::ApiError;
use super::http_cache::{REVALIDATE, cached};

/// `cryptomon-server/assets/`, embedded (also in debug builds, so tests do not depend on the
/// working directory).
#[derive(RustEmbed)]
#[folder = "assets/"]
#[exclude = "*.md"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

fn asset(headers: &HeaderMap, path: &str) -> Result<Response, ApiError> {
    let file = Assets::get(path).ok_or_else(|| ApiError::NotFound("no such asset".into()))?;
    let digest = file.metadata.sha256_hash();
    let etag = HeaderValue::from_str(&format!(
        "\"{}\"",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
    .map_err(|_| ApiError::Internal)?;
    Ok(cached(
        headers,
        &etag,
        content_type(path),
        REVALIDATE,
        Bytes::from(file.data.into_owned()),
    ))
}

/// The dashboard page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses(
        (status = 200, content_type = "text/html", description = "The dashboard"),
        (status = 304, description = "Not modified (If-None-Match)"),
        super::limits::LimitErrors,
    ))]
pub(crate) async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    asset(&headers, "index.html")
}

/// The page's scripts, styles and the vendored chart library.
///
/// A path that does not decode (a bad `%` escape, bytes that are not UTF-8) is a JSON 400 like
/// every other error, not axum's plain-text rejection (found by the `api` fuzz target).
pub(crate) async fn file(
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(path) = path.map_err(|_| ApiError::BadRequest("invalid asset path".into()))?;
    asset(&headers, &path)
}
