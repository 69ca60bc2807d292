//! GovCloud, through the real terraform CLI: the quickstart's GovCloud form
//! (`examples/quickstart/govcloud`) against moto in `us-gov-west-1` and
//! cmk-sandbox seeded as GovCloud civilian. The generated key policy names
//! the deployment's Databricks principal and nothing else of Databricks.

use crate::harness::{enabled, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;
use crate::sandbox::Sandbox;

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/sandbox/seed-govcloud.json"
);
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/quickstart/govcloud/main.tf"
);
const COMMERCIAL: &str = "414351767826";
const CIVILIAN: &str = "044793339203";
const DOD: &str = "170661010020";

fn workdir(config: &str, sandbox: &Sandbox, moto: &MotoServer, deployment: &str) -> Workdir {
    let mut w = Workdir::new(config);
    w.env = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    w.env.extend([
        ("AWS_ENDPOINT_URL_STS".to_string(), moto.endpoint.clone()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        (
            "DATABRICKS_CLIENT_ID".to_string(),
            "6d2e1f0a-sp-terraform-gov".to_string(),
        ),
        (
            "DATABRICKS_CLIENT_SECRET".to_string(),
            "sandbox-gov-oauth-secret".to_string(),
        ),
        ("TF_VAR_databricks_host".to_string(), sandbox.url.clone()),
        ("TF_VAR_kms_endpoint".to_string(), moto.endpoint.clone()),
        ("TF_VAR_deployment".to_string(), deployment.to_string()),
    ]);
    w
}

/// The Databricks accounts of the table a text names.
fn databricks_accounts_in(text: &str) -> Vec<&'static str> {
    [COMMERCIAL, CIVILIAN, DOD]
        .into_iter()
        .filter(|a| text.contains(a))
        .collect()
}

