//! Small HTTP helpers shared by the Account API client and the token
//! sources: `Retry-After`, the printable form of an unexpected answer, and
//! the check that a credential can go into a header. This module imports
//! neither `client` nor `auth`.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

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
    s.chars().take(300).collect()
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
