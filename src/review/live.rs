//! `review --live`: what a plan cannot hold, read from Databricks with
//! read-only calls. For each existing workspace the plan touches (the
//! official `databricks_mws_workspaces` and this provider's
//! `cmk_workspace_binding`): its current keys, tier, compute mode and
//! status (`GET /workspaces/{id}`), the classic compute running in it and
//! its AI/BI dashboards (the workspace's own API). For each key
//! configuration id the plan names but does not create: its use cases,
//! ARN and region (`GET /customer-managed-keys`, once). For a workspace of
//! a configuration's source (HCL mode, no prior state): the account's
//! workspace with its `deployment_name`, else its `workspace_name`
//! (`GET /workspaces`, once), read as above; none is a new workspace,
//! several cannot be told apart.
//!
//! Credentials are the provider's (`DATABRICKS_*` variables, a
//! `~/.databrickscfg` profile): see `src/cloud/databricks/settings.rs`.
//! The account id, the account host and the workspace host template also
//! come from the configuration the plan records (or HCL mode reads): see
//! [`resolve_settings`].

use std::collections::{BTreeSet, HashMap};

use tokio_util::sync::CancellationToken;

use crate::cloud::databricks::{AccountClient, DatabricksError, DatabricksSettings, Environment};
use crate::review::plan::Plan;
use crate::rules::facts::{KeyConfigFacts, WorkspaceFacts};

/// What the command line says about `--live`'s Databricks settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFlags {
    /// `--profile`.
    pub profile: Option<String>,
    /// `--workspace-host-template`.
    pub workspace_host_template: Option<String>,
}

/// The settings `--live` reads with, and where each came from (for the
/// one line review prints on standard error; never a secret).
#[derive(Debug, Clone, Default)]
pub struct LiveSettings {
    pub settings: DatabricksSettings,
    /// `setting: where it came from`, for what the configuration set.
    pub from_configuration: Vec<String>,
}

/// Resolves `--live`'s account id, account host and workspace host
/// template: a flag first (`--workspace-host-template`; `--profile` names
/// the profile whose values come before the configuration's), then the
/// environment (`DATABRICKS_ACCOUNT_ID`, `DATABRICKS_HOST`, a profile named
/// by `DATABRICKS_CONFIG_PROFILE`), then what the `cmk` and
/// `databricks/databricks` provider blocks set (`account_id`, `host`,
/// cmk's `workspace_host_template`; literal values or variables the plan,
/// or HCL mode's `-var`, gives). Provider blocks that disagree on a setting
/// nothing overrides are an error naming them. Credentials are never read
/// from the configuration: the provider's environment and profiles give
/// them.
pub fn resolve_settings(
    flags: &LiveFlags,
    env: &dyn Environment,
    plan: &Plan,
) -> Result<LiveSettings, String> {
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let profile_named = flags.profile.is_some() || var("DATABRICKS_CONFIG_PROFILE").is_some();
    let mut out = LiveSettings {
        settings: DatabricksSettings {
            profile: flags.profile.clone(),
            workspace_host_template: flags.workspace_host_template.clone(),
            // The deployment chooses the default workspace host.
            deployment: plan.deployment(),
            ..Default::default()
        },
        from_configuration: vec![],
    };
    let mut take = |arg: &str| -> Result<Option<String>, String> {
        Ok(plan.provider_setting(arg)?.map(|(v, src)| {
            out.from_configuration.push(format!("{arg} from {src}"));
            v
        }))
    };
    let account_id = if var("DATABRICKS_ACCOUNT_ID").is_some() || profile_named {
        None
    } else {
        take("account_id")?
    };
    let host = if var("DATABRICKS_HOST").is_some() || profile_named {
        None
    } else {
        take("host")?
    };
    let template = if flags.workspace_host_template.is_some() {
        None
    } else {
        take("workspace_host_template")?
    };
    out.settings.account_id = account_id;
    out.settings.host = host;
    if template.is_some() {
        out.settings.workspace_host_template = template;
    }
    Ok(out)
}

/// What `--live` needs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub workspace_ids: BTreeSet<i64>,
    pub key_config_ids: BTreeSet<String>,
    /// Workspaces of a configuration's source, to find in the account.
    pub workspace_names: BTreeSet<WorkspaceName>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.workspace_ids.is_empty()
            && self.key_config_ids.is_empty()
            && self.workspace_names.is_empty()
    }
}

/// How a configuration names a workspace it declares: its
/// `workspace_name`, and its `deployment_name` when set (unique in the
/// account, so it decides when given).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspaceName {
    pub workspace_name: String,
    pub deployment_name: Option<String>,
}

impl WorkspaceName {
    /// `workspace "x"` or `workspace "x" (deployment_name "y")`, for messages.
    pub fn label(&self) -> String {
        use crate::rules::findings::quote;
        match &self.deployment_name {
            Some(d) => format!(
                "workspace {} (deployment_name {})",
                quote(&self.workspace_name),
                quote(d)
            ),
            None => format!("workspace {}", quote(&self.workspace_name)),
        }
    }
}

