//! Where the client's configuration comes from, in the order Databricks'
//! SDKs use ("unified auth"): explicit settings, then `DATABRICKS_*`
//! environment variables, then a profile of `~/.databrickscfg`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::DatabricksError;
use crate::rules::ids::AccountId;
use crate::rules::Deployment;

/// The Account API host when nothing else is set.
pub const DEFAULT_ACCOUNT_HOST: &str = "https://accounts.cloud.databricks.com";
/// Where a workspace's own API lives; `{deployment_name}` is replaced.
pub const DEFAULT_WORKSPACE_HOST_TEMPLATE: &str = "https://{deployment_name}.cloud.databricks.com";
/// How long one call may keep retrying, and one read-only Terraform
/// operation may take in all, unless set (`retry_timeout_seconds`).
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(300);

/// A secret string (token, client secret): never printed by `Debug`, and
/// without `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// What the provider knows from its own arguments. Every field is optional:
/// what is unset comes from the environment, then from a config profile.
#[derive(Debug, Clone, Default)]
pub struct DatabricksSettings {
    /// Account console host, e.g. `https://accounts.cloud.databricks.com`.
    pub host: Option<String>,
    pub account_id: Option<String>,
    /// Personal access token.
    pub token: Option<Secret>,
    /// OAuth machine-to-machine (service principal) client id.
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Which credential to use (`DATABRICKS_AUTH_TYPE`): `oauth-m2m`,
    /// `databricks-cli` or `pat`; by default the one whose settings are present.
    pub auth_type: Option<String>,
    /// The Databricks CLI for `auth_type = "databricks-cli"`
    /// (`DATABRICKS_CLI_PATH`; default `databricks` on `PATH`).
    pub databricks_cli_path: Option<String>,
    /// Profile of the config file (`DATABRICKS_CONFIG_PROFILE`; default `DEFAULT`).
    pub profile: Option<String>,
    /// Config file (`DATABRICKS_CONFIG_FILE`; default `~/.databrickscfg`).
    pub config_file: Option<PathBuf>,
    /// Client-side limit, requests per second (`DATABRICKS_RATE_LIMIT`); default 15.
    pub rate_limit: Option<f64>,
    /// Timeout of one HTTP request (`DATABRICKS_HTTP_TIMEOUT_SECONDS`); default 60 s.
    pub http_timeout: Option<Duration>,
    /// Total time spent retrying one call (`retry_timeout_seconds`); default 5 minutes.
    pub retry_timeout: Option<Duration>,
    /// First backoff delay; default 500 ms (doubles, with jitter, up to 10 s).
    pub retry_base_delay: Option<Duration>,
    /// How long to wait for a workspace to be RUNNING after an update; default 20 minutes.
    pub workspace_wait_timeout: Option<Duration>,
    /// Poll interval of that wait; default 10 s.
    pub workspace_poll_interval: Option<Duration>,
    /// Workspace host, with `{deployment_name}` replaced
    /// (default [`DEFAULT_WORKSPACE_HOST_TEMPLATE`]).
    pub workspace_host_template: Option<String>,
    /// Seed of the backoff jitter (tests); random when unset.
    pub jitter_seed: Option<u64>,
    /// The Terraform CLI's version (from ConfigureProvider), sent in the
    /// `User-Agent` of every request.
    pub terraform_version: Option<String>,
    /// Serve reads of key configurations and workspaces from one list call
    /// each, listed again after this age (see `snapshot.rs`). Unset: every
    /// read is a GET. The provider sets it.
    pub snapshot_max_age: Option<Duration>,
    /// The Databricks deployment named by the provider's `deployment`
    /// argument (it must agree with the host; see [`DatabricksSettings::deployment`]).
    pub deployment: Option<Deployment>,
}

/// The deployment the provider serves, and what said so (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentChoice {
    /// `None`: a host that names no deployment, and no `deployment` argument.
    pub deployment: Option<Deployment>,
    pub source: String,
}

impl Default for DeploymentChoice {
    /// Commercial: the default host's.
    fn default() -> Self {
        DeploymentChoice {
            deployment: Some(Deployment::Commercial),
            source: format!(
                "the default host {DEFAULT_ACCOUNT_HOST} (no host or deployment is set)"
            ),
        }
    }
}

/// Where the client reads environment variables and files: the process, or a
/// fixed map in tests (so parallel tests never touch the process environment).
pub trait Environment: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
    fn home_dir(&self) -> Option<PathBuf>;
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn home_dir(&self) -> Option<PathBuf> {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from)
    }
}

