//! The sandbox's world: the accounts, their key configurations and
//! workspaces as seeded and as changed, the fault settings, how the world
//! is read from and written to its state file, and the views the API
//! answers with. Imports no other module of the sandbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cloud::databricks::{CustomerManagedKey, Dashboard, Workspace};

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid seed/state file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid seed: {0}")]
    Seed(String),
    #[error("the state file {path} is not a valid sandbox world: {message}; move it away to start from the seed")]
    State { path: PathBuf, message: String },
    #[error("the state file {path} was not made from this seed ({why}): starting would keep the world saved there and ignore the seed. Start with --reset-state to discard the saved world and start from the seed, or give the seed that made it")]
    SeedChanged { path: PathBuf, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An OAuth machine-to-machine client of an account.
#[derive(Clone, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A dashboard as seeded (id and time may be left out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedDashboard {
    #[serde(default)]
    pub dashboard_id: Option<String>,
    pub display_name: String,
    /// RFC 3339; now when left out.
    #[serde(default)]
    pub create_time: Option<String>,
}

/// A workspace of the sandbox: the API's fields plus what the sandbox
/// simulates behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxWorkspace {
    #[serde(flatten)]
    pub workspace: Workspace,
    /// Clusters, pools or classic SQL warehouses are running (served as one
    /// running cluster `sandbox-classic-compute`, besides the lists below).
    #[serde(default)]
    pub classic_compute_running: bool,
    /// Served by `GET /api/2.1/clusters/list` of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<SeedCluster>,
    /// Served by `GET /api/2.0/instance-pools/list` of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_pools: Vec<SeedPool>,
    /// Served by `GET /api/2.0/sql/warehouses` of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql_warehouses: Vec<SeedWarehouse>,
    #[serde(default)]
    pub dashboards: Vec<SeedDashboard>,
    /// The next key update will be reverted silently (admin call).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revert_next_update: bool,
    /// Personal access tokens issued by this workspace: valid on its own
    /// API only (Databricks: a personal access token works for one workspace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// With a customer-managed VPC (`network_id` set), a key update keeps the
    /// status RUNNING and the new ids appear after this many reads of the
    /// workspace (the SDKs' documentation of the workspace update).
    #[serde(default = "default_key_update_reads")]
    pub key_update_reads: u32,
    /// What every key update of this workspace ends in.
    #[serde(default, skip_serializing_if = "KeyUpdateOutcome::is_applied")]
    pub key_update_outcome: KeyUpdateOutcome,
    /// Whether the workspace was ever RUNNING (a FAILED workspace that never
    /// ran accepts a storage key); filled from the status when seeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ever_running: Option<bool>,
    /// A key update being applied behind a RUNNING status (customer-managed VPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<PendingKeyUpdate>,
}

fn default_key_update_reads() -> u32 {
    3
}

/// How the sandbox ends a key update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUpdateOutcome {
    /// The new ids take.
    #[default]
    Applied,
    /// The workspace ends RUNNING with its old ids (Databricks reverts a
    /// failed update silently).
    Reverted,
}

impl KeyUpdateOutcome {
    fn is_applied(&self) -> bool {
        *self == KeyUpdateOutcome::Applied
    }
}

/// A key update in progress on a workspace with a customer-managed VPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingKeyUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_services_customer_managed_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_customer_managed_key_id: Option<String>,
    /// Reads of the workspace left before the update ends.
    pub reads_left: u32,
    pub outcome: KeyUpdateOutcome,
}

impl SandboxWorkspace {
    /// Whether the workspace ever ran (see `ever_running`).
    pub fn ever_ran(&self) -> bool {
        self.ever_running.unwrap_or(true)
    }
}

/// One Databricks account of the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxAccount {
    pub account_id: String,
    /// Personal access tokens of the account's users. Databricks' Account
    /// API refuses personal access tokens: they are accepted (on the Account
    /// API and the account's workspaces) only with `relaxed_auth`.
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub oauth_clients: Vec<OAuthClient>,
    #[serde(default)]
    pub customer_managed_keys: Vec<SeedKey>,
    #[serde(default)]
    pub workspaces: Vec<SandboxWorkspace>,
}

/// A key configuration as seeded: id and creation time may be left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedKey {
    #[serde(default)]
    pub customer_managed_key_id: Option<String>,
    #[serde(default)]
    pub creation_time: Option<i64>,
    pub use_cases: Vec<crate::rules::catalog::KeyFeature>,
    pub aws_key_info: crate::cloud::databricks::AwsKeyInfo,
}

