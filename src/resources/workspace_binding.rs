//! Resource `cmk_workspace_binding`: which key configurations protect a
//! workspace. At plan time it reads the live workspace and keys and runs
//! every binding rule.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::support::{api_error, databricks, fact_opt, key_config_id, report, workspace_id};
use crate::cloud::databricks::{AccountClient, Workspace, WorkspaceKeyUpdate};
use crate::provider::Clients;
use crate::rules::facts::{
    BindingChange, KeyConfigFacts, RequestedKey, Requirements, WorkspaceFacts,
};
use crate::rules::{self, DataType, Fact, Severity, Subject};
use crate::tfplugin::{AttributePath, Ctx, Diagnostics, PlanChange, Resource, Val};

/// The customer-managed keys of an existing Databricks workspace. Binding a
/// managed-services key, rotating it, and setting a storage key once are done in
/// place; Databricks cannot replace or remove a storage key, and the plan says so
/// instead of failing at apply. An argument left unset leaves that slot as it is.
/// Destroying the resource stops managing the keys; Databricks keeps them bound.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceBindingModel {
    /// The workspace id, as a string.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub id: Val<String>,
    /// The workspace's numeric id.
    #[schemars(extend("x-tf" = ["required", "requires_replace"]))]
    pub workspace_id: Val<i64>,
    /// The key configuration for managed services (control-plane data): the bare id,
    /// e.g. `cmk_key_configuration.x.customer_managed_key_id`. Can be rotated.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub managed_services_key_id: Val<String>,
    /// The key configuration for workspace storage. Can be set once: Databricks cannot replace it.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub storage_key_id: Val<String>,
    /// Data types that must end up protected by a customer-managed key (canonical
    /// names such as `dbfs_root`, `secrets`, `ai_bi_dashboards`); the plan fails
    /// when the bound keys cannot protect them.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub required_coverage: Val<BTreeSet<String>>,
    /// The workspace's name.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_name: Val<String>,
    /// The workspace's AWS region.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub aws_region: Val<String>,
    /// The workspace's status after the last apply or refresh.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_status: Val<String>,
}

pub struct WorkspaceBinding;

fn path_of(s: Subject) -> Option<AttributePath> {
    let p = |n: &str| Some(AttributePath::new([n]));
    match s {
        Subject::ManagedServicesBinding | Subject::Dashboards => p("managed_services_key_id"),
        Subject::StorageBinding | Subject::ReuseKeyForClusterVolumes => p("storage_key_id"),
        Subject::RequiredCoverage(_) => p("required_coverage"),
        Subject::WorkspacePricingTier
        | Subject::WorkspaceRegion
        | Subject::WorkspaceComputeMode
        | Subject::WorkspaceStatus
        | Subject::RunningClassicCompute => p("workspace_id"),
        _ => None,
    }
}

/// The facts of the key configuration a slot names; a read that fails is an
/// error on that argument (never silence: the plan must not pass unchecked).
async fn key_facts(
    client: &AccountClient,
    id: &Val<String>,
    attr: &str,
    ctx: &Ctx<Clients>,
    diags: &mut Diagnostics,
) -> Option<KeyConfigFacts> {
    let id = key_config_id(id.known()?, attr, diags)?;
    match client.get_customer_managed_key(&id, &ctx.cancel).await {
        Ok(k) => Some(k.facts()),
        Err(e) => {
            diags.error_at(
                AttributePath::new([attr]),
                "Cannot read the key configuration",
                e.to_string(),
            );
            None
        }
    }
}

/// The data types the configuration requires protected.
fn requirements(m: &WorkspaceBindingModel) -> Requirements {
    Requirements {
        data_types: m
            .required_coverage
            .known()
            .into_iter()
            .flatten()
            .filter_map(|n| DataType::parse(n))
            .collect(),
    }
}

fn requested(v: &Val<String>, current: Option<&String>) -> RequestedKey {
    RequestedKey {
        id: fact_opt(v),
        composite_source: None,
        bare_source: None,
        // An id not known yet is a configuration this plan creates.
        created_in_plan: v.is_unknown() && current.is_some(),
    }
}

