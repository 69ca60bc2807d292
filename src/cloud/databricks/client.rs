//! The Account API client: calls, retries, rate limit, cancellation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::auth::{Audience, Authenticator};
use super::error::{Budget, DatabricksError};
use super::http::{
    build_client, error_text, origin, printable, read_capped, read_prefix, redirect_error,
    retry_after, timed_out_after_connecting, too_large_message, unreachable_reason, Answer,
    BodyError, CONNECT_TIMEOUT, MAX_LIST_BYTES, MAX_LIST_PAGES, MESSAGE_MAX_BYTES, READ_TIMEOUT,
};
use super::models::{
    CreateCustomerManagedKey, CustomerManagedKey, Dashboard, DashboardPage, Workspace,
    WorkspaceKeyUpdate, WorkspaceStatus,
};
use super::settings::{DatabricksSettings, Environment, ProcessEnvironment, ResolvedConfig};
use crate::rules::ids::{self, KeyConfigId, WorkspaceId};

/// Longest backoff between two attempts (a `Retry-After` may ask for more).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Clock skew allowed when matching a configuration created by a lost answer.
const CREATE_MATCH_SKEW_MS: i64 = 30_000;
/// How long a cancelled create keeps looking for the configuration it may
/// have made (Terraform waits for the provider after Ctrl-C).
pub const CANCELLED_CREATE_RECOVERY: Duration = Duration::from_secs(20);
/// Pause between two looks of that recovery.
const CANCELLED_CREATE_POLL: Duration = Duration::from_secs(2);

/// A Databricks Account API client. Cheap to clone; share one per provider.
#[derive(Clone)]
pub struct AccountClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ResolvedConfig,
    http: reqwest::Client,
    auth: Authenticator,
    limiter: RateLimiter,
    rng: Mutex<fastrand::Rng>,
    /// Key configurations this client created or adopted: a lost create
    /// never adopts one of them (two identical creates in one apply).
    claimed: Mutex<std::collections::HashSet<String>>,
    /// Reads served from lists (`snapshot.rs`), when configured.
    snapshot: Option<super::snapshot::ReadSnapshot>,
}

impl std::fmt::Debug for AccountClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountClient")
            .field("host", &self.inner.cfg.host)
            .field("account_id", &self.inner.cfg.account_id)
            .field("credential", &self.inner.auth.describe())
            .finish()
    }
}

struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self, cancel: &CancellationToken) -> Result<(), DatabricksError> {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        let wait = slot.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            tracing::trace!(wait_ms = wait.as_millis() as u64, "client-side rate limit");
            sleep_or_cancel(wait, cancel, "waiting for the client-side rate limit").await?;
        }
        Ok(())
    }
}

async fn sleep_or_cancel(
    d: Duration,
    cancel: &CancellationToken,
    during: &str,
) -> Result<(), DatabricksError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(DatabricksError::Cancelled { during: during.to_string() }),
        _ = tokio::time::sleep(d) => Ok(()),
    }
}

/// Percent-encodes one path segment. This is the one place where a value
/// becomes part of a request path: every byte outside RFC 3986's unreserved
/// characters is encoded (`%`, `/`, `\\`, `?` and `#` included), so a value
/// can neither add a segment nor a query or a fragment. "." and "..", which
/// URL parsers resolve even when percent-encoded, and the empty segment are
/// refused: nothing is sent.
pub fn path_segment(s: &str) -> Result<String, DatabricksError> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(DatabricksError::InvalidRequest(format!(
            "{} cannot be a path segment of a request",
            ids::quoted(s)
        )));
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One attempt's failure, classified.
enum Failure {
    /// Worth another attempt after a delay. `ambiguous`: the request may
    /// have been received and acted on. `unreachable`: nothing reached a
    /// server (why, for a person): worth one quick retry, not minutes.
    Retry {
        error: DatabricksError,
        retry_after: Option<Duration>,
        ambiguous: bool,
        unreachable: Option<&'static str>,
    },
    Fatal(DatabricksError),
    /// Cancelled after the request may have been sent.
    CancelledInFlight(DatabricksError),
}

/// What `execute` saw of a call, for its log line.
#[derive(Default)]
struct Seen {
    attempts: u32,
    /// The last HTTP status answered (none after transport errors only).
    status: Option<u16>,
    /// The attempt is getting a token (not yet calling the API): a
    /// deadline then names the token request, not the API call.
    getting_token: bool,
}

/// Waits at least this long are logged at info (progress a user sees with
/// `TF_LOG_PROVIDER=info`).
const LONG_WAIT: Duration = Duration::from_secs(2);

/// The path of a URL, without scheme, host and query.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

/// How `execute` ended when it did not succeed.
enum ExecError {
    Final(DatabricksError),
    /// Only for non-idempotent calls: the request may have taken effect.
    Ambiguous(DatabricksError),
    /// Only for non-idempotent calls: cancelled while the request was in
    /// flight, so it may have taken effect.
    CancelledAmbiguous(DatabricksError),
}

impl From<DatabricksError> for ExecError {
    fn from(e: DatabricksError) -> Self {
        ExecError::Final(e)
    }
}

struct Call<'a> {
    method: Method,
    url: String,
    query: Vec<(&'a str, String)>,
    body: Option<serde_json::Value>,
    /// What is addressed, for "does not exist" messages.
    what: String,
    idempotent: bool,
    /// Whom the bearer token is for.
    audience: Audience,
    /// What kind of answer success is (its byte cap).
    kind: Answer,
    /// The operation's deadline, retries and slow bodies included; a list
    /// shares one across its pages. `None`: the retry budget from now.
    deadline: Option<Instant>,
}

/// Attempts at an unreachable host (name not resolved, connection
/// refused) before giving up: one quick retry.
const UNREACHABLE_ATTEMPTS: u32 = 2;
/// The pause before that retry.
const UNREACHABLE_RETRY_DELAY: Duration = Duration::from_millis(500);

/// The bounds of one paginated list: pages, bytes and page tokens seen, and
/// the deadline all its pages share.
pub(super) struct ListBounds {
    what: String,
    url: String,
    pages: usize,
    bytes: usize,
    tokens: std::collections::HashSet<u64>,
    pub deadline: Instant,
}

impl ListBounds {
    pub fn new(what: String, url: String, deadline: Instant) -> Self {
        ListBounds {
            what,
            url,
            pages: 0,
            bytes: 0,
            tokens: Default::default(),
            deadline,
        }
    }

    fn incomplete(&self, reason: String) -> DatabricksError {
        DatabricksError::ListIncomplete {
            what: self.what.clone(),
            url: self.url.clone(),
            reason,
        }
    }

