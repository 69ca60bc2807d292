//! Issue 13: the key policies of Databricks' public configurations, given
//! to this provider's `cmk_kms_key` as a custom `policy`, pass `terraform
//! plan` (real terraform, the built provider, moto's KMS server); the
//! reference architecture's storage policy shows the CMK021 warning naming
//! the grants statement Databricks' guide adds; a broken neighbour fails.

use crate::harness::{enabled, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;

const DATABRICKS_ACCOUNT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";
const ROLE: &str = "arn:aws:iam::123456789012:role/sra-cross-account";

/// The reference architecture's keys (storage: DBFS statement with the
/// account tag and the cross-account role's EBS statement, no grants
/// statement; managed services: Encrypt and Decrypt with the tag), and one
/// key for both use cases with the statements of Databricks' guide.
fn config(m: &MotoServer, ms_actions: &str) -> String {
    format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  aws_region   = "us-east-1"
  kms_endpoint = "{endpoint}"
}}

locals {{
  admin = {{ Sid = "Enable IAM User Permissions", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::123456789012:root" }}, Action = "kms:*", Resource = "*" }}
  tag   = {{ StringEquals = {{ "aws:PrincipalTag/DatabricksAccountId" = ["{DATABRICKS_ACCOUNT}"] }} }}
  ebs   = {{ Sid = "Allow Databricks to use KMS key for EBS", Effect = "Allow", Principal = {{ AWS = "{ROLE}" }}, Action = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"], Resource = "*", Condition = {{ "ForAnyValue:StringLike" = {{ "kms:ViaService" = "ec2.*.amazonaws.com" }} }} }}
}}

resource "cmk_kms_key" "workspace_storage" {{
  use_cases              = ["STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "{DATABRICKS_ACCOUNT}"
  cross_account_role_arn = "{ROLE}"
  alias                  = "alias/sra-workspace-storage"
  policy = jsonencode({{
    Version = "2012-10-17"
    Id      = "key-policy-workspace-storage"
    Statement = [
      local.admin,
      {{ Sid = "Allow Databricks to use KMS key for DBFS", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}, Action = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], Resource = "*", Condition = local.tag }},
      local.ebs,
    ]
  }})
}}

resource "cmk_kms_key" "managed_services" {{
  use_cases             = ["MANAGED_SERVICES"]
  aws_account_id        = "123456789012"
  databricks_account_id = "{DATABRICKS_ACCOUNT}"
  alias                 = "alias/sra-managed-services"
  policy = jsonencode({{
    Version = "2012-10-17"
    Id      = "key-policy-managed-services"
    Statement = [
      local.admin,
      {{ Sid = "Allow Databricks to use KMS key for managed services in the control plane", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}, Action = [{ms_actions}], Resource = "*", Condition = local.tag }},
    ]
  }})
}}

resource "cmk_kms_key" "both" {{
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  cross_account_role_arn = "{ROLE}"
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      local.admin,
      {{ Sid = "Managed services", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}, Action = ["kms:Encrypt", "kms:Decrypt"], Resource = "*" }},
      {{ Sid = "DBFS", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}, Action = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], Resource = "*" }},
      {{ Sid = "DBFS grants", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}, Action = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], Resource = "*", Condition = {{ Bool = {{ "kms:GrantIsForAWSResource" = "true" }} }} }},
      local.ebs,
    ]
  }})
}}
"#,
        endpoint = m.endpoint
    )
}

/// `terraform plan -json`: exit code and the diagnostics.
fn plan(w: &Workdir, m: &MotoServer) -> (i32, Vec<serde_json::Value>, String) {
    let o = w
        .command(&[
            "plan",
            "-json",
            "-no-color",
            "-input=false",
            "-detailed-exitcode",
        ])
        .envs(m.env())
        .env("AWS_ENDPOINT_URL_STS", &m.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run terraform");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let diags = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "diagnostic")
        .map(|v| v["diagnostic"].clone())
        .collect();
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), diags, all)
}

#[test]
fn reference_policies_through_cmk_kms_key_pass_plan() {
    if !enabled("reference_policies_through_cmk_kms_key_pass_plan") {
        return;
    }
    let m = MotoServer::start();
    let w = Workdir::new(&config(&m, "\"kms:Encrypt\", \"kms:Decrypt\""));
    let (code, diags, all) = plan(&w, &m);
    // 2: the plan succeeded with changes (three keys to create).
    assert_eq!(code, 2, "{all}");
    let errors: Vec<_> = diags.iter().filter(|d| d["severity"] == "error").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // One warning: the reference architecture's storage key lacks the
    // grants statement of Databricks' guide, named in the warning.
    let warnings: Vec<_> = diags
        .iter()
        .filter(|d| {
            d["severity"] == "warning"
                && d["summary"].as_str().unwrap_or_default().contains("CMK021")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{diags:#?}");
    let detail = warnings[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("AllowDatabricksStorageGrants") && detail.contains("kms:CreateGrant"),
        "{:#}",
        warnings[0]
    );
    // On that key (Terraform names the resource in the diagnostic).
    assert!(
        warnings[0].to_string().contains("workspace_storage"),
        "{:#}",
        warnings[0]
    );

    // The broken neighbour: the managed-services statement without Decrypt.
    w.write("main.tf", &config(&m, "\"kms:Encrypt\""));
    let (code, diags, all) = plan(&w, &m);
    assert_eq!(code, 1, "{all}");
    let err = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap_or_else(|| panic!("an error: {diags:#?}"));
    assert!(
        err["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("CMK015"),
        "{err:#}"
    );
    assert!(
        err["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("kms:Decrypt"),
        "{err:#}"
    );
    assert!(err.to_string().contains("managed_services"), "{err:#}");
    let n = m.boto3("us-east-1", "print(len(kms.list_keys()['Keys']))");
    assert_eq!(n, "0", "a plan creates nothing");
}
