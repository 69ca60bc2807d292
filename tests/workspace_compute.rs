//! `AccountClient::running_classic_compute` against cmk-sandbox started
//! in-process: the three workspace APIs (clusters, instance pools, SQL
//! warehouses), their paging, the credentials, and the sandbox's own use of
//! the same lists when it refuses a key update (CMK010).

use std::time::Duration;

use cmk::cloud::databricks::{
    AccountClient, DatabricksError, DatabricksSettings, Secret, WorkspaceKeyUpdate,
};
use cmk::rules::facts::{ComputeKind, RunningCompute};
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
const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MS_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// Every kind and state, mixed.
const WS_MIXED: i64 = 2001;
/// Nothing at all.
const WS_EMPTY: i64 = 2002;
/// Only the older flag.
const WS_FLAG: i64 = 2003;
/// Many clusters and warehouses: several pages.
const WS_MANY: i64 = 2004;
/// Only a running classic SQL warehouse (and stopped things).
const WS_WAREHOUSE: i64 = 2005;

fn ws(id: i64, extra: Value) -> Value {
    let mut w = json!({
        "workspace_id": id, "workspace_name": format!("ws{id}"),
        "deployment_name": format!("dep-{id}"), "aws_region": "us-east-1",
        "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
        "workspace_status": "RUNNING",
    });
    for (k, v) in extra.as_object().unwrap() {
        w[k] = v.clone();
    }
    w
}

fn world() -> World {
    let many_clusters: Vec<Value> = (0..150)
        .map(|i| json!({"cluster_name": format!("c{i:03}"), "state": if i % 2 == 0 { "RUNNING" } else { "TERMINATED" }}))
        .collect();
    let many_warehouses: Vec<Value> = (0..130)
        .map(|i| json!({"name": format!("w{i:03}"), "state": "RUNNING", "warehouse_type": "PRO"}))
        .collect();
    serde_json::from_value(json!({
        "admin_token": ADMIN,
        "accounts": [{
            "account_id": ACCT,
            "tokens": [TOKEN],
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": MS_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}}
            ],
            "workspaces": [
                ws(WS_MIXED, json!({
                    "clusters": [
                        {"cluster_name": "etl", "state": "RUNNING", "cluster_id": "0101-000001-etl00001"},
                        {"cluster_name": "old", "state": "TERMINATED"},
                        {"cluster_name": "starting", "state": "PENDING"},
                        {"cluster_name": "growing", "state": "RESIZING"},
                        {"cluster_name": "rebooting", "state": "RESTARTING"},
                        {"cluster_name": "stopping", "state": "TERMINATING"},
                        {"cluster_name": "broken", "state": "ERROR"}
                    ],
                    "instance_pools": [
                        {"instance_pool_name": "warm", "stats": {"idle_count": 2}},
                        {"instance_pool_name": "cold"},
                        {"instance_pool_name": "filling", "stats": {"pending_idle_count": 1}},
                        {"instance_pool_name": "gone", "state": "DELETED"}
                    ],
                    "sql_warehouses": [
                        {"name": "bi", "state": "RUNNING", "warehouse_type": "CLASSIC"},
                        {"name": "pro", "state": "STARTING", "warehouse_type": "PRO"},
                        {"name": "sls", "state": "RUNNING", "warehouse_type": "PRO", "enable_serverless_compute": true},
                        {"name": "off", "state": "STOPPED", "warehouse_type": "PRO"}
                    ]
                })),
                ws(WS_EMPTY, json!({})),
                ws(WS_FLAG, json!({"classic_compute_running": true})),
                ws(WS_MANY, json!({"clusters": many_clusters, "sql_warehouses": many_warehouses})),
                ws(WS_WAREHOUSE, json!({
                    "clusters": [{"cluster_name": "old", "state": "TERMINATED"}],
                    "sql_warehouses": [{"name": "reports", "state": "RUNNING"}]
                })),
            ]
        }, {
            "account_id": OTHER,
            "tokens": [OTHER_TOKEN]
        }]
    }))
    .unwrap()
}

async fn start_with(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    cmk::tfplugin::install_crypto_provider();
    let mut c = SandboxConfig::new(world());
    c.provisioning_delay = Duration::from_millis(100);
    // These tests are about the compute lists; which credential each API
    // takes is tested in tests/real_services.rs, so one account token
    // serves every route here (the sandbox's documented relaxed mode).
    c.relaxed_auth = true;
    f(&mut c);
    sandbox::start(c).await.unwrap()
}

async fn start() -> SandboxHandle {
    start_with(|_| {}).await
}

