//! The Databricks client against cmk-sandbox started in-process on a free port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmk::cloud::databricks::{
    AccountClient, AwsKeyInfo, CreateCustomerManagedKey, DatabricksError, DatabricksSettings,
    Secret, StaticEnvironment, WorkspaceKeyUpdate, WorkspaceStatus,
};
use cmk::rules::catalog::KeyFeature;
use cmk::rules::ids::{KeyConfigId, WorkspaceId};
use cmk::sandbox::{self, SandboxConfig, SandboxHandle, World};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[path = "support/sandbox_client.rs"]
mod sandbox_client;
use sandbox_client::{admin_call, client_of, test_settings};

const ACCT: &str = "11111111-2222-4333-8444-555555555555";
const OTHER: &str = "99999999-2222-4333-8444-555555555555";
const TOKEN: &str = "dapi-test-token-aaaaaaaaaaaa";
const OTHER_TOKEN: &str = "dapi-other-account-token-bbbb";
const CLIENT_ID: &str = "sp-terraform";
const CLIENT_SECRET: &str = "oauth-secret-cccccccccccc";
const ADMIN: &str = "admin-token";
const ARN_USE1: &str =
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ARN_EUW1: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab";
const MS_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ST_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const BOTH_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const EU_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000004";
// Workspaces: 1 enterprise us-east-1 without keys; 2 premium; 3 enterprise
// with a storage key; 4 enterprise with classic compute running.
const WS_PLAIN: i64 = 1001;
const WS_PREMIUM: i64 = 1002;
const WS_STORAGE_SET: i64 = 1003;
const WS_COMPUTE: i64 = 1004;

fn wid(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

fn kid(id: &str) -> KeyConfigId {
    KeyConfigId::parse(id).unwrap()
}

fn world() -> World {
    let ws = |id: i64, tier: &str, extra: Value| {
        let mut w = json!({
            "workspace_id": id, "workspace_name": format!("ws{id}"),
            "deployment_name": format!("dep-{id}"), "aws_region": "us-east-1",
            "pricing_tier": tier, "compute_mode": "HYBRID", "storage_mode": "CUSTOMER_HOSTED",
            "workspace_status": "RUNNING", "classic_compute_running": false,
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
            "tokens": [TOKEN],
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": MS_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN_USE1}},
                {"customer_managed_key_id": ST_KEY, "use_cases": ["STORAGE"], "aws_key_info": {"key_arn": ARN_USE1}},
                {"customer_managed_key_id": BOTH_KEY, "use_cases": ["MANAGED_SERVICES", "STORAGE"], "aws_key_info": {"key_arn": ARN_USE1}},
                {"customer_managed_key_id": EU_KEY, "use_cases": ["MANAGED_SERVICES", "STORAGE"], "aws_key_info": {"key_arn": ARN_EUW1}}
            ],
            "workspaces": [
                ws(WS_PLAIN, "ENTERPRISE", json!({"dashboards": [
                    {"display_name": "Old", "create_time": "2024-01-01T00:00:00Z"},
                    {"display_name": "New", "create_time": "2025-01-01T00:00:00Z"}]})),
                ws(WS_PREMIUM, "PREMIUM", json!({})),
                ws(WS_STORAGE_SET, "ENTERPRISE", json!({"storage_customer_managed_key_id": ST_KEY})),
                ws(WS_COMPUTE, "ENTERPRISE", json!({"classic_compute_running": true})),
            ]
        }, {
            "account_id": OTHER,
            "tokens": [OTHER_TOKEN]
        }]
    }))
    .unwrap()
}

async fn start_with(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    // The tests' own raw HTTP calls use reqwest too, which needs the provider.
    cmk::tfplugin::install_crypto_provider();
    let mut c = SandboxConfig::new(world());
    c.provisioning_delay = Duration::from_millis(200);
    f(&mut c);
    sandbox::start(c).await.unwrap()
}

async fn start() -> SandboxHandle {
    start_with(|_| {}).await
}

