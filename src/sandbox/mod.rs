//! `cmk-sandbox`: a local emulator of the Databricks Account API (key
//! configurations, workspaces, OAuth), of each seeded workspace's AI/BI
//! dashboard list, with fault injection and admin calls for tests.
//! See `docs/sandbox.md`.

// The handlers return their refusal `Response` early through `Result`;
// boxing it would only add noise to every handler.
mod adapter;
#[allow(clippy::result_large_err)]
mod api;
mod compute;
mod recorder;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cloud::databricks::{CustomerManagedKey, Dashboard, Workspace};
pub use compute::{SeedCluster, SeedPool, SeedPoolStats, SeedWarehouse};

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
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub world: World,
    /// Persist every change here; when the file exists it is loaded instead
    /// of `world`.
    pub state_path: Option<PathBuf>,
    /// Overrides the seed's admin token.
    pub admin_token: Option<String>,
    /// How long a workspace stays PROVISIONING after an update.
    pub provisioning_delay: Duration,
    /// Lifetime of issued OAuth tokens.
    pub token_lifetime: Duration,
    pub faults: Faults,
    /// Seed of the fault randomness.
    pub fault_seed: u64,
    /// Accept what Databricks refuses about credentials, for local
    /// experiments: personal access tokens on the Account API, account
    /// tokens on workspace APIs. Off by default.
    pub relaxed_auth: bool,
}

