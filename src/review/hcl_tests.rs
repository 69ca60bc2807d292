//! HCL mode (src/review/hcl_input.rs) against plan mode on the corpus,
//! this repository's examples in HCL mode, suppressions, `--fail-on`, and
//! the JUnit and GitHub formats.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::rules::findings::Verdict;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir() -> PathBuf {
    root().join("acceptance-tests/fixtures/review/corpus")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A review run as the command line would do it.
fn run_args(args: &[&str]) -> Result<Done, String> {
    let opts = parse_args(&s(args)).map_err(|e| e.to_string())?;
    run(&opts)
}

fn plan_analysis(name: &str) -> Analysis {
    let text = std::fs::read_to_string(corpus_dir().join(format!("{name}.json"))).unwrap();
    review_text(&text, &Requirements::default()).unwrap()
}

fn hcl_analysis(dir: &Path) -> Analysis {
    let opts = parse_args(&s(&[dir.to_str().unwrap()])).unwrap();
    let (plan, _) = load_hcl(&opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    analyze(&plan, &Requirements::default())
}

/// (address, rule, attribute) -> verdict and severity.
fn verdicts(a: &Analysis) -> BTreeMap<(String, String, String), String> {
    a.outcomes
        .iter()
        .map(|l| {
            let v = match l.outcome.verdict {
                Verdict::Fail => format!("fail {}", l.outcome.severity),
                Verdict::CannotTell => "cannot tell".to_string(),
                Verdict::NeedsState => "needs state".to_string(),
                Verdict::Pass => "pass".to_string(),
            };
            (
                (
                    l.address.clone(),
                    l.outcome.rule.code().to_string(),
                    l.attribute.clone(),
                ),
                v,
            )
        })
        .collect()
}

/// The corpus: every plan (`NAME.json`) of the corpus directory, each with
/// its HCL source in `NAME/`. A plan without its source fails here, so a new
/// plan cannot escape the comparison of both modes.
fn corpus() -> Vec<String> {
    let dir = corpus_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !dir.join(n).join("main.tf").is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "plans of the review corpus without their HCL source beside them (NAME/main.tf; \
         add them to HCL_CASES in generate.py and run it): {missing:?}"
    );
    assert!(
        names.len() >= 16,
        "the corpus in {} has {} plans, expected at least 16",
        dir.display(),
        names.len()
    );
    names
}

/// Outcomes the plan decides and the source cannot: (case, address, rule,
/// why only the plan knows). HCL mode must say "cannot tell" there.
const PLAN_ONLY: &[(&str, &str, &str, &str)] = &[];

/// Findings HCL mode decides and plan mode cannot tell: (case, address,
/// rule, why). Never the other way round, never two different decisions.
const HCL_DECIDES: &[(&str, &str, &str, &str)] = &[
    (
        "for_each_workspaces",
        "databricks_mws_customer_managed_keys.ws[\"dev\"]",
        "CMK018",
        ARN_BY_EACH_KEY,
    ),
    (
        "for_each_workspaces",
        "databricks_mws_customer_managed_keys.ws[\"prod\"]",
        "CMK018",
        ARN_BY_EACH_KEY,
    ),
    (
        "for_each_workspaces_prod_premium",
        "databricks_mws_customer_managed_keys.ws[\"dev\"]",
        "CMK018",
        ARN_BY_EACH_KEY,
    ),
    (
        "for_each_workspaces_prod_premium",
        "databricks_mws_customer_managed_keys.ws[\"prod\"]",
        "CMK018",
        ARN_BY_EACH_KEY,
    ),
];

const ARN_BY_EACH_KEY: &str = "a plan records `aws_kms_key.ws[each.key].arn` as the references `aws_kms_key.ws` and `each.key`, without the attribute; HCL mode evaluates it to that instance's `arn`, a key ARN";

#[test]
fn corpus_hcl_mode_matches_plan_mode_finding_by_finding() {
    let mut used = vec![false; PLAN_ONLY.len()];
    let mut used_hcl = vec![false; HCL_DECIDES.len()];
    let mut report = vec![];
    let mut needs_state = 0;
    for name in corpus() {
        let name = name.as_str();
        let plan = verdicts(&plan_analysis(name));
        let hcl = verdicts(&hcl_analysis(&corpus_dir().join(name)));
        assert!(!plan.is_empty(), "{name}: the plan gives no outcome");
        let keys: std::collections::BTreeSet<_> = plan.keys().chain(hcl.keys()).collect();
        for key in keys {
            let (p, h) = (plan.get(key), hcl.get(key));
            if p == h {
                continue;
            }
            // What compares with what exists: a plan's prior state decides
            // it (these plans create their workspaces), the source cannot.
            if h.map(String::as_str) == Some("needs state")
                && p.is_some()
                && crate::rules::findings::STATE_RULES
                    .iter()
                    .any(|(r, _)| r.code() == key.1)
            {
                needs_state += 1;
                continue;
            }
            let allowed = PLAN_ONLY
                .iter()
                .position(|(c, addr, rule, _)| *c == name && *addr == key.0 && *rule == key.1);
            let hcl_decides = HCL_DECIDES
                .iter()
                .position(|(c, addr, rule, _)| *c == name && *addr == key.0 && *rule == key.1);
            match (allowed, h.map(String::as_str)) {
                (Some(i), Some("cannot tell")) => used[i] = true,
                _ if hcl_decides.is_some()
                    && p.map(String::as_str) == Some("cannot tell")
                    && h.is_some() =>
                {
                    used_hcl[hcl_decides.unwrap_or_default()] = true
                }
                _ => report.push(format!(
                    "{name}: {} {} ({}): plan {:?}, HCL {:?}",
                    key.0, key.1, key.2, p, h
                )),
            }
        }
    }
    assert!(
        report.is_empty(),
        "HCL mode differs from plan mode:\n{}",
        report.join("\n")
    );
    for (i, u) in used.iter().enumerate() {
        assert!(u, "PLAN_ONLY entry {:?} no longer differs", PLAN_ONLY[i]);
    }
    for (i, u) in used_hcl.iter().enumerate() {
        assert!(
            u,
            "HCL_DECIDES entry {:?} no longer differs",
            HCL_DECIDES[i]
        );
    }
    // Every corpus configuration declares a workspace that may exist.
    assert!(needs_state >= corpus().len(), "{needs_state} needs state");
}

