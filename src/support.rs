//! What every Terraform object (resource, data source) and the provider
//! share: the cloud clients operations get ([`Clients`]), rule outcomes as
//! Terraform diagnostics (each object maps the fact a finding is about,
//! [`Subject`], to its own attribute path), and the argument checks and
//! Account API look-ups several objects make. It imports no object and not
//! the provider: they all depend on it.

use crate::cloud::databricks::{
    AccountClient, DatabricksError, DatabricksSettings, DeploymentChoice, Workspace,
};
use crate::cloud::kms::{Kms, KmsError, KmsSettings};
use crate::rules::ids::{KeyConfigId, WorkspaceId};
use crate::rules::{Fact, Outcome, Severity, Subject, Verdict};
use crate::tfplugin::{AttributePath, Ctx, Diagnostics, Val};

/// What operations get once the provider is configured. Cloud clients are
/// built lazily, on first use, so a plan that needs none never waits for
/// credentials.
pub struct Clients {
    databricks_settings: DatabricksSettings,
    databricks: tokio::sync::OnceCell<AccountClient>,
    pub aws: KmsSettings,
    kms: tokio::sync::OnceCell<Result<Kms, KmsError>>,
    caller_account: tokio::sync::OnceCell<Result<String, KmsError>>,
    /// The Databricks deployment the provider serves (its `deployment`
    /// argument or account host); the policy generator and the policy
    /// rules read its principal.
    pub deployment: DeploymentChoice,
}

impl Clients {
    pub fn new(databricks_settings: DatabricksSettings, aws: KmsSettings) -> Clients {
        Clients {
            databricks_settings,
            databricks: tokio::sync::OnceCell::new(),
            aws,
            kms: tokio::sync::OnceCell::new(),
            caller_account: tokio::sync::OnceCell::new(),
            deployment: DeploymentChoice::default(),
        }
    }

    /// How long one refresh, plan, import or data source read may take in
    /// all (`retry_timeout_seconds`).
    pub fn read_budget(&self) -> std::time::Duration {
        self.databricks_settings
            .retry_timeout
            .unwrap_or(crate::cloud::databricks::settings::DEFAULT_RETRY_TIMEOUT)
    }

    /// Whether Databricks credentials are configured anywhere (arguments,
    /// `DATABRICKS_*` variables, or a config file), without resolving them.
    pub fn databricks_configured(&self) -> bool {
        let s = &self.databricks_settings;
        s.token.is_some()
            || s.client_secret.is_some()
            || s.auth_type.is_some()
            || s.profile.is_some()
            || s.config_file.is_some()
            || [
                "DATABRICKS_TOKEN",
                "DATABRICKS_CLIENT_SECRET",
                "DATABRICKS_AUTH_TYPE",
                "DATABRICKS_CONFIG_PROFILE",
                "DATABRICKS_CONFIG_FILE",
            ]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
            || std::env::var_os("HOME")
                .is_some_and(|h| std::path::Path::new(&h).join(".databrickscfg").exists())
    }

