//! cmk_key_configuration and cmk_workspace_binding through Terraform, against cmk-sandbox.

use crate::harness::{enabled, plan_diagnostics, validate_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{
    oauth_env, Sandbox, ACCOUNT_ID, CLIENT_SECRET, PREMIUM_WORKSPACE, PROD_WORKSPACE, SEEDED_KEY,
};

const US_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const EU_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000";

/// A working directory for the sandbox; the OAuth client credentials reach
/// the provider through the environment, as users should pass them, not
/// through the configuration.
fn workdir(sb: &Sandbox, body: &str) -> Workdir {
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{}\n{body}", sb.provider_block()));
    w.env.extend(oauth_env());
    w
}

fn run(w: &Workdir, args: &[&str]) -> crate::harness::Out {
    w.run(args)
}

/// The diagnostic of a rule, or a panic listing what came instead.
fn finding<'a>(diags: &'a [serde_json::Value], rule: &str) -> &'a serde_json::Value {
    diags
        .iter()
        .find(|d| d["summary"].as_str().unwrap_or_default().starts_with(rule))
        .unwrap_or_else(|| panic!("no {rule} among {diags:?}"))
}

fn apply(w: &Workdir) -> crate::harness::Out {
    run(w, &["apply", "-auto-approve", "-input=false", "-no-color"])
}

fn plan_exit(w: &Workdir) -> (i32, String) {
    let o = run(
        w,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    (o.code, o.all())
}

fn state_values(w: &Workdir, address: &str) -> serde_json::Value {
    let o = run(w, &["show", "-json"]);
    o.ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state"))["values"]
        .clone()
}

#[test]
fn key_configuration_create_replan_import_destroy() {
    if !enabled("key_configuration_create_replan_import_destroy") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            r#"resource "cmk_key_configuration" "storage" {{
  use_cases = ["STORAGE", "MANAGED_SERVICES"]
  aws_key_info = {{
    key_arn   = "{US_KEY}"
    key_alias = "alias/databricks-storage"
  }}
}}
output "id" {{ value = cmk_key_configuration.storage.customer_managed_key_id }}
"#
        ),
    );
    apply(&w).ok();
    let v = state_values(&w, "cmk_key_configuration.storage");
    let id = v["customer_managed_key_id"].as_str().unwrap().to_string();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["account_id"], ACCOUNT_ID);
    assert_eq!(
        v["aws_key_info"]["key_region"], "us-east-1",
        "region taken from the ARN"
    );
    assert!(v["creation_time"].as_i64().unwrap() > 0);
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 0, "re-plan must be empty:\n{out}");

    // Import the same configuration under a second address: the plan stays empty.
    let mut cfg = std::fs::read_to_string(w.path().join("main.tf")).unwrap();
    cfg.push_str(&format!(
        "resource \"cmk_key_configuration\" \"imported\" {{\n  use_cases = [\"MANAGED_SERVICES\", \"STORAGE\"]\n  aws_key_info = {{\n    key_arn   = \"{US_KEY}\"\n    key_alias = \"alias/databricks-storage\"\n  }}\n}}\n"
    ));
    w.write("main.tf", &cfg);
    run(
        &w,
        &[
            "import",
            "-input=false",
            "-no-color",
            "cmk_key_configuration.imported",
            &format!("{ACCOUNT_ID}/{id}"),
        ],
    )
    .ok();
    assert_eq!(
        state_values(&w, "cmk_key_configuration.imported")["customer_managed_key_id"],
        id.as_str()
    );
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 0, "imported configuration re-plans empty:\n{out}");
    run(
        &w,
        &["state", "rm", "-no-color", "cmk_key_configuration.imported"],
    )
    .ok();
    let cfg = cfg[..cfg
        .find("resource \"cmk_key_configuration\" \"imported\"")
        .unwrap()]
        .to_string();
    w.write("main.tf", &cfg);

    // Drift: deleted behind Terraform's back -> planned again.
    let (status, _) = sb.admin(
        "DELETE",
        &format!("/_sandbox/customer-managed-keys/{id}"),
        "",
    );
    assert!(status < 300, "admin delete: {status}");
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 2, "a deleted configuration is planned again:\n{out}");
    assert!(out.contains("deleted outside Terraform"), "{out}");
    assert!(
        out.contains("cmk_key_configuration.storage will be created"),
        "{out}"
    );

    apply(&w).ok();
    run(
        &w,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
    )
    .ok();
}

