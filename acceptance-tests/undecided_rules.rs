//! An error-severity rule that apply cannot decide stops the apply before
//! any change (issue 29 item 5), and a workspace host that accepts
//! connections and never answers ends the plan at the read timeout, naming
//! the host and the call (issue 30 item 2). Real terraform, the built
//! provider, cmk-sandbox (its fault injection and its request log) and, for
//! the silent host, a TCP listener on 127.0.0.1 that accepts and stays
//! silent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{enabled, Out, Workdir, CMK_HEADER};
use crate::hostile_server::{endless, redirect, Hostile, Req};
use crate::sandbox::{oauth_env, Sandbox, ACCOUNT_ID, PROD_WORKSPACE, SEEDED_KEY};

const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The seeded HYBRID, RUNNING workspace's deployment (PROD_WORKSPACE).
const DEPLOYMENT: &str = "analytics-prod";
/// A hang guard for each terraform run, not a timing goal.
const HANG_GUARD: Duration = Duration::from_secs(150);

/// A storage key configuration created in the same run, bound to the
/// seeded RUNNING HYBRID workspace: the key change needs CMK010 (no
/// running classic compute), which plan and apply read from the
/// workspace's own API.
fn config(host: &str, template: &str) -> String {
    format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  host                            = "{host}"
  account_id                      = "{ACCOUNT_ID}"
  workspace_host_template         = "{template}"
  workspace_poll_interval_seconds = 0.1
}}
resource "cmk_key_configuration" "s" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{ARN}" }}
}}
resource "cmk_workspace_binding" "b" {{
  workspace_id = {PROD_WORKSPACE}
  storage_key  = cmk_key_configuration.s
}}
"#
    )
}

fn workdir(host: &str, template: &str) -> Workdir {
    let mut w = Workdir::new(&config(host, template));
    w.env.extend(oauth_env());
    w
}

/// Runs terraform with a hang guard.
fn run(w: &Workdir, args: &[&str]) -> (Out, Duration) {
    let t0 = Instant::now();
    let o = w.run(args);
    let took = t0.elapsed();
    assert!(
        took < HANG_GUARD,
        "terraform {args:?} hung: {took:?}\n{}",
        o.all()
    );
    (o, took)
}

