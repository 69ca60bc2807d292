//! What a released provider does for its users, through the real CLI: logs
//! that Terraform levels and filters, the install through a
//! `filesystem_mirror`, and the `dashboard_protected` function.

use crate::harness::{enabled, plan_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{Sandbox, TOKEN};

const US_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

/// The lines of Terraform's log file written by our provider.
fn provider_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("provider.terraform-provider-cmk"))
        .collect()
}

#[test]
fn terraform_levels_and_filters_the_providers_log_lines() {
    if !enabled("terraform_levels_and_filters_the_providers_log_lines") {
        return;
    }
    let sb = Sandbox::start();
    let mut w = Workdir::new(&format!(
        "{CMK_HEADER}\n{}\nresource \"cmk_key_configuration\" \"k\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{ key_arn = \"{US_KEY}\" }}\n}}\n",
        sb.provider_block()
    ));
    w.env.push(("DATABRICKS_TOKEN".into(), TOKEN.into()));
    let run_logged = |level: &str, args: &[&str]| -> String {
        let path = w.path().join(format!("terraform-{level}.log"));
        let _ = std::fs::remove_file(&path);
        let o = w
            .command(args)
            .env("TF_LOG_PROVIDER", level)
            .env("TF_LOG_PATH", &path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };

    // info: our info lines at INFO, with their fields; none of our debug lines.
    let log = run_logged(
        "info",
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    let ours = provider_lines(&log);
    let created = ours
        .iter()
        .find(|l| l.contains("created key configuration"))
        .unwrap_or_else(|| panic!("no info line of ours in the log:\n{log}"));
    assert!(created.contains("[INFO]"), "{created}");
    assert!(
        created.contains("@module=cmk.cloud.databricks.client"),
        "{created}"
    );
    assert!(created.contains("customer_managed_key_id="), "{created}");
    assert!(
        !ours
            .iter()
            .any(|l| l.contains("[DEBUG]") || l.contains("Databricks call")),
        "debug lines passed TF_LOG_PROVIDER=info:\n{}",
        ours.join("\n")
    );
    // Our lines are never raw JSON (which Terraform would log at DEBUG).
    assert!(!log.contains("\"@level\""), "{log}");

    // debug: one line per Account API call, with method, path, status,
    // duration and retries, at DEBUG.
    let log = run_logged("debug", &["plan", "-input=false", "-no-color"]);
    let call = provider_lines(&log)
        .into_iter()
        .find(|l| l.contains("Databricks call") && l.contains("/customer-managed-keys/"))
        .unwrap_or_else(|| panic!("no debug line for the refresh call:\n{log}"));
    assert!(call.contains("[DEBUG]"), "{call}");
    for field in [
        "method=GET",
        "path=/api/2.0/accounts/",
        "status=200",
        "duration_ms=",
        "retries=0",
    ] {
        assert!(call.contains(field), "{field} missing: {call}");
    }

    // trace: everything, and still no credential.
    let log = run_logged("trace", &["plan", "-input=false", "-no-color"]);
    assert!(
        log.contains("Databricks answer"),
        "trace lines were written"
    );
    assert!(
        !log.contains(TOKEN),
        "the Databricks token reached Terraform's log"
    );
}

#[test]
fn dashboard_protected_answers_from_the_rule_engines_cutoff() {
    if !enabled("dashboard_protected_answers_from_the_rule_engines_cutoff") {
        return;
    }
    let w = Workdir::new(&format!(
        r#"{CMK_HEADER}
output "last_day" {{ value = provider::cmk::dashboard_protected("2024-11-01T23:59:59Z") }}
output "next_day" {{ value = provider::cmk::dashboard_protected("2024-11-02T00:00:00Z") }}
output "new_york" {{ value = provider::cmk::dashboard_protected("2024-11-01T20:00:00-05:00") }}
"#
    ));
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let out = w.json(&["output", "-json"]);
    assert_eq!(out["last_day"]["value"], false);
    assert_eq!(out["next_day"]["value"], true);
    assert_eq!(out["new_york"]["value"], true);

    let bad = Workdir::new(&format!(
        "{CMK_HEADER}\noutput \"x\" {{ value = provider::cmk::dashboard_protected(\"2024-11-05\") }}\n"
    ));
    let (code, diags) = plan_diagnostics(&bad);
    assert_ne!(code, 0);
    let text = serde_json::to_string(&diags).unwrap();
    assert!(
        text.contains("is not an RFC 3339 timestamp") && text.contains("create_time"),
        "{text}"
    );
}
