//! The state every handler of the sandbox shares: the world, issued
//! tokens, faults, counters, and who a request's credential is.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::http::err;
use super::http::lock;
use super::world::{persist, Faults, World};

/// Whom an issued OAuth token is for: the Account API of an account, or
/// one workspace's own API (its OIDC endpoint issued it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenAudience {
    Account(String),
    Workspace(String),
}

pub(crate) struct IssuedToken {
    pub(crate) audience: TokenAudience,
    pub(crate) expires_at: Instant,
}

pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub faults: Mutex<Faults>,
    pub rng: Mutex<fastrand::Rng>,
    /// Start of the current one-second window and calls seen in it.
    pub window: Mutex<(Instant, u32)>,
    pub state_path: Option<PathBuf>,
    pub provisioning_delay: Duration,
    pub token_lifetime: Duration,
    pub stats: Mutex<Stats>,
    /// Accept personal access tokens on the Account API and account tokens
    /// on workspace APIs (see `SandboxConfig::relaxed_auth`).
    pub relaxed_auth: bool,
    pub recorder: Arc<super::recorder::Recorder>,
    /// `http://ADDR` of the address the sandbox listens on (an unspecified
    /// address read as 127.0.0.1): what discovery answers name.
    pub base_url: String,
}

/// Counters for tests (`GET /_sandbox/stats`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Stats {
    /// API calls that reached the fault layer (account, OAuth, dashboards).
    pub api_requests: u64,
    /// Every HTTP request of any path (admin calls and unknown paths too),
    /// except `GET /_sandbox/stats` itself: proves that nothing was sent.
    pub all_requests: u64,
    pub tokens_issued: u64,
    pub creates_committed: u64,
    /// Faults injected so far: 5xx answers, 429 answers, creates committed
    /// whose answer was dropped.
    pub injected_errors: u64,
    pub injected_throttles: u64,
    pub dropped_creates: u64,
    /// Requests per `User-Agent` header (how clients identify themselves).
    pub user_agents: std::collections::BTreeMap<String, u64>,
}

pub(crate) type S = State<Arc<Shared>>;