/// A plan reviewed with its source (`--source`): what the plan decides
/// stands, what it leaves undecided the source decides as HCL mode does,
/// and every HCL_DECIDES difference is gone.
#[test]
fn corpus_plan_with_its_source_decides_what_either_mode_decides() {
    let mut gained = 0;
    for name in corpus() {
        let plan_file = corpus_dir().join(format!("{name}.json"));
        let dir = corpus_dir().join(&name);
        let opts = parse_args(&s(&[
            plan_file.to_str().unwrap(),
            "--source",
            dir.to_str().unwrap(),
        ]))
        .unwrap();
        let (with_source, _) = plan_with_source(&opts, dir.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let both = verdicts(&analyze(&with_source, &Requirements::default()));
        let plan = verdicts(&plan_analysis(&name));
        let hcl = verdicts(&hcl_analysis(&dir));
        assert_eq!(
            both.keys().collect::<Vec<_>>(),
            plan.keys().collect::<Vec<_>>(),
            "{name}: the findings of the plan with its source are the plan's"
        );
        for (key, p) in &plan {
            let b = &both[key];
            let h = hcl.get(key).map(String::as_str);
            let want = match (p.as_str(), h) {
                ("cannot tell", Some(h)) if h != "needs state" => h,
                (p, _) => p,
            };
            assert_eq!(b, want, "{name}: {key:?}: plan {p}, HCL {h:?}");
            if p == "cannot tell" && b != "cannot tell" {
                gained += 1;
            }
        }
        for (c, addr, rule, _) in HCL_DECIDES.iter().filter(|e| e.0 == name) {
            let decided = both
                .iter()
                .any(|((a, r, _), v)| a == addr && r == rule && v != "cannot tell");
            assert!(
                decided,
                "{c}: {addr} {rule} still undecided with the source"
            );
        }
    }
    assert_eq!(gained, HCL_DECIDES.len(), "outcomes the source decided");
}

/// Without the source, a plan's "cannot tell yet" names what the plan's
/// configuration records the unknown value as referring to, and the way
/// to decide it; with the source it is decided.
#[test]
fn a_plans_unknown_names_its_references_and_the_source_decides_it() {
    let plan_file = corpus_dir().join("for_each_workspaces.json");
    let alone = run_args(&[plan_file.to_str().unwrap()]).unwrap().out;
    let line = alone
        .lines()
        .find(|l| l.contains("CMK018 databricks_mws_customer_managed_keys.ws[\"dev\"]"))
        .unwrap_or_else(|| panic!("{alone}"));
    assert!(
        line.starts_with("cannot tell yet")
            && line.contains(
                "in the plan its expression refers to \"aws_kms_key.ws\", \"each.key\" (--source DIR evaluates"
            ),
        "{line}"
    );
    let dir = corpus_dir().join("for_each_workspaces");
    let both = run_args(&[
        plan_file.to_str().unwrap(),
        "--source",
        dir.to_str().unwrap(),
    ])
    .unwrap()
    .out;
    assert!(
        !both.contains("cannot tell yet CMK018") && !both.contains("--source DIR evaluates"),
        "{both}"
    );
}

/// A source that is not the plan's configuration is refused, naming what
/// differs, rather than mixing two configurations.
#[test]
fn a_plan_with_another_configurations_source_is_refused() {
    let plan_file = corpus_dir().join("sra_classic.json");
    let other = corpus_dir().join("for_each_workspaces");
    let e = run_args(&[
        plan_file.to_str().unwrap(),
        "--source",
        other.to_str().unwrap(),
    ])
    .expect_err("a foreign source is refused");
    assert!(
        e.contains("--source is not the configuration this plan was made from")
            && e.contains("the source does not declare"),
        "{e}"
    );
    let e = run_args(&[plan_file.to_str().unwrap(), "--source", "/nonexistent-dir"])
        .expect_err("a missing directory is refused");
    assert!(e.contains("not a directory"), "{e}");
    let e = run_args(&[
        corpus_dir().join("sra_classic").to_str().unwrap(),
        "--source",
        other.to_str().unwrap(),
    ])
    .expect_err("--source with a directory is refused");
    assert!(e.contains("--source goes with a plan JSON"), "{e}");
}

#[test]
fn corpus_broken_neighbours_fail_in_hcl_mode_with_exit_code_1() {
    for name in corpus() {
        let dir = corpus_dir().join(&name);
        let done = run_args(&[dir.to_str().unwrap()]).unwrap();
        let plan = plan_analysis(&name);
        assert_eq!(
            done.code,
            exit_code(&plan),
            "{name}: exit code of HCL mode and plan mode\n{}",
            done.out
        );
    }
    // The broken neighbours: one of each shape fails.
    let done = run_args(&[corpus_dir()
        .join("sra_classic_ms_policy_without_decrypt")
        .to_str()
        .unwrap()])
    .unwrap();
    assert_eq!(done.code, 1, "{}", done.out);
    assert!(done.out.contains("main.tf:"), "{}", done.out);
}

/// A configuration written to a temporary directory.
fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    d
}

