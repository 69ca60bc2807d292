//! Resource `cmk_workspace_binding`: which key configurations protect a
//! workspace. At plan time it reads the live workspace and keys and runs
//! every binding rule, also when the key configurations are created in the
//! same plan (their ids are then unknown, but passed as whole objects their
//! use cases, key ARN and cluster-volume setting are known).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cloud::databricks::{AccountClient, Workspace, WorkspaceKeyUpdate};
use crate::rules::facts::{
    BindingChange, KeyConfigFacts, RequestedKey, Requirements, WorkspaceFacts,
};
use crate::rules::{self, DataType, Fact, Severity, Subject, Verdict};
use crate::support::{
    api_error, databricks, key_config_id, report, report_deferred, workspace_id, Clients,
};
use crate::tfplugin::{
    AttributePath, Ctx, Diagnostics, PlanChange, Resource, Timeouts, Upgrader, Val, ValSet,
};

/// The AWS KMS key of a key configuration passed as an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyInfoRef {
    /// The ARN of the KMS key.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub key_arn: Val<String>,
    /// An alias of the key.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub key_alias: Val<String>,
    /// The key's region (defaults to the ARN's).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub key_region: Val<String>,
    /// With `STORAGE`: whether the key also encrypts cluster EBS volumes (omitted means true).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub reuse_key_for_cluster_volumes: Val<bool>,
}

/// A key configuration passed whole, so that the plan can check it before it
/// exists: write `storage_key = cmk_key_configuration.s`. Any object with these
/// attributes works, e.g. `{ customer_managed_key_id = ..., use_cases = [...],
/// aws_key_info = { key_arn = ... } }` built from the official provider's
/// `databricks_mws_customer_managed_keys` (whose `aws_key_info` is a list: use
/// `one(x.aws_key_info)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyConfigurationRef {
    /// The bare key configuration id (not the composite `<account_id>/<id>`).
    #[schemars(extend("x-tf" = ["required"]))]
    pub customer_managed_key_id: Val<String>,
    /// The configuration's use cases (`MANAGED_SERVICES`, `STORAGE`).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub use_cases: ValSet<String>,
    /// The configuration's KMS key.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub aws_key_info: Val<KeyInfoRef>,
    /// The Databricks account that holds the configuration.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub account_id: Val<String>,
    /// The configuration's id (`cmk_key_configuration.id`, the same bare id).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub id: Val<String>,
    /// When Databricks created the configuration, in epoch milliseconds.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub creation_time: Val<i64>,
}

impl KeyConfigurationRef {
    /// What the object tells the rules; the id may be unknown.
    fn facts(&self) -> KeyConfigFacts {
        let info = self.aws_key_info.known();
        let opt = |v: &Val<String>| match v {
            Val::Known(s) => Fact::Known(Some(s.clone())),
            Val::Null => Fact::Known(None),
            Val::Unknown(_) => Fact::Unknown,
        };
        KeyConfigFacts {
            id: self.customer_managed_key_id.known().cloned().into(),
            use_cases: self
                .use_cases
                .wholly_known()
                .map(|u| u.into_iter().collect())
                .into(),
            key_arn: info.and_then(|i| i.key_arn.known().cloned()).into(),
            key_arn_prefix: info.and_then(|i| i.key_arn.prefix()).map(str::to_string),
            key_region: info.map(|i| opt(&i.key_region)).unwrap_or_default(),
            reuse_key_for_cluster_volumes: match info.map(|i| &i.reuse_key_for_cluster_volumes) {
                Some(Val::Known(b)) => Fact::Known(Some(*b)),
                Some(Val::Null) => Fact::Known(None),
                _ => Fact::Unknown,
            },
        }
    }
}