    /// After a page of `bytes` bytes with this `next_page_token`: the token
    /// to ask for next, `None` at the end, or an error when the list passes
    /// its bounds or repeats a token.
    pub fn next(
        &mut self,
        bytes: usize,
        token: Option<String>,
    ) -> Result<Option<String>, DatabricksError> {
        use std::hash::{Hash, Hasher};
        self.pages += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        let Some(t) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if self.bytes > MAX_LIST_BYTES {
            return Err(self.incomplete(format!(
                "its {} pages add up to more than {}, the most this provider reads of one list",
                self.pages,
                super::http::bytes_shown(MAX_LIST_BYTES)
            )));
        }
        if self.pages >= MAX_LIST_PAGES {
            return Err(self.incomplete(format!(
                "it did not end after {MAX_LIST_PAGES} pages (next_page_token keeps coming)"
            )));
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.hash(&mut h);
        if !self.tokens.insert(h.finish()) {
            return Err(self.incomplete(format!(
                "page {} answered next_page_token {}, a token it had answered before (the list would never end)",
                self.pages,
                printable(&format!("{t:?}"), 100)
            )));
        }
        Ok(Some(t))
    }
}

impl AccountClient {
    /// A client configured from `settings`, the process environment and
    /// `~/.databrickscfg`.
    pub fn new(settings: &DatabricksSettings) -> Result<Self, DatabricksError> {
        Self::with_environment(settings, &ProcessEnvironment)
    }

    /// Same, with an injected environment (tests).
    pub fn with_environment(
        settings: &DatabricksSettings,
        env: &dyn Environment,
    ) -> Result<Self, DatabricksError> {
        Self::from_config(settings.resolve(env)?)
    }

    /// A client from an already resolved configuration.
    pub fn from_config(cfg: ResolvedConfig) -> Result<Self, DatabricksError> {
        // reqwest is built without a crypto provider of its own: it uses the
        // process default, which this installs (aws-lc-rs) if nobody did.
        crate::tfplugin::install_crypto_provider();
        let http = build_client(
            cfg.http_timeout,
            user_agent(cfg.terraform_version.as_deref()),
        )
        .map_err(|e| DatabricksError::Config(format!("cannot build the HTTP client: {e}")))?;
        let rng = match cfg.jitter_seed {
            Some(s) => fastrand::Rng::with_seed(s),
            None => fastrand::Rng::new(),
        };
        Ok(AccountClient {
            inner: Arc::new(Inner {
                auth: Authenticator::new(cfg.auth.clone()),
                limiter: RateLimiter::new(cfg.rate_limit),
                rng: Mutex::new(rng),
                claimed: Mutex::new(Default::default()),
                snapshot: cfg.snapshot_max_age.map(super::snapshot::ReadSnapshot::new),
                http,
                cfg,
            }),
        })
    }

    pub fn config(&self) -> &ResolvedConfig {
        &self.inner.cfg
    }

    /// `{host}/api/2.0/accounts/{account_id}/{segments...}`, each segment
    /// through [`path_segment`].
    fn account_url(&self, segments: &[&str]) -> Result<String, DatabricksError> {
        let mut url = format!(
            "{}/api/2.0/accounts/{}",
            self.inner.cfg.host,
            path_segment(&self.inner.cfg.account_id)?
        );
        for s in segments {
            url.push('/');
            url.push_str(&path_segment(s)?);
        }
        Ok(url)
    }

    fn account_audience(&self) -> Audience {
        Audience::Account {
            host: self.inner.cfg.host.clone(),
            account_id: self.inner.cfg.account_id.to_string(),
        }
    }

    /// The API host of a workspace, from the workspace host template. The
    /// deployment name (from the Account API) must be a DNS label.
    pub fn workspace_host(&self, deployment_name: &str) -> Result<String, DatabricksError> {
        ids::check_deployment_name(deployment_name)
            .map_err(|e| DatabricksError::InvalidRequest(e.0))?;
        Ok(self
            .inner
            .cfg
            .workspace_host_template
            .replace("{deployment_name}", deployment_name)
            .trim_end_matches('/')
            .to_string())
    }

    fn call(
        &self,
        method: Method,
        segments: &[&str],
        what: String,
    ) -> Result<Call<'static>, DatabricksError> {
        Ok(Call {
            idempotent: method != Method::POST,
            method,
            url: self.account_url(segments)?,
            query: Vec::new(),
            body: None,
            what,
            audience: self.account_audience(),
            kind: Answer::Object,
            deadline: None,
        })
    }

    /// The account this client asks about, for answer checks.
    fn check_account(&self, what: &str, answered: Option<&str>) -> Result<(), DatabricksError> {
        let asked = self.inner.cfg.account_id.to_string();
        match answered.filter(|a| !a.is_empty()) {
            Some(a) if !a.eq_ignore_ascii_case(&asked) => Err(DatabricksError::Mismatch {
                what: what.to_string(),
                field: "account_id".into(),
                asked,
                answered: printable(a, 100),
            }),
            _ => Ok(()),
        }
    }

    fn check_key(
        &self,
        k: &CustomerManagedKey,
        asked: Option<&str>,
    ) -> Result<(), DatabricksError> {
        let what = match asked {
            Some(id) => format!("key configuration {id}"),
            None => "key configurations".to_string(),
        };
        if let Some(id) = asked {
            if !k.customer_managed_key_id.eq_ignore_ascii_case(id) {
                return Err(DatabricksError::Mismatch {
                    what,
                    field: "customer_managed_key_id".into(),
                    asked: id.to_string(),
                    answered: printable(&k.customer_managed_key_id, 100),
                });
            }
        }
        self.check_account(&what, Some(&k.account_id))
    }

    fn check_workspace(&self, w: &Workspace, asked: Option<i64>) -> Result<(), DatabricksError> {
        let what = match asked {
            Some(id) => format!("workspace {id}"),
            None => "workspaces".to_string(),
        };
        if let Some(id) = asked {
            if w.workspace_id != id {
                return Err(DatabricksError::Mismatch {
                    what,
                    field: "workspace_id".into(),
                    asked: id.to_string(),
                    answered: w.workspace_id.to_string(),
                });
            }
        }
        self.check_account(&what, w.account_id.as_deref())
    }

    // ---- key configurations ----

    /// `POST /customer-managed-keys`. Never makes two configurations: after
    /// an ambiguous failure it lists and adopts a matching configuration
    /// created since the first attempt, and only sends again if none exists.
    /// Cancelled after a request may have been sent (Ctrl-C during the
    /// POST), it still looks for what it made, for at most
    /// [`CANCELLED_CREATE_RECOVERY`], and answers it, so that Terraform's
    /// state tracks every configuration that exists.
    pub async fn create_customer_managed_key(
        &self,
        request: &CreateCustomerManagedKey,
        cancel: &CancellationToken,
    ) -> Result<CustomerManagedKey, DatabricksError> {
        let started_ms = now_ms() - CREATE_MATCH_SKEW_MS;
        let mut maybe_sent = false;
        let out = match self
            .create_rounds(request, started_ms, cancel, &mut maybe_sent)
            .await
        {
            Err(DatabricksError::Cancelled { during }) if maybe_sent => {
                self.recover_cancelled_create(request, started_ms, during)
                    .await
            }
            other => other,
        };
        if let Ok(k) = &out {
            self.claim(&k.customer_managed_key_id);
        }
        out
    }

    fn claim(&self, id: &str) {
        if let Ok(mut c) = self.inner.claimed.lock() {
            c.insert(id.to_string());
        }
    }

    /// A configuration made by this request since `since_ms` that no other
    /// create of this client has taken.
    fn unclaimed_match(
        &self,
        all: Vec<CustomerManagedKey>,
        request: &CreateCustomerManagedKey,
        since_ms: i64,
    ) -> Option<CustomerManagedKey> {
        let claimed = self
            .inner
            .claimed
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        all.into_iter()
            .filter(|k| !claimed.contains(&k.customer_managed_key_id))
            .filter(|k| same_configuration(k, request, since_ms))
            .max_by_key(|k| k.creation_time)
    }