/// What the account's workspace list says of a configuration's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// Exactly one workspace: its id (read as the plan's workspaces are).
    Found(i64),
    /// None: the configuration creates it.
    NotFound,
    /// Several workspaces have that name (and no deployment_name tells
    /// them apart): their ids.
    Ambiguous(Vec<i64>),
}

/// The workspaces of `all` that `n` names: by `deployment_name` when the
/// configuration sets one (unique in an account), else by `workspace_name`.
pub fn match_name(n: &WorkspaceName, all: &[(i64, String, Option<String>)]) -> NameMatch {
    let ids: Vec<i64> = match &n.deployment_name {
        Some(d) => all
            .iter()
            .filter(|(_, _, dep)| dep.as_deref() == Some(d.as_str()))
            .map(|(id, _, _)| *id)
            .collect(),
        None => all
            .iter()
            .filter(|(_, name, _)| *name == n.workspace_name)
            .map(|(id, _, _)| *id)
            .collect(),
    };
    match ids.as_slice() {
        [] => NameMatch::NotFound,
        [one] => NameMatch::Found(*one),
        _ => NameMatch::Ambiguous(ids),
    }
}

/// Facts read live, by workspace id and by key configuration id.
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {
    pub workspaces: HashMap<i64, WorkspaceFacts>,
    pub key_configs: HashMap<String, KeyConfigFacts>,
    /// The configuration's workspaces, as found in the account.
    pub by_name: HashMap<WorkspaceName, NameMatch>,
    /// Reads that failed: what, and why. Their facts stay unknown.
    pub errors: Vec<String>,
}

/// Reads every target. A failed read is recorded in `errors` (its facts
/// stay unknown, so the rules that need them keep answering "cannot tell
/// yet"); reading goes on with the others.
pub async fn read(
    client: &AccountClient,
    targets: &Targets,
    cancel: &CancellationToken,
) -> LiveFacts {
    let mut live = LiveFacts::default();
    let note = |live: &mut LiveFacts, what: String, e: DatabricksError| {
        live.errors.push(format!("{what}: {e}"));
    };
    let mut workspace_ids = targets.workspace_ids.clone();
    if !targets.workspace_names.is_empty() {
        match client.list_workspaces(cancel).await {
            Ok(all) => {
                let all: Vec<(i64, String, Option<String>)> = all
                    .into_iter()
                    .map(|w| (w.workspace_id, w.workspace_name, w.deployment_name))
                    .collect();
                for n in &targets.workspace_names {
                    let m = match_name(n, &all);
                    if let NameMatch::Found(id) = m {
                        workspace_ids.insert(id);
                    }
                    live.by_name.insert(n.clone(), m);
                }
            }
            Err(e) => note(&mut live, "listing the account's workspaces".into(), e),
        }
    }
    for &id in &workspace_ids {
        // Typed before it reaches a URL: a plan value that is no workspace id
        // is reported, never requested.
        let typed = match crate::rules::ids::WorkspaceId::new(id) {
            Ok(t) => t,
            Err(e) => {
                live.errors.push(format!("workspace {id}: {}", e.0));
                continue;
            }
        };
        let ws = match client.get_workspace(typed, cancel).await {
            Ok(w) => w,
            Err(e) => {
                note(&mut live, format!("reading workspace {id}"), e);
                continue;
            }
        };
        let mut f = ws.facts();
        match ws.deployment_name.as_deref().filter(|d| !d.is_empty()) {
            Some(dep) => {
                match client.running_classic_compute(dep, cancel).await {
                    Ok(c) => f.running_classic_compute = crate::rules::Fact::Known(c),
                    Err(e) => note(
                        &mut live,
                        format!("reading the classic compute of workspace {id}"),
                        e,
                    ),
                }
                match client.list_dashboards(dep, cancel).await {
                    Ok(ds) => {
                        f.dashboards = crate::rules::Fact::Known(
                            ds.into_iter().map(|d| d.fact()).collect(),
                        )
                    }
                    Err(e) => note(
                        &mut live,
                        format!("reading the AI/BI dashboards of workspace {id}"),
                        e,
                    ),
                }
            }
            None => live.errors.push(format!(
                "workspace {id} has no deployment_name: its classic compute and dashboards cannot be read"
            )),
        }
        live.workspaces.insert(id, f);
    }
    if !targets.key_config_ids.is_empty() {
        match client.list_customer_managed_keys(cancel).await {
            Ok(all) => {
                for k in all {
                    if targets.key_config_ids.contains(&k.customer_managed_key_id) {
                        live.key_configs
                            .insert(k.customer_managed_key_id.clone(), k.facts());
                    }
                }
                for id in &targets.key_config_ids {
                    if !live.key_configs.contains_key(id) {
                        live.errors.push(format!(
                            "key configuration {} is not a key configuration of account {}",
                            crate::rules::findings::quote(id),
                            client.config().account_id
                        ));
                    }
                }
            }
            Err(e) => note(&mut live, "listing the key configurations".into(), e),
        }
    }
    live
}