/// The customer-managed keys of an existing Databricks workspace. Binding a
/// managed-services key, rotating it, and setting a storage key once are done in
/// place; Databricks cannot replace or remove a storage key, and the plan says so
/// instead of failing at apply. An argument left unset leaves that slot as it is.
/// Give each slot either the whole key configuration (`storage_key =
/// cmk_key_configuration.s`: every rule is checked at plan, even when the
/// configuration is created in the same plan) or its bare id (`storage_key_id`, for
/// configurations that already exist). Destroying the resource stops managing the
/// keys; Databricks keeps them bound.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceBindingModel {
    /// The workspace id, as a string.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub id: Val<String>,
    /// The workspace's numeric id.
    #[schemars(extend("x-tf" = ["required", "requires_replace"]))]
    pub workspace_id: Val<i64>,
    /// The key configuration for managed services (control-plane data), passed
    /// whole: `managed_services_key = cmk_key_configuration.ms`. Can be rotated.
    /// Conflicts with `managed_services_key_id`.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub managed_services_key: Val<KeyConfigurationRef>,
    /// The key configuration for managed services as a bare id, for one that already
    /// exists. Set from `managed_services_key` when that is given; left unset, the slot
    /// stays as it is.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub managed_services_key_id: Val<String>,
    /// The key configuration for workspace storage, passed whole: `storage_key =
    /// cmk_key_configuration.s`. Can be set once: Databricks cannot replace it.
    /// Conflicts with `storage_key_id`.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub storage_key: Val<KeyConfigurationRef>,
    /// The key configuration for workspace storage as a bare id, for one that already
    /// exists. Set from `storage_key` when that is given; left unset, the slot stays as
    /// it is. Can be set once: Databricks cannot replace it.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub storage_key_id: Val<String>,
    /// Data types that must end up protected by a customer-managed key (canonical
    /// names such as `dbfs_root`, `secrets`, `ai_bi_dashboards`); the plan fails
    /// when the bound keys cannot protect them.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub required_coverage: ValSet<String>,
    /// The workspace's name.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_name: Val<String>,
    /// The workspace's AWS region.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub aws_region: Val<String>,
    /// The workspace's status after the last apply or refresh.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub workspace_status: Val<String>,
    /// How long binding keys (`create`, `update`: the Account API calls, and the wait
    /// for the workspace to run with its new keys) and refreshing (`read`) may take,
    /// as durations such as `"30m"`, `"90s"` or `"1h30m"`. They replace the provider's
    /// `workspace_update_timeout_seconds` and `retry_timeout_seconds` for this
    /// workspace. Destroy only stops managing the keys, so `delete` bounds nothing here.
    #[serde(default)]
    #[schemars(extend("x-tf" = ["block"]))]
    pub timeouts: Val<Timeouts>,
}

pub struct WorkspaceBinding;

/// How `cmk_workspace_binding` is imported (the `## Import` section of its
/// page), as [`WorkspaceBinding`]'s `import` does it.
pub const IMPORT: crate::support::ImportDoc = crate::support::ImportDoc {
    label: "analytics",
    ids: &[
        ("1234567890123456", "the workspace id"),
        (
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/1234567890123456",
            "`<account_id>/<workspace_id>`, the official `databricks_mws_workspaces` import id; \
             the account must be the provider's `account_id`",
        ),
    ],
    reads: "Import reads the workspace from the Databricks Account API of the provider's \
            account: `workspace_id` (and `id`), `managed_services_key_id`, `storage_key_id`, \
            `workspace_name`, `aws_region` and `workspace_status`. `managed_services_key`, \
            `storage_key` and `required_coverage` are not read: they come from the \
            configuration at the next plan.",
};

/// One key slot of the workspace, with the argument names that set it.
#[derive(Clone, Copy)]
enum Slot {
    ManagedServices,
    Storage,
}

impl Slot {
    fn object_arg(self) -> &'static str {
        match self {
            Slot::ManagedServices => "managed_services_key",
            Slot::Storage => "storage_key",
        }
    }
    fn id_arg(self) -> &'static str {
        match self {
            Slot::ManagedServices => "managed_services_key_id",
            Slot::Storage => "storage_key_id",
        }
    }
    fn object(self, m: &WorkspaceBindingModel) -> &Val<KeyConfigurationRef> {
        match self {
            Slot::ManagedServices => &m.managed_services_key,
            Slot::Storage => &m.storage_key,
        }
    }
    fn id(self, m: &WorkspaceBindingModel) -> &Val<String> {
        match self {
            Slot::ManagedServices => &m.managed_services_key_id,
            Slot::Storage => &m.storage_key_id,
        }
    }
    fn id_mut(self, m: &mut WorkspaceBindingModel) -> &mut Val<String> {
        match self {
            Slot::ManagedServices => &mut m.managed_services_key_id,
            Slot::Storage => &mut m.storage_key_id,
        }
    }
    fn live(self, w: &Workspace) -> &Option<String> {
        match self {
            Slot::ManagedServices => &w.managed_services_customer_managed_key_id,
            Slot::Storage => &w.storage_customer_managed_key_id,
        }
    }
    /// The argument the configuration sets this slot with.
    fn arg(self, config: &WorkspaceBindingModel) -> &'static str {
        if self.object(config).is_null() {
            self.id_arg()
        } else {
            self.object_arg()
        }
    }
}