/// OAuth machine-to-machine, as the Account API needs.
fn settings(h: &SandboxHandle) -> DatabricksSettings {
    DatabricksSettings {
        token: None,
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        ..pat_settings(h)
    }
}

/// A personal access token (which Databricks' Account API refuses).
fn pat_settings(h: &SandboxHandle) -> DatabricksSettings {
    DatabricksSettings {
        token: Some(Secret::new(TOKEN)),
        workspace_wait_timeout: Some(Duration::from_secs(10)),
        ..test_settings(h, ACCT)
    }
}

fn client_from(s: DatabricksSettings) -> AccountClient {
    client_of(s)
}

fn oauth_settings(h: &SandboxHandle) -> DatabricksSettings {
    settings(h)
}

async fn admin(h: &SandboxHandle, method: &str, path: &str, body: Value) -> Value {
    admin_call(h, ADMIN, method, path, Some(body)).await
}

fn req(cases: &[KeyFeature], arn: &str) -> CreateCustomerManagedKey {
    CreateCustomerManagedKey {
        use_cases: cases.to_vec(),
        aws_key_info: AwsKeyInfo {
            key_arn: arn.into(),
            key_alias: Some("alias/test".into()),
            ..Default::default()
        },
    }
}

fn api_code(e: &DatabricksError) -> (u16, String, String) {
    match e {
        DatabricksError::Api {
            status,
            error_code,
            message,
        } => (*status, error_code.clone(), message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Every request names the provider and the Terraform CLI that runs it, as
/// Databricks' SDKs identify themselves; the sandbox records what it saw.
#[tokio::test]
async fn every_request_carries_the_user_agent() {
    let h = start().await;
    let c = client_from(DatabricksSettings {
        terraform_version: Some("1.11.4".into()),
        ..oauth_settings(&h)
    });
    let cancel = CancellationToken::new();
    c.list_workspaces(&cancel).await.unwrap();
    c.get_customer_managed_key(&kid(MS_KEY), &cancel)
        .await
        .unwrap();
    c.list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap();
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    let want = format!("terraform-provider-cmk/{} terraform/1.11.4", cmk::VERSION);
    let agents = stats["user_agents"].as_object().unwrap();
    // The OAuth token requests (account and workspace) and the calls.
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert!(agents[&want].as_u64().unwrap() >= 5, "{agents:?}");
    assert_eq!(
        cmk::cloud::databricks::user_agent(None),
        format!("terraform-provider-cmk/{}", env!("CARGO_PKG_VERSION"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn key_configuration_create_get_list_delete() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let k = c
        .create_customer_managed_key(
            &req(
                &[KeyFeature::ManagedServices, KeyFeature::Storage],
                ARN_USE1,
            ),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(k.account_id, ACCT);
    assert_eq!(k.customer_managed_key_id.len(), 36);
    assert!(k.creation_time > 1_700_000_000_000);
    let info = k.aws_key_info.clone().unwrap();
    assert_eq!(info.key_region.as_deref(), Some("us-east-1"));
    assert_eq!(info.key_alias.as_deref(), Some("alias/test"));
    let got = c
        .get_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap();
    assert_eq!(got, k);
    let all = c.list_customer_managed_keys(&cancel).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.contains(&k));
    c.delete_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap();
    let e = c
        .get_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap_err();
    assert!(e.is_gone(), "{e:?}");
    assert_eq!(e.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    let e = c
        .delete_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap_err();
    assert!(e.is_gone(), "{e:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn key_configuration_refusals() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let e = c
        .create_customer_managed_key(&req(&[], ARN_USE1), &cancel)
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&e),
        (
            400,
            "MALFORMED_REQUEST".into(),
            "Missing required parameters: use_cases".into()
        )
    );
    let e = c
        .create_customer_managed_key(
            &req(
                &[KeyFeature::Storage],
                "arn:aws:kms:us-east-1:123456789012:alias/x",
            ),
            &cancel,
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).1, "INVALID_PARAMETER_VALUE");
    // A composite id cannot even be given to the client: it is not a key
    // configuration id (the sandbox's refusal of it is tested through the
    // workspace update, whose body carries ids as strings).
    let composite = format!("{ACCT}/{MS_KEY}");
    let e = KeyConfigId::parse(&composite).unwrap_err();
    assert!(e.0.contains("composite"), "{e}");
    // In use by workspace 1003.
    let e = c
        .delete_customer_managed_key(&kid(ST_KEY), &cancel)
        .await
        .unwrap_err();
    let (s, code, m) = api_code(&e);
    assert_eq!((s, code.as_str()), (400, "INVALID_PARAMETER_VALUE"));
    assert!(
        m.contains("You cannot delete a configuration that is associated with a running workspace"),
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn workspaces_get_list_and_gone() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let all = c.list_workspaces(&cancel).await.unwrap();
    assert_eq!(all.len(), 4);
    let w = c.get_workspace(wid(WS_STORAGE_SET), &cancel).await.unwrap();
    assert_eq!(w.storage_customer_managed_key_id.as_deref(), Some(ST_KEY));
    assert_eq!(w.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(w.aws_region.as_deref(), Some("us-east-1"));
    assert!(w.creation_time.is_some());
    let e = c.get_workspace(wid(4242), &cancel).await.unwrap_err();
    assert!(e.is_gone(), "{e:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn workspace_key_update_waits_for_running_and_checks() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let w = c
        .update_workspace_keys(
            wid(WS_PLAIN),
            &WorkspaceKeyUpdate {
                managed_services_customer_managed_key_id: Some(MS_KEY.into()),
                storage_customer_managed_key_id: Some(BOTH_KEY.into()),
            },
            &cancel,
        )
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "did not wait for PROVISIONING"
    );
    assert_eq!(w.workspace_status, Some(WorkspaceStatus::Running));
    assert_eq!(
        w.managed_services_customer_managed_key_id.as_deref(),
        Some(MS_KEY)
    );
    assert_eq!(w.storage_customer_managed_key_id.as_deref(), Some(BOTH_KEY));
    // Rotating the managed-services key is allowed.
    let w = c
        .update_workspace_keys(
            wid(WS_PLAIN),
            &WorkspaceKeyUpdate {
                managed_services_customer_managed_key_id: Some(BOTH_KEY.into()),
                ..Default::default()
            },
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(
        w.managed_services_customer_managed_key_id.as_deref(),
        Some(BOTH_KEY)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn workspace_update_refusals() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let ms = |id: &str| WorkspaceKeyUpdate {
        managed_services_customer_managed_key_id: Some(id.into()),
        ..Default::default()
    };
    let st = |id: &str| WorkspaceKeyUpdate {
        storage_customer_managed_key_id: Some(id.into()),
        ..Default::default()
    };
    let composite = format!("{ACCT}/{MS_KEY}");
    let composite_answer = format!("Invalid customerManagedKeyId: {composite}");
    let cases: Vec<(i64, WorkspaceKeyUpdate, &str)> = vec![
        (WS_PREMIUM, ms(MS_KEY), "ENTERPRISE pricing tier"),
        // The rule engine's message gives the details.
        (WS_PREMIUM, ms(MS_KEY), "has pricing tier PREMIUM"),
        (WS_PLAIN, ms(EU_KEY), "must be in the workspace's region"),
        (WS_PLAIN, st(MS_KEY), "needs the use case STORAGE"),
        (WS_PLAIN, ms(ST_KEY), "needs the use case MANAGED_SERVICES"),
        (
            WS_STORAGE_SET,
            st(BOTH_KEY),
            "You cannot replace an existing key configuration for workspace storage.",
        ),
        (WS_COMPUTE, ms(MS_KEY), "classic compute running"),
        (WS_PLAIN, ms(&composite), composite_answer.as_str()),
        (
            WS_PLAIN,
            ms("aaaaaaaa-0000-4000-8000-00000000ffff"),
            "does not exist",
        ),
    ];
    for (ws, upd, want) in cases {
        let e = c
            .update_workspace_keys(wid(ws), &upd, &cancel)
            .await
            .unwrap_err();
        let (s, code, m) = api_code(&e);
        assert_eq!((s, code.as_str()), (400, "INVALID_PARAMETER_VALUE"), "{m}");
        assert!(
            m.contains(want),
            "workspace {ws}: {m:?} should say {want:?}"
        );
    }
    let e = c
        .update_workspace_keys(wid(4242), &ms(MS_KEY), &cancel)
        .await
        .unwrap_err();
    assert!(e.is_gone());
    // Stopping classic compute (behind Terraform's back) lets the update through.
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_COMPUTE}/classic-compute"),
        json!({"running": false}),
    )
    .await;
    c.update_workspace_keys(wid(WS_COMPUTE), &ms(MS_KEY), &cancel)
        .await
        .unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn silently_reverted_storage_key_is_a_typed_error() {
    let h = start().await;
    // "Reverted" only once RUNNING with the old id outlasts the wait's bound.
    let c = client_from(DatabricksSettings {
        workspace_wait_timeout: Some(Duration::from_secs(1)),
        ..settings(&h)
    });
    let cancel = CancellationToken::new();
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_PLAIN}/revert-next-update"),
        json!({}),
    )
    .await;
    let e = c
        .update_workspace_keys(
            wid(WS_PLAIN),
            &WorkspaceKeyUpdate {
                storage_customer_managed_key_id: Some(ST_KEY.into()),
                ..Default::default()
            },
            &cancel,
        )
        .await
        .unwrap_err();
    match e {
        DatabricksError::ChangeReverted {
            workspace_id,
            field,
            expected,
            actual,
            ..
        } => {
            assert_eq!(workspace_id, WS_PLAIN);
            assert_eq!(field, "storage_customer_managed_key_id");
            assert_eq!(expected, ST_KEY);
            assert_eq!(actual, None);
        }
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
}

#[tokio::test]
async fn running_wait_is_cancellable_and_bounded() {
    let h = start().await;
    let cancel = CancellationToken::new();
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_PLAIN}/status"),
        json!({"workspace_status": "PROVISIONING"}),
    )
    .await;
    let c = client_from(DatabricksSettings {
        workspace_poll_interval: Some(Duration::from_secs(30)),
        ..settings(&h)
    });
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        c2.cancel();
    });
    let t = Instant::now();
    let e = c
        .wait_workspace_running(wid(WS_PLAIN), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, DatabricksError::Cancelled { .. }), "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "cancellation took {:?}",
        t.elapsed()
    );

    let c = client_from(DatabricksSettings {
        workspace_wait_timeout: Some(Duration::from_millis(200)),
        ..settings(&h)
    });
    let e = c
        .wait_workspace_running(wid(WS_PLAIN), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, DatabricksError::Timeout { .. }), "{e:?}");

    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_PLAIN}/status"),
        json!({"workspace_status": "FAILED", "workspace_status_message": "KMS key disabled"}),
    )
    .await;
    let e = c
        .wait_workspace_running(wid(WS_PLAIN), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, DatabricksError::WorkspaceFailed { ref message, .. } if message == "KMS key disabled"),
        "{e:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn backoff_sleep_is_cancellable() {
    let h = start().await;
    admin(
        &h,
        "PUT",
        "/_sandbox/faults",
        json!({"throttle_rate": 1.0, "retry_after_seconds": 30}),
    )
    .await;
    let c = client_from(DatabricksSettings {
        retry_timeout: Some(Duration::from_secs(120)),
        ..settings(&h)
    });
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c2.cancel();
    });
    let t = Instant::now();
    let e = c.list_workspaces(&cancel).await.unwrap_err();
    assert!(matches!(e, DatabricksError::Cancelled { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    h.shutdown().await;
}

#[tokio::test]
async fn credentials_refused_name_whose() {
    let h = start().await;
    let cancel = CancellationToken::new();
    let c = client_from(DatabricksSettings {
        token: Some(Secret::new("dapi-wrong-token-dddddddd")),
        ..pat_settings(&h)
    });
    let e = c.list_workspaces(&cancel).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, DatabricksError::Unauthenticated { .. }),
        "{e:?}"
    );
    assert!(
        text.contains("the personal access token from the argument `token`"),
        "{text}"
    );
    assert!(!text.contains("dapi-wrong-token"), "{text}");
    // A valid personal access token: the Account API refuses it, and the
    // message says why and what to use instead.
    let e = client_from(pat_settings(&h))
        .list_workspaces(&cancel)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, DatabricksError::Unauthenticated { .. }),
        "{e:?}"
    );
    assert!(
        text.contains("does not accept personal access tokens")
            && text.contains("client_secret")
            && text.contains("databricks-cli"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    // With relaxed credential rules (local experiments), a valid token of
    // another account: 403.
    let relaxed = start_with(|c| c.relaxed_auth = true).await;
    client_from(pat_settings(&relaxed))
        .list_workspaces(&cancel)
        .await
        .unwrap();
    let c = client_from(DatabricksSettings {
        token: Some(Secret::new(OTHER_TOKEN)),
        ..pat_settings(&relaxed)
    });
    let e = c.list_customer_managed_keys(&cancel).await.unwrap_err();
    assert!(
        matches!(e, DatabricksError::PermissionDenied { .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains(OTHER_TOKEN));
    relaxed.shutdown().await;
    // From the environment, the message names the variable.
    let env = StaticEnvironment::default()
        .with_var("DATABRICKS_HOST", &h.url())
        .with_var("DATABRICKS_ACCOUNT_ID", ACCT)
        .with_var("DATABRICKS_TOKEN", "dapi-env-wrong-eeeeeeee");
    let c = AccountClient::with_environment(&DatabricksSettings::default(), &env).unwrap();
    let e = c.list_workspaces(&cancel).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("the personal access token from DATABRICKS_TOKEN"),
        "{e}"
    );
    // A wrong OAuth secret names the client, not the secret.
    let c = client_from(DatabricksSettings {
        client_secret: Some(Secret::new("wrong-secret-ffffffff")),
        ..oauth_settings(&h)
    });
    let e = c.list_workspaces(&cancel).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, DatabricksError::OAuth { status: 401, .. }),
        "{e:?}"
    );
    assert!(
        text.contains(CLIENT_ID) && !text.contains("wrong-secret"),
        "{text}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn oauth_m2m_token_is_cached_and_refreshed_before_expiry() {
    let h = start_with(|c| c.token_lifetime = Duration::from_secs(2)).await;
    let c = client_from(oauth_settings(&h));
    let cancel = CancellationToken::new();
    c.list_workspaces(&cancel).await.unwrap();
    c.list_customer_managed_keys(&cancel).await.unwrap();
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    assert_eq!(stats["tokens_issued"], 1, "{stats}");
    // Past three quarters of the token's life, before it expires.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    c.list_workspaces(&cancel).await.unwrap();
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    assert_eq!(stats["tokens_issued"], 2, "{stats}");
    // 2 token requests + 3 calls: no 401 and retry happened.
    assert_eq!(stats["api_requests"], 5, "{stats}");
    // Dashboards use a workspace-level token.
    let d = c
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap();
    assert_eq!(d.len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn dashboards_of_a_workspace() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let d = c
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap();
    assert_eq!(
        d.iter()
            .map(|d| (d.display_name.as_str(), d.create_time.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("Old", "2024-01-01T00:00:00Z"),
            ("New", "2025-01-01T00:00:00Z")
        ]
    );
    assert!(d.iter().all(|d| !d.dashboard_id.is_empty()));
    for i in 0..120 {
        admin(
            &h,
            "POST",
            &format!("/_sandbox/workspaces/{WS_PLAIN}/dashboards"),
            json!({"display_name": format!("d{i}")}),
        )
        .await;
    }
    let d = c
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap();
    assert_eq!(d.len(), 122, "pages followed");
    assert!(time::OffsetDateTime::parse(
        &d[121].create_time,
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    h.shutdown().await;
}

#[tokio::test]
async fn retry_honours_retry_after() {
    let h = start().await;
    admin(
        &h,
        "PUT",
        "/_sandbox/faults",
        json!({"throttle_rate": 1.0, "retry_after_seconds": 0.5}),
    )
    .await;
    let url = h.url();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reqwest::Client::new()
            .put(format!("{url}/_sandbox/faults"))
            .bearer_auth(ADMIN)
            .json(&json!({"throttle_rate": 0.0}))
            .send()
            .await
            .unwrap();
    });
    let c = client_from(settings(&h));
    let t = Instant::now();
    let w = c.list_workspaces(&CancellationToken::new()).await.unwrap();
    assert_eq!(w.len(), 4);
    // The backoff alone (20 ms base) would have retried far sooner.
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn retries_give_up_within_the_budget() {
    let h = start().await;
    admin(
        &h,
        "PUT",
        "/_sandbox/faults",
        json!({"throttle_rate": 1.0, "retry_after_seconds": 0.3}),
    )
    .await;
    let c = client_from(DatabricksSettings {
        retry_timeout: Some(Duration::from_secs(1)),
        ..settings(&h)
    });
    let t = Instant::now();
    let e = c
        .list_workspaces(&CancellationToken::new())
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(1500));
    match e {
        DatabricksError::RetriesExhausted { attempts, last, .. } => {
            assert!(attempts >= 3, "{attempts}");
            // Every call is throttled, the OAuth token request first.
            assert!(
                matches!(*last, DatabricksError::OAuth { status: 429, .. }),
                "{last:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
}

#[tokio::test]
async fn random_503s_are_retried() {
    let h = start_with(|c| {
        c.faults.error_rate = 0.5;
        c.fault_seed = 42;
    })
    .await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    for _ in 0..20 {
        assert_eq!(c.list_workspaces(&cancel).await.unwrap().len(), 4);
    }
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    assert!(stats["api_requests"].as_u64().unwrap() > 25, "{stats}");
    h.shutdown().await;
}

/// Fault settings: `PUT` changes only the fields it names (so `PUT {}`
/// leaves a 100% error rate on), `DELETE /_sandbox/faults` turns every
/// fault off in one call, and `path_prefix` confines faults to the calls
/// under it (a workspace's own API, not the Account API).
#[tokio::test]
async fn faults_reset_with_one_delete_and_can_target_a_path() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    admin(
        &h,
        "PUT",
        "/_sandbox/faults",
        json!({"error_rate": 1.0, "error_status": 500, "latency_ms": 5}),
    )
    .await;
    // The token request is the first API call to meet the fault.
    let e = c.list_workspaces(&cancel).await.unwrap_err();
    assert!(e.to_string().contains("(500)"), "{e}");
    let merged = admin(&h, "PUT", "/_sandbox/faults", json!({})).await;
    assert_eq!(merged["error_rate"], json!(1.0), "PUT merges: {merged}");
    assert!(c.list_workspaces(&cancel).await.is_err());

    let reset = admin(&h, "DELETE", "/_sandbox/faults", Value::Null).await;
    let defaults = serde_json::to_value(cmk::sandbox::Faults::default()).unwrap();
    assert_eq!(reset, defaults);
    assert_eq!(
        admin(&h, "GET", "/_sandbox/faults", Value::Null).await,
        defaults
    );
    assert_eq!(c.list_workspaces(&cancel).await.unwrap().len(), 4);

    admin(
        &h,
        "PUT",
        "/_sandbox/faults",
        json!({"error_rate": 1.0, "error_status": 500, "path_prefix": "/_ws/"}),
    )
    .await;
    assert_eq!(c.list_workspaces(&cancel).await.unwrap().len(), 4);
    let e = c
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    admin(&h, "DELETE", "/_sandbox/faults", Value::Null).await;
    assert!(c
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .is_ok());
    h.shutdown().await;
}

#[tokio::test]
async fn lost_create_answer_never_makes_two_configurations() {
    let h = start_with(|c| c.faults.drop_after_commit = 1).await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let arn = "arn:aws:kms:us-east-1:123456789012:key/3234abcd-12ab-34cd-56ef-1234567890ab";
    let k = c
        .create_customer_managed_key(&req(&[KeyFeature::Storage], arn), &cancel)
        .await
        .unwrap();
    let matching: Vec<_> = c
        .list_customer_managed_keys(&cancel)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.aws_key_info.as_ref().map(|i| i.key_arn.as_str()) == Some(arn))
        .collect();
    assert_eq!(matching.len(), 1);
    assert_eq!(
        matching[0].customer_managed_key_id,
        k.customer_managed_key_id
    );
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    assert_eq!(stats["creates_committed"], 1, "{stats}");
    // The fault was used up: the first answer really was lost.
    let faults = admin(&h, "GET", "/_sandbox/faults", Value::Null).await;
    assert_eq!(faults["drop_after_commit"], 0, "{faults}");
    // OAuth token + POST + LIST (recovery) + LIST (this test): no second POST.
    assert_eq!(stats["api_requests"], 4, "{stats}");
    h.shutdown().await;
}

#[tokio::test]
async fn create_after_a_503_looks_before_sending_again() {
    let h = start_with(|c| c.faults.fail_next = 1).await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let arn = "arn:aws:kms:us-east-1:123456789012:key/4234abcd-12ab-34cd-56ef-1234567890ab";
    let k = c
        .create_customer_managed_key(&req(&[KeyFeature::ManagedServices], arn), &cancel)
        .await
        .unwrap();
    assert_eq!(k.aws_key_info.unwrap().key_arn, arn);
    let stats = admin(&h, "GET", "/_sandbox/stats", Value::Null).await;
    // POST (503, not committed), LIST (nothing), POST again.
    assert_eq!(stats["api_requests"], 3, "{stats}");
    assert_eq!(stats["creates_committed"], 1, "{stats}");
    h.shutdown().await;
}

#[tokio::test]
async fn client_side_rate_limit_and_server_limit() {
    let h = start().await;
    let c = client_from(DatabricksSettings {
        rate_limit: Some(5.0),
        ..settings(&h)
    });
    let cancel = CancellationToken::new();
    let t = Instant::now();
    for _ in 0..6 {
        c.list_workspaces(&cancel).await.unwrap();
    }
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    // The server's own limit answers 429s that the client rides out.
    admin(&h, "PUT", "/_sandbox/faults", json!({"rps_limit": 3})).await;
    let c = client_from(settings(&h));
    for _ in 0..8 {
        c.list_workspaces(&cancel).await.unwrap();
    }
    h.shutdown().await;
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let h = start_with(|c| c.state_path = Some(path.clone())).await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let k = c
        .create_customer_managed_key(&req(&[KeyFeature::ManagedServices], ARN_USE1), &cancel)
        .await
        .unwrap();
    h.shutdown().await;
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(on_disk.to_string().contains(&k.customer_managed_key_id));
    // The same seed: the saved world is resumed (another seed is refused,
    // src/sandbox/mod.rs tests that).
    let h = start_with(|c| c.state_path = Some(path.clone())).await;
    assert!(h.resumed(), "the saved world was not resumed");
    let c = client_from(settings(&h));
    let got = c
        .get_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap();
    assert_eq!(got, k);
    h.shutdown().await;
}

/// Everything logged at TRACE during authentication and calls, captured.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_any_log_line() {
    use tracing_subscriber::layer::SubscriberExt;
    let cap = Capture::default();
    // The same events, also as the hclog JSON lines the provider writes.
    let hclog = Capture::default();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(cap.clone())
        .with_ansi(false)
        .finish()
        .with(cmk::logging::HclogLayer::new(hclog.clone()));
    let _guard = tracing::subscriber::set_default(sub);
    let h = start_with(|c| c.token_lifetime = Duration::from_secs(1)).await;
    // tracing caches, per call site, whether any subscriber wants it. A call
    // site another test thread (with no subscriber) was registering while
    // this one's subscriber was set keeps "never" (seen once in make test:
    // 1 "Databricks call" line of 6). Rebuilt now, with this subscriber in
    // place, every call site counts it.
    tracing::callsite::rebuild_interest_cache();
    let cancel = CancellationToken::new();
    let oauth = client_from(oauth_settings(&h));
    oauth.list_workspaces(&cancel).await.unwrap();
    let k = oauth
        .create_customer_managed_key(&req(&[KeyFeature::Storage], ARN_USE1), &cancel)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    oauth
        .get_customer_managed_key(&kid(&k.customer_managed_key_id), &cancel)
        .await
        .unwrap();
    oauth
        .list_dashboards(&format!("dep-{WS_PLAIN}"), &cancel)
        .await
        .unwrap();
    let pat = client_from(pat_settings(&h));
    pat.list_customer_managed_keys(&cancel).await.unwrap_err();
    let bad = client_from(DatabricksSettings {
        client_secret: Some(Secret::new("wrong-secret-ffffffff")),
        ..oauth_settings(&h)
    });
    let e = bad.list_workspaces(&cancel).await.unwrap_err();
    tracing::error!(error = %e, debug = ?e, client = ?oauth, settings = ?oauth_settings(&h), "logged by the test on purpose");
    h.shutdown().await;
    let log = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("Databricks call"), "nothing captured: {log}");
    assert!(log.contains("requesting OAuth token"), "{log}");
    for secret in [TOKEN, CLIENT_SECRET, "wrong-secret-ffffffff", "sbx-oauth-"] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
    // The hclog lines: one debug line per call, with method, path, status,
    // duration and retries; no secret.
    let lines = String::from_utf8(hclog.0.lock().unwrap().clone()).unwrap();
    let calls: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("every line is JSON"))
        .filter(|v| v["@message"] == "Databricks call")
        .collect();
    assert!(calls.len() >= 6, "{lines}");
    let get = calls
        .iter()
        .find(|v| {
            v["method"] == "GET"
                && v["path"]
                    .as_str()
                    .unwrap()
                    .contains("/customer-managed-keys/")
        })
        .unwrap_or_else(|| panic!("no GET of a key configuration: {lines}"));
    assert_eq!(get["@level"], "debug");
    assert_eq!(get["status"], 200);
    assert_eq!(get["retries"], 0);
    assert!(
        get["duration_ms"].is_u64() && get["@timestamp"].is_string(),
        "{get}"
    );
    for secret in [TOKEN, CLIENT_SECRET, "wrong-secret-ffffffff", "sbx-oauth-"] {
        assert!(
            !lines.contains(secret),
            "{secret} appears in the hclog lines"
        );
    }
    // A secret passed to a log line by mistake is redacted before it is written.
    let only_hclog = Capture::default();
    let sub =
        tracing_subscriber::registry().with(cmk::logging::HclogLayer::new(only_hclog.clone()));
    tracing::subscriber::with_default(sub, || {
        tracing::debug!(token = TOKEN, client_secret = CLIENT_SECRET, header = %format!("Bearer {TOKEN}"), "mistake with {TOKEN}");
    });
    let mistake = String::from_utf8(only_hclog.0.lock().unwrap().clone()).unwrap();
    assert!(mistake.contains("[REDACTED]"), "{mistake}");
    for secret in [TOKEN, CLIENT_SECRET] {
        assert!(!mistake.contains(secret), "{secret} in {mistake}");
    }
}
