//! Hostile input, interruptions and faults (issue 10), through the real
//! `terraform` CLI, the built provider and cmk-sandbox.

use crate::harness::{enabled, plan_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{oauth_env, Sandbox, ACCOUNT_ID, PROD_WORKSPACE};

/// A working directory for the sandbox (OAuth client credentials from the environment).
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