impl Shared {
    /// The world, locked for a change that [`Change::commit`] persists.
    pub(crate) fn change(&self) -> Change<'_> {
        let world = lock(&self.world);
        let before = self.state_path.as_ref().map(|_| world.clone());
        Change {
            shared: self,
            world,
            before,
        }
    }

    /// The credential a request carries, as the sandbox knows it.
    pub(crate) fn credential(&self, headers: &HeaderMap) -> Result<Credential, Response> {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(err(
                401,
                "UNAUTHENTICATED",
                "Missing credentials: send Authorization: Bearer <token>",
            ));
        };
        if let Some(t) = lock(&self.tokens).get(token) {
            if t.expires_at <= Instant::now() {
                return Err(err(401, "UNAUTHENTICATED", "Token expired"));
            }
            return Ok(Credential::OAuth(t.audience.clone()));
        }
        let world = lock(&self.world);
        for a in &world.accounts {
            if a.tokens.iter().any(|t| t == token) {
                return Ok(Credential::AccountPat(a.account_id.clone()));
            }
            for w in &a.workspaces {
                if w.tokens.iter().any(|t| t == token) {
                    return Ok(Credential::WorkspacePat {
                        account_id: a.account_id.clone(),
                        deployment: w.workspace.deployment_name.clone().unwrap_or_default(),
                    });
                }
            }
        }
        Err(err(401, "UNAUTHENTICATED", "Invalid access token"))
    }

    /// The account whose Account API a credential may call. Databricks: "to
    /// automate Databricks account-level functionality, you cannot use
    /// Databricks personal access tokens" (personal access token page); the
    /// Account API takes OAuth tokens of the account's own endpoint.
    pub(crate) fn account_api_caller(&self, headers: &HeaderMap) -> Result<String, Response> {
        match self.credential(headers)? {
            Credential::OAuth(TokenAudience::Account(a)) => Ok(a),
            Credential::OAuth(TokenAudience::Workspace(d)) => Err(err(
                401,
                "UNAUTHENTICATED",
                format!("This token was issued by workspace {d}'s OIDC endpoint; the Account API takes tokens of the account's OIDC endpoint (/oidc/accounts/<account_id>/v1/token)"),
            )),
            Credential::AccountPat(a) | Credential::WorkspacePat { account_id: a, .. }
                if self.relaxed_auth =>
            {
                Ok(a)
            }
            Credential::AccountPat(_) | Credential::WorkspacePat { .. } => Err(err(
                401,
                "UNAUTHENTICATED",
                "Personal access tokens cannot be used with the Account API: authenticate with OAuth (a service principal's client credentials, or a user's login through the Databricks CLI)",
            )),
        }
    }

    /// Checks the token may call the Account API of `account_id`.
    pub(crate) fn authorize(&self, headers: &HeaderMap, account_id: &str) -> Result<(), Response> {
        let owner = self.account_api_caller(headers)?;
        if owner != account_id {
            return Err(err(
                403,
                "PERMISSION_DENIED",
                format!("This credential is not allowed to access account {account_id}"),
            ));
        }
        if !lock(&self.world)
            .accounts
            .iter()
            .any(|a| a.account_id == account_id)
        {
            return Err(err(
                403,
                "PERMISSION_DENIED",
                format!("Account {account_id} is not accessible"),
            ));
        }
        Ok(())
    }

    /// Checks the token may call the own API of workspace `deployment`: a
    /// token of that workspace's OIDC endpoint, or a personal access token
    /// that workspace issued. An account-level token is refused, as
    /// Databricks refuses it. Answers the owning account's id; call it
    /// before locking the world.
    pub(crate) fn authorize_workspace(
        &self,
        headers: &HeaderMap,
        deployment: &str,
    ) -> Result<String, Response> {
        let owner = lock(&self.world)
            .accounts
            .iter()
            .find(|a| {
                a.workspaces
                    .iter()
                    .any(|w| w.workspace.deployment_name.as_deref() == Some(deployment))
            })
            .map(|a| a.account_id.clone())
            .ok_or_else(|| {
                err(
                    404,
                    "ENDPOINT_NOT_FOUND",
                    format!("No workspace {deployment}"),
                )
            })?;
        let owner = owner.as_str();
        let other_account = || {
            err(
                403,
                "PERMISSION_DENIED",
                "This credential is not allowed in this workspace",
            )
        };
        let verdict = match self.credential(headers)? {
            Credential::OAuth(TokenAudience::Workspace(d)) if d == deployment => Ok(()),
            Credential::WorkspacePat { deployment: d, .. } if d == deployment => Ok(()),
            Credential::OAuth(TokenAudience::Workspace(d))
            | Credential::WorkspacePat { deployment: d, .. } => Err(err(
                401,
                "UNAUTHENTICATED",
                format!("This token belongs to workspace {d}, not to workspace {deployment}"),
            )),
            Credential::OAuth(TokenAudience::Account(a)) | Credential::AccountPat(a)
                if self.relaxed_auth =>
            {
                if a == owner {
                    Ok(())
                } else {
                    Err(other_account())
                }
            }
            Credential::OAuth(TokenAudience::Account(_)) => Err(err(
                401,
                "UNAUTHENTICATED",
                "This token was issued for the Account API; a workspace's API takes tokens of the workspace's own OIDC endpoint (<workspace>/oidc/v1/token)",
            )),
            Credential::AccountPat(_) => Err(err(
                401,
                "UNAUTHENTICATED",
                "This personal access token was not issued by this workspace",
            )),
        };
        verdict.map(|()| owner.to_string())
    }

    pub(crate) fn admin_check(&self, headers: &HeaderMap) -> Result<(), Response> {
        self.admin(headers)
    }

    pub(crate) fn admin(&self, headers: &HeaderMap) -> Result<(), Response> {
        let want = lock(&self.world).admin_token.clone();
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (want, got) {
            (Some(w), Some(g)) if w == g => Ok(()),
            (None, _) => Err(err(
                403,
                "PERMISSION_DENIED",
                "admin calls are disabled: start the sandbox with --admin-token or an admin_token in the seed",
            )),
            _ => Err(err(401, "UNAUTHENTICATED", "admin token required")),
        }
    }
}

/// What a bearer token is, to the sandbox.
pub(crate) enum Credential {
    OAuth(TokenAudience),
    /// A personal access token of the account's users (legacy seed field).
    AccountPat(String),
    /// A personal access token issued by one workspace.
    WorkspacePat {
        account_id: String,
        deployment: String,
    },
}

/// The world locked for a change. Memory never holds what the state file
/// does not: a failed write puts the world back as it was.
pub(crate) struct Change<'a> {
    shared: &'a Shared,
    world: std::sync::MutexGuard<'a, World>,
    /// The world as it was (only when there is a state file).
    before: Option<World>,
}

impl Change<'_> {
    /// Persists the changed world; a failed write undoes the change and
    /// answers 500 (a full disk must not be answered 201).
    pub(crate) fn commit(&mut self) -> Result<(), Response> {
        let Some(p) = &self.shared.state_path else {
            return Ok(());
        };
        match persist(p, &self.world) {
            Ok(()) => {
                self.before = Some(self.world.clone());
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot persist sandbox state; the change is undone");
                if let Some(b) = self.before.clone() {
                    *self.world = b;
                }
                Err(err(
                    500,
                    "INTERNAL_ERROR",
                    "cmk-sandbox could not write its state file; nothing was changed",
                ))
            }
        }
    }
}

impl std::ops::Deref for Change<'_> {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl std::ops::DerefMut for Change<'_> {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.world
    }
}