#[test]
fn govcloud_quickstart_applies_with_the_shards_principal_and_replans_empty() {
    if !enabled("govcloud_quickstart_applies_with_the_shards_principal_and_replans_empty") {
        return;
    }
    let moto = MotoServer::start();
    let sandbox = Sandbox::start_with(SEED);
    let config = std::fs::read_to_string(EXAMPLE).unwrap();

    // GovCloud civilian: plan, apply, empty re-plan.
    let w = workdir(&config, &sandbox, &moto, "govcloud-civilian");
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    plan.ok();
    assert!(
        plan.stdout.contains("Plan: 3 to add"),
        "the plan:\n{}",
        plan.all()
    );
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let policy = w.run(&["output", "-raw", "key_policy"]);
    policy.ok();
    assert!(
        policy
            .stdout
            .contains(&format!("arn:aws-us-gov:iam::{CIVILIAN}:root")),
        "{}",
        policy.stdout
    );
    assert_eq!(
        databricks_accounts_in(&policy.stdout),
        [CIVILIAN],
        "nothing else of Databricks: {}",
        policy.stdout
    );
    let arn = w.run(&["output", "-raw", "key_arn"]);
    assert!(
        arn.stdout.starts_with("arn:aws-us-gov:kms:us-gov-west-1:"),
        "{}",
        arn.stdout
    );
    // The key in KMS has the policy the plan showed.
    let in_kms = moto.boto3(
        "us-gov-west-1",
        &format!(
            "print(kms.get_key_policy(KeyId={:?}, PolicyName='default')['Policy'])",
            arn.stdout.trim()
        ),
    );
    assert_eq!(databricks_accounts_in(&in_kms), [CIVILIAN], "{in_kms}");
    let replan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(replan.code, 0, "the re-plan is empty:\n{}", replan.all());
    // The sandbox, seeded as GovCloud civilian, took the key configuration.
    let state = w.json(&["show", "-json"]);
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap();
    let binding = resources
        .iter()
        .find(|r| r["type"] == "cmk_workspace_binding")
        .expect("the binding in state");
    assert!(
        binding["values"]["storage_key_id"].is_string(),
        "{binding:#}"
    );

    // GovCloud DoD: the same configuration, for a workspace whose storage
    // key is not set yet (a sandbox of its own), plans the DoD principal.
    let fresh = Sandbox::start_with(SEED);
    let dod = workdir(&config, &fresh, &moto, "govcloud-dod");
    dod.run(&["plan", "-input=false", "-no-color", "-out=tfplan"])
        .ok();
    let planned = dod.run(&["show", "-json", "tfplan"]);
    planned.ok();
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    let key = plan["planned_values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "cmk_kms_key")
        .expect("the key in the plan")
        .clone();
    let dod_policy = key["values"]["policy"].as_str().expect("a known policy");
    assert!(
        dod_policy.contains(&format!("arn:aws-us-gov:iam::{DOD}:root")),
        "{dod_policy}"
    );
    assert_eq!(databricks_accounts_in(dod_policy), [DOD], "{dod_policy}");
}

/// A hand-written GovCloud key policy naming Databricks' commercial account
/// grants nobody at Databricks: CMK015 fails at plan, naming the principal
/// the deployment needs; and a commercial key for a GovCloud deployment is
/// CMK022. Nothing is created.
#[test]
fn a_govcloud_key_naming_the_commercial_principal_fails_at_plan() {
    if !enabled("a_govcloud_key_naming_the_commercial_principal_fails_at_plan") {
        return;
    }
    let moto = MotoServer::start();
    let sandbox = Sandbox::start_with(SEED);
    let config = format!(
        r#"{CMK_HEADER}
variable "databricks_host" {{ type = string }}
variable "kms_endpoint" {{ type = string }}
variable "deployment" {{ type = string }}

provider "cmk" {{
  host         = var.databricks_host
  deployment   = var.deployment
  account_id   = "5c2e8b41-7a9d-4f3e-b6c1-0d4a2e9f7b35"
  aws_region   = "us-gov-west-1"
  kms_endpoint = var.kms_endpoint
}}

resource "cmk_kms_key" "wrong" {{
  use_cases      = ["MANAGED_SERVICES"]
  aws_account_id = "123456789012"
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{
        Sid       = "Owner"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws-us-gov:iam::123456789012:root" }}
        Action    = "kms:*"
        Resource  = "*"
      }},
      {{
        Sid       = "Databricks"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws-us-gov:iam::{COMMERCIAL}:root" }}
        Action    = ["kms:Encrypt", "kms:Decrypt"]
        Resource  = "*"
      }},
    ]
  }})
}}

resource "cmk_key_configuration" "commercial_key" {{
  use_cases = ["MANAGED_SERVICES"]
  aws_key_info = {{
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }}
}}
"#
    );
    let w = workdir(&config, &sandbox, &moto, "govcloud-civilian");
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    // Terraform wraps messages at spaces: read them as one line.
    let out = plan.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_ne!(plan.code, 0, "the plan must fail:\n{out}");
    assert!(out.contains("CMK015"), "{out}");
    assert!(
        out.contains(&format!("arn:aws-us-gov:iam::{CIVILIAN}:root")),
        "CMK015 names the principal GovCloud civilian needs:\n{out}"
    );
    assert!(out.contains("CMK022"), "{out}");
    assert!(
        out.contains("partition aws") && out.contains("GovCloud civilian"),
        "{out}"
    );
    // Nothing was created in KMS.
    let keys = moto.boto3("us-gov-west-1", "print(len(kms.list_keys()['Keys']))");
    assert_eq!(keys, "0", "no key was created");

    // A deployment argument that contradicts the host is refused, naming both.
    let contradicting = config.replace(
        "host         = var.databricks_host",
        "host         = \"https://accounts.cloud.databricks.com\"",
    );
    let w = workdir(&contradicting, &sandbox, &moto, "govcloud-civilian");
    let v = w.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(v.code, 0, "{}", v.all());
    let out = v.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        out.contains("Databricks deployment and host disagree")
            && out.contains("accounts.cloud.databricks.com")
            && out.contains("commercial"),
        "{out}"
    );
}