impl SandboxConfig {
    pub fn new(world: World) -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            world,
            state_path: None,
            admin_token: None,
            provisioning_delay: Duration::from_millis(300),
            token_lifetime: Duration::from_secs(3600),
            faults: Faults::default(),
            fault_seed: 0,
            relaxed_auth: false,
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

/// A running sandbox.
pub struct SandboxHandle {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT`: the account host to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The client's `workspace_host_template` for this sandbox.
    pub fn workspace_host_template(&self) -> String {
        format!("http://{}/_ws/{{deployment_name}}", self.addr)
    }
    /// Stops the server: open connections get a second to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
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

/// Fills ids and times the seed left out, and checks it.
fn normalize(world: &mut World) -> Result<(), SandboxError> {
    let now = now_ms();
    for a in &mut world.accounts {
        for k in &mut a.customer_managed_keys {
            k.customer_managed_key_id.get_or_insert_with(new_uuid);
            k.creation_time.get_or_insert(now);
            if k.aws_key_info.key_region.is_none() {
                if let Ok(arn) = crate::rules::ids::parse_key_arn(&k.aws_key_info.key_arn) {
                    k.aws_key_info.key_region = Some(arn.region);
                }
            }
        }
        for w in &mut a.workspaces {
            let ws = &mut w.workspace;
            ws.account_id = Some(a.account_id.clone());
            ws.creation_time.get_or_insert(now);
            let status = *ws
                .workspace_status
                .get_or_insert(crate::cloud::databricks::WorkspaceStatus::Running);
            // A workspace seeded before it ever ran: FAILED (a failed
            // deployment), NOT_PROVISIONED or PROVISIONING.
            {
                use crate::cloud::databricks::WorkspaceStatus as St;
                w.ever_running.get_or_insert(!matches!(
                    status,
                    St::Failed | St::NotProvisioned | St::Provisioning
                ));
            }
            if ws.deployment_name.is_none() {
                return Err(SandboxError::Seed(format!(
                    "workspace {} has no deployment_name",
                    ws.workspace_id
                )));
            }
            compute::normalize(w)?;
            for d in &mut w.dashboards {
                d.dashboard_id
                    .get_or_insert_with(|| new_uuid().replace('-', ""));
                d.create_time.get_or_insert_with(now_rfc3339);
            }
        }
    }
    Ok(())
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
fn create_exclusive(path: &Path) -> std::io::Result<std::fs::File> {
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

/// Checks that a seed or state file describes a usable world: at least one
/// account, ids of the right shapes, nothing twice. A state file `{}`
/// would otherwise replace the seed with an empty world, silently.
pub fn check_world(world: &World) -> Result<(), String> {
    use crate::rules::ids;
    use std::collections::HashSet;
    if world.accounts.is_empty() {
        return Err("it has no accounts".into());
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

/// Starts the sandbox (in the current tokio runtime) and answers once it listens.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let (mut world, from) = match &config.state_path {
        Some(p) if p.exists() => (load_world(p)?, Some(p.clone())),
        _ => (config.world.clone(), None),
    };
    normalize(&mut world)?;
    check_world(&world).map_err(|m| match from {
        Some(path) => SandboxError::State { path, message: m },
        None => SandboxError::Seed(m),
    })?;
    if let Some(t) = &config.admin_token {
        world.admin_token = Some(t.clone());
    }
    if let Some(p) = &config.state_path {
        persist(p, &world)?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SandboxError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SandboxError::Listen {
            addr: config.listen,
            source,
        })?;
    let state = Arc::new(api::Shared {
        world: Mutex::new(world),
        tokens: Mutex::new(Default::default()),
        faults: Mutex::new(config.faults.clone()),
        rng: Mutex::new(fastrand::Rng::with_seed(config.fault_seed)),
        window: Mutex::new((std::time::Instant::now(), 0)),
        state_path: config.state_path.clone(),
        provisioning_delay: config.provisioning_delay,
        token_lifetime: config.token_lifetime,
        stats: Mutex::new(Default::default()),
        relaxed_auth: config.relaxed_auth,
        recorder: Default::default(),
    });
    let app = api::router(state);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    tracing::info!(%addr, "cmk-sandbox listening");
    Ok(SandboxHandle {
        addr,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod state_file_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ACCT: &str = "11111111-2222-4333-8444-555555555555";

    fn world() -> World {
        serde_json::from_value(serde_json::json!({
            "admin_token": "admin-secret",
            "accounts": [{
                "account_id": ACCT,
                "tokens": ["dapi-secret-token"],
                "oauth_clients": [{"client_id": "c", "client_secret": "oauth-secret"}],
                "workspaces": [{"workspace_id": 42, "workspace_name": "w", "deployment_name": "w",
                                "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE"}]
            }]
        }))
        .unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Issue 10: the state file (tokens, OAuth secrets, the admin token) was
    /// 0644, and a chmod 600 was undone by the next write.
    #[test]
    fn the_state_file_is_private_after_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        persist(&p, &world()).unwrap();
        assert_eq!(mode(&p), 0o600);
        persist(&p, &world()).unwrap();
        assert_eq!(mode(&p), 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("dapi-secret-token"));
        // Nothing left behind but the state file.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    /// Issue 10: the temporary name `state.tmp-<pid>` was predictable and a
    /// link placed there was followed: a victim file got the secrets.
    #[test]
    fn links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let p = dir.path().join("state.json");
        // The old predictable name, and a dangling link: both refused or unused.
        std::os::unix::fs::symlink(
            &victim,
            dir.path().join(format!("state.tmp-{}", std::process::id())),
        )
        .unwrap();
        let planted = dir.path().join(".state.json.0000000000000000.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = create_exclusive(&planted).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(create_exclusive(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
        persist(&p, &world()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A link at the state path itself is replaced, not written through.
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        persist(&p, &world()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_failed_write_leaves_the_state_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gone").join("state.json");
        let e = persist(&p, &world()).unwrap_err();
        assert!(e.to_string().contains("cannot write state"), "{e}");
    }

    /// Issue 10: a state file `{}` silently replaced the seed with an empty
    /// world. A state file that is not a valid world is refused at start.
    #[tokio::test]
    async fn a_state_file_that_is_not_a_world_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let bad = [
            "{}",
            r#"{"accounts": []}"#,
            r#"{"accounts": [{"account_id": "acct"}]}"#,
            r#"{"accounts": [{"account_id": "11111111-2222-4333-8444-555555555555", "customer_managed_keys": [{"customer_managed_key_id": "../../x", "use_cases": ["STORAGE"], "aws_key_info": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"}}]}]}"#,
            r#"{"accounts": [{"account_id": "11111111-2222-4333-8444-555555555555", "workspaces": [{"workspace_id": -1, "deployment_name": "w"}]}]}"#,
            r#"{"accounts": [{"account_id": "11111111-2222-4333-8444-555555555555", "workspaces": [{"workspace_id": 1, "deployment_name": "evil.example.com/#"}]}]}"#,
        ];
        for text in bad {
            std::fs::write(&p, text).unwrap();
            let mut c = SandboxConfig::new(world());
            c.state_path = Some(p.clone());
            let e = match start(c).await {
                Ok(_) => panic!("{text} was accepted"),
                Err(e) => e,
            };
            assert!(
                matches!(e, SandboxError::State { .. })
                    && e.to_string().contains("not a valid sandbox world"),
                "{text}: {e}"
            );
            // Refused before anything was written.
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        }
    }

    /// Issue 10: on a full disk the API answered 201 while the write
    /// failed. A failed write answers 500 and memory is unchanged.
    #[tokio::test]
    async fn a_failed_write_answers_500_and_changes_nothing() {
        crate::tfplugin::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let mut c = SandboxConfig::new(world());
        c.state_path = Some(sub.join("state.json"));
        c.relaxed_auth = true;
        let h = start(c).await.unwrap();
        // The folder goes away: every later write fails (as on a full disk).
        std::fs::remove_dir_all(&sub).unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/api/2.0/accounts/{ACCT}/customer-managed-keys", h.url());
        let r = http
            .post(&url)
            .bearer_auth("dapi-secret-token")
            .json(&serde_json::json!({"use_cases": ["STORAGE"], "aws_key_info": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500, "{}", r.text().await.unwrap());
        let all: Vec<serde_json::Value> = http
            .get(&url)
            .bearer_auth("dapi-secret-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            all.is_empty(),
            "memory holds what the file does not: {all:?}"
        );
        h.shutdown().await;
    }
}
