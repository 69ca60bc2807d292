//! Review of GovCloud configurations: the shard from the Databricks provider
//! block's host (a literal, a variable, or a conditional on a shard
//! variable, as public modules write it) or `--deployment`; the shard's
//! principal checked; "cannot tell" and never a false error when the shard
//! cannot be known; plan mode and HCL mode agree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::rules::findings::Verdict;
use crate::rules::RuleId;

const COMMERCIAL: &str = "414351767826";
const CIVILIAN: &str = "044793339203";
const DOD: &str = "170661010020";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("acceptance-tests/fixtures/review")
}

fn args(v: &[&str]) -> Options {
    parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn hcl(extra: &[&str]) -> Analysis {
    let dir = fixtures().join("govcloud_sra");
    let mut a = vec![dir.to_str().unwrap()];
    a.extend_from_slice(extra);
    let opts = args(&a);
    let (mut plan, _) = load_hcl(&opts).unwrap();
    if let Some(d) = opts.deployment {
        plan.set_deployment(d);
    }
    analyze(&plan, &Requirements::default())
}

/// The SRA-shaped plan of ../corpus/sra_classic, as the GovCloud
/// configuration's plan for `account` (Databricks' AWS account of the
/// shard): partition aws-us-gov, us-gov-west-1, the shard's principal, and
/// a provider host that the plan records only as a reference (a plan keeps
/// no value of an expression over locals).
fn govcloud_plan(account: &str, shard: &str) -> String {
    let text = std::fs::read_to_string(fixtures().join("corpus/sra_classic.json")).unwrap();
    let text = text
        .replace("arn:aws:", "arn:aws-us-gov:")
        .replace(COMMERCIAL, account)
        .replace("us-east-1", "us-gov-west-1");
    let mut plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    plan["configuration"]["provider_config"]["databricks"]["expressions"]["host"] =
        serde_json::json!({ "references": ["local.computed_databricks_provider_host"] });
    plan["variables"]["databricks_gov_shard"] = serde_json::json!({ "value": shard });
    plan.to_string()
}

fn plan_mode(text: &str, deployment: Option<crate::rules::Deployment>) -> Analysis {
    let mut plan = Plan::parse(text).unwrap();
    if let Some(d) = deployment {
        plan.set_deployment(d);
    }
    analyze(&plan, &Requirements::default())
}

fn verdicts(a: &Analysis) -> BTreeMap<(String, String), (Verdict, String)> {
    a.outcomes
        .iter()
        .map(|l| {
            (
                (l.address.clone(), l.outcome.rule.code().to_string()),
                (l.outcome.verdict, l.outcome.message.clone()),
            )
        })
        .collect()
}

fn errors(a: &Analysis) -> Vec<String> {
    a.outcomes
        .iter()
        .filter(|l| l.outcome.is_failure() && l.outcome.is_error())
        .map(|l| format!("{} {}: {}", l.address, l.outcome.rule, l.outcome.message))
        .collect()
}

fn of(a: &Analysis, address: &str, rule: RuleId) -> (Verdict, String) {
    a.outcomes
        .iter()
        .find(|l| l.address == address && l.outcome.rule == rule)
        .map(|l| (l.outcome.verdict, l.outcome.message.clone()))
        .unwrap_or_else(|| panic!("no {rule} on {address}"))
}

#[test]
fn the_sra_govcloud_shape_passes_with_its_shard_given() {
    for (shard, principal) in [("civilian", CIVILIAN), ("dod", DOD)] {
        let a = hcl(&["-var", &format!("databricks_gov_shard={shard}")]);
        assert!(errors(&a).is_empty(), "{shard}: {:#?}", errors(&a));
        for key in [
            "aws_kms_key.workspace_storage",
            "aws_kms_key.managed_services",
        ] {
            let (v, m) = of(&a, key, RuleId::PolicyDatabricksGrants);
            assert_eq!(v, Verdict::Pass, "{shard} {key}: {m}");
            let (v, m) = of(&a, key, RuleId::KeyPartitionDeployment);
            assert_eq!(v, Verdict::Pass, "{shard} {key}: {m}");
        }
        // Nothing about the policies waits: the shard decided everything.
        let waiting: Vec<_> = a
            .outcomes
            .iter()
            .filter(|l| {
                l.outcome.verdict == Verdict::CannotTell
                    && matches!(
                        l.outcome.rule,
                        RuleId::PolicyDatabricksGrants
                            | RuleId::PolicyGuideStatements
                            | RuleId::PolicyClusterVolumes
                            | RuleId::KeyPartitionDeployment
                    )
            })
            .map(|l| format!("{} {}: {}", l.address, l.outcome.rule, l.outcome.message))
            .collect();
        assert!(waiting.is_empty(), "{shard}: {waiting:#?}");
        // The policy names the shard's principal, and CMK015 checked it.
        let (_, m) = of(
            &a,
            "aws_kms_key.managed_services",
            RuleId::PolicyDatabricksGrants,
        );
        assert!(!m.contains(COMMERCIAL), "{m}");
        // Named as the other shard, CMK015 fails naming the other shard's
        // principal, not this one's: the pass above checked this shard's.
        let (other, other_principal) = if shard == "civilian" {
            ("govcloud-dod", DOD)
        } else {
            ("govcloud-civilian", CIVILIAN)
        };
        let wrong = hcl(&[
            "-var",
            &format!("databricks_gov_shard={shard}"),
            "--deployment",
            other,
        ]);
        let (v, m) = of(
            &wrong,
            "aws_kms_key.managed_services",
            RuleId::PolicyDatabricksGrants,
        );
        assert_eq!(v, Verdict::Fail, "{shard} as {other}: {m}");
        assert!(m.contains(other_principal) && !m.contains(principal), "{m}");
    }
}

#[test]
fn without_the_shard_the_govcloud_policy_rules_cannot_tell_and_never_fail() {
    let a = hcl(&[]);
    assert!(errors(&a).is_empty(), "{:#?}", errors(&a));
    for key in [
        "aws_kms_key.workspace_storage",
        "aws_kms_key.managed_services",
    ] {
        let (v, m) = of(&a, key, RuleId::PolicyDatabricksGrants);
        assert_eq!(v, Verdict::CannotTell, "{key}: {m}");
    }
    // With --deployment and still no shard variable, the policy's principal
    // is still unknown (it comes from the variable): cannot tell, no error.
    let a = hcl(&["--deployment", "govcloud-civilian"]);
    assert!(errors(&a).is_empty(), "{:#?}", errors(&a));
}

#[test]
fn plan_mode_and_hcl_mode_agree_on_the_govcloud_shape() {
    for (shard, account) in [("civilian", CIVILIAN), ("dod", DOD)] {
        let plan = verdicts(&plan_mode(&govcloud_plan(account, shard), None));
        let source = verdicts(&hcl(&["-var", &format!("databricks_gov_shard={shard}")]));
        let mut differences = vec![];
        for key in plan.keys().chain(source.keys()) {
            let (p, h) = (plan.get(key), source.get(key));
            // A plan (which creates the workspace) decides what compares
            // with what exists; the source says "needs state" there.
            let needs_state = h.is_some_and(|x| x.0 == Verdict::NeedsState)
                && p.is_some()
                && crate::rules::findings::STATE_RULES
                    .iter()
                    .any(|(r, _)| r.code() == key.1);
            if p.map(|x| x.0) != h.map(|x| x.0) && !needs_state {
                differences.push(format!("{key:?}: plan {p:?}, HCL {h:?}"));
            }
        }
        assert!(differences.is_empty(), "{shard}: {differences:#?}");
        // Plan mode decided the shard from the policy: CMK015 passes.
        let (v, m) = plan[&(
            "aws_kms_key.managed_services".to_string(),
            "CMK015".to_string(),
        )]
            .clone();
        assert_eq!(v, Verdict::Pass, "{shard}: {m}");
    }
}

/// The bug of issue 28: a GovCloud key whose policy names Databricks'
/// commercial account. With the shard known, CMK015 fails naming the
/// principal the shard needs; with no shard known, it fails too (no GovCloud
/// shard accepts the commercial account), naming both.
#[test]
fn a_govcloud_policy_naming_the_commercial_account_fails_naming_the_right_principal() {
    let text = govcloud_plan(COMMERCIAL, "civilian");
    let a = plan_mode(&text, Some(crate::rules::Deployment::GovCloudCivilian));
    let (v, m) = of(
        &a,
        "aws_kms_key.managed_services",
        RuleId::PolicyDatabricksGrants,
    );
    assert_eq!(v, Verdict::Fail, "{m}");
    assert!(
        m.contains(&format!("arn:aws-us-gov:iam::{CIVILIAN}:root")),
        "{m}"
    );
    let a = plan_mode(&text, None);
    let (v, m) = of(
        &a,
        "aws_kms_key.managed_services",
        RuleId::PolicyDatabricksGrants,
    );
    assert_eq!(v, Verdict::Fail, "{m}");
    assert!(m.contains(CIVILIAN) && m.contains(DOD), "{m}");
    // A commercial deployment named for GovCloud keys: CMK022 on each.
    let a = plan_mode(&text, Some(crate::rules::Deployment::Commercial));
    let (v, m) = of(
        &a,
        "aws_kms_key.managed_services",
        RuleId::KeyPartitionDeployment,
    );
    assert_eq!(v, Verdict::Fail, "{m}");
    let (v, _) = of(
        &a,
        "databricks_mws_customer_managed_keys.managed_services",
        RuleId::KeyPartitionDeployment,
    );
    assert_eq!(v, Verdict::Fail);
}

/// Where the shard comes from: a literal host, a host from a variable, a
/// provider block's `deployment`, `--deployment` over them; blocks that
/// disagree decide nothing.
#[test]
fn the_deployment_comes_from_the_provider_blocks_or_the_flag() {
    use crate::rules::Deployment::*;
    let base = std::fs::read_to_string(fixtures().join("corpus/sra_classic.json")).unwrap();
    let with_host = |host: serde_json::Value| {
        let mut p: serde_json::Value = serde_json::from_str(&base).unwrap();
        p["configuration"]["provider_config"]["databricks"]["expressions"]["host"] = host;
        p["variables"]["host"] =
            serde_json::json!({ "value": "https://accounts-dod.cloud.databricks.mil" });
        Plan::parse(&p.to_string()).unwrap()
    };
    let p =
        with_host(serde_json::json!({ "constant_value": "https://accounts.cloud.databricks.us/" }));
    assert_eq!(p.deployment(), Some(GovCloudCivilian));
    let p = with_host(serde_json::json!({ "references": ["var.host"] }));
    assert_eq!(p.deployment(), Some(GovCloudDod));
    // A host that names no deployment: the key policies, which name only
    // Databricks' commercial account, decide it.
    let mut p = with_host(serde_json::json!({ "constant_value": "http://127.0.0.1:8080" }));
    assert_eq!(
        p.deployment(),
        Some(Commercial),
        "{}",
        p.deployment_source()
    );
    assert!(p.deployment_source().contains("key policies"));
    p.set_deployment(GovCloudDod);
    assert_eq!(p.deployment(), Some(GovCloudDod));
    // Two blocks that disagree.
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["configuration"]["provider_config"]["databricks.gov"] = serde_json::json!({
        "name": "databricks", "alias": "gov",
        "expressions": { "host": { "constant_value": "https://accounts.cloud.databricks.us" } }
    });
    let p = Plan::parse(&v.to_string()).unwrap();
    assert_eq!(p.deployment(), None);
    assert!(
        p.deployment_source().contains("disagree"),
        "{}",
        p.deployment_source()
    );
    // The flag parses every spelling users write, and refuses others.
    assert_eq!(
        args(&["plan.json", "--deployment", "dod"]).deployment,
        Some(GovCloudDod)
    );
    assert!(parse_args(&["plan.json".to_string(), "--deployment=gov".to_string()]).is_err());
}