    /// After a cancel that may have let a create through: lists (with a
    /// token of its own, the caller's is cancelled) until the configuration
    /// shows up or [`CANCELLED_CREATE_RECOVERY`] has passed.
    async fn recover_cancelled_create(
        &self,
        request: &CreateCustomerManagedKey,
        since_ms: i64,
        during: String,
    ) -> Result<CustomerManagedKey, DatabricksError> {
        tracing::warn!("cancelled while a create may have taken effect; looking for the configuration so that state tracks it");
        let own = CancellationToken::new();
        let deadline = tokio::time::Instant::now() + CANCELLED_CREATE_RECOVERY;
        loop {
            match tokio::time::timeout_at(deadline, self.list_customer_managed_keys(&own)).await {
                Ok(Ok(all)) => {
                    if let Some(found) = self.unclaimed_match(all, request, since_ms) {
                        if let Some(s) = &self.inner.snapshot {
                            s.wrote_key(&found.customer_managed_key_id).await;
                        }
                        tracing::info!(customer_managed_key_id = %found.customer_managed_key_id, "the cancelled create had taken effect; returning its configuration");
                        return Ok(found);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "listing key configurations after a cancel failed")
                }
                Err(_) => break,
            }
            if tokio::time::Instant::now() + CANCELLED_CREATE_POLL >= deadline {
                break;
            }
            tokio::time::sleep(CANCELLED_CREATE_POLL).await;
        }
        own.cancel();
        Err(DatabricksError::Cancelled {
            during: format!(
                "{during}; no configuration made by this create showed up within {}s",
                CANCELLED_CREATE_RECOVERY.as_secs()
            ),
        })
    }

