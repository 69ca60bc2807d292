//! Which classic compute of a workspace counts as running, from the states
//! the workspace APIs answer. Databricks refuses a key update on a running
//! workspace while classic compute holds nodes ("Before a running
//! workspace's keys are updated, all classic compute must be stopped
//! (clusters, pools, classic SQL warehouses)"); CMK010 reads the list built
//! from these answers. Pure: the client and the sandbox both ask here.

use super::facts::{ComputeKind, RunningCompute};

/// Cluster states (Clusters API `State`) in which a cluster holds nodes.
pub const CLUSTER_STATES_HOLDING_NODES: &[&str] = &["PENDING", "RUNNING", "RESIZING", "RESTARTING"];
/// The other cluster states the API documents.
pub const CLUSTER_STATES_WITHOUT_NODES: &[&str] =
    &["TERMINATING", "TERMINATED", "ERROR", "UNKNOWN"];

/// SQL warehouse states (SQL Warehouses API `State`) in which a warehouse
/// holds nodes.
pub const WAREHOUSE_STATES_HOLDING_NODES: &[&str] = &["STARTING", "RUNNING"];
/// The other warehouse states the API documents.
pub const WAREHOUSE_STATES_WITHOUT_NODES: &[&str] = &["STOPPING", "STOPPED", "DELETING", "DELETED"];

/// The instance counts of a pool (Instance Pools API `InstancePoolStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub used: u64,
    pub idle: u64,
    pub pending_used: u64,
    pub pending_idle: u64,
}

impl PoolCounts {
    pub fn total(&self) -> u64 {
        self.used
            .saturating_add(self.idle)
            .saturating_add(self.pending_used)
            .saturating_add(self.pending_idle)
    }
}

/// A display name: the name, else the id, else a placeholder.
fn display(name: Option<&str>, id: &str, kind: ComputeKind) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None if !id.trim().is_empty() => id.to_string(),
        None => format!("unnamed {kind}"),
    }
}

/// A cluster counts while it holds nodes. A state this code does not know
/// (a newer API) counts too: it cannot be shown to hold none.
pub fn cluster(id: &str, name: Option<&str>, state: Option<&str>) -> Option<RunningCompute> {
    // No state at all, or one not documented: nothing says it is stopped.
    let holds = state.is_none_or(|s| !CLUSTER_STATES_WITHOUT_NODES.contains(&s));
    holds.then(|| RunningCompute {
        kind: ComputeKind::Cluster,
        name: display(name, id, ComputeKind::Cluster),
    })
}

/// A pool counts while it holds instances (idle, used or pending). A
/// deleted pool holds none.
pub fn instance_pool(
    id: &str,
    name: Option<&str>,
    state: Option<&str>,
    counts: PoolCounts,
) -> Option<RunningCompute> {
    (state != Some("DELETED") && counts.total() > 0).then(|| RunningCompute {
        kind: ComputeKind::InstancePool,
        name: display(name, id, ComputeKind::InstancePool),
    })
}

/// A SQL warehouse counts when it is classic (not serverless: serverless
/// warehouses run in Databricks' account, not in the workspace's classic
/// compute plane) and starting or running. A state this code does not know
/// counts too.
pub fn sql_warehouse(
    id: &str,
    name: Option<&str>,
    state: Option<&str>,
    serverless: bool,
) -> Option<RunningCompute> {
    if serverless {
        return None;
    }
    let holds = state.is_none_or(|s| !WAREHOUSE_STATES_WITHOUT_NODES.contains(&s));
    holds.then(|| RunningCompute {
        kind: ComputeKind::ClassicSqlWarehouse,
        name: display(name, id, ComputeKind::ClassicSqlWarehouse),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_count_while_they_hold_nodes() {
        for s in CLUSTER_STATES_HOLDING_NODES {
            let c = cluster("0101-x", Some("etl"), Some(s)).unwrap();
            assert_eq!((c.kind, c.name.as_str()), (ComputeKind::Cluster, "etl"));
        }
        for s in CLUSTER_STATES_WITHOUT_NODES {
            assert_eq!(cluster("0101-x", Some("etl"), Some(s)), None, "{s}");
        }
        // Unknown or missing state: cannot be shown stopped.
        assert!(cluster("0101-x", None, Some("HIBERNATING")).is_some());
        assert_eq!(cluster("0101-x", None, None).unwrap().name, "0101-x");
        assert_eq!(
            cluster("", Some(" "), None).unwrap().name,
            "unnamed cluster"
        );
    }

    #[test]
    fn pools_count_while_they_hold_instances() {
        let none = PoolCounts::default();
        let idle = PoolCounts { idle: 2, ..none };
        let pending = PoolCounts {
            pending_used: 1,
            ..none
        };
        assert_eq!(instance_pool("p", Some("pool"), Some("ACTIVE"), none), None);
        assert_eq!(
            instance_pool("p", Some("pool"), Some("ACTIVE"), idle)
                .unwrap()
                .kind,
            ComputeKind::InstancePool
        );
        assert!(instance_pool("p", None, None, pending).is_some());
        assert_eq!(instance_pool("p", None, Some("DELETED"), idle), None);
        let huge = PoolCounts {
            used: u64::MAX,
            idle: u64::MAX,
            ..none
        };
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn only_classic_warehouses_that_start_or_run_count() {
        for s in WAREHOUSE_STATES_HOLDING_NODES {
            let w = sql_warehouse("abc", Some("bi"), Some(s), false).unwrap();
            assert_eq!(w.kind, ComputeKind::ClassicSqlWarehouse);
            assert_eq!(sql_warehouse("abc", Some("bi"), Some(s), true), None);
        }
        for s in WAREHOUSE_STATES_WITHOUT_NODES {
            assert_eq!(sql_warehouse("abc", Some("bi"), Some(s), false), None);
        }
    }
}