/// Where each finding goes: on the argument that sets the slot it is about.
fn path_of(config: &WorkspaceBindingModel) -> impl Fn(Subject) -> Option<AttributePath> + '_ {
    move |s| {
        let p = |n: &str| Some(AttributePath::new([n]));
        match s {
            Subject::ManagedServicesBinding | Subject::Dashboards => {
                p(Slot::ManagedServices.arg(config))
            }
            Subject::StorageBinding | Subject::ReuseKeyForClusterVolumes => {
                p(Slot::Storage.arg(config))
            }
            Subject::RequiredCoverage(_) | Subject::RequiredCoverageNotKnown => {
                p("required_coverage")
            }
            Subject::WorkspacePricingTier
            | Subject::WorkspaceRegion
            | Subject::WorkspaceComputeMode
            | Subject::WorkspaceStatus
            | Subject::RunningClassicCompute => p("workspace_id"),
            _ => None,
        }
    }
}

/// Reports the binding rules' findings where each belongs. A cluster-volume
/// key on a serverless workspace (CMK007) is about the storage
/// configuration's `reuse_key_for_cluster_volumes`: on that field when the
/// configuration is passed whole, else on the argument that names it.
fn report_binding(
    outcomes: &[rules::Outcome],
    config: &WorkspaceBindingModel,
    diags: &mut Diagnostics,
) {
    let whole = !Slot::Storage.object(config).is_null();
    for o in outcomes {
        if whole && o.rule == rules::RuleId::EbsKeyOnServerless {
            let at = AttributePath::new([
                Slot::Storage.object_arg(),
                "aws_key_info",
                "reuse_key_for_cluster_volumes",
            ]);
            report(std::slice::from_ref(o), |_| Some(at.clone()), diags);
        } else {
            report(std::slice::from_ref(o), path_of(config), diags);
        }
    }
}

/// The data types the configuration requires protected.
fn requirements(m: &WorkspaceBindingModel) -> Requirements {
    let names = m.required_coverage.known().into_iter().flatten();
    Requirements {
        data_types: names
            .clone()
            .filter_map(|n| n.known().and_then(|n| DataType::parse(n)))
            .collect(),
        not_known: names.filter(|n| n.is_unknown()).count(),
    }
}

/// At plan: says which rules wait for apply, on the argument whose value
/// they wait for, with the way to decide them at plan where there is one.
fn report_deferred_binding(
    outcomes: &[rules::Outcome],
    config: &WorkspaceBindingModel,
    diags: &mut Diagnostics,
) {
    let fix = |p: Option<&AttributePath>| -> Option<String> {
        for slot in [Slot::ManagedServices, Slot::Storage] {
            if p == Some(&AttributePath::new([slot.id_arg()])) && slot.id(config).is_unknown() {
                return Some(format!(
                    "pass the key configuration whole, `{} = cmk_key_configuration.NAME`, instead of its id in `{}`: its use cases, key ARN, region and cluster-volume setting are then known at plan, even while its id is not.",
                    slot.object_arg(),
                    slot.id_arg()
                ));
            }
        }
        if p == Some(&AttributePath::new(["workspace_id"])) && config.workspace_id.is_unknown() {
            return Some("give `workspace_id` a value known at plan, such as an existing workspace's id; the plan then reads the workspace and decides every rule.".into());
        }
        None
    };
    report_deferred(outcomes, path_of(config), fix, diags);
}

/// The key a slot asks for, as the rules see it. `live`: the workspace's
/// current key in that slot, when it has been read (`None` at validate:
/// an unset argument then leaves a slot whose content is not known).
fn requested(slot: Slot, m: &WorkspaceBindingModel, live: Option<&Option<String>>) -> RequestedKey {
    let object = slot.object(m);
    let id = match object {
        Val::Known(o) => o.customer_managed_key_id.clone(),
        // The whole object is not known yet: a key is being set.
        Val::Unknown(_) => Val::unknown(),
        Val::Null => slot.id(m).clone(),
    };
    let mut req = match (&id, live) {
        (Val::Known(id), _) => RequestedKey::id(id),
        // Unset: the slot stays as it is.
        (Val::Null, Some(Some(cur))) => RequestedKey::id(cur),
        (Val::Null, Some(None)) => RequestedKey::none(),
        (Val::Null, None) => RequestedKey::unknown(),
        // An id not known until apply: a key configuration this plan creates.
        (Val::Unknown(r), _) => RequestedKey::being_set(r.string_prefix.clone()),
    };
    if !object.is_null() && req.id.is_unknown() {
        req.bare_source = Some(format!("{}.customer_managed_key_id", slot.object_arg()));
        // Terraform does not tell a provider the address of another
        // resource: the argument names it (and the diagnostic is attached
        // to that argument, so Terraform shows its line).
        req.config_name = Some(format!(
            "the key configuration named by {}.customer_managed_key_id, created in this plan",
            slot.object_arg()
        ));
    }
    req
}

