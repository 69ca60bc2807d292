//! The read snapshot: within one provider process, reads of key
//! configurations and workspaces are served from one list call each, and a
//! workspace's AI/BI dashboards are listed once.
//!
//! Terraform refreshes every object of a plan with its own read; with one GET
//! each, a plan of 1,000 key configurations and 100 bindings costs over a
//! thousand Account API requests (over a minute at the default client limit
//! of 15 requests/s). The Account API lists key configurations and
//! workspaces as bare arrays, in one answer each, with the same objects a GET
//! returns (Databricks' API reference), so one list serves them all.
//!
//! What keeps it correct:
//! - **taken at first need**, by the first read of its kind; concurrent reads
//!   wait for that one list instead of sending their own;
//! - **bounded in age** ([`DEFAULT_MAX_AGE`]): an older snapshot is listed
//!   again at the next read;
//! - **a GET for an id the snapshot lacks** (created since, or by someone
//!   else), so an object is never reported missing on the snapshot's word;
//! - **invalidated by any write** of its kind this process makes (create,
//!   delete, key update): the snapshot is dropped and, for the rest of the
//!   process, that kind is read with a GET per object. A process that writes
//!   is applying: its reads follow its own writes (a workspace polled until
//!   its new keys show), and listing again after each write would cost more
//!   than the GETs it saves;
//! - **a failed list** (permissions, faults) turns the snapshot off for the
//!   process; reads go on with GETs, which report their own errors.
//!
//! Plans write nothing, so a plan's refresh, import and plan-time rule reads
//! all come from the lists.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::error::DatabricksError;
use super::models::{CustomerManagedKey, Dashboard, Workspace};

/// How long a snapshot serves reads before it is listed again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

enum State<K, V> {
    /// Not listed yet (or listed too long ago).
    Empty,
    Taken {
        at: Instant,
        objects: HashMap<K, V>,
    },
    /// Written to, or the list failed: every read is a GET from now on.
    Off,
}

/// One kind of object, listed once.
struct Table<K, V> {
    kind: &'static str,
    state: Mutex<State<K, V>>,
}

impl<K: Eq + Hash + Clone + std::fmt::Display, V: Clone> Table<K, V> {
    fn new(kind: &'static str) -> Self {
        Table {
            kind,
            state: Mutex::new(State::Empty),
        }
    }

    /// The object from the snapshot, listing first if needed; `None` means
    /// "read it with a GET" (not in the snapshot, or the snapshot is off).
    async fn get<F, Fut>(&self, id: &K, max_age: Duration, key: fn(&V) -> K, list: F) -> Option<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<V>, DatabricksError>>,
    {
        // Held across the list: concurrent readers wait for this one list.
        let mut state = self.state.lock().await;
        if let State::Taken { at, .. } = &*state {
            if at.elapsed() > max_age {
                tracing::debug!(kind = self.kind, "read snapshot expired; listing again");
                *state = State::Empty;
            }
        }
        if let State::Empty = &*state {
            let started = Instant::now();
            match list().await {
                Ok(all) => {
                    tracing::debug!(
                        kind = self.kind,
                        objects = all.len(),
                        duration_ms = started.elapsed().as_millis() as u64,
                        "read snapshot taken"
                    );
                    let objects = all.into_iter().map(|v| (key(&v), v)).collect();
                    *state = State::Taken {
                        at: Instant::now(),
                        objects,
                    };
                }
                Err(e) => {
                    tracing::debug!(kind = self.kind, error = %e, "listing failed; reading each object with a GET");
                    *state = State::Off;
                }
            }
        }
        match &*state {
            State::Taken { objects, .. } => {
                let hit = objects.get(id).cloned();
                if hit.is_none() {
                    tracing::trace!(kind = self.kind, %id, "not in the read snapshot; reading it with a GET");
                }
                hit
            }
            _ => None,
        }
    }

    /// A write of this kind: drop the snapshot, read with GETs from now on.
    async fn wrote(&self, id: &K) {
        let mut state = self.state.lock().await;
        if !matches!(*state, State::Off) {
            tracing::debug!(kind = self.kind, %id, "written: the read snapshot is dropped, reads go to GETs");
        }
        *state = State::Off;
    }
}

/// The snapshot of one client (one provider process).
pub(super) struct ReadSnapshot {
    max_age: Duration,
    keys: Table<String, CustomerManagedKey>,
    workspaces: Table<i64, Workspace>,
    /// Per deployment name: the dashboards, listed once.
    dashboards: std::sync::Mutex<HashMap<String, DashboardSlot>>,
}

type DashboardSlot = Arc<Mutex<Option<(Instant, Vec<Dashboard>)>>>;

