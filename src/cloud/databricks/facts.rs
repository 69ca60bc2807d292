//! What the Account API answers, as the rule engine's facts: one mapping,
//! used by every resource and data source that reads live objects.

use super::models::{CustomerManagedKey, Dashboard, Workspace};
use crate::rules::facts::{self, Fact, KeyConfigFacts, WorkspaceFacts};

impl Workspace {
    /// The workspace as facts. The Account API does not say what classic
    /// compute runs or whether interactive results stay in the customer's
    /// account: those stay unknown (Databricks refuses a key change at apply
    /// if compute runs). Dashboards come from the workspace API separately.
    pub fn facts(&self) -> WorkspaceFacts {
        WorkspaceFacts {
            id: Fact::Known(Some(self.workspace_id.to_string())),
            name: Fact::Known(Some(self.workspace_name.clone())),
            region: self.aws_region.clone().into(),
            pricing_tier: self.pricing_tier.into(),
            compute_mode: self.compute_mode.into(),
            storage_mode: Fact::Known(self.storage_mode),
            // An existing workspace always has a status: one this client
            // does not know (decoded leniently as absent) is unknown, not
            // "not created yet".
            status: self
                .workspace_status
                .map_or(Fact::Unknown, |s| Fact::Known(Some(s))),
            managed_services_key_id: Fact::Known(
                self.managed_services_customer_managed_key_id.clone(),
            ),
            storage_key_id: Fact::Known(self.storage_customer_managed_key_id.clone()),
            running_classic_compute: Fact::Unknown,
            dashboards: Fact::Unknown,
            all_results_in_customer_account: Fact::Unknown,
            state: Default::default(),
        }
    }
}

impl CustomerManagedKey {
    pub fn facts(&self) -> KeyConfigFacts {
        let info = self.aws_key_info.as_ref();
        KeyConfigFacts {
            id: Fact::Known(self.customer_managed_key_id.clone()),
            use_cases: Fact::Known(
                self.use_cases
                    .iter()
                    .map(|u| u.as_str().to_string())
                    .collect(),
            ),
            key_arn: info.map(|i| i.key_arn.clone()).into(),
            key_arn_prefix: None,
            key_region: Fact::Known(info.and_then(|i| i.key_region.clone())),
            reuse_key_for_cluster_volumes: Fact::Known(
                info.and_then(|i| i.reuse_key_for_cluster_volumes),
            ),
        }
    }
}

impl Dashboard {
    pub fn fact(self) -> facts::Dashboard {
        facts::Dashboard {
            id: self.dashboard_id,
            name: self.display_name,
            create_time: self.create_time,
        }
    }
}
