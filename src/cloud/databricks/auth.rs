//! Bearer tokens, as Databricks defines which API takes which:
//!
//! - the Account API takes OAuth tokens: machine-to-machine (a service
//!   principal's client credentials at the account's token endpoint) or
//!   user-to-machine through the Databricks CLI's login (`databricks auth
//!   token`, as the official SDKs' `databricks-cli` auth type does);
//! - a workspace's own API takes a token of that workspace: OAuth from the
//!   workspace's OIDC endpoint (`{workspace}/oidc/v1/token`), or the CLI's
//!   login for that workspace host;
//! - a personal access token is sent as is, but Databricks documents that it
//!   works for one workspace only and never for the Account API (see
//!   [`AuthKind::account_api_warning`]).
//!
//! Tokens are cached per audience and refreshed before they expire.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::DatabricksError;
use super::http::{
    check_header_value, error_text, printable, read_capped, read_prefix, redirect_error,
    retry_after, timed_out_after_connecting, too_large_message, unreachable_reason, Answer,
    BodyError, MESSAGE_MAX_BYTES,
};
use super::settings::{AuthKind, Secret};

/// How long `databricks auth token` may take (it may refresh over the network).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Lifetime assumed for a CLI token whose expiry cannot be read.
const CLI_UNKNOWN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest lifetime a token is trusted for, whatever its issuer says
/// (`expires_in` comes from the network: 2^64-1 must not overflow a clock).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token lifetime from the network, bounded.
fn clamp_lifetime(d: Duration) -> Duration {
    d.min(MAX_TOKEN_LIFETIME)
}

/// Whom a token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Audience {
    /// The Account API of `account_id` at `host`.
    Account { host: String, account_id: String },
    /// The own API of the workspace at `host`.
    Workspace { host: String },
}

