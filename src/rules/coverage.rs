//! Which data types the planned keys protect, for given facts.

use serde::Serialize;

use super::catalog::{DataType, KeyFeature, CATALOG};
use super::facts::{
    created_on_or_before_cutoff, BindingChange, ComputeMode, Fact, KeyConfigFacts, WorkspaceFacts,
    DASHBOARD_CUTOFF,
};
use super::findings::RuleId;

/// How well a data type is protected by customer-managed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    Protected,
    PartlyProtected,
    NotProtected,
    CannotTellYet,
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

/// Every catalog data type's protection under the planned keys.
pub fn coverage(ws: &WorkspaceFacts, keys: &PlannedKeys) -> Vec<Coverage> {
    CATALOG
        .iter()
        .map(|row| coverage_of(row.data_type, ws, keys))
        .collect()
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
                        .map(|x| format!("{:?} ({})", x.name, x.id))
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
