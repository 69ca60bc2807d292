//! Real plans of the review eval corpus (fixtures/review/eval/NAME/plan.json):
//! for each configuration, the real Terraform CLI with the real hashicorp/aws
//! provider (from the filesystem mirror /opt/tf-plugins) and the databricks
//! stand-in (example `databricks_standin`, from a mirror made here), the AWS
//! provider pointed at moto. The test plans every configuration again and
//! fails, showing the first difference, when a committed plan is no longer
//! what Terraform writes today; with CMK_REWRITE_REAL_PLANS=1 it rewrites them.
//! A configuration with a `prior.tfstate` is planned against that state (an
//! object that exists already). A configuration Terraform refuses (its
//! expected.json says `"terraform_refuses": true`) has no plan: the test here
//! checks that Terraform and review both refuse it, naming the same places.
//! How they are made and what the stand-in means: fixtures/review/eval/README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{enabled, example_bin, provider_bin, terraform};
use crate::moto_server::{MotoServer, ACCESS_KEY, SECRET_KEY};

/// The filesystem mirror holding the real hashicorp/aws provider.
pub const AWS_MIRROR: &str = "/opt/tf-plugins";
pub const AWS_VERSION: &str = "5.100.0";
/// The version the databricks stand-in is installed as (no configuration
/// constrains it; it names no release of the official provider).
pub const STANDIN_VERSION: &str = "0.0.1";
/// The fixed timestamp committed plans carry instead of the time they were made.
pub const NORMALIZED_TIMESTAMP: &str = "2000-01-01T00:00:00Z";
pub const REWRITE_ENV: &str = "CMK_REWRITE_REAL_PLANS";

pub fn eval_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("acceptance-tests/fixtures/review/eval")
}

/// The real aws provider's binary in the mirror; a missing one is a failure.
fn aws_provider() -> PathBuf {
    let dir = Path::new(AWS_MIRROR)
        .join("registry.terraform.io/hashicorp/aws")
        .join(AWS_VERSION)
        .join("linux_amd64");
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("terraform-provider-aws"))
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "the real hashicorp/aws {AWS_VERSION} provider is missing from the filesystem mirror {}: \
             real plans need it (unpack terraform-provider-aws_{AWS_VERSION}_linux_amd64.zip there; \
             see acceptance-tests/fixtures/review/eval/README.md)",
            dir.display()
        )
    })
}

/// The file a configuration's prior state is committed as; it is copied in
/// as `terraform.tfstate` before `terraform plan`.
pub const PRIOR_STATE: &str = "prior.tfstate";

