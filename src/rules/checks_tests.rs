//! Table-driven tests: every rule passes, fails and cannot tell.

use super::*;
use crate::rules::facts::{ComputeKind, Dashboard, RunningCompute, StorageMode};
use crate::rules::findings::Verdict;
use crate::rules::kms_policy::{generate, PolicyInput};

const ARN_E1: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ARN_W2: &str = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const DBX_ACCT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";
const ROLE: &str = "arn:aws:iam::123456789012:role/dbx-cross-account";
const MS_ID: &str = "11111111-1111-1111-1111-111111111111";
const ST_ID: &str = "22222222-2222-2222-2222-222222222222";

fn ws() -> WorkspaceFacts {
    WorkspaceFacts {
        id: Fact::Known(Some("1234567890".into())),
        name: Fact::Known(Some("analytics".into())),
        region: Fact::Known("us-east-1".into()),
        pricing_tier: Fact::Known(PricingTier::Enterprise),
        compute_mode: Fact::Known(ComputeMode::Hybrid),
        storage_mode: Fact::Known(Some(StorageMode::CustomerHosted)),
        status: Fact::Known(Some(WorkspaceStatus::Running)),
        managed_services_key_id: Fact::Known(None),
        storage_key_id: Fact::Known(None),
        running_classic_compute: Fact::Known(vec![]),
        dashboards: Fact::Known(vec![]),
        all_results_in_customer_account: Fact::Known(false),
        state: StateRead::Read,
    }
}

fn cfg(use_cases: &[&str]) -> KeyConfigFacts {
    KeyConfigFacts {
        id: Fact::Known(MS_ID.into()),
        use_cases: Fact::Known(use_cases.iter().map(|s| s.to_string()).collect()),
        key_arn: Fact::Known(ARN_E1.into()),
        key_arn_prefix: None,
        key_region: Fact::Known(None),
        reuse_key_for_cluster_volumes: Fact::Known(None),
    }
}

fn both() -> BindingChange {
    BindingChange {
        managed_services: RequestedKey::id(MS_ID),
        storage: RequestedKey::id(ST_ID),
    }
}

fn find(out: &[Outcome], rule: RuleId, subject: Option<Subject>) -> Outcome {
    out.iter()
        .find(|o| o.rule == rule && subject.is_none_or(|s| o.subject == s))
        .unwrap_or_else(|| panic!("no outcome for {rule} {subject:?} in {out:#?}"))
        .clone()
}

struct BindingCase {
    name: &'static str,
    ws: WorkspaceFacts,
    change: BindingChange,
    ms: Option<KeyConfigFacts>,
    st: Option<KeyConfigFacts>,
    required: &'static [DataType],
    rule: RuleId,
    subject: Option<Subject>,
    want: Verdict,
    /// Substrings the message must contain.
    says: &'static [&'static str],
}

fn case(name: &'static str, rule: RuleId, want: Verdict) -> BindingCase {
    BindingCase {
        name,
        ws: ws(),
        change: both(),
        ms: Some(cfg(&["MANAGED_SERVICES"])),
        st: Some(KeyConfigFacts {
            id: Fact::Known(ST_ID.into()),
            ..cfg(&["STORAGE"])
        }),
        required: &[],
        rule,
        subject: None,
        want,
        says: &[],
    }
}

