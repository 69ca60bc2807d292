//! HTTP helpers of the sandbox's handlers: error answers, lock recovery,
//! form decoding. Imports no other module of the sandbox.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A lock, also after a panic of another holder.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An API error answer `{error_code, message}`.
pub(crate) fn err(status: u16, code: &str, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

pub(crate) fn bad(message: impl Into<String>) -> Response {
    err(400, "INVALID_PARAMETER_VALUE", message)
}

/// 413 for a body over the request log's limit.
pub(crate) fn too_large() -> Response {
    err(413, "REQUEST_TOO_LARGE", "The request body is too large")
}

/// `a=1&b=x%20y` as pairs (the last value of a repeated key).
pub(crate) fn url_decode_pairs(s: &str) -> HashMap<String, String> {
    fn dec(x: &str) -> String {
        let x = x.replace('+', " ");
        let b = x.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}