#[test]
fn plan_time_rules_land_on_the_argument() {
    if !enabled("plan_time_rules_land_on_the_argument") {
        return;
    }
    let sb = Sandbox::start();

    // A composite id where a bare id is expected (CMK014), caught by validate.
    let w = workdir(
        &sb,
        &format!("resource \"cmk_workspace_binding\" \"b\" {{\n  workspace_id = {PROD_WORKSPACE}\n  storage_key_id = \"{ACCOUNT_ID}/{SEEDED_KEY}\"\n}}\n"),
    );
    let diags = validate_diagnostics(&w);
    let d = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .expect("composite id refused");
    assert!(d["summary"].as_str().unwrap().contains("CMK014"), "{d}");
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of("storage_key_id ="))
    );

    // use_cases without STORAGE but reuse_key_for_cluster_volumes = true (CMK006), at plan:
    // an error although the Account API accepts and ignores the field (no EBS volume is
    // encrypted with the key), on the argument.
    let reuse_without_storage = |reuse: bool| {
        format!(
            "resource \"cmk_key_configuration\" \"k\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{\n    key_arn = \"{US_KEY}\"\n    reuse_key_for_cluster_volumes = {reuse}\n  }}\n}}\n"
        )
    };
    let w = workdir(&sb, &reuse_without_storage(true));
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 1, "{diags:#?}");
    let errors: Vec<_> = diags.iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let d = errors[0];
    assert!(d["summary"].as_str().unwrap().starts_with("CMK006"), "{d}");
    // Terraform 1.11 underlines a nested attribute's whole object; the detail names the field.
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of("aws_key_info = {"))
    );
    assert!(
        d["detail"]
            .as_str()
            .unwrap()
            .contains("reuse_key_for_cluster_volumes = true but use_cases are [MANAGED_SERVICES]"),
        "{d}"
    );
    // false asks for no cluster-volume encryption: nothing to refuse.
    let w = workdir(&sb, &reuse_without_storage(false));
    let diags = validate_diagnostics(&w);
    assert!(
        !diags.iter().any(|d| d["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("CMK006"))),
        "{diags:#?}"
    );

    // A PREMIUM workspace (CMK001) and a key in another region (CMK002), from live facts at plan.
    let w = workdir(
        &sb,
        &format!(
            r#"resource "cmk_key_configuration" "eu" {{
  use_cases    = ["MANAGED_SERVICES"]
  aws_key_info = {{ key_arn = "{EU_KEY}" }}
}}
resource "cmk_workspace_binding" "premium" {{
  workspace_id            = {PREMIUM_WORKSPACE}
  managed_services_key_id = "{SEEDED_KEY}"
}}
"#
        ),
    );
    run(
        &w,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-target=cmk_key_configuration.eu",
        ],
    )
    .ok();
    let eu_id = state_values(&w, "cmk_key_configuration.eu")["customer_managed_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0);
    let tier = finding(&diags, "CMK001");
    assert_eq!(
        tier["range"]["start"]["line"].as_u64(),
        Some(w.line_of(&format!("workspace_id            = {PREMIUM_WORKSPACE}")))
    );
    assert!(
        tier["detail"].as_str().unwrap().contains("PREMIUM"),
        "{tier}"
    );

    let mut cfg = std::fs::read_to_string(w.path().join("main.tf")).unwrap();
    cfg = cfg.replace(
        &format!("workspace_id            = {PREMIUM_WORKSPACE}"),
        &format!("workspace_id            = {PROD_WORKSPACE}"),
    );
    cfg = cfg.replace(
        &format!("managed_services_key_id = \"{SEEDED_KEY}\""),
        "managed_services_key_id = cmk_key_configuration.eu.customer_managed_key_id",
    );
    w.write("main.tf", &cfg);
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0, "{diags:?}");
    let region = finding(&diags, "CMK002");
    let detail = region["detail"].as_str().unwrap();
    assert!(
        detail.contains("eu-west-1") && detail.contains("us-east-1"),
        "{detail}"
    );
    // Nothing reached Databricks: the workspace still has its seeded key.
    let _ = eu_id;
    let (_, state) = sb.admin("GET", "/_sandbox/state", "");
    assert!(state.contains(SEEDED_KEY));
}