impl Audience {
    /// The OAuth client-credentials endpoint for this audience.
    pub fn oauth_token_url(&self) -> String {
        match self {
            Audience::Account { host, account_id } => {
                format!("{host}/oidc/accounts/{account_id}/v1/token")
            }
            Audience::Workspace { host } => format!("{host}/oidc/v1/token"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Audience::Account { account_id, .. } => format!("the Account API of {account_id}"),
            Audience::Workspace { host } => format!("workspace {host}"),
        }
    }
}

struct CachedToken {
    token: Secret,
    expires_at: Instant,
    lifetime: Duration,
}

impl CachedToken {
    /// Fresh enough to send: refresh once less than a quarter of its life
    /// (at most a minute) is left, so a call never carries a token that
    /// expires on the way.
    fn fresh(&self, now: Instant) -> bool {
        let margin = (self.lifetime / 4).min(Duration::from_secs(60));
        now + margin < self.expires_at
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// What `databricks auth token` prints.
#[derive(Deserialize)]
struct CliTokenAnswer {
    access_token: String,
    /// RFC 3339.
    #[serde(default)]
    expiry: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorAnswer {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

pub(crate) struct Authenticator {
    kind: AuthKind,
    cache: tokio::sync::Mutex<HashMap<Audience, CachedToken>>,
}

/// A failure to get a token: the error, and whether trying again may help.
pub(crate) struct AuthFailure {
    pub error: DatabricksError,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    /// Nothing reached the token endpoint (why, for a person).
    pub unreachable: Option<&'static str>,
    /// The token endpoint accepted the connection and then went silent
    /// past the read timeout: how long the request waited.
    pub silent_after: Option<Duration>,
}

impl AuthFailure {
    fn fatal(error: DatabricksError) -> Self {
        AuthFailure {
            error,
            retryable: false,
            retry_after: None,
            unreachable: None,
            silent_after: None,
        }
    }
}

impl Authenticator {
    pub fn new(kind: AuthKind) -> Self {
        Authenticator {
            kind,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn describe(&self) -> String {
        self.kind.describe()
    }

    pub fn kind(&self) -> &AuthKind {
        &self.kind
    }

    /// Whether a 401 may be cured by fetching a new token.
    pub fn refreshable(&self) -> bool {
        !matches!(self.kind, AuthKind::Pat { .. })
    }

    /// Forgets cached tokens (after a 401).
    pub async fn invalidate(&self) {
        self.cache.lock().await.clear();
    }

    /// The bearer token for a call to `audience`.
    pub async fn bearer(
        &self,
        http: &reqwest::Client,
        audience: &Audience,
    ) -> Result<Secret, AuthFailure> {
        if let AuthKind::Pat { token, .. } = &self.kind {
            return Ok(token.clone());
        }
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(audience) {
            if c.fresh(Instant::now()) {
                return Ok(c.token.clone());
            }
            tracing::debug!(audience = %audience.describe(), "token near expiry; refreshing");
        }
        let sent_at = Instant::now();
        let (token, lifetime): (Secret, Duration) = match &self.kind {
            AuthKind::Pat { .. } => unreachable!("returned above"),
            AuthKind::OAuthM2m {
                client_id,
                client_secret,
                ..
            } => client_credentials(http, audience, client_id, client_secret).await?,
            AuthKind::DatabricksCli {
                cli_path,
                profile,
                source,
            } => {
                let (cli_path, profile, source, audience) = (
                    cli_path.clone(),
                    profile.clone(),
                    source.clone(),
                    audience.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    cli_token(&cli_path, profile.as_deref(), &source, &audience)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(format!(
                        "the Databricks CLI token request did not finish: {e}"
                    ))
                })
                .map_err(|m| AuthFailure::fatal(DatabricksError::Config(m)))?
            }
        };
        let source = self.kind.describe();
        check_header_value("the token issued for", &source, token.expose())
            .map_err(|m| AuthFailure::fatal(DatabricksError::Config(m)))?;
        let lifetime = clamp_lifetime(lifetime);
        tracing::debug!(audience = %audience.describe(), lifetime_secs = lifetime.as_secs(), "got a token");
        cache.insert(
            audience.clone(),
            CachedToken {
                token: token.clone(),
                expires_at: sent_at
                    .checked_add(lifetime)
                    .unwrap_or_else(|| sent_at + CLI_UNKNOWN_LIFETIME),
                lifetime,
            },
        );
        Ok(token)
    }
}

/// OAuth machine-to-machine: the client-credentials grant at the audience's
/// token endpoint (scope `all-apis`, client authenticated with HTTP Basic).
async fn client_credentials(
    http: &reqwest::Client,
    audience: &Audience,
    client_id: &str,
    client_secret: &Secret,
) -> Result<(Secret, Duration), AuthFailure> {
    let token_url = audience.oauth_token_url();
    tracing::debug!(client_id = %client_id, token_url, "requesting OAuth token (client credentials)");
    let sent_at = Instant::now();
    let silent = |e: &reqwest::Error| timed_out_after_connecting(e).then(|| sent_at.elapsed());
    let resp = http
        .post(&token_url)
        .basic_auth(client_id, Some(client_secret.expose()))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .map_err(|e| AuthFailure {
            // A request that cannot be built never will be: not transient.
            retryable: !e.is_builder() && (e.is_connect() || e.is_timeout()),
            retry_after: None,
            unreachable: unreachable_reason(&e),
            silent_after: silent(&e),
            error: DatabricksError::Transport {
                url: token_url.clone(),
                message: format!("OAuth token request for client {client_id}: {e}"),
            },
        })?;
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    // A token endpoint does not redirect: a redirect is never followed (it
    // would hand the client's secret, or a token, to another origin).
    if status.is_redirection() {
        return Err(AuthFailure::fatal(DatabricksError::Redirected {
            url: token_url.clone(),
            message: redirect_error(status.as_u16(), resp.headers()),
        }));
    }
    let read_failed = |e: reqwest::Error| AuthFailure {
        retryable: true,
        retry_after: None,
        unreachable: None,
        silent_after: silent(&e),
        error: DatabricksError::Transport {
            url: token_url.clone(),
            message: format!("reading OAuth token answer: {e}"),
        },
    };
    let body = if status.is_success() {
        match read_capped(resp, Answer::Token).await {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => return Err(read_failed(e)),
            Err(BodyError::TooLarge { cap, kind }) => {
                return Err(AuthFailure::fatal(DatabricksError::TooLarge {
                    url: token_url.clone(),
                    message: too_large_message(cap, kind),
                }))
            }
        }
    } else {
        read_prefix(resp, Answer::Error.cap())
            .await
            .map_err(read_failed)?
            .0
    };
    if !status.is_success() {
        let message = match serde_json::from_slice::<OAuthErrorAnswer>(&body) {
            Ok(OAuthErrorAnswer {
                error: Some(e),
                error_description,
            }) => printable(
                &match error_description {
                    Some(d) => format!("{e}: {d}"),
                    None => e,
                },
                MESSAGE_MAX_BYTES,
            ),
            _ => error_text(&body),
        };
        let message = match audience {
            Audience::Workspace { host } => format!("{message} (token endpoint of workspace {host}; the service principal must be assigned to the workspace)"),
            Audience::Account { .. } => message,
        };
        return Err(AuthFailure {
            retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            retry_after,
            unreachable: None,
            silent_after: None,
            error: DatabricksError::OAuth {
                client_id: client_id.to_string(),
                status: status.as_u16(),
                message,
            },
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
        AuthFailure::fatal(DatabricksError::Decode {
            url: token_url.clone(),
            message: printable(
                &format!("OAuth token answer is not a token: {e}"),
                MESSAGE_MAX_BYTES,
            ),
        })
    })?;
    // From the network: bounded before any arithmetic.
    let lifetime = clamp_lifetime(Duration::from_secs(answer.expires_in.unwrap_or(3600)));
    Ok((Secret::new(answer.access_token), lifetime))
}

/// A Databricks CLI version (major, minor, patch).
pub(crate) type CliVersion = (u32, u32, u32);

/// `auth token --profile` works from this CLI version on.
const CLI_VERSION_FOR_PROFILE: CliVersion = (0, 207, 1);
/// `auth token --force-refresh` works from this CLI version on.
const CLI_VERSION_FOR_FORCE_REFRESH: CliVersion = (0, 296, 0);

/// The arguments of `databricks auth token` for an audience, as the official
/// SDKs build them: `--profile` for the Account API when a profile was named
/// and the CLI knows the flag, else `--host` (and `--account-id` for the
/// Account API); `--force-refresh` when the CLI knows it, so the token is
/// fresh. An unknown version gets neither gated flag.
pub(crate) fn cli_args(
    audience: &Audience,
    profile: Option<&str>,
    version: Option<CliVersion>,
) -> Vec<String> {
    let at_least = |v: CliVersion| version.is_some_and(|have| have >= v);
    let mut args: Vec<String> = vec!["auth".into(), "token".into()];
    match (audience, profile) {
        (Audience::Account { .. }, Some(p)) if at_least(CLI_VERSION_FOR_PROFILE) => {
            args.extend(["--profile".to_string(), p.to_string()]);
        }
        (Audience::Account { host, account_id }, _) => {
            args.extend([
                "--host".to_string(),
                host.clone(),
                "--account-id".to_string(),
                account_id.clone(),
            ]);
        }
        (Audience::Workspace { host }, _) => args.extend(["--host".to_string(), host.clone()]),
    }
    if at_least(CLI_VERSION_FOR_FORCE_REFRESH) {
        args.push("--force-refresh".into());
    }
    args
}

/// Parses `databricks version --output json` (`Major`, `Minor`, `Patch`).
fn parse_cli_version(out: &[u8]) -> Option<CliVersion> {
    let v: serde_json::Value = serde_json::from_slice(out).ok()?;
    let n = |k: &str| v.get(k)?.as_u64().and_then(|x| u32::try_from(x).ok());
    match (n("Major")?, n("Minor")?, n("Patch")?) {
        // A build without version metadata: feature detection cannot tell.
        (0, 0, 0) => None,
        t => Some(t),
    }
}

/// The CLI's version, asked once per path and process (a failure is not
/// remembered, so a later call asks again).
fn cli_version(cli_path: &str) -> Option<CliVersion> {
    static SEEN: std::sync::Mutex<Option<HashMap<String, CliVersion>>> =
        std::sync::Mutex::new(None);
    if let Some(v) = SEEN
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(cli_path).copied()))
    {
        return Some(v);
    }
    let out = run_with_timeout(
        cli_path,
        &["version", "--output", "json"],
        Duration::from_secs(5),
    )
    .ok()?;
    let v = parse_cli_version(&out.1).filter(|_| out.0.success());
    if let (Some(v), Ok(mut m)) = (v, SEEN.lock()) {
        m.get_or_insert_with(HashMap::new)
            .insert(cli_path.to_string(), v);
    }
    v
}

/// Runs a command with a time limit: (status, stdout, stderr).
fn run_with_timeout(
    program: &str,
    args: &[&str],
    limit: Duration,
) -> std::io::Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both pipes on threads so a chatty program never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("did not finish within {}s", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// The lifetime left of a CLI token from its `expiry` (RFC 3339, or the
/// CLI's older form without a zone, read as UTC).
fn cli_token_lifetime(expiry: Option<&str>) -> Duration {
    use time::format_description::well_known::Rfc3339;
    let Some(e) = expiry else {
        return CLI_UNKNOWN_LIFETIME;
    };
    let at = time::OffsetDateTime::parse(e, &Rfc3339).ok().or_else(|| {
        let base = e.trim_end_matches('Z').split('.').next().unwrap_or(e);
        time::OffsetDateTime::parse(&format!("{}Z", base.replacen(' ', "T", 1)), &Rfc3339).ok()
    });
    match at {
        Some(at) => {
            Duration::try_from(at - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
        }
        None => CLI_UNKNOWN_LIFETIME,
    }
}

/// OAuth user-to-machine through the Databricks CLI: runs `databricks auth
/// token` (blocking; called on a blocking thread) and reads its JSON.
fn cli_token(
    cli_path: &str,
    profile: Option<&str>,
    source: &str,
    audience: &Audience,
) -> Result<(Secret, Duration), String> {
    let version = cli_version(cli_path);
    let args = cli_args(audience, profile, version);
    let login_hint = {
        let mut l = vec!["databricks auth login".to_string()];
        l.extend(cli_args(audience, None, None).into_iter().skip(2));
        l.join(" ")
    };
    let shown = format!("{cli_path} {}", args.join(" "));
    tracing::debug!(command = %shown, "asking the Databricks CLI for a token");
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let fail = |m: String| m;
    let (status, stdout, stderr) = run_with_timeout(cli_path, &arg_refs, CLI_TIMEOUT).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "auth_type \"databricks-cli\" (from {source}): {cli_path:?} was not found; install the Databricks CLI or set databricks_cli_path (DATABRICKS_CLI_PATH)"
            ),
            std::io::ErrorKind::TimedOut => format!("`{shown}` {e}"),
            _ => format!("auth_type \"databricks-cli\" (from {source}): cannot run {cli_path:?}: {e}"),
        })
    })?;
    if !status.success() {
        let said = error_text(&stderr);
        return Err(fail(format!(
            "`{shown}` failed ({status}): {said}; log in first with `{login_hint}`"
        )));
    }
    let answer: CliTokenAnswer = serde_json::from_slice(&stdout).map_err(|e| {
        fail(format!(
            "`{shown}` did not print a token as JSON ({e}); is {cli_path:?} the Databricks CLI (v0.200 or later)?"
        ))
    })?;
    let lifetime = cli_token_lifetime(answer.expiry.as_deref());
    Ok((Secret::new(answer.access_token), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_before_expiry() {
        let now = Instant::now();
        let c = CachedToken {
            token: Secret::new("x"),
            expires_at: now + Duration::from_secs(4),
            lifetime: Duration::from_secs(4),
        };
        assert!(c.fresh(now));
        assert!(!c.fresh(now + Duration::from_millis(3100)));
        let long = CachedToken {
            token: Secret::new("x"),
            expires_at: now + Duration::from_secs(3600),
            lifetime: Duration::from_secs(3600),
        };
        assert!(long.fresh(now + Duration::from_secs(3500)));
        assert!(!long.fresh(now + Duration::from_secs(3541)));
    }

    #[test]
    fn token_lifetimes_from_the_network_are_bounded() {
        assert_eq!(
            clamp_lifetime(Duration::from_secs(u64::MAX)),
            MAX_TOKEN_LIFETIME
        );
        assert_eq!(
            clamp_lifetime(Duration::from_secs(3600)),
            Duration::from_secs(3600)
        );
        // The arithmetic the cache does with it does not overflow.
        let now = Instant::now();
        let c = CachedToken {
            token: Secret::new("x"),
            expires_at: now + clamp_lifetime(Duration::from_secs(u64::MAX)),
            lifetime: clamp_lifetime(Duration::from_secs(u64::MAX)),
        };
        assert!(c.fresh(now));
    }

    #[test]
    fn token_urls_per_audience() {
        let a = Audience::Account {
            host: "https://accounts.cloud.databricks.com".into(),
            account_id: "acc".into(),
        };
        assert_eq!(
            a.oauth_token_url(),
            "https://accounts.cloud.databricks.com/oidc/accounts/acc/v1/token"
        );
        let w = Audience::Workspace {
            host: "https://dep.cloud.databricks.com".into(),
        };
        assert_eq!(
            w.oauth_token_url(),
            "https://dep.cloud.databricks.com/oidc/v1/token"
        );
        assert_eq!(
            cli_args(&a, Some("prof"), None),
            [
                "auth",
                "token",
                "--host",
                "https://accounts.cloud.databricks.com",
                "--account-id",
                "acc"
            ]
        );
        assert_eq!(
            cli_args(&a, Some("prof"), Some((0, 296, 0))),
            ["auth", "token", "--profile", "prof", "--force-refresh"]
        );
        assert_eq!(
            cli_args(&a, None, Some((0, 250, 1))),
            [
                "auth",
                "token",
                "--host",
                "https://accounts.cloud.databricks.com",
                "--account-id",
                "acc"
            ]
        );
        assert_eq!(
            cli_args(&w, Some("prof"), Some((1, 0, 0))),
            [
                "auth",
                "token",
                "--host",
                "https://dep.cloud.databricks.com",
                "--force-refresh"
            ]
        );
        assert_eq!(
            parse_cli_version(br#"{"Major":0,"Minor":296,"Patch":2}"#),
            Some((0, 296, 2))
        );
        assert_eq!(
            parse_cli_version(br#"{"Major":0,"Minor":0,"Patch":0}"#),
            None
        );
        assert_eq!(parse_cli_version(b"v0.1"), None);
    }

    #[test]
    fn cli_token_expiry_forms() {
        let soon = (time::OffsetDateTime::now_utc() + time::Duration::minutes(30))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let d = cli_token_lifetime(Some(&soon));
        assert!(
            d > Duration::from_secs(29 * 60) && d <= Duration::from_secs(30 * 60),
            "{d:?}"
        );
        // The CLI's older form, without a zone: read as UTC.
        let naive = soon
            .split('.')
            .next()
            .unwrap()
            .trim_end_matches('Z')
            .to_string();
        let d = cli_token_lifetime(Some(&naive));
        assert!(d > Duration::from_secs(29 * 60), "{naive}: {d:?}");
        assert_eq!(cli_token_lifetime(Some("tomorrow")), CLI_UNKNOWN_LIFETIME);
        assert_eq!(cli_token_lifetime(None), CLI_UNKNOWN_LIFETIME);
        assert_eq!(
            cli_token_lifetime(Some("2001-01-01T00:00:00Z")),
            Duration::ZERO
        );
    }

    #[test]
    fn cli_that_is_missing_or_fails_says_how_to_log_in() {
        let a = Audience::Account {
            host: "http://127.0.0.1:1".into(),
            account_id: "acc".into(),
        };
        let e = cli_token("/nonexistent/databricks", None, "DATABRICKS_AUTH_TYPE", &a).unwrap_err();
        assert!(
            e.contains("was not found") && e.contains("databricks_cli_path"),
            "{e}"
        );
        // `false` exits 1 without output: the message says how to log in.
        let e = cli_token("false", None, "DATABRICKS_AUTH_TYPE", &a).unwrap_err();
        assert!(
            e.contains("databricks auth login --host http://127.0.0.1:1 --account-id acc"),
            "{e}"
        );
    }
}
