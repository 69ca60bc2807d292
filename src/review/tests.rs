//! Review tests over fixtures shaped as `terraform show -json` writes them.

use super::*;
use crate::rules::findings::Verdict;
use crate::rules::Fact;
use crate::rules::RuleId;
use proptest::prelude::*;
use serde_json::Value;

const FIXTURES: [&str; 3] = [
    "official_ok.json",
    "official_mistakes.json",
    "cmk_serverless.json",
];

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("acceptance-tests/fixtures/review")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn path(name: &str) -> String {
    format!(
        "{}/acceptance-tests/fixtures/review/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn analysis(name: &str, required: &[DataType]) -> Analysis {
    let req = Requirements {
        data_types: required.iter().copied().collect(),
        ..Default::default()
    };
    review_text(&fixture(name), &req).unwrap()
}

fn failures(a: &Analysis) -> Vec<(String, &'static str, String)> {
    a.outcomes
        .iter()
        .filter(|l| l.outcome.is_failure())
        .map(|l| {
            (
                l.address.clone(),
                l.outcome.rule.code(),
                l.attribute.clone(),
            )
        })
        .collect()
}

#[test]
fn correct_official_plan_has_no_failures_and_no_false_alarms() {
    let a = analysis("official_ok.json", &[]);
    assert_eq!(failures(&a), vec![]);
    assert_eq!(exit_code(&a), 0);
    // The policy comes from data.cmk_kms_key_policy (read at plan time), so it is checked.
    let p = a
        .outcomes
        .iter()
        .find(|l| l.outcome.rule == RuleId::PolicyDatabricksGrants)
        .unwrap();
    assert_eq!(p.outcome.verdict, Verdict::Pass, "{p:?}");
    let e = a
        .outcomes
        .iter()
        .find(|l| l.outcome.rule == RuleId::PolicyClusterVolumes)
        .unwrap();
    assert_eq!(e.outcome.verdict, Verdict::Pass, "{e:?}");
    // The key ARN is known only after apply, but it is aws_kms_key.arn:
    // a KMS key ARN, so CMK018 decides (issue 13).
    let arn = a
        .outcomes
        .iter()
        .find(|l| l.outcome.rule == RuleId::KeyArnWellFormed)
        .unwrap();
    assert_eq!(arn.outcome.verdict, Verdict::Pass, "{arn:?}");
    assert!(arn.outcome.message.contains(".arn"), "{arn:?}");
    // Coverage: a new HYBRID workspace with both keys protects dbfs_root and ebs_volumes.
    let cov = &a.coverage[0];
    assert_eq!(cov.address, "databricks_mws_workspaces.this");
    let of = |d: DataType| {
        cov.coverage
            .iter()
            .find(|c| c.data_type == d)
            .unwrap()
            .protection
    };
    use crate::rules::Protection::*;
    assert_eq!(of(DataType::DbfsRoot), Protected);
    assert_eq!(of(DataType::EbsVolumes), Protected);
    assert_eq!(of(DataType::DbfsMounts), NotProtected);
}

#[test]
fn official_plan_mistakes_are_found_on_the_right_objects() {
    let a = analysis("official_mistakes.json", &[]);
    let f = failures(&a);
    let ws = "databricks_mws_workspaces.this".to_string();
    for want in [
        (ws.clone(), "CMK001", "pricing_tier".to_string()),
        (
            ws.clone(),
            "CMK002",
            "managed_services_customer_managed_key_id".to_string(),
        ),
        (
            ws.clone(),
            "CMK014",
            "storage_customer_managed_key_id".to_string(),
        ),
        (
            ws.clone(),
            "CMK009",
            "storage_customer_managed_key_id".to_string(),
        ),
        (
            "aws_kms_key.dbx".to_string(),
            "CMK015",
            "policy".to_string(),
        ),
    ] {
        assert!(f.contains(&want), "missing {want:?} in {f:#?}");
    }
    assert_eq!(exit_code(&a), 1);
    let composite = a
        .outcomes
        .iter()
        .find(|l| l.outcome.rule == RuleId::CompositeKeyId && l.outcome.is_failure())
        .unwrap();
    assert!(composite
        .outcome
        .message
        .contains("databricks_mws_customer_managed_keys.storage.id"));
    // The managed-services binding uses .customer_managed_key_id: no composite-id finding there.
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.outcome.rule == RuleId::CompositeKeyId
            && l.attribute == "managed_services_customer_managed_key_id"
            && l.outcome.verdict == Verdict::Pass));
}

#[test]
fn this_providers_resources_on_a_serverless_workspace() {
    let a = analysis(
        "cmk_serverless.json",
        &[DataType::EbsVolumes, DataType::Secrets],
    );
    let f = failures(&a);
    let b = "cmk_workspace_binding.sls".to_string();
    assert!(
        f.contains(&(b.clone(), "CMK007", "storage_key_id".to_string())),
        "{f:#?}"
    );
    assert!(
        f.contains(&(b.clone(), "CMK008", "storage_key_id".to_string())),
        "{f:#?}"
    );
    assert!(
        f.contains(&(b.clone(), "CMK012", "required_coverage".to_string())),
        "{f:#?}"
    );
    // secrets is protected by the managed-services key.
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.outcome.rule == RuleId::RequiredCoverage && l.outcome.verdict == Verdict::Pass));
    assert_eq!(exit_code(&a), 1);
}

#[test]
fn text_output_names_address_rule_message_and_remediation() {
    let a = analysis("official_mistakes.json", &[]);
    let t = render(&a, Format::Text, "plan.json");
    assert!(t.contains("error CMK014 databricks_mws_workspaces.this (storage_customer_managed_key_id): the storage key id comes from databricks_mws_customer_managed_keys.storage.id"), "{t}");
    assert!(t.contains("remediation: Reference `customer_managed_key_id` instead of `id`."));
    // An absolute URL: users do not have the repository.
    let url = crate::rules::findings::docs_url(&crate::rules::findings::rule_page("CMK014"));
    assert!(url.starts_with("https://"), "{url}");
    assert!(t.contains(&format!("docs: {url}")), "{t}");
    assert!(!t.contains("docs: docs/"), "{t}");
    assert!(t.contains("cannot tell yet CMK010"));
    assert!(t.lines().last().unwrap().contains("error(s)"));
}