/// The configuration a slot names, as facts: read live when its id is known
/// (the account's answer is the truth), else from the object passed whole.
/// A known id that names no key configuration of the account is an error on
/// the argument that gave it.
async fn key_facts(
    ctx: &Ctx<Clients>,
    client: &AccountClient,
    slot: Slot,
    config: &WorkspaceBindingModel,
    req: &RequestedKey,
    diags: &mut Diagnostics,
) -> Option<KeyConfigFacts> {
    let object = slot.object(config).known();
    let Fact::Known(Some(id)) = &req.id else {
        return object.map(KeyConfigurationRef::facts);
    };
    if rules::ids::is_composite_key_id(id) {
        // CMK014 reports it; a composite id names nothing to read.
        return object.map(KeyConfigurationRef::facts);
    }
    // Typed before it reaches a URL: anything but a bare id is an error on
    // the argument, before any request.
    let typed = key_config_id(id, slot.arg(config), diags)?;
    match client.get_customer_managed_key(&typed, &ctx.cancel).await {
        Ok(k) => Some(k.facts()),
        Err(e) if e.is_gone() => {
            diags.error_at(
                AttributePath::new([slot.arg(config)]),
                "Key configuration not found",
                format!(
                    "The Databricks account {} has no key configuration {id:?}. Give the customer_managed_key_id of an existing key configuration, or pass the configuration whole (`{} = cmk_key_configuration.NAME`).",
                    client.config().account_id,
                    slot.object_arg()
                ),
            );
            None
        }
        Err(e) => {
            diags.error_at(
                AttributePath::new([slot.arg(config)]),
                "Cannot read the key configuration",
                format!("Reading key configuration {id:?} failed, so the binding rules cannot be checked: {e}"),
            );
            None
        }
    }
}

