//! The configuration users write: a key configuration created and bound in
//! the same plan, so its id is unknown at plan time. Every binding rule must
//! decide at `terraform plan`, on the argument at fault, with nothing created;
//! the passing neighbour of each rule applies and re-plans empty.

use crate::harness::{enabled, plan_diagnostics, provider_bin, Workdir, CMK_HEADER};
use crate::sandbox::{oauth_env, Sandbox};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/acceptance-tests/fixtures/one_plan_seed.json"
);
/// A key in the region of most seeded workspaces (us-west-2).
const W2: &str = "arn:aws:kms:us-west-2:123456789012:key/aaaaaaaa-1111-4000-8000-000000000001";
/// A key in eu-central-1.
const EU: &str = "arn:aws:kms:eu-central-1:123456789012:key/aaaaaaaa-2222-4000-8000-000000000002";

fn workdir(sb: &Sandbox, body: &str) -> Workdir {
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{}\n{body}", sb.provider_block()));
    w.env.extend(oauth_env());
    w
}

/// A key configuration resource.
fn key(name: &str, use_cases: &str, arn: &str, extra: &str) -> String {
    format!(
        "resource \"cmk_key_configuration\" \"{name}\" {{\n  use_cases = {use_cases}\n  aws_key_info = {{\n    key_arn = \"{arn}\"\n{extra}  }}\n}}\n"
    )
}

/// A binding resource; `args` are its lines besides `workspace_id`.
fn binding(name: &str, workspace: i64, args: &str) -> String {
    format!(
        "resource \"cmk_workspace_binding\" \"{name}\" {{\n  workspace_id = {workspace}\n{args}}}\n"
    )
}

struct Case {
    rule: &'static str,
    config: String,
    /// The text of the main.tf line the diagnostic must point at.
    on: &'static str,
}