#[test]
fn binding_sets_storage_once_and_refuses_replacement_at_plan() {
    if !enabled("binding_sets_storage_once_and_refuses_replacement_at_plan") {
        return;
    }
    let sb = Sandbox::start();
    let body = |key: &str| {
        format!(
            r#"resource "cmk_key_configuration" "storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{key}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id   = {PROD_WORKSPACE}
  storage_key_id = cmk_key_configuration.storage.customer_managed_key_id
}}
"#
        )
    };
    let w = workdir(&sb, &body(US_KEY));
    apply(&w).ok();
    let b = state_values(&w, "cmk_workspace_binding.prod");
    let k = state_values(&w, "cmk_key_configuration.storage");
    assert_eq!(b["storage_key_id"], k["customer_managed_key_id"]);
    assert_eq!(
        b["managed_services_key_id"], SEEDED_KEY,
        "an unset slot is left as it is"
    );
    assert_eq!(b["workspace_status"], "RUNNING");
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 0, "re-plan must be empty:\n{out}");

    // Another storage key: Databricks cannot replace it; the plan says so on storage_key_id.
    w.write(
        "main.tf",
        &format!(
            "{CMK_HEADER}\n{}\n{}",
            sb.provider_block(),
            body(&US_KEY.replace("1111", "abcd"))
        ),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0);
    let d = finding(&diags, "CMK009");
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of("storage_key_id ="))
    );

    // Import the binding by workspace id.
    w.write(
        "main.tf",
        &format!("{CMK_HEADER}\n{}\n{}", sb.provider_block(), body(US_KEY)),
    );
    run(
        &w,
        &["state", "rm", "-no-color", "cmk_workspace_binding.prod"],
    )
    .ok();
    run(
        &w,
        &[
            "import",
            "-input=false",
            "-no-color",
            "cmk_workspace_binding.prod",
            &PROD_WORKSPACE.to_string(),
        ],
    )
    .ok();
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 0, "imported binding re-plans empty:\n{out}");
}

#[test]
fn rotating_the_managed_services_key_warns_about_old_dashboards() {
    if !enabled("rotating_the_managed_services_key_warns_about_old_dashboards") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            r#"resource "cmk_key_configuration" "ms2" {{
  use_cases    = ["MANAGED_SERVICES"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id            = {PROD_WORKSPACE}
  managed_services_key_id = cmk_key_configuration.ms2.customer_managed_key_id
}}
"#
        ),
    );
    run(
        &w,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-target=cmk_key_configuration.ms2",
        ],
    )
    .ok();
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "rotation is allowed: {diags:?}");
    let warn = finding(&diags, "CMK011");
    assert_eq!(warn["severity"], "warning");
    // The pre-cutoff dashboard is named by its id, not by its name (a
    // name is the workspace's content).
    let detail = warn["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 AI/BI dashboards were created on or before 2024-11-01")
            && !detail.contains("Revenue (2023)"),
        "{warn}"
    );
    let out = apply(&w);
    out.ok();
    let b = state_values(&w, "cmk_workspace_binding.prod");
    assert_eq!(
        b["managed_services_key_id"],
        state_values(&w, "cmk_key_configuration.ms2")["customer_managed_key_id"]
    );
}

