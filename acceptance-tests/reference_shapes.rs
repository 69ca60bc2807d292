//! Issue 13: the shapes of Databricks' public configurations through this
//! provider's own resources pass `terraform plan` (real terraform, the built
//! provider, cmk-sandbox for the Account API, moto's server for KMS):
//! `cmk_kms_key` with the reference architecture's custom `policy`,
//! `cmk_key_configuration` and `cmk_workspace_binding`, in the shapes of the
//! review corpus (acceptance-tests/fixtures/review/corpus/): the reference
//! architecture (separate STORAGE and MANAGED_SERVICES keys; a serverless
//! workspace gets no storage key, or one that does not reuse its key for
//! cluster volumes: EBS keys are rejected for serverless, CMK007),
//! one key for both use cases, keys in a module, and keys, configurations
//! and bindings with `for_each` over several workspaces. The reference
//! architecture's storage policy shows the CMK021 warning naming the grants
//! statement Databricks' guide adds; each broken neighbour fails on its rule,
//! and no plan creates anything.

use crate::harness::{enabled, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;
use crate::sandbox::{oauth_env, Sandbox, ACCOUNT_ID};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/acceptance-tests/fixtures/one_plan_seed.json"
);
const ROLE: &str = "arn:aws:iam::123456789012:role/sra-cross-account";
/// Seeded workspaces: ENTERPRISE, HYBRID, RUNNING, us-west-2, no keys yet.
const SRA_WS: i64 = 7000000000000001;
const SINGLE_WS: i64 = 7000000000000016;
const MODULE_WS: i64 = 7000000000000018;
const DEV_WS: i64 = 7000000000000011;
const PROD_WS: i64 = 7000000000000013;
/// Seeded: PREMIUM, and SERVERLESS.
const PREMIUM_WS: i64 = 7000000000000003;
const SERVERLESS_WS: i64 = 7000000000000012;

/// Statements shared by the root module and the keys module.
fn locals() -> String {
    format!(
        r#"locals {{
  dbx   = "arn:aws:iam::414351767826:root"
  admin = {{ Sid = "Enable IAM User Permissions", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::123456789012:root" }}, Action = "kms:*", Resource = "*" }}
  tag   = {{ StringEquals = {{ "aws:PrincipalTag/DatabricksAccountId" = ["{ACCOUNT_ID}"] }} }}
  ebs   = {{ Sid = "Allow Databricks to use KMS key for EBS", Effect = "Allow", Principal = {{ AWS = "{ROLE}" }}, Action = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"], Resource = "*", Condition = {{ "ForAnyValue:StringLike" = {{ "kms:ViaService" = "ec2.*.amazonaws.com" }} }} }}
  # The reference architecture's storage key policy: no grants statement.
  sra_storage_policy = jsonencode({{
    Version   = "2012-10-17"
    Id        = "key-policy-workspace-storage"
    Statement = [local.admin, {{ Sid = "Allow Databricks to use KMS key for DBFS", Effect = "Allow", Principal = {{ AWS = local.dbx }}, Action = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], Resource = "*", Condition = local.tag }}, local.ebs]
  }})
}}
"#
    )
}

/// The keys module: the reference architecture's two keys and their key
/// configurations, the configurations as outputs.
const MODULE: &str = r#"
resource "cmk_kms_key" "storage" {
  use_cases              = ["STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = var.databricks_account_id
  cross_account_role_arn = var.cross_account_role_arn
  policy                 = local.sra_storage_policy
}

resource "cmk_kms_key" "managed_services" {
  use_cases             = ["MANAGED_SERVICES"]
  aws_account_id        = "123456789012"
  databricks_account_id = var.databricks_account_id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.admin, { Sid = "Allow Databricks to use KMS key for managed services in the control plane", Effect = "Allow", Principal = { AWS = local.dbx }, Action = ["kms:Encrypt", "kms:Decrypt"], Resource = "*", Condition = local.tag }]
  })
}

resource "cmk_key_configuration" "storage" {
  use_cases    = ["STORAGE"]
  aws_key_info = { key_arn = cmk_kms_key.storage.arn }
}

