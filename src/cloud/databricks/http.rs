//! The HTTP policy every Databricks call follows (Account API, OIDC token
//! endpoints, workspace APIs), and small helpers the client and the token
//! sources share:
//!
//! - a body cap per kind of answer ([`Answer`]), enforced while the body
//!   streams in ([`read_capped`]), never after reading it whole;
//! - no redirects: the HTTP client is built with [`build_client`] and a 3xx
//!   answer is an error naming where it pointed ([`redirect_error`]);
//! - a connection refused or a host name that does not resolve is named as
//!   such ([`unreachable_reason`]) so that callers fail fast instead of
//!   retrying for minutes;
//! - text from a service is made printable ([`printable`], from
//!   [`crate::text`], which the KMS client uses too) before it reaches a
//!   message: control characters escaped, length cut with a note;
//! - `Retry-After`, and the check that a credential can go into a header.
//!
//! This module imports neither `client` nor `auth`.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

pub(crate) use crate::text::{printable, MESSAGE_MAX_BYTES};

/// The kinds of answer a Databricks call reads, each with its byte cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An error answer (`{error_code, message}`) or an OAuth error.
    Error,
    /// An OAuth token answer.
    Token,
    /// One object (a key configuration, a workspace, an update's answer).
    Object,
    /// One page of a paginated list, or a list the API answers in one piece
    /// (key configurations, workspaces, instance pools).
    Page,
}

impl Answer {
    /// The most bytes read of an answer of this kind.
    pub fn cap(self) -> usize {
        match self {
            // An error answer longer than this is cut, not refused: its
            // message is then shown cut (see `read_prefix`).
            Answer::Error => 4 * 1024 * 1024,
            Answer::Token => 64 * 1024,
            Answer::Object => 1024 * 1024,
            Answer::Page => 16 * 1024 * 1024,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Answer::Error => "an error answer",
            Answer::Token => "a token answer",
            Answer::Object => "an object",
            Answer::Page => "a list page",
        }
    }
}

/// Pages a paginated list may have; a list with more is refused.
pub(crate) const MAX_LIST_PAGES: usize = 1_000;
/// Bytes all pages of one list may add up to; a list with more is refused.
pub(crate) const MAX_LIST_BYTES: usize = 32 * 1024 * 1024;

/// Why a body was not read to its end.
pub(crate) enum BodyError {
    /// More than the cap of its kind: reading stopped at the cap.
    TooLarge { cap: usize, kind: Answer },
    /// The connection failed while the body streamed.
    Transport(reqwest::Error),
}

/// Reads an answer's body as it streams, stopping with an error as soon as
/// it passes the cap of its kind (a `Content-Length` above the cap is
/// refused before reading). Memory held: at most the cap (plus one chunk).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    kind: Answer,
) -> Result<bytes::Bytes, BodyError> {
    let cap = kind.cap();
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { cap, kind });
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if buf.len().saturating_add(chunk.len()) > cap {
            return Err(BodyError::TooLarge { cap, kind });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(buf))
}