#[test]
#[allow(clippy::vec_init_then_push)]
fn binding_rules_table() {
    use Verdict::*;
    let mut cases = vec![];
    // CMK001
    cases.push(case("enterprise passes", RuleId::EnterpriseTier, Pass));
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            pricing_tier: Fact::Known(PricingTier::Premium),
            ..ws()
        },
        says: &["PREMIUM", "\"analytics\""],
        ..case("premium fails", RuleId::EnterpriseTier, Fail)
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            pricing_tier: Fact::Unknown,
            ..ws()
        },
        ..case("tier unknown", RuleId::EnterpriseTier, CannotTell)
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            pricing_tier: Fact::Known(PricingTier::Standard),
            ..ws()
        },
        change: BindingChange {
            managed_services: RequestedKey::none(),
            storage: RequestedKey::none(),
        },
        ..case("no keys, any tier", RuleId::EnterpriseTier, Pass)
    });
    // CMK002
    cases.push(BindingCase {
        subject: Some(Subject::ManagedServicesBinding),
        ..case("same region", RuleId::KeyRegion, Pass)
    });
    cases.push(BindingCase {
        ms: Some(KeyConfigFacts {
            key_arn: Fact::Known(ARN_W2.into()),
            ..cfg(&["MANAGED_SERVICES"])
        }),
        says: &["us-west-2", "us-east-1", ARN_W2, "managed-services"],
        ..case("ms key elsewhere", RuleId::KeyRegion, Fail)
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            region: Fact::Unknown,
            ..ws()
        },
        ..case("region unknown", RuleId::KeyRegion, CannotTell)
    });
    // CMK005
    cases.push(case("slots match", RuleId::SlotUseCase, Pass));
    cases.push(BindingCase {
        st: Some(cfg(&["MANAGED_SERVICES"])),
        subject: Some(Subject::StorageBinding),
        says: &["storage slot", "[MANAGED_SERVICES]", "needs STORAGE"],
        ..case("storage slot lacks STORAGE", RuleId::SlotUseCase, Fail)
    });
    cases.push(BindingCase {
        ms: Some(cfg(&["STORAGE"])),
        subject: Some(Subject::ManagedServicesBinding),
        says: &["needs MANAGED_SERVICES"],
        ..case("ms slot lacks MS", RuleId::SlotUseCase, Fail)
    });
    cases.push(BindingCase {
        st: Some(KeyConfigFacts {
            use_cases: Fact::Unknown,
            ..cfg(&[])
        }),
        subject: Some(Subject::StorageBinding),
        ..case("use cases unknown", RuleId::SlotUseCase, CannotTell)
    });
    cases.push(BindingCase {
        st: None,
        subject: Some(Subject::StorageBinding),
        ..case("config outside the plan", RuleId::SlotUseCase, CannotTell)
    });
    // CMK007 / CMK008
    let serverless = || WorkspaceFacts {
        compute_mode: Fact::Known(ComputeMode::Serverless),
        ..ws()
    };
    cases.push(case(
        "hybrid may have an EBS key",
        RuleId::EbsKeyOnServerless,
        Pass,
    ));
    cases.push(BindingCase {
        ws: serverless(),
        says: &[
            "SERVERLESS",
            ST_ID,
            "reuse_key_for_cluster_volumes = true (omitted: Databricks' default)",
        ],
        ..case("EBS key on serverless", RuleId::EbsKeyOnServerless, Fail)
    });
    cases.push(BindingCase {
        ws: serverless(),
        st: Some(KeyConfigFacts {
            reuse_key_for_cluster_volumes: Fact::Known(Some(true)),
            ..cfg(&["STORAGE"])
        }),
        says: &["reuse_key_for_cluster_volumes = true but", "SERVERLESS"],
        ..case(
            "EBS key set explicitly on serverless",
            RuleId::EbsKeyOnServerless,
            Fail,
        )
    });
    cases.push(BindingCase {
        ws: serverless(),
        st: Some(KeyConfigFacts {
            reuse_key_for_cluster_volumes: Fact::Known(Some(false)),
            ..cfg(&["STORAGE"])
        }),
        ..case(
            "storage key without EBS on serverless",
            RuleId::EbsKeyOnServerless,
            Pass,
        )
    });
    cases.push(BindingCase {
        ws: serverless(),
        st: Some(KeyConfigFacts {
            reuse_key_for_cluster_volumes: Fact::Unknown,
            ..cfg(&["STORAGE"])
        }),
        ..case(
            "reuse unknown on serverless",
            RuleId::EbsKeyOnServerless,
            CannotTell,
        )
    });
    cases.push(case(
        "storage key on hybrid",
        RuleId::StorageKeyOnServerless,
        Pass,
    ));
    cases.push(BindingCase {
        ws: serverless(),
        says: &["only the managed-services key applies"],
        ..case(
            "storage key on serverless",
            RuleId::StorageKeyOnServerless,
            Fail,
        )
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            compute_mode: Fact::Unknown,
            ..ws()
        },
        ..case(
            "compute mode unknown",
            RuleId::StorageKeyOnServerless,
            CannotTell,
        )
    });
    // CMK009
    let with_keys = || WorkspaceFacts {
        managed_services_key_id: Fact::Known(Some(MS_ID.into())),
        storage_key_id: Fact::Known(Some(ST_ID.into())),
        ..ws()
    };
    cases.push(case(
        "first storage key",
        RuleId::StorageKeyReplacement,
        Pass,
    ));
    cases.push(BindingCase {
        ws: with_keys(),
        change: BindingChange {
            managed_services: RequestedKey::id("33333333-3333-3333-3333-333333333333"),
            storage: RequestedKey::id(ST_ID),
        },
        ..case(
            "rotating the ms key is allowed",
            RuleId::StorageKeyReplacement,
            Pass,
        )
    });
    cases.push(BindingCase {
        ws: with_keys(),
        change: BindingChange {
            managed_services: RequestedKey::id(MS_ID),
            storage: RequestedKey::id("33333333-3333-3333-3333-333333333333"),
        },
        says: &[
            ST_ID,
            "33333333-3333-3333-3333-333333333333",
            "cannot replace",
        ],
        ..case(
            "replacing the storage key",
            RuleId::StorageKeyReplacement,
            Fail,
        )
    });
    cases.push(BindingCase {
        ws: with_keys(),
        change: BindingChange {
            managed_services: RequestedKey::id(MS_ID),
            storage: RequestedKey::none(),
        },
        ..case(
            "removing the storage key",
            RuleId::StorageKeyReplacement,
            Fail,
        )
    });
    cases.push(BindingCase {
        ws: with_keys(),
        change: BindingChange {
            managed_services: RequestedKey::id(MS_ID),
            storage: RequestedKey::unknown(),
        },
        ..case(
            "new storage id unknown",
            RuleId::StorageKeyReplacement,
            CannotTell,
        )
    });
    // CMK010
    let busy = || WorkspaceFacts {
        running_classic_compute: Fact::Known(vec![
            RunningCompute {
                kind: ComputeKind::Cluster,
                name: "etl".into(),
            },
            RunningCompute {
                kind: ComputeKind::ClassicSqlWarehouse,
                name: "bi".into(),
            },
        ]),
        ..ws()
    };
    cases.push(case("nothing running", RuleId::ClassicComputeRunning, Pass));
    cases.push(BindingCase {
        ws: busy(),
        says: &["cluster \"etl\"", "classic_sql_warehouse \"bi\"", "RUNNING"],
        ..case("compute running", RuleId::ClassicComputeRunning, Fail)
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            managed_services_key_id: Fact::Known(Some(MS_ID.into())),
            storage_key_id: Fact::Known(Some(ST_ID.into())),
            ..busy()
        },
        ..case(
            "no key change, compute may run",
            RuleId::ClassicComputeRunning,
            Pass,
        )
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            running_classic_compute: Fact::Unknown,
            ..ws()
        },
        ..case("compute unknown", RuleId::ClassicComputeRunning, CannotTell)
    });
    // CMK011
    let old = || {
        vec![
            Dashboard {
                id: "01ef".into(),
                name: "Sales".into(),
                create_time: "2024-06-01T10:00:00Z".into(),
            },
            Dashboard {
                id: "01f0".into(),
                name: "New".into(),
                create_time: "2025-01-01T10:00:00Z".into(),
            },
        ]
    };
    cases.push(case("no dashboards", RuleId::LegacyDashboards, Pass));
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            dashboards: Fact::Known(old()),
            ..ws()
        },
        says: &["key: 01ef", "2024-11-01"],
        ..case("old dashboard", RuleId::LegacyDashboards, Fail)
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            dashboards: Fact::Unknown,
            ..ws()
        },
        ..case("dashboards unknown", RuleId::LegacyDashboards, CannotTell)
    });
    // CMK012
    cases.push(BindingCase {
        required: &[DataType::DbfsRoot],
        subject: Some(Subject::RequiredCoverage(DataType::DbfsRoot)),
        ..case("protectable requirement", RuleId::RequiredCoverage, Pass)
    });
    cases.push(BindingCase {
        required: &[DataType::Secrets],
        ..case(
            "secrets can be protected",
            RuleId::UnprotectableDataType,
            Pass,
        )
    });
    cases.push(BindingCase {
        required: &[DataType::DbfsMounts],
        says: &["dbfs_mounts"],
        ..case("dbfs mounts required", RuleId::UnprotectableDataType, Fail)
    });
    cases.push(BindingCase {
        required: &[DataType::EbsVolumes],
        ws: serverless(),
        says: &["ebs_volumes", "SERVERLESS"],
        ..case(
            "ebs on serverless required",
            RuleId::UnprotectableDataType,
            Fail,
        )
    });
    cases.push(BindingCase {
        required: &[DataType::EbsVolumes],
        ws: WorkspaceFacts {
            compute_mode: Fact::Unknown,
            ..ws()
        },
        ..case(
            "ebs, mode unknown",
            RuleId::UnprotectableDataType,
            CannotTell,
        )
    });
    // CMK013
    cases.push(BindingCase {
        required: &[DataType::Secrets],
        change: BindingChange {
            managed_services: RequestedKey::none(),
            storage: RequestedKey::id(ST_ID),
        },
        says: &["secrets", "MANAGED_SERVICES"],
        ..case("secrets without ms key", RuleId::RequiredCoverage, Fail)
    });
    cases.push(BindingCase {
        required: &[DataType::EbsVolumes],
        st: Some(KeyConfigFacts {
            reuse_key_for_cluster_volumes: Fact::Known(Some(false)),
            ..cfg(&["STORAGE"])
        }),
        says: &["reuse_key_for_cluster_volumes = false"],
        ..case("ebs without reuse", RuleId::RequiredCoverage, Fail)
    });
    cases.push(BindingCase {
        required: &[DataType::Secrets],
        change: BindingChange {
            managed_services: RequestedKey::unknown(),
            storage: RequestedKey::id(ST_ID),
        },
        subject: Some(Subject::RequiredCoverage(DataType::Secrets)),
        ..case("ms binding unknown", RuleId::RequiredCoverage, CannotTell)
    });
    // CMK014
    cases.push(BindingCase {
        subject: Some(Subject::StorageBinding),
        ..case("bare id", RuleId::CompositeKeyId, Pass)
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::id(&format!("{DBX_ACCT}/{MS_ID}")),
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        says: &["Invalid customerManagedKeyId", DBX_ACCT],
        ..case("composite id value", RuleId::CompositeKeyId, Fail)
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::id("\\..\\..\\_sandbox\\state"),
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        says: &["not a bare key configuration id", "UUID"],
        ..case("not an id at all", RuleId::CompositeKeyId, Fail)
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::none(),
            storage: RequestedKey {
                composite_source: Some("databricks_mws_customer_managed_keys.st.id".into()),
                ..RequestedKey::unknown()
            },
        },
        subject: Some(Subject::StorageBinding),
        says: &[
            "databricks_mws_customer_managed_keys.st.id",
            ".customer_managed_key_id",
        ],
        ..case("composite from .id", RuleId::CompositeKeyId, Fail)
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::being_set(Some(format!("{DBX_ACCT}/"))),
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        says: &["will start with", DBX_ACCT, "customer_managed_key_id"],
        ..case(
            "unknown id with a composite prefix",
            RuleId::CompositeKeyId,
            Fail,
        )
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::being_set(Some("0b6f".into())),
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        ..case(
            "unknown id with a bare prefix",
            RuleId::CompositeKeyId,
            CannotTell,
        )
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey::unknown(),
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        ..case(
            "id unknown, source unknown",
            RuleId::CompositeKeyId,
            CannotTell,
        )
    });
    // CMK019
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            status: Fact::Known(None),
            ..ws()
        },
        ..case("new workspace", RuleId::StorageKeyVerify, Pass)
    });
    cases.push(BindingCase {
        says: &["running workspace \"analytics\"", ST_ID],
        ..case(
            "storage key on running workspace",
            RuleId::StorageKeyVerify,
            Fail,
        )
    });
    cases.push(BindingCase {
        ws: WorkspaceFacts {
            status: Fact::Unknown,
            ..ws()
        },
        ..case("status unknown", RuleId::StorageKeyVerify, CannotTell)
    });

    cases.push(BindingCase {
        ws: with_keys(),
        change: BindingChange {
            managed_services: RequestedKey::id(MS_ID),
            storage: RequestedKey {
                created_in_plan: true,
                ..RequestedKey::unknown()
            },
        },
        says: &["created in this plan"],
        ..case(
            "replaced by a config the plan creates",
            RuleId::StorageKeyReplacement,
            Fail,
        )
    });
    cases.push(BindingCase {
        change: BindingChange {
            managed_services: RequestedKey {
                bare_source: Some("cmk_key_configuration.ms.customer_managed_key_id".into()),
                ..RequestedKey::unknown()
            },
            storage: RequestedKey::none(),
        },
        subject: Some(Subject::ManagedServicesBinding),
        ..case("id from a bare attribute", RuleId::CompositeKeyId, Pass)
    });

    let mut seen = std::collections::BTreeMap::<RuleId, BTreeSet<&str>>::new();
    for c in &cases {
        let req = Requirements {
            data_types: c.required.iter().copied().collect(),
            ..Default::default()
        };
        let out = check_binding(&c.ws, &c.change, c.ms.as_ref(), c.st.as_ref(), &req);
        let o = find(&out, c.rule, c.subject);
        assert_eq!(o.verdict, c.want, "{}: {o:?}", c.name);
        for s in c.says {
            assert!(
                o.message.contains(s),
                "{}: message {:?} lacks {s:?}",
                c.name,
                o.message
            );
        }
        seen.entry(c.rule).or_default().insert(match c.want {
            Pass => "pass",
            Fail => "fail",
            CannotTell => "cannot",
            NeedsState => "needs state",
        });
    }
    for (rule, kinds) in seen {
        assert_eq!(
            kinds.len(),
            3,
            "{rule} lacks a pass, fail or cannot-tell case: {kinds:?}"
        );
    }
}