#[test]
fn json_output_is_stable_and_documented() {
    for f in FIXTURES {
        let a = analysis(f, &[]);
        let v: Value = serde_json::from_str(&render(&a, Format::Json, f)).unwrap();
        assert_eq!(v["format"], "terraform-provider-cmk-review");
        assert_eq!(v["version"], 1);
        assert_eq!(v["plan"], f);
        for k in ["errors", "warnings", "cannot_tell", "passed"] {
            assert!(v["summary"][k].is_u64(), "{f}: summary.{k}");
        }
        for x in v["findings"].as_array().unwrap() {
            for k in [
                "address",
                "resource_type",
                "attribute",
                "rule",
                "title",
                "verdict",
                "severity",
                "subject",
                "message",
                "remediation",
                "docs",
            ] {
                assert!(x[k].is_string(), "{f}: finding lacks {k}: {x}");
            }
            assert!(["fail", "cannot_tell"].contains(&x["verdict"].as_str().unwrap()));
            assert!(["error", "warning"].contains(&x["severity"].as_str().unwrap()));
        }
        for c in v["coverage"].as_array().unwrap() {
            for k in ["address", "data_type", "protection", "reason", "rule"] {
                assert!(c[k].is_string(), "{f}: coverage lacks {k}");
            }
        }
        let errors = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["verdict"] == "fail" && x["severity"] == "error")
            .count();
        assert_eq!(v["summary"]["errors"], errors as u64);
        // docs/review.md documents every field.
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/review.md"))
            .unwrap();
        for k in [
            "resource_type",
            "attribute",
            "verdict",
            "cannot_tell",
            "protection",
            "remediation",
        ] {
            assert!(
                doc.contains(&format!("`{k}`")),
                "docs/review.md does not document {k}"
            );
        }
    }
}

#[test]
fn sarif_output_has_the_2_1_0_shape() {
    for f in FIXTURES {
        let a = analysis(f, &[]);
        let v: Value = serde_json::from_str(&render(&a, Format::Sarif, f)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let driver = &runs[0]["tool"]["driver"];
        assert!(driver["name"].is_string());
        let rules = driver["rules"].as_array().unwrap();
        assert_eq!(rules.len(), crate::rules::RULES.len());
        for r in rules {
            assert!(r["id"].as_str().unwrap().starts_with("CMK"));
            // SARIF's helpUri: a valid absolute URI, the rule's page.
            let uri = r["helpUri"].as_str().unwrap();
            let parsed = reqwest::Url::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(parsed.scheme(), "https", "{uri}");
            assert!(
                uri.contains(&format!(
                    "/guides/{}",
                    r["id"].as_str().unwrap().to_ascii_lowercase()
                )),
                "{uri}"
            );
            assert!(["error", "warning"]
                .contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
            assert!(r["shortDescription"]["text"].is_string());
        }
        let results = runs[0]["results"].as_array().unwrap();
        let reported = a
            .outcomes
            .iter()
            .filter(|l| l.outcome.verdict != Verdict::Pass)
            .count();
        assert_eq!(results.len(), reported);
        for x in results {
            let id = x["ruleId"].as_str().unwrap();
            let idx = x["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], id, "ruleIndex points at the rule");
            let level = x["level"].as_str().unwrap();
            match x["kind"].as_str().unwrap() {
                "fail" => assert!(["error", "warning"].contains(&level)),
                "review" => assert_eq!(level, "none"),
                k => panic!("kind {k}"),
            }
            assert!(!x["message"]["text"].as_str().unwrap().is_empty());
            let ll = &x["locations"][0]["logicalLocations"];
            assert!(ll
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["kind"] == "resource"
                    && l["fullyQualifiedName"].as_str().unwrap().contains('.')));
        }
    }
}

#[test]
fn main_exit_codes_and_arguments() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        main(&s(&[
            "review",
            &path("official_ok.json"),
            "--format",
            "json"
        ])),
        0
    );
    assert_eq!(
        main(&s(&[&path("official_mistakes.json"), "--format=sarif"])),
        1
    );
    assert_eq!(
        main(&s(&[
            &path("official_ok.json"),
            "--require",
            "secrets",
            "dbfs_root"
        ])),
        0
    );
    assert_eq!(
        main(&s(&[&path("official_ok.json"), "--require", "dbfs_mounts"])),
        1
    );
    assert_eq!(main(&s(&["/nonexistent/plan.json"])), 2);
    assert_eq!(main(&s(&[&path("official_ok.json"), "--format", "xml"])), 2);
    assert_eq!(
        main(&s(&[
            &path("official_ok.json"),
            "--require",
            "no_such_type"
        ])),
        2
    );
    assert_eq!(main(&s(&[])), 2);
    let o = parse_args(&s(&[
        "p.json",
        "--require",
        "secrets",
        "notebooks",
        "--format",
        "sarif",
        "--require=ebs_volumes,dbfs_root",
    ]))
    .unwrap();
    assert_eq!(o.plan, "p.json");
    assert_eq!(o.format, Format::Sarif);
    assert_eq!(o.required.data_types.len(), 4);
    let o = parse_args(&s(&["--require", "secrets", "-"])).unwrap();
    assert_eq!(o.plan, "-");
    assert!(matches!(
        parse_args(&s(&["a", "b"])),
        Err(UsageError::Unexpected(_))
    ));
}