fn failing_cases() -> Vec<Case> {
    let storage = || key("k", r#"["STORAGE"]"#, W2, "");
    let managed = || key("k", r#"["MANAGED_SERVICES"]"#, W2, "");
    vec![
        Case {
            rule: "CMK001",
            config: storage()
                + &binding("b", 7000000000000003, "  storage_key = cmk_key_configuration.k\n"),
            on: "workspace_id = 7000000000000003",
        },
        Case {
            rule: "CMK002",
            config: storage()
                + &binding("b", 7000000000000004, "  storage_key = cmk_key_configuration.k\n"),
            on: "storage_key = cmk_key_configuration.k",
        },
        Case {
            rule: "CMK005",
            config: storage()
                + &binding(
                    "b",
                    7000000000000001,
                    "  managed_services_key = cmk_key_configuration.k\n",
                ),
            on: "managed_services_key = cmk_key_configuration.k",
        },
        Case {
            rule: "CMK007",
            config: storage()
                + &binding("b", 7000000000000002, "  storage_key = cmk_key_configuration.k\n"),
            on: "storage_key = cmk_key_configuration.k",
        },
        Case {
            rule: "CMK009",
            config: storage()
                + &binding("b", 7000000000000006, "  storage_key = cmk_key_configuration.k\n"),
            on: "storage_key = cmk_key_configuration.k",
        },
        Case {
            rule: "CMK010",
            config: managed()
                + &binding(
                    "b",
                    7000000000000005,
                    "  managed_services_key = cmk_key_configuration.k\n",
                ),
            on: "workspace_id = 7000000000000005",
        },
        Case {
            rule: "CMK011",
            config: managed()
                + &binding(
                    "b",
                    7000000000000007,
                    "  managed_services_key = cmk_key_configuration.k\n  required_coverage = [\"ai_bi_dashboards\"]\n",
                ),
            on: "managed_services_key = cmk_key_configuration.k",
        },
        Case {
            rule: "CMK012",
            config: managed()
                + &binding(
                    "b",
                    7000000000000001,
                    "  managed_services_key = cmk_key_configuration.k\n  required_coverage = [\"model_serving_image\"]\n",
                ),
            on: "required_coverage =",
        },
        Case {
            rule: "CMK013",
            config: storage()
                + &binding(
                    "b",
                    7000000000000001,
                    "  storage_key = cmk_key_configuration.k\n  required_coverage = [\"secrets\"]\n",
                ),
            on: "required_coverage =",
        },
        Case {
            rule: "CMK014",
            config: managed()
                + &binding(
                    "b",
                    7000000000000001,
                    "  managed_services_key_id = \"${cmk_key_configuration.k.account_id}/${cmk_key_configuration.k.customer_managed_key_id}\"\n",
                ),
            on: "managed_services_key_id =",
        },
    ]
}

#[test]
fn every_binding_rule_fails_the_plan_of_a_new_key_configuration_and_creates_nothing() {
    if !enabled("every_binding_rule_fails_the_plan_of_a_new_key_configuration_and_creates_nothing")
    {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let mut missed = vec![];
    for case in failing_cases() {
        let w = workdir(&sb, &case.config);
        let (code, diags) = plan_diagnostics(&w);
        let found = diags.iter().find(|d| {
            d["severity"] == "error"
                && d["summary"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(case.rule))
        });
        match found {
            None => missed.push(format!(
                "{}: plan exit {code}, no error of the rule among {diags:#?}",
                case.rule
            )),
            Some(d) => {
                assert_ne!(code, 0, "{}: the plan must fail", case.rule);
                assert_eq!(
                    d["range"]["start"]["line"].as_u64(),
                    Some(w.line_of(case.on)),
                    "{}: the error must be on `{}`: {d:#}",
                    case.rule,
                    case.on
                );
                let detail = d["detail"].as_str().unwrap_or_default();
                assert!(
                    !detail.contains("Some(") && !detail.contains("None"),
                    "{}: debug output in {detail}",
                    case.rule
                );
            }
        }
        // The apply refuses at its own plan: nothing is created.
        let o = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_ne!(o.code, 0, "{}: apply must fail:\n{}", case.rule, o.all());
        if case.rule == "CMK007" {
            assert!(
                diags.iter().any(|d| d["severity"] == "warning"
                    && d["summary"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("CMK008"))),
                "CMK008 shows beside CMK007: {diags:#?}"
            );
        }
    }
    assert!(
        missed.is_empty(),
        "rules that did not fail the plan:\n{}",
        missed.join("\n")
    );
    assert_eq!(
        sb.creates_committed(),
        0,
        "no key configuration may be created by a plan that fails"
    );
}

#[test]
fn the_passing_neighbours_apply_and_replan_empty() {
    if !enabled("the_passing_neighbours_apply_and_replan_empty") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    // (name = the rule it neighbours, use cases, key ARN, extra key
    // arguments, workspace, binding arguments with KEY for the configuration)
    let neighbours: [(&str, &str, &str, &str, i64, &str); 10] = [
        // CMK001: an ENTERPRISE workspace.
        (
            "n001",
            r#"["STORAGE"]"#,
            W2,
            "",
            7000000000000011,
            "storage_key = KEY",
        ),
        // CMK002: the key in the workspace's region.
        (
            "n002",
            r#"["STORAGE"]"#,
            EU,
            "",
            7000000000000014,
            "storage_key = KEY",
        ),
        // CMK005: the slot's use case.
        (
            "n005",
            r#"["MANAGED_SERVICES"]"#,
            W2,
            "",
            7000000000000013,
            "managed_services_key = KEY",
        ),
        // CMK007: a storage key that does not encrypt cluster volumes on a
        // SERVERLESS workspace passes, with the CMK008 warning.
        (
            "n007",
            r#"["STORAGE"]"#,
            W2,
            "    reuse_key_for_cluster_volumes = false\n",
            7000000000000012,
            "storage_key = KEY",
        ),
        // CMK009: a workspace without a storage key yet.
        (
            "n009",
            r#"["STORAGE"]"#,
            W2,
            "",
            7000000000000016,
            "storage_key = KEY",
        ),
        // CMK010: no classic compute running.
        (
            "n010",
            r#"["MANAGED_SERVICES"]"#,
            W2,
            "",
            7000000000000015,
            "managed_services_key = KEY",
        ),
        // CMK011: only dashboards created after the cutoff, AI/BI dashboards required.
        (
            "n011",
            r#"["MANAGED_SERVICES"]"#,
            W2,
            "",
            7000000000000017,
            "managed_services_key = KEY\n  required_coverage = [\"ai_bi_dashboards\"]",
        ),
        // CMK012: a required data type that a key can protect.
        (
            "n012",
            r#"["MANAGED_SERVICES"]"#,
            W2,
            "",
            7000000000000018,
            "managed_services_key = KEY\n  required_coverage = [\"secrets\"]",
        ),
        // CMK013, the quickstart's shape: only the storage key is set; the
        // workspace's live managed-services key (slot left as it is)
        // protects `secrets`.
        (
            "n013",
            r#"["STORAGE"]"#,
            W2,
            "",
            7000000000000019,
            "storage_key = KEY\n  required_coverage = [\"secrets\", \"dbfs_root\"]",
        ),
        // CMK014: the bare id.
        (
            "n014",
            r#"["MANAGED_SERVICES"]"#,
            W2,
            "",
            7000000000000001,
            "managed_services_key_id = KEY.customer_managed_key_id",
        ),
    ];
    let mut cfg = String::new();
    for (name, use_cases, arn, extra, workspace, args) in neighbours {
        cfg += &key(name, use_cases, arn, extra);
        let args = args.replace("KEY", &format!("cmk_key_configuration.{name}"));
        cfg += &binding(name, workspace, &format!("  {args}\n"));
    }
    let w = workdir(&sb, &cfg);
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "the neighbours plan: {diags:#?}");
    assert!(
        !diags.iter().any(|d| d["severity"] == "error"),
        "no error: {diags:#?}"
    );
    let cmk008 = diags
        .iter()
        .find(|d| {
            d["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("CMK008"))
        })
        .unwrap_or_else(|| panic!("CMK008 warns at plan: {diags:#?}"));
    assert_eq!(cmk008["severity"], "warning");
    assert_eq!(
        cmk008["range"]["start"]["line"].as_u64(),
        Some(w.line_of("storage_key = cmk_key_configuration.n007"))
    );
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    assert_eq!(sb.creates_committed(), 10);
    let o = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, 0, "re-plan must be empty:\n{}", o.all());
    // The bound ids are the created ones, in state and at Databricks.
    let state = w.json(&["show", "-json"]);
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap();
    let attr = |addr: &str, a: &str| {
        resources
            .iter()
            .find(|r| r["address"] == addr)
            .unwrap_or_else(|| panic!("{addr} not in state"))["values"][a]
            .clone()
    };
    assert_eq!(
        attr("cmk_workspace_binding.n001", "storage_key_id"),
        attr("cmk_key_configuration.n001", "customer_managed_key_id")
    );
    assert_eq!(
        attr("cmk_workspace_binding.n013", "managed_services_key_id"),
        "0c7a2d4f-0000-4000-8000-000000000019",
        "the unset slot keeps the live key"
    );
    let (status, body) = sb.admin("GET", "/_sandbox/state", "");
    assert_eq!(status, 200);
    let id = attr("cmk_key_configuration.n009", "customer_managed_key_id");
    assert!(
        body.contains(id.as_str().unwrap()),
        "the sandbox binds the created id"
    );
}

#[test]
fn a_key_id_that_names_no_key_configuration_fails_the_plan_on_its_argument() {
    if !enabled("a_key_id_that_names_no_key_configuration_fails_the_plan_on_its_argument") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let w = workdir(
        &sb,
        &binding(
            "b",
            7000000000000001,
            "  storage_key_id = \"9f9f9f9f-0000-4000-8000-000000000000\"\n",
        ),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 1, "{diags:#?}");
    let d = diags
        .iter()
        .find(|d| d["summary"] == "Key configuration not found")
        .unwrap_or_else(|| panic!("no error for the unknown id: {diags:#?}"));
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of("storage_key_id ="))
    );
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains("9f9f9f9f-0000-4000-8000-000000000000") && detail.contains("storage_key ="),
        "{detail}"
    );
}

