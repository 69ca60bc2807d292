//! Services that misbehave (issue 21), through the real `terraform` CLI and
//! the built provider: a stand-in on 127.0.0.1 (tests/support/hostile_server.rs)
//! sits in front of cmk-sandbox and answers the requests each case picks
//! with endless pages, a huge body, a redirect, an answer about another
//! object or account, terminal escapes, or a 429 storm; a workspace host
//! that cannot be reached is a port nothing listens on and a name that does
//! not resolve, and a KMS endpoint that never answers is a socket that
//! accepts and stays silent.
//!
//! Every case states its bound: the terraform run ends within
//! [`BOUND`] with a clear error, the provider's peak RSS (VmHWM of every
//! provider process, sampled while terraform runs) stays under
//! [`MAX_RSS_KB`], nothing panics, and nothing of a wrong answer reaches
//! state.

use std::collections::HashSet;
use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{enabled, Workdir, CMK_HEADER};
use crate::hostile_server::{endless, json, redirect, Hostile, Req, Rule};
use crate::sandbox::{
    oauth_env, Sandbox, ACCOUNT_ID, PREMIUM_WORKSPACE, PROD_WORKSPACE, SEEDED_KEY,
};

/// Each terraform run of this suite ends within this.
const BOUND: Duration = Duration::from_secs(60);
/// The provider's peak resident memory stays under this (100 MB).
const MAX_RSS_KB: u64 = 100 * 1000;

const OTHER_KEY: &str = "5d4c3b2a-1111-4222-8333-444455556666";
const OTHER_ACCOUNT: &str = "99999999-2222-4333-8444-555555555555";
/// A key configuration id the stand-in answers as another account's.
const KEY_OF_OTHER_ACCOUNT: &str = "6e5d4c3b-1111-4222-8333-444455556677";
const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn rule(f: impl Fn(&Req) -> Option<axum::response::Response> + Send + Sync + 'static) -> Rule {
    Arc::new(f)
}

/// A working directory whose provider talks to `host` for the Account API
/// and `template` for workspaces.
fn workdir(host: &str, template: &str, body: &str) -> Workdir {
    workdir_with(host, template, "", body)
}

/// The same, with more provider arguments (`extra`, HCL lines).
fn workdir_with(host: &str, template: &str, extra: &str, body: &str) -> Workdir {
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  host                    = "{host}"
  account_id              = "{ACCOUNT_ID}"
  workspace_host_template = "{template}"
  {extra}
}}
{body}"#
    ));
    w.env.extend(oauth_env());
    w
}

