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
    /// Reseeds the fault randomness when set through the admin call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            fail_next: 0,
            throttle_rate: 0.0,
            retry_after_seconds: 1.0,
            rps_limit: None,
            drop_after_commit: 0,
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

/// Writes the state atomically: a temporary file in the same folder, then rename.
pub(crate) fn persist(path: &Path, world: &World) -> Result<(), SandboxError> {
    let text = serde_json::to_string_pretty(world).unwrap_or_default();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let werr = |source| SandboxError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, text).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// Starts the sandbox (in the current tokio runtime) and answers once it listens.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let mut world = match &config.state_path {
        Some(p) if p.exists() => load_world(p)?,
        _ => config.world.clone(),
    };
    normalize(&mut world)?;
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
