//! A conformance test that cannot share our reading of the API: the
//! provider's client and Databricks' official Python SDK (`databricks-sdk`,
//! from the venv named by `CMK_VENV`) perform the same operations against
//! cmk-sandbox, which records every request; the requests must match in
//! method, path, query keys and values, body keys and auth scheme, and the
//! OAuth M2M token requests (account and workspace) must match too. Every
//! response shape the SDK produces for the client's models (all fields set,
//! and enum values the client does not know) must decode. Without the venv
//! the test fails, on purpose: it is never skipped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cmk::cloud::databricks::{
    AccountClient, AwsKeyInfo, CreateCustomerManagedKey, CustomerManagedKey, Dashboard,
    DatabricksSettings, Secret, StaticEnvironment, Workspace, WorkspaceKeyUpdate,
};
use cmk::rules::catalog::KeyFeature;
use cmk::rules::ids::{KeyConfigId, WorkspaceId};
use cmk::sandbox::{self, SandboxConfig, SandboxHandle, World};
#[path = "support/sandbox_client.rs"]
mod sandbox_client;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const ACCT: &str = "31111111-2222-4333-8444-555555555555";
const CLIENT_ID: &str = "sp-conformance";
const CLIENT_SECRET: &str = "conformance-secret-hhhh";
const ADMIN: &str = "admin-token";
const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MS_KEY: &str = "cccccccc-0000-4000-8000-000000000001";
const WS: i64 = 5001;
const DEPLOYMENT: &str = "conformance-ws";
/// The client's page size; the seed has more dashboards, so both page.
const PAGE_SIZE: usize = 100;

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("CMK_VENV").unwrap_or_else(|| {
        panic!("CMK_VENV is not set: this test runs Databricks' Python SDK from the project's venv (make venv; make test sets it)")
    });
    let py = PathBuf::from(venv).join("bin").join("python");
    assert!(py.exists(), "{} is missing: run `make venv`", py.display());
    py
}

fn world() -> World {
    let dashboards: Vec<Value> = (0..PAGE_SIZE + 30)
        .map(|i| json!({"display_name": format!("d{i}"), "create_time": "2025-01-01T00:00:00Z"}))
        .collect();
    serde_json::from_value(json!({
        "admin_token": ADMIN,
        "accounts": [{
            "account_id": ACCT,
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": MS_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}}
            ],
            "workspaces": [{
                "workspace_id": WS, "workspace_name": "conformance", "deployment_name": DEPLOYMENT,
                "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
                "storage_mode": "CUSTOMER_HOSTED", "workspace_status": "RUNNING",
                "dashboards": dashboards,
            }]
        }]
    }))
    .unwrap()
}

async fn admin(h: &SandboxHandle, method: &str, path: &str) -> Value {
    sandbox_client::admin_call(h, ADMIN, method, path, None).await
}

fn is_discovery(path: &str) -> bool {
    path.ends_with("/.well-known/databricks-config")
        || path.ends_with("/.well-known/oauth-authorization-server")
}

