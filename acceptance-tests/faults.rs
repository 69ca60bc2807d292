//! Hostile input, interruptions and faults (issue 10), through the real
//! `terraform` CLI, the built provider and cmk-sandbox.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{enabled, example_bin, plan_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{oauth_env, Sandbox, ACCOUNT_ID, PROD_WORKSPACE};

/// A working directory for the sandbox (OAuth M2M credentials from the environment).
fn workdir(sb: &Sandbox, body: &str) -> Workdir {
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{}\n{body}", sb.provider_block()));
    w.env.extend(oauth_env());
    w
}

/// Every request the sandbox received, of any path (admin calls included).
fn all_requests(sb: &Sandbox) -> u64 {
    let (status, body) = sb.admin("GET", "/_sandbox/stats", "");
    assert_eq!(status, 200, "stats: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["all_requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("no all_requests in {v}"))
}

/// The error diagnostics of a plan, each with the line it points at.
fn errors(diags: &[serde_json::Value]) -> Vec<(u64, String)> {
    diags
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["range"]["start"]["line"].as_u64().unwrap_or(0),
                format!("{}: {}", d["summary"], d["detail"]),
            )
        })
        .collect()
}

/// The ids of issue 10 that changed the request (a path of the account host
/// reached with the pipeline's token, a query, a fragment) are errors on
/// their argument, and nothing at all is sent.
#[test]
fn hostile_key_ids_are_refused_before_any_request() {
    if !enabled("hostile_key_ids_are_refused_before_any_request") {
        return;
    }
    let sb = Sandbox::start();
    // As HCL string literals (backslashes escaped).
    let hostile = [
        r#"\\..\\..\\..\\..\\..\\..\\_sandbox\\state"#,
        "..",
        "%2e%2e",
        "?x=1",
        "#frag",
        "../../_sandbox/state",
    ];
    let mut body = String::new();
    for (i, id) in hostile.iter().enumerate() {
        body.push_str(&format!(
            "resource \"cmk_workspace_binding\" \"b{i}\" {{\n  workspace_id = {PROD_WORKSPACE}\n  managed_services_key_id = \"{id}\"\n}}\n"
        ));
    }
    let w = workdir(&sb, &body);
    let before = all_requests(&sb);
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0, "a hostile id must fail the plan: {diags:?}");
    let errs = errors(&diags);
    for id in hostile {
        let line = w.line_of(&format!("managed_services_key_id = \"{id}\""));
        assert!(
            errs.iter()
                .any(|(l, m)| *l == line && m.contains("CMK014") && !m.contains("Some(")),
            "no CMK014 error on line {line} ({id}): {errs:?}"
        );
    }
    assert_eq!(
        all_requests(&sb) - before,
        0,
        "the plan sent requests to the sandbox"
    );
}

/// Workspace ids are positive integers, in arguments and in import ids;
/// key configuration import ids are UUIDs (or <account>/<uuid>).
#[test]
fn hostile_workspace_and_import_ids_are_refused_before_any_request() {
    if !enabled("hostile_workspace_and_import_ids_are_refused_before_any_request") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        "data \"cmk_workspace\" \"zero\" {\n  workspace_id = 0\n}\ndata \"cmk_encryption_coverage\" \"neg\" {\n  workspace_id = -2234567890123456\n}\nresource \"cmk_workspace_binding\" \"b\" {\n  workspace_id = -1\n}\nresource \"cmk_key_configuration\" \"k\" {\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = { key_arn = \"arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555\" }\n}\n",
    );
    let before = all_requests(&sb);
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0);
    let errs = errors(&diags);
    for needle in [
        "workspace_id = 0",
        "workspace_id = -2234567890123456",
        "workspace_id = -1",
    ] {
        let line = w.line_of(needle);
        assert!(
            errs.iter()
                .any(|(l, m)| *l == line && m.contains("positive integers")),
            "no error on line {line} ({needle}): {errs:?}"
        );
    }
    assert_eq!(all_requests(&sb) - before, 0, "the plan sent requests");

    // Import ids.
    for (address, id) in [
        ("cmk_key_configuration.k", ".."),
        ("cmk_key_configuration.k", "%2e%2e"),
        ("cmk_key_configuration.k", "../../_sandbox/state"),
        (
            "cmk_key_configuration.k",
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98?x=1",
        ),
        (
            "cmk_workspace_binding.b",
            "1234567890123456/../2234567890123456",
        ),
        ("cmk_workspace_binding.b", "0"),
    ] {
        let before = all_requests(&sb);
        let o = w.run(&["import", "-input=false", "-no-color", address, id]);
        assert_ne!(o.code, 0, "import {address} {id:?} must fail:\n{}", o.all());
        assert!(o.all().contains("Invalid import id"), "{}", o.all());
        assert_eq!(all_requests(&sb) - before, 0, "import {id:?} sent requests");
    }
}

