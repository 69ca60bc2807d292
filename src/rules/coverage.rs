//! Which data types the planned keys protect, for given facts.

use serde::Serialize;

use super::catalog::{DataType, KeyFeature, CATALOG};
use super::facts::{
    created_on_or_before_cutoff, BindingChange, ComputeMode, Fact, KeyConfigFacts, StateRead,
    WorkspaceFacts, DASHBOARD_CUTOFF,
};
use super::findings::{state_read_by, RuleId, NEEDS_STATE};

/// How well a data type is protected by customer-managed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    Protected,
    PartlyProtected,
    NotProtected,
    CannotTellYet,
    /// What protects it depends on the workspace's current state (its
    /// keys, its dashboards), which was not read: nothing is claimed.
    NeedsState,
}

/// One data type's protection, why, and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub data_type: DataType,
    pub protection: Protection,
    pub reason: String,
    pub rule: RuleId,
}

/// Which keys the plan binds to the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedKeys {
    pub managed_services: Fact<bool>,
    pub storage: Fact<bool>,
    /// Whether the storage key also encrypts cluster EBS volumes.
    pub cluster_volumes: Fact<bool>,
}

impl PlannedKeys {
    /// From a binding change and the storage slot's configuration (if resolved).
    pub fn from_binding(change: &BindingChange, storage: Option<&KeyConfigFacts>) -> PlannedKeys {
        let st = change.storage.is_set();
        let cluster_volumes = match st {
            Fact::Known(false) => Fact::Known(false),
            _ => storage
                .map(KeyConfigFacts::covers_cluster_volumes)
                .unwrap_or(Fact::Unknown),
        };
        PlannedKeys {
            managed_services: change.managed_services.is_set(),
            storage: st,
            cluster_volumes,
        }
    }
}

fn entry(
    data_type: DataType,
    protection: Protection,
    reason: impl Into<String>,
    rule: RuleId,
) -> Coverage {
    Coverage {
        data_type,
        protection,
        reason: reason.into(),
        rule,
    }
}

/// Protection through one key: bound or not, or not known.
fn by_key(d: DataType, key: &Fact<bool>, feature: KeyFeature, extra: &str) -> Coverage {
    let r = RuleId::RequiredCoverage;
    match key {
        Fact::Known(true) => entry(
            d,
            Protection::Protected,
            format!("protected by the {feature} key{extra}"),
            r,
        ),
        Fact::Known(false) => entry(
            d,
            Protection::NotProtected,
            format!("needs a {feature} key{extra}, and none is bound"),
            r,
        ),
        Fact::Unknown => entry(
            d,
            Protection::CannotTellYet,
            format!("needs a {feature} key{extra}; whether one is bound is not known yet"),
            r,
        ),
    }
}

/// Every catalog data type's protection under the planned keys. For a
/// workspace whose current state was not read, what that state decides is
/// [`Protection::NeedsState`]: no claim (for an ambiguous live match,
/// "cannot tell yet", saying why).
pub fn coverage(ws: &WorkspaceFacts, keys: &PlannedKeys) -> Vec<Coverage> {
    let mut rows: Vec<Coverage> = CATALOG
        .iter()
        .map(|row| coverage_of(row.data_type, ws, keys))
        .collect();
    if ws.state == StateRead::Read {
        return rows;
    }
    let probe = ws.with_state_placeholder();
    for c in rows
        .iter_mut()
        .filter(|c| c.protection == Protection::CannotTellYet)
    {
        if coverage_of(c.data_type, &probe, keys).protection == Protection::CannotTellYet {
            continue;
        }
        let what = state_read_by(c.rule).unwrap_or("the workspace's current state");
        match &ws.state {
            StateRead::NotRead { .. } => {
                c.protection = Protection::NeedsState;
                c.reason = format!(
                    "{NEEDS_STATE}: {} may exist already, and its protection depends on {what}",
                    ws.label()
                );
            }
            StateRead::Ambiguous(why) => {
                c.reason = format!("{why}; its protection depends on {what}");
            }
            StateRead::Read => {}
        }
    }
    rows
}

