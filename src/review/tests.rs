//! Review tests over fixtures shaped as `terraform show -json` writes them.

use super::*;
use crate::rules::findings::Verdict;
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
    // The key ARN is known only after apply: cannot tell, not an error.
    assert!(a
        .outcomes
        .iter()
        .any(|l| l.outcome.rule == RuleId::KeyArnWellFormed
            && l.outcome.verdict == Verdict::CannotTell));
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
    assert!(t.contains("docs: docs/rules/CMK014.md"));
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
            assert!(r["helpUri"].as_str().unwrap().ends_with(".md"));
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
        if let Ok(a) = review_text(&text, &Requirements { data_types: DataType::all().collect() }) {
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
