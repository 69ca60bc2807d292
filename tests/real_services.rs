//! The client and cmk-sandbox (in-process) on what the real services do
//! that a first reading missed: which credential each API takes, the
//! Databricks CLI's login, storage-key updates behind a RUNNING status
//! (customer-managed VPC), silent reverts, and FAILED workspaces.

use std::path::Path;
use std::time::Duration;

use cmk::cloud::databricks::{
    AccountClient, DatabricksError, DatabricksSettings, Secret, StaticEnvironment,
    WorkspaceKeyUpdate, WorkspaceStatus,
};
use cmk::sandbox::{self, SandboxConfig, SandboxHandle, World};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[path = "support/sandbox_client.rs"]
mod sandbox_client;
use sandbox_client::{client_of, test_settings};

const ACCT: &str = "21111111-2222-4333-8444-555555555555";
const ACCOUNT_PAT: &str = "dapi-account-user-token-aaaa";
const WS_PAT: &str = "dapi-workspace-one-token-bbbb";
const CLIENT_ID: &str = "sp-terraform";
const CLIENT_SECRET: &str = "oauth-secret-cccccccccccc";
const ADMIN: &str = "admin-token";
const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MS_KEY: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const ST_KEY: &str = "bbbbbbbb-0000-4000-8000-000000000002";
/// RUNNING, Databricks-managed VPC.
const WS_ONE: i64 = 2001;

/// A workspace id as the client takes it.
fn wid(id: i64) -> cmk::rules::ids::WorkspaceId {
    cmk::rules::ids::WorkspaceId::new(id).unwrap()
}
/// RUNNING, customer-managed VPC (`network_id`).
const WS_VPC: i64 = 2002;
/// FAILED deployment that never ran.
const WS_FAILED_NEW: i64 = 2003;

