//! Data source `cmk_workspace`: a workspace's facts that the CMK rules read.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::support::{databricks, workspace_at, Clients};
use crate::tfplugin::{Ctx, DataSource, Diagnostics, Val};

/// A Databricks workspace as the customer-managed key rules see it: region, pricing
/// tier, compute and storage mode, status, and the key configurations bound to it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceModel {
    /// The workspace's numeric id.
    #[schemars(extend("x-tf" = ["required"]))]
    pub workspace_id: Val<i64>,
    /// The workspace's name.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_name: Val<String>,
    /// The deployment name (the workspace URL's first label).
    #[schemars(extend("x-tf" = ["computed"]))]
    pub deployment_name: Val<String>,
    /// The AWS region; keys must be in the same region.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub aws_region: Val<String>,
    /// The pricing tier; customer-managed keys need `ENTERPRISE`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub pricing_tier: Val<String>,
    /// `HYBRID` (classic and serverless compute) or `SERVERLESS`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub compute_mode: Val<String>,
    /// `CUSTOMER_HOSTED` or `DEFAULT_STORAGE`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub storage_mode: Val<String>,
    /// The workspace status, e.g. `RUNNING`.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_status: Val<String>,
    /// The key configuration bound for managed services, if any.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub managed_services_key_id: Val<String>,
    /// The key configuration bound for workspace storage, if any.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub storage_key_id: Val<String>,
}

pub struct Workspace;

#[async_trait]
impl DataSource for Workspace {
    type Model = WorkspaceModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_workspace";

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        mut m: WorkspaceModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceModel> {
        let id = *m.workspace_id.known()?;
        let client = databricks(ctx, diags).await?;
        let w = workspace_at(ctx, client, id, diags).await?;
        m.workspace_name = Val::Known(w.workspace_name.clone());
        m.deployment_name = w.deployment_name.clone().into();
        m.aws_region = w.aws_region.clone().into();
        m.pricing_tier = w.pricing_tier.map(|t| t.as_str().to_string()).into();
        m.compute_mode = w.compute_mode.map(|t| t.as_str().to_string()).into();
        m.storage_mode = w.storage_mode.map(|t| t.as_str().to_string()).into();
        m.workspace_status = w.workspace_status.map(|t| t.as_str().to_string()).into();
        m.managed_services_key_id = w.managed_services_customer_managed_key_id.clone().into();
        m.storage_key_id = w.storage_customer_managed_key_id.clone().into();
        Some(m)
    }
}