/// Reads at most `cap` bytes of an answer's body as it streams (an error
/// answer: the message shown is cut anyway); true when there was more.
pub(crate) async fn read_prefix(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(bytes::Bytes, bool), reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((bytes::Bytes::from(buf), true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((bytes::Bytes::from(buf), false))
}

/// `n` bytes in a unit a person reads (KiB / MiB).
pub(crate) fn bytes_shown(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// The message for a body over its cap.
pub(crate) fn too_large_message(cap: usize, kind: Answer) -> String {
    format!(
        "the answer is larger than {} (the most this provider reads of {}); reading stopped there",
        bytes_shown(cap),
        kind.describe()
    )
}

/// How long any Databricks call (Account API, token endpoints, a
/// workspace's own API) waits for a connection to its host.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any Databricks call waits for the next bytes of an answer (the
/// first ones included) before it stops: a host that accepts the connection
/// and never answers ends the call after this, whatever time the operation
/// has left.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The reqwest client every Databricks call goes through: no redirects
/// (Databricks' APIs do not redirect API calls, and a redirect would carry
/// the request, or hand back a token, from another origin); a connect
/// timeout and a read timeout of each request's own ([`CONNECT_TIMEOUT`],
/// [`READ_TIMEOUT`], never more than `timeout`, the whole request's).
pub(crate) fn build_client(
    timeout: Duration,
    user_agent: String,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .read_timeout(READ_TIMEOUT.min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
}

/// The message for a 3xx answer: the status and where it pointed.
pub(crate) fn redirect_error(status: u16, headers: &HeaderMap) -> String {
    let location = headers
        .get(reqwest::header::LOCATION)
        .map(|v| printable(&String::from_utf8_lossy(v.as_bytes()), 300))
        .unwrap_or_else(|| "(no Location header)".to_string());
    format!(
        "the answer was a redirect ({status}) to {location}; Databricks' APIs do not redirect API calls, so it was not followed (check the host, or a proxy in between)"
    )
}

/// When a request failed before it reached a server (a host name that does
/// not resolve, a connection refused or not made in time): what happened,
/// for a person. `None` for any other failure.
pub(crate) fn unreachable_reason(e: &reqwest::Error) -> Option<&'static str> {
    if !e.is_connect() {
        return None;
    }
    let mut src: Option<&dyn std::error::Error> = Some(e);
    let mut text = String::new();
    while let Some(c) = src {
        text.push_str(&c.to_string().to_ascii_lowercase());
        text.push('\n');
        src = c.source();
    }
    Some(
        if text.contains("dns error")
            || text.contains("failed to lookup")
            || text.contains("name or service not known")
            || text.contains("no address associated")
            || text.contains("name resolution")
        {
            "the host name does not resolve"
        } else if text.contains("refused") {
            "the connection was refused"
        } else if e.is_timeout() || text.contains("timed out") {
            "the connection was not made in time"
        } else {
            "no connection could be made"
        },
    )
}

/// True when a request stopped because its host went silent: connected,
/// then no bytes for the read timeout (or the whole request's timeout
/// passed). Not a connection failure: that is [`unreachable_reason`].
pub(crate) fn timed_out_after_connecting(e: &reqwest::Error) -> bool {
    e.is_timeout() && !e.is_connect()
}

/// The host (`scheme://host:port`) of a URL, for messages.
pub(crate) fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => printable(url, 200),
    }
}

/// `Retry-After`: seconds (whole or decimal) or an HTTP date.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // A huge value must not overflow (try_from refuses it): ignored.
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A short printable form of an answer body that is not the JSON expected.
pub(crate) fn error_text(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return "(empty answer)".to_string();
    }
    printable(s, 300)
}

/// A credential value that cannot go into an HTTP header (a stray `\r`
/// from a file with Windows line endings, a newline, another control
/// character): the message names where it came from.
pub(crate) fn check_header_value(what: &str, source: &str, value: &str) -> Result<(), String> {
    let Some(c) = value.chars().find(|c| c.is_control()) else {
        return Ok(());
    };
    let name = match c {
        '\r' => "a carriage return (\\r; was it read from a file with Windows line endings?)"
            .to_string(),
        '\n' => "a line break (\\n)".to_string(),
        '\t' => "a tab".to_string(),
        c => format!("the control character U+{:04X}", c as u32),
    };
    Err(format!(
        "{what} from {source} contains {name}, which cannot be sent in an HTTP header: remove it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "0.5".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        // Hostile answers: no panic, no overflow.
        for v in ["1e300", "-1", "inf", "NaN", "18446744073709551616"] {
            h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
            assert_eq!(retry_after(&h), None, "{v}");
        }
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn error_text_is_printable() {
        assert_eq!(error_text(b"  \x1b[31mred "), "\\u{1b}[31mred");
    }

    #[test]
    fn redirects_name_their_location() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LOCATION,
            "https://elsewhere.example/oidc/v1/token".parse().unwrap(),
        );
        let m = redirect_error(307, &h);
        assert!(
            m.contains("307") && m.contains("https://elsewhere.example/oidc/v1/token"),
            "{m}"
        );
        assert!(redirect_error(302, &HeaderMap::new()).contains("no Location header"));
    }

    #[test]
    fn sizes_read_as_units() {
        assert_eq!(bytes_shown(Answer::Page.cap()), "16 MiB");
        assert_eq!(bytes_shown(Answer::Token.cap()), "64 KiB");
        assert_eq!(bytes_shown(1000), "1000 bytes");
        assert_eq!(
            origin("http://127.0.0.1:9/api/2.0/x?y=1"),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn header_values_with_control_characters_name_their_source() {
        assert!(check_header_value("the token", "DATABRICKS_TOKEN", "dapi123").is_ok());
        let e = check_header_value("the token", "DATABRICKS_TOKEN", "dapi123\r").unwrap_err();
        assert!(e.contains("DATABRICKS_TOKEN"), "{e}");
        assert!(e.contains("carriage return"), "{e}");
        assert!(!e.contains("dapi123"), "the secret is not quoted: {e}");
        let e = check_header_value(
            "the client secret",
            "`client_secret` of profile [p] in /x",
            "a\nb",
        )
        .unwrap_err();
        assert!(e.contains("line break") && e.contains("profile [p]"), "{e}");
    }
}