resource "cmk_key_configuration" "managed_services" {
  use_cases    = ["MANAGED_SERVICES"]
  aws_key_info = { key_arn = cmk_kms_key.managed_services.arn }
}

# The storage key for serverless workspaces: EBS keys never apply there.
resource "cmk_key_configuration" "serverless_storage" {
  use_cases    = ["STORAGE"]
  aws_key_info = { key_arn = cmk_kms_key.storage.arn, reuse_key_for_cluster_volumes = false }
}

variable "databricks_account_id" {}
variable "cross_account_role_arn" {}
output "storage" { value = cmk_key_configuration.storage }
output "managed_services" { value = cmk_key_configuration.managed_services }
output "serverless_storage" { value = cmk_key_configuration.serverless_storage }
"#;

/// What each plan varies: the managed-services statement's actions of the
/// reference architecture, the for_each workspaces, the module's workspace.
struct Shape {
    ms_actions: &'static str,
    prod_ws: i64,
    module_ws: i64,
    /// The module's output bound to its workspace's storage slot.
    module_storage: &'static str,
}

const GOOD: Shape = Shape {
    ms_actions: r#""kms:Encrypt", "kms:Decrypt""#,
    prod_ws: PROD_WS,
    module_ws: MODULE_WS,
    module_storage: "storage",
};

fn config(sb: &Sandbox, m: &MotoServer, s: &Shape) -> String {
    let locals = locals();
    format!(
        r#"{CMK_HEADER}
provider "cmk" {{
  host                            = "{url}"
  account_id                      = "{ACCOUNT_ID}"
  workspace_host_template         = "{url}/_ws/{{deployment_name}}"
  workspace_poll_interval_seconds = 0.1
  aws_region                      = "us-west-2"
  kms_endpoint                    = "{endpoint}"
}}

{locals}
# Databricks' security reference architecture: separate keys and key
# configurations for STORAGE and MANAGED_SERVICES, aliases, rotation,
# reuse_key_for_cluster_volumes omitted (true), a classic workspace.
resource "cmk_kms_key" "workspace_storage" {{
  use_cases              = ["STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "{ACCOUNT_ID}"
  cross_account_role_arn = "{ROLE}"
  alias                  = "alias/sra-workspace-storage"
  policy                 = local.sra_storage_policy
}}

resource "cmk_kms_key" "managed_services" {{
  use_cases             = ["MANAGED_SERVICES"]
  aws_account_id        = "123456789012"
  databricks_account_id = "{ACCOUNT_ID}"
  alias                 = "alias/sra-managed-services"
  policy = jsonencode({{
    Version   = "2012-10-17"
    Id        = "key-policy-managed-services"
    Statement = [local.admin, {{ Sid = "Allow Databricks to use KMS key for managed services in the control plane", Effect = "Allow", Principal = {{ AWS = local.dbx }}, Action = [{ms_actions}], Resource = "*", Condition = local.tag }}]
  }})
}}

resource "cmk_key_configuration" "workspace_storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = cmk_kms_key.workspace_storage.arn, key_alias = "alias/sra-workspace-storage" }}
}}

resource "cmk_key_configuration" "managed_services" {{
  use_cases    = ["MANAGED_SERVICES"]
  aws_key_info = {{ key_arn = cmk_kms_key.managed_services.arn, key_alias = "alias/sra-managed-services" }}
}}

resource "cmk_workspace_binding" "sra" {{
  workspace_id         = {SRA_WS}
  storage_key          = cmk_key_configuration.workspace_storage
  managed_services_key = cmk_key_configuration.managed_services
}}

# One key and one key configuration for both use cases, with the policy of
# Databricks' configuration guide (grants statement included).
resource "cmk_kms_key" "both" {{
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  cross_account_role_arn = "{ROLE}"
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      local.admin,
      {{ Sid = "Managed services", Effect = "Allow", Principal = {{ AWS = local.dbx }}, Action = ["kms:Encrypt", "kms:Decrypt"], Resource = "*" }},
      {{ Sid = "DBFS", Effect = "Allow", Principal = {{ AWS = local.dbx }}, Action = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], Resource = "*" }},
      {{ Sid = "DBFS grants", Effect = "Allow", Principal = {{ AWS = local.dbx }}, Action = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], Resource = "*", Condition = {{ Bool = {{ "kms:GrantIsForAWSResource" = "true" }} }} }},
      local.ebs,
    ]
  }})
}}

