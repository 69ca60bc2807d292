//! Configurations with variables, `count` and `for_each`: an unknown value
//! is never an error.
//!
//! Terraform's validate walk (`terraform validate`, and the first step of
//! every `terraform plan`) evaluates every input variable, `count.index` and
//! `each.key` as unknown, wherever it stands. The test reads the provider's
//! schema from `terraform providers schema -json`, so a new attribute is
//! covered without editing it: for every settable attribute of every
//! resource and data source, and every function argument, at every depth
//! (the whole value, an element of a set, a map value, an attribute of a
//! nested object), the value is given as (a) an input variable, (b) an
//! interpolation of one, (c) `each.key` (or `each.value`) under `for_each`,
//! (d) `count.index` under `count`. All of it validates, and the same
//! configuration, whose variables and keys are known at plan, plans.

use std::collections::BTreeMap;

use serde_json::{json, Value as J};

use crate::harness::{enabled, plan_diagnostics, validate_diagnostics, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;
use crate::sandbox::{oauth_env, Sandbox};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/acceptance-tests/fixtures/one_plan_seed.json"
);
/// An ENTERPRISE workspace in us-west-2 whose storage key is [`ST_KEY`].
const WORKSPACE: i64 = 7000000000000006;
/// A serverless ENTERPRISE workspace in us-west-2, no keys.
const SERVERLESS: i64 = 7000000000000002;
/// An ENTERPRISE workspace in eu-central-1.
const FRANKFURT: i64 = 7000000000000004;
/// A seeded STORAGE key configuration (us-west-2).
const ST_KEY: &str = "5a6b7c8d-0000-4000-8000-000000000006";
const ST_ARN: &str = "arn:aws:kms:us-west-2:123456789012:key/aaaaaaaa-0000-4000-8000-000000000006";
/// A seeded MANAGED_SERVICES key configuration (us-west-2).
const MS_KEY: &str = "0c7a2d4f-0000-4000-8000-000000000019";
const MS_ARN: &str = "arn:aws:kms:us-west-2:123456789012:key/aaaaaaaa-0000-4000-8000-000000000019";
const PROVIDER: &str = "registry.terraform.io/databricks-cmk/cmk";