/// Runs every binding rule against the live workspace. `config` decides
/// where findings go. Returns false when an error was found.
#[allow(clippy::too_many_arguments)]
async fn check_live(
    ctx: &Ctx<Clients>,
    client: &AccountClient,
    w: &Workspace,
    config: &WorkspaceBindingModel,
    planned: &WorkspaceBindingModel,
    read_dashboards: bool,
    read_compute: bool,
    at_plan: bool,
    diags: &mut Diagnostics,
) -> bool {
    let before = diags.errors().count();
    let mut facts = w.facts();
    // Keys change only while no classic compute runs (CMK010): the Account
    // API does not say, the workspace's own APIs do. A read that fails, for
    // any reason (a redirect, 4xx, 5xx, an answer that is not the JSON
    // expected, a list cut short, a host unreachable or silent), leaves the
    // rule that needed it undecided: never a pass.
    let classic = facts.compute_mode != Fact::Known(crate::rules::facts::ComputeMode::Serverless);
    let running = w.workspace_status == Some(crate::rules::facts::WorkspaceStatus::Running);
    let mut compute_failed = None;
    if read_compute && classic && running {
        if let Some(dep) = &w.deployment_name {
            match client.running_classic_compute(dep, &ctx.cancel).await {
                Ok(c) => facts.running_classic_compute = Fact::Known(c),
                Err(e) => compute_failed = Some(format!("listing the clusters, instance pools and SQL warehouses of workspace {dep} at {} failed: {e}", shown_host(client, dep))),
            }
        }
    }
    let mut dashboards_failed = None;
    if read_dashboards {
        if let Some(dep) = &w.deployment_name {
            match client.list_dashboards(dep, &ctx.cancel).await {
                Ok(ds) => {
                    facts.dashboards = Fact::Known(ds.into_iter().map(|d| d.fact()).collect())
                }
                Err(e) => {
                    dashboards_failed = Some(format!(
                        "listing the AI/BI dashboards of workspace {dep} at {} failed: {e}",
                        shown_host(client, dep)
                    ))
                }
            }
        }
    }
    let binding = BindingChange {
        managed_services: requested(
            Slot::ManagedServices,
            planned,
            Some(Slot::ManagedServices.live(w)),
        ),
        storage: requested(Slot::Storage, planned, Some(Slot::Storage.live(w))),
    };
    let ms = key_facts(
        ctx,
        client,
        Slot::ManagedServices,
        config,
        &binding.managed_services,
        diags,
    )
    .await;
    let st = key_facts(ctx, client, Slot::Storage, config, &binding.storage, diags).await;
    let outcomes = rules::check_binding(
        &facts,
        &binding,
        ms.as_ref(),
        st.as_ref(),
        &requirements(planned),
    );
    report_binding(&outcomes, config, diags);
    // CMK011 matters only when the managed-services key changes (the
    // dashboards are read then); apply sends and checks nothing when no
    // key changes.
    let undecided: Vec<&rules::Outcome> = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::CannotTell)
        .filter(|o| read_dashboards || o.rule != rules::RuleId::LegacyDashboards)
        .collect();
    let mut waiting = vec![];
    for o in undecided {
        let failed = match o.rule {
            rules::RuleId::ClassicComputeRunning => compute_failed.as_deref(),
            rules::RuleId::LegacyDashboards => dashboards_failed.as_deref(),
            _ => None,
        };
        let at = path_of(config)(o.subject).unwrap_or_else(|| AttributePath::new(["workspace_id"]));
        let code = o.rule.code();
        let rule = o.rule.rule();
        match (o.severity, failed) {
            (Severity::Error, Some(failed)) => diags.error_at(
                at,
                format!("{code} cannot tell: {}", read_of(o.rule)),
                format!(
                    "{code} ({}) must hold before the keys change, and it cannot be decided: {failed}\n\nNothing was changed: apply stops before any change while an error-severity rule is undecided. Fix what the error names and run again.\nSee {}",
                    rule.title,
                    rule.docs_path()
                ),
            ),
            (Severity::Error, None) if !at_plan => diags.error_at(
                at,
                format!("{code} not decided at apply"),
                format!(
                    "{code} ({}) must hold before the keys change, and apply cannot decide it: {}\n\nNothing was changed: apply stops before any change while an error-severity rule is undecided.\nSee {}",
                    rule.title,
                    o.message,
                    rule.docs_path()
                ),
            ),
            (Severity::Warning, Some(failed)) => diags.warning_at(
                at,
                format!("{code} cannot tell: {}", read_of(o.rule)),
                format!("{failed}. {}", o.message),
            ),
            _ => waiting.push(o.clone()),
        }
    }
    // At plan: the rules still waiting for values known at apply.
    if at_plan && read_compute {
        report_deferred_binding(&waiting, config, diags);
    }
    diags.errors().count() == before
}

/// A workspace's API host, for messages.
fn shown_host(client: &AccountClient, deployment_name: &str) -> String {
    client
        .workspace_host(deployment_name)
        .unwrap_or_else(|_| "its workspace host".to_string())
}

/// The read a rule needs from the workspace's own API, for messages.
fn read_of(rule: rules::RuleId) -> &'static str {
    match rule {
        rules::RuleId::ClassicComputeRunning => "running classic compute not read",
        rules::RuleId::LegacyDashboards => "AI/BI dashboards not read",
        _ => "a read it needs failed",
    }
}

impl WorkspaceBindingModel {
    fn fill_from(&mut self, w: &Workspace) {
        self.id = Val::Known(w.workspace_id.to_string());
        self.workspace_id = Val::Known(w.workspace_id);
        self.managed_services_key_id = w.managed_services_customer_managed_key_id.clone().into();
        self.storage_key_id = w.storage_customer_managed_key_id.clone().into();
        self.workspace_name = Val::Known(w.workspace_name.clone());
        self.aws_region = w.aws_region.clone().into();
        self.workspace_status = w.workspace_status.map(|s| s.as_str().to_string()).into();
    }
}

#[async_trait]
impl Resource for WorkspaceBinding {
    type Model = WorkspaceBindingModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_workspace_binding";
    /// 1: the `timeouts` block.
    const SCHEMA_VERSION: i64 = 1;

    fn upgraders(&self) -> Vec<Upgrader> {
        vec![crate::support::timeouts_upgrader(0)]
    }