impl WorkspaceBindingModel {
    fn fill_from(&mut self, w: &Workspace) {
        self.id = Val::Known(w.workspace_id.to_string());
        self.workspace_id = Val::Known(w.workspace_id);
        self.managed_services_key_id = w.managed_services_customer_managed_key_id.clone().into();
        self.storage_key_id = w.storage_customer_managed_key_id.clone().into();
        self.workspace_name = Val::Known(w.workspace_name.clone());
        self.aws_region = w.aws_region.clone().into();
        self.workspace_status = w.workspace_status.map(|s| s.as_str().to_string()).into();
    }
}

#[async_trait]
impl Resource for WorkspaceBinding {
    type Model = WorkspaceBindingModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_workspace_binding";

    fn validate(&self, c: &WorkspaceBindingModel, diags: &mut Diagnostics) {
        if let Val::Known(req) = &c.required_coverage {
            for name in req {
                if DataType::parse(name).is_none() {
                    diags.error_at(
                        AttributePath::new(["required_coverage"]),
                        "Unknown data type",
                        format!(
                            "{name:?} is not a data type; valid data types: {}.",
                            DataType::valid_names()
                        ),
                    );
                }
            }
        }
        // Before any live fact is read, the rule engine can already refuse
        // what the arguments alone make wrong (a composite key id, CMK014; a
        // required data type no key can protect, CMK012). Rules needing live
        // facts answer "cannot tell yet" here and run again at plan.
        let change = BindingChange {
            managed_services: requested(&c.managed_services_key_id, None),
            storage: requested(&c.storage_key_id, None),
        };
        let outcomes: Vec<_> = rules::check_binding(
            &WorkspaceFacts::unknown(),
            &change,
            None,
            None,
            &requirements(c),
        )
        .into_iter()
        .filter(|o| o.severity == Severity::Error)
        .collect();
        report(&outcomes, path_of, diags);
    }

    async fn plan(
        &self,
        ctx: &Ctx<Clients>,
        change: &mut PlanChange<WorkspaceBindingModel>,
        diags: &mut Diagnostics,
    ) {
        let Some(ws_id) = change.config.workspace_id.known().copied() else {
            return;
        };
        let Some(ws_id) = workspace_id(ws_id, diags) else {
            return;
        };
        let Some(client) = databricks(ctx, diags).await else {
            return;
        };
        let w = match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => w,
            Err(e) if e.is_gone() => {
                diags.error_at(
                    AttributePath::new(["workspace_id"]),
                    "Workspace not found",
                    format!("The Databricks account has no workspace {ws_id}."),
                );
                return;
            }
            Err(e) => return api_error(diags, "reading the workspace", &e),
        };
        let mut facts = w.facts();
        let planned = &mut change.planned;
        // Unset arguments leave a slot as it is.
        if change.config.managed_services_key_id.is_null() {
            planned.managed_services_key_id =
                w.managed_services_customer_managed_key_id.clone().into();
        }
        if change.config.storage_key_id.is_null() {
            planned.storage_key_id = w.storage_customer_managed_key_id.clone().into();
        }
        let ms_changes = planned.managed_services_key_id
            != Val::from(w.managed_services_customer_managed_key_id.clone());
        if ms_changes {
            if let Some(dep) = &w.deployment_name {
                match client.list_dashboards(dep, &ctx.cancel).await {
                    Ok(ds) => {
                        facts.dashboards = Fact::Known(ds.into_iter().map(|d| d.fact()).collect())
                    }
                    Err(e) => diags.warning_at(
                        AttributePath::new(["managed_services_key_id"]),
                        "AI/BI dashboards not read",
                        format!("The legacy-dashboard check (CMK011) could not run: {e}"),
                    ),
                }
            }
        }
        let binding = BindingChange {
            managed_services: requested(
                &planned.managed_services_key_id,
                w.managed_services_customer_managed_key_id.as_ref(),
            ),
            storage: requested(
                &planned.storage_key_id,
                w.storage_customer_managed_key_id.as_ref(),
            ),
        };
        let ms = key_facts(
            client,
            &planned.managed_services_key_id,
            "managed_services_key_id",
            ctx,
            diags,
        )
        .await;
        let st = key_facts(
            client,
            &planned.storage_key_id,
            "storage_key_id",
            ctx,
            diags,
        )
        .await;
        let required = requirements(planned);
        let outcomes = rules::check_binding(&facts, &binding, ms.as_ref(), st.as_ref(), &required);
        report(&outcomes, path_of, diags);

