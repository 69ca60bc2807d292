//! Glue between the sandbox's world and the rule engine (`crate::rules`).
//!
//! The sandbox holds no Databricks rule of its own: it builds facts from its
//! world (where every fact is known), calls the engine, and answers the
//! failing outcomes of the rules the real Account API enforces with the
//! API's refusal. Rules the API does not enforce (warnings, policy,
//! dashboards, coverage) never refuse a request here.

use crate::cloud::databricks::{AwsKeyInfo, Workspace};
use crate::rules::catalog::KeyFeature;
use crate::rules::checks::{check_binding, check_key_configuration, check_workspace_updatable};
use crate::rules::facts::{
    BindingChange, ComputeMode, Dashboard, Fact, KeyConfigFacts, PricingTier, RequestedKey,
    Requirements, WorkspaceFacts,
};
use crate::rules::{Outcome, RuleId, Subject, Verdict};

use super::world::{SandboxWorkspace, SeedKey};

/// Which slot of a workspace a key configuration is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    ManagedServices,
    Storage,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::ManagedServices, Slot::Storage];

    pub fn field(self) -> &'static str {
        match self {
            Slot::ManagedServices => "managed_services_customer_managed_key_id",
            Slot::Storage => "storage_customer_managed_key_id",
        }
    }

    pub fn feature(self) -> KeyFeature {
        match self {
            Slot::ManagedServices => KeyFeature::ManagedServices,
            Slot::Storage => KeyFeature::Storage,
        }
    }

    fn subject(self) -> Subject {
        match self {
            Slot::ManagedServices => Subject::ManagedServicesBinding,
            Slot::Storage => Subject::StorageBinding,
        }
    }

    pub fn current(self, w: &Workspace) -> Option<&str> {
        match self {
            Slot::ManagedServices => w.managed_services_customer_managed_key_id.as_deref(),
            Slot::Storage => w.storage_customer_managed_key_id.as_deref(),
        }
    }
}

/// What the sandbox knows about a workspace, as rule facts.
pub(crate) fn workspace_facts(w: &SandboxWorkspace) -> WorkspaceFacts {
    let ws = &w.workspace;
    WorkspaceFacts {
        id: Fact::Known(Some(ws.workspace_id.to_string())),
        name: Fact::Known(Some(ws.workspace_name.clone())),
        // A seed may leave the region out; the rules then cannot tell.
        region: ws.aws_region.clone().into(),
        // The API answers UNKNOWN for a tier it does not know; so does the
        // sandbox for a seed without one.
        pricing_tier: Fact::Known(ws.pricing_tier.unwrap_or(PricingTier::Unknown)),
        // Absent means classic compute too (HYBRID), as in the API.
        compute_mode: Fact::Known(ws.compute_mode.unwrap_or(ComputeMode::Hybrid)),
        storage_mode: Fact::Known(ws.storage_mode),
        status: ws.workspace_status.map(Some).into(),
        managed_services_key_id: Fact::Known(ws.managed_services_customer_managed_key_id.clone()),
        storage_key_id: Fact::Known(ws.storage_customer_managed_key_id.clone()),
        // What the workspace's own compute APIs serve, classified as the
        // client classifies it.
        running_classic_compute: Fact::Known(super::compute::running(w)),
        dashboards: Fact::Known(
            w.dashboards
                .iter()
                .map(|d| Dashboard {
                    id: d.dashboard_id.clone().unwrap_or_default(),
                    name: d.display_name.clone(),
                    create_time: d.create_time.clone().unwrap_or_default(),
                })
                .collect(),
        ),
        all_results_in_customer_account: Fact::Unknown,
        state: Default::default(),
    }
}

/// A key configuration as rule facts, from its use cases (as written) and
/// its AWS key info.
pub(crate) fn key_config_facts(
    id: Option<&str>,
    use_cases: Vec<String>,
    info: &AwsKeyInfo,
) -> KeyConfigFacts {
    KeyConfigFacts {
        id: id.map(str::to_string).into(),
        use_cases: Fact::Known(use_cases),
        key_arn: Fact::Known(info.key_arn.clone()),
        key_arn_prefix: None,
        key_region: Fact::Known(info.key_region.clone()),
        reuse_key_for_cluster_volumes: Fact::Known(info.reuse_key_for_cluster_volumes),
    }
}

fn seed_key_facts(k: &SeedKey) -> KeyConfigFacts {
    key_config_facts(
        k.customer_managed_key_id.as_deref(),
        k.use_cases.iter().map(|u| u.as_str().to_string()).collect(),
        &k.aws_key_info,
    )
}

