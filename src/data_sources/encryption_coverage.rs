//! Data source `cmk_encryption_coverage`: which kinds of data a workspace's
//! customer-managed keys protect, from live facts and the rule engine.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::rules::coverage::{coverage, PlannedKeys, Protection};
use crate::rules::facts::{BindingChange, RequestedKey};
use crate::rules::Fact;
use crate::support::{databricks, workspace_at, Clients};
use crate::tfplugin::{Ctx, DataSource, Diagnostics, Val};

/// One data type's protection.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CoverageEntry {
    /// The canonical data type name, e.g. `dbfs_root`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub data_type: Val<String>,
    /// `protected`, `partly_protected`, `not_protected`, or `cannot_tell_yet`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub protection: Val<String>,
    /// Why, naming the keys and facts involved.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub reason: Val<String>,
    /// The rule behind the answer (`CMKxxx`).
    #[schemars(extend("x-tf" = ["computed"]))]
    pub rule: Val<String>,
}

/// Which kinds of Databricks data the customer-managed keys bound to a workspace
/// protect now: every data type of Databricks' table, as protected, partly protected
/// (e.g. AI/BI dashboards created before 2024-11-01) or not protected, with the reason.
/// Reads the workspace, its keys and its dashboards.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EncryptionCoverageModel {
    /// The workspace's numeric id.
    #[schemars(extend("x-tf" = ["required"]))]
    pub workspace_id: Val<i64>,
    /// Whether the workspace stores all interactive notebook results in your account
    /// (a workspace setting the Account API does not report). Unset: cannot tell for
    /// `interactive_notebook_results`.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub all_results_in_customer_account: Val<bool>,
    /// Every data type with its protection.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub data_types: Val<Vec<CoverageEntry>>,
    /// The data types fully protected.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub protected: Val<BTreeSet<String>>,
    /// The data types not (or only partly) protected.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub not_protected: Val<BTreeSet<String>>,
}

pub struct EncryptionCoverage;

fn protection_name(p: Protection) -> &'static str {
    match p {
        Protection::Protected => "protected",
        Protection::PartlyProtected => "partly_protected",
        Protection::NotProtected => "not_protected",
        Protection::CannotTellYet => "cannot_tell_yet",
        Protection::NeedsState => "needs_state",
    }
}

#[async_trait]
impl DataSource for EncryptionCoverage {
    type Model = EncryptionCoverageModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_encryption_coverage";

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        mut m: EncryptionCoverageModel,
        diags: &mut Diagnostics,
    ) -> Option<EncryptionCoverageModel> {
        let ws_id = *m.workspace_id.known()?;
        let client = databricks(ctx, diags).await?;
        let w = workspace_at(ctx, client, ws_id, diags).await?;
        let mut facts = w.facts();
        facts.all_results_in_customer_account =
            m.all_results_in_customer_account.known().copied().into();
        if let Some(dep) = &w.deployment_name {
            match client.list_dashboards(dep, &ctx.cancel).await {
                Ok(ds) => {
                    facts.dashboards = Fact::Known(ds.into_iter().map(|d| d.fact()).collect())
                }
                Err(e) => diags.warning(
                    "AI/BI dashboards not read",
                    format!("ai_bi_dashboards coverage cannot tell: {e}"),
                ),
            }
        }
        let storage = match &w.storage_customer_managed_key_id {
            Some(id) => match crate::rules::ids::KeyConfigId::parse(id) {
                Ok(id) => match client.get_customer_managed_key(&id, &ctx.cancel).await {
                    Ok(k) => Some(k.facts()),
                    Err(e) => {
                        diags.warning("Storage key configuration not read", e.to_string());
                        None
                    }
                },
                Err(e) => {
                    diags.warning("Storage key configuration not read", e.0);
                    None
                }
            },
            None => None,
        };
        let bound = |id: &Option<String>| match id {
            Some(id) => RequestedKey::id(id),
            None => RequestedKey::none(),
        };
        let change = BindingChange {
            managed_services: bound(&w.managed_services_customer_managed_key_id),
            storage: bound(&w.storage_customer_managed_key_id),
        };
        let cov = coverage(
            &facts,
            &PlannedKeys::from_binding(&change, storage.as_ref()),
        );
        let name = |p| protection_name(p).to_string();
        m.protected = Val::Known(
            cov.iter()
                .filter(|c| c.protection == Protection::Protected)
                .map(|c| c.data_type.name().to_string())
                .collect(),
        );
        m.not_protected = Val::Known(
            cov.iter()
                .filter(|c| {
                    matches!(
                        c.protection,
                        Protection::NotProtected | Protection::PartlyProtected
                    )
                })
                .map(|c| c.data_type.name().to_string())
                .collect(),
        );
        m.data_types = Val::Known(
            cov.into_iter()
                .map(|c| CoverageEntry {
                    data_type: Val::Known(c.data_type.name().to_string()),
                    protection: Val::Known(name(c.protection)),
                    reason: Val::Known(c.reason),
                    rule: Val::Known(c.rule.code().to_string()),
                })
                .collect(),
        );
        Some(m)
    }
}