/// A valid value for every settable attribute (and function argument),
/// consistent with the seeded world so that a plan passes every rule. A
/// settable attribute missing here fails the test by name.
fn samples(kms_key_arn: &str) -> BTreeMap<&'static str, J> {
    let policy = cmk::rules::kms_policy::to_canonical_json(
        &cmk::rules::kms_policy::generate(&cmk::rules::kms_policy::PolicyInput {
            use_cases: [cmk::rules::KeyFeature::ManagedServices].into(),
            aws_account_id: "123456789012".into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: true,
            partition: cmk::rules::ids::Partition::Aws,
            databricks_principal: None,
            deployment: None,
        })
        .unwrap(),
    );
    let st_obj = json!({
        "customer_managed_key_id": ST_KEY,
        "use_cases": ["STORAGE"],
        "aws_key_info": {"key_arn": ST_ARN, "key_region": "us-west-2", "reuse_key_for_cluster_volumes": true, "key_alias": "alias/st"},
        "account_id": crate::sandbox::ACCOUNT_ID,
        "id": ST_KEY,
        "creation_time": 1730000000000i64,
    });
    let ms_obj = json!({
        "customer_managed_key_id": MS_KEY,
        "use_cases": ["MANAGED_SERVICES"],
        "aws_key_info": {"key_arn": MS_ARN, "key_region": "us-west-2", "reuse_key_for_cluster_volumes": false, "key_alias": "alias/ms"},
        "account_id": crate::sandbox::ACCOUNT_ID,
        "id": MS_KEY,
        "creation_time": 1730000000000i64,
    });
    BTreeMap::from([
        // cmk_kms_key (planned against moto's KMS)
        ("cmk_kms_key.use_cases", json!(["MANAGED_SERVICES"])),
        ("cmk_kms_key.aws_account_id", json!("123456789012")),
        (
            "cmk_kms_key.databricks_account_id",
            json!(crate::sandbox::ACCOUNT_ID),
        ),
        (
            "cmk_kms_key.cross_account_role_arn",
            json!("arn:aws:iam::123456789012:role/xacct"),
        ),
        ("cmk_kms_key.reuse_key_for_cluster_volumes", json!(true)),
        ("cmk_kms_key.policy", json!(policy)),
        ("cmk_kms_key.alias", json!("alias/ws-a")),
        ("cmk_kms_key.description", json!("a key")),
        ("cmk_kms_key.tags", json!({"team": "platform", "n": "1"})),
        ("cmk_kms_key.enable_key_rotation", json!(true)),
        ("cmk_kms_key.multi_region", json!(false)),
        ("cmk_kms_key.deletion_window_in_days", json!(30)),
        ("cmk_kms_key.deletion_protection", json!(true)),
        ("cmk_kms_key.enabled", json!(true)),
        // cmk_key_configuration
        ("cmk_key_configuration.use_cases", json!(["STORAGE"])),
        (
            "cmk_key_configuration.aws_key_info",
            json!({"key_arn": kms_key_arn, "key_alias": "alias/st", "key_region": "us-west-2", "reuse_key_for_cluster_volumes": true}),
        ),
        // cmk_workspace_binding (the workspace keeps its storage key; the
        // managed-services key is set)
        ("cmk_workspace_binding.workspace_id", json!(WORKSPACE)),
        ("cmk_workspace_binding.storage_key", st_obj),
        ("cmk_workspace_binding.storage_key_id", json!(ST_KEY)),
        ("cmk_workspace_binding.managed_services_key", ms_obj),
        (
            "cmk_workspace_binding.managed_services_key_id",
            json!(MS_KEY),
        ),
        (
            "cmk_workspace_binding.required_coverage",
            json!(["dbfs_root", "job_results"]),
        ),
        // the `timeouts` blocks
        ("cmk_kms_key.timeouts.create", json!("30m")),
        ("cmk_kms_key.timeouts.read", json!("5m")),
        ("cmk_kms_key.timeouts.update", json!("1h30m")),
        ("cmk_kms_key.timeouts.delete", json!("90s")),
        ("cmk_key_configuration.timeouts.create", json!("30m")),
        ("cmk_key_configuration.timeouts.read", json!("5m")),
        ("cmk_key_configuration.timeouts.update", json!("1h30m")),
        ("cmk_key_configuration.timeouts.delete", json!("90s")),
        ("cmk_workspace_binding.timeouts.create", json!("30m")),
        ("cmk_workspace_binding.timeouts.read", json!("5m")),
        ("cmk_workspace_binding.timeouts.update", json!("1h30m")),
        ("cmk_workspace_binding.timeouts.delete", json!("90s")),
        // data sources
        (
            "data.cmk_kms_key_policy.use_cases",
            json!(["MANAGED_SERVICES", "STORAGE"]),
        ),
        (
            "data.cmk_kms_key_policy.aws_account_id",
            json!("123456789012"),
        ),
        (
            "data.cmk_kms_key_policy.databricks_account_id",
            json!(crate::sandbox::ACCOUNT_ID),
        ),
        (
            "data.cmk_kms_key_policy.cross_account_role_arn",
            json!("arn:aws:iam::123456789012:role/xacct"),
        ),
        (
            "data.cmk_kms_key_policy.reuse_key_for_cluster_volumes",
            json!(true),
        ),
        ("data.cmk_kms_key_policy.partition", json!("aws")),
        (
            "data.cmk_kms_key_policy.databricks_principal",
            json!("arn:aws:iam::414351767826:root"),
        ),
        ("data.cmk_workspace.workspace_id", json!(WORKSPACE)),
        (
            "data.cmk_encryption_coverage.workspace_id",
            json!(WORKSPACE),
        ),
        (
            "data.cmk_encryption_coverage.all_results_in_customer_account",
            json!(true),
        ),
        // functions
        ("function.key_features.data_type", json!("dbfs_root")),
        (
            "function.dashboard_protected.create_time",
            json!("2025-01-01T00:00:00Z"),
        ),
        ("function.parse_key_arn.arn", json!(ST_ARN)),
    ])
}