/// A binding whose storage key is created in the same plan: the plan reads
/// the workspace's running classic compute (CMK010).
fn binding_config() -> String {
    format!(
        r#"resource "cmk_key_configuration" "s" {{
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

struct Measured {
    code: i32,
    out: String,
    took: Duration,
    peak_kb: u64,
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs terraform, sampling every provider process's peak RSS until it
/// ends; killed (and failed) past [`BOUND`] plus a margin.
fn measured(w: &Workdir, args: &[&str]) -> Measured {
    let start = Instant::now();
    let mut child = w
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run terraform");
    let drain = |mut p: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = p.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut peak = 0u64;
    let mut pids = HashSet::new();
    let status = loop {
        for pid in w.provider_pids() {
            if let Some(kb) = vm_hwm_kb(pid) {
                pids.insert(pid);
                peak = peak.max(kb);
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > BOUND + Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "terraform {args:?} still running after {:?}",
                start.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    assert!(!pids.is_empty(), "no provider process was seen to measure");
    Measured {
        code: status.code().unwrap_or(-1),
        out: format!("{}\n{}", out.join().unwrap(), err.join().unwrap()),
        took,
        peak_kb: peak,
    }
}

impl Measured {
    /// The bounds every case shares: a failure (not a hang, not a panic),
    /// in time, in memory, printable.
    fn failed_within_bounds(&self, case: &str) -> &Self {
        assert_ne!(self.code, 0, "{case}: terraform succeeded:\n{}", self.out);
        self.within_bounds(case)
    }

    /// The same bounds for a case the provider should get through.
    fn succeeded_within_bounds(&self, case: &str) -> &Self {
        assert_eq!(self.code, 0, "{case}: terraform failed:\n{}", self.out);
        self.within_bounds(case)
    }

    /// In time, in memory, printable, no panic, whatever the exit code.
    fn within_bounds(&self, case: &str) -> &Self {
        assert!(self.took < BOUND, "{case}: took {:?}", self.took);
        assert!(
            self.peak_kb < MAX_RSS_KB,
            "{case}: provider peak RSS {} kB",
            self.peak_kb
        );
        for bad in ["panicked", "Provider bug", "internal error", "Some("] {
            assert!(!self.out.contains(bad), "{case}: {bad:?} in\n{}", self.out);
        }
        assert!(
            !self.out.contains('\u{1b}') && !self.out.contains('\u{7}'),
            "{case}: a raw control character reached the output"
        );
        eprintln!(
            "{case}: exit {} in {:.1}s, provider peak RSS {} kB",
            self.code,
            self.took.as_secs_f64(),
            self.peak_kb
        );
        self
    }

    /// Each needle is in the output, whitespace-insensitively (terraform
    /// wraps a diagnostic's detail at spaces).
    fn says(&self, needles: &[&str]) -> &Self {
        let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let out = flat(&self.out);
        for n in needles {
            assert!(out.contains(&flat(n)), "{n:?} not in\n{}", self.out);
        }
        self
    }
}

fn plan(w: &Workdir) -> Measured {
    measured(w, &["plan", "-no-color", "-input=false"])
}

/// Nothing in state: no state file, or one without resources.
fn state_is_empty(w: &Workdir) {
    let p = w.path().join("terraform.tfstate");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(
            v["resources"].as_array().map(Vec::len).unwrap_or(0),
            0,
            "state holds resources: {s}"
        );
    }
}

/// The clusters list answers 1 MB pages whose next_page_token never ends:
/// the plan fails CMK010 as "cannot tell" (the list is incomplete) after at
/// most 32 MiB of pages, and never passes.
#[test]
fn endless_pages_fail_the_rule_that_needed_them() {
    if !enabled("endless_pages_fail_the_rule_that_needed_them") {
        return;
    }
    let sb = Sandbox::start();
    let n = Arc::new(AtomicU64::new(0));
    let filler = "x".repeat(1_000_000);
    let h = Hostile::start(
        Some(sb.url.clone()),
        rule(move |r| {
            r.path.ends_with("/api/2.1/clusters/list").then(|| {
                let i = n.fetch_add(1, Ordering::Relaxed);
                json(
                    200,
                    json!({"clusters": [], "filler": filler, "next_page_token": format!("page-{i}")}),
                )
            })
        }),
    );
    let w = workdir(
        &h.url,
        &format!("{}/_ws/{{deployment_name}}", h.url),
        &binding_config(),
    );
    plan(&w).failed_within_bounds("endless pages").says(&[
        "CMK010 cannot tell",
        "is incomplete",
        "32 MiB",
    ]);
    let pages = h.hits("/api/2.1/clusters/list");
    assert!((2..=40).contains(&pages), "{pages} pages read");
}

/// A 2 GiB answer for the workspace (list and GET): refused at the cap of
/// its kind while it streams, with the provider staying small.
#[test]
fn a_huge_answer_is_refused_at_its_cap() {
    if !enabled("a_huge_answer_is_refused_at_its_cap") {
        return;
    }
    let sb = Sandbox::start();
    let h = Hostile::start(
        Some(sb.url.clone()),
        rule(|r| {
            r.path
                .contains(&format!("/api/2.0/accounts/{ACCOUNT_ID}/workspaces"))
                .then(|| endless(200, "[{\"workspace_id\": 1, \"x\": \"", 2 << 30))
        }),
    );
    let w = workdir(
        &h.url,
        &format!("{}/_ws/{{deployment_name}}", h.url),
        &format!("data \"cmk_workspace\" \"w\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n"),
    );
    plan(&w)
        .failed_within_bounds("huge answer")
        .says(&["larger than 1 MiB"]);
}

/// The account's token endpoint redirects to another origin that would
/// hand out a token: not followed, the error names the location, the
/// other origin is never asked.
#[test]
fn a_redirect_is_not_followed() {
    if !enabled("a_redirect_is_not_followed") {
        return;
    }
    let sb = Sandbox::start();
    let elsewhere = Hostile::start(
        None,
        rule(|_| {
            Some(json(
                200,
                json!({"access_token": "stolen", "expires_in": 3600}),
            ))
        }),
    );
    let target = format!("{}/oidc/v1/token", elsewhere.url);
    let t = target.clone();
    let h = Hostile::start(
        Some(sb.url.clone()),
        rule(move |r| {
            (r.path == format!("/oidc/accounts/{ACCOUNT_ID}/v1/token")).then(|| redirect(307, &t))
        }),
    );
    let w = workdir(
        &h.url,
        &format!("{}/_ws/{{deployment_name}}", h.url),
        &format!("data \"cmk_workspace\" \"w\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n"),
    );
    plan(&w)
        .failed_within_bounds("redirect")
        .says(&["redirect (307)", &target, "not followed"]);
    assert_eq!(elsewhere.seen().len(), 0, "the redirect target was asked");
}

/// Answers about another object or account: errors naming both, and
/// nothing of them in state (an import of key configuration A answered
/// with B imports nothing).
#[test]
fn answers_about_something_else_reach_no_state() {
    if !enabled("answers_about_something_else_reach_no_state") {
        return;
    }
    let sb = Sandbox::start();
    let key_b = json!({"customer_managed_key_id": OTHER_KEY, "account_id": ACCOUNT_ID,
        "creation_time": 1730000000000u64, "use_cases": ["MANAGED_SERVICES"],
        "aws_key_info": {"key_arn": ARN, "key_region": "us-east-1"}});
    let ws = |id: i64, account: &str| {
        json!({"workspace_id": id, "workspace_name": "other", "account_id": account,
               "deployment_name": "other", "aws_region": "eu-west-1",
               "pricing_tier": "PREMIUM", "workspace_status": "RUNNING"})
    };
    // Key configuration C, answered as C but of another account.
    let mut key_c = key_b.clone();
    key_c["customer_managed_key_id"] = json!(KEY_OF_OTHER_ACCOUNT);
    key_c["account_id"] = json!(OTHER_ACCOUNT);
    let keys = format!("/api/2.0/accounts/{ACCOUNT_ID}/customer-managed-keys");
    let wss = format!("/api/2.0/accounts/{ACCOUNT_ID}/workspaces");
    let h = Hostile::start(
        Some(sb.url.clone()),
        rule(move |r| {
            if r.path == format!("{keys}/{KEY_OF_OTHER_ACCOUNT}") {
                return Some(json(200, key_c.clone()));
            }
            if r.path == keys {
                return Some(json(200, json!([key_b.clone()])));
            }
            if r.path == format!("{keys}/{SEEDED_KEY}") {
                return Some(json(200, key_b.clone()));
            }
            if r.path == wss {
                return Some(json(
                    200,
                    json!([
                        ws(PREMIUM_WORKSPACE, ACCOUNT_ID),
                        ws(PROD_WORKSPACE, OTHER_ACCOUNT)
                    ]),
                ));
            }
            if r.path == format!("{wss}/{PROD_WORKSPACE}") {
                return Some(json(200, ws(PREMIUM_WORKSPACE, ACCOUNT_ID)));
            }
            None
        }),
    );
    let template = format!("{}/_ws/{{deployment_name}}", h.url);
    let w = workdir(
        &h.url,
        &template,
        "resource \"cmk_key_configuration\" \"k\" {\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = { key_arn = \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\" }\n}\n",
    );
    measured(
        &w,
        &[
            "import",
            "-no-color",
            "-input=false",
            "cmk_key_configuration.k",
            SEEDED_KEY,
        ],
    )
    .failed_within_bounds("key configuration A answered as B")
    .says(&["customer_managed_key_id", SEEDED_KEY, OTHER_KEY, "not used"]);
    state_is_empty(&w);
    measured(
        &w,
        &[
            "import",
            "-no-color",
            "-input=false",
            "cmk_key_configuration.k",
            KEY_OF_OTHER_ACCOUNT,
        ],
    )
    .failed_within_bounds("key configuration answered from another account")
    .says(&["account_id", ACCOUNT_ID, OTHER_ACCOUNT, "not used"]);
    state_is_empty(&w);

    let w = workdir(
        &h.url,
        &template,
        &format!("data \"cmk_workspace\" \"w\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n"),
    );
    plan(&w)
        .failed_within_bounds("workspace answered with another account or id")
        .says(&[
            &format!("asked for {PROD_WORKSPACE}, answered {PREMIUM_WORKSPACE}"),
            "workspace_id",
        ]);
    state_is_empty(&w);
}

/// An OAuth token answer whose lifetime is 2^64-1 seconds (finding 4): no
/// overflow and no panic; the token is used (for a bounded time) and the
/// plan reads the workspace with it.
#[test]
fn a_token_lifetime_of_2_pow_64_is_used_without_a_panic() {
    if !enabled("a_token_lifetime_of_2_pow_64_is_used_without_a_panic") {
        return;
    }
    let ws = format!("/api/2.0/accounts/{ACCOUNT_ID}/workspaces/{PROD_WORKSPACE}");
    let h = Hostile::start(
        None,
        rule(move |r| {
            if r.path.ends_with("/v1/token") {
                return Some(json(
                    200,
                    json!({"access_token": "tok", "token_type": "Bearer", "expires_in": u64::MAX}),
                ));
            }
            (r.path == ws).then(|| {
                json(
                    200,
                    json!({"workspace_id": PROD_WORKSPACE, "workspace_name": "prod",
                           "account_id": ACCOUNT_ID, "deployment_name": "prod",
                           "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE",
                           "workspace_status": "RUNNING"}),
                )
            })
        }),
    );
    let template = format!("{}/_ws/{{deployment_name}}", h.url);
    let w = workdir(
        &h.url,
        &template,
        &format!(
            "data \"cmk_workspace\" \"w\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\noutput \"region\" {{\n  value = data.cmk_workspace.w.aws_region\n}}\n"
        ),
    );
    plan(&w)
        .succeeded_within_bounds("a token lifetime of 2^64-1 seconds")
        .says(&["region = \"us-east-1\""]);
    assert!(h.hits("/v1/token") >= 1, "the token endpoint was asked");
}

/// An error message with terminal escapes (OSC hyperlink, BEL, clear
/// screen) and 2 MB: shown escaped and cut with a note.
#[test]
fn terminal_escapes_from_a_service_are_shown_escaped() {
    if !enabled("terminal_escapes_from_a_service_are_shown_escaped") {
        return;
    }
    let sb = Sandbox::start();
    let h = Hostile::start(
        Some(sb.url.clone()),
        rule(|r| {
            r.path
                .contains(&format!("/api/2.0/accounts/{ACCOUNT_ID}/workspaces"))
                .then(|| {
                    let msg = format!(
                        "denied \u{1b}]8;;http://evil.example\u{7}click here\u{1b}]8;;\u{7}\u{1b}[2J{}",
                        "A".repeat(2_000_000)
                    );
                    json(400, json!({"error_code": "INVALID_PARAMETER_VALUE", "message": msg}))
                })
        }),
    );
    let w = workdir(
        &h.url,
        &format!("{}/_ws/{{deployment_name}}", h.url),
        &format!("data \"cmk_workspace\" \"w\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n"),
    );
    let m = plan(&w);
    m.failed_within_bounds("escapes").says(&[
        "\\u{1b}]8;;http://evil.example\\u{7}click here",
        "more bytes)",
    ]);
    assert!(m.out.len() < 100_000, "{} bytes of output", m.out.len());
}

/// A workspace host nobody answers (a port nothing listens on, a name
/// that does not resolve): the plan fails in seconds, naming the host and
/// the workspace_host_template that built it, instead of retrying for
/// minutes at "Refreshing state...".
#[test]
fn an_unreachable_workspace_host_fails_fast() {
    if !enabled("an_unreachable_workspace_host_fails_fast") {
        return;
    }
    let sb = Sandbox::start();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (template, host, reason) in [
        (
            format!("http://127.0.0.1:{port}/_ws/{{deployment_name}}"),
            format!("http://127.0.0.1:{port}"),
            "refused",
        ),
        (
            "http://{deployment_name}.invalid".to_string(),
            "http://analytics-prod.invalid".to_string(),
            "does not resolve",
        ),
    ] {
        let w = workdir(&sb.url, &template, &binding_config());
        let m = plan(&w);
        m.failed_within_bounds(&format!("unreachable {host}"))
            .says(&[
                "CMK010 cannot tell",
                &host,
                reason,
                "workspace_host_template",
                &template,
            ]);
        assert!(m.took < Duration::from_secs(30), "{:?}", m.took);
    }
}

/// Every path answers 429 (`Retry-After: 1`) for its first 2.2 seconds,
/// then goes to the sandbox: each call on its own succeeds within a 3 s
/// retry budget, but a binding's plan makes several in a row (tokens, the
/// workspace, its clusters). With `retry_timeout_seconds = 3` the whole
/// plan has 3 s: it fails in seconds naming the setting, where budgets per
/// call would have added up. The same storm with 30 s plans cleanly, so
/// the failure is the operation's deadline and nothing else.
#[test]
fn a_throttling_storm_ends_at_the_operation_deadline() {
    if !enabled("a_throttling_storm_ends_at_the_operation_deadline") {
        return;
    }
    let sb = Sandbox::start();
    let storm = || {
        let first_seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        Hostile::start(
            Some(sb.url.clone()),
            rule(move |r| {
                let mut seen = first_seen.lock().unwrap();
                let t0 = *seen.entry(r.path.clone()).or_insert_with(Instant::now);
                (t0.elapsed() < Duration::from_millis(2200)).then(|| {
                    let mut a = json(
                        429,
                        json!({"error_code": "TOO_MANY_REQUESTS", "message": "slow down"}),
                    );
                    a.headers_mut()
                        .insert("retry-after", axum::http::HeaderValue::from_static("1"));
                    a
                })
            }),
        )
    };
    for (secs, fails) in [(3, true), (30, false)] {
        let h = storm();
        let w = workdir_with(
            &h.url,
            &format!("{}/_ws/{{deployment_name}}", h.url),
            &format!("retry_timeout_seconds = {secs}"),
            &binding_config(),
        );
        let m = plan(&w);
        let paths: HashSet<String> = h.seen().into_iter().map(|r| r.path).collect();
        if fails {
            m.failed_within_bounds("429 storm, 3 s budget").says(&[
                "retry_timeout_seconds",
                "429",
                "when the time of the whole refresh or plan ran out",
            ]);
            assert!(m.took < Duration::from_secs(20), "{:?}", m.took);
            state_is_empty(&w);
        } else {
            assert_eq!(
                m.code, 0,
                "the storm alone must not fail a plan:\n{}",
                m.out
            );
            assert!(
                paths.len() >= 3,
                "the plan made fewer calls than the case needs: {paths:?}"
            );
        }
    }
}

/// A KMS endpoint that accepts connections and never answers: a plan that
/// verifies a key there stops when the operation's time is up
/// (`retry_timeout_seconds = 3`), not after the KMS call's own 60 s: the
/// KMS client stops the call at that deadline, and the message names the
/// call, the endpoint and the setting that allows more.
#[test]
fn a_silent_kms_endpoint_ends_at_the_operation_deadline() {
    if !enabled("a_silent_kms_endpoint_ends_at_the_operation_deadline") {
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
    let mut w = workdir_with(
        &sb.url,
        &format!("{}/_ws/{{deployment_name}}", sb.url),
        &format!(
            "retry_timeout_seconds = 3\n  aws_region = \"us-east-1\"\n  kms_endpoint = \"http://127.0.0.1:{port}\""
        ),
        &format!(
            "resource \"cmk_key_configuration\" \"k\" {{\n  use_cases    = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{ key_arn = \"{ARN}\" }}\n}}\n"
        ),
    );
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        w.env.push((k.into(), v.into()));
    }
    let m = plan(&w);
    // The KMS call itself stops at the operation's deadline and says so,
    // before the protocol layer's backstop (2 s later) would. A KMS check
    // that cannot run is a warning on the key (as for an endpoint that
    // refuses connections), so the plan ends, and ends in time.
    m.within_bounds("silent KMS, 3 s budget").says(&[
        "could not verify key",
        &format!(
            "kms:DescribeKey on {ARN} had no answer from the KMS endpoint http://127.0.0.1:{port}"
        ),
        "when the time of the whole refresh, plan or import ran out",
        "raise retry_timeout_seconds",
    ]);
    assert_eq!(m.code, 0, "the plan ends with the warning:\n{}", m.out);
    assert!(
        !m.out.contains("Operation took too long"),
        "the KMS call ended first, not the backstop:\n{}",
        m.out
    );
    assert!(
        m.took >= Duration::from_secs(3) && m.took < Duration::from_secs(20),
        "ended at the 3 s deadline: {:?}",
        m.took
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "the plan never called the KMS endpoint"
    );
    state_is_empty(&w);
}
