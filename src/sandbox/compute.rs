//! The classic compute of a sandbox workspace: clusters, instance pools and
//! SQL warehouses as seeded, served by the workspace's own API in the real
//! shapes, and read by the rules (CMK010) through the same classification
//! the client uses (`crate::rules::compute`).
//!
//! The older seed flag `classic_compute_running` still works: while it is
//! set, the workspace serves one more cluster, `sandbox-classic-compute`,
//! in state `RUNNING`.

use serde_json::{json, Value};

use super::world::{SandboxError, SandboxWorkspace, SeedPoolStats};
use crate::rules::compute::{
    self, PoolCounts, CLUSTER_STATES_HOLDING_NODES, CLUSTER_STATES_WITHOUT_NODES,
    WAREHOUSE_STATES_HOLDING_NODES, WAREHOUSE_STATES_WITHOUT_NODES,
};
use crate::rules::facts::RunningCompute;

/// Name and id of the cluster the `classic_compute_running` flag stands for.
pub const SIMULATED_CLUSTER: &str = "sandbox-classic-compute";

fn check_state(ws: i64, what: &str, state: &str, allowed: &[&[&str]]) -> Result<(), SandboxError> {
    if allowed.iter().any(|l| l.contains(&state)) {
        return Ok(());
    }
    let all: Vec<&str> = allowed.iter().flat_map(|l| l.iter().copied()).collect();
    Err(SandboxError::Seed(format!(
        "workspace {ws}: {what} has state {state:?}; use one of {}",
        all.join(", ")
    )))
}

fn random_lower(n: usize) -> String {
    (0..n).map(|_| fastrand::lowercase()).collect()
}

/// Fills the ids the seed left out and checks the states.
pub(crate) fn normalize(w: &mut SandboxWorkspace) -> Result<(), SandboxError> {
    let ws = w.workspace.workspace_id;
    for c in &mut w.clusters {
        check_state(
            ws,
            &format!("cluster {:?}", c.cluster_name),
            &c.state,
            &[CLUSTER_STATES_HOLDING_NODES, CLUSTER_STATES_WITHOUT_NODES],
        )?;
        c.cluster_id.get_or_insert_with(|| {
            format!(
                "{:04}-{:06}-{}",
                fastrand::u32(101..1231),
                fastrand::u32(0..240000),
                random_lower(8)
            )
        });
    }
    for p in &mut w.instance_pools {
        check_state(
            ws,
            &format!("instance pool {:?}", p.instance_pool_name),
            &p.state,
            &[&["ACTIVE", "STOPPED", "DELETED"]],
        )?;
        p.instance_pool_id.get_or_insert_with(|| {
            format!(
                "{:04}-{:06}-pool-{}",
                fastrand::u32(101..1231),
                fastrand::u32(0..240000),
                random_lower(8)
            )
        });
    }
    for h in &mut w.sql_warehouses {
        check_state(
            ws,
            &format!("SQL warehouse {:?}", h.name),
            &h.state,
            &[
                WAREHOUSE_STATES_HOLDING_NODES,
                WAREHOUSE_STATES_WITHOUT_NODES,
            ],
        )?;
        h.id.get_or_insert_with(|| format!("{:016x}", fastrand::u64(..)));
    }
    Ok(())
}

/// The clusters the workspace's API lists, in its shape.
pub(crate) fn clusters_view(w: &SandboxWorkspace) -> Vec<Value> {
    let mut out: Vec<Value> = w
        .clusters
        .iter()
        .map(|c| {
            json!({
                "cluster_id": c.cluster_id.clone().unwrap_or_default(),
                "cluster_name": c.cluster_name,
                "state": c.state,
                "cluster_source": "UI",
            })
        })
        .collect();
    if w.classic_compute_running {
        out.push(json!({
            "cluster_id": SIMULATED_CLUSTER,
            "cluster_name": SIMULATED_CLUSTER,
            "state": "RUNNING",
            "cluster_source": "UI",
        }));
    }
    out
}

/// The instance pools the workspace's API lists, in its shape.
pub(crate) fn pools_view(w: &SandboxWorkspace) -> Vec<Value> {
    w.instance_pools
        .iter()
        .map(|p| {
            json!({
                "instance_pool_id": p.instance_pool_id.clone().unwrap_or_default(),
                "instance_pool_name": p.instance_pool_name,
                "state": p.state,
                "stats": p.stats,
            })
        })
        .collect()
}

/// The SQL warehouses the workspace's API lists, in its shape.
pub(crate) fn warehouses_view(w: &SandboxWorkspace) -> Vec<Value> {
    w.sql_warehouses
        .iter()
        .map(|h| {
            let mut v = json!({
                "id": h.id.clone().unwrap_or_default(),
                "name": h.name,
                "state": h.state,
                "enable_serverless_compute": h.enable_serverless_compute,
            });
            if let Some(t) = &h.warehouse_type {
                v["warehouse_type"] = json!(t);
            }
            v
        })
        .collect()
}

/// The classic compute running in the workspace, as the rules see it: the
/// same classification of the same entries the workspace's API serves.
pub(crate) fn running(w: &SandboxWorkspace) -> Vec<RunningCompute> {
    let mut out: Vec<RunningCompute> = w
        .clusters
        .iter()
        .filter_map(|c| {
            compute::cluster(
                c.cluster_id.as_deref().unwrap_or_default(),
                Some(&c.cluster_name),
                Some(&c.state),
            )
        })
        .collect();
    if w.classic_compute_running {
        out.extend(compute::cluster(
            SIMULATED_CLUSTER,
            Some(SIMULATED_CLUSTER),
            Some("RUNNING"),
        ));
    }
    out.extend(w.instance_pools.iter().filter_map(|p| {
        compute::instance_pool(
            p.instance_pool_id.as_deref().unwrap_or_default(),
            Some(&p.instance_pool_name),
            Some(&p.state),
            PoolCounts {
                used: p.stats.used_count,
                idle: p.stats.idle_count,
                pending_used: p.stats.pending_used_count,
                pending_idle: p.stats.pending_idle_count,
            },
        )
    }));
    out.extend(w.sql_warehouses.iter().filter_map(|h| {
        compute::sql_warehouse(
            h.id.as_deref().unwrap_or_default(),
            Some(&h.name),
            Some(&h.state),
            h.enable_serverless_compute,
        )
    }));
    out
}

/// Stops every piece of classic compute (admin call with `running: false`):
/// clusters terminate, pools release their instances, classic warehouses
/// stop. Serverless warehouses are left alone.
pub(crate) fn stop_all(w: &mut SandboxWorkspace) {
    w.classic_compute_running = false;
    for c in &mut w.clusters {
        if !CLUSTER_STATES_WITHOUT_NODES.contains(&c.state.as_str()) {
            c.state = "TERMINATED".into();
        }
    }
    for p in &mut w.instance_pools {
        p.stats = SeedPoolStats::default();
    }
    for h in &mut w.sql_warehouses {
        if !h.enable_serverless_compute
            && !WAREHOUSE_STATES_WITHOUT_NODES.contains(&h.state.as_str())
        {
            h.state = "STOPPED".into();
        }
    }
}