fn settings(h: &SandboxHandle) -> DatabricksSettings {
    DatabricksSettings {
        token: Some(Secret::new(TOKEN)),
        workspace_wait_timeout: Some(Duration::from_secs(10)),
        ..test_settings(h, ACCT)
    }
}

fn client_from(s: DatabricksSettings) -> AccountClient {
    client_of(s)
}

async fn admin(h: &SandboxHandle, method: &str, path: &str, body: Value) -> Value {
    admin_call(h, ADMIN, method, path, Some(body)).await
}

/// A raw GET on a workspace route of the sandbox, with the account token.
async fn raw(h: &SandboxHandle, id: i64, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}/_ws/dep-{id}{path}", h.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn names(v: &[RunningCompute]) -> Vec<(ComputeKind, &str)> {
    v.iter().map(|c| (c.kind, c.name.as_str())).collect()
}

async fn running(c: &AccountClient, id: i64) -> Result<Vec<RunningCompute>, DatabricksError> {
    c.running_classic_compute(&format!("dep-{id}"), &CancellationToken::new())
        .await
}

#[tokio::test]
async fn every_kind_and_state_is_classified() {
    let h = start().await;
    let c = client_from(settings(&h));
    let got = running(&c, WS_MIXED).await.unwrap();
    assert_eq!(
        names(&got),
        vec![
            (ComputeKind::Cluster, "etl"),
            (ComputeKind::Cluster, "starting"),
            (ComputeKind::Cluster, "growing"),
            (ComputeKind::Cluster, "rebooting"),
            (ComputeKind::InstancePool, "warm"),
            (ComputeKind::InstancePool, "filling"),
            (ComputeKind::ClassicSqlWarehouse, "bi"),
            (ComputeKind::ClassicSqlWarehouse, "pro"),
        ]
    );
    assert_eq!(got[0].to_string(), "cluster \"etl\"");
    // The sandbox answers the API's shapes: ids filled, stats, serverless flag.
    let clusters = raw(&h, WS_MIXED, "/api/2.1/clusters/list").await;
    assert_eq!(
        clusters["clusters"][0]["cluster_id"],
        "0101-000001-etl00001"
    );
    assert_eq!(clusters["clusters"].as_array().unwrap().len(), 7);
    assert!(clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["cluster_id"].as_str().is_some_and(|s| !s.is_empty())));
    let pools = raw(&h, WS_MIXED, "/api/2.0/instance-pools/list").await;
    assert_eq!(pools["instance_pools"][0]["stats"]["idle_count"], 2);
    assert_eq!(pools["instance_pools"][0]["state"], "ACTIVE");
    assert!(pools["instance_pools"][0]["instance_pool_id"]
        .as_str()
        .is_some_and(|s| s.contains("-pool-")));
    let wh = raw(&h, WS_MIXED, "/api/2.0/sql/warehouses").await;
    assert_eq!(wh["warehouses"][2]["enable_serverless_compute"], true);
    assert_eq!(wh["warehouses"][2]["name"], "sls");
    h.shutdown().await;
}