    fn validate(&self, c: &WorkspaceBindingModel, diags: &mut Diagnostics) {
        if let Val::Known(req) = &c.required_coverage {
            // Unknown elements are checked once they are known (at plan or apply).
            for name in req.iter().filter_map(Val::known) {
                if DataType::parse(name).is_none() {
                    diags.error_at(
                        AttributePath::new(["required_coverage"]),
                        "Unknown data type",
                        format!(
                            "{name:?} is not a data type; valid data types: {}.",
                            DataType::valid_names()
                        ),
                    );
                }
            }
        }
        for slot in [Slot::ManagedServices, Slot::Storage] {
            if !slot.object(c).is_null() && !slot.id(c).is_null() {
                diags.error_at(
                    AttributePath::new([slot.id_arg()]),
                    "Conflicting arguments",
                    format!(
                        "Set either {} (the whole key configuration) or {} (its bare id), not both.",
                        slot.object_arg(),
                        slot.id_arg()
                    ),
                );
            }
        }
        // Before any live fact is read, the rule engine can already refuse
        // what the arguments alone make wrong (a composite key id, CMK014; a
        // required data type no key can protect, CMK012; a key configuration
        // passed whole that cannot serve its slot, CMK005). An unset slot is
        // the workspace's live slot, not known here: rules that need it answer
        // "cannot tell yet" now and run again at plan.
        let change = BindingChange {
            managed_services: requested(Slot::ManagedServices, c, None),
            storage: requested(Slot::Storage, c, None),
        };
        let ms = c
            .managed_services_key
            .known()
            .map(KeyConfigurationRef::facts);
        let st = c.storage_key.known().map(KeyConfigurationRef::facts);
        let outcomes: Vec<_> = rules::check_binding(
            &WorkspaceFacts::unknown(),
            &change,
            ms.as_ref(),
            st.as_ref(),
            &requirements(c),
        )
        .into_iter()
        .filter(|o| o.severity == Severity::Error)
        .collect();
        report_binding(&outcomes, c, diags);
    }

    async fn plan(
        &self,
        ctx: &Ctx<Clients>,
        change: &mut PlanChange<WorkspaceBindingModel>,
        diags: &mut Diagnostics,
    ) {
        let Some(ws_id) = change.config.workspace_id.known().copied() else {
            // No workspace to read: every rule that needs it waits for apply.
            let c = &change.config;
            let outcomes = rules::check_binding(
                &WorkspaceFacts::unknown(),
                &BindingChange {
                    managed_services: requested(Slot::ManagedServices, c, None),
                    storage: requested(Slot::Storage, c, None),
                },
                c.managed_services_key
                    .known()
                    .map(KeyConfigurationRef::facts)
                    .as_ref(),
                c.storage_key
                    .known()
                    .map(KeyConfigurationRef::facts)
                    .as_ref(),
                &requirements(c),
            );
            report_deferred_binding(&outcomes, c, diags);
            return;
        };
        let Some(ws_id) = workspace_id(ws_id, diags) else {
            return;
        };
        let Some(client) = databricks(ctx, diags).await else {
            return;
        };
        let w = match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => w,
            Err(e) if e.is_gone() => {
                diags.error_at(
                    AttributePath::new(["workspace_id"]),
                    "Workspace not found",
                    format!("The Databricks account has no workspace {ws_id}."),
                );
                return;
            }
            Err(e) => return api_error(diags, "reading the workspace", &e),
        };
        let planned = &mut change.planned;
        for slot in [Slot::ManagedServices, Slot::Storage] {
            let id = match slot.object(&change.config) {
                // A key configuration passed whole: its id, or what Terraform
                // promises about it.
                Val::Known(o) => o.customer_managed_key_id.clone(),
                Val::Unknown(_) => Val::unknown(),
                // Unset arguments leave a slot as it is.
                Val::Null if slot.id(&change.config).is_null() => slot.live(&w).clone().into(),
                Val::Null => slot.id(&change.config).clone(),
            };
            *slot.id_mut(planned) = id;
        }
        let changes = |slot: Slot, m: &WorkspaceBindingModel| {
            slot.id(m).known() != slot.live(&w).as_ref() || slot.id(m).is_unknown()
        };
        let ms_changes = changes(Slot::ManagedServices, planned);
        let st_changes = changes(Slot::Storage, planned);
        check_live(
            ctx,
            client,
            &w,
            &change.config,
            planned,
            ms_changes,
            ms_changes || st_changes,
            true,
            diags,
        )
        .await;

