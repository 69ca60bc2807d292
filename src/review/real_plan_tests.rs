//! Plan mode and HCL mode on the same configurations: each eval corpus
//! directory (acceptance-tests/fixtures/review/eval/NAME) is reviewed from its
//! source with expected.json's variables, and from `plan.json`, the plan the
//! real Terraform wrote for that source with the same variables
//! (acceptance-tests/real_plans.rs makes and checks it; the README beside the
//! fixtures says how). The verdicts are compared finding by finding (address,
//! rule, attribute). Every difference is listed below with what the plan
//! lacks that the source has; a difference not listed fails, and so does a
//! listed one that no longer happens (shrink the list when plan mode learns
//! more). Where plan mode decides, it must agree with expected.json (its
//! `with_prior_state` verdicts where the configuration has a prior state).
//! A configuration Terraform refuses has no plan and is skipped here, by its
//! expected.json's `"terraform_refuses": true` (real_plans.rs checks that
//! Terraform and review both refuse it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::eval_tests::{
    eval_dir, plan_failures, plan_verdicts, review_dir, terraform_refuses, verdicts,
};
use super::*;

/// A known difference: (configuration, "ADDRESS RULE ATTRIBUTE", HCL mode's
/// verdict, plan mode's verdict, why). A verdict absent in one mode is "-".
type Known = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const SRA_POLICY: &str = "the key's policy is one jsonencode(...) naming \
aws_iam_role.cross_account_role[0].arn, known only after apply: in the plan the whole policy is \
unknown (after_unknown.policy = true) and the configuration section records only the references, \
not the statements; the source has every statement and the role's origin";
const DEFERRED_POLICY_DOCUMENT: &str = "data.aws_iam_policy_document.storage names \
aws_iam_role.cross_account.arn, known only after apply, so Terraform defers its read to apply \
(action read, read_because_config_unknown): its json and the key's policy are wholly unknown in \
the plan; the source has every statement block";
const SPLAT_OUTPUT: &str = "key_arn comes through a module output built with concat(...)[0] / \
element(...) over the splat aws_kms_key.this[*].arn: the plan records only the reference \
aws_kms_key.this (no instance) for that output and the value is unknown until apply; the source \
has the expression that picks the instance";
const UNLINKED_INSTANCE: &str = "no key configuration links to this instance in the plan: the \
outputs that lead to it record only aws_kms_key.this (arns, first_arn) or aws_kms_key.this[0] \
(keys, whose primary is this[0] and secondary element(aws_kms_key.this.*.arn, 1)), so plan mode \
reviews aws_kms_key.this[1] not at all, while the source links from_splat and from_object to it";

const RUNNING_COMPUTE: &str = "the workspace exists (the plan's prior state holds it, \
RUNNING) and its keys change, so CMK010 asks whether classic compute (clusters, pools, classic \
SQL warehouses) is running: that is not Terraform state, so the plan does not carry it and plan \
mode says cannot tell; HCL mode, with no state at all, says needs state. Neither passes; only \
--live reads the running compute";

/// The known differences the source does not decide either: what only
/// `--live` reads (the plan with its source keeps them, listed here by
/// configuration and finding; each is also in [`KNOWN_DIFFERENCES`]).
const LIVE_ONLY: &[(&str, &str)] = &[(
    "existing_workspace_storage_key",
    "databricks_mws_workspaces.this CMK010 workspace_status",
)];