/// One data type's protection.
pub fn coverage_of(d: DataType, ws: &WorkspaceFacts, keys: &PlannedKeys) -> Coverage {
    use DataType::*;
    let info = d.info();
    let mode = ws.compute_mode;
    match d {
        ModelServingImage | ServerlessComputeDisks | DbfsMounts => {
            entry(d, Protection::NotProtected, format!("no customer-managed key can protect it: {}", info.condition), RuleId::UnprotectableDataType)
        }
        EbsVolumes => match mode {
            Fact::Known(ComputeMode::Serverless) => entry(
                d,
                Protection::NotProtected,
                "the workspace is SERVERLESS: cluster-volume keys apply only to classic compute, never serverless",
                RuleId::UnprotectableDataType,
            ),
            Fact::Unknown => entry(d, Protection::CannotTellYet, "the compute mode is not known yet; on a SERVERLESS workspace no key protects EBS volumes", RuleId::UnprotectableDataType),
            Fact::Known(ComputeMode::Hybrid) => match (&keys.storage, &keys.cluster_volumes) {
                (Fact::Known(false), _) => entry(d, Protection::NotProtected, "needs a STORAGE key with reuse_key_for_cluster_volumes true (or omitted), and none is bound", RuleId::RequiredCoverage),
                (Fact::Known(true), Fact::Known(true)) => entry(d, Protection::Protected, "protected by the STORAGE key (reuse_key_for_cluster_volumes true or omitted)", RuleId::RequiredCoverage),
                (Fact::Known(true), Fact::Known(false)) => entry(d, Protection::NotProtected, "the STORAGE key has reuse_key_for_cluster_volumes = false", RuleId::RequiredCoverage),
                _ => entry(d, Protection::CannotTellYet, "whether the STORAGE key also encrypts cluster volumes is not known yet", RuleId::RequiredCoverage),
            },
        },
        AiBiDashboards => {
            let base = by_key(d, &keys.managed_services, KeyFeature::ManagedServices, "");
            if base.protection != Protection::Protected {
                return base;
            }
            match &ws.dashboards {
                Fact::Unknown => entry(
                    d,
                    Protection::CannotTellYet,
                    format!("protected by the MANAGED_SERVICES key except dashboards created on or before {DASHBOARD_CUTOFF}, and the dashboards are not known yet"),
                    RuleId::LegacyDashboards,
                ),
                Fact::Known(ds) => {
                    let old: Vec<String> = ds
                        .iter()
                        .filter(|x| created_on_or_before_cutoff(&x.create_time).unwrap_or(true))
                        .map(|x| crate::text::escape(&x.id, 100))
                        .collect();
                    if old.is_empty() {
                        entry(d, Protection::Protected, format!("protected by the MANAGED_SERVICES key; no dashboard predates {DASHBOARD_CUTOFF}"), RuleId::LegacyDashboards)
                    } else {
                        entry(
                            d,
                            Protection::PartlyProtected,
                            format!("dashboards created on or before {DASHBOARD_CUTOFF} (or with an unreadable creation time) are not encrypted with the key: {}", old.join(", ")),
                            RuleId::LegacyDashboards,
                        )
                    }
                }
            }
        }
        InteractiveNotebookResults => interactive_results(ws, keys),
        _ if info.features == [KeyFeature::ManagedServices] => by_key(d, &keys.managed_services, KeyFeature::ManagedServices, ""),
        _ => {
            // Workspace storage bucket data.
            match mode {
                Fact::Known(ComputeMode::Hybrid) => by_key(d, &keys.storage, KeyFeature::Storage, ""),
                Fact::Known(ComputeMode::Serverless) => by_key(
                    d,
                    &keys.managed_services,
                    KeyFeature::ManagedServices,
                    " (a SERVERLESS workspace's default storage is covered by the managed-services key)",
                ),
                Fact::Unknown => match (&keys.managed_services, &keys.storage) {
                    (Fact::Known(true), Fact::Known(true)) => entry(d, Protection::Protected, "both keys are bound", RuleId::RequiredCoverage),
                    (Fact::Known(false), Fact::Known(false)) => entry(d, Protection::NotProtected, "no key is bound", RuleId::RequiredCoverage),
                    _ => entry(d, Protection::CannotTellYet, "the compute mode is not known yet (HYBRID needs the STORAGE key, SERVERLESS the MANAGED_SERVICES key)", RuleId::RequiredCoverage),
                },
            }
        }
    }
}