#[tokio::test]
async fn a_workspace_without_compute_has_none() {
    let h = start().await;
    let c = client_from(settings(&h));
    assert_eq!(running(&c, WS_EMPTY).await.unwrap(), vec![]);
    // The API omits empty lists: the answers are `{}`.
    for p in [
        "/api/2.1/clusters/list",
        "/api/2.0/instance-pools/list",
        "/api/2.0/sql/warehouses",
    ] {
        assert_eq!(raw(&h, WS_EMPTY, p).await, json!({}), "{p}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn every_page_is_read() {
    let h = start().await;
    let c = client_from(settings(&h));
    let got = running(&c, WS_MANY).await.unwrap();
    let clusters = got
        .iter()
        .filter(|r| r.kind == ComputeKind::Cluster)
        .count();
    let warehouses = got
        .iter()
        .filter(|r| r.kind == ComputeKind::ClassicSqlWarehouse)
        .count();
    assert_eq!((clusters, warehouses), (75, 130));
    assert_eq!(got.last().unwrap().name, "w129");
    // The lists really are paged.
    let first = raw(&h, WS_MANY, "/api/2.1/clusters/list?page_size=100").await;
    assert_eq!(first["clusters"].as_array().unwrap().len(), 100);
    assert_eq!(first["next_page_token"], "100");
    let wh = raw(&h, WS_MANY, "/api/2.0/sql/warehouses").await;
    assert_eq!(wh["warehouses"].as_array().unwrap().len(), 100);
    assert!(wh["next_page_token"].is_string());
    h.shutdown().await;
}

#[tokio::test]
async fn the_older_flag_is_one_running_cluster_and_the_admin_call_stops_all() {
    let h = start().await;
    let c = client_from(settings(&h));
    assert_eq!(
        names(&running(&c, WS_FLAG).await.unwrap()),
        vec![(ComputeKind::Cluster, "sandbox-classic-compute")]
    );
    let path = |id: i64| format!("/_sandbox/workspaces/{id}/classic-compute");
    admin(&h, "POST", &path(WS_FLAG), json!({"running": false})).await;
    assert_eq!(running(&c, WS_FLAG).await.unwrap(), vec![]);
    admin(&h, "POST", &path(WS_FLAG), json!({"running": true})).await;
    assert_eq!(running(&c, WS_FLAG).await.unwrap().len(), 1);
    // Stopping a workspace with seeded compute stops all of its classic
    // compute and leaves serverless warehouses alone.
    admin(&h, "POST", &path(WS_MIXED), json!({"running": false})).await;
    assert_eq!(running(&c, WS_MIXED).await.unwrap(), vec![]);
    let wh = raw(&h, WS_MIXED, "/api/2.0/sql/warehouses").await;
    let states: Vec<&str> = wh["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["STOPPED", "STOPPED", "RUNNING", "STOPPED"]);
    h.shutdown().await;
}

#[tokio::test]
async fn the_sandbox_refuses_a_key_update_while_listed_compute_runs() {
    let h = start().await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let update = WorkspaceKeyUpdate {
        managed_services_customer_managed_key_id: Some(MS_KEY.into()),
        ..Default::default()
    };
    let e = c
        .update_workspace_keys(
            cmk::rules::ids::WorkspaceId::new(WS_WAREHOUSE).unwrap(),
            &update,
            &cancel,
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("classic_sql_warehouse \"reports\"") && text.contains("400"),
        "{text}"
    );
    assert!(
        !text.contains("\"old\""),
        "a terminated cluster is not running: {text}"
    );
    admin(
        &h,
        "POST",
        &format!("/_sandbox/workspaces/{WS_WAREHOUSE}/classic-compute"),
        json!({"running": false}),
    )
    .await;
    let w = c
        .update_workspace_keys(
            cmk::rules::ids::WorkspaceId::new(WS_WAREHOUSE).unwrap(),
            &update,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(
        w.managed_services_customer_managed_key_id.as_deref(),
        Some(MS_KEY)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn workspace_credentials_and_errors() {
    let h = start().await;
    // OAuth M2M through the workspace's token endpoint.
    let oauth = client_from(DatabricksSettings {
        token: None,
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        ..settings(&h)
    });
    assert_eq!(running(&oauth, WS_MIXED).await.unwrap().len(), 8);
    // Another account's credential: refused, naming whose.
    let other = client_from(DatabricksSettings {
        account_id: Some(OTHER.into()),
        token: Some(Secret::new(OTHER_TOKEN)),
        ..settings(&h)
    });
    let e = running(&other, WS_MIXED).await.unwrap_err();
    assert!(
        matches!(e, DatabricksError::PermissionDenied { .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains(OTHER_TOKEN));
    // No such workspace.
    let c = client_from(settings(&h));
    let e = c
        .running_classic_compute("dep-nope", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.is_gone(), "{e:?}");
    assert!(
        e.to_string().contains("clusters of workspace dep-nope"),
        "{e}"
    );
    // Transient 503s are retried (reads are idempotent).
    admin(&h, "PUT", "/_sandbox/faults", json!({"fail_next": 2})).await;
    assert_eq!(running(&c, WS_MIXED).await.unwrap().len(), 8);
    h.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_read_stops() {
    let h = start_with(|c| c.faults.latency_ms = 5_000).await;
    let c = client_from(settings(&h));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    // Without the cancel the read would succeed after the latency.
    let e = c
        .running_classic_compute(&format!("dep-{WS_MIXED}"), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, DatabricksError::Cancelled { .. }), "{e:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_seed_with_an_unknown_state_is_refused() {
    cmk::tfplugin::install_crypto_provider();
    let mut w = world();
    w.accounts[0].workspaces[1].clusters =
        serde_json::from_value(json!([{"cluster_name": "typo", "state": "running"}])).unwrap();
    let e = match sandbox::start(SandboxConfig::new(w)).await {
        Ok(_) => panic!("a seed with state \"running\" started"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("cluster \"typo\"") && e.contains("\"running\"") && e.contains("RUNNING"),
        "{e}"
    );
}
