//! Schema versions through the real Terraform CLI: state written under
//! schema version 0 (before the `timeouts` blocks) plans with no changes and
//! is rewritten at version 1; a state of a newer version is refused; our
//! rendered schema is what `terraform providers schema -json` shows; and a
//! resource's `timeouts` duration overrides the provider's setting.

use std::time::{Duration, Instant};

use serde_json::Value as J;

use crate::harness::{enabled, provider_bin, validate_diagnostics, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;
use crate::sandbox::{oauth_env, Sandbox, PROD_WORKSPACE};

const US_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

fn state(w: &Workdir) -> J {
    let text = std::fs::read_to_string(w.path().join("terraform.tfstate")).expect("a state file");
    serde_json::from_str(&text).unwrap()
}

/// `(type, schema_version, attributes)` of every instance in the state.
fn instances(s: &J) -> Vec<(String, i64, J)> {
    let mut out = vec![];
    for r in s["resources"].as_array().into_iter().flatten() {
        for i in r["instances"].as_array().into_iter().flatten() {
            out.push((
                r["type"].as_str().unwrap_or_default().to_string(),
                i["schema_version"].as_i64().unwrap_or(-1),
                i["attributes"].clone(),
            ));
        }
    }
    out
}

/// Rewrites the state as a provider of schema `version` 0 wrote it: each
/// instance at `version`, without the attributes `drop` (what version 0
/// did not have); serial bumped, lineage unchanged, as Terraform does.
fn rewrite_state(w: &Workdir, version: i64, drop: &[&str]) {
    let mut s = state(w);
    for r in s["resources"].as_array_mut().unwrap() {
        for i in r["instances"].as_array_mut().unwrap() {
            i["schema_version"] = J::from(version);
            let attrs = i["attributes"].as_object_mut().unwrap();
            for d in drop {
                attrs.remove(*d);
            }
        }
    }
    s["serial"] = J::from(s["serial"].as_i64().unwrap() + 1);
    std::fs::write(
        w.path().join("terraform.tfstate"),
        serde_json::to_string_pretty(&s).unwrap(),
    )
    .unwrap();
}

/// State of version 0 plans with no changes; a refresh-only apply writes
/// it at version 1, with `timeouts` null; a state of version 2 is refused.
fn upgrade_from_version_zero(w: &Workdir, types: &[&str]) {
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let before = state(w);
    let found: Vec<_> = instances(&before);
    assert_eq!(found.len(), types.len(), "{before}");
    for (ty, v, attrs) in &found {
        assert_eq!(*v, 1, "{ty} is written at schema version 1");
        assert!(
            attrs.get("timeouts").is_some_and(J::is_null),
            "{ty}: {attrs}"
        );
    }
    let lineage = before["lineage"].clone();

    rewrite_state(w, 0, &["timeouts"]);
    for (ty, v, attrs) in instances(&state(w)) {
        assert_eq!(v, 0, "{ty}");
        assert!(attrs.get("timeouts").is_none(), "{ty}: {attrs}");
    }
    let plan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        plan.code,
        0,
        "state of schema version 0 plans with no changes:\n{}",
        plan.all()
    );
    assert!(plan.all().contains("No changes."), "{}", plan.all());

    w.run(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
    ])
    .ok();
    let after = state(w);
    assert_eq!(after["lineage"], lineage);
    let upgraded = instances(&after);
    let mut seen: Vec<&str> = upgraded.iter().map(|(t, _, _)| t.as_str()).collect();
    seen.sort();
    let mut want = types.to_vec();
    want.sort();
    assert_eq!(seen, want);
    for (ty, v, attrs) in &upgraded {
        assert_eq!(*v, 1, "{ty}: the refresh wrote the upgraded state");
        assert!(
            attrs.get("timeouts").is_some_and(J::is_null),
            "{ty}: {attrs}"
        );
    }
    let plan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(plan.code, 0, "{}", plan.all());

    // A state from a provider newer than this one: Terraform itself
    // compares the version with our schema's and refuses before asking the
    // provider (which refuses too: the layer's tests send it such a state).
    rewrite_state(w, 2, &[]);
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(plan.code, 0, "{}", plan.all());
    let said = plan.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("managed by newer provider version")
            && said.contains("Upgrade the cmk provider"),
        "{said}"
    );
}

#[test]
fn databricks_state_of_schema_version_zero_plans_no_changes_and_upgrades() {
    if !enabled("databricks_state_of_schema_version_zero_plans_no_changes_and_upgrades") {
        return;
    }
    let sb = Sandbox::start();
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
{}
resource "cmk_key_configuration" "storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id   = {PROD_WORKSPACE}
  storage_key_id = cmk_key_configuration.storage.customer_managed_key_id
}}
"#,
        sb.provider_block()
    ));
    w.env.extend(oauth_env());
    upgrade_from_version_zero(&w, &["cmk_key_configuration", "cmk_workspace_binding"]);
}