/// The seed file; the state file has the same shape (with every id filled).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    /// Bearer token of the `/_sandbox/...` admin calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    #[serde(default)]
    pub accounts: Vec<SandboxAccount>,
    /// The Databricks deployment the sandbox answers as: `commercial`
    /// (default), `govcloud-civilian` or `govcloud-dod`. A key
    /// configuration whose key is in another partition is refused, as the
    /// deployment's Databricks principal cannot reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// In a state file: the fingerprint of the seed the world was made
    /// from ([`seed_fingerprint`]), so that a restart with another seed is
    /// refused instead of silently keeping the old world.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_fingerprint: Option<String>,
}

/// A fingerprint of a seed's content (FNV-1a, 64 bits, of its JSON as
/// read: layout and whitespace of the file do not count). It tells seeds
/// apart; it is no security measure.
pub fn seed_fingerprint(seed: &World) -> String {
    let mut w = seed.clone();
    w.seed_fingerprint = None;
    let bytes = serde_json::to_vec(&w).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Faults the sandbox injects into API answers (not into admin calls).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Added to every API answer.
    pub latency_ms: u64,
    /// A random extra latency, from 0 to this many milliseconds, per call.
    pub latency_jitter_ms: u64,
    /// Share (0..1) of API calls answered with `error_status`.
    pub error_rate: f64,
    /// The 5xx status of injected errors (503 by default).
    pub error_status: u16,
    /// The next N API calls are answered with `error_status` (deterministic).
    pub fail_next: u32,
    /// Share (0..1) of API calls answered 429 with `Retry-After`.
    pub throttle_rate: f64,
    /// `Retry-After` of injected 429s, seconds (may be fractional).
    pub retry_after_seconds: f64,
    /// Requests per second the sandbox accepts before answering 429.
    pub rps_limit: Option<u32>,
    /// The next N creates commit the configuration, then drop the
    /// connection without answering.
    pub drop_after_commit: u32,
    /// Share (0..1) of creates that commit, then drop the connection
    /// without answering (drawn from the seeded fault randomness).
    pub drop_rate: f64,
    /// Reseeds the fault randomness when set through the admin call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When set, faults touch only API calls whose path starts with this
    /// (e.g. `/_ws/analytics-prod/api/` for one workspace's own API); every
    /// other call is answered as without faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            fail_next: 0,
            throttle_rate: 0.0,
            retry_after_seconds: 1.0,
            rps_limit: None,
            drop_after_commit: 0,
            drop_rate: 0.0,
            seed: None,
            path_prefix: None,
        }
    }
}