#[test]
fn unreadable_inputs_are_errors_with_a_message() {
    let r = Requirements::default();
    assert!(matches!(
        review_text("not json", &r),
        Err(PlanError::NotJson(_))
    ));
    assert!(matches!(review_text("[]", &r), Err(PlanError::NotAPlan(_))));
    let e = review_text("{\"a\":1}", &r).unwrap_err();
    assert!(e.to_string().contains("terraform show -json"), "{e}");
    // A minimal plan with nothing relevant is fine.
    let a = review_text(
        r#"{"format_version":"1.2","planned_values":{"root_module":{}}}"#,
        &r,
    )
    .unwrap();
    assert!(a.outcomes.is_empty());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("databricks_mws_workspaces".to_string()),
            Just("cmk_key_configuration".to_string()),
            Just("aws_kms_key".to_string()),
            Just("STORAGE".to_string()),
            Just("create".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("format_version".to_string()),
                        Just("planned_values".to_string()),
                        Just("resource_changes".to_string()),
                        Just("root_module".to_string()),
                        Just("resources".to_string()),
                        Just("address".to_string()),
                        Just("type".to_string()),
                        Just("change".to_string()),
                        Just("after".to_string()),
                        Just("after_unknown".to_string()),
                        Just("before".to_string()),
                        Just("actions".to_string()),
                        Just("configuration".to_string()),
                        Just("expressions".to_string()),
                        Just("references".to_string()),
                        Just("policy".to_string()),
                        Just("use_cases".to_string()),
                        Just("aws_key_info".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn review_never_panics_on_arbitrary_json(v in arb_json()) {
        let text = v.to_string();
        if let Ok(a) = review_text(&text, &Requirements { data_types: DataType::all().collect(), ..Default::default() }) {
            for f in [Format::Text, Format::Json, Format::Sarif] {
                let _ = render(&a, f, "-");
            }
        }
    }

    #[test]
    fn review_never_panics_on_mutated_fixtures(idx in 0usize..3, cut in 0usize..20_000, junk in ".{0,8}") {
        let mut t = fixture(FIXTURES[idx]);
        let cut = cut.min(t.len());
        let cut = (0..=cut).rev().find(|i| t.is_char_boundary(*i)).unwrap_or(0);
        t.insert_str(cut, &junk);
        let _ = review_text(&t, &Requirements::default());
    }
}

/// A plan written by the real terraform 1.11.4 from this provider's own
/// resources (examples/quickstart against cmk-sandbox, `terraform show -json`).
#[test]
fn real_plan_of_this_providers_resources() {
    let a = review_text(&fixture("cmk_real_plan.json"), &Requirements::default()).unwrap();
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.address == "cmk_workspace_binding.analytics"));
    assert!(
        a.outcomes.iter().all(|l| !l.outcome.is_error()),
        "the quickstart plan is clean"
    );
    assert_eq!(exit_code(&a), 0);
    for format in [Format::Text, Format::Json, Format::Sarif] {
        assert!(!render(&a, format, "cmk_real_plan.json").is_empty());
    }
}

/// A key made in the same plan as its key configuration and binding (the
/// review guide's plan job, recorded from a real run: terraform 1.11.4,
/// cmk-sandbox, moto): the key's ARN is unknown, but its planned `region`
/// and `aws_account_id` say where it will be, so CMK002 and CMK018 are
/// decided, not "cannot tell"; a key_region that disagrees fails.
#[test]
fn a_key_made_in_the_plan_decides_its_configurations_region() {
    let text = fixture("cmk_new_key_binding.json");
    let a = review_text(&text, &Requirements::default()).unwrap();
    for rule in [RuleId::KeyRegion, RuleId::KeyArnWellFormed] {
        let o = outcome(&a, "cmk_key_configuration.workspace", rule);
        assert_eq!(o.outcome.verdict, crate::rules::Verdict::Pass, "{o:#?}");
    }
    let unsure: Vec<_> = a
        .outcomes
        .iter()
        .filter(|l| l.outcome.verdict == crate::rules::Verdict::CannotTell && !l.live_decides)
        .map(|l| format!("{} {}", l.address, l.outcome.rule.code()))
        .collect();
    assert!(
        unsure.is_empty(),
        "only --live is left to decide: {unsure:?}"
    );
    // The configuration says eu-west-1; the key is planned in us-east-1.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    for r in v["resource_changes"].as_array_mut().unwrap() {
        if r["address"] == "cmk_key_configuration.workspace" {
            r["change"]["after"]["aws_key_info"]["key_region"] = "eu-west-1".into();
        }
    }
    let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
    let o = outcome(&a, "cmk_key_configuration.workspace", RuleId::KeyRegion);
    assert!(o.outcome.is_failure(), "{o:#?}");
    assert!(
        o.outcome.message.contains("eu-west-1") && o.outcome.message.contains("us-east-1"),
        "{}",
        o.outcome.message
    );
    // Without the planned region (a plan recorded before the provider
    // planned it), the key is made in its provider configuration's
    // aws_region (us-east-1 here): that decides it.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    for r in v["resource_changes"].as_array_mut().unwrap() {
        if r["address"] == "cmk_kms_key.workspace" {
            r["change"]["after"]
                .as_object_mut()
                .unwrap()
                .remove("region");
            r["change"]["after_unknown"]["region"] = true.into();
        }
    }
    let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
    let o = outcome(&a, "cmk_key_configuration.workspace", RuleId::KeyRegion);
    assert_eq!(o.outcome.verdict, crate::rules::Verdict::Pass, "{o:#?}");
    // Nor that (the region comes from AWS_REGION at apply): the rule
    // cannot tell, as before.
    v["configuration"]["provider_config"]["cmk"]["expressions"]
        .as_object_mut()
        .unwrap()
        .remove("aws_region");
    let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
    let o = outcome(&a, "cmk_key_configuration.workspace", RuleId::KeyRegion);
    assert_eq!(
        o.outcome.verdict,
        crate::rules::Verdict::CannotTell,
        "{o:#?}"
    );
}