#[test]
fn credentials_never_reach_logs_plans_or_state() {
    if !enabled("credentials_never_reach_logs_plans_or_state") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            "resource \"cmk_key_configuration\" \"k\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{ key_arn = \"{US_KEY}\" }}\n}}\n"
        ),
    );
    let o = w
        .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .env("TF_LOG", "trace")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let everything = format!(
        "{}{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(w.path().join("terraform.tfstate")).unwrap()
    );
    assert!(
        everything.contains("cmk::") || everything.contains("GRPCProvider"),
        "trace logs were captured"
    );
    assert!(
        !everything.contains(CLIENT_SECRET),
        "the Databricks OAuth secret leaked into logs or state"
    );
    assert!(
        !everything.contains("sbx-oauth-"),
        "a Databricks OAuth token leaked into logs or state"
    );
}

#[test]
fn workspace_and_coverage_data_sources_read_live_facts() {
    if !enabled("workspace_and_coverage_data_sources_read_live_facts") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            r#"data "cmk_workspace" "prod" {{
  workspace_id = {PROD_WORKSPACE}
}}
data "cmk_encryption_coverage" "prod" {{
  workspace_id = {PROD_WORKSPACE}
}}
output "ws" {{ value = data.cmk_workspace.prod }}
output "cov" {{ value = data.cmk_encryption_coverage.prod }}
"#
        ),
    );
    apply(&w).ok();
    let out = w.json(&["output", "-json"]);
    let ws = &out["ws"]["value"];
    assert_eq!(ws["aws_region"], "us-east-1");
    assert_eq!(ws["pricing_tier"], "ENTERPRISE");
    assert_eq!(ws["compute_mode"], "HYBRID");
    assert_eq!(ws["managed_services_key_id"], SEEDED_KEY);
    assert!(ws["storage_key_id"].is_null());
    let cov = &out["cov"]["value"];
    let protected: Vec<&str> = cov["protected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let not_protected: Vec<&str> = cov["not_protected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        protected.contains(&"secrets") && protected.contains(&"notebooks"),
        "{protected:?}"
    );
    assert!(
        not_protected.contains(&"dbfs_root"),
        "no storage key is bound: {not_protected:?}"
    );
    assert!(not_protected.contains(&"model_serving_image"));
    let dashboards = cov["data_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data_type"] == "ai_bi_dashboards")
        .unwrap();
    assert_eq!(dashboards["protection"], "partly_protected");
    let reason = dashboards["reason"].as_str().unwrap();
    assert!(
        reason.contains("are not encrypted with the key: ") && !reason.contains("Revenue (2023)"),
        "{dashboards}"
    );
    assert_eq!(
        cov["data_types"].as_array().unwrap().len(),
        18,
        "every data type of the catalog"
    );
}