/// A fixed environment for tests: variables and files from maps.
#[derive(Debug, Clone, Default)]
pub struct StaticEnvironment {
    pub vars: HashMap<String, String>,
    pub files: HashMap<PathBuf, String>,
    pub home: Option<PathBuf>,
}

impl StaticEnvironment {
    pub fn with_var(mut self, k: &str, v: &str) -> Self {
        self.vars.insert(k.to_string(), v.to_string());
        self
    }
    pub fn with_file(mut self, p: impl Into<PathBuf>, content: &str) -> Self {
        self.files.insert(p.into(), content.to_string());
        self
    }
}

impl Environment for StaticEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
    fn home_dir(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

/// How the client authenticates, and where the credential came from (for
/// error messages; never the secret itself).
#[derive(Debug, Clone)]
pub enum AuthKind {
    /// Personal access token (Databricks: one workspace only, never the Account API).
    Pat { token: Secret, source: String },
    /// OAuth machine-to-machine client credentials (a service principal).
    OAuthM2m {
        client_id: String,
        client_secret: Secret,
        source: String,
    },
    /// OAuth user-to-machine: the Databricks CLI's login, asked for a fresh
    /// token with `databricks auth token` (auth type `databricks-cli`).
    DatabricksCli {
        cli_path: String,
        /// The config profile named explicitly, if any (the CLI's own login of it).
        profile: Option<String>,
        source: String,
    },
}

/// The auth types of Databricks' unified authentication this client supports.
pub const AUTH_TYPES: [&str; 3] = ["oauth-m2m", "databricks-cli", "pat"];

impl AuthKind {
    /// Whose credentials these are, for 401/403 messages.
    pub fn describe(&self) -> String {
        match self {
            AuthKind::Pat { source, .. } => format!("the personal access token from {source}"),
            AuthKind::OAuthM2m {
                client_id, source, ..
            } => format!("OAuth client {client_id} (from {source})"),
            AuthKind::DatabricksCli {
                cli_path, source, ..
            } => {
                format!(
                    "the Databricks CLI login (`{cli_path} auth token`, auth_type from {source})"
                )
            }
        }
    }

    /// Why this credential will not work against the Account API, when it
    /// will not: Databricks documents that "to automate Databricks
    /// account-level functionality, you cannot use Databricks personal access
    /// tokens" (personal access token page); each one works for one
    /// workspace only.
    pub fn account_api_warning(&self) -> Option<String> {
        match self {
            AuthKind::Pat { source, .. } => Some(format!(
                "The Databricks credential is a personal access token (from {source}), but Databricks' Account API does not accept personal access tokens: each works for one workspace only, and account-level automation needs OAuth. Use OAuth machine-to-machine (a service principal's client_id and client_secret, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET), or your own login through the Databricks CLI (auth_type = \"databricks-cli\" after `databricks auth login --host <account host> --account-id <account id>`)."
            )),
            _ => None,
        }
    }
}

/// The configuration after every source was consulted.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub host: String,
    /// Checked where it was read: a UUID, never a path.
    pub account_id: AccountId,
    pub auth: AuthKind,
    pub rate_limit: f64,
    pub http_timeout: Duration,
    pub retry_timeout: Duration,
    pub retry_base_delay: Duration,
    pub workspace_wait_timeout: Duration,
    pub workspace_poll_interval: Duration,
    pub workspace_host_template: String,
    pub jitter_seed: Option<u64>,
    pub terraform_version: Option<String>,
    pub snapshot_max_age: Option<Duration>,
    /// The deployment, when known: it chooses the default workspace host template.
    pub deployment: Option<Deployment>,
}

#[derive(Default)]
struct Layer {
    name: &'static str,
    values: HashMap<&'static str, (String, String)>, // key -> (value, source description)
}

impl Layer {
    fn set(&mut self, key: &'static str, value: Option<String>, source: String) {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            self.values.insert(key, (v, source));
        }
    }
    fn get(&self, key: &str) -> Option<&(String, String)> {
        self.values.get(key)
    }
}

const KEYS: [(&str, &str); 7] = [
    ("host", "DATABRICKS_HOST"),
    ("account_id", "DATABRICKS_ACCOUNT_ID"),
    ("token", "DATABRICKS_TOKEN"),
    ("client_id", "DATABRICKS_CLIENT_ID"),
    ("client_secret", "DATABRICKS_CLIENT_SECRET"),
    ("auth_type", "DATABRICKS_AUTH_TYPE"),
    ("databricks_cli_path", "DATABRICKS_CLI_PATH"),
];