/// How the value at a place is written.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Variable,
    Interpolation,
    EachKey,
    CountIndex,
}

const FORMS: [Form; 4] = [
    Form::Variable,
    Form::Interpolation,
    Form::EachKey,
    Form::CountIndex,
];

/// A JSON value as an HCL expression.
fn hcl(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => hcl_string(s),
        J::Array(a) => format!("[{}]", a.iter().map(hcl).collect::<Vec<_>>().join(", ")),
        J::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", hcl_string(k), hcl(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn hcl_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// The value with the expression `expr` at `place` (keys and indexes).
fn hcl_with(v: &J, place: &[String], expr: &str) -> String {
    let Some((step, rest)) = place.split_first() else {
        return expr.to_string();
    };
    match v {
        J::Array(a) => {
            let i: usize = step.parse().unwrap();
            let items: Vec<String> = a
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    if j == i {
                        hcl_with(x, rest, expr)
                    } else {
                        hcl(x)
                    }
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        J::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, x)| {
                    let val = if k == step {
                        hcl_with(x, rest, expr)
                    } else {
                        hcl(x)
                    };
                    format!("{} = {val}", hcl_string(k))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => unreachable!("a place inside a scalar"),
    }
}

fn at<'a>(v: &'a J, place: &[String]) -> &'a J {
    place.iter().fold(v, |v, s| match v {
        J::Array(a) => &a[s.parse::<usize>().unwrap()],
        J::Object(m) => &m[s],
        _ => unreachable!(),
    })
}

/// Every place inside a value, the whole value first.
fn places(v: &J, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        J::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            let mut p = at.clone();
            p.push(i.to_string());
            places(x, p, out)
        }),
        J::Object(m) => m.iter().for_each(|(k, x)| {
            let mut p = at.clone();
            p.push(k.clone());
            places(x, p, out)
        }),
        _ => {}
    }
}

/// One block of the configuration: an object, a place, a form.
struct Case {
    what: String,
    /// Lines of main.tf the block spans (1-based, inclusive).
    lines: (usize, usize),
}

/// The expression for a form, the `for_each`/`count` line it needs, and
/// the variable it declares; `None` where the form does not apply.
fn form(f: Form, value: &J, var: &str) -> Option<(String, String, String)> {
    let scalar = !matches!(value, J::Array(_) | J::Object(_));
    let decl = format!("variable \"{var}\" {{\n  default = {}\n}}\n", hcl(value));
    Some(match f {
        Form::Variable => (format!("var.{var}"), String::new(), decl),
        Form::Interpolation if scalar => (format!("\"${{var.{var}}}\""), String::new(), decl),
        Form::Interpolation => return None,
        Form::EachKey => {
            let (key, expr) = match value {
                J::String(s) => (s.clone(), "each.key".to_string()),
                J::Number(n) => (n.to_string(), "tonumber(each.key)".to_string()),
                J::Bool(b) => (b.to_string(), "tobool(each.key)".to_string()),
                _ => ("k".to_string(), "each.value".to_string()),
            };
            let each = if scalar {
                format!("  for_each = {{ {} = true }}\n", hcl_string(&key))
            } else {
                format!("  for_each = {{ k = {} }}\n", hcl(value))
            };
            (expr, each, String::new())
        }
        Form::CountIndex => (
            format!("[{}][count.index]", hcl(value)),
            "  count = 1\n".to_string(),
            String::new(),
        ),
    })
}

/// The settable attributes of a nested object (`nested_type`) that its
/// sample leaves out, at any depth.
fn nested_missing(at: &str, a: &J, sample: &J, missing: &mut Vec<String>) {
    let Some(attrs) = a["nested_type"]["attributes"].as_object() else {
        return;
    };
    let objects: Vec<&J> = match sample {
        J::Array(items) => items.iter().collect(),
        J::Object(m) if a["nested_type"]["nesting_mode"] == "map" => m.values().collect(),
        other => vec![other],
    };
    for (name, inner) in attrs.iter().filter(|(_, x)| settable(x)) {
        for o in &objects {
            match o.get(name) {
                Some(v) => nested_missing(&format!("{at}.{name}"), inner, v, missing),
                None => missing.push(format!("{at}.{name}")),
            }
        }
    }
}