resource "cmk_key_configuration" "both" {{
  use_cases    = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {{ key_arn = cmk_kms_key.both.arn }}
}}

resource "cmk_workspace_binding" "single" {{
  workspace_id         = {SINGLE_WS}
  storage_key          = cmk_key_configuration.both
  managed_services_key = cmk_key_configuration.both
}}

# Keys and key configurations in a module, bound at the root.
module "keys" {{
  source                 = "./modules/keys"
  databricks_account_id  = "{ACCOUNT_ID}"
  cross_account_role_arn = "{ROLE}"
}}

resource "cmk_workspace_binding" "module" {{
  workspace_id         = {module_ws}
  storage_key          = module.keys.{module_storage}
  managed_services_key = module.keys.managed_services
}}

# One key, key configuration and binding per workspace, with for_each.
variable "workspaces" {{
  default = {{ dev = {DEV_WS}, prod = {prod_ws} }}
}}

resource "cmk_kms_key" "ws" {{
  for_each               = var.workspaces
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "{ACCOUNT_ID}"
  cross_account_role_arn = "{ROLE}"
  alias                  = "alias/dbx-${{each.key}}"
}}

resource "cmk_key_configuration" "ws" {{
  for_each     = var.workspaces
  use_cases    = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {{ key_arn = cmk_kms_key.ws[each.key].arn }}
}}

resource "cmk_workspace_binding" "ws" {{
  for_each             = var.workspaces
  workspace_id         = each.value
  storage_key          = cmk_key_configuration.ws[each.key]
  managed_services_key = cmk_key_configuration.ws[each.key]
}}
"#,
        url = sb.url,
        endpoint = m.endpoint,
        ms_actions = s.ms_actions,
        prod_ws = s.prod_ws,
        module_ws = s.module_ws,
        module_storage = s.module_storage,
    )
}

fn workdir(sb: &Sandbox, m: &MotoServer) -> Workdir {
    let mut w = Workdir::new(&config(sb, m, &GOOD));
    std::fs::create_dir_all(w.path().join("modules/keys")).unwrap();
    w.write(
        "modules/keys/main.tf",
        &format!("{CMK_HEADER}\n{}\n{MODULE}", locals()),
    );
    w.env.extend(oauth_env());
    // Local modules are installed by `terraform get` (no provider download).
    let o = w
        .command(&["get", "-no-color"])
        .output()
        .expect("run terraform get");
    assert!(o.status.success(), "terraform get: {o:?}");
    w
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

/// The resource a diagnostic is on, as Terraform shows it (its address, or
/// the snippet's block header).
fn on(d: &serde_json::Value) -> String {
    d["address"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{} {}",
                d["range"]["filename"].as_str().unwrap_or_default(),
                d["snippet"]["context"].as_str().unwrap_or_default()
            )
        })
}

fn rule_of(d: &serde_json::Value) -> &str {
    d["summary"].as_str().unwrap_or_default()
}

/// Nothing was created: no KMS key in moto, no key configuration in the sandbox.
fn nothing_created(sb: &Sandbox, m: &MotoServer) {
    let n = m.boto3("us-west-2", "print(len(kms.list_keys()['Keys']))");
    assert_eq!(n, "0", "a plan creates no KMS key");
    assert_eq!(
        sb.creates_committed(),
        0,
        "a plan creates no key configuration"
    );
}