/// Issue 22: a no-op plan of an applied binding (the plan JSON holds both
/// regions, `after_unknown` is empty) gave six "cannot tell yet" lines: the
/// binding's own region was never read, and the rules about a key change
/// were asked of a binding whose keys do not change; CMK016 on the KMS key
/// could not tell the cross-account role the key's own
/// `cross_account_role_arn` holds. The plan is the binding guide's, recorded
/// from its step 8 (terraform 1.11.4 against cmk-sandbox and moto: apply,
/// then `plan -out` and `show -json`): the KMS key, the key configuration
/// and the binding, all no-op.
#[test]
fn a_no_op_plan_of_a_bound_workspace_has_nothing_it_cannot_tell() {
    let a = review_text(&fixture("cmk_noop_binding.json"), &Requirements::default()).unwrap();
    // The KMS key is in the plan, and its EBS statement is checked against
    // the role it was given.
    let cmk016: Vec<_> = a
        .outcomes
        .iter()
        .filter(|l| {
            l.address == "cmk_kms_key.workspace"
                && l.outcome.rule == crate::rules::RuleId::PolicyClusterVolumes
        })
        .collect();
    assert_eq!(cmk016.len(), 1, "{:#?}", a.outcomes);
    assert_eq!(
        cmk016[0].outcome.verdict,
        crate::rules::Verdict::Pass,
        "{:#?}",
        cmk016[0]
    );
    let binding: Vec<_> = a
        .outcomes
        .iter()
        .filter(|l| l.address == "cmk_workspace_binding.analytics")
        .collect();
    assert!(binding.len() >= 10, "{binding:#?}");
    let unsure: Vec<String> = a
        .outcomes
        .iter()
        .filter(|l| l.outcome.verdict == crate::rules::Verdict::CannotTell)
        .map(|l| {
            format!(
                "{} {}: {}",
                l.outcome.rule.rule().id,
                l.address,
                l.outcome.message
            )
        })
        .collect();
    assert!(unsure.is_empty(), "{}", unsure.join("\n"));
    // The regions are compared, from the plan: us-east-1 on both sides.
    let region: Vec<_> = binding
        .iter()
        .filter(|l| l.outcome.rule == crate::rules::RuleId::KeyRegion)
        .collect();
    assert_eq!(region.len(), 2, "{region:#?}");
    assert!(
        region
            .iter()
            .all(|l| l.outcome.message.contains("us-east-1")),
        "{region:#?}"
    );
    assert_eq!(exit_code(&a), 0);

    // CMK016 reads the key's own cross_account_role_arn: another role there
    // (the policy's EBS statement names the old one) fails, none is
    // "cannot tell".
    let with_role = |role: Value| {
        let mut v: Value = serde_json::from_str(&fixture("cmk_noop_binding.json")).unwrap();
        let rc = v["resource_changes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["address"] == "cmk_kms_key.workspace")
            .unwrap();
        rc["change"]["after"]["cross_account_role_arn"] = role;
        let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
        a.outcomes
            .into_iter()
            .find(|l| {
                l.address == "cmk_kms_key.workspace"
                    && l.outcome.rule == crate::rules::RuleId::PolicyClusterVolumes
            })
            .unwrap()
            .outcome
    };
    let other = with_role(Value::from("arn:aws:iam::123456789012:role/another-role"));
    assert_eq!(other.verdict, crate::rules::Verdict::Fail, "{other:?}");
    assert!(other.message.contains("another-role"), "{other:?}");
    let none = with_role(Value::Null);
    assert_eq!(none.verdict, crate::rules::Verdict::CannotTell, "{none:?}");
    // A key no configuration of the plan uses: its own
    // reuse_key_for_cluster_volumes says whether CMK016 applies.
    let alone = |reuse: Value| {
        let mut v: Value = serde_json::from_str(&fixture("cmk_noop_binding.json")).unwrap();
        let only_key = |list: &mut Value| {
            if let Some(l) = list.as_array_mut() {
                l.retain(|r| r["address"] == "cmk_kms_key.workspace");
            }
        };
        only_key(&mut v["resource_changes"]);
        only_key(&mut v["planned_values"]["root_module"]["resources"]);
        only_key(&mut v["prior_state"]["values"]["root_module"]["resources"]);
        only_key(&mut v["configuration"]["root_module"]["resources"]);
        let rc = &mut v["resource_changes"][0];
        rc["change"]["after"]["reuse_key_for_cluster_volumes"] = reuse;
        let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
        a.outcomes
            .into_iter()
            .find(|l| l.outcome.rule == crate::rules::RuleId::PolicyClusterVolumes)
            .unwrap()
            .outcome
    };
    let reused = alone(Value::Bool(true));
    assert_eq!(reused.verdict, crate::rules::Verdict::Pass, "{reused:?}");
    assert!(!reused.message.contains("does not encrypt"), "{reused:?}");
    let not_reused = alone(Value::Bool(false));
    assert_eq!(not_reused.verdict, crate::rules::Verdict::Pass);
    assert!(
        not_reused
            .message
            .contains("does not encrypt cluster volumes"),
        "{not_reused:?}"
    );
    // Alone, the key's policy (with its `aws:PrincipalTag/DatabricksAccountId`
    // conditions) is checked against its own databricks_account_id: CMK015
    // and CMK021 are decided, not left for apply.
    let mut v: Value = serde_json::from_str(&fixture("cmk_noop_binding.json")).unwrap();
    for path in [
        "/resource_changes",
        "/planned_values/root_module/resources",
        "/prior_state/values/root_module/resources",
        "/configuration/root_module/resources",
    ] {
        if let Some(l) = v.pointer_mut(path).and_then(Value::as_array_mut) {
            l.retain(|r| r["address"] == "cmk_kms_key.workspace");
        }
    }
    let verdicts = |v: &Value| -> Vec<(RuleId, crate::rules::Verdict, String)> {
        review_text(&v.to_string(), &Requirements::default())
            .unwrap()
            .outcomes
            .into_iter()
            .filter(|l| {
                matches!(
                    l.outcome.rule,
                    RuleId::PolicyDatabricksGrants | RuleId::PolicyGuideStatements
                )
            })
            .map(|l| (l.outcome.rule, l.outcome.verdict, l.outcome.message))
            .collect()
    };
    let own = verdicts(&v);
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(
        own.iter()
            .all(|(_, verdict, _)| *verdict == crate::rules::Verdict::Pass),
        "{own:?}"
    );
    // Another Databricks account there: the policy's conditions name the
    // old one, so Databricks' principal is refused (CMK015 fails).
    v["resource_changes"][0]["change"]["after"]["databricks_account_id"] =
        Value::from("11111111-2222-3333-4444-555555555555");
    let other = verdicts(&v);
    assert!(
        other
            .iter()
            .any(|(r, verdict, _)| *r == RuleId::PolicyDatabricksGrants
                && *verdict == crate::rules::Verdict::Fail),
        "{other:?}"
    );

    // The same binding changing its managed-services key still asks every
    // rule: what the plan does not hold stays "cannot tell".
    let mut v: Value = serde_json::from_str(&fixture("cmk_noop_binding.json")).unwrap();
    let rc = v["resource_changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["address"] == "cmk_workspace_binding.analytics")
        .unwrap();
    rc["change"]["actions"] = serde_json::json!(["update"]);
    rc["change"]["after"]["managed_services_key_id"] = Value::Null;
    rc["change"]["after_unknown"] = serde_json::json!({"managed_services_key_id": true});
    let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
    assert!(
        a.outcomes
            .iter()
            .any(|l| l.address == "cmk_workspace_binding.analytics"
                && l.outcome.rule == crate::rules::RuleId::EnterpriseTier
                && l.outcome.verdict == crate::rules::Verdict::CannotTell),
        "a key change on a workspace whose tier the plan does not hold"
    );
}

/// The error of a plan text that must be refused.
fn refused(text: &str) -> String {
    match review_text(text, &Requirements::default()) {
        Ok(a) => panic!(
            "accepted ({} outcomes): {}",
            a.outcomes.len(),
            &text[..text.len().min(300)]
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn input_that_is_not_a_plan_is_refused_saying_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"format_version":"1.2","resource_changes":null,"planned_values":null}"#,
            "planned_values: expected an object, found null",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":null}"#,
            "resource_changes: expected an array, found null",
        ),
        (
            r#"{"format_version":"1.0","terraform_version":"1.11.4","values":{"root_module":{"resources":[]}}}"#,
            "this is a Terraform state",
        ),
        (
            r#"{"name":"my-app","version":"1.0.0","dependencies":{}}"#,
            "no \"format_version\"",
        ),
        (
            r#"{"format_version":1.2,"planned_values":{"root_module":{}}}"#,
            "format_version: expected a string, found a number",
        ),
        (
            r#"{"format_version":"2.0","planned_values":{"root_module":{}}}"#,
            "format_version \"2.0\" is not supported",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{}}"#,
            "planned_values.root_module is missing",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{"resources":[{"address":"a.b","mode":"managed","type":"a","values":{}}]}}}"#,
            "\"resource_changes\" is missing although planned_values lists resources",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":{"a":1}}"#,
            "resource_changes: expected an array, found an object",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":7,"mode":"managed","type":"t","change":{"actions":["create"]}}]}"#,
            "resource_changes[0].address: expected a string, found a number",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"managed","change":{"actions":["create"]}}]}"#,
            "resource_changes[0].type is missing",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"resource","type":"t","change":{"actions":["create"]}}]}"#,
            "resource_changes[0].mode: expected \"managed\" or \"data\", found \"resource\"",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"managed","type":"t","change":{"actions":"create"}}]}"#,
            "resource_changes[0].change.actions: expected an array of strings, found a string",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"managed","type":"t","change":{"actions":["explode"]}}]}"#,
            "unknown action \"explode\"",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"managed","type":"t","change":{"actions":["create"],"after":"x"}}]}"#,
            "resource_changes[0].change.after: expected an object or null, found a string",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"resource_changes":[{"address":"t.x","mode":"managed","type":"t","change":{"actions":["create"],"after_unknown":[1]}}]}"#,
            "after_unknown: expected an object or a boolean, found an array",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{"child_modules":[{"resources":[{"address":"m","mode":"managed","type":"t","values":5}]}]}},"resource_changes":[]}"#,
            "planned_values.root_module.child_modules[0].resources[0].values: expected an object or null, found a number",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"prior_state":[]}"#,
            "prior_state: expected an object, found an array",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{"root_module":{}},"configuration":{"root_module":"x"}}"#,
            "configuration.root_module: expected an object, found a string",
        ),
    ];
    for (text, want) in cases {
        let e = refused(text);
        assert!(e.contains(want), "{text}\n  said: {e}\n  want: {want}");
        assert!(
            !e.contains("Some(") && !e.contains("None"),
            "debug output in {e}"
        );
    }
}