/// Parses an INI file into sections of key = value (`;` and `#` comments).
pub(crate) fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&section, line.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

impl DatabricksSettings {
    /// The three sources in order (arguments, environment, config
    /// profile), and the profile when one was named explicitly.
    fn layers(
        &self,
        env: &dyn Environment,
    ) -> Result<([Layer; 3], Option<String>), DatabricksError> {
        let mut args = Layer {
            name: "arguments",
            ..Default::default()
        };
        args.set("host", self.host.clone(), "the argument `host`".into());
        args.set(
            "account_id",
            self.account_id.clone(),
            "the argument `account_id`".into(),
        );
        args.set(
            "token",
            self.token.as_ref().map(|s| s.expose().to_string()),
            "the argument `token`".into(),
        );
        args.set(
            "client_id",
            self.client_id.clone(),
            "the argument `client_id`".into(),
        );
        args.set(
            "client_secret",
            self.client_secret.as_ref().map(|s| s.expose().to_string()),
            "the argument `client_secret`".into(),
        );
        args.set(
            "auth_type",
            self.auth_type.clone(),
            "the argument `auth_type`".into(),
        );
        args.set(
            "databricks_cli_path",
            self.databricks_cli_path.clone(),
            "the argument `databricks_cli_path`".into(),
        );

        let mut envl = Layer {
            name: "environment",
            ..Default::default()
        };
        for (key, var) in KEYS {
            envl.set(key, env.var(var), var.to_string());
        }

        // Config file and profile.
        let (file, file_explicit) = match (&self.config_file, env.var("DATABRICKS_CONFIG_FILE")) {
            (Some(p), _) => (Some(p.clone()), Some("the argument `config_file`")),
            (None, Some(p)) if !p.is_empty() => {
                (Some(PathBuf::from(p)), Some("DATABRICKS_CONFIG_FILE"))
            }
            _ => (env.home_dir().map(|h| h.join(".databrickscfg")), None),
        };
        let (profile, profile_explicit) =
            match (&self.profile, env.var("DATABRICKS_CONFIG_PROFILE")) {
                (Some(p), _) => (p.clone(), Some("the argument `profile`")),
                (None, Some(p)) if !p.is_empty() => (p, Some("DATABRICKS_CONFIG_PROFILE")),
                _ => ("DEFAULT".to_string(), None),
            };
        let mut prof = Layer {
            name: "config profile",
            ..Default::default()
        };
        if let Some(file) = &file {
            match env.read_file(file) {
                Ok(text) => {
                    let ini = parse_ini(&text);
                    match ini.get(&profile) {
                        Some(sec) => {
                            for (key, _) in KEYS {
                                prof.set(
                                    key,
                                    sec.get(key).cloned(),
                                    format!("`{key}` of profile [{profile}] in {}", file.display()),
                                );
                            }
                        }
                        None if profile_explicit.is_some() => {
                            return Err(DatabricksError::Config(format!(
                                "profile [{profile}] (named by {}) is not in {}",
                                profile_explicit.unwrap_or_default(),
                                file.display()
                            )));
                        }
                        None => {}
                    }
                }
                Err(e) if file_explicit.is_some() => {
                    return Err(DatabricksError::Config(format!(
                        "cannot read config file {} (named by {}): {e}",
                        file.display(),
                        file_explicit.unwrap_or_default()
                    )));
                }
                Err(_) if profile_explicit.is_some() => {
                    return Err(DatabricksError::Config(format!(
                        "profile [{profile}] was asked for (by {}) but there is no config file {}; set DATABRICKS_CONFIG_FILE or the argument `config_file`",
                        profile_explicit.unwrap_or_default(),
                        file.display()
                    )));
                }
                Err(_) => {}
            }
        }
        let named = profile_explicit.map(|_| profile);
        Ok(([args, envl, prof], named))
    }

    /// The Databricks deployment (commercial, GovCloud civilian or DoD):
    /// the argument `deployment`, which must agree with the host, else the
    /// one the account host names (argument, DATABRICKS_HOST or profile),
    /// else commercial, the default host's. A host that names none (a
    /// proxy, an emulator) leaves it unknown.
    pub fn deployment(&self, env: &dyn Environment) -> Result<DeploymentChoice, DatabricksError> {
        let (layers, _) = self.layers(env)?;
        let host = layers.iter().find_map(|l| l.get("host").cloned());
        Self::deployment_from(self.deployment, host)
    }