#[test]
fn dashboards_escalate_when_required_and_severities_follow_the_registry() {
    let w = WorkspaceFacts {
        dashboards: Fact::Known(vec![Dashboard {
            id: "d1".into(),
            name: "Old".into(),
            create_time: "2024-11-01T23:00:00Z".into(),
        }]),
        ..ws()
    };
    let none = Requirements::default();
    let req = Requirements {
        data_types: [DataType::AiBiDashboards].into(),
        ..Default::default()
    };
    let o = find(
        &check_binding(
            &w,
            &both(),
            Some(&cfg(&["MANAGED_SERVICES"])),
            Some(&cfg(&["STORAGE"])),
            &none,
        ),
        RuleId::LegacyDashboards,
        None,
    );
    assert_eq!((o.verdict, o.severity), (Verdict::Fail, Severity::Warning));
    assert!(!o.is_error());
    let o = find(
        &check_binding(
            &w,
            &both(),
            Some(&cfg(&["MANAGED_SERVICES"])),
            Some(&cfg(&["STORAGE"])),
            &req,
        ),
        RuleId::LegacyDashboards,
        None,
    );
    assert_eq!((o.verdict, o.severity), (Verdict::Fail, Severity::Error));
    assert!(o.is_error());
}

#[test]
fn rules_cannot_tell_on_an_unknown_workspace_instead_of_failing() {
    let out = check_binding(
        &WorkspaceFacts::unknown(),
        &BindingChange {
            managed_services: RequestedKey::unknown(),
            storage: RequestedKey::unknown(),
        },
        None,
        None,
        &Requirements {
            data_types: [DataType::Secrets, DataType::DbfsRoot].into(),
            ..Default::default()
        },
    );
    for o in &out {
        assert_ne!(o.verdict, Verdict::Fail, "false alarm: {o:?}");
    }
    assert!(out.iter().any(|o| o.verdict == Verdict::CannotTell));
}