/// Issue 10: `DATABRICKS_ACCOUNT_ID=<uuid>/workspaces/2234567890123456?`
/// made the lookup of one workspace return another. An account id from the
/// environment is checked like the argument, and the message names the
/// variable.
#[test]
fn hostile_account_id_from_the_environment_is_refused_before_any_request() {
    if !enabled("hostile_account_id_from_the_environment_is_refused_before_any_request") {
        return;
    }
    let sb = Sandbox::start();
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  host                    = "{url}"
  workspace_host_template = "{url}/_ws/{{deployment_name}}"
}}
data "cmk_workspace" "prod" {{
  workspace_id = {PROD_WORKSPACE}
}}
"#,
        url = sb.url
    ));
    w.env.extend(oauth_env());
    w.env.push((
        "DATABRICKS_ACCOUNT_ID".into(),
        format!("{ACCOUNT_ID}/workspaces/2234567890123456?"),
    ));
    let before = all_requests(&sb);
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0);
    let errs = errors(&diags);
    assert!(
        errs.iter()
            .any(|(_, m)| m.contains("DATABRICKS_ACCOUNT_ID") && m.contains("UUID")),
        "{errs:?}"
    );
    assert_eq!(all_requests(&sb) - before, 0, "the plan sent requests");

    // The same variable with the account's id works (the test is not
    // failing for another reason).
    w.env.pop();
    w.env
        .push(("DATABRICKS_ACCOUNT_ID".into(), ACCOUNT_ID.to_string()));
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "{diags:?}");
}

/// Issue 10: `rate_limit = 1e-30` (or `DATABRICKS_RATE_LIMIT=1e-30`,
/// `1e-19`) panicked the plugin and Terraform said only "Request
/// cancelled". Out-of-range settings are errors naming the argument or the
/// variable.
#[test]
fn out_of_range_settings_are_errors_naming_the_setting() {
    if !enabled("out_of_range_settings_are_errors_naming_the_setting") {
        return;
    }
    let sb = Sandbox::start();
    let data =
        format!("data \"cmk_workspace\" \"prod\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n");
    let provider = |extra: &str| {
        format!(
            r#"{CMK_HEADER}
provider "cmk" {{
  host                    = "{url}"
  account_id              = "{ACCOUNT_ID}"
  workspace_host_template = "{url}/_ws/{{deployment_name}}"
  {extra}
}}
{data}"#,
            url = sb.url
        )
    };
    for (extra, var, needle) in [
        ("rate_limit = 1e-30", None, "rate_limit"),
        (
            "workspace_poll_interval_seconds = 1e9",
            None,
            "workspace_poll_interval_seconds",
        ),
        (
            "",
            Some(("DATABRICKS_RATE_LIMIT", "1e-30")),
            "DATABRICKS_RATE_LIMIT",
        ),
        (
            "",
            Some(("DATABRICKS_RATE_LIMIT", "1e-19")),
            "DATABRICKS_RATE_LIMIT",
        ),
        (
            "",
            Some(("DATABRICKS_HTTP_TIMEOUT_SECONDS", "0")),
            "DATABRICKS_HTTP_TIMEOUT_SECONDS",
        ),
    ] {
        let mut w = Workdir::new(&provider(extra));
        w.env.extend(oauth_env());
        if let Some((k, v)) = var {
            w.env.push((k.into(), v.into()));
        }
        let o = w.run(&["plan", "-input=false", "-no-color"]);
        let all = o.all();
        assert_ne!(o.code, 0, "{extra} {var:?}: the plan must fail:\n{all}");
        assert!(all.contains(needle), "{extra} {var:?}: {all}");
        assert!(
            !all.contains("panicked") && !all.contains("Request cancelled"),
            "{extra} {var:?}: {all}"
        );
    }
}