    fn deployment_from(
        explicit: Option<Deployment>,
        host: Option<(String, String)>,
    ) -> Result<DeploymentChoice, DatabricksError> {
        let of_host = host
            .as_ref()
            .map(|(h, src)| (Deployment::of_host(h), h.as_str(), src.as_str()));
        match (explicit, of_host) {
            (Some(d), Some((Some(hd), h, src))) if hd != d => Err(DatabricksError::Config(format!(
                "the argument `deployment` is \"{}\" ({d}), but the host {} (from {src}) is {hd}'s; set host = \"{}\" for {d}, or deployment = \"{}\"",
                d.name(),
                crate::rules::ids::quoted(h),
                d.info().account_host,
                hd.name()
            ))),
            (Some(d), _) => Ok(DeploymentChoice {
                deployment: Some(d),
                source: "the argument `deployment`".into(),
            }),
            (None, Some((Some(d), h, src))) => Ok(DeploymentChoice {
                deployment: Some(d),
                source: format!("the host {} (from {src})", crate::rules::ids::quoted(h)),
            }),
            (None, Some((None, h, src))) => Ok(DeploymentChoice {
                deployment: None,
                source: format!(
                    "the host {} (from {src}), which names no Databricks deployment",
                    crate::rules::ids::quoted(h)
                ),
            }),
            (None, None) => Ok(DeploymentChoice::default()),
        }
    }

    /// Resolves the configuration: explicit settings, then environment, then
    /// a config profile. Errors name what to set.
    pub fn resolve(&self, env: &dyn Environment) -> Result<ResolvedConfig, DatabricksError> {
        let (layers, named_profile) = self.layers(env)?;
        let first = |key: &str| layers.iter().find_map(|l| l.get(key).cloned());

        let host = first("host")
            .map(|(h, _)| h)
            .unwrap_or_else(|| DEFAULT_ACCOUNT_HOST.to_string());
        let host = normalize_host(&host);
        let Some((account_id, account_source)) = first("account_id") else {
            return Err(DatabricksError::Config(
                "no Databricks account id: set the provider argument `account_id` or DATABRICKS_ACCOUNT_ID (or `account_id` in a ~/.databrickscfg profile)".into(),
            ));
        };
        // Every source is checked the same way, before any request: the id
        // becomes part of every request path.
        let account_id = AccountId::parse(&account_id)
            .map_err(|e| DatabricksError::Config(format!("{account_source}: {e}")))?;

        let auth = resolve_auth(&layers, named_profile.as_deref())?;
        let deployment = Self::deployment_from(
            self.deployment,
            layers.iter().find_map(|l| l.get("host").cloned()),
        )?
        .deployment;

        let rate_limit = match self.rate_limit {
            Some(r) => check_rate_limit(r, "the argument `rate_limit`")?,
            None => match env.var("DATABRICKS_RATE_LIMIT") {
                Some(v) => check_rate_limit(
                    v.trim().parse::<f64>().map_err(|_| {
                        DatabricksError::Config(format!(
                            "DATABRICKS_RATE_LIMIT={} is not a number of requests per second",
                            crate::rules::ids::quoted(&v)
                        ))
                    })?,
                    "DATABRICKS_RATE_LIMIT",
                )?,
                None => 15.0,
            },
        };
        let http_timeout = match self.http_timeout {
            Some(t) => check_seconds(t.as_secs_f64(), HTTP_TIMEOUT_RANGE, "the HTTP timeout")?,
            None => match env.var("DATABRICKS_HTTP_TIMEOUT_SECONDS") {
                Some(v) => check_seconds(
                    v.trim().parse::<u64>().map_err(|_| {
                        DatabricksError::Config(format!(
                            "DATABRICKS_HTTP_TIMEOUT_SECONDS={} is not a whole number of seconds",
                            crate::rules::ids::quoted(&v)
                        ))
                    })? as f64,
                    HTTP_TIMEOUT_RANGE,
                    "DATABRICKS_HTTP_TIMEOUT_SECONDS",
                )?,
                None => Duration::from_secs(60),
            },
        };
        // Durations set by the provider or by tests: a value out of range
        // would overflow an Instant or spin; refuse it with its name.
        for (d, range, name) in [
            (self.retry_timeout, RETRY_TIMEOUT_RANGE, "the retry timeout"),
            (
                self.retry_base_delay,
                RETRY_BASE_DELAY_RANGE,
                "the retry base delay",
            ),
            (
                self.workspace_wait_timeout,
                WORKSPACE_WAIT_RANGE,
                "the workspace wait timeout",
            ),
            (
                self.workspace_poll_interval,
                POLL_INTERVAL_RANGE,
                "the argument `workspace_poll_interval_seconds`",
            ),
        ] {
            if let Some(d) = d {
                check_seconds(d.as_secs_f64(), range, name)?;
            }
        }
        Ok(ResolvedConfig {
            host,
            account_id,
            auth,
            rate_limit,
            http_timeout,
            retry_timeout: self.retry_timeout.unwrap_or(DEFAULT_RETRY_TIMEOUT),
            retry_base_delay: self.retry_base_delay.unwrap_or(Duration::from_millis(500)),
            workspace_wait_timeout: self
                .workspace_wait_timeout
                .unwrap_or(Duration::from_secs(1200)),
            workspace_poll_interval: self
                .workspace_poll_interval
                .unwrap_or(Duration::from_secs(10)),
            workspace_host_template: self.workspace_host_template.clone().unwrap_or_else(|| {
                deployment.map_or(DEFAULT_WORKSPACE_HOST_TEMPLATE.to_string(), |d| {
                    d.workspace_host_template()
                })
            }),
            deployment,
            jitter_seed: self.jitter_seed,
            terraform_version: self.terraform_version.clone(),
            snapshot_max_age: self.snapshot_max_age,
        })
    }
}