/// `moved` from the official provider's databricks_mws_customer_managed_keys:
/// nothing is recreated. Terraform insists that the source provider be
/// installed, and the official provider cannot be downloaded here, so a
/// stand-in built from this crate's examples answers for
/// `databricks/databricks`; Terraform never calls it for the moved resource,
/// whose raw state goes to this provider's MoveResourceState.
#[test]
fn moved_from_the_official_provider_without_recreating() {
    if !enabled("moved_from_the_official_provider_without_recreating") {
        return;
    }
    let sb = Sandbox::start();
    let mut w = Workdir::with_providers(
        &format!(
            r#"{CMK_HEADER}
{}
moved {{
  from = databricks_mws_customer_managed_keys.ms
  to   = cmk_key_configuration.ms
}}
resource "cmk_key_configuration" "ms" {{
  use_cases = ["MANAGED_SERVICES"]
  aws_key_info = {{
    key_arn   = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    key_alias = "alias/databricks-managed-services"
  }}
}}
"#,
            sb.provider_block()
        ),
        &[
            (
                crate::harness::CMK_SOURCE,
                "terraform-provider-cmk",
                crate::harness::provider_bin(),
            ),
            (
                "databricks/databricks",
                "terraform-provider-databricks",
                crate::harness::example_bin("sleep_provider"),
            ),
        ],
    );
    w.env.extend(oauth_env());
    // The official provider's state of the seeded key configuration.
    w.write(
        "terraform.tfstate",
        &serde_json::json!({
            "version": 4, "terraform_version": "1.11.4", "serial": 1,
            "lineage": "0d26daa6-5e44-4c97-a497-ef015f91254a", "outputs": {},
            "resources": [{
                "mode": "managed", "type": "databricks_mws_customer_managed_keys", "name": "ms",
                "provider": "provider[\"registry.terraform.io/databricks/databricks\"]",
                "instances": [{
                    "schema_version": 0,
                    "attributes": {
                        "account_id": ACCOUNT_ID,
                        "aws_key_info": [{
                            "key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                            "key_alias": "alias/databricks-managed-services",
                            "key_region": "us-east-1"
                        }],
                        "creation_time": 1730000000000_i64,
                        "customer_managed_key_id": SEEDED_KEY,
                        "gcp_key_info": [],
                        "id": format!("{ACCOUNT_ID}/{SEEDED_KEY}"),
                        "use_cases": ["MANAGED_SERVICES"]
                    },
                    "sensitive_attributes": []
                }]
            }]
        })
        .to_string(),
    );
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    plan.ok();
    assert!(
        plan.stdout.contains(
            "databricks_mws_customer_managed_keys.ms has moved to cmk_key_configuration.ms"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("0 to add, 0 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    apply(&w).ok();
    assert_eq!(
        state_values(&w, "cmk_key_configuration.ms")["customer_managed_key_id"],
        SEEDED_KEY
    );
    let (code, out) = plan_exit(&w);
    assert_eq!(code, 0, "{out}");
}

/// A bad day at Databricks: a 503, then a create that commits but loses its
/// answer. The apply still succeeds, with exactly one new key
/// configuration (the client looks the lost create up instead of sending it twice).
#[test]
fn apply_survives_faults_without_duplicates() {
    if !enabled("apply_survives_faults_without_duplicates") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            "resource \"cmk_key_configuration\" \"k\" {{\n  use_cases = [\"STORAGE\"]\n  aws_key_info = {{ key_arn = \"{US_KEY}\" }}\n}}\n"
        ),
    );
    let (status, body) = sb.admin(
        "PUT",
        "/_sandbox/faults",
        r#"{"fail_next": 1, "error_status": 503, "drop_after_commit": 1}"#,
    );
    assert!(status < 300, "faults: {status} {body}");
    apply(&w).ok();
    // The dropped answer really happened: the fault was used up.
    let (_, faults) = sb.admin("GET", "/_sandbox/faults", "");
    let faults: serde_json::Value = serde_json::from_str(&faults).unwrap();
    assert_eq!(
        faults["drop_after_commit"], 0,
        "the create's answer was dropped: {faults}"
    );
    let (status, body) = sb.admin(
        "PUT",
        "/_sandbox/faults",
        r#"{"throttle_rate": 0, "error_rate": 0, "drop_after_commit": 0}"#,
    );
    assert!(status < 300, "faults off: {status} {body}");
    let (_, state) = sb.admin("GET", "/_sandbox/state", "");
    let world: serde_json::Value = serde_json::from_str(&state).unwrap();
    let with_our_key: Vec<&serde_json::Value> = world["accounts"][0]["customer_managed_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["aws_key_info"]["key_arn"] == US_KEY)
        .collect();
    assert_eq!(
        with_our_key.len(),
        1,
        "exactly one configuration for the key: {with_our_key:?}"
    );
    assert_eq!(
        with_our_key[0]["customer_managed_key_id"],
        state_values(&w, "cmk_key_configuration.k")["customer_managed_key_id"],
        "Terraform tracks the one that exists"
    );
    let (_, stats) = sb.admin("GET", "/_sandbox/stats", "");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        stats["creates_committed"], 1,
        "one create reached Databricks: {stats}"
    );
}
