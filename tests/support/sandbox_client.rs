//! What the client tests of `tests/` share: client settings for a test
//! against a cmk-sandbox (fast retries and polls, a fixed jitter seed, no
//! credential: each test adds its own), and the sandbox's admin calls.

#![allow(dead_code)] // each test crate uses part of it

use std::time::Duration;

use cmk::cloud::databricks::{AccountClient, DatabricksSettings, StaticEnvironment};
use cmk::sandbox::SandboxHandle;
use serde_json::Value;

/// Settings for the sandbox `h` and `account_id`, without a credential.
pub fn test_settings(h: &SandboxHandle, account_id: &str) -> DatabricksSettings {
    DatabricksSettings {
        host: Some(h.url()),
        account_id: Some(account_id.into()),
        rate_limit: Some(1000.0),
        http_timeout: Some(Duration::from_secs(5)),
        retry_timeout: Some(Duration::from_secs(10)),
        retry_base_delay: Some(Duration::from_millis(20)),
        workspace_wait_timeout: Some(Duration::from_secs(20)),
        workspace_poll_interval: Some(Duration::from_millis(50)),
        workspace_host_template: Some(h.workspace_host_template()),
        jitter_seed: Some(7),
        ..Default::default()
    }
}

/// A client of these settings, with no environment but the settings.
pub fn client_of(s: DatabricksSettings) -> AccountClient {
    AccountClient::with_environment(&s, &StaticEnvironment::default()).unwrap()
}

/// An admin call of the sandbox (`/_sandbox/...`) that must succeed; its
/// JSON answer, or null.
pub async fn admin_call(
    h: &SandboxHandle,
    admin_token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = reqwest::Client::new()
        .request(m, format!("{}{path}", h.url()))
        .bearer_auth(admin_token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "admin {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