/// The credential: the one `auth_type` names, or else the one layer
/// (arguments, environment, profile: the first with any credential) holds.
/// Values that cannot go into an HTTP header are refused here, naming their
/// source, before any request.
fn resolve_auth(layers: &[Layer; 3], profile: Option<&str>) -> Result<AuthKind, DatabricksError> {
    let first = |key: &str| layers.iter().find_map(|l| l.get(key).cloned());
    let checked = |what: &str, (v, src): (String, String)| {
        super::http::check_header_value(what, &src, &v)
            .map(|()| (v, src))
            .map_err(DatabricksError::Config)
    };
    if let Some((auth_type, at_src)) = first("auth_type") {
        let auth_type = auth_type.trim().to_ascii_lowercase();
        return match auth_type.as_str() {
            "databricks-cli" => Ok(AuthKind::DatabricksCli {
                cli_path: first("databricks_cli_path")
                    .map(|(p, _)| p)
                    .unwrap_or_else(|| "databricks".to_string()),
                profile: profile.map(str::to_string),
                source: at_src,
            }),
            "oauth-m2m" => match (first("client_id"), first("client_secret")) {
                (Some(id), Some(sec)) => {
                    let (id, is) = checked("the OAuth client id", id)?;
                    let (sec, ss) = checked("the OAuth client secret", sec)?;
                    Ok(AuthKind::OAuthM2m {
                        client_id: id,
                        client_secret: Secret::new(sec),
                        source: format!("{is} and {ss}"),
                    })
                }
                _ => Err(DatabricksError::Config(format!(
                    "auth_type \"oauth-m2m\" (from {at_src}) needs a service principal's client_id and client_secret (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET)"
                ))),
            },
            "pat" => match first("token") {
                Some(t) => {
                    let (t, ts) = checked("the personal access token", t)?;
                    Ok(AuthKind::Pat {
                        token: Secret::new(t),
                        source: ts,
                    })
                }
                None => Err(DatabricksError::Config(format!(
                    "auth_type \"pat\" (from {at_src}) needs a token (argument `token` or DATABRICKS_TOKEN)"
                ))),
            },
            other => Err(DatabricksError::Config(format!(
                "auth_type {other:?} (from {at_src}) is not supported; use one of {}",
                AUTH_TYPES.join(", ")
            ))),
        };
    }
    let cred_layer = layers.iter().find(|l| {
        l.get("token").is_some() || l.get("client_id").is_some() || l.get("client_secret").is_some()
    });
    let Some(layer) = cred_layer else {
        return Err(DatabricksError::Config(
            "no Databricks credentials: the Account API needs OAuth. Set a service principal's OAuth client credentials (arguments `client_id` and `client_secret`, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET), or use your Databricks CLI login (auth_type = \"databricks-cli\" or DATABRICKS_AUTH_TYPE=databricks-cli), or name a ~/.databrickscfg profile that has them (DATABRICKS_CONFIG_PROFILE)".into(),
        ));
    };
    let token = layer.get("token");
    let cid = layer.get("client_id");
    let csec = layer.get("client_secret");
    match (token, cid, csec) {
        (Some((_, ts)), Some((_, cs)), _) | (Some((_, ts)), None, Some((_, cs))) => {
            Err(DatabricksError::Config(format!(
                "contradictory Databricks credentials in the {}: both a token ({ts}) and OAuth client credentials ({cs}) are set; remove one of them, or choose with auth_type",
                layer.name
            )))
        }
        (Some(t), None, None) => {
            let (t, ts) = checked("the personal access token", t.clone())?;
            Ok(AuthKind::Pat {
                token: Secret::new(t),
                source: ts,
            })
        }
        (None, Some(id), Some(sec)) => {
            let (id, is) = checked("the OAuth client id", id.clone())?;
            let (sec, ss) = checked("the OAuth client secret", sec.clone())?;
            Ok(AuthKind::OAuthM2m {
                client_id: id,
                client_secret: Secret::new(sec),
                source: format!("{is} and {ss}"),
            })
        }
        (None, Some((_, is)), None) => Err(DatabricksError::Config(format!(
            "OAuth client id is set ({is}) but no client secret: set the argument `client_secret` or DATABRICKS_CLIENT_SECRET"
        ))),
        (None, None, Some((_, ss))) => Err(DatabricksError::Config(format!(
            "OAuth client secret is set ({ss}) but no client id: set the argument `client_id` or DATABRICKS_CLIENT_ID"
        ))),
        (None, None, None) => unreachable!("layer chosen for having a credential"),
    }
}