fn world() -> World {
    let ws = |id: i64, extra: Value| {
        let mut w = json!({
            "workspace_id": id, "workspace_name": format!("ws{id}"),
            "deployment_name": format!("dep-{id}"), "aws_region": "us-east-1",
            "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
            "storage_mode": "CUSTOMER_HOSTED", "workspace_status": "RUNNING",
            "dashboards": [{"display_name": "d", "create_time": "2025-01-01T00:00:00Z"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            w[k] = v.clone();
        }
        w
    };
    serde_json::from_value(json!({
        "admin_token": ADMIN,
        "accounts": [{
            "account_id": ACCT,
            "tokens": [ACCOUNT_PAT],
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": MS_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}},
                {"customer_managed_key_id": ST_KEY, "use_cases": ["STORAGE"], "aws_key_info": {"key_arn": ARN}}
            ],
            "workspaces": [
                ws(WS_ONE, json!({"tokens": [WS_PAT]})),
                ws(WS_VPC, json!({"network_id": "9f0e1d2c-0000-4000-8000-00000000abcd", "key_update_reads": 4})),
                ws(WS_FAILED_NEW, json!({"workspace_status": "FAILED", "workspace_status_message": "Credentials were wrong"})),
            ]
        }]
    }))
    .unwrap()
}

async fn start_with(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    cmk::tfplugin::install_crypto_provider();
    let mut c = SandboxConfig::new(world());
    c.provisioning_delay = Duration::from_millis(150);
    f(&mut c);
    sandbox::start(c).await.unwrap()
}

fn settings(h: &SandboxHandle) -> DatabricksSettings {
    DatabricksSettings {
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        retry_timeout: Some(Duration::from_secs(5)),
        jitter_seed: Some(3),
        ..test_settings(h, ACCT)
    }
}

fn client(s: DatabricksSettings) -> AccountClient {
    client_of(s)
}

async fn http(
    h: &SandboxHandle,
    method: &str,
    path: &str,
    bearer: &str,
    body: Value,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = c
        .request(m, format!("{}{path}", h.url()))
        .bearer_auth(bearer);
    if !body.is_null() {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn admin(h: &SandboxHandle, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = http(h, method, path, ADMIN, body).await;
    assert!((200..300).contains(&status), "admin {path}: {status} {v}");
    v
}

/// An OAuth token from a token endpoint of the sandbox (client credentials).
async fn oauth_token(h: &SandboxHandle, token_path: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}{token_path}", h.url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn each_api_takes_only_its_own_credentials() {
    let h = start_with(|_| {}).await;
    let accounts = format!("/api/2.0/accounts/{ACCT}/workspaces");
    let dashboards = format!("/_ws/dep-{WS_ONE}/api/2.0/lakeview/dashboards");
    let other_dashboards = format!("/_ws/dep-{WS_VPC}/api/2.0/lakeview/dashboards");
    let account_token = oauth_token(&h, &format!("/oidc/accounts/{ACCT}/v1/token")).await;
    let ws_token = oauth_token(&h, &format!("/_ws/dep-{WS_ONE}/oidc/v1/token")).await;

    // Account API: account OAuth tokens only.
    assert_eq!(
        http(&h, "GET", &accounts, &account_token, Value::Null)
            .await
            .0,
        200
    );
    for pat in [ACCOUNT_PAT, WS_PAT] {
        let (status, v) = http(&h, "GET", &accounts, pat, Value::Null).await;
        assert_eq!(status, 401, "{v}");
        assert!(
            message(&v).contains("Personal access tokens cannot be used with the Account API"),
            "{v}"
        );
    }
    let (status, v) = http(&h, "GET", &accounts, &ws_token, Value::Null).await;
    assert_eq!(status, 401, "{v}");
    assert!(message(&v).contains("issued by workspace"), "{v}");

    // A workspace's API: its own OAuth tokens and personal access tokens.
    assert_eq!(
        http(&h, "GET", &dashboards, &ws_token, Value::Null).await.0,
        200
    );
    assert_eq!(
        http(&h, "GET", &dashboards, WS_PAT, Value::Null).await.0,
        200
    );
    let (status, v) = http(&h, "GET", &dashboards, &account_token, Value::Null).await;
    assert_eq!(status, 401, "{v}");
    assert!(message(&v).contains("issued for the Account API"), "{v}");
    for token in [ws_token.as_str(), WS_PAT] {
        let (status, v) = http(&h, "GET", &other_dashboards, token, Value::Null).await;
        assert_eq!(status, 401, "{v}");
        assert!(message(&v).contains("belongs to workspace"), "{v}");
    }
    assert_eq!(
        http(&h, "GET", &dashboards, ACCOUNT_PAT, Value::Null)
            .await
            .0,
        401
    );

    // The client gets a workspace token from the workspace's own endpoint.
    admin(&h, "DELETE", "/_sandbox/requests", Value::Null).await;
    let c = client(settings(&h));
    let cancel = CancellationToken::new();
    assert_eq!(
        c.list_dashboards(&format!("dep-{WS_ONE}"), &cancel)
            .await
            .unwrap()
            .len(),
        1
    );
    c.list_workspaces(&cancel).await.unwrap();
    let log = admin(&h, "GET", "/_sandbox/requests", Value::Null).await;
    let seen: Vec<(String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["auth_scheme"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |m: &str, p: String, a: &str| (m.to_string(), p, a.to_string());
    assert_eq!(
        seen,
        vec![
            s("POST", format!("/_ws/dep-{WS_ONE}/oidc/v1/token"), "Basic"),
            s("GET", dashboards.clone(), "Bearer"),
            s("POST", format!("/oidc/accounts/{ACCT}/v1/token"), "Basic"),
            s("GET", accounts.clone(), "Bearer"),
        ]
    );
    h.shutdown().await;

    // Relaxed rules, for local experiments only.
    let h = start_with(|c| c.relaxed_auth = true).await;
    let account_token = oauth_token(&h, &format!("/oidc/accounts/{ACCT}/v1/token")).await;
    assert_eq!(
        http(&h, "GET", &accounts, ACCOUNT_PAT, Value::Null).await.0,
        200
    );
    assert_eq!(
        http(&h, "GET", &dashboards, &account_token, Value::Null)
            .await
            .0,
        200
    );
    h.shutdown().await;
}

/// A stand-in for the Databricks CLI (a shell script): logs its arguments
/// and prints the token the test put in a file for that audience.
fn fake_cli(dir: &Path, version: &str) -> String {
    let path = dir.join("databricks");
    std::fs::write(
        &path,
        format!(
            r#"#!/bin/sh
echo "$@" >> "{dir}/calls.log"
case "$1" in
  version) echo '{version}'; exit 0;;
esac
case "$*" in
  *--account-id*|*--profile*) tok=$(cat "{dir}/account.token");;
  *) tok=$(cat "{dir}/workspace.token");;
esac
echo "{{\"access_token\": \"$tok\", \"token_type\": \"Bearer\", \"expiry\": \"2099-01-01T00:00:00.000000+00:00\"}}"
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.display().to_string()
}

#[tokio::test]
async fn databricks_cli_login_gives_account_and_workspace_tokens() {
    let h = start_with(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let cli = fake_cli(dir.path(), r#"{"Major":0,"Minor":296,"Patch":1}"#);
    std::fs::write(
        dir.path().join("account.token"),
        oauth_token(&h, &format!("/oidc/accounts/{ACCT}/v1/token")).await,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workspace.token"),
        oauth_token(&h, &format!("/_ws/dep-{WS_ONE}/oidc/v1/token")).await,
    )
    .unwrap();
    let env = StaticEnvironment::default()
        .with_var("DATABRICKS_HOST", &h.url())
        .with_var("DATABRICKS_ACCOUNT_ID", ACCT)
        .with_var("DATABRICKS_AUTH_TYPE", "databricks-cli")
        .with_var("DATABRICKS_CLI_PATH", &cli);
    let c = AccountClient::with_environment(
        &DatabricksSettings {
            workspace_host_template: Some(h.workspace_host_template()),
            ..Default::default()
        },
        &env,
    )
    .unwrap();
    let cancel = CancellationToken::new();
    assert_eq!(c.list_workspaces(&cancel).await.unwrap().len(), 3);
    c.get_workspace(wid(WS_ONE), &cancel).await.unwrap();
    assert_eq!(
        c.list_dashboards(&format!("dep-{WS_ONE}"), &cancel)
            .await
            .unwrap()
            .len(),
        1
    );
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    // Version probed once; one token per audience, cached until expiry.
    assert_eq!(
        calls,
        vec![
            "version --output json".to_string(),
            format!(
                "auth token --host {} --account-id {ACCT} --force-refresh",
                h.url()
            ),
            format!(
                "auth token --host {}/_ws/dep-{WS_ONE} --force-refresh",
                h.url()
            ),
        ]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn customer_managed_vpc_update_completes_without_a_false_revert() {
    let h = start_with(|_| {}).await;
    let c = client(settings(&h));
    let cancel = CancellationToken::new();
    let update = WorkspaceKeyUpdate {
        storage_customer_managed_key_id: Some(ST_KEY.into()),
        ..Default::default()
    };
    // Right after the PATCH the workspace is RUNNING with the old key: the
    // official SDKs' wait would return here, and comparing fields on that
    // first RUNNING reading would call the change reverted.
    c.patch_workspace(wid(WS_VPC), &update, &cancel)
        .await
        .unwrap();
    let first = c.get_workspace(wid(WS_VPC), &cancel).await.unwrap();
    assert_eq!(first.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(first.storage_customer_managed_key_id, None);
    assert!(first.network_id.is_some());
    // The client's wait polls the field until the new id is in place.
    let w = c
        .update_workspace_keys(wid(WS_VPC), &update, &cancel)
        .await
        .unwrap();
    assert_eq!(w.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(w.storage_customer_managed_key_id.as_deref(), Some(ST_KEY));
    h.shutdown().await;
}

#[tokio::test]
async fn a_silent_revert_is_reported_after_the_bound_with_the_status_message() {
    let h = start_with(|_| {}).await;
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_VPC}/key-update"),
        json!({"key_update_outcome": "reverted", "key_update_reads": 2}),
    )
    .await;
    let c = client(DatabricksSettings {
        workspace_wait_timeout: Some(Duration::from_millis(800)),
        ..settings(&h)
    });
    let e = c
        .update_workspace_keys(
            wid(WS_VPC),
            &WorkspaceKeyUpdate {
                storage_customer_managed_key_id: Some(ST_KEY.into()),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    match &e {
        DatabricksError::ChangeReverted {
            field,
            expected,
            actual,
            status_message,
            ..
        } => {
            assert_eq!(field, "storage_customer_managed_key_id");
            assert_eq!(expected, ST_KEY);
            assert_eq!(actual, &None);
            assert!(status_message
                .as_deref()
                .unwrap_or_default()
                .contains("rolled back"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        text.contains("is still unset, not bbbbbbbb-0000-4000-8000-000000000002"),
        "{text}"
    );
    assert!(
        text.contains(
            "\"Workspace is running. The key update could not be applied and was rolled back.\""
        ),
        "{text}"
    );
    for debug in ["Some(", "None"] {
        assert!(!text.contains(debug), "{text}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn failed_workspaces_accept_key_updates() {
    let h = start_with(|_| {}).await;
    let c = client(settings(&h));
    let cancel = CancellationToken::new();
    let ms = WorkspaceKeyUpdate {
        managed_services_customer_managed_key_id: Some(MS_KEY.into()),
        ..Default::default()
    };
    let st = WorkspaceKeyUpdate {
        storage_customer_managed_key_id: Some(ST_KEY.into()),
        ..Default::default()
    };
    // A deployment that failed before it ever ran takes both keys and is
    // deployed again (PROVISIONING, then RUNNING).
    let w = c
        .update_workspace_keys(
            wid(WS_FAILED_NEW),
            &WorkspaceKeyUpdate {
                managed_services_customer_managed_key_id: Some(MS_KEY.into()),
                storage_customer_managed_key_id: Some(ST_KEY.into()),
            },
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(w.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(w.storage_customer_managed_key_id.as_deref(), Some(ST_KEY));
    // A workspace that ran, then FAILED: the managed-services key is
    // accepted, a storage key is not (CMK020).
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_ONE}/status"),
        json!({"workspace_status": "FAILED", "workspace_status_message": "Network unreachable"}),
    )
    .await;
    let e = c
        .update_workspace_keys(wid(WS_ONE), &st, &cancel)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("FAILED after having run; Databricks adds a storage key to a failed workspace only if it never ran"),
        "{e}"
    );
    let w = c
        .update_workspace_keys(wid(WS_ONE), &ms, &cancel)
        .await
        .unwrap();
    assert_eq!(w.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(
        w.managed_services_customer_managed_key_id.as_deref(),
        Some(MS_KEY)
    );
    // Any other status refuses.
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_ONE}/status"),
        json!({"workspace_status": "PROVISIONING"}),
    )
    .await;
    let e = c
        .patch_workspace(wid(WS_ONE), &st, &cancel)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot be updated in its current state. Workspace \"ws2001\" is PROVISIONING; Databricks changes keys only on a RUNNING or FAILED workspace"),
        "{e}"
    );
    h.shutdown().await;
}