        planned.id = Val::Known(ws_id.to_string());
        planned.workspace_name = Val::Known(w.workspace_name.clone());
        planned.aws_region = w.aws_region.clone().into();
        let st_changes =
            planned.storage_key_id != Val::from(w.storage_customer_managed_key_id.clone());
        planned.workspace_status = if ms_changes || st_changes {
            Val::Unknown
        } else {
            w.workspace_status.map(|s| s.as_str().to_string()).into()
        };
    }

    async fn create(
        &self,
        ctx: &Ctx<Clients>,
        planned: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        apply(ctx, planned, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        mut state: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        let Some(ws_id) = workspace_id(*state.workspace_id.known()?, diags) else {
            return Some(state);
        };
        let Some(client) = databricks(ctx, diags).await else {
            return Some(state);
        };
        match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => {
                state.fill_from(&w);
                Some(state)
            }
            Err(e) if e.is_gone() => {
                diags.warning(
                    "Workspace deleted outside Terraform",
                    format!(
                        "Workspace {ws_id} no longer exists; its binding is removed from state."
                    ),
                );
                None
            }
            Err(e) => {
                api_error(diags, "reading the workspace", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<Clients>,
        _prior: WorkspaceBindingModel,
        planned: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        apply(ctx, planned, diags).await
    }

    async fn delete(
        &self,
        _ctx: &Ctx<Clients>,
        prior: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) {
        diags.warning(
            "Keys stay bound to the workspace",
            format!(
                "Terraform no longer manages the keys of workspace {}, but Databricks keeps them bound: a workspace's keys cannot be removed.",
                prior.workspace_id.known().map(|i| i.to_string()).unwrap_or_default()
            ),
        );
    }

    async fn import(
        &self,
        ctx: &Ctx<Clients>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        let ws_id = match crate::rules::ids::WorkspaceId::parse(id) {
            Ok(w) => w,
            Err(e) => {
                diags.error(
                    "Invalid import id",
                    format!("{e}: import with the numeric workspace id."),
                );
                return None;
            }
        };
        let mut m = WorkspaceBindingModel {
            id: Val::Null,
            workspace_id: Val::Known(ws_id.get()),
            managed_services_key_id: Val::Null,
            storage_key_id: Val::Null,
            required_coverage: Val::Null,
            workspace_name: Val::Null,
            aws_region: Val::Null,
            workspace_status: Val::Null,
        };
        let client = databricks(ctx, diags).await?;
        match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => {
                m.fill_from(&w);
                Some(m)
            }
            Err(e) => {
                api_error(diags, &format!("importing workspace {ws_id}"), &e);
                None
            }
        }
    }
}

/// Sends only the slots that change, waits until the workspace is RUNNING
/// again and checks the change took (Databricks may revert a storage key silently).
async fn apply(
    ctx: &Ctx<Clients>,
    mut planned: WorkspaceBindingModel,
    diags: &mut Diagnostics,
) -> Option<WorkspaceBindingModel> {
    let ws_id = workspace_id(*planned.workspace_id.known()?, diags)?;
    let client = databricks(ctx, diags).await?;
    let current = match client.get_workspace(ws_id, &ctx.cancel).await {
        Ok(w) => w,
        Err(e) => {
            api_error(diags, "reading the workspace", &e);
            return None;
        }
    };
    let differs = |want: &Val<String>, have: &Option<String>| {
        want.known().filter(|w| Some(*w) != have.as_ref()).cloned()
    };
    let update = WorkspaceKeyUpdate {
        managed_services_customer_managed_key_id: differs(
            &planned.managed_services_key_id,
            &current.managed_services_customer_managed_key_id,
        ),
        storage_customer_managed_key_id: differs(
            &planned.storage_key_id,
            &current.storage_customer_managed_key_id,
        ),
    };
    let w = if update.mask().is_empty() {
        current
    } else {
        match client
            .update_workspace_keys(ws_id, &update, &ctx.cancel)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                api_error(
                    diags,
                    &format!("updating the keys of workspace {ws_id}"),
                    &e,
                );
                // Track what is bound now, so nothing is lost.
                let now = client
                    .get_workspace(ws_id, &ctx.cancel)
                    .await
                    .unwrap_or(current);
                planned.fill_from(&now);
                return Some(planned);
            }
        }
    };
    planned.fill_from(&w);
    Some(planned)
}