/// A requested key update: the new id of each slot that changes.
pub(crate) struct KeyUpdate<'a> {
    pub workspace: &'a SandboxWorkspace,
    pub changes: &'a [(Slot, String)],
    pub keys: &'a [SeedKey],
}

impl KeyUpdate<'_> {
    fn requested(&self, slot: Slot) -> Option<&str> {
        self.changes
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, id)| id.as_str())
    }

    /// The engine's outcomes for the update. A slot left alone keeps its
    /// current id and is given no configuration facts: the API checks only
    /// the configurations being bound.
    pub fn check(&self) -> Vec<Outcome> {
        let ws = workspace_facts(self.workspace);
        let requested = |slot: Slot| match self.requested(slot) {
            Some(id) => RequestedKey::id(id),
            None => match slot.current(&self.workspace.workspace) {
                Some(id) => RequestedKey::id(id),
                None => RequestedKey::none(),
            },
        };
        let change = BindingChange {
            managed_services: requested(Slot::ManagedServices),
            storage: requested(Slot::Storage),
        };
        let cfg = |slot: Slot| {
            let id = self.requested(slot)?;
            self.keys
                .iter()
                .find(|k| k.customer_managed_key_id.as_deref() == Some(id))
                .map(seed_key_facts)
        };
        let (ms, st) = (cfg(Slot::ManagedServices), cfg(Slot::Storage));
        let mut out = check_binding(
            &ws,
            &change,
            ms.as_ref(),
            st.as_ref(),
            &Requirements::default(),
        );
        // The sandbox knows whether the workspace ever ran (the API does not
        // say): CMK020 with that fact replaces the engine's "cannot tell".
        out.retain(|o| o.rule != RuleId::WorkspaceUpdatable);
        out.push(check_workspace_updatable(
            &ws,
            &change,
            Fact::Known(self.workspace.ever_ran()),
        ));
        out
    }

    /// The API's refusal for the first of `rules` (in that order) that
    /// failed, if any. Only the rules the Account API enforces are answered.
    pub fn refusal(&self, outcomes: &[Outcome], rules: &[RuleId]) -> Option<String> {
        rules.iter().find_map(|r| {
            outcomes
                .iter()
                .find(|o| o.rule == *r && o.verdict == Verdict::Fail)
                .and_then(|o| self.message(o))
        })
    }

    fn slot_of(&self, o: &Outcome) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.subject() == o.subject)
    }

    /// The Account API's wording for a failed rule, with the engine's
    /// message for the details. `None` for rules the API does not enforce.
    fn message(&self, o: &Outcome) -> Option<String> {
        let id = self.workspace.workspace.workspace_id;
        let lead = match o.rule {
            RuleId::CompositeKeyId => {
                let slot = self.slot_of(o)?;
                let key = self.requested(slot)?;
                return Some(format!("Invalid customerManagedKeyId: {key}"));
            }
            RuleId::EnterpriseTier => {
                "Customer-managed keys require the ENTERPRISE pricing tier".to_string()
            }
            RuleId::SlotUseCase => {
                let slot = self.slot_of(o)?;
                format!(
                    "The key configuration for {} needs the use case {}",
                    slot.field(),
                    slot.feature()
                )
            }
            RuleId::KeyRegion => "The KMS key must be in the workspace's region".to_string(),
            RuleId::StorageKeyReplacement => {
                "You cannot replace an existing key configuration for workspace storage".to_string()
            }
            RuleId::ClassicComputeRunning => format!("Workspace {id} has classic compute running"),
            RuleId::WorkspaceUpdatable => {
                format!("Workspace {id} cannot be updated in its current state")
            }
            _ => return None,
        };
        Some(format!("{lead}. {}", capitalized(&o.message)))
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Rules of a key configuration the API checks when one is created:
/// use cases (CMK017), a key ARN (CMK018), `key_region` matching it (CMK002).
pub(crate) const ENFORCED_ON_CREATE: [RuleId; 3] = [
    RuleId::UseCasesValid,
    RuleId::KeyArnWellFormed,
    RuleId::KeyRegion,
];

/// The first failed rule among [`ENFORCED_ON_CREATE`], with the API's
/// wording for it. `None` when the configuration may be created.
pub(crate) fn create_refusal(facts: &KeyConfigFacts) -> Option<(RuleId, String)> {
    let outcomes = check_key_configuration(facts);
    ENFORCED_ON_CREATE.iter().find_map(|r| {
        let o = outcomes
            .iter()
            .find(|o| o.rule == *r && o.verdict == Verdict::Fail)?;
        let lead = match r {
            RuleId::UseCasesValid => "Invalid use_cases",
            RuleId::KeyArnWellFormed => "Invalid key_arn",
            _ => "Invalid key_region",
        };
        Some((*r, format!("{lead}: {}", o.message)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN_USE1: &str =
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const ARN_EUW1: &str =
        "arn:aws:kms:eu-west-1:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab";

    fn ws(extra: serde_json::Value) -> SandboxWorkspace {
        let mut w = json!({
            "workspace_id": 7, "workspace_name": "w", "deployment_name": "d",
            "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE",
            "compute_mode": "HYBRID", "workspace_status": "RUNNING",
        });
        for (k, v) in extra.as_object().unwrap() {
            w[k] = v.clone();
        }
        serde_json::from_value(w).unwrap()
    }

    fn key(id: &str, cases: &[&str], arn: &str) -> SeedKey {
        serde_json::from_value(json!({
            "customer_managed_key_id": id, "use_cases": cases,
            "aws_key_info": {"key_arn": arn}
        }))
        .unwrap()
    }

    /// Every rule the API enforces on a key update, in the order the
    /// sandbox answers them.
    const ENFORCED: [RuleId; 7] = [
        RuleId::CompositeKeyId,
        RuleId::EnterpriseTier,
        RuleId::SlotUseCase,
        RuleId::KeyRegion,
        RuleId::StorageKeyReplacement,
        RuleId::WorkspaceUpdatable,
        RuleId::ClassicComputeRunning,
    ];

    fn refusal(
        w: &SandboxWorkspace,
        changes: &[(Slot, String)],
        keys: &[SeedKey],
    ) -> Option<String> {
        let u = KeyUpdate {
            workspace: w,
            changes,
            keys,
        };
        u.refusal(&u.check(), &ENFORCED)
    }

    // Key configuration ids are UUIDs (anything else fails CMK014).
    const ACCT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";
    const MS: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const ST: &str = "aaaaaaaa-0000-4000-8000-000000000002";
    const EU: &str = "aaaaaaaa-0000-4000-8000-000000000003";
    const OLD: &str = "aaaaaaaa-0000-4000-8000-000000000004";

    #[test]
    fn each_enforced_rule_refuses_with_the_api_wording() {
        let keys = [
            key(MS, &["MANAGED_SERVICES"], ARN_USE1),
            key(ST, &["STORAGE"], ARN_USE1),
            key(EU, &["MANAGED_SERVICES", "STORAGE"], ARN_EUW1),
        ];
        let ms = |id: &str| vec![(Slot::ManagedServices, id.to_string())];
        let st = |id: &str| vec![(Slot::Storage, id.to_string())];
        type Case = (SandboxWorkspace, Vec<(Slot, String)>, &'static str);
        let cases: Vec<Case> = vec![
            (ws(json!({})), ms(&format!("{ACCT}/{MS}")), "Invalid customerManagedKeyId: 0d26daa6-5e44-4c97-a497-ef015f91254a/"),
            (
                ws(json!({"pricing_tier": "PREMIUM"})),
                ms(MS),
                "ENTERPRISE pricing tier. Workspace \"w\" has pricing tier PREMIUM",
            ),
            (ws(json!({})), st(MS), "needs the use case STORAGE"),
            (ws(json!({})), ms(EU), "must be in the workspace's region. Managed-services key"),
            (
                ws(json!({"storage_customer_managed_key_id": ST})),
                st(EU),
                // The region rule is answered first, as the API does.
                "must be in the workspace's region",
            ),
            (
                ws(json!({"storage_customer_managed_key_id": OLD})),
                st(ST),
                "You cannot replace an existing key configuration for workspace storage. Workspace \"w\" already has storage key configuration",
            ),
            (
                ws(json!({"classic_compute_running": true})),
                ms(MS),
                "Workspace 7 has classic compute running",
            ),
            (
                ws(json!({"workspace_status": "PROVISIONING"})),
                ms(MS),
                "Workspace 7 cannot be updated in its current state. Workspace \"w\" is PROVISIONING",
            ),
            (
                ws(json!({"workspace_status": "FAILED", "ever_running": true})),
                st(ST),
                "FAILED after having run",
            ),
        ];
        for (w, changes, want) in cases {
            let m = refusal(&w, &changes, &keys).unwrap_or_default();
            assert!(m.contains(want), "{m:?} should say {want:?}");
        }
    }

    #[test]
    fn rules_the_api_does_not_enforce_never_refuse() {
        let keys = [key(ST, &["STORAGE"], ARN_USE1)];
        // Serverless with a storage key that covers cluster volumes (CMK007,
        // CMK008), an old dashboard (CMK011), a storage key on a running
        // workspace (CMK019): all fail in the engine, none is a refusal.
        let w = ws(json!({
            "compute_mode": "SERVERLESS",
            "dashboards": [{"display_name": "Old", "create_time": "2024-01-01T00:00:00Z"}],
        }));
        let changes = [(Slot::Storage, ST.to_string())];
        let u = KeyUpdate {
            workspace: &w,
            changes: &changes,
            keys: &keys,
        };
        let outcomes = u.check();
        for r in [
            RuleId::EbsKeyOnServerless,
            RuleId::StorageKeyOnServerless,
            RuleId::StorageKeyVerify,
        ] {
            assert!(
                outcomes.iter().any(|o| o.rule == r && o.is_failure()),
                "{r} should fail in the engine"
            );
        }
        let all: Vec<RuleId> = crate::rules::RULES.iter().map(|r| r.key).collect();
        assert_eq!(u.refusal(&outcomes, &all), None);
        assert_eq!(u.refusal(&outcomes, &ENFORCED), None);
    }

    #[test]
    fn failed_workspaces_accept_key_updates() {
        const MS_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000011";
        const ST_KEY: &str = "aaaaaaaa-0000-4000-8000-000000000012";
        let keys = [
            key(MS_KEY, &["MANAGED_SERVICES"], ARN_USE1),
            key(ST_KEY, &["STORAGE"], ARN_USE1),
        ];
        let failed = |ran: bool| ws(json!({"workspace_status": "FAILED", "ever_running": ran}));
        let ms = [(Slot::ManagedServices, MS_KEY.to_string())];
        let st = [(Slot::Storage, ST_KEY.to_string())];
        // Classic compute cannot run on a failed workspace; the flag is ignored.
        assert_eq!(refusal(&failed(true), &ms, &keys), None);
        assert_eq!(refusal(&failed(false), &st, &keys), None);
        assert!(refusal(&failed(true), &st, &keys).is_some());
    }

    #[test]
    fn a_slot_left_alone_is_not_checked_again() {
        // The current storage key is in another region; rotating the
        // managed-services key is still allowed.
        let keys = [
            key(MS, &["MANAGED_SERVICES"], ARN_USE1),
            key(EU, &["STORAGE"], ARN_EUW1),
        ];
        let w = ws(json!({"storage_customer_managed_key_id": EU}));
        let changes = [(Slot::ManagedServices, MS.to_string())];
        assert_eq!(refusal(&w, &changes, &keys), None);
    }

    #[test]
    fn create_refuses_what_the_api_refuses() {
        let info = |arn: &str, region: Option<&str>| AwsKeyInfo {
            key_arn: arn.into(),
            key_region: region.map(str::to_string),
            ..Default::default()
        };
        let f = |cases: &[&str], i: &AwsKeyInfo| {
            key_config_facts(None, cases.iter().map(|s| s.to_string()).collect(), i)
        };
        let ok = info(ARN_USE1, None);
        assert_eq!(create_refusal(&f(&["STORAGE"], &ok)), None);
        let (r, m) = create_refusal(&f(&["STORAGES"], &ok)).unwrap();
        assert_eq!(r, RuleId::UseCasesValid);
        assert!(m.starts_with("Invalid use_cases: "), "{m}");
        let (r, _) = create_refusal(&f(&[], &ok)).unwrap();
        assert_eq!(r, RuleId::UseCasesValid);
        let alias = info("arn:aws:kms:us-east-1:123456789012:alias/x", None);
        let (r, m) = create_refusal(&f(&["STORAGE"], &alias)).unwrap();
        assert_eq!(r, RuleId::KeyArnWellFormed);
        assert!(m.starts_with("Invalid key_arn: "), "{m}");
        let (r, _) = create_refusal(&f(&["STORAGE"], &info(ARN_USE1, Some("eu-west-1")))).unwrap();
        assert_eq!(r, RuleId::KeyRegion);
        // reuse_key_for_cluster_volumes without STORAGE (CMK006) is not refused.
        let reuse = AwsKeyInfo {
            reuse_key_for_cluster_volumes: Some(true),
            ..ok.clone()
        };
        assert_eq!(create_refusal(&f(&["MANAGED_SERVICES"], &reuse)), None);
    }
}