#[test]
fn every_fixture_with_one_field_of_the_wrong_type_is_refused() {
    // Fail closed: breaking any field the review reads gives exit 2, never
    // a quieter review.
    let breakers: &[(&str, Value)] = &[
        ("address", Value::Bool(true)),
        ("type", Value::Null),
        ("mode", Value::from(1)),
        ("change", Value::from("x")),
    ];
    let mut tried = 0;
    for f in FIXTURES.iter().chain(["cmk_real_plan.json"].iter()) {
        let v: Value = serde_json::from_str(&fixture(f)).unwrap();
        let n = v["resource_changes"].as_array().unwrap().len();
        assert!(n > 0, "{f}");
        for i in 0..n {
            for (field, bad) in breakers {
                let mut w = v.clone();
                w["resource_changes"][i][*field] = bad.clone();
                let e = refused(&w.to_string());
                assert!(
                    e.contains(&format!("resource_changes[{i}].{field}")),
                    "{f}: {e}"
                );
                tried += 1;
            }
            for (field, bad) in [
                ("actions", Value::Null),
                ("after", Value::from(3)),
                ("before", Value::from("s")),
            ] {
                let mut w = v.clone();
                w["resource_changes"][i]["change"][field] = bad;
                let e = refused(&w.to_string());
                assert!(
                    e.contains(&format!("resource_changes[{i}].change.{field}")),
                    "{f}: {e}"
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 50, "only {tried} variants");
}

#[test]
fn input_over_the_limit_is_refused_without_reading_it_all() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // A real plan padded past 1 MiB with whitespace (still valid JSON).
    let mut t = fixture("official_ok.json");
    t.push_str(&" ".repeat(1024 * 1024));
    std::fs::write(&big, &t).unwrap();
    let big = big.to_str().unwrap();
    assert_eq!(main(&s(&[big, "--max-input-mib", "1"])), 2);
    assert_eq!(main(&s(&[big, "--max-input-mib=2"])), 0);
    assert_eq!(main(&s(&[big])), 0, "the default limit is larger");
    // An endless input stops at the limit.
    assert_eq!(main(&s(&["/dev/zero", "--max-input-mib", "1"])), 2);
    let e = read_limited(std::io::repeat(b'x'), 1024 * 1024).unwrap_err();
    assert!(
        matches!(e, ReadError::Plan(PlanError::TooLarge { limit_mib: 1 })),
        "{e:?}"
    );
    assert!(PlanError::TooLarge { limit_mib: 1 }
        .to_string()
        .contains("--max-input-mib"));
    // Not UTF-8.
    let e = read_limited(&b"{\"a\":\xff}"[..], 100).unwrap_err();
    assert!(matches!(e, ReadError::Plan(PlanError::NotJson(_))), "{e:?}");
    for bad in ["0", "x", "99999999"] {
        assert!(matches!(
            parse_args(&s(&["p.json", "--max-input-mib", bad])),
            Err(UsageError::BadLimit(_))
        ));
    }
    assert!(matches!(
        parse_args(&s(&["p.json", "--max-input-mib"])),
        Err(UsageError::MissingValue(_))
    ));
}

#[test]
fn quoted_values_are_cut_to_a_readable_length() {
    let mut v: Value = serde_json::from_str(&fixture("official_mistakes.json")).unwrap();
    let long_name = format!("ws-{}\u{1b}[31m-end", "n".repeat(1_000_000));
    let long_arn = format!("arn:aws:kms:us-east-1:1:key/{}", "k".repeat(500_000));
    for rc in v["resource_changes"].as_array_mut().unwrap() {
        if rc["type"] == "databricks_mws_workspaces" {
            rc["change"]["after"]["workspace_name"] = Value::from(long_name.clone());
        }
        if rc["type"] == "databricks_mws_customer_managed_keys" {
            rc["change"]["after"]["aws_key_info"][0]["key_arn"] = Value::from(long_arn.clone());
        }
    }
    let a = review_text(&v.to_string(), &Requirements::default()).unwrap();
    let longest = a
        .outcomes
        .iter()
        .map(|l| l.outcome.message.len())
        .max()
        .unwrap();
    assert!(
        longest <= crate::rules::findings::MESSAGE_MAX_CHARS * 4 + 100,
        "a message of {longest} bytes"
    );
    let named = a
        .outcomes
        .iter()
        .find(|l| l.outcome.message.contains("ws-nnn"))
        .expect("some message names the workspace");
    assert!(
        named.outcome.message.contains("characters)"),
        "{}",
        named.outcome.message
    );
    for format in [Format::Text, Format::Json, Format::Sarif] {
        let out = render(&a, format, "p.json");
        assert!(out.len() < 200_000, "{format:?}: {} bytes", out.len());
        assert!(
            !out.contains('\u{1b}'),
            "{format:?} echoes a control character"
        );
    }
}

#[test]
fn live_targets_are_the_existing_workspaces_and_named_key_configurations() {
    let plan = Plan::parse(&fixture("official_live_rotation.json")).unwrap();
    let t = analyze::live_targets(&plan);
    assert_eq!(
        t.workspace_ids.iter().copied().collect::<Vec<_>>(),
        vec![7000000000000101]
    );
    assert_eq!(
        t.key_config_ids.iter().cloned().collect::<Vec<_>>(),
        vec!["aaaaaaaa-0000-4000-8000-0000000000b2".to_string()]
    );
    // A binding of an existing workspace; its key configuration is created
    // in the plan, so it is not read.
    let plan = Plan::parse(&fixture("cmk_serverless.json")).unwrap();
    let t = analyze::live_targets(&plan);
    assert_eq!(
        t.workspace_ids.iter().copied().collect::<Vec<_>>(),
        vec![2222333344445555]
    );
    assert!(t.key_config_ids.is_empty(), "{t:?}");
    // A plan that only creates workspaces needs nothing live.
    let plan = Plan::parse(&fixture("official_ok.json")).unwrap();
    assert!(analyze::live_targets(&plan).is_empty());
}

#[test]
fn live_facts_decide_what_the_plan_cannot_hold() {
    use crate::rules::facts::{ComputeKind, Dashboard, RunningCompute, WorkspaceFacts};
    let plan = Plan::parse(&fixture("official_live_rotation.json")).unwrap();
    let mut live = live::LiveFacts::default();
    let mut ws = WorkspaceFacts::unknown();
    ws.status = Fact::Known(Some(crate::rules::facts::WorkspaceStatus::Running));
    ws.running_classic_compute = Fact::Known(vec![RunningCompute {
        kind: ComputeKind::InstancePool,
        name: "warm".into(),
    }]);
    ws.dashboards = Fact::Known(vec![Dashboard {
        id: "d1".into(),
        name: "Old".into(),
        create_time: "2024-01-01T00:00:00Z".into(),
    }]);
    live.workspaces.insert(7000000000000101, ws);
    let a = analyze::analyze_live(&plan, &Requirements::default(), &live);
    let f = failures(&a);
    let ws = "databricks_mws_workspaces.this".to_string();
    assert!(
        f.contains(&(ws.clone(), "CMK010", "workspace_status".into())),
        "{f:?}"
    );
    assert!(
        f.contains(&(
            ws.clone(),
            "CMK011",
            "managed_services_customer_managed_key_id".into()
        )),
        "{f:?}"
    );
    assert!(a.outcomes.iter().all(|l| !l.live_decides));
    // Offline the same outcomes cannot tell and are marked.
    let a = analyze(&plan, &Requirements::default());
    for rule in [RuleId::ClassicComputeRunning, RuleId::LegacyDashboards] {
        let l = a.outcomes.iter().find(|l| l.outcome.rule == rule).unwrap();
        assert_eq!(l.outcome.verdict, Verdict::CannotTell);
        assert!(l.live_decides, "{l:?}");
    }
    // Outcomes that do not depend on live facts are not marked.
    assert!(a
        .outcomes
        .iter()
        .filter(|l| l.outcome.verdict == Verdict::Pass)
        .all(|l| !l.live_decides));
}

#[test]
fn live_arguments() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let o = parse_args(&s(&[
        "p.json",
        "--live",
        "--profile",
        "prod",
        "--workspace-host-template=http://h/{deployment_name}",
    ]))
    .unwrap();
    assert!(o.live);
    assert_eq!(o.profile.as_deref(), Some("prod"));
    assert_eq!(
        o.workspace_host_template.as_deref(),
        Some("http://h/{deployment_name}")
    );
    assert!(!parse_args(&s(&["p.json"])).unwrap().live);
    assert!(matches!(
        parse_args(&s(&["p.json", "--live", "--profile"])),
        Err(UsageError::MissingValue(_))
    ));
    assert!(matches!(
        parse_args(&s(&["p.json", "--profile", "--live"])),
        Err(UsageError::MissingValue(_))
    ));
}

fn corpus(name: &str) -> Analysis {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("acceptance-tests/fixtures/review/corpus")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    review_text(&text, &Requirements::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn errors(a: &Analysis) -> Vec<(String, &'static str, String)> {
    a.outcomes
        .iter()
        .filter(|l| l.outcome.is_error())
        .map(|l| {
            (
                l.address.clone(),
                l.outcome.rule.code(),
                l.attribute.clone(),
            )
        })
        .collect()
}

fn outcome<'a>(a: &'a Analysis, address: &str, rule: RuleId) -> &'a Located {
    a.outcomes
        .iter()
        .find(|l| l.address == address && l.outcome.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} on {address}: {:#?}", a.outcomes))
}

/// Plans in the shapes of Databricks' public configurations pass with zero
/// errors; each broken neighbour fails on its one rule.
#[test]
fn corpus_of_public_shapes_and_their_broken_neighbours() {
    let ok = [
        "sra_classic",
        "sra_classic_other_account_role",
        "sra_with_serverless",
        "single_key_both_use_cases",
        "keys_in_module",
        "for_each_workspaces",
    ];
    for name in ok {
        let a = corpus(name);
        assert_eq!(errors(&a), vec![], "{name}");
        assert_eq!(exit_code(&a), 0, "{name}");
    }
    // A storage key configuration that does not reuse its key for cluster
    // volumes, on a serverless workspace: no error, the CMK008 warning.
    let a = corpus("sra_with_serverless_storage_key_without_ebs");
    assert_eq!(errors(&a), vec![]);
    assert_eq!(exit_code(&a), 0);
    let serverless = "databricks_mws_workspaces.serverless";
    let o = outcome(&a, serverless, RuleId::EbsKeyOnServerless);
    assert_eq!(o.outcome.verdict, Verdict::Pass, "{o:?}");
    let o = outcome(&a, serverless, RuleId::StorageKeyOnServerless);
    assert_eq!(o.outcome.verdict, Verdict::Fail, "{o:?}");
    assert_eq!(o.outcome.severity, crate::rules::Severity::Warning);
    // The key configuration this plan creates is named by its address,
    // never by a placeholder or the attribute its id will come from.
    for rule in [RuleId::StorageKeyOnServerless, RuleId::EbsKeyOnServerless] {
        let m = &outcome(&a, serverless, rule).outcome.message;
        assert!(
            m.contains(
                "key configuration cmk_key_configuration.serverless_storage, created in this plan"
            ),
            "{m}"
        );
        assert!(
            !m.contains("known after apply") && !m.contains("customer_managed_key_id has"),
            "{m}"
        );
    }
    let broken: [(&str, &str, &str, &str); 9] = [
        // EBS keys are rejected for serverless: reuse_key_for_cluster_volumes
        // = true, and the official configuration (no such field, so
        // Databricks' default: true).
        (
            "sra_with_serverless_storage_key_reused_for_ebs",
            serverless,
            "CMK007",
            "storage_customer_managed_key_id",
        ),
        (
            "sra_with_serverless_storage_key_on_serverless",
            serverless,
            "CMK007",
            "storage_customer_managed_key_id",
        ),
        (
            "sra_classic_ms_policy_without_decrypt",
            "aws_kms_key.managed_services",
            "CMK015",
            "policy",
        ),
        (
            "sra_classic_storage_policy_without_ebs",
            "aws_kms_key.workspace_storage",
            "CMK016",
            "policy",
        ),
        (
            "sra_classic_storage_key_in_another_region",
            "databricks_mws_workspaces.this",
            "CMK002",
            "storage_customer_managed_key_id",
        ),
        (
            "sra_with_serverless_ms_key_in_storage_slot",
            "databricks_mws_workspaces.serverless",
            "CMK005",
            "storage_customer_managed_key_id",
        ),
        (
            "single_key_both_use_cases_composite_id",
            "databricks_mws_workspaces.this",
            "CMK014",
            "storage_customer_managed_key_id",
        ),
        (
            "keys_in_module_in_another_region",
            "databricks_mws_workspaces.this",
            "CMK002",
            "storage_customer_managed_key_id",
        ),
        (
            "for_each_workspaces_prod_premium",
            "databricks_mws_workspaces.this[\"prod\"]",
            "CMK001",
            "pricing_tier",
        ),
    ];
    for (name, address, rule, attribute) in broken {
        let a = corpus(name);
        let e = errors(&a);
        assert!(!e.is_empty(), "{name} passed");
        for (addr, r, _) in &e {
            assert_eq!(*r, rule, "{name}: also {r} on {addr}: {e:#?}");
        }
        assert!(
            e.iter()
                .any(|(ad, r, at)| ad == address && *r == rule && at == attribute),
            "{name}: want {rule} on {address} ({attribute}), got {e:#?}"
        );
        assert_eq!(exit_code(&a), 1, "{name}");
    }
}

/// Issue 13's plan: the reference architecture passes with a warning that
/// names the grants statement, and the references decide CMK016 and CMK002.
#[test]
fn reference_architecture_passes_with_decided_references() {
    let a = corpus("sra_classic");
    let st = "aws_kms_key.workspace_storage";
    let o15 = outcome(&a, st, RuleId::PolicyDatabricksGrants);
    assert_eq!(o15.outcome.verdict, Verdict::Pass, "{o15:?}");
    let o21 = outcome(&a, st, RuleId::PolicyGuideStatements);
    assert_eq!(o21.outcome.verdict, Verdict::Fail, "{o21:?}");
    assert_eq!(o21.outcome.severity, crate::rules::Severity::Warning);
    let m = &o21.outcome.message;
    assert!(
        m.contains("AllowDatabricksStorageGrants")
            && m.contains("kms:CreateGrant")
            && m.contains("kms:GrantIsForAWSResource"),
        "{m}"
    );
    // The managed-services key needs nothing more.
    let ms = outcome(
        &a,
        "aws_kms_key.managed_services",
        RuleId::PolicyGuideStatements,
    );
    assert_eq!(ms.outcome.verdict, Verdict::Pass, "{ms:?}");
    // CMK016: the role comes from credentials_id -> databricks_mws_credentials.role_arn.
    let o16 = outcome(&a, st, RuleId::PolicyClusterVolumes);
    assert_eq!(o16.outcome.verdict, Verdict::Pass, "{o16:?}");
    // CMK002: the new keys' region comes from the AWS provider's region (var.region).
    for l in a
        .outcomes
        .iter()
        .filter(|l| l.outcome.rule == RuleId::KeyRegion)
    {
        assert_ne!(l.outcome.verdict, Verdict::CannotTell, "{l:?}");
    }
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.outcome.rule == RuleId::KeyRegion && l.outcome.verdict == Verdict::Pass));
    // The same plan through the text output: exit 0, one warning.
    let t = render(&a, Format::Text, "sra.json");
    assert!(
        t.contains("warning CMK021 aws_kms_key.workspace_storage (policy)"),
        "{t}"
    );
    assert!(t.lines().last().unwrap().starts_with("0 error(s)"), "{t}");
}