/// The seeded ENTERPRISE, SERVERLESS workspace without keys (us-west-2).
const SERVERLESS: i64 = 7000000000000002;

/// The errors among the diagnostics.
fn errors(diags: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    diags.iter().filter(|d| d["severity"] == "error").collect()
}

fn has_rule(diags: &[serde_json::Value], severity: &str, rule: &str) -> bool {
    diags.iter().any(|d| {
        d["severity"] == severity && d["summary"].as_str().is_some_and(|s| s.starts_with(rule))
    })
}

/// The key configurations the sandbox holds.
fn key_configurations(sb: &Sandbox) -> usize {
    let (status, body) = sb.admin("GET", "/_sandbox/state", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["customer_managed_keys"].as_array().map_or(0, Vec::len))
        .sum()
}

/// The storage key the sandbox has bound to a workspace, if any.
fn storage_key_of(sb: &Sandbox, workspace: i64) -> Option<String> {
    let (_, body) = sb.admin("GET", "/_sandbox/state", "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["workspaces"].as_array().cloned().unwrap_or_default())
        .find(|w| w["workspace_id"] == workspace)
        .unwrap_or_else(|| panic!("workspace {workspace} is not in the sandbox"))
        ["storage_customer_managed_key_id"]
        .as_str()
        .map(str::to_string)
}

/// Issue 18, "EBS keys rejected for serverless": a key configuration that
/// reuses its storage key for cluster EBS volumes (the field omitted, which
/// Databricks takes as true, or set to true) passed whole to the binding of a
/// SERVERLESS workspace fails `terraform plan` on CMK007, naming
/// `reuse_key_for_cluster_volumes`, and nothing is created; with
/// `reuse_key_for_cluster_volumes = false` it plans with the CMK008
/// warning. A bare `storage_key_id` that names a configuration only known
/// at apply is refused by the apply's re-check, before any key update. The
/// review of the official provider's plan of the same shape exits 1.
#[test]
fn ebs_keys_are_rejected_for_serverless_at_plan_at_apply_and_in_review() {
    if !enabled("ebs_keys_are_rejected_for_serverless_at_plan_at_apply_and_in_review") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let seeded = key_configurations(&sb);
    let whole = binding("b", SERVERLESS, "  storage_key = cmk_key_configuration.k\n");
    for (what, extra) in [
        ("omitted (Databricks' default: true)", ""),
        ("true", "    reuse_key_for_cluster_volumes = true\n"),
    ] {
        let w = workdir(&sb, &(key("k", r#"["STORAGE"]"#, W2, extra) + &whole));
        let (code, diags) = plan_diagnostics(&w);
        assert_eq!(code, 1, "{what}: the plan fails: {diags:#?}");
        let errors = errors(&diags);
        assert_eq!(errors.len(), 1, "{what}: CMK007 only: {errors:#?}");
        let d = errors[0];
        assert!(
            d["summary"].as_str().unwrap().starts_with("CMK007"),
            "{what}: {d:#}"
        );
        // Terraform shows a finding on a value passed by reference on the
        // argument that passes it; the detail names the field and its fix.
        assert_eq!(
            d["range"]["start"]["line"].as_u64(),
            Some(w.line_of("storage_key = cmk_key_configuration.k")),
            "{what}: {d:#}"
        );
        let detail = d["detail"].as_str().unwrap();
        assert!(
            detail.contains("reuse_key_for_cluster_volumes = true")
                && detail.contains("SERVERLESS")
                && detail.contains("Remove the storage key binding")
                && detail.contains("https://")
                && detail.contains("/guides/cmk007"),
            "{what}: {detail}"
        );
        assert_eq!(
            detail.contains("omitted: Databricks' default"),
            extra.is_empty(),
            "{what}: {detail}"
        );
        assert!(
            has_rule(&diags, "warning", "CMK008"),
            "{what}: CMK008 beside: {diags:#?}"
        );
        // The apply stops at its own plan: no key configuration is created.
        let o = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_ne!(o.code, 0, "{what}: apply must fail:\n{}", o.all());
        assert!(o.all().contains("CMK007"), "{what}: {}", o.all());
        assert_eq!(sb.creates_committed(), 0, "{what}: nothing is created");
        assert_eq!(key_configurations(&sb), seeded, "{what}");
    }

    // reuse_key_for_cluster_volumes = false: the storage bucket is protected,
    // nothing is claimed for cluster volumes; only the CMK008 warning.
    let w = workdir(
        &sb,
        &(key(
            "k",
            r#"["STORAGE"]"#,
            W2,
            "    reuse_key_for_cluster_volumes = false\n",
        ) + &whole),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "{diags:#?}");
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    assert!(!has_rule(&diags, "warning", "CMK007"), "{diags:#?}");
    let w8 = diags
        .iter()
        .find(|d| {
            d["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("CMK008"))
        })
        .unwrap_or_else(|| panic!("CMK008 warns: {diags:#?}"));
    assert_eq!(w8["severity"], "warning");
    assert_eq!(
        w8["range"]["start"]["line"].as_u64(),
        Some(w.line_of("storage_key = cmk_key_configuration.k"))
    );

    // A bare id of a configuration this plan creates: its cluster-volume
    // setting is not in the binding's arguments, so the plan cannot tell;
    // the apply reads the configuration once its id is known and refuses
    // before any key update reaches Databricks.
    let w = workdir(
        &sb,
        &(key("k", r#"["STORAGE"]"#, W2, "")
            + &binding(
                "b",
                SERVERLESS,
                "  storage_key_id = cmk_key_configuration.k.customer_managed_key_id\n",
            )),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "{diags:#?}");
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let (status, _) = sb.admin("DELETE", "/_sandbox/requests", "");
    assert!(status < 300);
    let o = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(o.code, 0, "the apply must refuse:\n{}", o.all());
    let out = o.all();
    assert!(
        out.contains("CMK007") && out.contains("reuse_key_for_cluster_volumes"),
        "{out}"
    );
    assert!(
        out.contains("cmk_key_configuration.k: Creation complete"),
        "{out}"
    );
    assert_eq!(sb.creates_committed(), 1, "only the key configuration");
    let (_, log) = sb.admin("GET", "/_sandbox/requests", "");
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let requests = log.as_array().expect("the request log");
    assert!(
        requests.iter().any(|r| r["method"] == "GET"
            && r["path"]
                .as_str()
                .is_some_and(|p| p.contains("/customer-managed-keys/"))),
        "the apply reads the configuration: {log:#}"
    );
    assert!(
        !requests.iter().any(|r| r["method"] == "PATCH"),
        "no key update is sent: {log:#}"
    );
    assert_eq!(storage_key_of(&sb, SERVERLESS), None);

    // The review of the official provider's plan of this shape (the
    // reference architecture's storage key configuration, which has no
    // reuse_key_for_cluster_volumes, bound to its serverless workspace):
    // exit 1 on CMK007. Its neighbour with this provider's configuration
    // and reuse_key_for_cluster_volumes = false exits 0.
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/acceptance-tests/fixtures/review/corpus/"
    );
    let review = |name: &str| {
        let o = std::process::Command::new(provider_bin())
            .args(["review", &format!("{corpus}{name}.json")])
            .output()
            .expect("run terraform-provider-cmk review");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = review("sra_with_serverless_storage_key_on_serverless");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "error CMK007 databricks_mws_workspaces.serverless (storage_customer_managed_key_id)"
        ),
        "{out}"
    );
    let (code, out) = review("sra_with_serverless_storage_key_without_ebs");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("CMK007"), "{out}");
    assert!(out.contains("warning CMK008"), "{out}");
}
