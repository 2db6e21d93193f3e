//! HTTP caching: `ETag`, `Cache-Control` and `304 Not Modified`, so a dashboard polling every
//! few seconds costs a header comparison, not a body.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use headers::{ETag, HeaderMapExt, IfNoneMatch};

/// Clients may keep a copy but must revalidate it: aggregates change every minute, and a
/// revalidation answered by a 304 is nearly free.
pub(crate) const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// For answers that depend on the clock (health ages): never reuse.
pub(crate) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Whether the request's `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for
/// `If-None-Match`; `*` matches anything). A header that does not parse matches nothing, so the
/// client gets the body.
pub(crate) fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().ok().and_then(|e| e.parse::<ETag>().ok());
    match (headers.typed_get::<IfNoneMatch>(), ours) {
        (Some(condition), Some(ours)) => !condition.precondition_passes(&ours),
        _ => false,
    }
}

/// A body with its validator: `304` when the client already holds it, else `200`.
pub(crate) fn cached(
    headers: &HeaderMap,
    etag: &HeaderValue,
    content_type: &'static str,
    cache_control: HeaderValue,
    body: Bytes,
) -> Response {
    let mut response = if matches(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    h.insert(ETAG, etag.clone());
    h.insert(CACHE_CONTROL, cache_control);
    response
}

/// A JSON body with its validator.
pub(crate) fn cached_json(headers: &HeaderMap, etag: &HeaderValue, body: Bytes) -> Response {
    cached(headers, etag, "application/json", REVALIDATE, body)
}

/// A weak entity tag from a 64-bit digest.
/// The weak ETag of a response body built per request: a hash of its bytes.
pub(crate) fn body_etag(body: &[u8]) -> HeaderValue {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(body, &mut hasher);
    weak_etag(std::hash::Hasher::finish(&hasher))
}

pub(crate) fn weak_etag(digest: u64) -> HeaderValue {
    // Hex digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("W/\"{digest:016x}\""))
        .unwrap_or(HeaderValue::from_static("W/\"0\""))
}

#[cfg(test)]
mod tests {
    use axum::http::header::IF_NONE_MATCH;

    use super::*;

    fn req(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let etag = weak_etag(0xabc);
        assert!(matches(&req("W/\"0000000000000abc\""), &etag));
        assert!(matches(&req("\"0000000000000abc\""), &etag));
        assert!(matches(&req("\"x\", W/\"0000000000000abc\""), &etag));
        assert!(matches(&req("*"), &etag));
        assert!(!matches(&req("W/\"0000000000000abd\""), &etag));
        assert!(!matches(&HeaderMap::new(), &etag));
        assert!(
            !matches(&req("not a tag"), &etag),
            "a malformed header matches nothing"
        );
    }
}