fn interactive_results(ws: &WorkspaceFacts, keys: &PlannedKeys) -> Coverage {
    let d = DataType::InteractiveNotebookResults;
    let r = RuleId::RequiredCoverage;
    let mode = match ws.compute_mode {
        Fact::Known(m) => m,
        Fact::Unknown => {
            return entry(
                d,
                Protection::CannotTellYet,
                "the compute mode is not known yet",
                r,
            )
        }
    };
    if mode == ComputeMode::Serverless {
        return by_key(
            d,
            &keys.managed_services,
            KeyFeature::ManagedServices,
            " (a SERVERLESS workspace's default storage is covered by the managed-services key)",
        );
    }
    let all_in_account = &ws.all_results_in_customer_account;
    match (&keys.managed_services, &keys.storage, all_in_account) {
        (Fact::Known(true), Fact::Known(true), _) => entry(d, Protection::Protected, "both keys are bound: results in the control plane and in the storage bucket are protected", r),
        (_, Fact::Known(true), Fact::Known(true)) => entry(d, Protection::Protected, "all results are stored in the customer's account, which the STORAGE key protects", r),
        (Fact::Known(false), Fact::Known(true), Fact::Known(false)) => entry(d, Protection::PartlyProtected, "results kept in the control plane need a MANAGED_SERVICES key too (or store all results in the customer's account)", r),
        (Fact::Known(true), Fact::Known(false), Fact::Known(true)) => entry(d, Protection::NotProtected, "all results are stored in the customer's account, which needs a STORAGE key", r),
        (Fact::Known(true), Fact::Known(false), _) => entry(d, Protection::PartlyProtected, "large results stored in the workspace bucket need a STORAGE key too", r),
        (Fact::Known(false), Fact::Known(false), _) => entry(d, Protection::NotProtected, "needs both keys (or a STORAGE key with all results stored in the customer's account), and none is bound", r),
        _ => entry(d, Protection::CannotTellYet, "which keys are bound, or where interactive results are stored, is not known yet", r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::facts::Dashboard;
    use Protection::*;

    fn ws(mode: ComputeMode) -> WorkspaceFacts {
        WorkspaceFacts {
            compute_mode: Fact::Known(mode),
            all_results_in_customer_account: Fact::Known(false),
            ..WorkspaceFacts::new_workspace()
        }
    }

    fn keys(ms: bool, st: bool, ebs: bool) -> PlannedKeys {
        PlannedKeys {
            managed_services: Fact::Known(ms),
            storage: Fact::Known(st),
            cluster_volumes: Fact::Known(st && ebs),
        }
    }

    fn table(w: &WorkspaceFacts, k: &PlannedKeys) -> Vec<(&'static str, Protection)> {
        coverage(w, k)
            .into_iter()
            .map(|c| (c.data_type.name(), c.protection))
            .collect()
    }

    #[test]
    fn every_data_type_under_hybrid_and_serverless() {
        let hybrid_both = table(&ws(ComputeMode::Hybrid), &keys(true, true, true));
        let serverless_ms = table(&ws(ComputeMode::Serverless), &keys(true, false, false));
        let hybrid_ms_only = table(&ws(ComputeMode::Hybrid), &keys(true, false, false));
        let serverless_none = table(&ws(ComputeMode::Serverless), &keys(false, false, false));
        let want: [(&str, Protection, Protection, Protection, Protection); 18] = [
            // name, HYBRID both keys, SERVERLESS ms key, HYBRID ms only, SERVERLESS no key
            (
                "ai_bi_dashboards",
                Protected,
                Protected,
                Protected,
                NotProtected,
            ),
            ("notebooks", Protected, Protected, Protected, NotProtected),
            (
                "git_credentials",
                Protected,
                Protected,
                Protected,
                NotProtected,
            ),
            ("secrets", Protected, Protected, Protected, NotProtected),
            ("sql_queries", Protected, Protected, Protected, NotProtected),
            (
                "vector_search",
                Protected,
                Protected,
                Protected,
                NotProtected,
            ),
            (
                "ebs_volumes",
                Protected,
                NotProtected,
                NotProtected,
                NotProtected,
            ),
            (
                "dbfs_root",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "job_results",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "sql_results",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "mlflow_models",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "dlt_tables",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "notebook_revisions",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "interactive_notebook_results",
                Protected,
                Protected,
                PartlyProtected,
                NotProtected,
            ),
            (
                "model_serving_artifacts",
                Protected,
                Protected,
                NotProtected,
                NotProtected,
            ),
            (
                "model_serving_image",
                NotProtected,
                NotProtected,
                NotProtected,
                NotProtected,
            ),
            (
                "serverless_compute_disks",
                NotProtected,
                NotProtected,
                NotProtected,
                NotProtected,
            ),
            (
                "dbfs_mounts",
                NotProtected,
                NotProtected,
                NotProtected,
                NotProtected,
            ),
        ];
        for (i, (name, hb, sm, hm, sn)) in want.iter().enumerate() {
            assert_eq!(hybrid_both[i], (*name, *hb), "HYBRID both");
            assert_eq!(serverless_ms[i], (*name, *sm), "SERVERLESS ms");
            assert_eq!(hybrid_ms_only[i], (*name, *hm), "HYBRID ms only");
            assert_eq!(serverless_none[i], (*name, *sn), "SERVERLESS none");
        }
    }

    #[test]
    fn conditions_of_the_catalog() {
        let hybrid = ws(ComputeMode::Hybrid);
        let c = |w: &WorkspaceFacts, k: &PlannedKeys, d| coverage_of(d, w, k);
        // ebs_volumes needs reuse_key_for_cluster_volumes.
        let e = c(&hybrid, &keys(false, true, false), DataType::EbsVolumes);
        assert_eq!(e.protection, NotProtected);
        assert!(e.reason.contains("reuse_key_for_cluster_volumes = false"));
        let e = c(
            &ws(ComputeMode::Serverless),
            &keys(true, true, true),
            DataType::EbsVolumes,
        );
        assert_eq!(
            (e.protection, e.rule),
            (NotProtected, RuleId::UnprotectableDataType)
        );
        // interactive results: STORAGE only is enough when all results are in the account.
        let all = WorkspaceFacts {
            all_results_in_customer_account: Fact::Known(true),
            ..hybrid.clone()
        };
        assert_eq!(
            c(
                &all,
                &keys(false, true, true),
                DataType::InteractiveNotebookResults
            )
            .protection,
            Protected
        );
        assert_eq!(
            c(
                &hybrid,
                &keys(false, true, true),
                DataType::InteractiveNotebookResults
            )
            .protection,
            PartlyProtected
        );
        let unknown = WorkspaceFacts {
            all_results_in_customer_account: Fact::Unknown,
            ..hybrid.clone()
        };
        assert_eq!(
            c(
                &unknown,
                &keys(false, true, true),
                DataType::InteractiveNotebookResults
            )
            .protection,
            CannotTellYet
        );
        // Dashboards before the cutoff: partly, naming them.
        let old = WorkspaceFacts {
            dashboards: Fact::Known(vec![Dashboard {
                id: "d1".into(),
                name: "Sales".into(),
                create_time: "2024-11-01T12:00:00Z".into(),
            }]),
            ..hybrid.clone()
        };
        let d = c(&old, &keys(true, false, false), DataType::AiBiDashboards);
        assert_eq!(
            (d.protection, d.rule),
            (PartlyProtected, RuleId::LegacyDashboards)
        );
        assert!(d.reason.ends_with("key: d1") && !d.reason.contains("Sales"));
        let unknown = WorkspaceFacts {
            dashboards: Fact::Unknown,
            ..hybrid.clone()
        };
        assert_eq!(
            c(
                &unknown,
                &keys(true, false, false),
                DataType::AiBiDashboards
            )
            .protection,
            CannotTellYet
        );
        // Unknown bindings and unknown compute mode.
        let k = PlannedKeys {
            managed_services: Fact::Unknown,
            storage: Fact::Known(false),
            cluster_volumes: Fact::Known(false),
        };
        assert_eq!(c(&hybrid, &k, DataType::Secrets).protection, CannotTellYet);
        let nomode = WorkspaceFacts {
            compute_mode: Fact::Unknown,
            ..hybrid
        };
        assert_eq!(
            c(&nomode, &keys(true, false, false), DataType::DbfsRoot).protection,
            CannotTellYet
        );
        assert_eq!(
            c(&nomode, &keys(true, true, true), DataType::DbfsRoot).protection,
            Protected
        );
        assert_eq!(
            c(&nomode, &keys(true, true, true), DataType::EbsVolumes).protection,
            CannotTellYet
        );
        assert_eq!(
            c(&nomode, &keys(true, true, true), DataType::DbfsMounts).protection,
            NotProtected
        );
    }
}
