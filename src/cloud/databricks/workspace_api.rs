//! Reads of a workspace's own API that the Account API does not offer: the
//! classic compute running in it. Same workspace host and credentials as
//! the dashboards list (`AccountClient::list_dashboards`).
//!
//! Shapes (Databricks REST reference; databricks-sdk-py `compute` and `sql`):
//! - `GET /api/2.1/clusters/list?page_size=&page_token=` answers
//!   `{clusters: [{cluster_id, cluster_name, state, ...}], next_page_token?}`.
//! - `GET /api/2.0/instance-pools/list` answers `{instance_pools:
//!   [{instance_pool_id, instance_pool_name, state, stats: {used_count,
//!   idle_count, pending_used_count, pending_idle_count}}]}` in one page
//!   (`{}` when there is none).
//! - `GET /api/2.0/sql/warehouses` answers `{warehouses: [{id, name, state,
//!   enable_serverless_compute, warehouse_type, ...}], next_page_token?}`.
//!
//! Which entries count as running is decided by [`crate::rules::compute`].

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::client::{AccountClient, ListBounds};
use super::error::DatabricksError;
use crate::rules::compute::{self, PoolCounts};
use crate::rules::facts::RunningCompute;

/// Clusters asked per page (the API's own maximum is larger; the server may
/// answer fewer). Every list is bounded by [`super::client::ListBounds`]:
/// pages, bytes, a repeated page token, and one deadline for all its pages.
const CLUSTER_PAGE_SIZE: usize = 100;

const CLUSTERS: &str = "/api/2.1/clusters/list";
const POOLS: &str = "/api/2.0/instance-pools/list";
const WAREHOUSES: &str = "/api/2.0/sql/warehouses";

#[derive(Deserialize)]
struct ClusterPage {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(default)]
    cluster_id: String,
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct PoolList {
    #[serde(default)]
    instance_pools: Vec<Pool>,
}

#[derive(Deserialize)]
struct Pool {
    #[serde(default)]
    instance_pool_id: String,
    #[serde(default)]
    instance_pool_name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    stats: Option<PoolStats>,
}

#[derive(Deserialize, Default)]
struct PoolStats {
    #[serde(default)]
    used_count: i64,
    #[serde(default)]
    idle_count: i64,
    #[serde(default)]
    pending_used_count: i64,
    #[serde(default)]
    pending_idle_count: i64,
}

impl PoolStats {
    fn counts(&self) -> PoolCounts {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        PoolCounts {
            used: n(self.used_count),
            idle: n(self.idle_count),
            pending_used: n(self.pending_used_count),
            pending_idle: n(self.pending_idle_count),
        }
    }
}

#[derive(Deserialize)]
struct WarehousePage {
    #[serde(default)]
    warehouses: Vec<Warehouse>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Warehouse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    enable_serverless_compute: Option<bool>,
}

impl AccountClient {
    /// The classic compute running in a workspace now: clusters holding
    /// nodes (`PENDING`, `RUNNING`, `RESIZING`, `RESTARTING`), instance pools
    /// holding instances, and classic (not serverless) SQL warehouses that
    /// are `STARTING` or `RUNNING`, read through the workspace's own API
    /// (every page). Clusters first, then pools, then warehouses, each in
    /// the API's order.
    pub async fn running_classic_compute(
        &self,
        deployment_name: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<RunningCompute>, DatabricksError> {
        // One deadline for the three lists and all their pages.
        let deadline = self.deadline();
        let mut out = self
            .running_clusters(deployment_name, deadline, cancel)
            .await?;
        out.extend(
            self.pools_holding_instances(deployment_name, deadline, cancel)
                .await?,
        );
        out.extend(
            self.running_classic_warehouses(deployment_name, deadline, cancel)
                .await?,
        );
        Ok(out)
    }

    async fn running_clusters(
        &self,
        deployment_name: &str,
        deadline: std::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<Vec<RunningCompute>, DatabricksError> {
        let mut bounds = ListBounds::new(
            format!("clusters of workspace {deployment_name}"),
            format!("{}{CLUSTERS}", self.workspace_host(deployment_name)?),
            deadline,
        );
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("page_size", CLUSTER_PAGE_SIZE.to_string())];
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let (page, bytes): (ClusterPage, usize) = self
                .workspace_get(deployment_name, CLUSTERS, query, &bounds, cancel)
                .await?;
            out.extend(page.clusters.iter().filter_map(|c| {
                compute::cluster(&c.cluster_id, c.cluster_name.as_deref(), c.state.as_deref())
            }));
            token = bounds.next(bytes, page.next_page_token)?;
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn pools_holding_instances(
        &self,
        deployment_name: &str,
        deadline: std::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<Vec<RunningCompute>, DatabricksError> {
        let bounds = ListBounds::new(
            format!("instance pools of workspace {deployment_name}"),
            format!("{}{POOLS}", self.workspace_host(deployment_name)?),
            deadline,
        );
        let (list, _): (PoolList, usize) = self
            .workspace_get(deployment_name, POOLS, Vec::new(), &bounds, cancel)
            .await?;
        Ok(list
            .instance_pools
            .iter()
            .filter_map(|p| {
                compute::instance_pool(
                    &p.instance_pool_id,
                    p.instance_pool_name.as_deref(),
                    p.state.as_deref(),
                    p.stats.as_ref().map(PoolStats::counts).unwrap_or_default(),
                )
            })
            .collect())
    }

    async fn running_classic_warehouses(
        &self,
        deployment_name: &str,
        deadline: std::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<Vec<RunningCompute>, DatabricksError> {
        let mut bounds = ListBounds::new(
            format!("SQL warehouses of workspace {deployment_name}"),
            format!("{}{WAREHOUSES}", self.workspace_host(deployment_name)?),
            deadline,
        );
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let query = match &token {
                Some(t) => vec![("page_token", t.clone())],
                None => Vec::new(),
            };
            let (page, bytes): (WarehousePage, usize) = self
                .workspace_get(deployment_name, WAREHOUSES, query, &bounds, cancel)
                .await?;
            out.extend(page.warehouses.iter().filter_map(|w| {
                compute::sql_warehouse(
                    &w.id,
                    w.name.as_deref(),
                    w.state.as_deref(),
                    w.enable_serverless_compute.unwrap_or(false),
                )
            }));
            token = bounds.next(bytes, page.next_page_token)?;
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