/// The policy data source needs no credentials: a GovCloud host alone names
/// the shard's principal; a GovCloud partition with no shard named is an
/// error that names both principals and the fix.
#[test]
fn the_policy_data_source_takes_the_shard_from_the_host_alone() {
    if !enabled("the_policy_data_source_takes_the_shard_from_the_host_alone") {
        return;
    }
    for (host, principal) in [
        (
            "https://accounts.cloud.databricks.us",
            format!("arn:aws-us-gov:iam::{CIVILIAN}:root"),
        ),
        (
            "https://accounts-dod.cloud.databricks.mil",
            format!("arn:aws-us-gov:iam::{DOD}:root"),
        ),
        (
            "https://accounts.cloud.databricks.com",
            format!("arn:aws:iam::{COMMERCIAL}:root"),
        ),
    ] {
        let w = Workdir::new(&format!(
            r#"{CMK_HEADER}
provider "cmk" {{
  host = "{host}"
}}

data "cmk_kms_key_policy" "p" {{
  use_cases      = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id = "123456789012"
}}

output "principal" {{ value = data.cmk_kms_key_policy.p.databricks_principal }}
output "partition" {{ value = data.cmk_kms_key_policy.p.partition }}
output "json" {{ value = data.cmk_kms_key_policy.p.json }}
"#
        ));
        w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
            .ok();
        let p = w.run(&["output", "-raw", "principal"]);
        assert_eq!(p.stdout.trim(), principal, "{host}");
        let json = w.run(&["output", "-raw", "json"]).stdout;
        assert_eq!(
            databricks_accounts_in(&json).len(),
            1,
            "{host}: one Databricks account in {json}"
        );
    }
    // No host and no deployment, GovCloud partition: refused, not guessed.
    let w = Workdir::new(&format!(
        r#"{CMK_HEADER}
data "cmk_kms_key_policy" "p" {{
  use_cases      = ["MANAGED_SERVICES"]
  aws_account_id = "123456789012"
  partition      = "aws-us-gov"
}}
"#
    ));
    let r = w.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(r.code, 0, "{}", r.all());
    let out = r.all();
    assert!(
        out.contains("partition") && out.contains("deployment") && out.contains("commercial"),
        "{out}"
    );
}

/// cmk-sandbox seeded as GovCloud civilian answers as that deployment: with
/// a provider that cannot tell the deployment (a host that names none, no
/// `deployment`), the plan has nothing to refuse, and the sandbox refuses
/// the key configuration of a commercial key at apply, as Databricks'
/// GovCloud account would; nothing is left in state.
#[test]
fn the_govcloud_sandbox_refuses_a_commercial_key() {
    if !enabled("the_govcloud_sandbox_refuses_a_commercial_key") {
        return;
    }
    let sandbox = Sandbox::start_with(SEED);
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  host       = "{}"
  account_id = "5c2e8b41-7a9d-4f3e-b6c1-0d4a2e9f7b35"
}}

resource "cmk_key_configuration" "commercial_key" {{
  use_cases = ["MANAGED_SERVICES"]
  aws_key_info = {{
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }}
}}
"#,
        sandbox.url
    ));
    w.env = vec![
        (
            "DATABRICKS_CLIENT_ID".into(),
            "6d2e1f0a-sp-terraform-gov".into(),
        ),
        (
            "DATABRICKS_CLIENT_SECRET".into(),
            "sandbox-gov-oauth-secret".into(),
        ),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    let r = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let out = r.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_ne!(r.code, 0, "{out}");
    assert!(
        out.contains("INVALID_PARAMETER_VALUE") && out.contains("GovCloud civilian"),
        "{out}"
    );
    let state = w.run(&["state", "list"]);
    assert!(
        !state.stdout.contains("cmk_key_configuration"),
        "nothing in state: {}",
        state.stdout
    );
}