#[test]
fn references_through_modules_aliases_and_for_each_instances() {
    // Keys in a module: the root workspace's ids come from module outputs,
    // the configurations' keys are linked inside the module.
    let a = corpus("keys_in_module");
    let o = outcome(
        &a,
        "module.cmk.aws_kms_key.storage",
        RuleId::PolicyDatabricksGrants,
    );
    assert_eq!(o.outcome.verdict, Verdict::Pass, "{o:?}");
    let o = outcome(&a, "databricks_mws_workspaces.this", RuleId::SlotUseCase);
    assert_eq!(o.outcome.verdict, Verdict::Pass, "{o:?}");
    // for_each: each workspace instance is linked to its own configuration
    // and key (references recorded as `x` and `each.key`).
    let a = corpus("for_each_workspaces");
    for k in ["dev", "prod"] {
        let w = format!("databricks_mws_workspaces.this[\"{k}\"]");
        let o = outcome(&a, &w, RuleId::SlotUseCase);
        assert_eq!(o.outcome.verdict, Verdict::Pass, "{o:?}");
        let key = format!("aws_kms_key.ws[\"{k}\"]");
        let o = outcome(&a, &key, RuleId::PolicyDatabricksGrants);
        assert_eq!(o.outcome.verdict, Verdict::Pass, "{o:?}");
    }
}