const KNOWN_DIFFERENCES: &[Known] = &[
    (
        "existing_workspace_storage_key",
        "databricks_mws_workspaces.this CMK010 workspace_status",
        "needs state",
        "cannot tell",
        RUNNING_COMPUTE,
    ),
    (
        "policy_document_keys",
        "aws_kms_key.storage CMK015 policy",
        "pass",
        "cannot tell",
        DEFERRED_POLICY_DOCUMENT,
    ),
    (
        "policy_document_keys",
        "aws_kms_key.storage CMK016 policy",
        "pass",
        "cannot tell",
        DEFERRED_POLICY_DOCUMENT,
    ),
    (
        "policy_document_keys",
        "aws_kms_key.storage CMK021 policy",
        "pass",
        "cannot tell",
        DEFERRED_POLICY_DOCUMENT,
    ),
    (
        "splat_module_outputs",
        "databricks_mws_customer_managed_keys.from_concat CMK018 aws_key_info.key_arn",
        "pass",
        "cannot tell",
        SPLAT_OUTPUT,
    ),
    (
        "splat_module_outputs",
        "databricks_mws_customer_managed_keys.from_splat CMK018 aws_key_info.key_arn",
        "pass",
        "cannot tell",
        SPLAT_OUTPUT,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK003 customer_master_key_spec",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK003 key_usage",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK004 is_enabled",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK015 policy",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK016 policy",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK021 policy",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "splat_module_outputs",
        "module.keys.aws_kms_key.this[1] CMK022 aws_key_info.key_arn",
        "pass",
        "-",
        UNLINKED_INSTANCE,
    ),
    (
        "sra_role_reference",
        "aws_kms_key.workspace_storage CMK015 policy",
        "pass",
        "cannot tell",
        SRA_POLICY,
    ),
    (
        "sra_role_reference",
        "aws_kms_key.workspace_storage CMK016 policy",
        "pass",
        "cannot tell",
        SRA_POLICY,
    ),
    (
        "sra_role_reference",
        "aws_kms_key.workspace_storage CMK021 policy",
        "fail warning",
        "cannot tell",
        SRA_POLICY,
    ),
];

/// How a plan knows what exists, for a finding HCL mode leaves to state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StateOfThePlan {
    /// resource_changes create the object (empty prior state): nothing exists.
    Creates,
    /// The plan's prior_state holds the object and its change starts from
    /// it (`before`): what exists is in the plan.
    PriorState,
}

/// Not a difference but the two modes' design: without a plan, what compares
/// with a workspace that may exist is "needs state"; a plan decides it,
/// either because its resource_changes create that workspace (empty prior
/// state) or because its prior state holds the workspace as it is. Checked
/// per finding against the plan's own actions and prior state; `None` when
/// the difference is not that.
fn decided_by_the_plans_state(
    plan: &Value,
    key: &str,
    hcl: &str,
    in_plan: &str,
) -> Option<StateOfThePlan> {
    let address = key.split(' ').next().unwrap_or_default();
    if hcl != "needs state" || !matches!(in_plan, "pass" | "fail error" | "fail warning") {
        return None;
    }
    let change = plan["resource_changes"]
        .as_array()?
        .iter()
        .find(|c| c["address"] == address)?;
    if change["change"]["actions"] == serde_json::json!(["create"])
        && change["change"]["before"].is_null()
    {
        return Some(StateOfThePlan::Creates);
    }
    let in_prior_state = plan["prior_state"]["values"]["root_module"]["resources"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["address"] == address));
    (in_prior_state && change["change"]["before"].is_object()).then_some(StateOfThePlan::PriorState)
}