fn settable(a: &J) -> bool {
    a["required"] == true || a["optional"] == true
}

/// The configuration of every case, and the cases by line.
fn configuration(
    schema: &J,
    providers: &str,
    kms_key_arn: &str,
) -> (String, Vec<Case>, Vec<String>) {
    let samples = samples(kms_key_arn);
    let mut missing = vec![];
    let mut main = format!("{CMK_HEADER}\n{providers}\n");
    let mut cases = vec![];
    let mut n = 0;
    let push = |main: &mut String, cases: &mut Vec<Case>, what: String, text: String| {
        let start = main.lines().count() + 1;
        main.push_str(&text);
        cases.push(Case {
            what,
            lines: (start, main.lines().count()),
        });
    };
    for (kind, key) in [
        ("resource", "resource_schemas"),
        ("data", "data_source_schemas"),
    ] {
        let Some(objects) = schema[key].as_object() else {
            continue;
        };
        for (ty, s) in objects {
            let prefix = if kind == "data" {
                format!("data.{ty}")
            } else {
                ty.clone()
            };
            let attrs = s["block"]["attributes"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let required: Vec<(&String, &J)> = attrs
                .iter()
                .filter(|(_, a)| a["required"] == true)
                .collect();
            // The places to write: each settable attribute (block None), and
            // each settable attribute of a single nested block (`timeouts
            // { create = ... }`). Other nested blocks would need places of
            // their own: a schema that gains one fails here until the test
            // covers it.
            let mut settables: Vec<(Option<String>, String, J)> = attrs
                .iter()
                .filter(|(_, a)| settable(a))
                .map(|(n, a)| (None, n.clone(), a.clone()))
                .collect();
            for (b, bs) in s["block"]["block_types"].as_object().into_iter().flatten() {
                if bs["nesting_mode"] != "single" {
                    missing.push(format!(
                        "{prefix}.{b} (a {} nested block: extend this test)",
                        bs["nesting_mode"]
                    ));
                    continue;
                }
                for (n, a) in bs["block"]["attributes"].as_object().into_iter().flatten() {
                    if settable(a) {
                        settables.push((Some(b.clone()), n.clone(), a.clone()));
                    }
                }
            }
            for (block, name, a) in &settables {
                let full = match block {
                    Some(b) => format!("{b}.{name}"),
                    None => name.clone(),
                };
                let Some(sample) = samples.get(format!("{prefix}.{full}").as_str()) else {
                    missing.push(format!("{prefix}.{full}"));
                    continue;
                };
                // A nested object's own settable attributes are places too.
                nested_missing(&format!("{prefix}.{name}"), a, sample, &mut missing);
                let mut inside = vec![];
                places(sample, vec![], &mut inside);
                for place in inside {
                    for f in FORMS {
                        n += 1;
                        let var = format!("v{n}");
                        let Some((expr, meta, decl)) = form(f, at(sample, &place), &var) else {
                            continue;
                        };
                        let mut body = meta;
                        if ty == "cmk_kms_key" {
                            body.push_str("  provider = cmk.aws\n");
                        }
                        for (r, _) in &required {
                            if block.is_some() || *r != name {
                                let v = samples
                                    .get(format!("{prefix}.{r}").as_str())
                                    .cloned()
                                    .unwrap_or(J::Null);
                                body.push_str(&format!("  {r} = {}\n", hcl(&v)));
                            }
                        }
                        let line = format!("{name} = {}", hcl_with(sample, &place, &expr));
                        match block {
                            Some(b) => body.push_str(&format!("  {b} {{\n    {line}\n  }}\n")),
                            None => body.push_str(&format!("  {line}\n")),
                        }
                        let text = format!("{decl}{kind} \"{ty}\" \"c{n}\" {{\n{body}}}\n");
                        push(
                            &mut main,
                            &mut cases,
                            format!(
                                "{prefix}.{full}{} as {f:?}",
                                place.iter().map(|p| format!("[{p}]")).collect::<String>()
                            ),
                            text,
                        );
                    }
                }
            }
        }
    }
    if let Some(functions) = schema["functions"].as_object() {
        for (fname, f) in functions {
            if !f["variadic_parameter"].is_null() {
                missing.push(format!(
                    "function.{fname} variadic parameter (extend this test)"
                ));
            }
            let params = f["parameters"].as_array().cloned().unwrap_or_default();
            let args: Vec<J> = params
                .iter()
                .map(|p| {
                    let key = format!("function.{fname}.{}", p["name"].as_str().unwrap_or(""));
                    samples.get(key.as_str()).cloned().unwrap_or_else(|| {
                        missing.push(key);
                        J::Null
                    })
                })
                .collect();
            for (i, p) in params.iter().enumerate() {
                for fm in FORMS {
                    n += 1;
                    let var = format!("v{n}");
                    let Some((expr, meta, decl)) = form(fm, &args[i], &var) else {
                        continue;
                    };
                    let call: Vec<String> = args
                        .iter()
                        .enumerate()
                        .map(|(j, a)| if j == i { expr.clone() } else { hcl(a) })
                        .collect();
                    let text = format!(
                        "{decl}resource \"terraform_data\" \"c{n}\" {{\n{meta}  input = provider::cmk::{fname}({})\n}}\n",
                        call.join(", ")
                    );
                    push(
                        &mut main,
                        &mut cases,
                        format!(
                            "function {fname}({}) as {fm:?}",
                            p["name"].as_str().unwrap_or("")
                        ),
                        text,
                    );
                }
            }
        }
    }
    (main, cases, missing)
}

fn case_of<'a>(cases: &'a [Case], d: &J) -> &'a str {
    let line = d["range"]["start"]["line"].as_u64().unwrap_or(0) as usize;
    cases
        .iter()
        .find(|c| c.lines.0 <= line && line <= c.lines.1)
        .map_or("(no case)", |c| c.what.as_str())
}