/// Reads a seed (or state) file.
pub fn load_world(path: &Path) -> Result<World, SandboxError> {
    let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SandboxError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// A fresh UUID (version 4).
pub(crate) fn new_uuid() -> String {
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

pub(crate) fn key_view(account_id: &str, k: &SeedKey) -> CustomerManagedKey {
    CustomerManagedKey {
        customer_managed_key_id: k.customer_managed_key_id.clone().unwrap_or_default(),
        account_id: account_id.to_string(),
        creation_time: k.creation_time.unwrap_or(0),
        use_cases: k.use_cases.clone(),
        aws_key_info: Some(k.aws_key_info.clone()),
        gcp_key_info: None,
    }
}

pub(crate) fn dashboard_view(d: &SeedDashboard) -> Dashboard {
    Dashboard {
        dashboard_id: d.dashboard_id.clone().unwrap_or_default(),
        display_name: d.display_name.clone(),
        create_time: d.create_time.clone().unwrap_or_default(),
    }
}

/// Writes the state (which holds tokens and OAuth secrets) atomically and
/// privately: a new temporary file, created exclusively (`O_EXCL`: a
/// symbolic link or any file already at its random name is never opened,
/// so never followed) with mode 0600 in the same folder, written and
/// synced, then renamed over the state file (a rename replaces a link, it
/// does not follow it). On any failure the temporary file is removed and
/// the state file is left as it was.
pub(crate) fn persist(path: &Path, world: &World) -> Result<(), SandboxError> {
    let werr = |source| SandboxError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec_pretty(world).map_err(|e| werr(std::io::Error::other(e)))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let (tmp, mut file) = create_private(&dir, &name).map_err(werr)?;
    let written = (|| {
        use std::io::Write;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    // The rename itself, durable (best effort: not every file system syncs folders).
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file `.{name}.{random}.tmp` in `dir`, created exclusively with
/// mode 0600. A name that exists (a file or a link someone placed) is
/// never reused: another random name is tried.
fn create_private(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
        match create_exclusive(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Creates `path` as a new file with mode 0600; anything already there (a
/// link included, dangling or not) is an `AlreadyExists` error.
pub(super) fn create_exclusive(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    // The umask may only remove bits; make sure of 0600 anyway.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

impl World {
    /// The deployment the sandbox answers as (commercial when the seed names none).
    pub fn deployment(&self) -> crate::rules::Deployment {
        self.deployment
            .as_deref()
            .and_then(crate::rules::Deployment::parse)
            .unwrap_or(crate::rules::Deployment::Commercial)
    }
}

/// Checks that a seed or state file describes a usable world: at least one
/// account, ids of the right shapes, nothing twice. A state file `{}`
/// would otherwise replace the seed with an empty world, silently.
pub fn check_world(world: &World) -> Result<(), String> {
    use crate::rules::ids;
    use std::collections::HashSet;
    if world.accounts.is_empty() {
        return Err("it has no accounts".into());
    }
    if let Some(d) = &world.deployment {
        if crate::rules::Deployment::parse(d).is_none() {
            return Err(format!(
                "deployment {} is not a Databricks deployment; use one of {}",
                ids::quoted(d),
                crate::rules::Deployment::names()
            ));
        }
    }
    let (mut accounts, mut keys, mut workspaces, mut deployments) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    for a in &world.accounts {
        ids::AccountId::parse(&a.account_id).map_err(|e| format!("account: {e}"))?;
        if !accounts.insert(a.account_id.as_str()) {
            return Err(format!("account {} appears twice", a.account_id));
        }
        for k in &a.customer_managed_keys {
            if let Some(id) = &k.customer_managed_key_id {
                ids::KeyConfigId::parse(id)
                    .map_err(|e| format!("key configuration of account {}: {e}", a.account_id))?;
                if !keys.insert(id.as_str()) {
                    return Err(format!("key configuration {id} appears twice"));
                }
            }
        }
        for w in &a.workspaces {
            let ws = &w.workspace;
            let id =
                ids::WorkspaceId::new(ws.workspace_id).map_err(|e| format!("workspace: {e}"))?;
            if !workspaces.insert(id) {
                return Err(format!("workspace {id} appears twice"));
            }
            if let Some(d) = &ws.deployment_name {
                ids::check_deployment_name(d).map_err(|e| format!("workspace {id}: {e}"))?;
                if !deployments.insert(d.as_str()) {
                    return Err(format!("deployment name {d} appears twice"));
                }
            }
            for bound in [
                &ws.managed_services_customer_managed_key_id,
                &ws.storage_customer_managed_key_id,
            ]
            .into_iter()
            .flatten()
            {
                ids::KeyConfigId::parse(bound).map_err(|e| format!("workspace {id}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// A cluster as seeded (`GET /api/2.1/clusters/list` shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedCluster {
    /// Generated (`MMDD-HHMMSS-xxxxxxxx`) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub cluster_name: String,
    /// A Clusters API state: PENDING, RUNNING, RESTARTING, RESIZING,
    /// TERMINATING, TERMINATED, ERROR, UNKNOWN.
    pub state: String,
}

/// An instance pool's counts (`InstancePoolStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedPoolStats {
    pub used_count: u64,
    pub idle_count: u64,
    pub pending_used_count: u64,
    pub pending_idle_count: u64,
}

fn active() -> String {
    "ACTIVE".into()
}

/// An instance pool as seeded (`GET /api/2.0/instance-pools/list` shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_pool_id: Option<String>,
    pub instance_pool_name: String,
    /// ACTIVE (default), STOPPED or DELETED.
    #[serde(default = "active")]
    pub state: String,
    /// Instances it holds; a pool with none is not running compute.
    #[serde(default)]
    pub stats: SeedPoolStats,
}

/// A SQL warehouse as seeded (`GET /api/2.0/sql/warehouses` shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedWarehouse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// STARTING, RUNNING, STOPPING, STOPPED, DELETING or DELETED.
    pub state: String,
    /// Serverless warehouses are not classic compute.
    #[serde(default)]
    pub enable_serverless_compute: bool,
    /// CLASSIC or PRO; served as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_type: Option<String>,
}