#[test]
fn key_configuration_rules_table() {
    use Verdict::*;
    type Edit = fn(&mut KeyConfigFacts);
    let cases: Vec<(&str, RuleId, Edit, Verdict, &[&str])> = vec![
        ("valid use cases", RuleId::UseCasesValid, |_| {}, Pass, &[]),
        (
            "empty use cases",
            RuleId::UseCasesValid,
            |c| c.use_cases = Fact::Known(vec![]),
            Fail,
            &["Missing required parameters: use_cases"],
        ),
        (
            "misspelt use case",
            RuleId::UseCasesValid,
            |c| c.use_cases = Fact::Known(vec!["STORAGES".into()]),
            Fail,
            &["\"STORAGES\"", "MANAGED_SERVICES, STORAGE"],
        ),
        (
            "use cases unknown",
            RuleId::UseCasesValid,
            |c| c.use_cases = Fact::Unknown,
            CannotTell,
            &[],
        ),
        ("good ARN", RuleId::KeyArnWellFormed, |_| {}, Pass, &[]),
        (
            "alias ARN",
            RuleId::KeyArnWellFormed,
            |c| c.key_arn = Fact::Known("arn:aws:kms:us-east-1:123456789012:alias/dbx".into()),
            Fail,
            &["alias"],
        ),
        (
            "ARN unknown",
            RuleId::KeyArnWellFormed,
            |c| c.key_arn = Fact::Unknown,
            CannotTell,
            &[],
        ),
        (
            "key_region agrees",
            RuleId::KeyRegion,
            |c| c.key_region = Fact::Known(Some("us-east-1".into())),
            Pass,
            &[],
        ),
        (
            "key_region disagrees",
            RuleId::KeyRegion,
            |c| c.key_region = Fact::Known(Some("eu-west-1".into())),
            Fail,
            &["eu-west-1", "us-east-1"],
        ),
        (
            "key_region unknown",
            RuleId::KeyRegion,
            |c| c.key_region = Fact::Unknown,
            CannotTell,
            &[],
        ),
        (
            "reuse on STORAGE",
            RuleId::ReuseWithoutStorage,
            |c| {
                c.use_cases = Fact::Known(vec!["STORAGE".into()]);
                c.reuse_key_for_cluster_volumes = Fact::Known(Some(true))
            },
            Pass,
            &[],
        ),
        (
            "reuse without STORAGE",
            RuleId::ReuseWithoutStorage,
            |c| c.reuse_key_for_cluster_volumes = Fact::Known(Some(true)),
            Fail,
            &["[MANAGED_SERVICES]", "= true"],
        ),
        (
            "reuse = false without STORAGE asks for nothing",
            RuleId::ReuseWithoutStorage,
            |c| c.reuse_key_for_cluster_volumes = Fact::Known(Some(false)),
            Pass,
            &[],
        ),
        (
            "reuse, use cases unknown",
            RuleId::ReuseWithoutStorage,
            |c| {
                c.use_cases = Fact::Unknown;
                c.reuse_key_for_cluster_volumes = Fact::Known(Some(true))
            },
            CannotTell,
            &[],
        ),
    ];
    for (name, rule, edit, want, says) in cases {
        let mut c = cfg(&["MANAGED_SERVICES"]);
        edit(&mut c);
        let o = find(&check_key_configuration(&c), rule, None);
        assert_eq!(o.verdict, want, "{name}: {o:?}");
        for s in says {
            assert!(o.message.contains(s), "{name}: {:?} lacks {s:?}", o.message);
        }
    }
}

fn kms(policy: Option<String>) -> KmsKeyFacts {
    KmsKeyFacts {
        arn: Fact::Known(ARN_E1.into()),
        state: Fact::Known(KeyState::Enabled),
        spec: Fact::Known("SYMMETRIC_DEFAULT".into()),
        usage: Fact::Known("ENCRYPT_DECRYPT".into()),
        region: Fact::Known("us-east-1".into()),
        policy: Fact::Known(policy),
        grants: vec![],
    }
}