/// Rust's debug form where a person reads.
fn debug_form(text: &str) -> bool {
    ["Refinements", "Unknown(", "Some(", "None,", "Known("]
        .iter()
        .any(|p| text.contains(p))
}

fn describe(cases: &[Case], diags: &[J]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "[{}] {}: {} | {}",
                case_of(cases, d),
                d["severity"].as_str().unwrap_or(""),
                d["summary"].as_str().unwrap_or(""),
                d["detail"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_settable_attribute_takes_unknowns_at_every_depth() {
    if !enabled("every_settable_attribute_takes_unknowns_at_every_depth") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let moto = MotoServer::start();
    let aws = format!(
        "provider \"cmk\" {{\n  alias        = \"aws\"\n  aws_region   = \"us-east-1\"\n  kms_endpoint = \"{}\"\n}}\n",
        moto.endpoint
    );
    let providers = format!("{}\n{aws}", sb.provider_block());
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{providers}"));
    w.env.extend(oauth_env());
    w.env
        .extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    w.env
        .push(("AWS_ENDPOINT_URL_STS".into(), moto.endpoint.clone()));
    w.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));

    let o = w.run(&["providers", "schema", "-json"]);
    o.ok();
    let all: J = serde_json::from_str(&o.stdout).expect("providers schema -json");
    let schema = &all["provider_schemas"][PROVIDER];
    assert!(schema.is_object(), "no schema for {PROVIDER}: {}", o.stdout);

    // A real key for the key configurations, whose policy gives Databricks
    // what STORAGE with cluster volumes needs (they are verified at plan).
    let policy = cmk::rules::kms_policy::to_canonical_json(
        &cmk::rules::kms_policy::generate(&cmk::rules::kms_policy::PolicyInput {
            use_cases: [cmk::rules::KeyFeature::Storage].into(),
            aws_account_id: "123456789012".into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: true,
            partition: cmk::rules::ids::Partition::Aws,
            databricks_principal: None,
            deployment: None,
        })
        .unwrap(),
    );
    let arn = moto.boto3(
        "us-west-2",
        &format!(
            "print(kms.create_key(Policy={:?})['KeyMetadata']['Arn'])",
            policy
        ),
    );
    let (main, cases, missing) = configuration(schema, &providers, &arn);
    assert!(
        missing.is_empty(),
        "settable attributes without a sample in acceptance-tests/unknowns.rs: {missing:?}"
    );
    // Every object and function, with places inside sets, maps and objects.
    for must in [
        "cmk_kms_key.tags[team] as EachKey",
        "cmk_kms_key.use_cases[0] as CountIndex",
        "cmk_key_configuration.aws_key_info[key_arn] as Variable",
        "cmk_workspace_binding.storage_key[use_cases][0] as Interpolation",
        "data.cmk_kms_key_policy.use_cases[1] as EachKey",
        "function parse_key_arn(arn) as CountIndex",
    ] {
        assert!(cases.iter().any(|c| c.what == must), "no case {must}");
    }
    w.write("main.tf", &main);

    // (1) validate: every variable, count.index and each.key unknown.
    let diags = validate_diagnostics(&w);
    let bad: Vec<J> = diags
        .iter()
        .filter(|d| d["severity"] == "error" || debug_form(&d.to_string()))
        .cloned()
        .collect();
    assert!(
        bad.is_empty(),
        "terraform validate refused unknowns ({} cases):\n{}",
        cases.len(),
        describe(&cases, &bad)
    );

    // (2) plan: the same configuration, now with known keys and variables,
    // plans, and every rule decides (nothing waits for apply).
    let (code, diags) = plan_diagnostics(&w);
    let bad: Vec<J> = diags
        .iter()
        .filter(|d| {
            d["severity"] == "error"
                || debug_form(&d.to_string())
                || d["summary"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Decided at apply")
        })
        .cloned()
        .collect();
    assert!(
        bad.is_empty() && (code == 0 || code == 2),
        "terraform plan (exit {code}) of {} cases:\n{}",
        cases.len(),
        describe(&cases, &bad)
    );
}

fn workdir(sb: &Sandbox, body: &str) -> Workdir {
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{}\n{body}", sb.provider_block()));
    w.env.extend(oauth_env());
    w
}

/// The configuration of the issue: one key per workspace with `count`,
/// tagged with its index, and a `for_each` over a map of workspaces.
#[test]
fn keys_with_count_and_for_each_validate_and_plan() {
    if !enabled("keys_with_count_and_for_each_validate_and_plan") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let moto = MotoServer::start();
    let mut w = workdir(
        &sb,
        &format!(
            r#"
provider "cmk" {{
  alias        = "aws"
  aws_region   = "us-west-2"
  kms_endpoint = "{endpoint}"
}}

variable "use_case" {{
  default = "STORAGE"
}}

variable "workspaces" {{
  default = {{ analytics = {WORKSPACE}, serverless = {SERVERLESS} }}
}}

resource "cmk_kms_key" "k" {{
  provider              = cmk.aws
  count                 = 10
  use_cases             = ["MANAGED_SERVICES", var.use_case]
  databricks_account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  alias                 = "alias/ws-${{count.index}}"
  tags                  = {{ team = "platform", n = "${{count.index}}" }}
}}

resource "cmk_kms_key" "per_workspace" {{
  provider  = cmk.aws
  for_each  = var.workspaces
  use_cases = ["MANAGED_SERVICES"]
  alias     = "alias/${{each.key}}"
  tags      = {{ workspace = each.key, id = tostring(each.value) }}
}}

data "cmk_kms_key_policy" "p" {{
  for_each       = var.workspaces
  use_cases      = [var.use_case]
  aws_account_id = "123456789012"
}}
"#,
            endpoint = moto.endpoint
        ),
    );
    w.env
        .extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    w.env
        .push(("AWS_ENDPOINT_URL_STS".into(), moto.endpoint.clone()));
    w.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    let diags: Vec<J> = validate_diagnostics(&w)
        .into_iter()
        .filter(|d| d["summary"] != "Provider development overrides are in effect")
        .collect();
    assert!(
        diags.is_empty(),
        "validate: {}",
        serde_json::to_string_pretty(&diags).unwrap()
    );
    let o = w.run(&["plan", "-input=false", "-no-color"]);
    o.ok();
    assert!(
        o.stdout.contains("Plan: 12 to add"),
        "plan of 10 + 2 keys:\n{}",
        o.all()
    );
}

fn bare_id_config(workspace: i64) -> String {
    format!(
        r#"
resource "cmk_key_configuration" "s" {{
  use_cases = ["STORAGE"]
  aws_key_info = {{
    key_arn = "{ST_ARN}"
  }}
}}

resource "cmk_workspace_binding" "b" {{
  workspace_id   = {workspace}
  storage_key_id = cmk_key_configuration.s.customer_managed_key_id
}}
"#
    )
}

/// The "Decided at apply" warnings of a plan.
fn waiting(diags: &[J]) -> Vec<&J> {
    diags
        .iter()
        .filter(|d| {
            d["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("Decided at apply")
        })
        .collect()
}

/// A bare id not known at plan (the official provider's style): one
/// warning on the argument names every rule left for apply and the fix.
#[test]
fn a_bare_key_id_unknown_at_plan_says_which_rules_wait_for_apply() {
    if !enabled("a_bare_key_id_unknown_at_plan_says_which_rules_wait_for_apply") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let w = workdir(&sb, &bare_id_config(SERVERLESS));
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "plan: {diags:#?}");
    let waits = waiting(&diags);
    assert_eq!(waits.len(), 1, "one warning: {diags:#?}");
    let d = waits[0];
    assert_eq!(d["severity"], "warning");
    let summary = d["summary"].as_str().unwrap();
    let detail = d["detail"].as_str().unwrap();
    for rule in ["CMK002", "CMK005", "CMK007"] {
        assert!(summary.contains(rule), "{rule} in {summary:?}");
        assert!(detail.contains(rule), "{rule} in {detail}");
    }
    assert!(
        detail.contains("storage_key = cmk_key_configuration.NAME"),
        "the fix: {detail}"
    );
    let line = w.line_of("storage_key_id = cmk_key_configuration.s");
    assert_eq!(
        d["range"]["start"]["line"], line,
        "on storage_key_id: {d:#}"
    );
    assert!(!debug_form(&d.to_string()), "{d:#}");
}

/// What waited for apply is decided there, before the workspace changes:
/// a us-west-2 key for a Frankfurt workspace (CMK002).
#[test]
fn a_rule_left_for_apply_refuses_before_the_workspace_changes() {
    if !enabled("a_rule_left_for_apply_refuses_before_the_workspace_changes") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let w = workdir(&sb, &bare_id_config(FRANKFURT));
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "plan: {diags:#?}");
    let waits = waiting(&diags);
    assert!(
        waits.len() == 1 && waits[0]["summary"].as_str().unwrap().contains("CMK002"),
        "{diags:#?}"
    );
    let o = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(o.code, 0, "apply must refuse:\n{}", o.all());
    assert!(o.all().contains("CMK002"), "{}", o.all());
    let (status, body) = sb.admin("GET", "/_sandbox/state", "");
    assert_eq!(status, 200, "{body}");
    let state: J = serde_json::from_str(&body).unwrap();
    let text = state.to_string();
    assert!(
        text.contains(&FRANKFURT.to_string()),
        "workspace in the state dump"
    );
    for a in state["accounts"].as_array().into_iter().flatten() {
        for ws in a["workspaces"].as_array().into_iter().flatten() {
            if ws["workspace_id"] == FRANKFURT {
                assert!(
                    ws["storage_customer_managed_key_id"].is_null(),
                    "the workspace must be unchanged: {ws:#}"
                );
            }
        }
    }
    // Passed whole, the same configuration decides at plan.
    let w = workdir(
        &sb,
        &bare_id_config(FRANKFURT).replace(
            "storage_key_id = cmk_key_configuration.s.customer_managed_key_id",
            "storage_key = cmk_key_configuration.s",
        ),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 1, "CMK002 at plan: {diags:#?}");
    assert!(
        diags
            .iter()
            .any(|d| d["summary"].as_str().unwrap_or("").starts_with("CMK002")),
        "{diags:#?}"
    );
    assert!(waiting(&diags).is_empty(), "{diags:#?}");
}