    /// Whether AWS is configured for KMS checks: provider arguments or the
    /// SDK's usual variables. Without it, plans do not wait on the AWS
    /// credential chain (which probes instance metadata).
    pub fn aws_configured(&self) -> bool {
        self.aws.region.is_some()
            || self.aws.profile.is_some()
            || self.aws.endpoint.is_some()
            || [
                "AWS_ACCESS_KEY_ID",
                "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_ENDPOINT_URL_KMS",
            ]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    /// The Account API client, built (and its credentials resolved) on first use.
    pub async fn databricks(&self) -> Result<&AccountClient, DatabricksError> {
        self.databricks
            .get_or_try_init(|| async { AccountClient::new(&self.databricks_settings) })
            .await
    }

    /// The KMS client, built on first use.
    pub async fn kms(&self) -> Result<&Kms, KmsError> {
        self.kms
            .get_or_init(|| Kms::connect(&self.aws))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The caller's AWS account (STS), asked once.
    pub async fn caller_account_id(&self) -> Result<String, KmsError> {
        self.caller_account
            .get_or_init(|| async { self.kms().await?.caller_account_id().await })
            .await
            .clone()
    }
}

/// Adds a diagnostic for each failed rule; passes and "cannot tell yet" add nothing.
pub fn report(
    outcomes: &[Outcome],
    path_of: impl Fn(Subject) -> Option<AttributePath>,
    diags: &mut Diagnostics,
) {
    for o in outcomes {
        match o.verdict {
            Verdict::Pass => {}
            Verdict::CannotTell => {
                tracing::debug!(rule = o.rule.code(), "cannot tell yet: {}", o.message)
            }
            // The provider reads the workspace itself: never "needs state".
            Verdict::NeedsState => {
                tracing::debug!(rule = o.rule.code(), "{}", o.message)
            }
            Verdict::Fail => {
                let rule = o.rule.rule();
                let summary = format!("{}: {}", rule.id, rule.title);
                let detail = format!(
                    "{}\n\nHow to fix: {}\nSee {}",
                    o.message,
                    rule.remediation,
                    rule.docs_path()
                );
                match (o.severity, path_of(o.subject)) {
                    (Severity::Error, Some(p)) => diags.error_at(p, summary, detail),
                    (Severity::Error, None) => diags.error(summary, detail),
                    (Severity::Warning, Some(p)) => diags.warning_at(p, summary, detail),
                    (Severity::Warning, None) => diags.warning(summary, detail),
                }
            }
        }
    }
}

/// At plan: one warning per argument naming the rules a plan could not
/// decide (mostly because a value they need is not known until apply).
/// Apply checks them again before any change; the plan never passes over
/// them in silence. Call it only where apply does check them again. `fix` may add advice for an argument (`None`: the resource).
pub fn report_deferred(
    outcomes: &[Outcome],
    path_of: impl Fn(Subject) -> Option<AttributePath>,
    fix: impl Fn(Option<&AttributePath>) -> Option<String>,
    diags: &mut Diagnostics,
) {
    let mut by_path: Vec<(Option<AttributePath>, Vec<&Outcome>)> = vec![];
    for o in outcomes.iter().filter(|o| o.verdict == Verdict::CannotTell) {
        let p = path_of(o.subject);
        match by_path.iter_mut().find(|(q, _)| *q == p) {
            Some((_, v)) => {
                if !v.iter().any(|x| x.rule == o.rule) {
                    v.push(o)
                }
            }
            None => by_path.push((p, vec![o])),
        }
    }
    for (p, found) in by_path {
        let ids: Vec<&str> = found.iter().map(|o| o.rule.code()).collect();
        let summary = format!("Decided at apply: {}", ids.join(", "));
        let mut detail = String::from(
            "The plan cannot decide these rules with what is known now. Apply checks them again, with what is known then, before it changes anything, and stops on an error.\n",
        );
        for o in &found {
            detail.push_str(&format!(
                "\n- {} ({}): {}",
                o.rule.code(),
                o.rule.rule().title,
                o.message
            ));
        }
        if let Some(f) = fix(p.as_ref()) {
            detail.push_str(&format!("\n\nTo decide them at plan: {f}"));
        }
        match p {
            Some(p) => diags.warning_at(p, summary, detail),
            None => diags.warning(summary, detail),
        }
    }
}

/// An Account API failure as a diagnostic (errors never carry credentials).
pub fn api_error(diags: &mut Diagnostics, what: &str, e: &DatabricksError) {
    diags.error(
        format!("Databricks Account API: {what} failed"),
        e.to_string(),
    );
}

/// A Terraform value as a fact: unknown stays unknown; null is "absent".
pub fn fact_opt<T: Clone>(v: &Val<T>) -> Fact<Option<T>> {
    match v {
        Val::Unknown(_) => Fact::Unknown,
        Val::Null => Fact::Known(None),
        Val::Known(x) => Fact::Known(Some(x.clone())),
    }
}

/// A Terraform value that the rules need present: null counts as unknown
/// (Terraform itself reports a missing required argument).
pub fn fact<T: Clone>(v: &Val<T>) -> Fact<T> {
    v.known().cloned().into()
}

/// The Account API client, or an error diagnostic saying what to configure.
pub async fn databricks<'a>(
    ctx: &'a Ctx<Clients>,
    diags: &mut Diagnostics,
) -> Option<&'a AccountClient> {
    match ctx.client.databricks().await {
        Ok(c) => Some(c),
        Err(e) => {
            api_error(diags, "configuring the client", &e);
            None
        }
    }
}

/// The argument `workspace_id` as a workspace id; an error on it, before
/// any request, when it is not a positive integer.
pub fn workspace_id(id: i64, diags: &mut Diagnostics) -> Option<WorkspaceId> {
    match WorkspaceId::new(id) {
        Ok(w) => Some(w),
        Err(e) => {
            diags.error_at(
                AttributePath::new(["workspace_id"]),
                "Invalid workspace_id",
                e.0,
            );
            None
        }
    }
}

/// An argument holding a bare key configuration id (`attr`); an error on
/// it, before any request, when it is not one.
pub fn key_config_id(id: &str, attr: &str, diags: &mut Diagnostics) -> Option<KeyConfigId> {
    match KeyConfigId::parse(id) {
        Ok(k) => Some(k),
        Err(e) => {
            diags.error_at(
                AttributePath::new([attr]),
                "Invalid key configuration id",
                e.0,
            );
            None
        }
    }
}

/// A workspace the configuration names (by `workspace_id`); an error on that
/// argument when it is not a workspace id or cannot be read.
pub async fn workspace_at(
    ctx: &Ctx<Clients>,
    client: &AccountClient,
    workspace_id_arg: i64,
    diags: &mut Diagnostics,
) -> Option<Workspace> {
    let id = workspace_id(workspace_id_arg, diags)?;
    match client.get_workspace(id, &ctx.cancel).await {
        Ok(w) => Some(w),
        Err(e) => {
            diags.error_at(
                AttributePath::new(["workspace_id"]),
                "Cannot read the workspace",
                e.to_string(),
            );
            None
        }
    }
}

/// How a resource is imported, for the `## Import` section of its page.
/// Each resource keeps its own next to its model, written from its import
/// code.
pub struct ImportDoc {
    /// The address label used in the examples (`cmk_kms_key.<label>`).
    pub label: &'static str,
    /// The ids import takes: `(example id, what it is)`, the first one used
    /// in the `import` block and the command.
    pub ids: &'static [(&'static str, &'static str)],
    /// What import reads into the state, and what it leaves to the
    /// configuration.
    pub reads: &'static str,
}

/// The state upgrade of a resource that gained the `timeouts` block in
/// schema version `from + 1`: one definition for every resource that takes
/// it (the step itself is the protocol layer's).
pub const fn timeouts_upgrader(from: i64) -> crate::tfplugin::provider::Upgrader {
    crate::tfplugin::provider::Upgrader {
        from,
        change: "the `timeouts` block (null in older state)",
        step: crate::tfplugin::timeouts::add_to_state,
    }
}