#[test]
fn reference_shapes_through_this_providers_resources_pass_plan() {
    if !enabled("reference_shapes_through_this_providers_resources_pass_plan") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let m = MotoServer::start();
    let w = workdir(&sb, &m);
    let (code, diags, all) = plan(&w, &m);
    // 2: the plan succeeded with changes.
    assert_eq!(code, 2, "{all}");
    let errors: Vec<_> = diags.iter().filter(|d| d["severity"] == "error").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The reference architecture's storage policy (at the root and in the
    // module): one CMK021 warning each, naming the grants statement.
    let w21: Vec<_> = diags
        .iter()
        .filter(|d| d["severity"] == "warning" && rule_of(d).contains("CMK021"))
        .collect();
    assert_eq!(w21.len(), 2, "{diags:#?}");
    for d in &w21 {
        let detail = d["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("AllowDatabricksStorageGrants")
                && detail.contains("kms:CreateGrant")
                && detail.contains("kms:GrantIsForAWSResource"),
            "{d:#}"
        );
    }
    let mut places: Vec<String> = w21.iter().map(|d| on(d)).collect();
    places.sort();
    assert_eq!(
        places,
        [
            "cmk_kms_key.workspace_storage",
            "module.keys.cmk_kms_key.storage"
        ]
    );
    // No warning on a resource other than CMK021 and the advice to check
    // that a storage key change took (CMK019, on a running workspace);
    // Terraform's own (dev_overrides) has no address.
    for d in diags
        .iter()
        .filter(|d| d["severity"] == "warning" && d["address"].is_string())
    {
        let r = rule_of(d);
        assert!(
            r.contains("CMK021") || r.contains("CMK019"),
            "unexpected warning: {d:#}"
        );
    }
    nothing_created(&sb, &m);

    // Broken neighbours, one rule each, on the resource at fault.
    let neighbours: [(&str, Shape, &str, &str); 4] = [
        (
            "the managed-services statement without Decrypt",
            Shape {
                ms_actions: r#""kms:Encrypt""#,
                ..GOOD
            },
            "CMK015",
            "cmk_kms_key.managed_services",
        ),
        (
            "for_each with a PREMIUM workspace",
            Shape {
                prod_ws: PREMIUM_WS,
                ..GOOD
            },
            "CMK001",
            "cmk_workspace_binding.ws[\"prod\"]",
        ),
        (
            "the module's managed-services configuration in a storage slot",
            Shape {
                module_storage: "managed_services",
                ..GOOD
            },
            "CMK005",
            "cmk_workspace_binding.module",
        ),
        (
            "the module's storage key, reused for cluster volumes (omitted: true), on a SERVERLESS workspace",
            Shape {
                module_ws: SERVERLESS_WS,
                ..GOOD
            },
            "CMK007",
            "cmk_workspace_binding.module",
        ),
    ];
    for (what, shape, rule, place) in neighbours {
        w.write("main.tf", &config(&sb, &m, &shape));
        let (code, diags, all) = plan(&w, &m);
        assert_eq!(code, 1, "{what}: {all}");
        let errors: Vec<_> = diags.iter().filter(|d| d["severity"] == "error").collect();
        assert!(!errors.is_empty(), "{what}: {diags:#?}");
        for e in &errors {
            assert!(rule_of(e).contains(rule), "{what}: also {e:#}");
        }
        assert!(
            errors.iter().any(|e| on(e) == place),
            "{what}: {rule} not on {place}: {errors:#?}"
        );
        nothing_created(&sb, &m);
    }

    // The serverless shape: the module's storage key configuration that
    // does not reuse its key for cluster volumes plans on the SERVERLESS
    // workspace, with the CMK008 warning (a storage key is not needed there)
    // and no CMK007.
    w.write(
        "main.tf",
        &config(
            &sb,
            &m,
            &Shape {
                module_ws: SERVERLESS_WS,
                module_storage: "serverless_storage",
                ..GOOD
            },
        ),
    );
    let (code, diags, all) = plan(&w, &m);
    assert_eq!(code, 2, "{all}");
    assert!(diags.iter().all(|d| d["severity"] != "error"), "{diags:#?}");
    assert!(
        diags.iter().any(|d| d["severity"] == "warning"
            && rule_of(d).contains("CMK008")
            && on(d) == "cmk_workspace_binding.module"),
        "{diags:#?}"
    );
    assert!(
        !diags.iter().any(|d| rule_of(d).contains("CMK007")),
        "{diags:#?}"
    );
    nothing_created(&sb, &m);
}