impl ReadSnapshot {
    pub(super) fn new(max_age: Duration) -> Self {
        ReadSnapshot {
            max_age,
            keys: Table::new("key configurations"),
            workspaces: Table::new("workspaces"),
            dashboards: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(super) async fn key<F, Fut>(&self, id: &str, list: F) -> Option<CustomerManagedKey>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<CustomerManagedKey>, DatabricksError>>,
    {
        self.keys
            .get(
                &id.to_string(),
                self.max_age,
                |k| k.customer_managed_key_id.clone(),
                list,
            )
            .await
    }

    pub(super) async fn workspace<F, Fut>(&self, id: i64, list: F) -> Option<Workspace>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Workspace>, DatabricksError>>,
    {
        self.workspaces
            .get(&id, self.max_age, |w| w.workspace_id, list)
            .await
    }

    pub(super) async fn wrote_key(&self, id: &str) {
        self.keys.wrote(&id.to_string()).await
    }

    pub(super) async fn wrote_workspace(&self, id: i64) {
        self.workspaces.wrote(&id).await
    }

    /// The dashboards of a workspace, listed at most once per `max_age`; a
    /// failed list is not kept (the next read lists again).
    pub(super) async fn dashboards<F, Fut>(
        &self,
        deployment_name: &str,
        list: F,
    ) -> Result<Vec<Dashboard>, DatabricksError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Dashboard>, DatabricksError>>,
    {
        let slot = {
            let mut all = self.dashboards.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(deployment_name.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some((at, d)) = &*slot {
            if at.elapsed() <= self.max_age {
                return Ok(d.clone());
            }
        }
        let d = list().await?;
        *slot = Some((Instant::now(), d.clone()));
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ws(id: i64, name: &str) -> Workspace {
        serde_json::from_value(serde_json::json!({"workspace_id": id, "workspace_name": name}))
            .unwrap()
    }

    #[tokio::test]
    async fn one_list_serves_concurrent_reads_then_writes_turn_it_off() {
        let s = Arc::new(ReadSnapshot::new(Duration::from_secs(60)));
        let lists = Arc::new(AtomicU32::new(0));
        let mut tasks = vec![];
        for id in 1..=20i64 {
            let (s, lists) = (s.clone(), lists.clone());
            tasks.push(tokio::spawn(async move {
                s.workspace(id % 4, || async {
                    lists.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(vec![ws(1, "a"), ws(2, "b"), ws(3, "c")])
                })
                .await
            }));
        }
        let mut hits = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                hits += 1;
            }
        }
        assert_eq!(lists.load(Ordering::SeqCst), 1, "one list for 20 reads");
        assert_eq!(hits, 15, "ids 1..3 are served; id 0 is left to a GET");
        s.wrote_workspace(2).await;
        let after = s
            .workspace(1, || async {
                lists.fetch_add(1, Ordering::SeqCst);
                Ok(vec![ws(1, "a")])
            })
            .await;
        assert!(after.is_none(), "after a write, reads are GETs");
        assert_eq!(
            lists.load(Ordering::SeqCst),
            1,
            "and nothing is listed again"
        );
    }

    #[tokio::test]
    async fn an_old_snapshot_is_listed_again_and_a_failed_list_turns_it_off() {
        let s = ReadSnapshot::new(Duration::from_millis(30));
        let name = |v: Option<Workspace>| v.map(|w| w.workspace_name);
        let first = s.workspace(1, || async { Ok(vec![ws(1, "old")]) }).await;
        assert_eq!(name(first).as_deref(), Some("old"));
        let cached = s.workspace(1, || async { Ok(vec![ws(1, "new")]) }).await;
        assert_eq!(name(cached).as_deref(), Some("old"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fresh = s.workspace(1, || async { Ok(vec![ws(1, "new")]) }).await;
        assert_eq!(name(fresh).as_deref(), Some("new"));

        let k = ReadSnapshot::new(Duration::from_secs(60));
        let failed = k
            .key("x", || async {
                Err(DatabricksError::Config("listing is not allowed".into()))
            })
            .await;
        assert!(failed.is_none());
        let never = k
            .key("x", || async { panic!("a failed list is not retried") })
            .await;
        assert!(never.is_none());
    }

    #[tokio::test]
    async fn dashboards_are_listed_once_per_workspace() {
        let s = ReadSnapshot::new(Duration::from_secs(60));
        let lists = AtomicU32::new(0);
        for dep in ["a", "b", "a", "b", "a"] {
            s.dashboards(dep, || async {
                lists.fetch_add(1, Ordering::SeqCst);
                Ok(vec![])
            })
            .await
            .unwrap();
        }
        assert_eq!(lists.load(Ordering::SeqCst), 2);
    }
}
