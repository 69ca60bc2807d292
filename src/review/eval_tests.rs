//! The evaluation corpus (acceptance-tests/fixtures/review/eval/): the
//! shapes public Databricks-on-AWS configurations use that only an
//! evaluation with unknowns and their origins decides. Each directory
//! holds a configuration and `expected.json`: the variables to give, the
//! verdicts of chosen findings, every failure, and how many findings may
//! still be "cannot tell yet" (0 for the SRA shape). Reviewed in HCL mode
//! through the command line's own parsing.
//!
//! A configuration with a prior state (`prior.tfstate`: objects that exist
//! already) has, beside, `with_prior_state`: the verdicts and failures plan
//! mode gives with that state (real_plan_tests.rs), each on a finding HCL
//! mode, without state, must leave "needs state". A configuration Terraform
//! refuses (`"terraform_refuses": true`) has no verdicts: review refuses it
//! too, naming both places of what it declares twice (`duplicate`,
//! `declared_at`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::rules::findings::Verdict;

pub(super) fn eval_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("acceptance-tests/fixtures/review/eval")
}

/// "ADDRESS RULE ATTRIBUTE" -> "pass" | "fail error" | "fail warning" | "cannot tell".
pub(super) fn verdicts(a: &Analysis) -> BTreeMap<String, String> {
    a.outcomes
        .iter()
        .map(|l| {
            let v = match l.outcome.verdict {
                Verdict::Fail => format!("fail {}", l.outcome.severity),
                Verdict::CannotTell => "cannot tell".to_string(),
                Verdict::Pass => "pass".to_string(),
                Verdict::NeedsState => "needs state".to_string(),
            };
            (
                format!("{} {} {}", l.address, l.outcome.rule.code(), l.attribute),
                v,
            )
        })
        .collect()
}

pub(super) fn review_dir(dir: &std::path::Path, vars: &[(String, String)]) -> Analysis {
    let (plan, _) = load_dir(dir, vars).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    analyze(&plan, &Requirements::default())
}

fn load_dir(
    dir: &std::path::Path,
    vars: &[(String, String)],
) -> Result<(Plan, hcl_input::Loaded), String> {
    let mut args = vec![dir.to_str().unwrap().to_string()];
    for (k, v) in vars {
        args.push("-var".into());
        args.push(format!("{k}={v}"));
    }
    let opts = parse_args(&args).unwrap();
    load_hcl(&opts)
}

/// Whether expected.json marks a configuration Terraform refuses (no plan,
/// no verdicts); anything but true or false there is a mistake.
pub(super) fn terraform_refuses(name: &str, expected: &Value) -> bool {
    match expected.get("terraform_refuses") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => panic!("{name}/expected.json: terraform_refuses is {other}"),
    }
}