/// Issue 20: the same reference shapes, unchanged, reviewed in HCL mode
/// (`terraform-provider-cmk review DIR`) by the built binary with no
/// Databricks or AWS credential in its environment and no plan: the
/// reference architecture passes with its CMK021 warnings (root and
/// module), and the broken neighbour whose rule the source decides (the
/// managed-services statement without Decrypt) fails on CMK015 at the
/// resource at fault. The neighbours that need the live workspace (tier,
/// its keys) are "cannot tell yet" there: `--live` or a plan decides them.
#[test]
fn reference_shapes_reviewed_in_hcl_mode_without_credentials() {
    if !enabled("reference_shapes_reviewed_in_hcl_mode_without_credentials") {
        return;
    }
    // The servers only give the configuration its URLs; the review calls neither.
    let sb = Sandbox::start_with(SEED);
    let m = MotoServer::start();
    let w = Workdir::new(&config(&sb, &m, &GOOD));
    std::fs::create_dir_all(w.path().join("modules/keys")).unwrap();
    w.write(
        "modules/keys/main.tf",
        &format!("{CMK_HEADER}\n{}\n{MODULE}", locals()),
    );
    let review = |dir: &std::path::Path| {
        let mut cmd = std::process::Command::new(crate::harness::provider_bin());
        cmd.arg("review").arg(dir).args(["--format", "json"]);
        for (k, _) in std::env::vars() {
            if k.starts_with("DATABRICKS_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", dir);
        let o = cmd.output().expect("run review");
        let out: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code().unwrap_or(-1), out)
    };
    let failures = |out: &serde_json::Value| -> Vec<(String, String, String)> {
        out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["verdict"] == "fail")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["rule"].as_str().unwrap().to_string(),
                    f["address"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (code, out) = review(w.path());
    assert_eq!(code, 0, "{out:#}");
    let mut got = failures(&out);
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "warning".to_string(),
                "CMK021".to_string(),
                "cmk_kms_key.workspace_storage".to_string()
            ),
            (
                "warning".to_string(),
                "CMK021".to_string(),
                "module.keys.cmk_kms_key.storage".to_string()
            ),
        ],
        "{out:#}"
    );
    // Each finding has its file and line.
    for f in out["findings"].as_array().unwrap() {
        assert!(f["file"].as_str().unwrap().ends_with("main.tf"), "{f:#}");
        assert!(f["line"].as_u64().unwrap() > 1, "{f:#}");
    }
    assert!(out["summary"]["passed"].as_u64().unwrap() > 10, "{out:#}");
    w.write(
        "main.tf",
        &config(
            &sb,
            &m,
            &Shape {
                ms_actions: r#""kms:Encrypt""#,
                ..GOOD
            },
        ),
    );
    let (code, out) = review(w.path());
    assert_eq!(code, 1, "{out:#}");
    let errors: Vec<_> = failures(&out)
        .into_iter()
        .filter(|(s, _, _)| s == "error")
        .collect();
    assert_eq!(
        errors,
        vec![(
            "error".to_string(),
            "CMK015".to_string(),
            "cmk_kms_key.managed_services".to_string()
        )],
        "{out:#}"
    );
    assert_eq!(sb.creates_committed(), 0);
}

/// A binary plan file (`terraform plan -out`, a zip) given to review is
/// not JSON: the error says how to get the JSON review reads.
#[test]
fn review_of_a_binary_plan_file_says_to_run_terraform_show_json() {
    if !enabled("review_of_a_binary_plan_file_says_to_run_terraform_show_json") {
        return;
    }
    // A configuration with no provider: terraform writes a real plan file.
    let w = Workdir::new("output \"x\" {\n  value = 1\n}\n");
    w.run(&["plan", "-input=false", "-no-color", "-out=tfplan"])
        .ok();
    let o = std::process::Command::new(crate::harness::provider_bin())
        .arg("review")
        .arg(w.path().join("tfplan"))
        .output()
        .expect("run review");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not UTF-8 text") && err.contains("terraform show -json PLANFILE > plan.json"),
        "{err}"
    );
}