/// Requests per second the client-side rate limit accepts.
pub const RATE_LIMIT_RANGE: (f64, f64) = (0.01, 10_000.0);
/// Seconds, lowest and highest, of each duration setting.
pub const HTTP_TIMEOUT_RANGE: (f64, f64) = (1.0, 3600.0);
pub const RETRY_TIMEOUT_RANGE: (f64, f64) = (0.0, 86_400.0);
pub const RETRY_BASE_DELAY_RANGE: (f64, f64) = (0.0, 60.0);
pub const WORKSPACE_WAIT_RANGE: (f64, f64) = (0.0, 86_400.0);
pub const POLL_INTERVAL_RANGE: (f64, f64) = (0.05, 3600.0);

/// Checks a rate limit (requests per second) read from `source`.
pub fn check_rate_limit(r: f64, source: &str) -> Result<f64, DatabricksError> {
    let (lo, hi) = RATE_LIMIT_RANGE;
    if r.is_finite() && (lo..=hi).contains(&r) {
        Ok(r)
    } else {
        Err(DatabricksError::Config(format!(
            "{source} is {r}: the rate limit must be a number of requests per second from {lo} to {hi}"
        )))
    }
}

/// Checks a number of seconds read from `source` against `range`.
pub fn check_seconds(
    secs: f64,
    (lo, hi): (f64, f64),
    source: &str,
) -> Result<Duration, DatabricksError> {
    if secs.is_finite() && (lo..=hi).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(DatabricksError::Config(format!(
            "{source} is {secs} seconds: it must be from {lo} to {hi} seconds"
        )))
    }
}