fn needs(use_cases: &[KeyFeature], cluster_volumes: bool, role: Option<&str>) -> PolicyNeeds {
    PolicyNeeds {
        use_cases: Fact::Known(use_cases.iter().copied().collect()),
        cluster_volumes: Fact::Known(cluster_volumes),
        databricks_account_id: Fact::Known(DBX_ACCT.into()),
        cross_account_role_arn: Fact::Known(role.map(str::to_string)),
        workspace_region: Fact::Known("us-east-1".into()),
        databricks_principal: None,
        deployment: None,
    }
}

fn generated(use_cases: &[KeyFeature], role: Option<&str>, tag: bool) -> String {
    let doc = generate(&PolicyInput {
        use_cases: use_cases.iter().copied().collect(),
        aws_account_id: "123456789012".into(),
        databricks_account_id: tag.then(|| DBX_ACCT.to_string()),
        cross_account_role_arn: role.map(str::to_string),
        reuse_key_for_cluster_volumes: true,
        partition: crate::rules::ids::Partition::Aws,
        databricks_principal: None,
        deployment: None,
    })
    .unwrap();
    doc.to_string()
}

#[test]
#[allow(clippy::type_complexity)]
fn kms_key_rules_table() {
    use KeyFeature::{ManagedServices as MS, Storage as ST};
    use Verdict::*;
    let full = || kms(Some(generated(&[MS, ST], Some(ROLE), true)));
    type Edit = fn(&mut KmsKeyFacts);
    let cases: Vec<(&str, RuleId, Subject, Edit, Verdict, &[&str])> = vec![
        (
            "symmetric",
            RuleId::SymmetricKey,
            Subject::KeySpec,
            |_| {},
            Pass,
            &[],
        ),
        (
            "RSA",
            RuleId::SymmetricKey,
            Subject::KeySpec,
            |k| k.spec = Fact::Known("RSA_2048".into()),
            Fail,
            &["RSA_2048", "SYMMETRIC_DEFAULT"],
        ),
        (
            "spec unknown",
            RuleId::SymmetricKey,
            Subject::KeySpec,
            |k| k.spec = Fact::Unknown,
            CannotTell,
            &[],
        ),
        (
            "sign usage",
            RuleId::SymmetricKey,
            Subject::KeyUsage,
            |k| k.usage = Fact::Known("SIGN_VERIFY".into()),
            Fail,
            &["SIGN_VERIFY"],
        ),
        (
            "enabled",
            RuleId::KeyUsable,
            Subject::KeyState,
            |_| {},
            Pass,
            &[],
        ),
        (
            "disabled",
            RuleId::KeyUsable,
            Subject::KeyState,
            |k| k.state = Fact::Known(KeyState::Disabled),
            Fail,
            &["Disabled", ARN_E1],
        ),
        (
            "pending deletion",
            RuleId::KeyUsable,
            Subject::KeyState,
            |k| k.state = Fact::Known(KeyState::PendingDeletion),
            Fail,
            &["PendingDeletion"],
        ),
        (
            "state unknown",
            RuleId::KeyUsable,
            Subject::KeyState,
            |k| k.state = Fact::Unknown,
            CannotTell,
            &[],
        ),
        (
            "generated policy",
            RuleId::PolicyDatabricksGrants,
            Subject::KeyPolicy,
            |_| {},
            Pass,
            &[],
        ),
        (
            "default policy",
            RuleId::PolicyDatabricksGrants,
            Subject::KeyPolicy,
            |k| k.policy = Fact::Known(None),
            Fail,
            &["default key policy"],
        ),
        (
            "ms-only policy for storage",
            RuleId::PolicyDatabricksGrants,
            Subject::KeyPolicy,
            |k| k.policy = Fact::Known(Some(generated(&[KeyFeature::ManagedServices], None, true))),
            Fail,
            &["kms:GenerateDataKey", "STORAGE", "414351767826"],
        ),
        (
            "policy unknown",
            RuleId::PolicyDatabricksGrants,
            Subject::KeyPolicy,
            |k| k.policy = Fact::Unknown,
            CannotTell,
            &[],
        ),
        (
            "not JSON",
            RuleId::PolicyDatabricksGrants,
            Subject::KeyPolicy,
            |k| k.policy = Fact::Known(Some("{".into())),
            Fail,
            &["not JSON"],
        ),
        (
            "EBS statement present",
            RuleId::PolicyClusterVolumes,
            Subject::KeyPolicy,
            |_| {},
            Pass,
            &[],
        ),
        (
            "EBS statement missing",
            RuleId::PolicyClusterVolumes,
            Subject::KeyPolicy,
            |k| {
                k.policy = Fact::Known(Some(generated(
                    &[KeyFeature::ManagedServices, KeyFeature::Storage],
                    None,
                    true,
                )))
            },
            Fail,
            &[ROLE, "ec2.us-east-1.amazonaws.com"],
        ),
        (
            "policy unknown (EBS)",
            RuleId::PolicyClusterVolumes,
            Subject::KeyPolicy,
            |k| k.policy = Fact::Unknown,
            CannotTell,
            &[],
        ),
    ];
    for (name, rule, subject, edit, want, says) in cases {
        let mut k = full();
        edit(&mut k);
        let o = find(
            &check_kms_key(&k, &needs(&[MS, ST], true, Some(ROLE))),
            rule,
            Some(subject),
        );
        assert_eq!(o.verdict, want, "{name}: {o:?}");
        for s in says {
            assert!(o.message.contains(s), "{name}: {:?} lacks {s:?}", o.message);
        }
    }
    // Role unknown: cannot tell about the EBS statement; no cluster volumes: pass.
    let o = find(
        &check_kms_key(&full(), &needs(&[MS, ST], true, None)),
        RuleId::PolicyClusterVolumes,
        None,
    );
    assert_eq!(o.verdict, CannotTell);
    let o = find(
        &check_kms_key(&full(), &needs(&[MS, ST], false, None)),
        RuleId::PolicyClusterVolumes,
        None,
    );
    assert_eq!(o.verdict, Pass);
    // Generated policies pass for every use-case combination, with and without tags.
    for uc in [vec![MS], vec![ST], vec![MS, ST]] {
        for tag in [false, true] {
            let k = kms(Some(generated(&uc, Some(ROLE), tag)));
            for o in check_kms_key(&k, &needs(&uc, uc.contains(&ST), Some(ROLE))) {
                assert_eq!(o.verdict, Pass, "{uc:?} tag={tag}: {o:?}");
            }
        }
    }
}

