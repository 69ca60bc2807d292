//! Provider functions through Terraform.

use crate::harness::{enabled, plan_diagnostics, Workdir, CMK_HEADER};

#[test]
fn functions_answer_from_the_catalog_and_the_arn() {
    if !enabled("functions_answer_from_the_catalog_and_the_arn") {
        return;
    }
    let w = Workdir::new(&format!(
        r#"{CMK_HEADER}
output "dbfs_root" {{ value = provider::cmk::key_features("dbfs_root") }}
output "secrets" {{ value = provider::cmk::key_features("secrets") }}
output "both" {{ value = provider::cmk::key_features("interactive_notebook_results") }}
output "none" {{ value = provider::cmk::key_features("model_serving_image") }}
output "arn" {{ value = provider::cmk::parse_key_arn("arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab") }}
"#
    ));
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let out = w.json(&["output", "-json"]);
    assert_eq!(out["dbfs_root"]["value"], serde_json::json!(["STORAGE"]));
    assert_eq!(
        out["secrets"]["value"],
        serde_json::json!(["MANAGED_SERVICES"])
    );
    assert_eq!(
        out["both"]["value"],
        serde_json::json!(["MANAGED_SERVICES", "STORAGE"])
    );
    assert_eq!(out["none"]["value"], serde_json::json!([]));
    assert_eq!(
        out["arn"]["value"],
        serde_json::json!({
            "partition": "aws",
            "region": "eu-west-1",
            "account_id": "123456789012",
            "key_id": "mrk-1234abcd12ab34cd56ef1234567890ab",
            "multi_region": true
        })
    );
}

#[test]
fn function_errors_say_what_is_wrong() {
    if !enabled("function_errors_say_what_is_wrong") {
        return;
    }
    let cases = [
        (
            "provider::cmk::key_features(\"dbfs\")",
            "unknown data type \"dbfs\"; valid data types: ai_bi_dashboards",
        ),
        (
            "provider::cmk::parse_key_arn(\"arn:aws:kms:us-east-1:123456789012:alias/db\")",
            "alias ARN",
        ),
        (
            "provider::cmk::parse_key_arn(\"not-an-arn\")",
            "is not an ARN",
        ),
    ];
    for (call, want) in cases {
        let w = Workdir::new(&format!(
            "{CMK_HEADER}\noutput \"x\" {{ value = {call} }}\n"
        ));
        let (code, diags) = plan_diagnostics(&w);
        assert_ne!(code, 0, "{call} must fail");
        let d = diags
            .iter()
            .find(|d| d["severity"] == "error")
            .unwrap_or_else(|| panic!("{call}: {diags:?}"));
        let text = format!(
            "{} {}",
            d["summary"].as_str().unwrap_or_default(),
            d["detail"].as_str().unwrap_or_default()
        );
        assert!(text.contains(want), "{call}: {text}");
        assert_eq!(
            d["range"]["start"]["line"].as_u64(),
            Some(w.line_of("output \"x\"")),
            "{d}"
        );
        assert_eq!(d["range"]["filename"], "main.tf", "{d}");
    }
}