/// A workspace id not known at plan: the binding's rules wait for apply,
/// and the plan says so.
#[test]
fn a_workspace_id_unknown_at_plan_says_the_rules_wait_for_apply() {
    if !enabled("a_workspace_id_unknown_at_plan_says_the_rules_wait_for_apply") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let w = workdir(
        &sb,
        &format!(
            r#"
resource "terraform_data" "ws" {{
  input = {WORKSPACE}
}}

resource "cmk_workspace_binding" "b" {{
  workspace_id   = terraform_data.ws.output
  storage_key_id = "{ST_KEY}"
}}
"#
        ),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "plan: {diags:#?}");
    let waits = waiting(&diags);
    assert!(!waits.is_empty(), "{diags:#?}");
    let all = serde_json::to_string(&waits).unwrap();
    assert!(all.contains("CMK001"), "the tier rule waits: {all}");
    // The seeded storage key leaves cluster-volume reuse to Databricks'
    // default (true): whether the workspace is serverless decides CMK007.
    assert!(all.contains("CMK007"), "the EBS rule waits: {all}");
    assert!(all.contains("workspace_id"), "{all}");
}

/// Cluster-volume reuse known only at apply, on a serverless workspace:
/// the plan names CMK007 among the rules that wait, and apply refuses the
/// binding before the workspace changes (EBS keys are rejected for
/// serverless, issue 18).
#[test]
fn an_unknown_reuse_flag_on_serverless_waits_for_apply_and_apply_refuses_cmk007() {
    if !enabled("an_unknown_reuse_flag_on_serverless_waits_for_apply_and_apply_refuses_cmk007") {
        return;
    }
    let sb = Sandbox::start_with(SEED);
    let w = workdir(
        &sb,
        &format!(
            r#"
resource "terraform_data" "reuse" {{
  input = true
}}

resource "cmk_key_configuration" "s" {{
  use_cases = ["STORAGE"]
  aws_key_info = {{
    key_arn                       = "{ST_ARN}"
    reuse_key_for_cluster_volumes = terraform_data.reuse.output
  }}
}}

resource "cmk_workspace_binding" "b" {{
  workspace_id = {SERVERLESS}
  storage_key  = cmk_key_configuration.s
}}
"#
        ),
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_eq!(code, 0, "plan: {diags:#?}");
    let waits = waiting(&diags);
    let all = serde_json::to_string(&waits).unwrap();
    assert!(all.contains("CMK007"), "CMK007 waits for apply: {diags:#?}");
    assert!(!debug_form(&all), "{all}");
    let o = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(o.code, 0, "apply must refuse:\n{}", o.all());
    assert!(o.all().contains("CMK007"), "{}", o.all());
    assert!(
        o.all().contains("reuse_key_for_cluster_volumes"),
        "the fix names the argument: {}",
        o.all()
    );
    let (status, body) = sb.admin("GET", "/_sandbox/state", "");
    assert_eq!(status, 200, "{body}");
    let state: J = serde_json::from_str(&body).unwrap();
    let mut seen = false;
    for a in state["accounts"].as_array().into_iter().flatten() {
        for ws in a["workspaces"].as_array().into_iter().flatten() {
            if ws["workspace_id"] == SERVERLESS {
                seen = true;
                assert!(
                    ws["storage_customer_managed_key_id"].is_null(),
                    "the workspace must be unchanged: {ws:#}"
                );
            }
        }
    }
    assert!(
        seen,
        "the serverless workspace in the state dump: {state:#}"
    );
}