fn is_token(path: &str) -> bool {
    path.ends_with("/v1/token")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|k| k.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A recorded request as compared, on one line: method, path (created ids
/// replaced by `{id}`), query keys and values, body keys (JSON or form),
/// content type and auth scheme.
fn line(r: &Value, created: &[&str]) -> String {
    let mut path = r["path"].as_str().unwrap_or_default().to_string();
    for id in created {
        path = path.replace(id, "{id}");
    }
    let query: Vec<String> = r["query"]
        .as_object()
        .map(|q| {
            q.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let body = strings(&r["body_keys"]);
    let form = strings(&r["form_keys"]);
    let mut out = format!("{} {path}{query}", r["method"].as_str().unwrap_or_default());
    if !body.is_empty() {
        out += &format!(" json{{{}}}", body.join(", "));
    }
    if !form.is_empty() {
        out += &format!(" form{{{}}}", form.join(", "));
    }
    let ct = r["content_type"].as_str().unwrap_or_default();
    if !ct.is_empty() {
        out += &format!(" content-type={ct}");
    }
    format!(
        "{out} auth={}",
        match r["auth_scheme"].as_str().unwrap_or_default() {
            "" => "none",
            a => a,
        }
    )
}

/// The API requests of a log (no discovery, no token requests), as lines.
fn api_lines(log: &Value, created: &[&str]) -> Vec<String> {
    log.as_array()
        .map(|a| {
            a.iter()
                .filter(|r| {
                    let p = r["path"].as_str().unwrap_or_default();
                    !is_discovery(p) && !is_token(p)
                })
                .map(|r| line(r, created))
                .collect()
        })
        .unwrap_or_default()
}

/// The OAuth token requests of logs, as sorted, distinct lines (when a
/// token is fetched again is each client's own business).
fn token_lines<'a>(logs: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let set: BTreeSet<String> = logs
        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
        .filter(|r| is_token(r["path"].as_str().unwrap_or_default()))
        .map(|r| line(&r, &[]))
        .collect();
    set.into_iter().collect()
}

/// A line diff (longest common subsequence): `  ` both, `- ` only the
/// SDK's, `+ ` only the client's. `None` when equal.
fn diff(sdk: &[String], client: &[String]) -> Option<String> {
    if sdk == client {
        return None;
    }
    let (n, m) = (sdk.len(), client.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if sdk[i] == client[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && sdk[i] == client[j] {
            out += &format!("    {}\n", sdk[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out += &format!("  - {}\n", sdk[i]);
            i += 1;
        } else {
            out += &format!("  + {}\n", client[j]);
            j += 1;
        }
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::let_unit_value)]
async fn the_client_sends_what_databricks_sdk_sends() {
    let py = venv_python();
    cmk::tfplugin::install_crypto_provider();
    let mut cfg = SandboxConfig::new(world());
    cfg.provisioning_delay = Duration::from_millis(100);
    let h = sandbox::start(cfg).await.unwrap();

    // Databricks' SDK.
    let input = json!({
        "url": h.url(), "admin": ADMIN, "account_id": ACCT, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "workspace_id": WS, "deployment": DEPLOYMENT,
        "arn": ARN, "ms_key": MS_KEY, "page_size": PAGE_SIZE,
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/acceptance-tests/sdk_compat/conformance.py"
    );
    let py_out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .env("CMK_CONFORMANCE", input.to_string())
            .output()
            .expect("run the venv's python")
    })
    .await
    .unwrap();
    assert!(
        py_out.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&py_out.stderr)
    );
    let sdk: Value = serde_json::from_slice(&py_out.stdout).expect("the SDK script prints JSON");

    // The provider's client, the same operations.
    let c = AccountClient::with_environment(
        &DatabricksSettings {
            host: Some(h.url()),
            account_id: Some(ACCT.into()),
            client_id: Some(CLIENT_ID.into()),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            workspace_host_template: Some(h.workspace_host_template()),
            workspace_poll_interval: Some(Duration::from_millis(50)),
            ..Default::default()
        },
        &StaticEnvironment::default(),
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let mut ours = serde_json::Map::new();
    macro_rules! op {
        ($name:expr, $e:expr) => {{
            admin(&h, "DELETE", "/_sandbox/requests").await;
            let r = $e;
            let log = admin(&h, "GET", "/_sandbox/requests").await;
            ours.insert($name.to_string(), log);
            r
        }};
    }
    let k = op!(
        "create_key",
        c.create_customer_managed_key(
            &CreateCustomerManagedKey {
                use_cases: vec![KeyFeature::ManagedServices, KeyFeature::Storage],
                aws_key_info: AwsKeyInfo {
                    key_arn: ARN.into(),
                    key_alias: Some("alias/conformance".into()),
                    key_region: None,
                    reuse_key_for_cluster_volumes: Some(false),
                },
            },
            &cancel,
        )
        .await
        .unwrap()
    );
    let kid = KeyConfigId::parse(&k.customer_managed_key_id).unwrap();
    op!(
        "get_key",
        c.get_customer_managed_key(&kid, &cancel).await.unwrap()
    );
    op!(
        "list_keys",
        c.list_customer_managed_keys(&cancel).await.unwrap()
    );
    op!(
        "delete_key",
        c.delete_customer_managed_key(&kid, &cancel).await.unwrap()
    );
    let ws = WorkspaceId::new(WS).unwrap();
    op!("get_workspace", c.get_workspace(ws, &cancel).await.unwrap());
    op!("list_workspaces", c.list_workspaces(&cancel).await.unwrap());
    op!(
        "update_workspace",
        c.patch_workspace(
            ws,
            &WorkspaceKeyUpdate {
                managed_services_customer_managed_key_id: Some(MS_KEY.into()),
                ..Default::default()
            },
            &cancel,
        )
        .await
        .unwrap()
    );
    let d = op!(
        "list_dashboards",
        c.list_dashboards(DEPLOYMENT, &cancel).await.unwrap()
    );
    assert_eq!(d.len(), PAGE_SIZE + 30);

    // The SDK's created id appears in its get/delete paths.
    let sdk_created: Vec<String> = ["get_key", "delete_key"]
        .iter()
        .filter_map(|op| {
            sdk["ops"][op].as_array()?.iter().find_map(|r| {
                r["path"]
                    .as_str()?
                    .rsplit('/')
                    .next()
                    .filter(|id| id.len() == 36)
                    .map(str::to_string)
            })
        })
        .collect();
    let sdk_ids: Vec<&str> = sdk_created.iter().map(String::as_str).collect();
    let mut differences = vec![];
    let mut compared = 0;
    for op in [
        "create_key",
        "get_key",
        "list_keys",
        "delete_key",
        "get_workspace",
        "list_workspaces",
        "update_workspace",
        "list_dashboards",
    ] {
        let theirs = api_lines(&sdk["ops"][op], &sdk_ids);
        let mine = api_lines(&ours[op], &[kid.as_str()]);
        assert!(!theirs.is_empty(), "{op}: nothing recorded for the SDK");
        assert!(!mine.is_empty(), "{op}: nothing recorded for the client");
        if let Some(d) = diff(&theirs, &mine) {
            differences.push(format!("{op}:\n{d}"));
        }
        compared += mine.len();
    }
    // OAuth M2M token requests, for the account and for the workspace.
    let theirs = token_lines(sdk["ops"].as_object().unwrap().values());
    let mine = token_lines(ours.values());
    if let Some(d) = diff(&theirs, &mine) {
        differences.push(format!("OAuth token requests:\n{d}"));
    }
    assert!(
        differences.is_empty(),
        "the client's requests differ from Databricks' SDK's (- SDK only, + client only):\n{}",
        differences.join("\n")
    );
    // list_dashboards spans two pages: 9 API requests in all, and both token endpoints.
    assert!(compared >= 9, "{compared} requests compared");
    for path in [
        format!("/oidc/accounts/{ACCT}/v1/token"),
        format!("/_ws/{DEPLOYMENT}/oidc/v1/token"),
    ] {
        assert!(
            mine.iter().any(|l| l.starts_with(&format!("POST {path} "))),
            "no token request to {path}: {mine:#?}"
        );
    }

    // Every response shape the SDK produces decodes into the client's models.
    let s = &sdk["shapes"];
    let w: Workspace = serde_json::from_value(s["workspace_full"].clone()).unwrap();
    assert_eq!(w.workspace_id, 4242);
    assert!(
        w.pricing_tier.is_some() && w.workspace_status.is_some(),
        "{w:?}"
    );
    let w: Workspace = serde_json::from_value(s["workspace_unknown_enums"].clone()).unwrap();
    assert_eq!(
        (
            w.pricing_tier,
            w.compute_mode,
            w.storage_mode,
            w.workspace_status
        ),
        (None, None, None, None)
    );
    let k: CustomerManagedKey = serde_json::from_value(s["key_full"].clone()).unwrap();
    assert!(k.aws_key_info.is_some() && !k.use_cases.is_empty(), "{k:?}");
    let k: CustomerManagedKey = serde_json::from_value(s["key_unknown_use_case"].clone()).unwrap();
    assert_eq!(k.use_cases, [KeyFeature::ManagedServices]);
    let page: Vec<Dashboard> =
        serde_json::from_value(s["dashboard_page"]["dashboards"].clone()).unwrap();
    assert_eq!(page.len(), 2);
    for shape in ["dashboard_full", "dashboard_unknown_state"] {
        let d: Dashboard = serde_json::from_value(s[shape].clone())
            .unwrap_or_else(|e| panic!("{shape}: {e}: {}", s[shape]));
        assert_eq!(d.dashboard_id, "dashboard_id-value", "{shape}");
    }
    h.shutdown().await;
}

#[test]
fn a_difference_reads_as_a_diff() {
    let r = |method: &str, path: &str, query: Value, body: Value| {
        json!({"method": method, "path": path, "query": query, "body_keys": body,
               "form_keys": [], "content_type": "", "auth_scheme": "Bearer"})
    };
    let sdk = vec![
        line(&r("GET", "/a/k1", json!({}), json!([])), &["k1"]),
        line(
            &r("PATCH", "/w/1", json!({"update_mask": "x"}), json!(["x"])),
            &[],
        ),
    ];
    let client = vec![
        line(&r("GET", "/a/k2", json!({}), json!([])), &["k2"]),
        line(&r("PATCH", "/w/1", json!({}), json!(["x", "y"])), &[]),
    ];
    assert_eq!(
        diff(&sdk, &client).unwrap(),
        "    GET /a/{id} auth=Bearer\n  - PATCH /w/1?update_mask=x json{x} auth=Bearer\n  + PATCH /w/1 json{x, y} auth=Bearer\n"
    );
    assert_eq!(diff(&sdk, &sdk), None);
}