#[test]
fn storage_statements_do_not_apply_to_keys_without_storage() {
    use KeyFeature::{ManagedServices as MS, Storage as ST};
    use Verdict::*;
    let of = |outs: &[Outcome], r: RuleId| -> Outcome {
        outs.iter().find(|o| o.rule == r).cloned().unwrap()
    };
    // A MANAGED_SERVICES key: CMK016 and CMK021 pass whether the policy is
    // unknown, absent (default policy) or lacks every storage statement, and
    // when no deployment of the key's partition is known.
    let mut unknown_partition = kms(Some(generated(&[MS], None, true)));
    unknown_partition.arn = Fact::Known(
        "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
    );
    unknown_partition.region = Fact::Known("cn-north-1".into());
    let keys = [
        (
            "policy unknown",
            KmsKeyFacts {
                policy: Fact::Unknown,
                ..kms(None)
            },
        ),
        ("default policy", kms(None)),
        ("MS policy", kms(Some(generated(&[MS], None, true)))),
        ("no deployment for the partition", unknown_partition),
    ];
    for (name, k) in &keys {
        for uc in [vec![MS], vec![]] {
            let outs = check_kms_key(k, &needs(&uc, false, None));
            for r in [RuleId::PolicyClusterVolumes, RuleId::PolicyGuideStatements] {
                let o = of(&outs, r);
                assert_eq!(o.verdict, Pass, "{name} {uc:?}: {o:?}");
                assert!(o.message.contains("not a STORAGE key"), "{name}: {o:?}");
            }
        }
        // Use cases unknown: still cannot tell (or a failure), never a pass
        // for a reason it cannot know.
        let unknown = PolicyNeeds {
            use_cases: Fact::Unknown,
            cluster_volumes: Fact::Unknown,
            ..needs(&[], false, None)
        };
        for o in check_kms_key(k, &unknown) {
            if [RuleId::PolicyClusterVolumes, RuleId::PolicyGuideStatements].contains(&o.rule) {
                assert_ne!(o.verdict, Pass, "{name} unknown use cases: {o:?}");
                assert!(!o.message.contains("not a STORAGE key"), "{name}: {o:?}");
            }
        }
    }
    // A STORAGE key with an unknown policy still cannot tell.
    let k = KmsKeyFacts {
        policy: Fact::Unknown,
        ..kms(None)
    };
    let outs = check_kms_key(&k, &needs(&[ST], true, Some(ROLE)));
    assert_eq!(of(&outs, RuleId::PolicyClusterVolumes).verdict, CannotTell);
    assert_eq!(of(&outs, RuleId::PolicyGuideStatements).verdict, CannotTell);
}

#[test]
fn cmk020_running_and_failed_workspaces_accept_key_updates() {
    use Verdict::*;
    let with_status = |st: Option<WorkspaceStatus>| WorkspaceFacts {
        status: Fact::Known(st),
        ..ws()
    };
    let ms_only = BindingChange {
        managed_services: RequestedKey::id(MS_ID),
        storage: RequestedKey::none(),
    };
    let check = |w: &WorkspaceFacts, c: &BindingChange, ran: Fact<bool>| {
        check_workspace_updatable(w, c, ran)
    };
    let failed = with_status(Some(WorkspaceStatus::Failed));
    let cases: Vec<(&str, Outcome, Verdict, &str)> = vec![
        ("running", check(&ws(), &both(), Fact::Unknown), Pass, "RUNNING"),
        ("failed, managed services only", check(&failed, &ms_only, Fact::Known(true)), Pass, "managed-services key on a failed workspace"),
        ("failed, never ran, storage", check(&failed, &both(), Fact::Known(false)), Pass, "never ran"),
        ("failed after running, storage", check(&failed, &both(), Fact::Known(true)), Fail, "only if it never ran"),
        ("failed, unknown history, storage", check(&failed, &both(), Fact::Unknown), CannotTell, "whether it ran is not known"),
        ("provisioning", check(&with_status(Some(WorkspaceStatus::Provisioning)), &both(), Fact::Unknown), Fail, "workspace \"analytics\" is PROVISIONING; Databricks changes keys only on a RUNNING or FAILED workspace"),
        ("banned", check(&with_status(Some(WorkspaceStatus::Banned)), &ms_only, Fact::Unknown), Fail, "BANNED"),
        ("new workspace", check(&WorkspaceFacts::new_workspace(), &both(), Fact::Unknown), Pass, "created"),
        ("status unknown", check(&WorkspaceFacts { status: Fact::Unknown, ..ws() }, &both(), Fact::Unknown), CannotTell, "not known"),
    ];
    for (name, o, want, says) in cases {
        assert_eq!(o.rule, RuleId::WorkspaceUpdatable, "{name}");
        assert_eq!(o.verdict, want, "{name}: {o:?}");
        assert!(
            o.message.contains(says),
            "{name}: {:?} should say {says:?}",
            o.message
        );
    }
    // Nothing changes: passes whatever the status.
    let same = WorkspaceFacts {
        managed_services_key_id: Fact::Known(Some(MS_ID.into())),
        ..with_status(Some(WorkspaceStatus::Provisioning))
    };
    assert_eq!(check(&same, &ms_only, Fact::Unknown).verdict, Pass);
    // check_binding reports it (history unknown there).
    let out = check_binding(&failed, &both(), None, None, &Requirements::default());
    assert_eq!(
        find(&out, RuleId::WorkspaceUpdatable, None).verdict,
        CannotTell
    );
}