/// One key configuration on a key in a region the workspace is not in:
/// CMK002 (regions) fails, as an error.
const REGIONS: &str = r#"
variable "key_region" {
  type = string
}
variable "workspace_region" {
  default = "us-east-1"
}
locals {
  arn = "arn:aws:kms:${var.key_region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}
resource "databricks_mws_customer_managed_keys" "ms" {
  count      = 2
  account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info {
    key_arn = local.arn
  }
}
resource "databricks_mws_workspaces" "this" {
  account_id     = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  workspace_name = "w"
  aws_region     = var.workspace_region
  pricing_tier   = "ENTERPRISE"
  managed_services_customer_managed_key_id = databricks_mws_customer_managed_keys.ms[1].customer_managed_key_id
}
"#;

fn rule_verdict(a: &Analysis, address: &str, rule: &str) -> Vec<String> {
    a.outcomes
        .iter()
        .filter(|l| l.address == address && l.outcome.rule.code() == rule)
        .map(|l| format!("{:?}", l.outcome.verdict))
        .collect()
}

#[test]
fn hcl_mode_reads_variables_from_tfvars_var_files_and_var() {
    let d = config_dir(&[
        ("main.tf", REGIONS),
        ("terraform.tfvars", "key_region = \"eu-west-1\"\n"),
        ("same.tfvars", "key_region = \"us-east-1\"\n"),
    ]);
    let dir = d.path().to_str().unwrap();
    let var_file = d.path().join("same.tfvars");
    let a = |args: &[&str]| {
        let opts = parse_args(&s(args)).unwrap();
        analyze(&load_hcl(&opts).unwrap().0, &Requirements::default())
    };
    // terraform.tfvars: the key is in eu-west-1, the workspace in us-east-1.
    let tfvars = a(&[dir]);
    assert!(
        rule_verdict(&tfvars, "databricks_mws_workspaces.this", "CMK002").contains(&"Fail".into()),
        "{}",
        output::text(&tfvars)
    );
    // -var-file overrides it; -var overrides both.
    let same = a(&[dir, "-var-file", var_file.to_str().unwrap()]);
    assert!(
        !rule_verdict(&same, "databricks_mws_workspaces.this", "CMK002").contains(&"Fail".into())
    );
    let var = a(&[
        dir,
        "-var-file",
        var_file.to_str().unwrap(),
        "-var",
        "key_region=ap-south-1",
    ]);
    assert!(
        rule_verdict(&var, "databricks_mws_workspaces.this", "CMK002").contains(&"Fail".into())
    );
    // count: both instances exist, the reference to [1] is followed.
    let opts = parse_args(&s(&[dir])).unwrap();
    let (plan, loaded) = load_hcl(&opts).unwrap();
    assert!(plan
        .get("databricks_mws_customer_managed_keys.ms[0]")
        .is_some());
    assert!(plan
        .get("databricks_mws_customer_managed_keys.ms[1]")
        .is_some());
    // Relative to the reviewed directory, as tflint and checkov show it.
    let main_tf = "main.tf".to_string();
    assert_eq!(
        loaded.locations["databricks_mws_workspaces.this"],
        hcl_input::Source {
            file: main_tf,
            line: 19
        }
    );
}

#[test]
fn hcl_mode_refuses_duplicate_declarations_naming_both_places() {
    let first = "resource \"aws_kms_key\" \"k\" {\n  description = \"a\"\n}\n";
    for (kind, second) in [
        (
            "resource \"aws_kms_key\" \"k\"",
            "\n\nresource \"aws_kms_key\" \"k\" {\n  description = \"b\"\n}\n",
        ),
        (
            "data \"aws_caller_identity\" \"me\"",
            "\n\ndata \"aws_caller_identity\" \"me\" {}\n",
        ),
        (
            "module \"m\"",
            "\n\nmodule \"m\" {\n  source = \"./m\"\n}\n",
        ),
        ("variable \"v\"", "\n\nvariable \"v\" {}\n"),
        ("output \"o\"", "\n\noutput \"o\" {\n  value = 2\n}\n"),
        ("local.l", "\n\nlocals {\n  l = 2\n}\n"),
    ] {
        let a = format!(
            "{first}data \"aws_caller_identity\" \"me\" {{}}\nmodule \"m\" {{\n  source = \"./m\"\n}}\nvariable \"v\" {{}}\noutput \"o\" {{\n  value = 1\n}}\nlocals {{\n  l = 1\n}}\n"
        );
        // The first declarations in a.tf; the duplicate on line 3 of b.tf.
        let d = config_dir(&[("a.tf", &a), ("b.tf", second), ("m/main.tf", "")]);
        let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
        assert!(e.contains(&format!("duplicate {kind}")), "{kind}: {e}");
        assert!(e.contains("b.tf:3"), "{kind}: {e}");
        assert!(e.contains("a.tf:"), "{kind}: {e}");
    }
    // Same names of different kinds, or in different modules, are fine.
    let d = config_dir(&[
        ("a.tf", "variable \"k\" {\n  default = 1\n}\noutput \"k\" {\n  value = 1\n}\nlocals {\n  k = 1\n}\nmodule \"k\" {\n  source = \"./m\"\n}\n"),
        ("m/main.tf", "variable \"k\" {\n  default = 1\n}\n"),
    ]);
    assert!(run_args(&[d.path().to_str().unwrap()]).is_ok());
}

#[test]
fn hcl_mode_refuses_what_it_cannot_read_saying_what() {
    let d = config_dir(&[(
        "main.tf",
        "resource \"aws_kms_key\" \"k\" {\n  policy = \n}\n",
    )]);
    let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
    assert!(e.contains("main.tf") && e.contains("not valid HCL"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = run_args(&[empty.path().to_str().unwrap()]).unwrap_err();
    assert!(e.contains("holds no .tf file"), "{e}");
    let e = run_args(&["a.tf", "b.json"]).unwrap_err();
    assert!(e.contains("unexpected argument"), "{e}");
    let e = run_args(&[
        corpus_dir().join("sra_classic.json").to_str().unwrap(),
        "-var",
        "a=b",
    ])
    .unwrap_err();
    assert!(e.contains("-var"), "{e}");
}

/// Every example of this repository, read in HCL mode without any
/// credential: none is refused, and the quickstart's binding is reviewed.
#[test]
fn examples_are_reviewed_in_hcl_mode_without_credentials() {
    let mut dirs = vec![];
    let mut stack = vec![root().join("examples")];
    while let Some(d) = stack.pop() {
        let mut has_tf = false;
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tf") {
                has_tf = true;
            }
        }
        if has_tf {
            dirs.push(d);
        }
    }
    dirs.sort();
    assert!(dirs.len() >= 10, "{dirs:?}");
    let mut outcomes = 0;
    for d in &dirs {
        let done = run_args(&[d.to_str().unwrap(), "--format", "json"])
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let j: serde_json::Value = serde_json::from_str(&done.out).unwrap();
        assert_eq!(done.code, 0, "{}: {}", d.display(), done.out);
        let s = &j["summary"];
        outcomes += s["passed"].as_u64().unwrap() + s["cannot_tell"].as_u64().unwrap();
    }
    assert!(outcomes > 0, "the examples gave no outcome at all");
    let quick = hcl_analysis(&root().join("examples/quickstart"));
    assert!(
        quick
            .outcomes
            .iter()
            .any(|l| l.resource_type == "cmk_workspace_binding"),
        "{}",
        output::text(&quick)
    );
}

/// A broken neighbour with a suppression: accepted, reported, exit 0.
fn broken_copy(extra_file: Option<(&str, &str)>, comment: &str) -> tempfile::TempDir {
    let src = corpus_dir().join("sra_classic_ms_policy_without_decrypt/main.tf");
    let text = std::fs::read_to_string(src).unwrap();
    let anchor = "resource \"aws_kms_key\" \"managed_services\" {\n";
    assert!(text.contains(anchor));
    let text = text.replace(anchor, &format!("{anchor}{comment}"));
    let mut files = vec![("main.tf", text.as_str())];
    if let Some(f) = extra_file {
        files.push(f);
    }
    config_dir(&files)
}

fn failing_rule(name: &str) -> (String, String) {
    let a = plan_analysis(name);
    let l = a
        .outcomes
        .iter()
        .find(|l| l.outcome.is_error())
        .expect("a broken neighbour has an error");
    (l.outcome.rule.code().to_string(), l.address.clone())
}

#[test]
fn inline_suppression_accepts_the_finding_and_reports_it_suppressed() {
    let (rule, address) = failing_rule("sra_classic_ms_policy_without_decrypt");
    let errors = plan_analysis("sra_classic_ms_policy_without_decrypt")
        .outcomes
        .iter()
        .filter(|l| l.outcome.is_error())
        .count();
    assert_eq!(errors, 1, "one error to suppress");
    assert_eq!(address, "aws_kms_key.managed_services");
    let d = broken_copy(
        None,
        &format!("  # cmk:ignore {rule} key policy fixed by the security team's pipeline\n"),
    );
    let dir = d.path().to_str().unwrap();
    let done = run_args(&[dir]).unwrap();
    assert_eq!(done.code, 0, "{}", done.out);
    assert!(
        done.out.contains(&format!("suppressed error {rule}")),
        "{}",
        done.out
    );
    assert!(done
        .out
        .contains("key policy fixed by the security team's pipeline"));
    assert!(done.out.contains("1 suppressed"), "{}", done.out);
    // SARIF: the result stays, with its suppression and its line.
    let sarif = run_args(&[dir, "--format", "sarif"]).unwrap();
    let j: serde_json::Value = serde_json::from_str(&sarif.out).unwrap();
    let r = j["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == rule.as_str())
        .expect("the suppressed result is reported");
    assert_eq!(r["suppressions"][0]["kind"], "inSource");
    assert_eq!(r["suppressions"][0]["status"], "accepted");
    assert_eq!(
        r["suppressions"][0]["justification"],
        "key policy fixed by the security team's pipeline"
    );
    let loc = &r["locations"][0]["physicalLocation"];
    assert!(loc["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("main.tf"));
    assert!(loc["region"]["startLine"].as_u64().unwrap() > 1);
    // JSON: the finding carries it too.
    let json = run_args(&[dir, "--format", "json"]).unwrap();
    let j: serde_json::Value = serde_json::from_str(&json.out).unwrap();
    assert_eq!(j["summary"]["errors"], 0);
    assert_eq!(j["summary"]["suppressed"], 1);
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule.as_str())
        .unwrap();
    assert_eq!(f["suppression"]["kind"], "inline");
    assert!(f["line"].as_u64().is_some());
}

#[test]
fn expired_suppression_fails_like_the_finding_and_says_it_expired() {
    let (rule, _) = failing_rule("sra_classic_ms_policy_without_decrypt");
    let d = broken_copy(
        None,
        &format!("  # cmk:ignore {rule} exp:2020-01-31 until the migration\n"),
    );
    let done = run_args(&[d.path().to_str().unwrap()]).unwrap();
    assert_eq!(done.code, 1, "{}", done.out);
    assert!(
        done.out.contains("suppression expired on 2020-01-31"),
        "{}",
        done.out
    );
    assert!(done.out.contains(&format!("error {rule}")), "{}", done.out);
    // A file's suppression that has not expired yet holds (within the
    // default --max-suppression-days of 90).
    let soon = time::OffsetDateTime::now_utc().date() + time::Duration::days(30);
    let file = format!(
        r#"{{"suppressions": [{{"rule": "{rule}", "address": "aws_kms_key.*", "reason": "accepted until the key is rotated", "expires": "{soon}"}}]}}"#
    );
    let d = broken_copy(Some((".cmk-review.json", &file)), "");
    let done = run_args(&[d.path().to_str().unwrap()]).unwrap();
    assert_eq!(done.code, 0, "{}", done.out);
    // Expiry is by day: the day itself still holds.
    let today = time::OffsetDateTime::now_utc().date();
    let a = plan_analysis("sra_classic_ms_policy_without_decrypt");
    let sup = |expires| suppress::Suppression {
        rule: rule.clone(),
        address: "*".into(),
        reason: "r".into(),
        expires: Some(expires),
        origin: "test".into(),
        inline: false,
    };
    let held = suppress::notes(&a, &[sup(today)], &Default::default(), today);
    assert_eq!(exit_code_with(&a, &held, FailOn::Error), 0);
    let yesterday = today.previous_day().unwrap();
    let gone = suppress::notes(&a, &[sup(yesterday)], &Default::default(), today);
    assert_eq!(exit_code_with(&a, &gone, FailOn::Error), 1);
}

#[test]
fn suppression_without_a_reason_or_with_an_unknown_rule_is_refused() {
    let (rule, _) = failing_rule("sra_classic_ms_policy_without_decrypt");
    let d = broken_copy(None, &format!("  # cmk:ignore {rule}\n"));
    let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
    assert!(e.contains("main.tf:") && e.contains("has no reason"), "{e}");
    let d = broken_copy(None, "  # cmk:ignore CMK999 because\n");
    let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
    assert!(e.contains("no rule \"CMK999\""), "{e}");
    let file = format!(r#"{{"suppressions": [{{"rule": "{rule}", "address": "*"}}]}}"#);
    let d = broken_copy(Some((".cmk-review.json", &file)), "");
    let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
    assert!(
        e.contains(".cmk-review.json suppressions[0]") && e.contains("has no reason"),
        "{e}"
    );
    let file =
        format!(r#"{{"suppressions": [{{"rule": "{rule}", "reason": "r", "expires": "soon"}}]}}"#);
    let d = broken_copy(Some((".cmk-review.json", &file)), "");
    let e = run_args(&[d.path().to_str().unwrap()]).unwrap_err();
    assert!(e.contains("is not a date"), "{e}");
    // And through main: exit code 2.
    assert_eq!(main(&s(&[d.path().to_str().unwrap()])), 2);
}

#[test]
fn suppressions_file_applies_to_plan_input() {
    let plan = corpus_dir().join("sra_classic_ms_policy_without_decrypt.json");
    let plan = plan.to_str().unwrap();
    let (rule, address) = failing_rule("sra_classic_ms_policy_without_decrypt");
    assert_eq!(run_args(&[plan]).unwrap().code, 1);
    let d = config_dir(&[(
        "s.json",
        &format!(
            r#"{{"suppressions": [{{"rule": "{rule}", "address": "{address}", "reason": "accepted for the test"}}]}}"#
        ),
    )]);
    let file = d.path().join("s.json");
    let done = run_args(&[
        plan,
        "--suppressions",
        file.to_str().unwrap(),
        "--format",
        "sarif",
    ])
    .unwrap();
    assert_eq!(done.code, 0, "{}", done.out);
    let j: serde_json::Value = serde_json::from_str(&done.out).unwrap();
    let r = j["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == rule.as_str())
        .unwrap();
    assert_eq!(r["suppressions"][0]["kind"], "external");
    // A pattern that names another object suppresses nothing.
    let d = config_dir(&[(
        "s.json",
        &format!(
            r#"{{"suppressions": [{{"rule": "{rule}", "address": "module.other.*", "reason": "r"}}]}}"#
        ),
    )]);
    let file = d.path().join("s.json");
    assert_eq!(
        run_args(&[plan, "--suppressions", file.to_str().unwrap()])
            .unwrap()
            .code,
        1
    );
    assert!(suppress::matches(
        "module.*.databricks_*",
        "module.a.databricks_x.y"
    ));
    assert!(!suppress::matches(
        "module.*.aws_*",
        "module.a.databricks_x.y"
    ));
}

#[test]
fn fail_on_sets_the_threshold() {
    // Passes with warnings (CMK021 on the reference storage keys): only
    // --fail-on warning fails it.
    let warn = corpus_dir().join("sra_classic.json");
    let warn = warn.to_str().unwrap();
    let broken = corpus_dir().join("sra_classic_ms_policy_without_decrypt.json");
    let broken = broken.to_str().unwrap();
    let a = plan_analysis("sra_classic");
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.outcome.is_failure() && !l.outcome.is_error()));
    for (input, fail_on, code) in [
        (warn, "error", 0),
        (warn, "warning", 1),
        (warn, "never", 0),
        (broken, "error", 1),
        (broken, "warning", 1),
        (broken, "never", 0),
    ] {
        assert_eq!(
            run_args(&[input, "--fail-on", fail_on]).unwrap().code,
            code,
            "{input} --fail-on {fail_on}"
        );
    }
    assert!(matches!(
        parse_args(&s(&["p.json", "--fail-on", "info"])),
        Err(UsageError::BadFailOn(_))
    ));
    assert_eq!(parse_args(&s(&["p.json"])).unwrap().fail_on, FailOn::Error);
}

/// The Python of the test venv (`make venv`); a missing venv is a failure.
fn venv_python() -> PathBuf {
    let venv = std::env::var("CMK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make venv` (the JUnit schema check needs xmlschema)",
        py.display()
    );
    py
}

#[test]
fn junit_output_validates_against_the_junit_schema() {
    let d = broken_copy(
        None,
        "  # cmk:ignore CMK015 <accepted> & \"quoted\" for the test\n",
    );
    let mut outputs = vec![];
    for args in [
        vec![
            d.path().to_str().unwrap().to_string(),
            "--format".into(),
            "junit".into(),
        ],
        vec![
            corpus_dir()
                .join("sra_with_serverless.json")
                .display()
                .to_string(),
            "--format".into(),
            "junit".into(),
            "--fail-on".into(),
            "warning".into(),
        ],
        vec![
            corpus_dir()
                .join("sra_classic_ms_policy_without_decrypt.json")
                .display()
                .to_string(),
            "--format".into(),
            "junit".into(),
        ],
    ] {
        let opts = parse_args(&args).unwrap();
        outputs.push(run(&opts).unwrap().out);
    }
    // The broken plan: one failure, named by its rule.
    let broken = &outputs[2];
    assert!(broken.contains("<failure message="), "{broken}");
    let failures = broken.matches("<failure ").count();
    let (rule, _) = failing_rule("sra_classic_ms_policy_without_decrypt");
    assert_eq!(failures, 1, "{broken}");
    assert!(
        broken.contains(&format!("type=\"{rule} error\"")),
        "{broken}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![];
    for (i, o) in outputs.iter().enumerate() {
        let p = dir.path().join(format!("r{i}.xml"));
        std::fs::write(&p, o).unwrap();
        paths.push(p.display().to_string());
    }
    // Two schemas: the project's own, and Jenkins' junit-10.xsd (what CI
    // systems validate against), which `make venv` fetches hash-checked.
    let py = venv_python();
    let jenkins = py
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("share/junit-10.xsd");
    assert!(
        jenkins.exists(),
        "{} is missing: run `make venv`",
        jenkins.display()
    );
    for xsd in [root().join("tests/support/junit.xsd"), jenkins] {
        validate_junit(&py, &xsd, &paths, dir.path());
    }
}

fn validate_junit(
    py: &std::path::Path,
    xsd: &std::path::Path,
    paths: &[String],
    dir: &std::path::Path,
) {
    let script = "import sys, xmlschema\n\
                  schema = xmlschema.XMLSchema(sys.argv[1])\n\
                  for p in sys.argv[2:]:\n\
                  \x20   schema.validate(p)\n\
                  \x20   print('valid', p)\n";
    let o = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(xsd)
        .args(paths)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "JUnit output does not validate against {}:\n{}\n{}",
        xsd.display(),
        stdout,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout.matches("valid ").count(), 3, "{stdout}");
    // The schema is not a rubber stamp: a testcase without a name fails it.
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<testsuites><testsuite name=\"x\" tests=\"1\"><testcase classname=\"c\"/></testsuite></testsuites>",
    )
    .unwrap();
    let o = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(xsd)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "{} accepted a testcase without a name",
        xsd.display()
    );
}

#[test]
fn github_format_annotates_file_and_line_with_escapes() {
    let dir = corpus_dir().join("sra_classic_ms_policy_without_decrypt");
    let done = run_args(&[dir.to_str().unwrap(), "--format", "github"]).unwrap();
    assert_eq!(done.code, 1);
    let (rule, _) = failing_rule("sra_classic_ms_policy_without_decrypt");
    let errors: Vec<&str> = done
        .out
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", done.out);
    let e = errors[0];
    // ::error file=F,line=L,title=T::message, one line, properties escaped.
    let (props, message) = e["::error ".len()..].split_once("::").unwrap();
    let props: Vec<&str> = props.split(',').collect();
    assert!(
        props[0].starts_with("file=") && props[0].ends_with("main.tf"),
        "{e}"
    );
    assert!(
        props[1]
            .strip_prefix("line=")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 1
    );
    assert!(props[2].starts_with(&format!("title={rule} ")), "{e}");
    assert!(
        !props[2].contains(':'),
        "a ':' in a property must be %3A: {e}"
    );
    assert!(message.contains("%0Aremediation%3A") || message.contains("%0Aremediation:"));
    assert!(!message.contains('\n'));
    assert_eq!(
        output::github(&Analysis::default(), &[], "-", FailOn::Error)
            .lines()
            .count(),
        1
    );
    // Warnings below the threshold are ::warning, at it ::error.
    let warn = corpus_dir().join("sra_classic.json");
    let w = run_args(&[warn.to_str().unwrap(), "--format", "github"]).unwrap();
    assert!(
        w.out.lines().any(|l| l.starts_with("::warning file=")),
        "{}",
        w.out
    );
    assert!(
        !w.out.lines().any(|l| l.starts_with("::error")),
        "{}",
        w.out
    );
    let w = run_args(&[
        warn.to_str().unwrap(),
        "--format",
        "github",
        "--fail-on",
        "warning",
    ])
    .unwrap();
    assert!(
        w.out.lines().any(|l| l.starts_with("::error file=")),
        "{}",
        w.out
    );
}

#[test]
fn review_help_exits_0_and_lists_every_flag() {
    assert_eq!(main(&s(&["review", "--help"])), 0);
    assert_eq!(main(&s(&["-h"])), 0);
    assert!(matches!(parse_args(&s(&["--help"])), Err(UsageError::Help)));
    for flag in [
        "--format",
        "junit",
        "github",
        "--fail-on",
        "--suppressions",
        "-var",
        "-var-file",
        "--require",
        "--max-input-mib",
        "--no-inline-suppressions",
        "--max-suppression-days",
        "cannot-tell",
        "--root",
        "--max-instances",
        "--max-module-calls",
        "--max-value-mib",
        "--max-seconds",
        "--live",
        "--profile",
        "--workspace-host-template",
    ] {
        assert!(USAGE.contains(flag), "review usage lacks {flag}");
    }
}

/// The real plan Terraform 1.11.4 and the AWS provider wrote from
/// acceptance-tests/fixtures/review/real/config/ (README.md there), and the
/// same configuration read in HCL mode: the same resource instances, every
/// reference the plan records recorded by HCL mode too, and the same
/// provider regions.
#[test]
fn hcl_mode_records_what_the_real_plan_of_the_same_source_records() {
    let real_dir = root().join("acceptance-tests/fixtures/review/real");
    let text = std::fs::read_to_string(real_dir.join("aws_provider_shapes.json")).unwrap();
    let real = Plan::parse(&text).unwrap();
    let opts = parse_args(&s(&[real_dir.join("config").to_str().unwrap()])).unwrap();
    let (hcl, _) = load_hcl(&opts).unwrap();
    let managed = |p: &Plan| -> Vec<String> {
        let mut v: Vec<String> = p
            .resources
            .iter()
            .filter(|r| r.mode == "managed")
            .map(|r| r.address.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(managed(&hcl), managed(&real));
    assert!(managed(&real).len() >= 5);
    let mut checked = 0;
    for (config_address, attrs) in &real.references {
        let h = hcl
            .references
            .get(config_address)
            .unwrap_or_else(|| panic!("HCL mode lacks {config_address}"));
        for (path, refs) in attrs {
            let got = h.get(path).cloned().unwrap_or_default();
            for r in refs {
                assert!(
                    got.contains(r),
                    "{config_address} {path}: the plan records {r}, HCL mode {got:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} references compared");
    for r in real.resources.iter().filter(|r| r.mode == "managed") {
        let h = hcl.get(&r.address).unwrap();
        assert_eq!(
            format!("{:?}", hcl.provider_region(h)),
            format!("{:?}", real.provider_region(r)),
            "{}",
            r.address
        );
    }
}

/// `cmk_kms_key`s with no `policy` argument: the provider generates their
/// policy, so review checks the one it generates rather than leaving
/// CMK015, CMK016 and CMK021 for apply. The workspace's role comes from its
/// credentials; only the first key names it for its EBS statement. Keys,
/// configurations and workspaces are chained by `for_each` over the
/// resource before (`each.value.arn`), as users write them.
const GENERATED_POLICIES: &str = r#"
provider "cmk" {
  aws_region = "us-east-1"
}
locals {
  account = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  role    = "arn:aws:iam::123456789012:role/ws-cross-account"
  keys = {
    named_role      = { role = local.role, owner = null }
    other_owner     = { role = null, owner = "999999999999" }
    owner_not_known = { role = null, owner = null }
  }
}
resource "cmk_kms_key" "k" {
  for_each               = local.keys
  use_cases              = ["STORAGE"]
  databricks_account_id  = local.account
  cross_account_role_arn = each.value.role
  aws_account_id         = each.value.owner
}
resource "databricks_mws_credentials" "c" {
  account_id       = local.account
  credentials_name = "c"
  role_arn         = local.role
}
resource "databricks_mws_customer_managed_keys" "st" {
  for_each   = cmk_kms_key.k
  account_id = local.account
  use_cases  = ["STORAGE"]
  aws_key_info {
    key_arn = each.value.arn
  }
}
resource "databricks_mws_workspaces" "w" {
  for_each                        = databricks_mws_customer_managed_keys.st
  account_id                      = local.account
  workspace_name                  = each.key
  aws_region                      = "us-east-1"
  pricing_tier                    = "ENTERPRISE"
  credentials_id                  = databricks_mws_credentials.c.credentials_id
  storage_customer_managed_key_id = each.value.customer_managed_key_id
}
"#;

#[test]
fn a_generated_key_policy_is_checked_not_left_for_apply() {
    let d = config_dir(&[("main.tf", GENERATED_POLICIES)]);
    let a = hcl_analysis(d.path());
    let text = output::text(&a);
    let outcome = |key: &str, rule: &str| -> (String, String) {
        let found: Vec<_> = a
            .outcomes
            .iter()
            .filter(|l| {
                l.address == format!("cmk_kms_key.k[\"{key}\"]") && l.outcome.rule.code() == rule
            })
            .map(|l| {
                (
                    format!("{:?}", l.outcome.verdict),
                    l.outcome.message.clone(),
                )
            })
            .collect();
        assert_eq!(found.len(), 1, "{key} {rule}:\n{text}");
        found[0].clone()
    };
    for key in ["named_role", "other_owner", "owner_not_known"] {
        // Databricks' grants, under the account tag of local.account.
        for rule in ["CMK015", "CMK021"] {
            assert_eq!(outcome(key, rule).0, "Pass", "{key} {rule}:\n{text}");
        }
    }
    // The EBS statement names the role.
    assert_eq!(outcome("named_role", "CMK016").0, "Pass", "{text}");
    // No EBS statement, and the owner's own statement is for another
    // account than the role's: EC2 acting for the role is refused.
    let (v, m) = outcome("other_owner", "CMK016");
    assert_eq!(v, "Fail", "{text}");
    assert!(m.contains("ws-cross-account"), "{m}");
    // No EBS statement, and the owner (the caller's account at apply) is
    // not known: the role may be of the key's own account. It waits for
    // apply, and says how to decide it now.
    let (v, m) = outcome("owner_not_known", "CMK016");
    assert_eq!(v, "CannotTell", "{text}");
    assert!(
        m.contains("cross_account_role_arn = \"arn:aws:iam::123456789012:role/ws-cross-account\""),
        "{m}"
    );
}

/// `for_each` over a map written out whose keys are known and whose values
/// are not (the ARNs of keys made in the same plan): one instance per key,
/// as Terraform plans it, not one instance without a key.
#[test]
fn for_each_over_known_keys_with_unknown_values_makes_an_instance_per_key() {
    let d = config_dir(&[(
        "main.tf",
        r#"
resource "cmk_kms_key" "a" {
  use_cases = ["MANAGED_SERVICES"]
}
resource "cmk_kms_key" "b" {
  use_cases = ["MANAGED_SERVICES"]
}
resource "databricks_mws_customer_managed_keys" "ms" {
  for_each   = { a = cmk_kms_key.a.arn, "b" = cmk_kms_key.b.arn }
  account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info {
    key_arn = each.value
  }
}
"#,
    )]);
    let opts = parse_args(&s(&[d.path().to_str().unwrap()])).unwrap();
    let (plan, _) = load_hcl(&opts).unwrap();
    let mut got: Vec<&str> = plan
        .by_type(&["databricks_mws_customer_managed_keys"])
        .map(|r| r.address.as_str())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            r#"databricks_mws_customer_managed_keys.ms["a"]"#,
            r#"databricks_mws_customer_managed_keys.ms["b"]"#
        ]
    );
    // Each instance's key_arn is unknown, not null.
    for r in plan.by_type(&["databricks_mws_customer_managed_keys"]) {
        assert!(
            r.get_str("aws_key_info.key_arn").is_unknown(),
            "{}",
            r.address
        );
    }
}

#[test]
fn comments_come_from_tokens_not_from_strings_or_heredocs() {
    let src = "a = \"# no\" # yes1\nb = <<EOT\n# no\n  EOT\n// yes2\nc = \"${ \"x\" } # no\" /* # no */\nd = \"$${x} # no\"\ne = <<-X\n  // no ${ \"}\" }\n  X\n# yes3\n";
    let found: Vec<&str> = hcl_input::comments(src)
        .into_iter()
        .map(|(_, t)| t.trim())
        .collect();
    assert_eq!(found, vec!["yes1", "yes2", "yes3"]);
}

#[test]
fn the_owners_flags_are_read() {
    let o = parse_args(&s(&[
        "dir",
        "--no-inline-suppressions",
        "--max-suppression-days",
        "30",
        "--fail-on",
        "cannot-tell",
        "--root",
        "/repo",
        "--max-instances=50",
        "--max-module-calls",
        "7",
        "--max-value-mib",
        "2",
        "--max-seconds",
        "9",
    ]))
    .unwrap();
    assert!(o.no_inline_suppressions && o.require_expiry);
    assert_eq!(o.max_suppression_days, 30);
    assert_eq!(o.fail_on, FailOn::CannotTell);
    assert_eq!(o.root.as_deref(), Some("/repo"));
    assert_eq!(
        (
            o.budget.instances,
            o.budget.module_calls,
            o.budget.value_bytes,
            o.budget.seconds
        ),
        (50, 7, 2 * 1024 * 1024, 9)
    );
    assert!(matches!(
        parse_args(&s(&["dir", "--max-instances", "0"])),
        Err(UsageError::BadNumber(..))
    ));
    let d = parse_args(&s(&["dir"])).unwrap();
    assert!(!d.no_inline_suppressions && !d.require_expiry);
    assert_eq!(d.max_suppression_days, 90);
}

/// `--live`'s settings from HCL provider blocks: literals and variables
/// given with `-var`, and the order flag > environment > configuration
/// (`live::resolve_settings`).
#[test]
fn live_settings_come_from_provider_blocks_under_flags_and_environment() {
    use crate::cloud::databricks::StaticEnvironment;
    use crate::review::live::{resolve_settings, LiveFlags};
    let d = config_dir(&[(
        "main.tf",
        r#"
variable "acct" {
  type = string
}

provider "cmk" {
  account_id              = var.acct
  workspace_host_template = "http://127.0.0.1:8181/_ws/{deployment_name}"
}

provider "databricks" {
  host       = "http://127.0.0.1:8181"
  account_id = var.acct
}
"#,
    )]);
    let acct = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13";
    let dir = d.path().to_str().unwrap();
    let opts = parse_args(&s(&[dir, "-var", &format!("acct={acct}")])).unwrap();
    let plan = load_hcl(&opts).unwrap().0;
    let none = StaticEnvironment::default();
    let r = resolve_settings(&LiveFlags::default(), &none, &plan).unwrap();
    assert_eq!(r.settings.account_id.as_deref(), Some(acct));
    assert_eq!(r.settings.host.as_deref(), Some("http://127.0.0.1:8181"));
    assert_eq!(
        r.settings.workspace_host_template.as_deref(),
        Some("http://127.0.0.1:8181/_ws/{deployment_name}")
    );
    assert!(
        r.from_configuration
            .contains(&"account_id from provider \"cmk\" account_id".to_string()),
        "{:?}",
        r.from_configuration
    );
    // The environment wins over the blocks (the client then reads it).
    let env = StaticEnvironment::default()
        .with_var(
            "DATABRICKS_ACCOUNT_ID",
            "11111111-2222-4333-8444-555555555555",
        )
        .with_var("DATABRICKS_HOST", "https://accounts.cloud.databricks.com");
    let r = resolve_settings(&LiveFlags::default(), &env, &plan).unwrap();
    assert_eq!((r.settings.account_id, r.settings.host), (None, None));
    // A flag wins over both; a named profile over the blocks.
    let flags = LiveFlags {
        profile: Some("ci".into()),
        workspace_host_template: Some("https://{deployment_name}.example.com".into()),
    };
    let r = resolve_settings(&flags, &none, &plan).unwrap();
    assert_eq!(
        r.settings.workspace_host_template.as_deref(),
        Some("https://{deployment_name}.example.com")
    );
    assert_eq!((r.settings.account_id, r.settings.host), (None, None));
    assert!(
        r.from_configuration.is_empty(),
        "{:?}",
        r.from_configuration
    );
    // Blocks that disagree, with nothing overriding: an error naming both.
    let other = "22222222-2222-4333-8444-555555555555";
    let d2 = config_dir(&[(
        "main.tf",
        &format!(
            "provider \"cmk\" {{\n  account_id = \"{acct}\"\n}}\n\nprovider \"databricks\" {{\n  account_id = \"{other}\"\n}}\n"
        ),
    )]);
    let opts = parse_args(&s(&[d2.path().to_str().unwrap()])).unwrap();
    let plan = load_hcl(&opts).unwrap().0;
    let e = resolve_settings(&LiveFlags::default(), &none, &plan).unwrap_err();
    assert!(
        e.contains("disagree on account_id") && e.contains(acct) && e.contains(other),
        "{e}"
    );
}

/// The source of an existing workspace's storage key change, and its plan.
fn state_fixture(name: &str) -> String {
    root()
        .join("acceptance-tests/fixtures/review/state")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn needs_state_has_its_own_value_in_every_format() {
    let dir = state_fixture("storage_key_change");
    let out = |format: &str, fail_on: &str| {
        run_args(&[&dir, "--format", format, "--fail-on", fail_on]).unwrap()
    };
    // Text: its own lines and its own count, apart from "cannot tell yet".
    let t = out("text", "error");
    assert_eq!(t.code, 0, "{}", t.out);
    let line = t
        .out
        .lines()
        .find(|l| l.contains("needs state CMK009 databricks_mws_workspaces.this"))
        .unwrap_or_else(|| panic!("{}", t.out));
    assert!(line.contains("main.tf:20: "), "{line}");
    assert!(!t.out.contains("cannot tell yet CMK009"), "{}", t.out);
    assert!(t.out.contains(", 5 needs state, "), "{}", t.out);
    assert!(
        t.out
            .contains("5 finding(s) need state: not checked without a plan or --live"),
        "{}",
        t.out
    );
    // JSON: the verdict and the summary.
    let j: serde_json::Value = serde_json::from_str(&out("json", "error").out).unwrap();
    assert_eq!(j["summary"]["needs_state"], 5, "{j:#}");
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "CMK009")
        .unwrap();
    assert_eq!(f["verdict"], "needs_state");
    // SARIF: a note with the property, never a pass.
    let sarif: serde_json::Value = serde_json::from_str(&out("sarif", "error").out).unwrap();
    let r = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "CMK009")
        .unwrap();
    assert_eq!(r["level"], "note", "{r:#}");
    assert_eq!(r["kind"], "review", "{r:#}");
    assert_eq!(r["properties"]["needs_state"], true, "{r:#}");
    assert_eq!(r["properties"]["verdict"], "needs_state", "{r:#}");
    // JUnit: skipped with the message.
    let x = out("junit", "error").out;
    assert!(
        x.contains("<skipped message=\"needs state: not checked without a plan or --live: workspace &quot;prod&quot; may exist already, and this rule reads the workspace&apos;s current storage key"),
        "{x}"
    );
    // GitHub: a notice titled "needs state"; an error at --fail-on needs-state.
    let g = out("github", "error").out;
    assert!(
        g.lines()
            .any(|l| l.starts_with("::notice ") && l.contains("title=CMK009 needs state%3A ")),
        "{g}"
    );
    assert!(g.contains(", 5 needs state, "), "{g}");
    let g = out("github", "needs-state");
    assert_eq!(g.code, 1);
    assert!(
        g.out
            .lines()
            .any(|l| l.starts_with("::error ") && l.contains("title=CMK009 needs state%3A ")),
        "{}",
        g.out
    );
    // --fail-on: the default and warning do not fail on it; needs-state
    // and cannot-tell do.
    for (fail_on, code) in [
        ("error", 0),
        ("warning", 0),
        ("needs-state", 1),
        ("cannot-tell", 1),
        ("never", 0),
    ] {
        assert_eq!(out("text", fail_on).code, code, "--fail-on {fail_on}");
    }
}

#[test]
fn the_plan_of_the_same_change_decides_from_its_prior_state() {
    let plan = state_fixture("storage_key_change.json");
    let done = run_args(&[&plan, "--format", "json"]).unwrap();
    assert_eq!(done.code, 1, "{}", done.out);
    let j: serde_json::Value = serde_json::from_str(&done.out).unwrap();
    assert_eq!(j["summary"]["needs_state"], 0, "{j:#}");
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "CMK009")
        .unwrap();
    assert_eq!(f["verdict"], "fail", "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("already has storage key configuration aaaaaaaa-0000-4000-8000-0000000000c1"),
        "{f}"
    );
    // HCL mode never passes or fails what the plan decided from its state.
    let hcl = hcl_analysis(Path::new(&state_fixture("storage_key_change")));
    let plan = review_text(
        &std::fs::read_to_string(&plan).unwrap(),
        &Requirements::default(),
    )
    .unwrap();
    let mut state_rules = 0;
    for l in &plan.outcomes {
        if crate::rules::findings::state_read_by(l.outcome.rule).is_none() {
            continue;
        }
        let h = hcl
            .outcomes
            .iter()
            .find(|h| {
                h.address == l.address
                    && h.outcome.rule == l.outcome.rule
                    && h.outcome.subject == l.outcome.subject
            })
            .unwrap_or_else(|| panic!("{} {} missing in HCL mode", l.address, l.outcome.rule));
        if matches!(
            l.outcome.rule.code(),
            "CMK009" | "CMK010" | "CMK011" | "CMK019" | "CMK020"
        ) {
            state_rules += 1;
            assert_eq!(
                h.outcome.verdict,
                Verdict::NeedsState,
                "{}: {}",
                l.outcome.rule,
                h.outcome.message
            );
        }
    }
    assert_eq!(state_rules, 5);
}

#[test]
fn shown_paths_are_relative_to_the_reviewed_directory_and_normalized() {
    for (dir, file, want) in [
        ("env", "env/./modules/x/main.tf", "modules/x/main.tf"),
        ("env", "env/../shared/y/main.tf", "../shared/y/main.tf"),
        (".", "./main.tf", "main.tf"),
        ("./env/", "./env/./a/../main.tf", "main.tf"),
        ("/r/env", "/r/env/./modules/x/main.tf", "modules/x/main.tf"),
        ("/r/env", "/r/env/../../o/main.tf", "../../o/main.tf"),
        ("", "main.tf", "main.tf"),
    ] {
        assert_eq!(super::shown_path(dir, file), want, "{dir} {file}");
    }
}

/// A root module with a module under it and one beside it, inside the
/// reviewed tree (`--root`): every format shows the files as tflint and
/// checkov do.
#[test]
fn findings_name_files_relative_to_the_root_module_in_every_format() {
    let ws = |name: &str| {
        format!(
            r#"resource "databricks_mws_workspaces" "{name}" {{
  account_id     = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  workspace_name = "{name}"
  aws_region     = "us-east-1"
  pricing_tier   = "PREMIUM"
  managed_services_customer_managed_key_id = "11111111-1111-4111-8111-111111111111"
}}
"#
        )
    };
    let d = config_dir(&[
        (
            "env/main.tf",
            "module \"x\" {\n  source = \"./modules/x\"\n}\nmodule \"y\" {\n  source = \"../shared/y\"\n}\n",
        ),
        ("env/modules/x/main.tf", &ws("x")),
        ("shared/y/main.tf", &ws("y")),
    ]);
    let root = d.path().to_str().unwrap().to_string();
    let env = d.path().join("env").join(".").display().to_string();
    let out = |format: &str| {
        let done = run_args(&[&env, "--root", &root, "--format", format]).unwrap();
        assert_eq!(done.code, 1, "{}", done.out);
        done.out
    };
    let t = out("text");
    assert!(
        t.contains("\nmodules/x/main.tf:1: error CMK001 module.x.")
            || t.starts_with("modules/x/main.tf:1: error CMK001"),
        "{t}"
    );
    assert!(
        t.contains("../shared/y/main.tf:1: error CMK001 module.y."),
        "{t}"
    );
    let j: serde_json::Value = serde_json::from_str(&out("json")).unwrap();
    let files: std::collections::BTreeSet<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        ["../shared/y/main.tf", "modules/x/main.tf"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    let sarif = out("sarif");
    assert!(sarif.contains("\"uri\": \"modules/x/main.tf\""), "{sarif}");
    assert!(
        sarif.contains("\"uri\": \"../shared/y/main.tf\""),
        "{sarif}"
    );
    let g = out("github");
    assert!(
        g.contains("::error file=modules/x/main.tf,line=1,title=CMK001"),
        "{g}"
    );
    assert!(
        g.contains("::error file=../shared/y/main.tf,line=1,title=CMK001"),
        "{g}"
    );
    let x = out("junit");
    assert!(x.contains("classname=\"modules/x/main.tf:1\""), "{x}");
    for s in [&t, &sarif, &g, &x] {
        assert!(!s.contains("/./") && !s.contains("env/modules"), "{s}");
    }
}

/// (verdict, message) of a rule on an address.
fn outcome_of(a: &Analysis, address: &str, rule: &str) -> (Verdict, String) {
    a.outcomes
        .iter()
        .find(|l| l.address == address && l.outcome.rule.code() == rule)
        .map(|l| (l.outcome.verdict, l.outcome.message.clone()))
        .unwrap_or_else(|| panic!("no {rule} on {address}"))
}

#[test]
fn aws_kms_grants_count_in_cmk015_and_cmk021() {
    let dir = root().join("acceptance-tests/fixtures/review/state/grant_key");
    let a = hcl_analysis(&dir);
    // The default policy plus a grant of Encrypt and Decrypt to Databricks'
    // principal: enough for MANAGED_SERVICES.
    let (v, m) = outcome_of(&a, "aws_kms_key.ms", "CMK015");
    assert_eq!(v, Verdict::Pass, "{m}");
    assert!(m.contains("grants"), "{m}");
    assert_eq!(outcome_of(&a, "aws_kms_key.ms", "CMK021").0, Verdict::Pass);
    // A grant of Decrypt alone on a storage key: what is missing is named.
    let (v, m) = outcome_of(&a, "aws_kms_key.st", "CMK015");
    assert_eq!(v, Verdict::Fail, "{m}");
    assert!(
        m.contains("kms:Encrypt (needed for STORAGE)") && !m.contains("kms:Decrypt"),
        "{m}"
    );
    assert!(
        m.contains("nor does any grant (aws_kms_grant.databricks_st)"),
        "{m}"
    );
    let (v, m) = outcome_of(&a, "aws_kms_key.st", "CMK021");
    assert_eq!(v, Verdict::Fail, "{m}");
    assert!(m.contains("kms:CreateGrant"), "{m}");
    // Without the grant, the managed-services key fails: the grant decided.
    let text = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    let without = text
        .replace(
            "resource \"aws_kms_grant\" \"databricks_ms\"",
            "resource \"aws_kms_grant\" \"unrelated\"",
        )
        .replace(
            "  key_id            = aws_kms_key.ms.key_id\n",
            "  key_id            = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\n",
        );
    let d = config_dir(&[("main.tf", &without)]);
    let a = hcl_analysis(d.path());
    let (v, m) = outcome_of(&a, "aws_kms_key.ms", "CMK015");
    assert_eq!(v, Verdict::Fail, "{m}");
    // A grant whose grantee is not known: cannot tell, naming it.
    let unknown = format!(
        "variable \"grantee\" {{\n  type = string\n}}\n{}",
        text.replace(
            "  grantee_principal = \"arn:aws:iam::414351767826:root\"\n  operations        = [\"Encrypt\", \"Decrypt\"]",
            "  grantee_principal = var.grantee\n  operations        = [\"Encrypt\", \"Decrypt\"]",
        )
    );
    let d = config_dir(&[("main.tf", &unknown)]);
    let a = hcl_analysis(d.path());
    let (v, m) = outcome_of(&a, "aws_kms_key.ms", "CMK015");
    assert_eq!(v, Verdict::CannotTell, "{m}");
    assert!(
        m.contains(
            "grant aws_kms_grant.databricks_ms (its grantee_principal is not known until apply)"
        ),
        "{m}"
    );
    // A grant whose key is not known may be on any key: cannot tell.
    let unknown_key = format!(
        "variable \"key\" {{\n  type = string\n}}\n{}",
        text.replace(
            "  key_id            = aws_kms_key.ms.key_id\n",
            "  key_id            = var.key\n"
        )
    );
    let d = config_dir(&[("main.tf", &unknown_key)]);
    let a = hcl_analysis(d.path());
    let (v, m) = outcome_of(&a, "aws_kms_key.ms", "CMK015");
    assert_eq!(v, Verdict::CannotTell, "{m}");
    assert!(
        m.contains("grant aws_kms_grant.databricks_ms (its key_id is not known until apply)"),
        "{m}"
    );
}

/// A storage key whose DBFS statement hard-codes
/// `aws:PrincipalTag/DatabricksAccountId` for another Databricks account (a
/// shape a public module has): with the account known, from the key
/// configuration or else the provider block, CMK015 fails; with it unknown,
/// it cannot be told, never passed.
#[test]
fn a_dbfs_statement_for_another_databricks_account_fails_when_the_account_is_known() {
    let main = |provider: &str, key_account: &str| {
        format!(
            r#"
variable "databricks_account_id" {{
  type = string
}}
{provider}
data "aws_caller_identity" "current" {{}}
resource "aws_kms_key" "storage" {{
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws:iam::${{data.aws_caller_identity.current.account_id}}:root" }}
        Action    = "kms:*"
        Resource  = "*"
      }},
      {{
        Sid       = "Allow Databricks to use KMS key for DBFS"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {{ StringEquals = {{ "aws:PrincipalTag/DatabricksAccountId" = ["11111111-2222-4333-8444-555555555555"] }} }}
      }}
    ]
  }})
}}
resource "databricks_mws_customer_managed_keys" "storage" {{
  account_id = {key_account}
  aws_key_info {{
    key_arn = aws_kms_key.storage.arn
  }}
  use_cases = ["STORAGE"]
}}
"#
        )
    };
    let ours = "0d26daa6-5e44-4c97-a497-ef015f91254a";
    let cases = [
        // The key configuration names the account.
        (String::new(), format!("\"{ours}\"")),
        // Only the provider block does.
        (
            format!("provider \"databricks\" {{\n  account_id = \"{ours}\"\n}}\n"),
            "var.databricks_account_id".to_string(),
        ),
    ];
    for (provider, key_account) in &cases {
        let d = config_dir(&[("main.tf", &main(provider, key_account))]);
        let a = hcl_analysis(d.path());
        let (v, m) = outcome_of(&a, "aws_kms_key.storage", "CMK015");
        assert_eq!(v, Verdict::Fail, "{provider}{key_account}: {m}");
        assert!(
            m.contains("kms:Decrypt (needed for STORAGE)"),
            "{provider}{key_account}: {m}"
        );
    }
    // Nobody names the account: the tag condition could hold or not.
    let d = config_dir(&[("main.tf", &main("", "var.databricks_account_id"))]);
    let (v, m) = outcome_of(&hcl_analysis(d.path()), "aws_kms_key.storage", "CMK015");
    assert_eq!(v, Verdict::CannotTell, "{m}");
    assert!(m.contains("aws:PrincipalTag/DatabricksAccountId"), "{m}");
}
