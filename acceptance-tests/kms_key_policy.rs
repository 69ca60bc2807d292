//! Data source `cmk_kms_key_policy` through Terraform.

use crate::harness::{enabled, validate_diagnostics, Workdir, CMK_HEADER};

#[test]
fn policy_is_generated_applied_and_replans_empty() {
    if !enabled("policy_is_generated_applied_and_replans_empty") {
        return;
    }
    let w = Workdir::new(&format!(
        r#"{CMK_HEADER}
data "cmk_kms_key_policy" "both" {{
  use_cases              = ["STORAGE", "MANAGED_SERVICES"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
}}

# GovCloud DoD, named by its host: the shard's own principal (never the
# commercial account in the aws-us-gov partition).
provider "cmk" {{
  alias = "dod"
  host  = "https://accounts-dod.cloud.databricks.mil"
}}

data "cmk_kms_key_policy" "gov" {{
  provider       = cmk.dod
  use_cases      = ["MANAGED_SERVICES"]
  aws_account_id = "123456789012"
  partition      = "aws-us-gov"
}}

output "both" {{ value = jsondecode(data.cmk_kms_key_policy.both.json) }}
output "both_raw" {{ value = data.cmk_kms_key_policy.both.json }}
output "gov_principal" {{ value = data.cmk_kms_key_policy.gov.databricks_principal }}
"#
    ));
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let out = w.json(&["output", "-json"]);
    let doc = &out["both"]["value"];
    let sids: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        [
            "EnableKeyOwnerAdministration",
            "AllowDatabricksManagedServices",
            "AllowDatabricksWorkspaceStorage",
            "AllowDatabricksStorageGrants",
            "AllowCrossAccountRoleClusterVolumes"
        ]
    );
    assert_eq!(
        doc["Statement"][1]["Condition"]["StringEquals"]["aws:PrincipalTag/DatabricksAccountId"][0],
        "0d26daa6-5e44-4c97-a497-ef015f91254a"
    );
    assert_eq!(
        doc["Statement"][4]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:role/databricks-cross-account"
    );
    assert_eq!(
        out["gov_principal"]["value"],
        "arn:aws-us-gov:iam::170661010020:root"
    );

    // Same input, byte-identical output: a second plan is empty.
    let raw1 = out["both_raw"]["value"].as_str().unwrap().to_string();
    let plan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(plan.code, 0, "re-plan must be empty:\n{}", plan.all());
    w.run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-refresh-only",
    ])
    .ok();
    let raw2 = w.json(&["output", "-json"])["both_raw"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(raw1, raw2);

    // The state holds the data source with its defaults filled.
    let show = w.json(&["show", "-json"]);
    let resources = show["values"]["root_module"]["resources"]
        .as_array()
        .unwrap();
    let both = resources
        .iter()
        .find(|r| r["address"] == "data.cmk_kms_key_policy.both")
        .unwrap();
    assert_eq!(both["values"]["reuse_key_for_cluster_volumes"], true);
    assert_eq!(both["values"]["partition"], "aws");
    w.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
        .ok();
}

/// Each bad input fails validation with an error on the argument at fault.
#[test]
fn bad_input_is_refused_on_the_argument() {
    if !enabled("bad_input_is_refused_on_the_argument") {
        return;
    }
    let cases: &[(&str, &str, &str)] = &[
        ("use_cases = []", "use_cases", "at least 1 value"),
        (
            "use_cases = [\"STORAGE\", \"EBS\"]",
            "use_cases",
            "\"EBS\" is not a valid value for `use_cases`",
        ),
        (
            "aws_account_id = \"1234\"",
            "aws_account_id",
            "exactly 12 digits",
        ),
        (
            "cross_account_role_arn = \"arn:aws:iam::123456789012:user/bob\"",
            "cross_account_role_arn",
            "not a role ARN",
        ),
        (
            "databricks_account_id = \"my-account\"",
            "databricks_account_id",
            "must be a UUID",
        ),
        (
            "partition = \"aws-mars\"",
            "partition",
            "Valid values: aws, aws-us-gov, aws-cn",
        ),
    ];
    for (line, arg, want) in cases {
        let mut attrs = vec![
            "use_cases = [\"STORAGE\"]".to_string(),
            "aws_account_id = \"123456789012\"".to_string(),
            "cross_account_role_arn = \"arn:aws:iam::123456789012:role/x\"".to_string(),
        ];
        attrs.retain(|a| !a.starts_with(&format!("{arg} ")));
        attrs.push(line.to_string());
        let w = Workdir::new(&format!(
            "{CMK_HEADER}\ndata \"cmk_kms_key_policy\" \"p\" {{\n  {}\n}}\n",
            attrs.join("\n  ")
        ));
        let diags = validate_diagnostics(&w);
        let d = diags
            .iter()
            .find(|d| d["severity"] == "error")
            .unwrap_or_else(|| panic!("{line}: expected an error, got {diags:?}"));
        let detail = d["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(want),
            "{line}: detail {detail:?} lacks {want:?}"
        );
        // Terraform underlines the argument: the range is its line.
        assert_eq!(
            d["range"]["start"]["line"].as_u64(),
            Some(w.line_of(&format!("{arg} ="))),
            "{line}: {d}"
        );
    }
}

/// Valid but probably unintended input gets a warning on the argument.
#[test]
fn cluster_volumes_without_role_warns() {
    if !enabled("cluster_volumes_without_role_warns") {
        return;
    }
    let w = Workdir::new(&format!(
        "{CMK_HEADER}\ndata \"cmk_kms_key_policy\" \"p\" {{\n  use_cases = [\"STORAGE\"]\n  aws_account_id = \"123456789012\"\n}}\n"
    ));
    let diags = validate_diagnostics(&w);
    let warn = diags
        .iter()
        .find(|d| d["severity"] == "warning")
        .expect("a warning");
    assert!(
        warn["detail"]
            .as_str()
            .unwrap()
            .contains("cross_account_role_arn"),
        "{warn}"
    );
}
