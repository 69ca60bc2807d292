//! The request log of the sandbox: what each API request looked like
//! (method, path, query, body keys, auth scheme; never a secret), for the
//! conformance test that compares this provider's client with Databricks'
//! official SDK (`GET /_sandbox/requests`, `DELETE /_sandbox/requests`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

/// Requests kept (oldest dropped first).
const KEEP: usize = 2000;
/// Bodies larger than this are not parsed for keys.
const MAX_BODY: usize = 1 << 20;

/// One request as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    /// Query parameters (the last value of a repeated key).
    pub query: BTreeMap<String, String>,
    /// Keys of a JSON object body, nested keys as `parent.child`, sorted.
    pub body_keys: Vec<String>,
    /// Keys of a form body (OAuth token requests), sorted.
    pub form_keys: Vec<String>,
    /// The `Authorization` scheme (`Bearer`, `Basic`), or empty.
    pub auth_scheme: String,
    pub content_type: String,
}

#[derive(Default)]
pub(crate) struct Recorder {
    log: Mutex<VecDeque<Recorded>>,
}

use super::http::{lock, too_large, url_decode_pairs};

impl Recorder {
    /// The log, oldest first.
    pub(crate) fn entries(&self) -> Vec<Recorded> {
        lock(&self.log).iter().cloned().collect()
    }

    /// Empties the log.
    pub(crate) fn clear(&self) {
        lock(&self.log).clear();
    }
}

fn json_keys(prefix: &str, v: &Value, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(key.clone());
            json_keys(&key, child, out);
        }
    }
}

fn pairs(s: &str) -> std::collections::HashMap<String, String> {
    url_decode_pairs(s)
}

fn record_of(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Recorded {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let auth_scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let mut body_keys = vec![];
    let mut form_keys = vec![];
    if !body.is_empty() {
        if content_type == "application/x-www-form-urlencoded" {
            form_keys = pairs(&String::from_utf8_lossy(body)).into_keys().collect();
        } else if let Ok(v) = serde_json::from_slice::<Value>(body) {
            json_keys("", &v, &mut body_keys);
        }
    }
    body_keys.sort();
    form_keys.sort();
    Recorded {
        method: method.to_string(),
        path: path.to_string(),
        query: query.map(pairs).unwrap_or_default().into_iter().collect(),
        body_keys,
        form_keys,
        auth_scheme,
        content_type,
    }
}

/// Middleware: records the request, then passes it on unchanged.
pub(crate) async fn record(State(rec): State<Arc<Recorder>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return too_large();
        }
    };
    let r = record_of(
        &parts.headers,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &bytes,
    );
    {
        let mut log = lock(&rec.log);
        if log.len() >= KEEP {
            log.pop_front();
        }
        log.push_back(r);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_shapes_not_secrets() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer sekrit".parse().unwrap());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let r = record_of(
            &h,
            "PATCH",
            "/api/2.0/accounts/a/workspaces/1",
            Some("update_mask=a%2Cb&x"),
            br#"{"storage_customer_managed_key_id":"k","aws_key_info":{"key_arn":"arn"}}"#,
        );
        assert_eq!(r.auth_scheme, "Bearer");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.query.get("update_mask").map(String::as_str), Some("a,b"));
        assert_eq!(r.query.get("x").map(String::as_str), Some(""));
        assert_eq!(
            r.body_keys,
            [
                "aws_key_info",
                "aws_key_info.key_arn",
                "storage_customer_managed_key_id"
            ]
        );
        assert!(!format!("{r:?}").contains("sekrit"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic Zm9vOmJhcg==".parse().unwrap());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let r = record_of(
            &h,
            "POST",
            "/oidc/v1/token",
            None,
            b"grant_type=client_credentials&scope=all-apis",
        );
        assert_eq!(r.form_keys, ["grant_type", "scope"]);
        assert_eq!(r.auth_scheme, "Basic");
        assert!(r.body_keys.is_empty());
    }
}