        planned.id = Val::Known(ws_id.to_string());
        planned.workspace_name = Val::Known(w.workspace_name.clone());
        planned.aws_region = w.aws_region.clone().into();
        // An apply waits for RUNNING: on a key change, and on a create even
        // with nothing to send (the keys of an interrupted apply in place,
        // the workspace still PROVISIONING).
        let running = w.workspace_status == Some(crate::rules::facts::WorkspaceStatus::Running);
        let waits = change.prior.is_none() && !running;
        planned.workspace_status = if ms_changes || st_changes || waits {
            Val::unknown()
        } else {
            w.workspace_status.map(|s| s.as_str().to_string()).into()
        };
    }

    async fn create(
        &self,
        ctx: &Ctx<Clients>,
        planned: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        apply(ctx, planned, true, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        mut state: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        let Some(ws_id) = workspace_id(*state.workspace_id.known()?, diags) else {
            return Some(state);
        };
        let Some(client) = databricks(ctx, diags).await else {
            return Some(state);
        };
        match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => {
                state.fill_from(&w);
                Some(state)
            }
            Err(e) if e.is_gone() => {
                diags.warning(
                    "Workspace deleted outside Terraform",
                    format!(
                        "Workspace {ws_id} no longer exists; its binding is removed from state."
                    ),
                );
                None
            }
            Err(e) => {
                api_error(diags, "reading the workspace", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<Clients>,
        _prior: WorkspaceBindingModel,
        planned: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        apply(ctx, planned, false, diags).await
    }

    async fn delete(
        &self,
        _ctx: &Ctx<Clients>,
        prior: WorkspaceBindingModel,
        diags: &mut Diagnostics,
    ) {
        diags.warning(
            "Keys stay bound to the workspace",
            format!(
                "Terraform no longer manages the keys of workspace {}, but Databricks keeps them bound: a workspace's keys cannot be removed.",
                prior.workspace_id.known().map(|i| i.to_string()).unwrap_or_default()
            ),
        );
    }

    async fn import(
        &self,
        ctx: &Ctx<Clients>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<WorkspaceBindingModel> {
        // The bare workspace id, or the official workspace resource's
        // import id `<account_id>/<workspace_id>`.
        use crate::rules::ids::{AccountId, WorkspaceId};
        let how = "Import with the workspace id, or <account_id>/<workspace_id> as for the official databricks_mws_workspaces.";
        let (account, ws_id) = match id.trim().split_once('/') {
            Some((a, w)) => match (AccountId::parse(a), WorkspaceId::parse(w)) {
                (Ok(a), Ok(w)) => (Some(a), w),
                (Err(e), _) | (_, Err(e)) => {
                    diags.error(
                        "Invalid import id",
                        format!(
                            "{} is not <account_id>/<workspace_id>: {e}. {how}",
                            crate::rules::ids::quoted(id)
                        ),
                    );
                    return None;
                }
            },
            None => match WorkspaceId::parse(id) {
                Ok(w) => (None, w),
                Err(e) => {
                    diags.error("Invalid import id", format!("{e}. {how}"));
                    return None;
                }
            },
        };
        let mut m = WorkspaceBindingModel {
            id: Val::Null,
            workspace_id: Val::Known(ws_id.get()),
            managed_services_key: Val::Null,
            managed_services_key_id: Val::Null,
            storage_key: Val::Null,
            storage_key_id: Val::Null,
            required_coverage: Val::Null,
            workspace_name: Val::Null,
            aws_region: Val::Null,
            workspace_status: Val::Null,
            timeouts: Val::Null,
        };
        let client = databricks(ctx, diags).await?;
        if let Some(a) = account.filter(|a| *a != client.config().account_id) {
            diags.error(
                "Invalid import id",
                format!(
                    "The import id names account {a}, but the provider manages account {mine}. Import with {mine}/{ws_id} (or the bare workspace id {ws_id}), or configure the provider's account_id as {a} to manage that account.",
                    mine = client.config().account_id
                ),
            );
            return None;
        }
        match client.get_workspace(ws_id, &ctx.cancel).await {
            Ok(w) => {
                m.fill_from(&w);
                Some(m)
            }
            Err(e) => {
                api_error(diags, &format!("importing workspace {ws_id}"), &e);
                None
            }
        }
    }
}

/// Re-checks every rule with the ids now known, sends only the slots that
/// change, waits until the workspace is RUNNING again and checks the change
/// took (Databricks may revert a storage key silently). A re-apply after an
/// interrupted one waits and checks too, even when nothing is left to send.
async fn apply(
    ctx: &Ctx<Clients>,
    mut planned: WorkspaceBindingModel,
    creating: bool,
    diags: &mut Diagnostics,
) -> Option<WorkspaceBindingModel> {
    let ws_id = workspace_id(*planned.workspace_id.known()?, diags)?;
    let client = databricks(ctx, diags).await?;
    let current = match client.get_workspace(ws_id, &ctx.cancel).await {
        Ok(w) => w,
        Err(e) => {
            api_error(diags, "reading the workspace", &e);
            return None;
        }
    };
    // The ids of key configurations created in this run are known now.
    for slot in [Slot::ManagedServices, Slot::Storage] {
        if let Val::Known(o) = slot.object(&planned) {
            if let Val::Known(id) = &o.customer_managed_key_id {
                *slot.id_mut(&mut planned) = Val::Known(id.clone());
            }
        }
    }
    let differs = |want: &Val<String>, have: &Option<String>| {
        want.known().filter(|w| Some(*w) != have.as_ref()).cloned()
    };
    let update = WorkspaceKeyUpdate {
        managed_services_customer_managed_key_id: differs(
            &planned.managed_services_key_id,
            &current.managed_services_customer_managed_key_id,
        ),
        storage_customer_managed_key_id: differs(
            &planned.storage_key_id,
            &current.storage_customer_managed_key_id,
        ),
    };
    if !update.mask().is_empty() {
        // Before anything changes: every rule, with what is known now.
        let ms_changes = update.managed_services_customer_managed_key_id.is_some();
        let config = planned.clone();
        if !check_live(
            ctx, client, &current, &config, &planned, ms_changes, true, false, diags,
        )
        .await
        {
            if creating {
                return None;
            }
            planned.fill_from(&current);
            return Some(planned);
        }
    }
    let w = if update.mask().is_empty() {
        match settle(ctx, client, ws_id, &current, &planned).await {
            Ok(w) => w,
            Err(message) => {
                diags.error(format!("Workspace {ws_id}: the keys did not take"), message);
                planned.fill_from(&current);
                return Some(planned);
            }
        }
    } else {
        match client
            .update_workspace_keys(ws_id, &update, &ctx.cancel)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                api_error(
                    diags,
                    &format!("updating the keys of workspace {ws_id}"),
                    &e,
                );
                // Track what is bound now, so nothing is lost.
                let now = client
                    .get_workspace(ws_id, &ctx.cancel)
                    .await
                    .unwrap_or(current);
                planned.fill_from(&now);
                return Some(planned);
            }
        }
    };
    planned.fill_from(&w);
    Some(planned)
}

/// Nothing left to send (the keys are already the planned ones, e.g. on a
/// re-apply after an interrupted apply): the workspace must still be RUNNING
/// with those keys before the change counts as done.
async fn settle(
    ctx: &Ctx<Clients>,
    client: &AccountClient,
    ws_id: crate::rules::ids::WorkspaceId,
    current: &Workspace,
    planned: &WorkspaceBindingModel,
) -> Result<Workspace, String> {
    let w = if current.workspace_status == Some(crate::rules::facts::WorkspaceStatus::Running) {
        current.clone()
    } else {
        client
            .wait_workspace_running(ws_id, &ctx.cancel)
            .await
            .map_err(|e| e.to_string())?
    };
    for slot in [Slot::ManagedServices, Slot::Storage] {
        if let Val::Known(want) = slot.id(planned) {
            let have = slot.live(&w);
            if have.as_deref() != Some(want.as_str()) {
                let now = have.as_deref().unwrap_or("no key configuration");
                return Err(format!(
                    "{} should be key configuration {want}, but the RUNNING workspace has {now}. Databricks may have reverted the change: read the workspace's status message in the account console and apply again.",
                    slot.id_arg()
                ));
            }
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key configuration passed whole whose id is not known until apply
    /// is named by the argument that names it (Terraform gives a provider no
    /// other resource's address), never by a placeholder.
    #[test]
    fn a_key_configuration_of_this_plan_is_named_by_its_argument() {
        let m = WorkspaceBindingModel {
            id: Val::Null,
            workspace_id: Val::Known(1234567890123456),
            managed_services_key: Val::Null,
            managed_services_key_id: Val::Null,
            storage_key: Val::unknown(),
            storage_key_id: Val::Null,
            required_coverage: Val::Null,
            workspace_name: Val::Null,
            aws_region: Val::Null,
            workspace_status: Val::Null,
            timeouts: Val::Null,
        };
        let req = requested(Slot::Storage, &m, None);
        assert_eq!(
            req.config_phrase(),
            "the key configuration named by storage_key.customer_managed_key_id, created in this plan"
        );
    }
}