/// A `terraform` run in its own process group (as a shell runs a
/// foreground job), its output lines on a channel.
struct GroupRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    output: String,
}

impl GroupRun {
    fn start(mut cmd: Command) -> GroupRun {
        let mut child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform");
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx.send(l)))
        });
        std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx2.send(l)))
        });
        GroupRun {
            child,
            lines: rx,
            output: String::new(),
        }
    }

    /// Reads output until a line contains `needle` (a hang guard of
    /// `limit`, not a timing goal).
    fn wait_for(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("never saw {needle:?}:\n{}", self.output));
            self.output.push_str(&line);
            self.output.push('\n');
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Ctrl-C as a terminal sends it: SIGINT to every process of the group.
    fn interrupt_group(&self) {
        let pgid = self.child.id();
        let ok = Command::new("kill")
            .args(["-INT", "--", &format!("-{pgid}")])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -INT -{pgid}");
    }

    /// Waits for the exit (hang guard `limit`) and collects the rest of the output.
    fn finish(&mut self, limit: Duration) -> std::process::ExitStatus {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                // The whole group, so that no provider outlives the test.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", self.child.id())])
                    .status();
                let _ = self.child.wait();
                panic!("terraform did not stop:\n{}", self.output);
            }
            while let Ok(l) = self.lines.try_recv() {
                self.output.push_str(&l);
                self.output.push('\n');
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(l) = self.lines.try_recv() {
            self.output.push_str(&l);
            self.output.push('\n');
        }
        status
    }
}

/// The process group of a process, from /proc.
fn pgid_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Issue 10: Ctrl-C in a terminal reaches the whole process group; when the
/// provider got SIGINT before Terraform's StopProvider it stopped taking
/// RPCs, the StopProvider was lost, and the apply waited out its create.
/// Now the provider ignores SIGINT (as go-plugin servers do), acts on
/// StopProvider, and the interrupted create ends at once.
#[test]
fn ctrl_c_to_the_process_group_stops_the_apply() {
    if !enabled("ctrl_c_to_the_process_group_stops_the_apply") {
        return;
    }
    let w = Workdir::with_providers(
        r#"terraform {
  required_providers {
    sleep = { source = "example/sleep" }
  }
}
resource "sleep_wait" "long" {
  seconds = 600
}
"#,
        &[(
            "example/sleep",
            "terraform-provider-sleep",
            example_bin("sleep_provider"),
        )],
    );
    let mut run =
        GroupRun::start(w.command(&["apply", "-auto-approve", "-input=false", "-no-color"]));
    run.wait_for("sleep_wait.long: Creating...", Duration::from_secs(120));
    // "Creating..." comes just before ApplyResourceChange is sent: let the create begin.
    std::thread::sleep(Duration::from_secs(1));
    let pids = w.provider_pids();
    assert_eq!(pids.len(), 1, "one provider process runs the create");
    assert_eq!(
        pgid_of(pids[0]),
        run.child.id(),
        "the provider is in terraform's process group, so it gets the Ctrl-C too"
    );
    // The race of issue 10, made certain: the provider's SIGINT lands
    // first, then Ctrl-C reaches the whole group (the provider again, and
    // Terraform, which sends StopProvider).
    let ok = Command::new("kill")
        .args(["-INT", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    std::thread::sleep(Duration::from_millis(500));
    run.interrupt_group();
    // A hang guard well below the 600 s create: without StopProvider the
    // apply would run until then.
    let status = run.finish(Duration::from_secs(120));
    assert!(
        !status.success(),
        "an interrupted apply fails:\n{}",
        run.output
    );
    assert!(run.output.contains("Interrupt received"), "{}", run.output);
    assert!(
        run.output.contains("Wait interrupted"),
        "the provider acted on StopProvider:\n{}",
        run.output
    );
    assert!(!run.output.contains("Creation complete"), "{}", run.output);
    let state = w.run(&["state", "list"]);
    assert!(
        !state.stdout.contains("sleep_wait.long"),
        "{}",
        state.stdout
    );
}