/// "EBS keys rejected for serverless": a storage configuration that reuses
/// its key for cluster volumes (set, or omitted: Databricks' default) on a
/// SERVERLESS workspace is an error (CMK007), beside the CMK008 warning; so
/// is `reuse_key_for_cluster_volumes = true` without STORAGE (CMK006). With
/// `reuse_key_for_cluster_volumes = false` only the warning is left.
#[test]
fn ebs_keys_on_serverless_and_reuse_without_storage_are_errors() {
    let serverless = WorkspaceFacts {
        compute_mode: Fact::Known(ComputeMode::Serverless),
        ..ws()
    };
    let storage = |reuse: Option<bool>| KeyConfigFacts {
        id: Fact::Known(ST_ID.into()),
        reuse_key_for_cluster_volumes: Fact::Known(reuse),
        ..cfg(&["STORAGE"])
    };
    let none = Requirements::default();
    for reuse in [None, Some(true)] {
        let out = check_binding(&serverless, &both(), None, Some(&storage(reuse)), &none);
        let o7 = find(&out, RuleId::EbsKeyOnServerless, None);
        assert_eq!(
            (o7.verdict, o7.severity),
            (Verdict::Fail, Severity::Error),
            "{reuse:?}"
        );
        assert!(o7.is_error());
        let o8 = find(&out, RuleId::StorageKeyOnServerless, None);
        assert_eq!(
            (o8.verdict, o8.severity),
            (Verdict::Fail, Severity::Warning)
        );
    }
    let out = check_binding(
        &serverless,
        &both(),
        None,
        Some(&storage(Some(false))),
        &none,
    );
    let o7 = find(&out, RuleId::EbsKeyOnServerless, None);
    assert_eq!(o7.verdict, Verdict::Pass, "{o7:?}");
    let o8 = find(&out, RuleId::StorageKeyOnServerless, None);
    assert_eq!(
        (o8.verdict, o8.severity),
        (Verdict::Fail, Severity::Warning)
    );
    assert!(!out.iter().any(Outcome::is_error), "{out:#?}");

    let reuse_on_ms = KeyConfigFacts {
        reuse_key_for_cluster_volumes: Fact::Known(Some(true)),
        ..cfg(&["MANAGED_SERVICES"])
    };
    let o6 = find(
        &check_key_configuration(&reuse_on_ms),
        RuleId::ReuseWithoutStorage,
        None,
    );
    assert_eq!((o6.verdict, o6.severity), (Verdict::Fail, Severity::Error));
    assert!(
        o6.message.contains("reuse_key_for_cluster_volumes = true"),
        "{}",
        o6.message
    );
}

#[test]
fn a_promised_key_arn_decides_its_kind_and_region_at_plan() {
    let mut c = cfg(&["STORAGE"]);
    c.key_arn = Fact::Unknown;
    c.key_arn_prefix = Some("arn:aws:kms:us-west-2:123456789012:key/".into());
    c.key_region = Fact::Known(None);
    assert_eq!(
        c.effective_key_region(),
        Fact::Known("us-west-2".to_string())
    );
    let out = check_key_configuration(&c);
    for r in [RuleId::KeyArnWellFormed, RuleId::KeyRegion] {
        let o = out.iter().find(|o| o.rule == r).unwrap();
        assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
    }
    c.key_region = Fact::Known(Some("eu-west-1".into()));
    let out = check_key_configuration(&c);
    let o = out.iter().find(|o| o.rule == RuleId::KeyRegion).unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{o:?}");
    assert!(
        o.message
            .contains("arn:aws:kms:us-west-2:123456789012:key/"),
        "{}",
        o.message
    );
    // Without a promise, both wait (CMK002 when a key_region is given:
    // without one, Databricks takes the ARN's and they cannot disagree).
    c.key_arn_prefix = None;
    let out = check_key_configuration(&c);
    assert!(out
        .iter()
        .filter(|o| matches!(o.rule, RuleId::KeyArnWellFormed | RuleId::KeyRegion))
        .all(|o| o.verdict == Verdict::CannotTell));
}

use Verdict::{CannotTell, Fail, NeedsState, Pass};

/// A workspace of a configuration's source, whose current state was not
/// read: what the configuration itself says (name, region, tier, compute
/// mode), nothing of what exists.
fn source_ws(settings: bool) -> WorkspaceFacts {
    let mut w = ws();
    w.id = Fact::Unknown;
    w.status = Fact::Unknown;
    w.managed_services_key_id = Fact::Unknown;
    w.storage_key_id = Fact::Unknown;
    w.running_classic_compute = Fact::Unknown;
    w.dashboards = Fact::Unknown;
    w.storage_mode = Fact::Unknown;
    w.all_results_in_customer_account = Fact::Unknown;
    if settings {
        w.pricing_tier = Fact::Unknown;
        w.compute_mode = Fact::Unknown;
        w.region = Fact::Unknown;
    }
    w.state = StateRead::NotRead { settings };
    w
}

fn storage_change() -> BindingChange {
    BindingChange {
        managed_services: RequestedKey::id(MS_ID),
        storage: RequestedKey::id(ST_ID),
    }
}

fn verdict_of(out: &[Outcome], rule: RuleId) -> Vec<Verdict> {
    out.iter()
        .filter(|o| o.rule == rule)
        .map(|o| o.verdict)
        .collect()
}

