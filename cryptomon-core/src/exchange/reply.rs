//! [`Reply`], the response a request ends with, and [`excerpt`], the short printable view of a
//! body that error messages quote.

use bytes::Bytes;

/// A response that is not retried: 2xx, or a 4xx other than 429/418 for the exchange to read.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// A short, printable view of a body for an error message; an HTML page is named as such.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if looks_like_html(trimmed) {
        let title = trimmed
            .find("<title>")
            .and_then(|i| {
                let rest = &trimmed[i + 7..];
                rest.find("</title>").map(|j| rest[..j].trim().to_owned())
            })
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!("an HTML page ({})", clip(&t, 120)),
            None => "an HTML page".to_owned(),
        };
    }
    if trimmed.is_empty() {
        return "an empty body".to_owned();
    }
    clip(trimmed, 300)
}

/// JSON never starts with `<`; HTML, XML and comments do.
fn looks_like_html(text: &str) -> bool {
    text.starts_with('<')
}

fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        format!("{clean}...")
    } else {
        clean
    }
}

impl Reply {
    /// Whether the status is 2xx.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or why it is not (an HTML error page, a cut body).
    pub(crate) fn json(&self) -> std::result::Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let what = excerpt(&self.body);
            if what.starts_with("an HTML page") || what == "an empty body" {
                format!("HTTP {}: {what}, not JSON", self.status)
            } else {
                format!("HTTP {}: the body is not JSON ({e}): {what}", self.status)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_are_named_not_dumped() {
        let page = b"<!DOCTYPE html>\n<html><head><title>api.kraken.com | 520: Web server is returning an unknown error</title></head><body>...</body></html>";
        assert_eq!(
            excerpt(page),
            "an HTML page (api.kraken.com | 520: Web server is returning an unknown error)"
        );
        let reply = Reply {
            status: 200,
            body: Bytes::from_static(page),
        };
        assert!(
            reply
                .json()
                .unwrap_err()
                .starts_with("HTTP 200: an HTML page")
        );
        assert_eq!(excerpt(b""), "an empty body");
        assert_eq!(
            excerpt(b"{\"message\":\"NotFound\"}"),
            "{\"message\":\"NotFound\"}"
        );
        assert_eq!(excerpt("x".repeat(400).as_bytes()).len(), 303);
    }
}