fn vars_of(expected: &Value) -> Vec<(String, String)> {
    expected["vars"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One eval configuration reviewed both ways.
struct BothModes {
    name: String,
    expected: Value,
    plan_json: Value,
    hcl: BTreeMap<String, String>,
    plan: BTreeMap<String, String>,
}

/// Each eval configuration with its committed plan; those Terraform refuses
/// (no plan) are left out, by their expected.json's marker, and said.
fn both_modes() -> Vec<BothModes> {
    let mut names: Vec<String> = std::fs::read_dir(eval_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("expected.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 4, "the eval corpus has {names:?}");
    names
        .into_iter()
        .filter_map(|name| {
            let dir = eval_dir().join(&name);
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                    .unwrap();
            if terraform_refuses(&name, &expected) {
                assert!(
                    !dir.join("plan.json").exists(),
                    "{name}: Terraform refuses it, yet it has a plan.json"
                );
                eprintln!("{name}: not compared: Terraform refuses it, so it has no plan (expected.json \"terraform_refuses\": true)");
                return None;
            }
            let plan_text = std::fs::read_to_string(dir.join("plan.json")).unwrap_or_else(|e| {
                panic!(
                    "{name}/plan.json: {e}: every eval configuration has its real plan \
                     (CMK_REWRITE_REAL_PLANS=1 TF_ACC=1 cargo test --release --test acceptance real_plans)"
                )
            });
            let hcl = verdicts(&review_dir(&dir, &vars_of(&expected)));
            let plan = verdicts(
                &review_text(&plan_text, &Requirements::default())
                    .unwrap_or_else(|e| panic!("{name}/plan.json does not read: {e}")),
            );
            Some(BothModes {
                name,
                expected,
                plan_json: serde_json::from_str(&plan_text).unwrap(),
                hcl,
                plan,
            })
        })
        .collect()
}

#[test]
fn plan_mode_and_hcl_mode_agree_finding_by_finding_but_for_the_known_differences() {
    let mut unexplained = vec![];
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut all = vec![];
    let (mut decided_by_create, mut decided_by_prior_state) = (0, 0);
    for BothModes {
        name,
        plan_json,
        hcl,
        plan,
        ..
    } in both_modes()
    {
        let name = name.as_str();
        let keys: BTreeSet<&String> = hcl.keys().chain(plan.keys()).collect();
        for k in keys {
            let h = hcl.get(k).map(String::as_str).unwrap_or("-");
            let p = plan.get(k).map(String::as_str).unwrap_or("-");
            if h == p {
                continue;
            }
            all.push(format!("{name}: {k}: HCL {h}, plan {p}"));
            match decided_by_the_plans_state(&plan_json, k, h, p) {
                Some(StateOfThePlan::Creates) => {
                    decided_by_create += 1;
                    continue;
                }
                Some(StateOfThePlan::PriorState) => {
                    decided_by_prior_state += 1;
                    continue;
                }
                None => {}
            }
            match KNOWN_DIFFERENCES
                .iter()
                .find(|(n, key, _, _, _)| *n == name && *key == k)
            {
                Some((n, key, kh, kp, _)) if *kh == h && *kp == p => {
                    seen.insert((n, key));
                }
                Some((_, _, kh, kp, _)) => unexplained.push(format!(
                    "{name}: {k}: HCL {h}, plan {p} (listed as HCL {kh}, plan {kp})"
                )),
                None => unexplained.push(format!("{name}: {k}: HCL {h}, plan {p}")),
            }
        }
    }
    if std::env::var("CMK_EVAL_PRINT").is_ok() {
        eprintln!("{}", all.join("\n"));
    }
    // The new workspaces of the corpus: the plan decides what HCL mode
    // leaves to state (CMK009, CMK010, CMK011, CMK019, CMK020 at least).
    assert!(
        decided_by_create >= 5,
        "{decided_by_create} needs-state findings decided by a create"
    );
    // The existing one (existing_workspace_storage_key): its prior state
    // decides CMK009 at least.
    assert!(
        decided_by_prior_state >= 1,
        "{decided_by_prior_state} needs-state findings decided by the plan's prior state"
    );
    let unused: Vec<String> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(n, k, _, _, _)| !seen.contains(&(*n, *k)))
        .map(|(n, k, h, p, _)| format!("{n}: {k}: HCL {h}, plan {p}"))
        .collect();
    assert!(
        unexplained.is_empty(),
        "plan mode and HCL mode differ where no known difference says why:\n{}",
        unexplained.join("\n")
    );
    assert!(
        unused.is_empty(),
        "known differences that no longer happen (remove them from KNOWN_DIFFERENCES):\n{}",
        unused.join("\n")
    );
}

/// Where the plan decides a chosen finding, it decides as expected.json
/// says; every failure plan mode reports is an expected one.
#[test]
fn plan_mode_decides_as_expected_where_the_plan_can_decide() {
    let mut compared = 0;
    for BothModes {
        name,
        expected,
        plan,
        ..
    } in both_modes()
    {
        // What plan mode says with the prior state (decided, or "cannot
        // tell" where the plan lacks the fact), exactly, never skipped.
        if let Some(m) = expected["with_prior_state"]["verdicts"].as_object() {
            for (k, want) in m {
                assert_eq!(
                    plan.get(k).map(String::as_str),
                    want.as_str(),
                    "{name}: {k} in plan mode, which has the prior state\n{plan:#?}"
                );
            }
        }
        for (k, want) in &plan_verdicts(&expected) {
            // Undecided or absent in plan mode: a difference from HCL mode,
            // which the test above holds to its list.
            let got = plan.get(k).map(String::as_str);
            if matches!(got, None | Some("cannot tell") | Some("needs state")) {
                continue;
            }
            compared += 1;
            assert_eq!(
                got,
                Some(want.as_str()),
                "{name}: {k} in plan mode\n{plan:#?}"
            );
        }
        let want_failures = plan_failures(&expected);
        for (k, v) in &plan {
            if v.starts_with("fail") {
                assert!(
                    want_failures.contains(k),
                    "{name}: plan mode fails {k} ({v}), which expected.json does not"
                );
            }
        }
    }
    // 12 of the 21 today; the other 9 are known differences above.
    assert!(
        compared >= 12,
        "only {compared} expected verdicts decided in plan mode"
    );
}

/// The plan with its source (`review plan.json --source DIR`): one evaluated
/// configuration. It agrees with HCL mode on every finding, but where the
/// plan's own create or prior state decides what HCL mode leaves to state,
/// and where only `--live` decides ([`LIVE_ONLY`], with the verdicts
/// [`KNOWN_DIFFERENCES`] lists); and it decides every verdict expected.json
/// names as it says.
#[test]
fn the_plan_with_its_source_agrees_with_hcl_mode_on_every_finding() {
    let mut differences = vec![];
    let mut compared = 0;
    let mut gained = 0;
    for BothModes {
        name,
        expected,
        plan_json,
        hcl,
        plan,
    } in both_modes()
    {
        let dir = eval_dir().join(&name);
        let plan_file = dir.join("plan.json");
        let opts = parse_args(&[
            plan_file.to_string_lossy().into_owned(),
            "--source".into(),
            dir.to_string_lossy().into_owned(),
        ])
        .unwrap();
        let (filled, _) = plan_with_source(&opts, &dir.to_string_lossy())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let both = verdicts(&analyze(&filled, &Requirements::default()));
        let keys: BTreeSet<&String> = hcl.keys().chain(both.keys()).collect();
        for k in keys {
            let h = hcl.get(k).map(String::as_str).unwrap_or("-");
            let b = both.get(k).map(String::as_str).unwrap_or("-");
            let live_only = LIVE_ONLY.contains(&(name.as_str(), k.as_str()))
                && KNOWN_DIFFERENCES
                    .iter()
                    .any(|(n, key, kh, kp, _)| *n == name && *key == k && *kh == h && *kp == b);
            if h != b && decided_by_the_plans_state(&plan_json, k, h, b).is_none() && !live_only {
                differences.push(format!("{name}: {k}: HCL {h}, plan with source {b}"));
            }
            if plan.get(k).map(String::as_str) != Some(b) && b != "cannot tell" {
                gained += 1;
            }
        }
        for (k, want) in &plan_verdicts(&expected) {
            compared += 1;
            assert_eq!(
                both.get(k).map(String::as_str),
                Some(want.as_str()),
                "{name}: {k} in plan mode with the source"
            );
        }
    }
    assert!(
        differences.is_empty(),
        "the plan with its source differs from HCL mode:\n{}",
        differences.join("\n")
    );
    // Every known difference of the plan alone is decided with the source,
    // but what only --live reads.
    for l in LIVE_ONLY {
        assert!(
            KNOWN_DIFFERENCES
                .iter()
                .any(|(n, k, _, _, _)| (*n, *k) == *l),
            "{l:?} is not a known difference"
        );
    }
    assert!(
        gained >= KNOWN_DIFFERENCES.len() - LIVE_ONLY.len(),
        "{gained} findings decided with the source that the plan alone does not"
    );
    assert!(compared >= 21, "{compared} expected verdicts compared");
}