/// A plan the real tools wrote (Terraform 1.11.4, hashicorp/aws 5.100.0;
/// see acceptance-tests/fixtures/review/real/README.md): references are
/// followed as Terraform records them.
#[test]
fn real_plan_records_references_as_review_reads_them() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("acceptance-tests/fixtures/review/real/aws_provider_shapes.json");
    let plan = Plan::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let res = |a: &str| plan.get(a).unwrap_or_else(|| panic!("{a} not in the plan"));
    // Regions of keys created in the plan: the provider configuration's
    // region, through `var.region`, an alias, and a module's `providers`.
    for (key, region) in [
        ("aws_kms_key.k[\"a\"]", "eu-west-1"),
        ("aws_kms_key.w", "us-west-2"),
        ("module.keys.aws_kms_key.m[1]", "eu-west-1"),
        ("module.keys_west.aws_kms_key.m[0]", "us-west-2"),
    ] {
        assert_eq!(
            plan.provider_region(res(key)),
            Fact::Known(region.to_string()),
            "{key}"
        );
    }
    let first = |from: &str, attr: &str| -> (String, String) {
        let r = plan.resolve(res(from), attr);
        let (x, a) = r
            .first()
            .unwrap_or_else(|| panic!("{from}.{attr} resolves to nothing"));
        (x.address.clone(), a.clone())
    };
    // A plain reference, and one with a constant key (that instance only).
    assert_eq!(
        first("aws_kms_alias.a", "target_key_id"),
        ("aws_kms_key.w".to_string(), "key_id".to_string())
    );
    let lit = plan.resolve(res("aws_kms_alias.lit"), "target_key_id");
    assert!(
        lit.iter().all(|(r, _)| r.address == "aws_kms_key.k[\"a\"]"),
        "{:?}",
        lit.iter().map(|(r, a)| (&r.address, a)).collect::<Vec<_>>()
    );
    // `k[each.key].key_id` is recorded as `k` and `each.key`: the instance
    // with the alias's own key.
    for k in ["a", "b"] {
        let from = format!("aws_kms_alias.fe[\"{k}\"]");
        let whole = plan.resolve_whole(res(&from), "target_key_id");
        assert_eq!(
            whole[0].address,
            format!("aws_kms_key.k[\"{k}\"]"),
            "{from}"
        );
    }
    // Through a module output (`aws_kms_key.m[0].arn` inside the module):
    // instance 0, whichever count instance refers to it.
    for i in 0..2 {
        let from = format!("aws_kms_alias.cnt[{i}]");
        assert_eq!(
            first(&from, "target_key_id"),
            (
                "module.keys_west.aws_kms_key.m[0]".to_string(),
                "arn".to_string()
            ),
            "{from}"
        );
    }
}
