//! `terraform-provider-cmk review PLAN_JSON --live`: the built binary
//! against cmk-sandbox (started in-process), on an official-provider plan
//! that rotates the managed-services key of an existing workspace.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use cmk::sandbox::{self, SandboxConfig, SandboxHandle, World};
use serde_json::{json, Value};

const ACCT: &str = "11111111-2222-4333-8444-555555555555";
/// The service principal the sandbox knows (the Account API takes OAuth only).
const CLIENT_ID: &str = "review-live-sp";
const CLIENT_SECRET: &str = "review-live-oauth-secret";
const OLD_KEY: &str = "aaaaaaaa-0000-4000-8000-0000000000a1";
const NEW_KEY: &str = "aaaaaaaa-0000-4000-8000-0000000000b2";
const WS: i64 = 7000000000000101;
const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn fixture() -> String {
    format!(
        "{}/acceptance-tests/fixtures/review/official_live_rotation.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The workspace of the fixture, running a cluster, with a dashboard from
/// before the cutoff (and one after it).
fn world(extra: Value) -> World {
    let mut ws = json!({
        "workspace_id": WS, "workspace_name": "prod", "deployment_name": "prod-dep",
        "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
        "workspace_status": "RUNNING",
        "managed_services_customer_managed_key_id": OLD_KEY,
        "clusters": [
            {"cluster_name": "etl-nightly", "state": "RUNNING"},
            {"cluster_name": "old-adhoc", "state": "TERMINATED"}
        ],
        "dashboards": [
            {"dashboard_id": "01ee-revenue-2023", "display_name": "Revenue 2023", "create_time": "2023-06-01T09:00:00Z"},
            {"dashboard_id": "01ef-churn-2025", "display_name": "Churn 2025", "create_time": "2025-02-01T09:00:00Z"}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        ws[k] = v.clone();
    }
    serde_json::from_value(json!({
        "admin_token": "admin",
        "accounts": [{
            "account_id": ACCT,
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": OLD_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}},
                {"customer_managed_key_id": NEW_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}}
            ],
            "workspaces": [ws]
        }]
    }))
    .unwrap()
}

async fn start(extra: Value) -> SandboxHandle {
    cmk::tfplugin::install_crypto_provider();
    let mut c = SandboxConfig::new(world(extra));
    c.provisioning_delay = Duration::from_millis(100);
    sandbox::start(c).await.unwrap()
}

/// Runs the built binary with only the given Databricks variables (and a
/// HOME without a ~/.databrickscfg).
async fn review(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_terraform-provider-cmk"));
        cmd.arg("review").args(&args);
        for (k, _) in std::env::vars() {
            if k.starts_with("DATABRICKS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", home.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn creds(h: &SandboxHandle) -> Vec<(&'static str, String)> {
    vec![
        ("DATABRICKS_HOST", h.url()),
        ("DATABRICKS_ACCOUNT_ID", ACCT.to_string()),
        ("DATABRICKS_CLIENT_ID", CLIENT_ID.to_string()),
        ("DATABRICKS_CLIENT_SECRET", CLIENT_SECRET.to_string()),
    ]
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn finding<'a>(v: &'a Value, rule: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {v:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_says_which_findings_need_live() {
    let out = review(vec![fixture(), "--format".into(), "json".into()], vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    for rule in ["CMK010", "CMK011"] {
        let f = finding(&v, rule);
        assert_eq!(f["verdict"], "cannot_tell", "{f}");
        assert_eq!(f["live_decides"], true, "{f}");
    }
    assert_eq!(v["live"]["read"], false);
    assert!(v["live"]["would_decide"].as_u64().unwrap() >= 2);
    let out = review(vec![fixture()], vec![]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    for rule in ["CMK010", "CMK011"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("cannot tell yet {rule} ")))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.ends_with("[review --live decides this]"), "{line}");
    }
    assert!(
        text.contains("run `review --live` to decide them"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reports_running_compute_and_old_dashboards() {
    let h = start(json!({})).await;
    let mut args = vec![fixture(), "--live".into(), "--format".into(), "json".into()];
    args.push(format!(
        "--workspace-host-template={}",
        h.workspace_host_template()
    ));
    let out = review(args, creds(&h)).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["live"]["read"], true);
    assert_eq!(v["live"]["errors"], json!([]));
    let c10 = finding(&v, "CMK010");
    assert_eq!(
        (c10["verdict"].as_str(), c10["severity"].as_str()),
        (Some("fail"), Some("error"))
    );
    let m = c10["message"].as_str().unwrap();
    assert!(m.contains("cluster \"etl-nightly\""), "{m}");
    assert!(
        !m.contains("old-adhoc"),
        "a terminated cluster is not running: {m}"
    );
    let c11 = finding(&v, "CMK011");
    assert_eq!(c11["verdict"], "fail", "{c11}");
    let m = c11["message"].as_str().unwrap();
    assert!(
        m.contains("01ee-revenue-2023") && !m.contains("01ef-churn-2025"),
        "{m}"
    );
    // Ids, never names (a workspace's content).
    assert!(!m.contains("Revenue 2023"), "{m}");
    // The key configuration named by id is read too: its use cases and
    // region decide CMK005 and CMK002 (both pass).
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["verdict"] != "cannot_tell"
                || (f["rule"] != "CMK005" && f["rule"] != "CMK002"))
    );
    // Nothing was changed: the workspace still has its old key.
    let state: Value = reqwest::Client::new()
        .get(format!("{}/_sandbox/state", h.url()))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["accounts"][0]["workspaces"][0]["managed_services_customer_managed_key_id"],
        OLD_KEY
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_passes_once_compute_is_stopped_and_text_names_it() {
    let h = start(json!({"clusters": [], "dashboards": []})).await;
    let out = review(
        vec![
            fixture(),
            "--live".into(),
            "--workspace-host-template".into(),
            h.workspace_host_template(),
        ],
        creds(&h),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{out:?}");
    assert!(
        !text.contains("CMK010") && !text.contains("CMK011"),
        "{text}"
    );
    assert!(
        text.contains("live: the workspaces' current facts were read from Databricks"),
        "{text}"
    );
    assert!(text.contains("0 cannot tell yet"), "{text}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fails_closed_when_it_cannot_look() {
    let h = start(json!({})).await;
    // No credentials at all: a usage-level error naming what to set.
    let out = review(
        vec![fixture(), "--live".into()],
        vec![
            ("DATABRICKS_HOST", h.url()),
            ("DATABRICKS_ACCOUNT_ID", ACCT.into()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABRICKS_CLIENT_SECRET"), "{err}");
    // A wrong secret: the reads fail, the review says which and exits 2,
    // without echoing the secret.
    let bad = "wrong-oauth-secret-zzzz";
    let out = review(
        vec![fixture(), "--live".into()],
        vec![
            ("DATABRICKS_HOST", h.url()),
            ("DATABRICKS_ACCOUNT_ID", ACCT.into()),
            ("DATABRICKS_CLIENT_ID", CLIENT_ID.into()),
            ("DATABRICKS_CLIENT_SECRET", bad.into()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("reading workspace {WS}")), "{err}");
    assert!(err.contains("401"), "{err}");
    let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains(bad), "the token was echoed: {all}");
    // The workspace API not where the template says (404): the account
    // reads work, the compute and dashboards reads are named as failed.
    let out = review(
        vec![
            fixture(),
            "--live".into(),
            format!(
                "--workspace-host-template={}/_nowhere/{{deployment_name}}",
                h.url()
            ),
        ],
        creds(&h),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("reading the classic compute of workspace {WS}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("reading the AI/BI dashboards of workspace {WS}")),
        "{err}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cannot tell yet CMK010"), "{text}");
    h.shutdown().await;
}

/// A configuration's source (HCL mode) binding the new managed-services
/// key to the sandbox's workspace: the binding's `workspace_id` is a
/// literal, so `--live` knows which workspace to read.
fn hcl_config() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("main.tf"),
        format!(
            r#"
resource "cmk_workspace_binding" "prod" {{
  workspace_id            = {WS}
  managed_services_key_id = "{NEW_KEY}"
}}
"#
        ),
    )
    .unwrap();
    d
}

fn json_args(dir: &tempfile::TempDir, more: &[String]) -> Vec<String> {
    let mut args = vec![
        dir.path().display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(more.iter().cloned());
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_decides_what_hcl_mode_cannot_tell() {
    let h = start(json!({})).await;
    let dir = hcl_config();
    // Without --live: the running compute and the dashboards are unknown.
    // A source says nothing of what exists: they need state.
    let out = review(json_args(&dir, &[]), vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    for rule in ["CMK010", "CMK011"] {
        let f = finding(&v, rule);
        assert_eq!(f["verdict"], "needs_state", "{f}");
        assert_eq!(f["live_decides"], true, "{f}");
    }
    // With --live: read from the sandbox, the running cluster fails the
    // review and the pre-cutoff dashboard is named.
    let out = review(
        json_args(
            &dir,
            &[
                "--live".into(),
                format!("--workspace-host-template={}", h.workspace_host_template()),
            ],
        ),
        creds(&h),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["live"]["read"], true, "{v:#}");
    assert_eq!(v["live"]["errors"], json!([]), "{v:#}");
    let c10 = finding(&v, "CMK010");
    assert_eq!(
        (c10["verdict"].as_str(), c10["severity"].as_str()),
        (Some("fail"), Some("error")),
        "{c10}"
    );
    let m = c10["message"].as_str().unwrap();
    assert!(m.contains("cluster \"etl-nightly\""), "{m}");
    assert!(!m.contains("old-adhoc"), "{m}");
    let c11 = finding(&v, "CMK011");
    assert_eq!(c11["verdict"], "fail", "{c11}");
    let m = c11["message"].as_str().unwrap();
    assert!(
        m.contains("01ee-revenue-2023") && !m.contains("01ef-churn-2025"),
        "{m}"
    );
    // Ids, never names (a workspace's content).
    assert!(!m.contains("Revenue 2023"), "{m}");
    // The key configuration given by id was read too: CMK005 (its use
    // cases) is decided (passes are not listed; nothing cannot tell).
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["verdict"] != "cannot_tell"),
        "{v:#}"
    );
    assert_eq!(v["summary"]["cannot_tell"], 0, "{v:#}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_against_an_unreachable_workspace_host_ends_in_seconds_naming_it() {
    let h = start(json!({})).await;
    // A port nothing listens on: bound once to find it, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let template = format!("http://127.0.0.1:{port}/{{deployment_name}}");
    let t0 = std::time::Instant::now();
    let out = review(
        vec![
            fixture(),
            "--live".into(),
            "--workspace-host-template".into(),
            template,
        ],
        creds(&h),
    )
    .await;
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        took < Duration::from_secs(20),
        "an unreachable workspace host took {took:?} to report:\n{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        err.contains(&format!("reading the classic compute of workspace {WS}")),
        "{err}"
    );
    // The account API answered: the workspace itself was read.
    assert!(!err.contains(&format!("reading workspace {WS}:")), "{err}");
    h.shutdown().await;
}

/// The fixture as a plan of a configuration whose provider blocks name the
/// sandbox: the databricks block's `host` (a literal) and `account_id` (a
/// variable the plan holds), the cmk block's `workspace_host_template`.
fn plan_naming_the_sandbox(h: &SandboxHandle, dir: &tempfile::TempDir) -> String {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    v["variables"]["databricks_account_id"] = json!({ "value": ACCT });
    let pc = &mut v["configuration"]["provider_config"];
    pc["databricks"]["expressions"]["host"] = json!({ "constant_value": h.url() });
    pc["cmk"] = json!({
        "name": "cmk",
        "full_name": "registry.terraform.io/databricks-cmk/cmk",
        "expressions": {
            "workspace_host_template": { "constant_value": h.workspace_host_template() }
        }
    });
    let p = dir.path().join("plan.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p.display().to_string()
}

/// A loopback listener standing in for AWS (STS and every other service):
/// counts the connections it gets.
fn aws_stand_in() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (c, st) = (count.clone(), stop.clone());
    std::thread::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            match l.accept() {
                Ok(_) => {
                    c.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (url, count, stop)
}

/// `--live` takes the account id, the account host and the workspace host
/// template from the plan's provider blocks when neither a flag nor the
/// environment sets them, says so on standard error, and asks AWS nothing
/// (no STS call for an account: a listener standing in for AWS gets no
/// connection). The workspace has stopped its compute: nothing is left
/// "cannot tell yet", exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_takes_account_and_hosts_from_the_plans_provider_blocks() {
    let h = start(json!({"clusters": [], "dashboards": []})).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_naming_the_sandbox(&h, &dir);
    let (aws, connections, stop) = aws_stand_in();
    let env = vec![
        ("DATABRICKS_CLIENT_ID", CLIENT_ID.to_string()),
        ("DATABRICKS_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("AWS_ENDPOINT_URL", aws.clone()),
        ("AWS_ENDPOINT_URL_STS", aws.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ];
    let out = review(
        vec![
            plan.clone(),
            "--live".into(),
            "--format".into(),
            "json".into(),
        ],
        env.clone(),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["live"]["read"], true, "{v:#}");
    assert_eq!(v["live"]["errors"], json!([]), "{v:#}");
    assert_eq!(v["summary"]["cannot_tell"], 0, "{v:#}");
    assert!(
        err.contains("account_id from provider \"databricks\" account_id")
            && err.contains("host from provider \"databricks\" host")
            && err
                .contains("workspace_host_template from provider \"cmk\" workspace_host_template"),
        "{err}"
    );
    // The environment comes before the configuration: another account id
    // there is the one used, and the sandbox does not know it.
    let other = "99999999-2222-4333-8444-555555555555";
    let mut with_env = env.clone();
    with_env.push(("DATABRICKS_ACCOUNT_ID", other.to_string()));
    let out = review(vec![plan.clone(), "--live".into()], with_env).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // (the sandbox's OAuth endpoint of that account knows no such client)
    assert!(err.contains("(401)"), "{err}");
    assert!(!err.contains("account_id from provider"), "{err}");
    // A flag comes before both: a workspace host template nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = review(
        vec![
            plan,
            "--live".into(),
            format!("--workspace-host-template=http://127.0.0.1:{port}/{{deployment_name}}"),
        ],
        env,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "review --live connected to the AWS stand-in"
    );
    h.shutdown().await;
}

#[test]
fn the_fixture_is_in_the_shape_terraform_writes() {
    let p = PathBuf::from(fixture());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(
        v["resource_changes"][0]["change"]["actions"],
        json!(["update"])
    );
    assert_eq!(
        v["resource_changes"][0]["change"]["after"]["managed_services_customer_managed_key_id"],
        NEW_KEY
    );
}

/// Storage key configurations of the state tests' account.
const OLD_ST: &str = "aaaaaaaa-0000-4000-8000-0000000000c1";
const NEW_ST: &str = "aaaaaaaa-0000-4000-8000-0000000000c2";

/// The account of the state tests: the given workspaces, and the key
/// configurations acceptance-tests/fixtures/review/state/ names.
async fn start_with_workspaces(workspaces: Value) -> SandboxHandle {
    cmk::tfplugin::install_crypto_provider();
    let world: World = serde_json::from_value(json!({
        "admin_token": "admin",
        "accounts": [{
            "account_id": ACCT,
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"customer_managed_key_id": OLD_KEY, "use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": ARN}},
                {"customer_managed_key_id": OLD_ST, "use_cases": ["STORAGE"], "aws_key_info": {"key_arn": ARN}},
                {"customer_managed_key_id": NEW_ST, "use_cases": ["STORAGE"], "aws_key_info": {"key_arn": ARN}}
            ],
            "workspaces": workspaces
        }]
    }))
    .unwrap();
    let mut c = SandboxConfig::new(world);
    c.provisioning_delay = Duration::from_millis(100);
    sandbox::start(c).await.unwrap()
}

/// A workspace of the sandbox: "prod" / "prod-dep" unless `extra` says
/// otherwise, RUNNING, with the managed-services key and storage key ...c1.
fn state_workspace(id: i64, extra: Value) -> Value {
    let mut ws = json!({
        "workspace_id": id, "workspace_name": "prod", "deployment_name": "prod-dep",
        "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
        "workspace_status": "RUNNING",
        "managed_services_customer_managed_key_id": OLD_KEY,
        "storage_customer_managed_key_id": OLD_ST,
        "clusters": [], "dashboards": []
    });
    for (k, v) in extra.as_object().unwrap() {
        ws[k] = v.clone();
    }
    ws
}

/// acceptance-tests/fixtures/review/state/storage_key_change: the source of
/// a workspace "prod" (deployment "prod-dep") with storage key ...c2.
fn storage_key_change() -> String {
    format!(
        "{}/acceptance-tests/fixtures/review/state/storage_key_change",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn live_args(h: &SandboxHandle, dir: &str) -> Vec<String> {
    vec![
        dir.to_string(),
        "--format".into(),
        "json".into(),
        "--live".into(),
        format!("--workspace-host-template={}", h.workspace_host_template()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_key_change_needs_state_offline_and_fails_cmk009_with_live() {
    // Offline: nothing passes that needs state.
    let args = |more: &[&str]| {
        let mut a = vec![storage_key_change(), "--format".into(), "json".into()];
        a.extend(more.iter().map(|s| s.to_string()));
        a
    };
    let out = review(args(&[]), vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    for rule in ["CMK009", "CMK010", "CMK011", "CMK019", "CMK020"] {
        let f = finding(&v, rule);
        assert_eq!(f["verdict"], "needs_state", "{f}");
        assert_eq!(f["live_decides"], true, "{f}");
        let m = f["message"].as_str().unwrap();
        assert!(
            m.starts_with("needs state: not checked without a plan or --live"),
            "{m}"
        );
    }
    assert_eq!(v["summary"]["needs_state"], 5, "{v:#}");
    // Never counted as passed: the coverage claims nothing of dashboards.
    let dash = v["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["data_type"] == "ai_bi_dashboards")
        .unwrap();
    assert_eq!(dash["protection"], "needs_state", "{dash}");
    // --fail-on needs-state fails on it; the default does not.
    let out = review(args(&["--fail-on", "needs-state"]), vec![]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // --live: the workspace is found by its deployment_name and its
    // current storage key decides CMK009.
    let h = start_with_workspaces(json!([state_workspace(WS, json!({}))])).await;
    let out = review(live_args(&h, &storage_key_change()), creds(&h)).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["live"]["errors"], json!([]), "{v:#}");
    let f = finding(&v, "CMK009");
    assert_eq!(f["verdict"], "fail", "{f}");
    let m = f["message"].as_str().unwrap();
    assert!(m.contains(OLD_ST) && m.contains(NEW_ST), "{m}");
    assert_eq!(v["summary"]["needs_state"], 0, "{v:#}");
    let notes = v["live"]["notes"].to_string();
    assert!(
        notes.contains(&format!("is workspace {WS} of the account")),
        "{notes}"
    );
    // The same by text: no "needs state" line.
    let mut text_args = live_args(&h, &storage_key_change());
    text_args.drain(1..3);
    let out = review(text_args, creds(&h)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error CMK009 databricks_mws_workspaces.this"),
        "{text}"
    );
    assert!(text.contains(", 0 needs state,"), "{text}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reviews_a_workspace_not_in_the_account_as_new_and_says_so() {
    let other = state_workspace(
        WS,
        json!({"workspace_name": "other", "deployment_name": "other-dep"}),
    );
    let h = start_with_workspaces(json!([other])).await;
    let out = review(live_args(&h, &storage_key_change()), creds(&h)).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["summary"]["needs_state"], 0, "{v:#}");
    assert_eq!(v["summary"]["errors"], 0, "{v:#}");
    let notes = v["live"]["notes"].to_string();
    assert!(
        notes.contains("deployment_name \\\"prod-dep\\\") of databricks_mws_workspaces.this is not a workspace of the account: reviewed as a new workspace"),
        "{notes}"
    );
    // CMK009 passes: a new workspace has no storage key yet (passes are
    // not listed in the findings).
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "CMK009"),
        "{v:#}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_cannot_tell_between_two_workspaces_of_the_same_name() {
    let h = start_with_workspaces(json!([
        state_workspace(WS, json!({"deployment_name": "prod-a"})),
        state_workspace(
            WS + 1,
            json!({"deployment_name": "prod-b", "storage_customer_managed_key_id": null})
        )
    ]))
    .await;
    // The fixture's source without its deployment_name: the name alone.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(format!("{}/main.tf", storage_key_change())).unwrap();
    let src: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("deployment_name"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("main.tf"), src).unwrap();
    let out = review(live_args(&h, &dir.path().display().to_string()), creds(&h)).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    let f = finding(&v, "CMK009");
    assert_eq!(f["verdict"], "cannot_tell", "{f}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("could be any of 2 workspaces of the account")
            && m.contains(&WS.to_string())
            && m.contains("set its deployment_name"),
        "{m}"
    );
    assert_eq!(v["summary"]["needs_state"], 0, "{v:#}");
    h.shutdown().await;
}