/// The verdicts plan mode is expected to give: expected.json's, but where
/// `with_prior_state` says what the prior state decides.
pub(super) fn plan_verdicts(expected: &Value) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = expected["verdicts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    if let Some(m) = expected["with_prior_state"]["verdicts"].as_object() {
        for (k, v) in m {
            out.insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    out
}

/// The failures plan mode is expected to report: expected.json's and those
/// its prior state decides (`with_prior_state.failures`).
pub(super) fn plan_failures(expected: &Value) -> std::collections::BTreeSet<String> {
    [
        &expected["failures"],
        &expected["with_prior_state"]["failures"],
    ]
    .into_iter()
    .filter_map(Value::as_array)
    .flatten()
    .map(|v| v.as_str().unwrap().to_string())
    .collect()
}

/// Each case's expected verdicts, and the share decided over the corpus.
#[test]
fn eval_corpus_is_decided_as_expected() {
    let mut names: Vec<String> = std::fs::read_dir(eval_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 4, "the corpus has {names:?}");
    let (mut decided, mut total, mut refused) = (0usize, 0usize, 0usize);
    for name in &names {
        let dir = eval_dir().join(name);
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected.json"))
                .unwrap_or_else(|e| panic!("{name}/expected.json: {e}")),
        )
        .unwrap();
        let vars: Vec<(String, String)> = expected["vars"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if terraform_refuses(name, &expected) {
            // As Terraform: refused, naming what is declared twice and both
            // places (acceptance-tests/real_plans.rs checks Terraform says
            // the same).
            let e = match load_dir(&dir, &vars) {
                Ok(_) => panic!("{name}: Terraform refuses this configuration; review accepted it"),
                Err(e) => e,
            };
            let what = expected["duplicate"].as_str().unwrap();
            assert!(e.contains(&format!("duplicate {what}")), "{name}: {e}");
            let places = expected["declared_at"].as_array().unwrap();
            assert_eq!(places.len(), 2, "{name}: declared_at");
            for p in places {
                assert!(
                    e.contains(p.as_str().unwrap()),
                    "{name}: {p} not named: {e}"
                );
            }
            refused += 1;
            continue;
        }
        let got = verdicts(&review_dir(&dir, &vars));
        if std::env::var("CMK_EVAL_PRINT").is_ok() {
            eprintln!("{name}: {}", serde_json::to_string_pretty(&got).unwrap());
        }
        for (k, want) in expected["verdicts"].as_object().unwrap() {
            assert_eq!(
                got.get(k).map(String::as_str),
                want.as_str(),
                "{name}: {k}\n{got:#?}"
            );
        }
        let failures: Vec<&String> = got
            .iter()
            .filter(|(_, v)| v.starts_with("fail"))
            .map(|(k, _)| k)
            .collect();
        let want_failures: Vec<&str> = expected["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(failures, want_failures, "{name}: every failure, exactly");
        // What the prior state decides in plan mode, HCL mode (no state)
        // leaves to state: never a pass, never a failure.
        if let Some(m) = expected["with_prior_state"]["verdicts"].as_object() {
            assert!(
                dir.join("prior.tfstate").exists(),
                "{name}: with_prior_state without a prior.tfstate"
            );
            for k in m.keys() {
                assert_eq!(
                    got.get(k).map(String::as_str),
                    Some("needs state"),
                    "{name}: {k} is decided by the prior state in plan mode; without state it needs state"
                );
            }
        }
        let cannot: Vec<&String> = got
            .iter()
            .filter(|(_, v)| *v == "cannot tell")
            .map(|(k, _)| k)
            .collect();
        let allowed = expected["cannot_tell_at_most"].as_u64().unwrap() as usize;
        assert!(
            cannot.len() <= allowed,
            "{name}: {} cannot tell (at most {allowed}): {cannot:#?}",
            cannot.len()
        );
        // "Needs state" is what the configuration alone cannot decide: it is
        // left out of the share (reported apart, never as decided).
        let needs_state = got.values().filter(|v| *v == "needs state").count();
        decided += got.len() - cannot.len() - needs_state;
        total += got.len() - needs_state;
    }
    assert!(
        refused >= 1,
        "no configuration of the corpus is one Terraform refuses"
    );
    let share = decided as f64 * 100.0 / total as f64;
    eprintln!("eval corpus: {decided} of {total} checks decided ({share:.1}%)");
    assert!(share >= 95.0, "{decided} of {total} decided");
}

/// Without its variables, the SRA shape stays undecided exactly where a
/// variable is read, and each such finding names it; nothing fails.
#[test]
fn sra_shape_without_variables_names_what_it_waits_for() {
    let a = review_dir(&eval_dir().join("sra_role_reference"), &[]);
    let mut waiting = 0;
    for l in &a.outcomes {
        match l.outcome.verdict {
            Verdict::Fail => {
                assert_eq!(l.outcome.rule.code(), "CMK021", "{:?}", l.outcome)
            }
            Verdict::CannotTell => {
                waiting += 1;
                assert!(
                    !l.outcome.message.contains('\u{1}'),
                    "a marker reached a message: {:?}",
                    l.outcome.message
                );
            }
            Verdict::Pass | Verdict::NeedsState => {}
        }
    }
    assert!(waiting > 0);
    // The EBS statement and the credentials name the same role: the role's
    // own reference is in the message, as Terraform writes it.
    let ebs = a
        .outcomes
        .iter()
        .find(|l| l.outcome.rule.code() == "CMK016" && l.address == "aws_kms_key.workspace_storage")
        .unwrap();
    assert!(
        ebs.outcome.verdict == Verdict::Pass
            || ebs
                .outcome
                .message
                .contains("${aws_iam_role.cross_account_role[0].arn}"),
        "{:?}",
        ebs.outcome
    );
}

/// A policy that is wholly one unknown (`var.policy`), or whose `Effect`
/// is unknown, is "cannot tell yet", never a policy that does not parse.
#[test]
fn a_policy_unknown_in_its_structure_is_cannot_tell_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        r#"
variable "policy" { type = string }
variable "effect" { type = string }
provider "aws" { region = "us-east-1" }
resource "aws_kms_key" "a" { policy = var.policy }
resource "aws_kms_key" "b" {
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = var.effect, Principal = { AWS = "arn:aws:iam::414351767826:root" }, Action = "kms:*", Resource = "*" }] })
}
resource "databricks_mws_customer_managed_keys" "a" {
  account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info { key_arn = aws_kms_key.a.arn }
}
resource "databricks_mws_customer_managed_keys" "b" {
  account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info { key_arn = aws_kms_key.b.arn }
}
"#,
    )
    .unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let opts = parse_args(&[root.clone(), "--root".into(), root]).unwrap();
    let (plan, _) = load_hcl(&opts).unwrap();
    let got = verdicts(&analyze(&plan, &Requirements::default()));
    for k in ["aws_kms_key.a CMK015 policy", "aws_kms_key.b CMK015 policy"] {
        assert_eq!(
            got.get(k).map(String::as_str),
            Some("cannot tell"),
            "{k}: {got:#?}"
        );
    }
}
