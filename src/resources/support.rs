//! What resources and data sources share: rule outcomes as Terraform
//! diagnostics (each object maps the fact a
//! finding is about ([`Subject`]) to its own attribute path.

use crate::cloud::databricks::DatabricksError;
use crate::rules::ids::{KeyConfigId, WorkspaceId};
use crate::rules::{Outcome, Severity, Subject, Verdict};
use crate::tfplugin::{AttributePath, Diagnostics};

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

/// An Account API failure as a diagnostic (errors never carry credentials).
pub fn api_error(diags: &mut Diagnostics, what: &str, e: &DatabricksError) {
    diags.error(
        format!("Databricks Account API: {what} failed"),
        e.to_string(),
    );
}

/// A Terraform value as a fact: unknown stays unknown; null is "absent".
pub fn fact_opt<T: Clone>(v: &crate::tfplugin::Val<T>) -> crate::rules::Fact<Option<T>> {
    use crate::rules::Fact;
    use crate::tfplugin::Val;
    match v {
        Val::Unknown(_) => Fact::Unknown,
        Val::Null => Fact::Known(None),
        Val::Known(x) => Fact::Known(Some(x.clone())),
    }
}

/// A Terraform value that the rules need present: null counts as unknown
/// (Terraform itself reports a missing required argument).
pub fn fact<T: Clone>(v: &crate::tfplugin::Val<T>) -> crate::rules::Fact<T> {
    v.known().cloned().into()
}

/// The Account API client, or an error diagnostic saying what to configure.
pub async fn databricks<'a>(
    ctx: &'a crate::tfplugin::Ctx<crate::provider::Clients>,
    diags: &mut Diagnostics,
) -> Option<&'a crate::cloud::databricks::AccountClient> {
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
    ctx: &crate::tfplugin::Ctx<crate::provider::Clients>,
    client: &crate::cloud::databricks::AccountClient,
    workspace_id_arg: i64,
    diags: &mut Diagnostics,
) -> Option<crate::cloud::databricks::Workspace> {
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