fn expected_of(dir: &Path) -> serde_json::Value {
    let path = dir.join("expected.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether expected.json marks the configuration as one Terraform refuses
/// (`"terraform_refuses": true`): it has no plan.
pub fn terraform_refuses(dir: &Path) -> bool {
    match expected_of(dir).get("terraform_refuses") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => panic!(
            "{}/expected.json: terraform_refuses is {other}, not true or false",
            dir.display()
        ),
    }
}

/// Every directory of the corpus with an expected.json.
fn corpus() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(eval_dir())
        .expect("eval corpus directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The eval configurations Terraform plans: every directory with an
/// expected.json but those it marks `"terraform_refuses": true`.
pub fn configurations() -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = corpus()
        .into_iter()
        .filter(|d| !terraform_refuses(d))
        .collect();
    assert!(
        !dirs.is_empty(),
        "no eval configuration found in {}",
        eval_dir().display()
    );
    dirs
}

/// The eval configurations Terraform refuses (no plan.json).
pub fn refused_configurations() -> Vec<PathBuf> {
    corpus()
        .into_iter()
        .filter(|d| terraform_refuses(d))
        .collect()
}

/// Copies a configuration's .tf files (and its modules), nothing else.
fn copy_tf_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_tf_tree(&p, &dest);
        } else if p.extension().is_some_and(|x| x == "tf") {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The `-var` arguments of a configuration's expected.json "vars".
fn var_args(dir: &Path) -> Vec<String> {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut args = vec![];
    if let Some(vars) = expected.get("vars").and_then(|v| v.as_object()) {
        for (k, v) in vars {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            args.push(format!("-var={k}={text}"));
        }
    }
    args
}

/// What changes from one run to the next, made constant: the plan's
/// timestamp, the order of `relevant_attributes` (Terraform writes that set
/// in map order, which differs between runs; sorted here), and any absolute
/// path of the run's temporary directory.
pub fn normalize(mut plan: serde_json::Value, workdir: &Path) -> String {
    if let Some(t) = plan.get_mut("timestamp") {
        *t = serde_json::Value::String(NORMALIZED_TIMESTAMP.into());
    }
    if let Some(serde_json::Value::Array(attrs)) = plan.get_mut("relevant_attributes") {
        attrs.sort_by_cached_key(|a| a.to_string());
    }
    let text = serde_json::to_string_pretty(&plan).unwrap() + "\n";
    text.replace(&workdir.display().to_string(), "<workdir>")
}

/// A place to run Terraform with both mirrors and moto.
pub struct RealPlanner {
    root: tempfile::TempDir,
    moto: MotoServer,
    terraform: PathBuf,
}

impl RealPlanner {
    pub fn new() -> RealPlanner {
        let terraform = terraform();
        aws_provider();
        let standin = example_bin("databricks_standin");
        let moto = MotoServer::start();
        let root = tempfile::Builder::new()
            .prefix("cmk-realplan-")
            .tempdir()
            .expect("tempdir");
        let mirror = root.path().join("mirror");
        let pkg = mirror
            .join("registry.terraform.io/databricks/databricks")
            .join(STANDIN_VERSION)
            .join("linux_amd64");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::copy(
            &standin,
            pkg.join(format!("terraform-provider-databricks_v{STANDIN_VERSION}")),
        )
        .unwrap();
        std::fs::write(
            root.path().join("cli.tfrc"),
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{AWS_MIRROR}\"\n    include = [\"hashicorp/aws\"]\n  }}\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"databricks/databricks\"]\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .unwrap();
        RealPlanner {
            root,
            moto,
            terraform,
        }
    }

    fn tf(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "terraform {} in {} failed:\n--- stdout\n{stdout}\n--- stderr\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs terraform in `dir` with both mirrors and moto, whatever its exit.
    fn run(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new(&self.terraform)
            .args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", self.root.path().join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_REATTACH_PROVIDERS")
            .env_remove("AWS_PROFILE")
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .expect("run terraform")
    }

    /// `terraform init`, `plan -out` with the configuration's vars, and
    /// `show -json`, normalized.
    pub fn plan(&self, config: &Path) -> String {
        self.plan_with(config, &[])
    }

    /// As [`RealPlanner::plan`], with `extra` arguments after the
    /// configuration's `-var`s (a later `-var` wins), in a work directory of
    /// its own.
    pub fn plan_with(&self, config: &Path, extra: &[&str]) -> String {
        let mut name = config.file_name().unwrap().to_os_string();
        if !extra.is_empty() {
            name.push(format!("-{}", extra.len()));
        }
        let work = self.root.path().join("work").join(name);
        copy_tf_tree(config, &work);
        // An object that exists already: Terraform reads the local backend's
        // terraform.tfstate, and refreshes it through the provider (the
        // stand-in's ReadResource returns the state as it is).
        let prior = config.join(PRIOR_STATE);
        if prior.exists() {
            std::fs::copy(&prior, work.join("terraform.tfstate")).unwrap();
        }
        self.tf(
            &work,
            &["init", "-input=false", "-no-color", "-backend=false"],
        );
        let mut args: Vec<String> = [
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-out=plan.bin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(var_args(config));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tf(&work, &args);
        let json = self.tf(&work, &["show", "-json", "-no-color", "plan.bin"]);
        let plan: serde_json::Value =
            serde_json::from_str(&json).expect("terraform show -json is JSON");
        normalize(plan, &work)
    }
}

/// A plan made against a committed prior state read it: every object of
/// that state is in the plan's prior_state, and none of them is planned as
/// a create (an existing object is updated, replaced, kept or destroyed).
fn planned_against_the_prior_state(config: &Path, plan: &serde_json::Value) {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.join(PRIOR_STATE)).unwrap()).unwrap();
    let in_prior: Vec<String> = plan["prior_state"]["values"]["root_module"]["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let resources = state["resources"].as_array().expect("state resources");
    assert!(
        !resources.is_empty(),
        "{}: empty prior state",
        config.display()
    );
    for r in resources {
        let address = format!(
            "{}.{}",
            r["type"].as_str().unwrap(),
            r["name"].as_str().unwrap()
        );
        assert!(
            in_prior.contains(&address),
            "{}: {address} of {PRIOR_STATE} is not in the plan's prior_state ({in_prior:?})",
            config.display()
        );
        let change = plan["resource_changes"]
            .as_array()
            .and_then(|rc| rc.iter().find(|c| c["address"] == address.as_str()))
            .unwrap_or_else(|| panic!("{}: {address} has no resource change", config.display()));
        assert_ne!(
            change["change"]["actions"],
            serde_json::json!(["create"]),
            "{}: {address} exists in {PRIOR_STATE} but is planned as new",
            config.display()
        );
    }
}

/// The configurations Terraform refuses: `terraform validate` exits non-zero
/// with Terraform's own "Duplicate ..." error naming both places, and
/// `terraform-provider-cmk review DIR` exits 2 naming the same two places
/// (expected.json "duplicate" and "declared_at").
#[test]
fn terraform_and_review_refuse_the_same_configurations() {
    if !enabled("terraform_and_review_refuse_the_same_configurations") {
        return;
    }
    let refused = refused_configurations();
    assert!(
        !refused.is_empty(),
        "no eval configuration marked \"terraform_refuses\": true in {}",
        eval_dir().display()
    );
    let planner = RealPlanner::new();
    for config in refused {
        let expected = expected_of(&config);
        assert!(
            !config.join("plan.json").exists(),
            "{}: Terraform refuses this configuration, so it has no plan.json",
            config.display()
        );
        let what = expected["duplicate"]
            .as_str()
            .expect("expected.json duplicate");
        let places: Vec<&str> = expected["declared_at"]
            .as_array()
            .expect("expected.json declared_at")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(places.len(), 2, "{}: declared_at", config.display());
        let work = planner
            .root
            .path()
            .join("work")
            .join(config.file_name().unwrap());
        copy_tf_tree(&config, &work);
        // Terraform: init reads the configuration already; either init or
        // validate must refuse it.
        let init = planner.run(
            &work,
            &["init", "-input=false", "-no-color", "-backend=false"],
        );
        let out = if init.status.success() {
            planner.run(&work, &["validate", "-no-color"])
        } else {
            init
        };
        // Terraform wraps its messages: compared with whitespace collapsed.
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
        assert!(
            !out.status.success(),
            "{}: terraform accepted it:\n{said}",
            config.display()
        );
        // "Duplicate resource \"aws_kms_key\" configuration", on the second
        // place ("on main.tf line 17"), "already declared at keys.tf:3,...".
        let mut kind_and_type = what.splitn(3, ' ');
        let (kind, rtype) = (kind_and_type.next().unwrap(), kind_and_type.next().unwrap());
        let summary = format!("Duplicate {kind} {rtype} configuration");
        assert!(
            said.contains(&summary),
            "{}: no {summary:?} in:\n{said}",
            config.display()
        );
        let (first_file, first_line) = places[0].split_once(':').unwrap();
        let (second_file, second_line) = places[1].split_once(':').unwrap();
        assert!(
            said.contains(&format!("on {second_file} line {second_line}")),
            "{}: terraform does not point at {}:\n{said}",
            config.display(),
            places[1]
        );
        assert!(
            said.contains(&format!("already declared at {first_file}:{first_line},")),
            "{}: terraform does not name {}:\n{said}",
            config.display(),
            places[0]
        );
        // review: exit 2, naming both places and what is declared twice.
        let review = Command::new(provider_bin())
            .arg("review")
            .arg(&config)
            .args(var_args(&config).iter().flat_map(|a| {
                let (_, kv) = a.split_once('=').unwrap();
                ["-var".to_string(), kv.to_string()]
            }))
            .stdin(Stdio::null())
            .output()
            .expect("run terraform-provider-cmk review");
        let review_said = format!(
            "{}{}",
            String::from_utf8_lossy(&review.stdout),
            String::from_utf8_lossy(&review.stderr)
        );
        assert_eq!(
            review.status.code(),
            Some(2),
            "{}: review did not exit 2:\n{review_said}",
            config.display()
        );
        for needle in [
            format!("duplicate {what}"),
            places[0].to_string(),
            places[1].to_string(),
        ] {
            assert!(
                review_said.contains(&needle),
                "{}: review does not say {needle:?}:\n{review_said}",
                config.display()
            );
        }
    }
}

/// The first line where two texts differ, with a few lines around it.
fn first_difference(committed: &str, today: &str) -> String {
    let a: Vec<&str> = committed.lines().collect();
    let b: Vec<&str> = today.lines().collect();
    let at = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(3);
    let show = |l: &[&str]| {
        l.iter()
            .enumerate()
            .skip(from)
            .take(7)
            .map(|(i, s)| format!("{:>5}: {s}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {}:\n--- committed\n{}\n--- terraform today\n{}",
        at + 1,
        show(&a),
        show(&b)
    )
}

#[test]
fn committed_eval_plans_are_what_terraform_writes_today() {
    if !enabled("committed_eval_plans_are_what_terraform_writes_today") {
        return;
    }
    let rewrite = std::env::var(REWRITE_ENV).is_ok_and(|v| v == "1");
    let planner = RealPlanner::new();
    let mut stale = vec![];
    for config in configurations() {
        let today = planner.plan(&config);
        let path = config.join("plan.json");
        // Terraform wrote a plan that reads the AWS data sources from moto
        // and plans the databricks resources through the stand-in.
        let plan: serde_json::Value = serde_json::from_str(&today).unwrap();
        assert_eq!(plan["terraform_version"], "1.11.4", "{}", path.display());
        assert!(
            plan["resource_changes"].as_array().is_some_and(|rc| rc
                .iter()
                .any(|c| c["provider_name"] == "registry.terraform.io/databricks/databricks")),
            "{}: no databricks resource planned",
            path.display()
        );
        if config.join(PRIOR_STATE).exists() {
            planned_against_the_prior_state(&config, &plan);
        }
        if rewrite {
            std::fs::write(&path, &today).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == today => {}
            Ok(committed) => stale.push(format!(
                "{} is not what Terraform writes today; {}",
                path.display(),
                first_difference(&committed, &today)
            )),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n\nRewrite them with: {REWRITE_ENV}=1 TF_ACC=1 CMK_VENV=$PWD/.venv cargo test --release --test acceptance real_plans",
        stale.join("\n\n")
    );
}

/// The stand-in plans as a plugin-SDK provider does (unset computed
/// attributes unknown, nested ones too; set ones as configured) and refuses
/// to apply, saying what it is.
#[test]
fn the_databricks_stand_in_plans_unknowns_and_refuses_to_apply() {
    if !enabled("the_databricks_stand_in_plans_unknowns_and_refuses_to_apply") {
        return;
    }
    let planner = RealPlanner::new();
    let work = planner.root.path().join("work").join("standin");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("main.tf"),
        r#"terraform {
  required_providers {
    databricks = { source = "databricks/databricks" }
  }
}

resource "databricks_mws_customer_managed_keys" "k" {
  account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info {
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }
}
"#,
    )
    .unwrap();
    planner.tf(
        &work,
        &["init", "-input=false", "-no-color", "-backend=false"],
    );
    planner.tf(
        &work,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-out=plan.bin",
        ],
    );
    let plan: serde_json::Value =
        serde_json::from_str(&planner.tf(&work, &["show", "-json", "-no-color", "plan.bin"]))
            .unwrap();
    let change = &plan["resource_changes"][0]["change"];
    assert_eq!(change["actions"], serde_json::json!(["create"]));
    assert_eq!(
        change["after"]["aws_key_info"][0]["key_arn"],
        "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(
        change["after"]["aws_key_info"][0]["key_alias"],
        serde_json::Value::Null
    );
    for unknown in ["customer_managed_key_id", "creation_time", "id"] {
        assert_eq!(
            change["after_unknown"][unknown], true,
            "{unknown}: {change:#}"
        );
    }
    assert_eq!(
        change["after_unknown"]["aws_key_info"][0]["key_region"], true,
        "{change:#}"
    );
    let out = planner.run(
        &work,
        &[
            "apply",
            "-input=false",
            "-no-color",
            "-lock=false",
            "plan.bin",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "apply through the stand-in succeeded"
    );
    assert!(
        stderr.contains("Plan-only stand-in") && stderr.contains("cannot apply changes"),
        "{stderr}"
    );
}

/// The stand-in plans a change of an existing object as the official
/// provider's schema says: `storage_customer_managed_key_id` of
/// `databricks_mws_workspaces` is updatable in place (the provider's
/// `workspaceRunningUpdatesAllowed`), `aws_region` is ForceNew (a
/// replacement); an unset argument with a default keeps it. Planned against
/// existing_workspace_storage_key's prior state.
#[test]
fn the_databricks_stand_in_plans_updates_and_replacements_as_the_official_schema_says() {
    if !enabled(
        "the_databricks_stand_in_plans_updates_and_replacements_as_the_official_schema_says",
    ) {
        return;
    }
    let planner = RealPlanner::new();
    let config = eval_dir().join("existing_workspace_storage_key");
    let action = |plan: &serde_json::Value, address: &str| {
        plan["resource_changes"]
            .as_array()
            .and_then(|rc| rc.iter().find(|c| c["address"] == address))
            .map(|c| c["change"].clone())
            .unwrap_or_else(|| panic!("{address} not in the plan"))
    };
    let update: serde_json::Value = serde_json::from_str(&planner.plan(&config)).unwrap();
    let ws = action(&update, "databricks_mws_workspaces.this");
    assert_eq!(ws["actions"], serde_json::json!(["update"]), "{ws:#}");
    assert_eq!(
        ws["before"]["storage_customer_managed_key_id"],
        "c0ffee00-0000-4000-8000-0000000000a1"
    );
    assert_eq!(
        ws["after_unknown"]["storage_customer_managed_key_id"], true,
        "{ws:#}"
    );
    // Unset, with the SDK default true: kept, not planned as null.
    assert_eq!(ws["after"]["is_no_public_ip_enabled"], true, "{ws:#}");
    for kept in [
        "databricks_mws_credentials.this",
        "databricks_mws_customer_managed_keys.storage",
    ] {
        assert_eq!(
            action(&update, kept)["actions"],
            serde_json::json!(["no-op"]),
            "{kept}"
        );
    }
    let moved: serde_json::Value =
        serde_json::from_str(&planner.plan_with(&config, &["-var=region=eu-west-1"])).unwrap();
    let ws = action(&moved, "databricks_mws_workspaces.this");
    assert_eq!(
        ws["actions"],
        serde_json::json!(["delete", "create"]),
        "{ws:#}"
    );
    assert_eq!(
        ws["replace_paths"],
        serde_json::json!([["aws_region"]]),
        "{ws:#}"
    );
}