/// The output with terraform's line wrapping undone.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The seeded workspace's keys in the sandbox: (managed services, storage).
fn keys_of(sb: &Sandbox) -> (Option<String>, Option<String>) {
    let (status, body) = sb.admin("GET", "/_sandbox/state", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ws = v["accounts"][0]["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["workspace_id"] == PROD_WORKSPACE)
        .cloned()
        .expect("the seeded workspace");
    let s = |k: &str| ws[k].as_str().map(str::to_string);
    (
        s("managed_services_customer_managed_key_id"),
        s("storage_customer_managed_key_id"),
    )
}

/// The sandbox's request log: (method, path) of every API request.
fn requests(sb: &Sandbox) -> Vec<(String, String)> {
    let (status, log) = sb.admin("GET", "/_sandbox/requests", "");
    assert_eq!(status, 200, "{log}");
    let v: serde_json::Value = serde_json::from_str(&log).unwrap();
    v.as_array()
        .expect("the request log")
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Plan succeeds (the compute list answers); then the workspace's own API
/// answers 500 (sandbox fault injection confined to that API), and
/// `terraform apply` of the saved plan fails naming CMK010 and the failed
/// read: the workspace keeps its keys and no PATCH reaches the sandbox.
#[test]
fn apply_stops_when_the_workspace_api_fails_an_error_rule_read() {
    if !enabled("apply_stops_when_the_workspace_api_fails_an_error_rule_read") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(&sb.url, &format!("{}/_ws/{{deployment_name}}", sb.url));
    let (o, _) = run(&w, &["plan", "-no-color", "-input=false", "-out=tfplan"]);
    o.ok();
    let before = keys_of(&sb);
    assert_eq!(before, (Some(SEEDED_KEY.to_string()), None));

    let (status, body) = sb.admin(
        "PUT",
        "/_sandbox/faults",
        &json!({"error_rate": 1.0, "error_status": 500,
                "path_prefix": format!("/_ws/{DEPLOYMENT}/api/")})
        .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = sb.admin("DELETE", "/_sandbox/requests", "");
    assert!(status < 300);

    let (o, _) = run(&w, &["apply", "-no-color", "-input=false", "tfplan"]);
    let out = flat(&o.all());
    assert_ne!(o.code, 0, "apply must stop:\n{}", o.all());
    for needle in [
        "CMK010 cannot tell: running classic compute not read",
        "it cannot be decided",
        "listing the clusters, instance pools and SQL warehouses of workspace analytics-prod",
        &format!("at {}/_ws/analytics-prod failed", sb.url),
        "Databricks API error 500",
        "Nothing was changed",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{}", o.all());
    }
    assert_eq!(keys_of(&sb), before, "the workspace keeps its keys");
    let log = requests(&sb);
    assert!(
        log.iter()
            .any(|(m, p)| m == "GET" && p.ends_with("/api/2.1/clusters/list")),
        "apply read the compute list: {log:?}"
    );
    assert!(
        !log.iter().any(|(m, _)| m == "PATCH"),
        "no key update is sent: {log:?}"
    );

    // With the faults off (one call) the same configuration applies.
    let (status, _) = sb.admin("DELETE", "/_sandbox/faults", "");
    assert_eq!(status, 200);
    let (o, _) = run(&w, &["apply", "-auto-approve", "-no-color", "-input=false"]);
    o.ok();
    assert!(keys_of(&sb).1.is_some(), "the storage key is bound now");
}

/// The same stop for answers that are not a 5xx: a redirect and a body
/// that is not JSON, from a stand-in in front of the sandbox that turns
/// hostile between plan and apply.
#[test]
fn apply_stops_on_a_redirect_or_a_malformed_compute_answer() {
    if !enabled("apply_stops_on_a_redirect_or_a_malformed_compute_answer") {
        return;
    }
    for (case, expect) in [
        ("redirect", "redirect (302)"),
        ("malformed", "unexpected answer from"),
    ] {
        let sb = Sandbox::start();
        let hostile = Arc::new(AtomicBool::new(false));
        let on = hostile.clone();
        let h = Hostile::start(
            Some(sb.url.clone()),
            Arc::new(move |r: &Req| {
                (on.load(Ordering::SeqCst) && r.path.ends_with("/api/2.1/clusters/list")).then(
                    || match case {
                        "redirect" => redirect(302, "http://127.0.0.1:9/elsewhere"),
                        // Cut JSON: `{"clusters": [` and nothing after.
                        _ => endless(200, "{\"clusters\": [", 0),
                    },
                )
            }),
        );
        let w = workdir(&h.url, &format!("{}/_ws/{{deployment_name}}", h.url));
        run(&w, &["plan", "-no-color", "-input=false", "-out=tfplan"])
            .0
            .ok();
        hostile.store(true, Ordering::SeqCst);
        let (status, _) = sb.admin("DELETE", "/_sandbox/requests", "");
        assert!(status < 300);
        let (o, _) = run(&w, &["apply", "-no-color", "-input=false", "tfplan"]);
        let out = flat(&o.all());
        assert_ne!(o.code, 0, "{case}: apply must stop:\n{}", o.all());
        for needle in ["CMK010 cannot tell", expect, "Nothing was changed"] {
            assert!(
                out.contains(needle),
                "{case}: {needle:?} not in\n{}",
                o.all()
            );
        }
        assert_eq!(keys_of(&sb).1, None, "{case}: no storage key is bound");
        let log = requests(&sb);
        assert!(
            !log.iter().any(|(m, _)| m == "PATCH"),
            "{case}: no key update is sent: {log:?}"
        );
    }
}

/// A workspace host that accepts connections and never answers: the plan
/// fails at the read timeout (30 s), not the operation's 300 s, with an
/// error naming the host, the call that waited (the workspace's token
/// endpoint, the first call there) and the real time it waited; CMK010 is
/// undecided, so the plan fails. `terraform apply` stops at its own plan:
/// nothing is created and no PATCH is sent.
#[test]
fn a_silent_workspace_host_fails_the_plan_at_the_read_timeout() {
    if !enabled("a_silent_workspace_host_fails_the_plan_at_the_read_timeout") {
        return;
    }
    let sb = Sandbox::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().flatten() {
            keep.lock().unwrap().push(c); // accepted, never answered
        }
    });
    let host = format!("http://127.0.0.1:{port}");
    let template = format!("{host}/_ws/{{deployment_name}}");
    let w = workdir(&sb.url, &template);

    let (o, took) = run(&w, &["plan", "-no-color", "-input=false"]);
    let out = flat(&o.all());
    assert_ne!(o.code, 0, "the plan must fail:\n{}", o.all());
    for needle in [
        "CMK010 cannot tell: running classic compute not read",
        &format!("no answer from {host} after 3"),
        &format!("POST {host}/_ws/{DEPLOYMENT}/oidc/v1/token"),
        "sent nothing for 30s, the read timeout",
        "workspace_host_template",
        &template,
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{}", o.all());
    }
    assert!(!out.contains("within 0s"), "{}", o.all());
    assert!(
        !held.lock().unwrap().is_empty(),
        "the plan never called the host"
    );
    eprintln!("silent workspace host: plan failed in {took:?}");

    let (status, _) = sb.admin("DELETE", "/_sandbox/requests", "");
    assert!(status < 300);
    let (o, _) = run(&w, &["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_ne!(o.code, 0, "apply must fail:\n{}", o.all());
    assert!(
        flat(&o.all()).contains(&format!("no answer from {host}")),
        "{}",
        o.all()
    );
    assert_eq!(sb.creates_committed(), 0, "nothing is created");
    let log = requests(&sb);
    assert!(
        !log.iter()
            .any(|(m, p)| m == "PATCH" || (m == "POST" && !p.ends_with("/v1/token"))),
        "apply sent nothing that changes: {log:?}"
    );
    assert_eq!(keys_of(&sb), (Some(SEEDED_KEY.to_string()), None));
}