#[test]
fn state_rules_need_state_when_it_was_not_read_and_never_pass() {
    let ms = cfg(&["MANAGED_SERVICES"]);
    let st = KeyConfigFacts {
        id: Fact::Known(ST_ID.into()),
        ..cfg(&["STORAGE"])
    };
    let req = Requirements {
        data_types: [DataType::AiBiDashboards, DataType::Notebooks]
            .into_iter()
            .collect(),
        not_known: 0,
    };
    let out = check_binding(
        &source_ws(false),
        &storage_change(),
        Some(&ms),
        Some(&st),
        &req,
    );
    for rule in [
        RuleId::StorageKeyReplacement,
        RuleId::ClassicComputeRunning,
        RuleId::LegacyDashboards,
        RuleId::StorageKeyVerify,
        RuleId::WorkspaceUpdatable,
    ] {
        assert_eq!(verdict_of(&out, rule), vec![NeedsState], "{rule}: {out:#?}");
        let o = out.iter().find(|o| o.rule == rule).unwrap();
        assert!(
            o.message.starts_with("needs state: not checked without a plan or --live: workspace \"analytics\" may exist already"),
            "{}",
            o.message
        );
        assert!(
            crate::rules::findings::state_read_by(rule).is_some(),
            "{rule} is listed"
        );
        // The way to decide it: a plan, unless the rule reads what no plan
        // holds (running compute, dashboards): then --live alone.
        let live_only = matches!(
            rule,
            RuleId::ClassicComputeRunning | RuleId::LegacyDashboards
        );
        assert_eq!(
            crate::rules::findings::live_only_read_by(rule).is_some(),
            live_only,
            "{rule}"
        );
        if live_only {
            assert!(
                o.message.contains("; pass --live (a plan would tell whether it exists and how its keys change, but not its ")
                    && !o.message.contains("review a plan"),
                "{}",
                o.message
            );
        } else {
            assert!(
                o.message.ends_with("; review a plan of it, or pass --live"),
                "{}",
                o.message
            );
        }
    }
    // The AI/BI dashboards requirement depends on the dashboards: not
    // claimed; notebooks depend on the configuration's keys only.
    let cmk013: Vec<(Subject, Verdict)> = out
        .iter()
        .filter(|o| o.rule == RuleId::RequiredCoverage)
        .map(|o| (o.subject, o.verdict))
        .collect();
    assert!(
        cmk013.contains(&(
            Subject::RequiredCoverage(DataType::AiBiDashboards),
            NeedsState
        )),
        "{cmk013:?}"
    );
    assert!(
        cmk013.contains(&(Subject::RequiredCoverage(DataType::Notebooks), Pass)),
        "{cmk013:?}"
    );
    // What the configuration decides alone still does: tier, region, use cases.
    for rule in [
        RuleId::EnterpriseTier,
        RuleId::KeyRegion,
        RuleId::SlotUseCase,
    ] {
        assert!(
            verdict_of(&out, rule).iter().all(|v| *v == Pass),
            "{rule}: {out:#?}"
        );
    }
    // The same configuration with the state read: CMK009 fails on a
    // workspace that has another storage key, passes on one without.
    let existing = WorkspaceFacts {
        storage_key_id: Fact::Known(Some("33333333-3333-3333-3333-333333333333".into())),
        ..ws()
    };
    let out = check_binding(&existing, &storage_change(), Some(&ms), Some(&st), &req);
    assert_eq!(verdict_of(&out, RuleId::StorageKeyReplacement), vec![Fail]);
    let out = check_binding(&ws(), &storage_change(), Some(&ms), Some(&st), &req);
    assert_eq!(verdict_of(&out, RuleId::StorageKeyReplacement), vec![Pass]);
}

#[test]
fn a_binding_to_an_undeclared_workspace_needs_its_tier_region_and_compute_mode() {
    let ms = cfg(&["MANAGED_SERVICES"]);
    let change = BindingChange {
        managed_services: RequestedKey::id(MS_ID),
        storage: RequestedKey::none(),
    };
    let out = check_binding(
        &source_ws(true),
        &change,
        Some(&ms),
        None,
        &Requirements::default(),
    );
    assert_eq!(verdict_of(&out, RuleId::EnterpriseTier), vec![NeedsState]);
    assert!(
        verdict_of(&out, RuleId::KeyRegion).contains(&NeedsState),
        "{out:#?}"
    );
    assert!(out.iter().all(|o| o.verdict != CannotTell), "{out:#?}");
    // A workspace declared by the configuration: its own tier decides.
    let out = check_binding(
        &source_ws(false),
        &change,
        Some(&ms),
        None,
        &Requirements::default(),
    );
    assert_eq!(verdict_of(&out, RuleId::EnterpriseTier), vec![Pass]);
}

#[test]
fn an_ambiguous_live_match_cannot_tell_and_says_why() {
    let mut w = source_ws(false);
    w.state = StateRead::Ambiguous("workspace \"analytics\" could be any of 2 workspaces".into());
    let out = check_binding(
        &w,
        &storage_change(),
        Some(&cfg(&["MANAGED_SERVICES"])),
        None,
        &Requirements::default(),
    );
    let o = out
        .iter()
        .find(|o| o.rule == RuleId::StorageKeyReplacement)
        .unwrap();
    assert_eq!(o.verdict, CannotTell);
    assert!(
        o.message.contains(
            "could be any of 2 workspaces; this rule reads the workspace's current storage key"
        ),
        "{}",
        o.message
    );
    assert!(out.iter().all(|o| o.verdict != NeedsState));
}

#[test]
fn coverage_claims_nothing_about_dashboards_it_never_read() {
    use crate::rules::coverage::{coverage, PlannedKeys, Protection};
    let keys = PlannedKeys::from_binding(&storage_change(), None);
    let rows = coverage(&source_ws(false), &keys);
    let dash = rows
        .iter()
        .find(|c| c.data_type == DataType::AiBiDashboards)
        .unwrap();
    assert_eq!(dash.protection, Protection::NeedsState, "{dash:?}");
    assert!(
        !dash.reason.contains("no dashboard predates"),
        "{}",
        dash.reason
    );
    assert!(
        dash.reason
            .starts_with("needs state: not checked without a plan or --live"),
        "{}",
        dash.reason
    );
    // With the state read, the claim is made.
    let rows = coverage(&ws(), &keys);
    let dash = rows
        .iter()
        .find(|c| c.data_type == DataType::AiBiDashboards)
        .unwrap();
    assert_eq!(dash.protection, Protection::Protected);
    assert!(
        dash.reason.contains("no dashboard predates"),
        "{}",
        dash.reason
    );
}
