//! `cmk-sandbox`: a local emulator of the Databricks Account API (key
//! configurations, workspaces, OAuth), of each seeded workspace's AI/BI
//! dashboard list, with fault injection and admin calls for tests.
//! See `docs/sandbox.md`.

mod adapter;
// The handlers (and the credential checks of `shared`) return their refusal
// `Response` early through `Result`; boxing it would only add noise.
#[allow(clippy::result_large_err)]
mod api;
mod compute;
mod http;
mod recorder;
#[allow(clippy::result_large_err)]
mod shared;
mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use world::seed_fingerprint;
pub use world::{
    check_world, load_world, Faults, KeyUpdateOutcome, OAuthClient, PendingKeyUpdate,
    SandboxAccount, SandboxError, SandboxWorkspace, SeedCluster, SeedDashboard, SeedKey, SeedPool,
    SeedPoolStats, SeedWarehouse, World,
};
use world::{new_uuid, now_ms, now_rfc3339, persist};

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub world: World,
    /// Persist every change here; when the file exists and was made from
    /// the same seed (`world`), it is loaded instead of `world`; made from
    /// another seed, the start is refused unless `reset_state`.
    pub state_path: Option<PathBuf>,
    /// Discard an existing state file and start from `world`.
    pub reset_state: bool,
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
            reset_state: false,
            admin_token: None,
            provisioning_delay: Duration::from_millis(300),
            token_lifetime: Duration::from_secs(3600),
            faults: Faults::default(),
            fault_seed: 0,
            relaxed_auth: false,
        }
    }
}

/// A running sandbox.
pub struct SandboxHandle {
    addr: SocketAddr,
    resumed: bool,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// True when the world was loaded from an existing state file (made
    /// from the same seed), not started from the seed.
    pub fn resumed(&self) -> bool {
        self.resumed
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

/// Starts the sandbox (in the current tokio runtime) and answers once it listens.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let fingerprint = seed_fingerprint(&config.world);
    let (mut world, from) = match &config.state_path {
        Some(p) if p.exists() && !config.reset_state => (load_world(p)?, Some(p.clone())),
        _ => (config.world.clone(), None),
    };
    normalize(&mut world)?;
    check_world(&world).map_err(|m| match &from {
        Some(path) => SandboxError::State {
            path: path.clone(),
            message: m,
        },
        None => SandboxError::Seed(m),
    })?;
    if let Some(path) = &from {
        // The saved world wins only when it grew from this very seed.
        let why = match &world.seed_fingerprint {
            Some(f) if *f == fingerprint => None,
            Some(_) => Some("it was made from a seed with other content".to_string()),
            None => Some("it records no seed".to_string()),
        };
        if let Some(why) = why {
            return Err(SandboxError::SeedChanged {
                path: path.clone(),
                why,
            });
        }
    }
    let resumed = from.is_some();
    world.seed_fingerprint = Some(fingerprint);
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
    let state = Arc::new(shared::Shared {
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
        base_url: {
            let mut shown = addr;
            if shown.ip().is_unspecified() {
                shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{shown}")
        },
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
        resumed,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod state_file_tests {
    use super::world::create_exclusive;
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

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

    /// Issue 22: a restart with a new seed and an existing state file kept
    /// the old world (and its old admin token) without a word. The same
    /// seed resumes the saved world; another seed is refused, naming the
    /// way out; `reset_state` starts over from the new seed.
    #[tokio::test]
    async fn a_state_file_made_from_another_seed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let config = |w: World, reset: bool| {
            let mut c = SandboxConfig::new(w);
            c.state_path = Some(p.clone());
            c.reset_state = reset;
            c
        };
        let h = start(config(world(), false)).await.unwrap();
        assert!(!h.resumed(), "a fresh state file starts from the seed");
        h.shutdown().await;
        let h = start(config(world(), false)).await.unwrap();
        assert!(h.resumed(), "the same seed resumes the saved world");
        h.shutdown().await;

        let mut other = world();
        other.admin_token = Some("new-admin".into());
        let saved = std::fs::read_to_string(&p).unwrap();
        let e = match start(config(other.clone(), false)).await {
            Ok(_) => panic!("a state file of another seed was loaded"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(
            msg.contains(&p.display().to_string())
                && msg.contains("not made from this seed")
                && msg.contains("--reset-state"),
            "{msg}"
        );
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            saved,
            "refused before any write"
        );

        // A state file written before fingerprints were recorded.
        let mut legacy: serde_json::Value = serde_json::from_str(&saved).unwrap();
        legacy.as_object_mut().unwrap().remove("seed_fingerprint");
        std::fs::write(&p, legacy.to_string()).unwrap();
        let e = match start(config(world(), false)).await {
            Ok(_) => panic!("a state file that records no seed was loaded"),
            Err(e) => e,
        };
        assert!(e.to_string().contains("it records no seed"), "{e}");

        let h = start(config(other, true)).await.unwrap();
        assert!(!h.resumed());
        h.shutdown().await;
        let now: World = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(now.admin_token.as_deref(), Some("new-admin"));
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