    async fn create_rounds(
        &self,
        request: &CreateCustomerManagedKey,
        started_ms: i64,
        cancel: &CancellationToken,
        maybe_sent: &mut bool,
    ) -> Result<CustomerManagedKey, DatabricksError> {
        let started = Instant::now();
        let (deadline, budget) = Self::budget_of(started + self.inner.cfg.retry_timeout);
        let body = serde_json::to_value(request).map_err(|e| DatabricksError::Decode {
            url: String::new(),
            message: e.to_string(),
        })?;
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            let mut call = self.call(
                Method::POST,
                &["customer-managed-keys"],
                "key configuration".into(),
            )?;
            call.body = Some(body.clone());
            match self.execute::<CustomerManagedKey>(call, cancel).await {
                Ok((k, _)) => {
                    self.check_key(&k, None)?;
                    if let Some(s) = &self.inner.snapshot {
                        s.wrote_key(&k.customer_managed_key_id).await;
                    }
                    tracing::info!(customer_managed_key_id = %k.customer_managed_key_id, "created key configuration");
                    return Ok(k);
                }
                Err(ExecError::Final(e)) => return Err(e),
                Err(ExecError::CancelledAmbiguous(e)) => {
                    *maybe_sent = true;
                    return Err(e);
                }
                Err(ExecError::Ambiguous(e)) => {
                    *maybe_sent = true;
                    tracing::warn!(error = %e, "create may have taken effect; looking for the configuration before sending again");
                    let all = self.list_customer_managed_keys(cancel).await?;
                    if let Some(found) = self.unclaimed_match(all, request, started_ms) {
                        if let Some(s) = &self.inner.snapshot {
                            s.wrote_key(&found.customer_managed_key_id).await;
                        }
                        tracing::info!(customer_managed_key_id = %found.customer_managed_key_id, "the lost create had taken effect; adopting its configuration");
                        return Ok(found);
                    }
                    let delay = self.backoff(rounds);
                    if Instant::now()
                        .checked_add(delay)
                        .is_none_or(|t| t > deadline)
                    {
                        return Err(DatabricksError::RetriesExhausted {
                            attempts: rounds,
                            elapsed_secs: started.elapsed().as_secs_f64(),
                            budget,
                            last: Box::new(e),
                        });
                    }
                    sleep_or_cancel(delay, cancel, "backing off before creating again").await?;
                }
            }
        }
    }

    /// `GET /customer-managed-keys/{id}`, or the read snapshot's copy.
    pub async fn get_customer_managed_key(
        &self,
        customer_managed_key_id: &KeyConfigId,
        cancel: &CancellationToken,
    ) -> Result<CustomerManagedKey, DatabricksError> {
        if let Some(s) = &self.inner.snapshot {
            let listed = || self.list_customer_managed_keys(cancel);
            if let Some(k) = s.key(customer_managed_key_id.as_str(), listed).await {
                return Ok(k);
            }
        }
        let call = self.call(
            Method::GET,
            &["customer-managed-keys", customer_managed_key_id.as_str()],
            format!("key configuration {customer_managed_key_id}"),
        )?;
        let k: CustomerManagedKey = self.run(call, cancel).await?;
        self.check_key(&k, Some(customer_managed_key_id.as_str()))?;
        Ok(k)
    }

    /// `GET /customer-managed-keys` (a bare JSON array).
    pub async fn list_customer_managed_keys(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<CustomerManagedKey>, DatabricksError> {
        let mut call = self.call(
            Method::GET,
            &["customer-managed-keys"],
            "key configurations".into(),
        )?;
        call.kind = Answer::Page;
        let all: Vec<CustomerManagedKey> = self.run(call, cancel).await?;
        for k in &all {
            self.check_key(k, None)?;
        }
        Ok(all)
    }

    /// `DELETE /customer-managed-keys/{id}`. A 404 is `NotFound` (already gone).
    pub async fn delete_customer_managed_key(
        &self,
        customer_managed_key_id: &KeyConfigId,
        cancel: &CancellationToken,
    ) -> Result<(), DatabricksError> {
        if let Some(s) = &self.inner.snapshot {
            s.wrote_key(customer_managed_key_id.as_str()).await;
        }
        let call = self.call(
            Method::DELETE,
            &["customer-managed-keys", customer_managed_key_id.as_str()],
            format!("key configuration {customer_managed_key_id}"),
        )?;
        self.run::<serde_json::Value>(call, cancel)
            .await
            .map(|_| ())
    }

    // ---- workspaces ----

    /// `GET /workspaces/{id}`, or the read snapshot's copy.
    pub async fn get_workspace(
        &self,
        workspace_id: WorkspaceId,
        cancel: &CancellationToken,
    ) -> Result<Workspace, DatabricksError> {
        if let Some(s) = &self.inner.snapshot {
            let listed = || self.list_workspaces(cancel);
            if let Some(w) = s.workspace(workspace_id.get(), listed).await {
                return Ok(w);
            }
        }
        self.get_workspace_fresh(workspace_id, cancel).await
    }

    /// `GET /workspaces/{id}`, never from the read snapshot: what a wait
    /// polls, since the status it waits for changes behind the snapshot.
    async fn get_workspace_fresh(
        &self,
        workspace_id: WorkspaceId,
        cancel: &CancellationToken,
    ) -> Result<Workspace, DatabricksError> {
        let call = self.call(
            Method::GET,
            &["workspaces", &workspace_id.to_string()],
            format!("workspace {workspace_id}"),
        )?;
        let w: Workspace = self.run(call, cancel).await?;
        self.check_workspace(&w, Some(workspace_id.get()))?;
        Ok(w)
    }

    /// `GET /workspaces` (a bare JSON array).
    pub async fn list_workspaces(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<Workspace>, DatabricksError> {
        let mut call = self.call(Method::GET, &["workspaces"], "workspaces".into())?;
        call.kind = Answer::Page;
        let all: Vec<Workspace> = self.run(call, cancel).await?;
        for w in &all {
            self.check_workspace(w, None)?;
        }
        Ok(all)
    }

    /// `PATCH /workspaces/{id}?update_mask=...` only, without waiting.
    pub async fn patch_workspace(
        &self,
        workspace_id: WorkspaceId,
        update: &WorkspaceKeyUpdate,
        cancel: &CancellationToken,
    ) -> Result<(), DatabricksError> {
        let mask = update.mask();
        if mask.is_empty() {
            return Ok(());
        }
        if let Some(s) = &self.inner.snapshot {
            s.wrote_workspace(workspace_id.get()).await;
        }
        let mut call = self.call(
            Method::PATCH,
            &["workspaces", &workspace_id.to_string()],
            format!("workspace {workspace_id}"),
        )?;
        // PATCH with a mask sets fields to given values: repeating it is harmless.
        call.idempotent = true;
        call.query.push(("update_mask", mask.join(",")));
        call.body = Some(serde_json::to_value(update).unwrap_or_default());
        self.run::<serde_json::Value>(call, cancel)
            .await
            .map(|_| ())
    }

    /// Updates a workspace's key bindings and waits until the change is in
    /// place: the workspace RUNNING **and** every requested key id in its
    /// field. Databricks' own wait returns on the first RUNNING, but for a
    /// workspace with a customer-managed VPC the status stays RUNNING during
    /// the update and a new storage key id can appear minutes later (SDKs'
    /// documentation of the workspace update), so the fields are polled
    /// until the wait's bound (`workspace_wait_timeout`). Only a workspace
    /// still RUNNING with another id after that bound is `ChangeReverted`;
    /// FAILED or BANNED end the wait as `WorkspaceFailed` (a workspace that
    /// was FAILED before the update counts as failed again only once it left
    /// FAILED, or after a minute). Cancellable between polls.
    pub async fn update_workspace_keys(
        &self,
        workspace_id: WorkspaceId,
        update: &WorkspaceKeyUpdate,
        cancel: &CancellationToken,
    ) -> Result<Workspace, DatabricksError> {
        let before = self.get_workspace(workspace_id, cancel).await?;
        self.patch_workspace(workspace_id, update, cancel).await?;
        self.wait_for_keys(workspace_id, update, before.workspace_status, cancel)
            .await
    }

    async fn wait_for_keys(
        &self,
        ws_id: WorkspaceId,
        update: &WorkspaceKeyUpdate,
        status_before: Option<WorkspaceStatus>,
        cancel: &CancellationToken,
    ) -> Result<Workspace, DatabricksError> {
        let workspace_id = ws_id.get();
        let start = Instant::now();
        let limit = self.wait_limit();
        // A FAILED workspace may still read FAILED just after the update.
        let stale_failed_grace = limit.min(Duration::from_secs(60));
        let mut left_failed = status_before != Some(WorkspaceStatus::Failed);
        let mut last_progress: Option<String> = None;
        loop {
            let ws = self.get_workspace_fresh(ws_id, cancel).await?;
            let missing = missing_keys(update, &ws);
            let status = ws.workspace_status;
            if status != Some(WorkspaceStatus::Failed) {
                left_failed = true;
            }
            let progress = match status {
                Some(WorkspaceStatus::Running) if missing.is_empty() => {
                    tracing::info!(workspace_id, elapsed_secs = start.elapsed().as_secs(), "the workspace is RUNNING with the requested keys");
                    return Ok(ws);
                }
                Some(s @ (WorkspaceStatus::Failed | WorkspaceStatus::Banned))
                    if left_failed || start.elapsed() >= stale_failed_grace =>
                {
                    return Err(DatabricksError::WorkspaceFailed {
                        workspace_id,
                        status: s.to_string(),
                        message: ws
                            .workspace_status_message
                            .filter(|m| !m.trim().is_empty())
                            .unwrap_or_else(|| "Databricks gave no status message".into()),
                    });
                }
                Some(WorkspaceStatus::Running) => format!(
                    "RUNNING, waiting for {} (a workspace with a customer-managed VPC stays RUNNING while a key update is applied)",
                    missing
                        .iter()
                        .map(|(f, want, _)| format!("{f} = {want}"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                Some(s) => format!("{s}, waiting for RUNNING"),
                None => "status not reported, waiting for RUNNING".to_string(),
            };
            let elapsed = start.elapsed();
            if last_progress.as_deref() != Some(progress.as_str()) {
                tracing::info!(
                    workspace_id,
                    elapsed_secs = elapsed.as_secs(),
                    "workspace update: {progress}"
                );
                last_progress = Some(progress);
            } else {
                tracing::debug!(
                    workspace_id,
                    elapsed_secs = elapsed.as_secs(),
                    "workspace update: still waiting"
                );
            }
            if elapsed >= limit {
                if status == Some(WorkspaceStatus::Running) {
                    if let Some((field, expected, actual)) = missing.into_iter().next() {
                        return Err(DatabricksError::ChangeReverted {
                            workspace_id,
                            field: field.to_string(),
                            expected,
                            actual,
                            waited_secs: elapsed.as_secs(),
                            status_message: ws.workspace_status_message,
                        });
                    }
                }
                return Err(DatabricksError::Timeout {
                    what: format!("workspace {workspace_id} to be RUNNING with the requested keys"),
                    secs: limit.as_secs(),
                });
            }
            sleep_or_cancel(
                self.inner.cfg.workspace_poll_interval,
                cancel,
                &format!("waiting for workspace {workspace_id} to apply its new keys"),
            )
            .await?;
        }
    }

    /// Polls the workspace until it is RUNNING; FAILED or BANNED end the wait
    /// with `WorkspaceFailed`. Stops promptly when `cancel` fires.
    pub async fn wait_workspace_running(
        &self,
        workspace_id: WorkspaceId,
        cancel: &CancellationToken,
    ) -> Result<Workspace, DatabricksError> {
        let start = Instant::now();
        let limit = self.wait_limit();
        loop {
            // Polled fresh: the read snapshot would serve the status it
            // listed (PROVISIONING) until it expires (found by the re-apply
            // test in acceptance-tests/faults.rs).
            let ws = self.get_workspace_fresh(workspace_id, cancel).await?;
            match ws.workspace_status {
                Some(WorkspaceStatus::Running) => return Ok(ws),
                Some(s @ (WorkspaceStatus::Failed | WorkspaceStatus::Banned)) => {
                    return Err(DatabricksError::WorkspaceFailed {
                        workspace_id: workspace_id.get(),
                        status: s.to_string(),
                        message: ws.workspace_status_message.unwrap_or_default(),
                    })
                }
                s => {
                    tracing::info!(workspace_id = workspace_id.get(), status = %s.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()), elapsed_secs = start.elapsed().as_secs(), "waiting for the workspace to be RUNNING")
                }
            }
            if start.elapsed() >= limit {
                return Err(DatabricksError::Timeout {
                    what: format!("workspace {workspace_id} to be RUNNING"),
                    secs: limit.as_secs(),
                });
            }
            sleep_or_cancel(
                self.inner.cfg.workspace_poll_interval,
                cancel,
                &format!("waiting for workspace {workspace_id} to be RUNNING"),
            )
            .await?;
        }
    }

    // ---- workspace level ----

    /// The AI/BI dashboards of a workspace (`GET {workspace}/api/2.0/lakeview/dashboards`,
    /// every page); with the read snapshot, listed once per workspace.
    pub async fn list_dashboards(
        &self,
        deployment_name: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<Dashboard>, DatabricksError> {
        match &self.inner.snapshot {
            Some(s) => {
                let listed = || self.fetch_dashboards(deployment_name, cancel);
                s.dashboards(deployment_name, listed).await
            }
            None => self.fetch_dashboards(deployment_name, cancel).await,
        }
    }

    async fn fetch_dashboards(
        &self,
        deployment_name: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<Dashboard>, DatabricksError> {
        let host = self.workspace_host(deployment_name)?;
        let url = format!("{host}/api/2.0/lakeview/dashboards");
        let what = format!("AI/BI dashboards of workspace {deployment_name}");
        let mut bounds = self.list_bounds(what.clone(), url.clone());
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut call = Call {
                method: Method::GET,
                url: url.clone(),
                query: vec![("page_size", "100".to_string())],
                body: None,
                what: what.clone(),
                idempotent: true,
                // A workspace's own API takes only its own tokens.
                audience: Audience::Workspace { host: host.clone() },
                kind: Answer::Page,
                deadline: Some(bounds.deadline),
            };
            if let Some(t) = &page_token {
                call.query.push(("page_token", t.clone()));
            }
            let (page, bytes): (DashboardPage, usize) = self.run_sized(call, cancel).await?;
            out.extend(page.dashboards);
            page_token = bounds.next(bytes, page.next_page_token)?;
            if page_token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The bounds of a new paginated list: its pages share one deadline.
    pub(super) fn list_bounds(&self, what: String, url: String) -> ListBounds {
        ListBounds::new(what, url, self.deadline())
    }

    /// The deadline of a call that starts now: the retry budget, or the
    /// deadline of the whole Terraform operation when that comes first.
    pub(super) fn deadline(&self) -> Instant {
        match crate::budget::overridden() {
            Some(o) => o.at,
            None => crate::budget::clamp(Instant::now() + self.inner.cfg.retry_timeout),
        }
    }

    /// How long a wait for a workspace may take: the resource's `timeouts`
    /// duration left when one is set, else `workspace_update_timeout_seconds`.
    fn wait_limit(&self) -> Duration {
        match crate::budget::overridden() {
            Some(o) => o.at.saturating_duration_since(Instant::now()),
            None => self.inner.cfg.workspace_wait_timeout,
        }
    }

    /// `own` cut to the operation's deadline, and whose budget it is then.
    /// A resource's `timeouts` duration replaces `own`.
    fn budget_of(own: Instant) -> (Instant, Budget) {
        if let Some(o) = crate::budget::overridden() {
            return (o.at, Budget::Resource(o.setting));
        }
        let d = crate::budget::clamp(own);
        (
            d,
            if d < own {
                Budget::Operation
            } else {
                Budget::Call
            },
        )
    }

    /// `GET {workspace host}{path}`: a read of a workspace's own API, with
    /// the same host and credentials as `list_dashboards`.
    /// One page of a list: `bounds` gives the deadline the list's pages
    /// share; answers the page and its size in bytes.
    pub(super) async fn workspace_get<T: DeserializeOwned>(
        &self,
        deployment_name: &str,
        path: &str,
        query: Vec<(&'static str, String)>,
        bounds: &ListBounds,
        cancel: &CancellationToken,
    ) -> Result<(T, usize), DatabricksError> {
        let host = self.workspace_host(deployment_name)?;
        let call = Call {
            method: Method::GET,
            url: format!("{host}{path}"),
            query,
            body: None,
            what: bounds.what.clone(),
            idempotent: true,
            audience: Audience::Workspace { host: host.clone() },
            kind: Answer::Page,
            deadline: Some(bounds.deadline),
        };
        self.run_sized(call, cancel).await
    }

    // ---- machinery ----

    async fn run<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<T, DatabricksError> {
        self.run_sized(call, cancel).await.map(|(v, _)| v)
    }

    /// Same, with the answer's size in bytes.
    async fn run_sized<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<(T, usize), DatabricksError> {
        match self.execute(call, cancel).await {
            Ok(v) => Ok(v),
            Err(ExecError::Final(e))
            | Err(ExecError::Ambiguous(e))
            | Err(ExecError::CancelledAmbiguous(e)) => Err(e),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.cfg.retry_base_delay;
        let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(MAX_BACKOFF);
        let f = self.inner.rng.lock().map(|mut r| r.f64()).unwrap_or(0.5);
        capped.mul_f64(0.5 + 0.5 * f)
    }

    /// Runs a call with retries inside the retry budget, and logs it once
    /// at debug: method, path, last status, duration and retries.
    async fn execute<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<(T, usize), ExecError> {
        let start = Instant::now();
        let mut seen = Seen::default();
        let result = self.execute_attempts(&call, cancel, &mut seen).await;
        let path = url_path(&call.url);
        let duration_ms = start.elapsed().as_millis() as u64;
        let retries = seen.attempts.saturating_sub(1);
        match seen.status {
            Some(status) => {
                tracing::debug!(method = %call.method, path, status, duration_ms, retries, "Databricks call")
            }
            None => {
                tracing::debug!(method = %call.method, path, status = "no answer", duration_ms, retries, "Databricks call")
            }
        }
        result
    }

    async fn execute_attempts<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        cancel: &CancellationToken,
        seen: &mut Seen,
    ) -> Result<(T, usize), ExecError> {
        let start = Instant::now();
        let (deadline, budget) = Self::budget_of(
            call.deadline
                .unwrap_or(start + self.inner.cfg.retry_timeout),
        );
        let mut attempts = 0u32;
        let mut unreachable_attempts = 0u32;
        let mut last: Option<String> = None;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            seen.attempts = attempts;
            // The deadline covers the whole attempt: the token, the answer
            // and a body that trickles in.
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.attempt(call, cancel, seen)).await;
            let Ok(attempt) = attempt else {
                let api_call = format!("{} {} ({})", call.method, call.url, call.what);
                let e = DatabricksError::Deadline {
                    what: if seen.getting_token {
                        format!("{}, before {api_call}", self.token_request(&call.audience))
                    } else {
                        api_call
                    },
                    elapsed_secs: start.elapsed().as_secs_f64(),
                    budget,
                    attempts,
                    last: last.unwrap_or_else(|| {
                        "the answer had not arrived (or was still arriving)".to_string()
                    }),
                };
                return Err(if call.idempotent {
                    ExecError::Final(e)
                } else {
                    ExecError::Ambiguous(e)
                });
            };
            let failure = match attempt {
                Ok(body) => {
                    let size = body.len();
                    let body = if body.is_empty() {
                        &b"{}"[..]
                    } else {
                        &body[..]
                    };
                    return serde_json::from_slice(body)
                        .map(|v| (v, size))
                        .map_err(|e| {
                            ExecError::Final(DatabricksError::Decode {
                                url: call.url.clone(),
                                message: printable(&e.to_string(), MESSAGE_MAX_BYTES),
                            })
                        });
                }
                Err(f) => f,
            };
            match failure {
                Failure::Fatal(DatabricksError::Unauthenticated { .. })
                    if self.inner.auth.refreshable() && !reauthenticated =>
                {
                    // A cached token may have been revoked: get a new one once.
                    reauthenticated = true;
                    self.inner.auth.invalidate().await;
                    tracing::debug!(
                        "401 with a cached token; fetching a new token and trying again"
                    );
                }
                Failure::Fatal(e) => return Err(ExecError::Final(e)),
                Failure::CancelledInFlight(e) if !call.idempotent => {
                    return Err(ExecError::CancelledAmbiguous(e))
                }
                Failure::CancelledInFlight(e) => return Err(ExecError::Final(e)),
                Failure::Retry {
                    error,
                    retry_after,
                    ambiguous,
                    unreachable,
                } => {
                    if ambiguous && !call.idempotent {
                        return Err(ExecError::Ambiguous(error));
                    }
                    let mut delay = retry_after.unwrap_or_else(|| self.backoff(attempts));
                    if let Some(reason) = unreachable {
                        // Nothing answers there: one quick retry, not minutes.
                        unreachable_attempts += 1;
                        if unreachable_attempts >= UNREACHABLE_ATTEMPTS {
                            return Err(ExecError::Final(DatabricksError::Unreachable {
                                host: origin(&call.url),
                                reason: format!(
                                    "{reason} ({unreachable_attempts} attempts in {:.1}s, while calling {} for {})",
                                    start.elapsed().as_secs_f64(),
                                    url_path(&call.url),
                                    call.what
                                ),
                                hint: self.host_hint(&call.audience),
                            }));
                        }
                        delay = delay.min(UNREACHABLE_RETRY_DELAY);
                    }
                    last = Some(error.to_string());
                    if Instant::now()
                        .checked_add(delay)
                        .is_none_or(|t| t > deadline)
                    {
                        return Err(ExecError::Final(DatabricksError::RetriesExhausted {
                            attempts,
                            elapsed_secs: start.elapsed().as_secs_f64(),
                            budget,
                            last: Box::new(error),
                        }));
                    }
                    if delay >= LONG_WAIT {
                        tracing::info!(method = %call.method, path = url_path(&call.url), attempt = attempts, delay_ms = delay.as_millis() as u64, error = %error, "waiting before retrying {}", call.what);
                    } else {
                        tracing::trace!(method = %call.method, path = url_path(&call.url), attempt = attempts, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
                    }
                    sleep_or_cancel(delay, cancel, &format!("backing off ({})", call.what)).await?;
                }
            }
        }
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        cancel: &CancellationToken,
        seen: &mut Seen,
    ) -> Result<bytes::Bytes, Failure> {
        let inner = &self.inner;
        inner
            .limiter
            .acquire(cancel)
            .await
            .map_err(Failure::Fatal)?;
        seen.getting_token = true;
        let bearer = tokio::select! {
            _ = cancel.cancelled() => {
                return Err(Failure::Fatal(DatabricksError::Cancelled { during: format!("getting a token for {}", call.what) }))
            }
            t = inner.auth.bearer(&inner.http, &call.audience) => t,
        };
        seen.getting_token = false;
        let token = match bearer {
            Ok(t) => t,
            // A token endpoint that went silent: no retry (each would wait
            // the read timeout again); the error names the token request.
            Err(f) if f.silent_after.is_some() => {
                let url = call.audience.oauth_token_url();
                return Err(Failure::Fatal(self.no_answer(
                    &url,
                    self.token_request(&call.audience),
                    f.silent_after.unwrap_or_default(),
                    &call.audience,
                )));
            }
            Err(f) if f.retryable => {
                return Err(Failure::Retry {
                    error: f.error,
                    retry_after: f.retry_after,
                    ambiguous: false,
                    unreachable: f.unreachable,
                })
            }
            Err(f) => return Err(Failure::Fatal(f.error)),
        };
        let mut req = inner
            .http
            .request(call.method.clone(), &call.url)
            .bearer_auth(token.expose());
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        tracing::trace!(method = %call.method, url = %call.url, "sending");
        // Cancelled before anything was sent: nothing can have taken effect.
        if cancel.is_cancelled() {
            return Err(Failure::Fatal(DatabricksError::Cancelled {
                during: format!("about to call {} {}", call.method, call.url),
            }));
        }
        let sent_at = Instant::now();
        let sent = async {
            let resp = req.send().await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            if status.is_redirection() {
                return Ok(Got::Redirect(status.as_u16(), headers));
            }
            if status.is_success() {
                return match read_capped(resp, call.kind).await {
                    Ok(body) => Ok(Got::Answer(status, headers, body)),
                    Err(BodyError::TooLarge { cap, kind }) => Ok(Got::TooLarge(cap, kind)),
                    Err(BodyError::Transport(e)) => Err(e),
                };
            }
            let (body, _cut) = read_prefix(resp, Answer::Error.cap()).await?;
            Ok::<_, reqwest::Error>(Got::Answer(status, headers, body))
        };
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                return Err(Failure::CancelledInFlight(DatabricksError::Cancelled { during: format!("calling {} {}", call.method, call.url) }))
            }
            r = sent => r,
        };
        let (status, headers, body) = match result {
            Ok(Got::Answer(status, headers, body)) => (status, headers, body),
            Ok(Got::Redirect(status, headers)) => {
                seen.status = Some(status);
                return Err(Failure::Fatal(DatabricksError::Redirected {
                    url: call.url.clone(),
                    message: redirect_error(status, &headers),
                }));
            }
            Ok(Got::TooLarge(cap, kind)) => {
                return Err(Failure::Fatal(DatabricksError::TooLarge {
                    url: call.url.clone(),
                    message: too_large_message(cap, kind),
                }));
            }
            Err(e) if e.is_builder() => {
                // A request that cannot be built (a credential with a line
                // break, say) never will be: fail now, naming the credential.
                return Err(Failure::Fatal(DatabricksError::Config(format!(
                    "cannot send {} {} with {}: {}",
                    call.method,
                    call.url,
                    inner.auth.describe(),
                    error_chain(&e)
                ))));
            }
            Err(e) if call.idempotent && timed_out_after_connecting(&e) => {
                // Connected, then silent past the read timeout: a read is
                // not retried (each try would wait as long again), so a
                // silent host costs one read timeout.
                return Err(Failure::Fatal(self.no_answer(
                    &call.url,
                    format!("{} {} ({})", call.method, url_path(&call.url), call.what),
                    sent_at.elapsed(),
                    &call.audience,
                )));
            }
            Err(e) => {
                // Not connected: nothing was sent. Anything else (timeout, a
                // connection dropped after sending) may have been acted on.
                let ambiguous = !e.is_connect();
                return Err(Failure::Retry {
                    error: DatabricksError::Transport {
                        url: call.url.clone(),
                        message: printable(&error_chain(&e), MESSAGE_MAX_BYTES),
                    },
                    retry_after: None,
                    ambiguous,
                    unreachable: unreachable_reason(&e),
                });
            }
        };
        seen.status = Some(status.as_u16());
        tracing::trace!(method = %call.method, url = %call.url, status = status.as_u16(), "Databricks answer");
        tracing::trace!(body = %printable(&String::from_utf8_lossy(&body), 4096), "Databricks answer body");
        if status.is_success() {
            return Ok(body);
        }
        let error = self.map_error(status, &body, call);
        match status.as_u16() {
            429 => Err(Failure::Retry {
                error,
                retry_after: retry_after(&headers),
                ambiguous: false,
                unreachable: None,
            }),
            502..=504 => Err(Failure::Retry {
                error,
                retry_after: retry_after(&headers),
                ambiguous: true,
                unreachable: None,
            }),
            s if s >= 500 && !call.idempotent => Err(Failure::Retry {
                error,
                retry_after: None,
                ambiguous: true,
                unreachable: None,
            }),
            _ => Err(Failure::Fatal(error)),
        }
    }

    fn map_error(&self, status: StatusCode, body: &[u8], call: &Call<'_>) -> DatabricksError {
        let (error_code, message) = match serde_json::from_slice::<ApiErrorBody>(body) {
            Ok(ApiErrorBody {
                error_code,
                message: Some(m),
            }) => (
                printable(&error_code.unwrap_or_default(), 100),
                printable(&m, MESSAGE_MAX_BYTES),
            ),
            _ => (String::new(), error_text(body)),
        };
        let error_code = if error_code.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("UNKNOWN")
                .to_uppercase()
                .replace(' ', "_")
        } else {
            error_code
        };
        match status.as_u16() {
            404 => DatabricksError::NotFound {
                what: call.what.clone(),
                error_code,
                message,
            },
            401 => DatabricksError::Unauthenticated {
                credential: self.inner.auth.describe(),
                error_code,
                // A personal access token on the Account API: say why it
                // cannot work (Databricks' personal access token page).
                message: match (&call.audience, self.inner.auth.kind().account_api_warning()) {
                    (Audience::Account { .. }, Some(why)) => format!("{message}. {why}"),
                    _ => message,
                },
            },
            403 => DatabricksError::PermissionDenied {
                credential: self.inner.auth.describe(),
                error_code,
                message,
            },
            s => DatabricksError::Api {
                status: s,
                error_code,
                message,
            },
        }
    }
}

/// What an attempt read.
enum Got {
    Answer(StatusCode, reqwest::header::HeaderMap, bytes::Bytes),
    /// A 3xx: its status and headers (the `Location`).
    Redirect(u16, reqwest::header::HeaderMap),
    /// A successful answer over its cap: the cap and the kind.
    TooLarge(usize, Answer),
}

impl AccountClient {
    /// The token request a call to `audience` makes, for messages.
    fn token_request(&self, audience: &Audience) -> String {
        match self.inner.auth.kind() {
            super::settings::AuthKind::DatabricksCli { .. } => {
                "the Databricks CLI's `databricks auth token`".to_string()
            }
            _ => format!("POST {} (an OAuth token)", audience.oauth_token_url()),
        }
    }

    /// A call whose host accepted the connection and then went silent.
    fn no_answer(
        &self,
        url: &str,
        call: String,
        waited: Duration,
        audience: &Audience,
    ) -> DatabricksError {
        let whole = self.inner.cfg.http_timeout;
        let reason = if waited + Duration::from_secs(1) < whole {
            format!(
                "the host accepted the connection but sent nothing for {}s, the read timeout of every Databricks call (connect timeout {}s)",
                READ_TIMEOUT.min(whole).as_secs(),
                CONNECT_TIMEOUT.min(whole).as_secs()
            )
        } else {
            format!(
                "the answer did not complete within {}s, the timeout of one request (DATABRICKS_HTTP_TIMEOUT_SECONDS)",
                whole.as_secs()
            )
        };
        DatabricksError::NoAnswer {
            host: origin(url),
            call,
            waited_secs: waited.as_secs_f64(),
            reason,
            hint: self.host_hint(audience),
        }
    }

    /// Where a host came from, for "cannot reach" messages.
    fn host_hint(&self, audience: &Audience) -> String {
        match audience {
            Audience::Workspace { .. } => {
                let t = &self.inner.cfg.workspace_host_template;
                if t == super::settings::DEFAULT_WORKSPACE_HOST_TEMPLATE {
                    format!(". This workspace host was built from the default workspace_host_template {t:?}: if the workspace API is elsewhere, set workspace_host_template")
                } else {
                    format!(". This workspace host was built from workspace_host_template {:?}: check that setting", printable(t, 300))
                }
            }
            Audience::Account { .. } => {
                ". This is the Account API host (`host` / DATABRICKS_HOST): check that setting"
                    .to_string()
            }
        }
    }
}

/// `terraform-provider-cmk/<version> terraform/<version>`, as Databricks'
/// own SDKs and provider name themselves (product first, then what runs it).
pub fn user_agent(terraform_version: Option<&str>) -> String {
    let mut ua = format!("terraform-provider-cmk/{}", crate::VERSION);
    if let Some(v) = terraform_version.map(str::trim).filter(|v| !v.is_empty()) {
        ua.push_str(" terraform/");
        ua.push_str(v);
    }
    ua
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The requested key ids not (yet) in their fields: (field, wanted, actual).
fn missing_keys(
    update: &WorkspaceKeyUpdate,
    ws: &Workspace,
) -> Vec<(&'static str, String, Option<String>)> {
    [
        (
            "managed_services_customer_managed_key_id",
            &update.managed_services_customer_managed_key_id,
            &ws.managed_services_customer_managed_key_id,
        ),
        (
            "storage_customer_managed_key_id",
            &update.storage_customer_managed_key_id,
            &ws.storage_customer_managed_key_id,
        ),
    ]
    .into_iter()
    .filter_map(|(field, wanted, actual)| {
        let w = wanted.as_ref()?;
        (actual.as_deref() != Some(w.as_str())).then(|| (field, w.clone(), actual.clone()))
    })
    .collect()
}

fn same_configuration(
    k: &CustomerManagedKey,
    req: &CreateCustomerManagedKey,
    since_ms: i64,
) -> bool {
    let mut a = k.use_cases.clone();
    let mut b = req.use_cases.clone();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    k.creation_time >= since_ms
        && a == b
        && k.aws_key_info.as_ref().map(|i| i.key_arn.as_str())
            == Some(req.aws_key_info.key_arn.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::databricks::{AwsKeyInfo, DatabricksSettings, Secret, StaticEnvironment};
    use crate::rules::catalog::KeyFeature;

    fn key(arn: &str, cases: &[KeyFeature], t: i64) -> CustomerManagedKey {
        CustomerManagedKey {
            customer_managed_key_id: "k".into(),
            account_id: "a".into(),
            creation_time: t,
            use_cases: cases.to_vec(),
            aws_key_info: Some(AwsKeyInfo {
                key_arn: arn.into(),
                ..Default::default()
            }),
            gcp_key_info: None,
        }
    }

    #[test]
    fn lost_create_matches_same_arn_and_use_cases_created_since() {
        let req = CreateCustomerManagedKey {
            use_cases: vec![KeyFeature::Storage, KeyFeature::ManagedServices],
            aws_key_info: AwsKeyInfo {
                key_arn: "arn:1".into(),
                ..Default::default()
            },
        };
        let both = [KeyFeature::ManagedServices, KeyFeature::Storage];
        assert!(same_configuration(&key("arn:1", &both, 100), &req, 100));
        assert!(!same_configuration(&key("arn:1", &both, 99), &req, 100));
        assert!(!same_configuration(&key("arn:2", &both, 100), &req, 100));
        assert!(!same_configuration(
            &key("arn:1", &[KeyFeature::Storage], 100),
            &req,
            100
        ));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let s = DatabricksSettings {
            account_id: Some("0d26daa6-5e44-4c97-a497-ef015f91254a".into()),
            token: Some(Secret::new("t")),
            retry_base_delay: Some(Duration::from_millis(100)),
            jitter_seed: Some(1),
            ..Default::default()
        };
        let c = AccountClient::with_environment(&s, &StaticEnvironment::default()).unwrap();
        for attempt in 1..=12u32 {
            let full = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            let d = c.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(format!("{c:?}").contains("the personal access token from the argument `token`"));
    }

    fn fuzz_cases() -> u32 {
        crate::test_settings::fuzz_cases(256)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(fuzz_cases()))]

        /// Any value as a path segment: one segment of the URL reqwest sends,
        /// no query, no fragment, and it decodes back to the value.
        #[test]
        fn fuzz_path_segment(s in proptest::prelude::any::<String>()) {
            let Ok(enc) = path_segment(&s) else {
                proptest::prop_assert!(s.is_empty() || s == "." || s == "..");
                return Ok(());
            };
            proptest::prop_assert!(enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let u = reqwest::Url::parse(&format!("http://h/a/{enc}")).unwrap();
            proptest::prop_assert!(u.query().is_none() && u.fragment().is_none());
            let segs: Vec<&str> = u.path_segments().unwrap().collect();
            proptest::prop_assert_eq!(segs.len(), 2);
            proptest::prop_assert_eq!(segs[1], enc.as_str());
            let mut decoded = Vec::new();
            let b = enc.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    decoded.push(u8::from_str_radix(&enc[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    decoded.push(b[i]);
                    i += 1;
                }
            }
            proptest::prop_assert_eq!(String::from_utf8(decoded).unwrap(), s);
        }
    }

    #[test]
    fn path_segments_are_encoded_by_one_function() {
        for (raw, want) in [
            (
                "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
                "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            ),
            ("a/b", "a%2Fb"),
            ("\\..\\_sandbox\\state", "%5C..%5C_sandbox%5Cstate"),
            ("%2e%2e", "%252e%252e"),
            ("?x=1", "%3Fx%3D1"),
            ("#frag", "%23frag"),
            ("a b", "a%20b"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(path_segment(raw).unwrap(), want, "{raw}");
        }
        for refused in ["", ".", ".."] {
            let e = path_segment(refused).unwrap_err();
            assert!(e.to_string().contains("request not sent"), "{e}");
        }
        // What reqwest makes of an encoded segment: one segment, no query, no fragment.
        let u = reqwest::Url::parse(&format!(
            "http://h/api/2.0/accounts/a/customer-managed-keys/{}",
            path_segment("..\\..\\_sandbox?x=1#f").unwrap()
        ))
        .unwrap();
        assert_eq!(u.path_segments().unwrap().count(), 6, "{u}");
        assert_eq!(
            u.path_segments().unwrap().next_back(),
            Some("..%5C..%5C_sandbox%3Fx%3D1%23f")
        );
        assert!(u.query().is_none() && u.fragment().is_none(), "{u}");
    }

    const ACCT: &str = "11111111-2222-4333-8444-555555555555";
    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    async fn sandbox(latency_ms: u64) -> crate::sandbox::SandboxHandle {
        crate::tfplugin::install_crypto_provider();
        let world = serde_json::from_value(serde_json::json!({
            "admin_token": "admin",
            "accounts": [{"account_id": ACCT, "tokens": ["t"]}]
        }))
        .unwrap();
        let mut c = crate::sandbox::SandboxConfig::new(world);
        c.faults.latency_ms = latency_ms;
        // These tests are about creates, not credentials: the sandbox takes
        // the personal access token on the Account API here.
        c.relaxed_auth = true;
        crate::sandbox::start(c).await.unwrap()
    }

    fn client(h: &crate::sandbox::SandboxHandle) -> AccountClient {
        let s = DatabricksSettings {
            host: Some(h.url()),
            account_id: Some(ACCT.into()),
            token: Some(Secret::new("t")),
            rate_limit: Some(1000.0),
            retry_base_delay: Some(Duration::from_millis(20)),
            ..Default::default()
        };
        AccountClient::with_environment(&s, &StaticEnvironment::default()).unwrap()
    }

    fn request() -> CreateCustomerManagedKey {
        CreateCustomerManagedKey {
            use_cases: vec![KeyFeature::ManagedServices],
            aws_key_info: AwsKeyInfo {
                key_arn: ARN.into(),
                ..Default::default()
            },
        }
    }

    /// Issue 10: Ctrl-C during a slow POST left the configuration, created
    /// anyway, out of Terraform's state. The cancelled create looks it up
    /// and answers it.
    #[tokio::test]
    async fn a_create_cancelled_in_flight_answers_what_it_made() {
        let h = sandbox(1500).await;
        let c = client(&h);
        let cancel = CancellationToken::new();
        let fire = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            fire.cancel();
        });
        let k = c
            .create_customer_managed_key(&request(), &cancel)
            .await
            .expect("the configuration the cancelled POST made");
        let all = c
            .list_customer_managed_keys(&CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].customer_managed_key_id, k.customer_managed_key_id);
        h.shutdown().await;
    }

    /// Cancelled before anything was sent: no recovery, no request.
    #[tokio::test]
    async fn a_create_cancelled_before_sending_sends_nothing() {
        let h = sandbox(0).await;
        let c = client(&h);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = c
            .create_customer_managed_key(&request(), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, DatabricksError::Cancelled { .. }), "{e}");
        let all = c
            .list_customer_managed_keys(&CancellationToken::new())
            .await
            .unwrap();
        assert!(all.is_empty(), "{all:?}");
        h.shutdown().await;
    }

    /// Two identical creates, one answer lost: the lost one never adopts the
    /// configuration the other create already returned.
    #[tokio::test]
    async fn a_lost_create_never_adopts_a_configuration_already_claimed() {
        let h = sandbox(0).await;
        let c = client(&h);
        let cancel = CancellationToken::new();
        let first = c
            .create_customer_managed_key(&request(), &cancel)
            .await
            .unwrap();
        let all = c.list_customer_managed_keys(&cancel).await.unwrap();
        assert!(c
            .unclaimed_match(all, &request(), now_ms() - CREATE_MATCH_SKEW_MS)
            .is_none());
        let second = c
            .create_customer_managed_key(&request(), &cancel)
            .await
            .unwrap();
        assert_ne!(
            first.customer_managed_key_id,
            second.customer_managed_key_id
        );
        h.shutdown().await;
    }
}