fn normalize_host(h: &str) -> String {
    let h = h.trim().trim_end_matches('/');
    if h.starts_with("http://") || h.starts_with("https://") {
        h.to_string()
    } else {
        format!("https://{h}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StaticEnvironment {
        StaticEnvironment::default()
    }

    #[test]
    fn explicit_beats_env_beats_profile() {
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "11111111-0000-4000-8000-00000000000e",
            )
            .with_var("DATABRICKS_TOKEN", "env-token")
            .with_var("DATABRICKS_HOST", "env.example.com");
        let s = DatabricksSettings {
            account_id: Some("11111111-0000-4000-8000-00000000000a".into()),
            ..Default::default()
        };
        let c = s.resolve(&env).unwrap();
        assert_eq!(c.account_id, "11111111-0000-4000-8000-00000000000a");
        assert_eq!(c.host, "https://env.example.com");
        match c.auth {
            AuthKind::Pat { token, source } => {
                assert_eq!(token.expose(), "env-token");
                assert_eq!(source, "DATABRICKS_TOKEN");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn profile_from_config_file() {
        let env = base()
            .with_var("DATABRICKS_CONFIG_FILE", "/cfg")
            .with_var("DATABRICKS_CONFIG_PROFILE", "acct")
            .with_file(
                "/cfg",
                "[DEFAULT]\nhost = https://x\n\n[acct]\n# comment\nhost = https://accounts.example\naccount_id = 11111111-0000-4000-8000-0000000000a1\nclient_id = cid\nclient_secret = shh\n",
            );
        let c = DatabricksSettings::default().resolve(&env).unwrap();
        assert_eq!(c.host, "https://accounts.example");
        assert_eq!(c.account_id, "11111111-0000-4000-8000-0000000000a1");
        assert!(matches!(c.auth, AuthKind::OAuthM2m { ref client_id, .. } if client_id == "cid"));
        assert!(c.auth.describe().contains("OAuth client cid"));
    }

    #[test]
    fn default_profile_from_home() {
        let mut env = base().with_file(
            "/home/u/.databrickscfg",
            "[DEFAULT]\naccount_id = 11111111-0000-4000-8000-0000000000a2\ntoken = t\n",
        );
        env.home = Some("/home/u".into());
        let c = DatabricksSettings::default().resolve(&env).unwrap();
        assert_eq!(c.account_id, "11111111-0000-4000-8000-0000000000a2");
        assert_eq!(c.host, DEFAULT_ACCOUNT_HOST);
    }

    #[test]
    fn missing_and_contradictory_name_what_to_set() {
        let e = DatabricksSettings::default().resolve(&base()).unwrap_err();
        assert!(e.to_string().contains("DATABRICKS_ACCOUNT_ID"), "{e}");
        let env = base().with_var(
            "DATABRICKS_ACCOUNT_ID",
            "11111111-0000-4000-8000-0000000000aa",
        );
        let e = DatabricksSettings::default().resolve(&env).unwrap_err();
        assert!(e.to_string().contains("DATABRICKS_CLIENT_ID"), "{e}");
        assert!(e.to_string().contains("databricks-cli"), "{e}");
        let env = env
            .with_var("DATABRICKS_TOKEN", "t")
            .with_var("DATABRICKS_CLIENT_ID", "c");
        let e = DatabricksSettings::default().resolve(&env).unwrap_err();
        assert!(e.to_string().contains("contradictory"), "{e}");
        assert!(!e.to_string().contains("=t"), "{e}");
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "11111111-0000-4000-8000-0000000000aa",
            )
            .with_var("DATABRICKS_CLIENT_ID", "c");
        let e = DatabricksSettings::default().resolve(&env).unwrap_err();
        assert!(e.to_string().contains("DATABRICKS_CLIENT_SECRET"), "{e}");
        let e = DatabricksSettings {
            profile: Some("nope".into()),
            config_file: Some("/none".into()),
            ..Default::default()
        }
        .resolve(&base())
        .unwrap_err();
        assert!(e.to_string().contains("config_file"), "{e}");
    }

    /// Issue 10: an account id from the environment went into every path
    /// unchecked (`<uuid>/workspaces/2234567890123456?` read another
    /// workspace). Every source is checked, and the message names it.
    #[test]
    fn account_ids_from_every_source_are_checked() {
        let hostile = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/workspaces/2234567890123456?";
        let env = base()
            .with_var("DATABRICKS_ACCOUNT_ID", hostile)
            .with_var("DATABRICKS_TOKEN", "t");
        let e = DatabricksSettings::default().resolve(&env).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("DATABRICKS_ACCOUNT_ID") && m.contains("UUID"),
            "{m}"
        );
        let e = DatabricksSettings {
            account_id: Some("..".into()),
            token: Some(Secret::new("t")),
            ..Default::default()
        }
        .resolve(&base())
        .unwrap_err();
        assert!(e.to_string().contains("the argument `account_id`"), "{e}");
        let env = base()
            .with_var("DATABRICKS_CONFIG_FILE", "/cfg")
            .with_file("/cfg", "[DEFAULT]\naccount_id = %2e%2e\ntoken = t\n");
        let e = DatabricksSettings::default().resolve(&env).unwrap_err();
        assert!(e.to_string().contains("profile [DEFAULT]"), "{e}");
    }

    /// Issue 10: `rate_limit = 1e-30` (or DATABRICKS_RATE_LIMIT=1e-30, 1e-19)
    /// panicked the plugin. Every setting is range-checked with its name.
    #[test]
    fn settings_out_of_range_are_errors_naming_the_setting() {
        let acct = "11111111-0000-4000-8000-0000000000aa";
        let env = base()
            .with_var("DATABRICKS_ACCOUNT_ID", acct)
            .with_var("DATABRICKS_TOKEN", "t");
        for r in [1e-30, 1e-19, 0.0, -1.0, f64::INFINITY, f64::NAN, 1e300] {
            let e = DatabricksSettings {
                rate_limit: Some(r),
                ..Default::default()
            }
            .resolve(&env)
            .unwrap_err();
            assert!(e.to_string().contains("the argument `rate_limit`"), "{e}");
        }
        for v in ["1e-30", "1e-19", "0", "-3", "inf", "NaN"] {
            let e = DatabricksSettings::default()
                .resolve(&env.clone().with_var("DATABRICKS_RATE_LIMIT", v))
                .unwrap_err();
            assert!(e.to_string().contains("DATABRICKS_RATE_LIMIT"), "{v}: {e}");
        }
        for v in ["0", "18446744073709551615", "-1", "1.5"] {
            let e = DatabricksSettings::default()
                .resolve(&env.clone().with_var("DATABRICKS_HTTP_TIMEOUT_SECONDS", v))
                .unwrap_err();
            assert!(
                e.to_string().contains("DATABRICKS_HTTP_TIMEOUT_SECONDS"),
                "{v}: {e}"
            );
        }
        let e = DatabricksSettings {
            workspace_poll_interval: Some(Duration::from_secs(u64::MAX)),
            ..Default::default()
        }
        .resolve(&env)
        .unwrap_err();
        assert!(
            e.to_string().contains("workspace_poll_interval_seconds"),
            "{e}"
        );
        // In range: accepted.
        let c = DatabricksSettings::default()
            .resolve(&env.clone().with_var("DATABRICKS_RATE_LIMIT", " 2.5 "))
            .unwrap();
        assert_eq!(c.rate_limit, 2.5);
    }

    #[test]
    fn a_credential_with_a_stray_carriage_return_fails_naming_its_source() {
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "0d26daa6-5e44-4c97-a497-ef015f91254a",
            )
            .with_var("DATABRICKS_TOKEN", "dapi-secret-value\r");
        let e = DatabricksSettings::default()
            .resolve(&env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("DATABRICKS_TOKEN") && e.contains("carriage return"),
            "{e}"
        );
        assert!(!e.contains("dapi-secret-value"), "{e}");
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "0d26daa6-5e44-4c97-a497-ef015f91254a",
            )
            .with_var("DATABRICKS_CLIENT_ID", "sp")
            .with_var("DATABRICKS_CLIENT_SECRET", "s\r\n");
        let e = DatabricksSettings::default()
            .resolve(&env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DATABRICKS_CLIENT_SECRET"), "{e}");
    }

    #[test]
    fn auth_type_chooses_the_credential() {
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "0d26daa6-5e44-4c97-a497-ef015f91254a",
            )
            .with_var("DATABRICKS_AUTH_TYPE", "databricks-cli")
            .with_var("DATABRICKS_CLI_PATH", "/opt/databricks");
        let c = DatabricksSettings::default().resolve(&env).unwrap();
        match &c.auth {
            AuthKind::DatabricksCli {
                cli_path, source, ..
            } => {
                assert_eq!(cli_path, "/opt/databricks");
                assert_eq!(source, "DATABRICKS_AUTH_TYPE");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.auth.account_api_warning().is_none());
        // Explicit oauth-m2m wins over a token set alongside.
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "0d26daa6-5e44-4c97-a497-ef015f91254a",
            )
            .with_var("DATABRICKS_TOKEN", "t")
            .with_var("DATABRICKS_CLIENT_ID", "sp")
            .with_var("DATABRICKS_CLIENT_SECRET", "s");
        let s = DatabricksSettings {
            auth_type: Some("oauth-m2m".into()),
            ..Default::default()
        };
        assert!(matches!(
            s.resolve(&env).unwrap().auth,
            AuthKind::OAuthM2m { .. }
        ));
        let s = DatabricksSettings {
            auth_type: Some("azure-cli".into()),
            ..Default::default()
        };
        let e = s.resolve(&env).unwrap_err().to_string();
        assert!(
            e.contains("oauth-m2m, databricks-cli, pat") && e.contains("`auth_type`"),
            "{e}"
        );
        // A personal access token resolves, with the Account API warning.
        let env = base()
            .with_var(
                "DATABRICKS_ACCOUNT_ID",
                "0d26daa6-5e44-4c97-a497-ef015f91254a",
            )
            .with_var("DATABRICKS_TOKEN", "t");
        let w = DatabricksSettings::default()
            .resolve(&env)
            .unwrap()
            .auth
            .account_api_warning()
            .unwrap();
        assert!(
            w.contains("does not accept personal access tokens") && w.contains("DATABRICKS_TOKEN"),
            "{w}"
        );
        assert!(
            w.contains("client_id") && w.contains("databricks-cli"),
            "{w}"
        );
    }

    #[test]
    fn secret_debug_hides_value() {
        let s = DatabricksSettings {
            token: Some(Secret::new("dapi-very-secret")),
            client_secret: Some(Secret::new("oauth-very-secret")),
            ..Default::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("very-secret"), "{d}");
    }
}