#[test]
fn kms_key_state_of_schema_version_zero_plans_no_changes_and_upgrades() {
    if !enabled("kms_key_state_of_schema_version_zero_plans_no_changes_and_upgrades") {
        return;
    }
    let m = MotoServer::start();
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  aws_region   = "us-east-1"
  kms_endpoint = "{}"
}}
resource "cmk_kms_key" "k" {{
  use_cases             = ["MANAGED_SERVICES"]
  databricks_account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  alias                 = "alias/schema-upgrade"
}}
"#,
        m.endpoint
    ));
    w.env
        .extend(m.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    w.env
        .push(("AWS_ENDPOINT_URL_STS".into(), m.endpoint.clone()));
    w.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    upgrade_from_version_zero(&w, &["cmk_kms_key"]);
}

/// What our renderer makes of the schema (`terraform-provider-cmk
/// schema`, from which the recorded release schemas are written) is what
/// Terraform shows, normalized the same way.
#[test]
fn our_rendered_schema_is_terraforms() {
    if !enabled("our_rendered_schema_is_terraforms") {
        return;
    }
    let w = Workdir::new(CMK_HEADER);
    let v = w.json(&["providers", "schema", "-json"]);
    let theirs = cmk::tfplugin::compat::normalize(
        &v["provider_schemas"]["registry.terraform.io/databricks-cmk/cmk"],
    );
    let out = std::process::Command::new(provider_bin())
        .arg("schema")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(
        theirs["resource_schemas"]["cmk_kms_key"]["block"]["block_types"]["timeouts"]
            ["nesting_mode"],
        "single"
    );
    assert_eq!(theirs["resource_schemas"]["cmk_kms_key"]["version"], 1);
}

fn sandbox_workdir(sb: &Sandbox, timeouts: &str) -> Workdir {
    // The provider's own budget is long (120 s); the resource's is short.
    let provider = sb
        .provider_block()
        .trim_end()
        .trim_end_matches('}')
        .to_string()
        + "  retry_timeout_seconds = 120\n}\n";
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
{provider}
resource "cmk_key_configuration" "k" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
{timeouts}
}}
"#
    ));
    w.env.extend(oauth_env());
    w
}

/// A create throttled without end: with `timeouts { create = "3s" }` it
/// fails within about 3 s naming `timeouts.create`, where the provider's
/// retry_timeout_seconds (120) would keep retrying; nothing is left
/// untracked. With the throttling over, the same configuration applies and
/// its block plans no changes.
#[test]
fn a_resource_create_timeout_overrides_the_provider_budget() {
    if !enabled("a_resource_create_timeout_overrides_the_provider_budget") {
        return;
    }
    let sb = Sandbox::start();
    let w = sandbox_workdir(&sb, "  timeouts {\n    create = \"3s\"\n  }");
    // Planned before the throttling starts: only the create meets it.
    w.run(&["plan", "-input=false", "-no-color", "-out", "p.bin"])
        .ok();
    let (status, body) = sb.admin(
        "PUT",
        "/_sandbox/faults",
        r#"{"throttle_rate": 1.0, "retry_after_seconds": 1, "path_prefix": "/api/2.0/accounts"}"#,
    );
    assert!(status < 300, "faults: {status} {body}");
    let t0 = Instant::now();
    let o = w.run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "p.bin",
    ]);
    let took = t0.elapsed();
    assert_ne!(o.code, 0, "{}", o.all());
    let said = o.all().split_whitespace().collect::<Vec<_>>().join(" ");
    // The client stops retrying when the next attempt would not fit in the
    // 3 s, and says whose time it was.
    assert!(
        said.contains("the time the resource's timeouts.create allows"),
        "{said}"
    );
    assert!(said.contains("429"), "{said}");
    // About 3 s of the create (and terraform's own start), far below 120 s.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(40),
        "took {took:?}:\n{said}"
    );
    assert_eq!(
        sb.creates_committed(),
        0,
        "throttled creates commit nothing"
    );

    let (status, body) = sb.admin("DELETE", "/_sandbox/faults", "");
    assert!(status < 300, "faults off: {status} {body}");
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    assert_eq!(sb.creates_committed(), 1);
    let (_, _, attrs) = instances(&state(&w)).remove(0);
    assert_eq!(attrs["timeouts"]["create"], "3s");
    let plan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
}

/// A duration that is not one is refused at validate (so at plan), on
/// `timeouts.create`, naming the accepted forms.
#[test]
fn an_invalid_duration_is_an_error_on_its_argument() {
    if !enabled("an_invalid_duration_is_an_error_on_its_argument") {
        return;
    }
    let sb = Sandbox::start();
    let w = sandbox_workdir(&sb, "  timeouts {\n    create = \"3 minutes\"\n  }");
    let diags = validate_diagnostics(&w);
    let d = diags
        .iter()
        .find(|d| d["summary"] == "Invalid duration for timeouts.create")
        .unwrap_or_else(|| panic!("{diags:?}"));
    assert_eq!(d["severity"], "error");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"3 minutes\"")
            && detail.contains("\"1h30m\"")
            && detail.contains("\"90s\""),
        "{detail}"
    );
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of("create = \"3 minutes\"")),
        "{d}"
    );
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(plan.code, 0);
    assert!(plan.all().contains("timeouts.create"), "{}", plan.all());
}
