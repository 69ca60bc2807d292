//! The analysis as it was before it read the plan in one pass (issue 32):
//! kept, for tests only, as the reference the one-pass analysis is compared
//! with, outcome by outcome, on every review fixture and on generated plans
//! (`analyze::equivalence_tests`). Not used by the review itself.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};

use crate::rules::checks::{
    key_arn_from_key_resource, owner_decides_cluster_volumes, OWNER_NOT_KNOWN,
};
use crate::rules::coverage::{coverage, Coverage, PlannedKeys};
use crate::rules::facts::{
    BindingChange, ComputeMode, KeyConfigFacts, KeyState, KmsKeyFacts, PricingTier, RequestedKey,
    Requirements, StateRead, WorkspaceFacts, WorkspaceStatus, ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT,
};
use crate::rules::ids::Partition;
use crate::rules::{
    check_binding, check_key_configuration, check_key_partition, check_kms_key, key_partition_of,
    Deployment, Fact, KeyFeature, Outcome, PolicyNeeds, RuleId, Subject,
};

use crate::review::plan::{Plan, Res};

pub const KEY_CONFIG_TYPES: [&str; 2] = [
    "databricks_mws_customer_managed_keys",
    "cmk_key_configuration",
];
pub const KMS_KEY_TYPES: [&str; 2] = ["aws_kms_key", "cmk_kms_key"];
pub const WORKSPACE_TYPES: [&str; 2] = ["databricks_mws_workspaces", "cmk_workspace_binding"];
const POLICY_DATA_SOURCE: &str = "cmk_kms_key_policy";

/// An outcome located on a plan object.
#[derive(Debug, Clone)]
pub struct Located {
    pub address: String,
    pub resource_type: String,
    /// The attribute of that object the outcome is about.
    pub attribute: String,
    pub outcome: Outcome,
    /// Offline, an outcome that cannot tell yet but that `--live` decides.
    pub live_decides: bool,
}

/// A workspace's coverage table.
#[derive(Debug, Clone)]
pub struct WorkspaceCoverage {
    pub address: String,
    pub coverage: Vec<Coverage>,
}

/// Everything the review found.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub outcomes: Vec<Located>,
    pub coverage: Vec<WorkspaceCoverage>,
    /// `Some` when facts were read live (`--live`): the reads that failed.
    pub live: Option<Vec<String>>,
    /// What the review could not evaluate in the source (HCL mode): an
    /// unsupported function, with its place. Rules that read it may say
    /// "cannot tell yet" for that reason alone; `--fail-on cannot-tell`
    /// fails on it.
    pub unevaluated: Vec<String>,
    /// What `--live` found out about the configuration's workspaces (a
    /// workspace not in the account is reviewed as a new one).
    pub live_notes: Vec<String>,
}

/// The attribute of a resource type that holds a subject's fact.
pub fn attribute_for(rtype: &str, subject: Subject) -> String {
    let binding = rtype == "cmk_workspace_binding";
    let s = match (subject, rtype) {
        (Subject::ManagedServicesBinding | Subject::Dashboards, _) if binding => {
            "managed_services_key_id"
        }
        (Subject::StorageBinding, _) if binding => "storage_key_id",
        (Subject::RunningClassicCompute | Subject::WorkspaceStatus, _) if binding => "workspace_id",
        (
            Subject::WorkspacePricingTier
            | Subject::WorkspaceRegion
            | Subject::WorkspaceComputeMode,
            _,
        ) if binding => "workspace_id",
        (Subject::KeyState, "cmk_kms_key") => "key_id",
        (Subject::KeySpec | Subject::KeyUsage, "cmk_kms_key") => "key_id",
        (Subject::KeyRegion, "databricks_mws_workspaces" | "cmk_workspace_binding") => {
            return if binding {
                "managed_services_key_id".into()
            } else {
                "aws_region".into()
            }
        }
        (s, _) => s.attribute_hint(),
    };
    s.to_string()
}

/// What one analysis asks of the plan, counted in tests: scans of all its
/// resources ([`Plan::by_type`]) and walks along references
/// ([`Plan::resolve`], [`Plan::resolve_whole`]).
pub(crate) mod visits {
    use std::cell::Cell;
    thread_local! {
        static SCANS: Cell<usize> = const { Cell::new(0) };
        static WALKS: Cell<usize> = const { Cell::new(0) };
    }
    pub fn scanned() {
        SCANS.with(|c| c.set(c.get() + 1));
    }
    pub fn walked() {
        WALKS.with(|c| c.set(c.get() + 1));
    }
    /// (scans, walks) since the last call, which starts a new count.
    pub fn take() -> (usize, usize) {
        (SCANS.with(|c| c.replace(0)), WALKS.with(|c| c.replace(0)))
    }
}

/// The plan's resources of these types: one scan of all of them.
fn scan<'a>(plan: &'a Plan, types: &'a [&'a str]) -> impl Iterator<Item = &'a Res> + 'a {
    visits::scanned();
    plan.by_type(types)
}

/// [`Plan::resolve`]: one walk along the references of an expression.
fn walk<'a>(plan: &'a Plan, from: &Res, path: &str) -> Vec<(&'a Res, String)> {
    visits::walked();
    plan.resolve(from, path)
}

/// [`Plan::resolve_whole`]: one walk along the references of an expression.
fn walk_whole<'a>(plan: &'a Plan, from: &Res, path: &str) -> Vec<&'a Res> {
    visits::walked();
    plan.resolve_whole(from, path)
}

/// A key configuration of the plan, named by its address for a message
/// (its id may not be known until apply).
fn address_phrase(r: &Res) -> String {
    if r.creates() {
        format!("key configuration {}, created in this plan", r.address)
    } else {
        format!("key configuration {}", r.address)
    }
}

fn str_known(f: Fact<Option<String>>) -> Option<String> {
    f.known().cloned().flatten()
}

fn kms_facts(plan: &Plan, k: &Res) -> KmsKeyFacts {
    let arn = k.get_str("arn");
    let state = if k.deletes_only() {
        Fact::Known(KeyState::PendingDeletion)
    } else {
        k.get_bool("is_enabled").map(|e| {
            if e == Some(false) {
                KeyState::Disabled
            } else {
                KeyState::Enabled
            }
        })
    };
    let spec_attr = if k.rtype == "aws_kms_key" {
        "customer_master_key_spec"
    } else {
        "key_spec"
    };
    let spec = k
        .get_str(spec_attr)
        .map(|s| s.unwrap_or_else(|| SYMMETRIC_DEFAULT.to_string()));
    let usage = k
        .get_str("key_usage")
        .map(|s| s.unwrap_or_else(|| ENCRYPT_DECRYPT.to_string()));
    let region = key_region(plan, k);
    let policy = if generates_policy(plan, k) {
        generated_policy(k, &region, plan.deployment()).map(Some)
    } else {
        match k.get_str("policy") {
            Fact::Known(Some(p)) if !p.is_empty() => Fact::Known(Some(p)),
            Fact::Known(_) if k.rtype == "aws_kms_key" => Fact::Known(None),
            // (Mirrors the one-pass analysis: KMS's default key policy.)
            Fact::Unknown if k.rtype == "aws_kms_key" && super::default_policy_planned(plan, k) => {
                Fact::Known(None)
            }
            _ => policy_source(plan, k)
                .and_then(|d| d.get_str("json"))
                .map(|p| p.filter(|s| !s.is_empty())),
        }
    };
    KmsKeyFacts {
        arn: arn.map(|a| a.unwrap_or_default()),
        state,
        spec,
        usage,
        region,
        policy,
        grants: grants_on(plan, k),
    }
}

/// The `aws_kms_grant`s of the plan on a key: those whose `key_id` refers
/// to it (its `key_id`, `arn` or `id`) or names its known id or ARN, and
/// those whose `key_id` is not known (they may be on it).
fn grants_on(plan: &Plan, k: &Res) -> Vec<crate::rules::facts::GrantFacts> {
    let mut out = vec![];
    let own = [str_known(k.get_str("arn")), str_known(k.get_str("key_id"))];
    for g in scan(plan, &["aws_kms_grant"]).filter(|g| g.mode == "managed" && !g.deletes_only()) {
        let by_ref = walk(plan, g, "key_id")
            .into_iter()
            .find(|(r, attr)| {
                KMS_KEY_TYPES.contains(&r.rtype.as_str())
                    && matches!(attr.as_str(), "key_id" | "arn" | "id")
            })
            .map(|(r, _)| r.address == k.address)
            .or_else(|| {
                walk_whole(plan, g, "key_id")
                    .into_iter()
                    .find(|r| KMS_KEY_TYPES.contains(&r.rtype.as_str()))
                    .map(|r| r.address == k.address)
            });
        let key_not_known = match (by_ref, g.get_str("key_id")) {
            (Some(true), _) => false,
            (Some(false), _) => continue,
            (None, Fact::Known(Some(id))) if own.iter().flatten().any(|o| *o == id) => false,
            (None, Fact::Known(_)) => continue,
            (None, Fact::Unknown) => true,
        };
        out.push(crate::rules::facts::GrantFacts {
            name: g.address.clone(),
            grantee: g
                .get_str("grantee_principal")
                .and_then(|o| o.map(Fact::Known).unwrap_or(Fact::Unknown)),
            operations: g.get_strings("operations").map(Option::unwrap_or_default),
            key_not_known,
        });
    }
    out
}

/// A KMS key's region: its ARN's; for a key created in this plan, its own
/// `region` (AWS provider 6) or its provider configuration's region (a
/// `cmk_kms_key` is made there, so its unknown `region` is that one).
fn key_region(plan: &Plan, k: &Res) -> Fact<String> {
    match (k.get_str("arn"), k.get_str("region")) {
        (Fact::Known(Some(a)), _) => crate::rules::ids::parse_key_arn(&a)
            .map(|x| Fact::Known(x.region))
            .unwrap_or(Fact::Unknown),
        (_, Fact::Known(Some(r))) => Fact::Known(r),
        (_, Fact::Known(None)) => plan.provider_region(k),
        _ if k.rtype == "cmk_kms_key" => plan.provider_region(k),
        _ => Fact::Unknown,
    }
}

/// Whether review generates a `cmk_kms_key`'s policy itself: no `policy`
/// argument, and the plan does not show the policy the provider generated
/// (an HCL review, or arguments the provider could not resolve at plan).
fn generates_policy(plan: &Plan, k: &Res) -> bool {
    k.rtype == "cmk_kms_key"
        && !plan.configured(k, "policy")
        && !matches!(k.get_str("policy"), Fact::Known(Some(p)) if !p.is_empty())
}

/// The policy such a key gets: the provider's own generator
/// (`rules::kms_policy`) over the key's arguments, an unknown owner
/// standing in as [`OWNER_NOT_KNOWN`]; unknown while another argument it
/// needs is.
fn generated_policy(
    k: &Res,
    region: &Fact<String>,
    deployment: Option<Deployment>,
) -> Fact<String> {
    use crate::rules::kms_policy::{generate, to_canonical_json, PolicyInput};
    let input = || -> Option<PolicyInput> {
        let use_cases = match k.get_strings("use_cases") {
            Fact::Known(Some(v)) => v.iter().filter_map(|s| KeyFeature::parse(s)).collect(),
            _ => return None,
        };
        Some(PolicyInput {
            use_cases,
            aws_account_id: str_known(k.get_str("aws_account_id"))
                .unwrap_or_else(|| OWNER_NOT_KNOWN.to_string()),
            databricks_account_id: k.get_str("databricks_account_id").known()?.clone(),
            cross_account_role_arn: k.get_str("cross_account_role_arn").known()?.clone(),
            // Unset: the argument's default, true.
            reuse_key_for_cluster_volumes: k
                .get_bool("reuse_key_for_cluster_volumes")
                .known()?
                .unwrap_or(true),
            partition: Partition::of_region(region.known()?),
            databricks_principal: None,
            // Not named: the generator takes the only deployment of the
            // key's partition, and refuses GovCloud's two (unknown here).
            deployment,
        })
    };
    match input().map(|i| generate(&i)) {
        Some(Ok(doc)) => Fact::Known(to_canonical_json(&doc)),
        _ => Fact::Unknown,
    }
}

/// The policy a `cmk_kms_key` generates names the principal of its
/// provider's deployment; in GovCloud, which shard is not known while no
/// setting names it: its policy rules say so, and how to name it.
fn shard_decides_generated_policy(outcomes: &mut [Outcome], region: &Fact<String>) {
    let Some(p) = region.known().map(|r| Partition::of_region(r)) else {
        return;
    };
    let shards = Deployment::in_partition(p);
    if shards.len() < 2 {
        return;
    }
    let names = shards
        .iter()
        .map(|d| format!("{d} ({})", d.principal()))
        .collect::<Vec<_>>()
        .join(" or ");
    for o in outcomes.iter_mut().filter(|o| {
        o.subject == Subject::KeyPolicy && o.verdict == crate::rules::Verdict::CannotTell
    }) {
        o.message = format!(
            "the policy cmk_kms_key generates names Databricks' principal of its provider's deployment, {names}, and no provider block says which: pass --deployment, or set the cmk provider's host or deployment"
        );
    }
}

/// The `cmk_kms_key_policy` data source a key's policy comes from.
fn policy_source<'a>(plan: &'a Plan, k: &Res) -> Fact<&'a Res> {
    walk(plan, k, "policy")
        .into_iter()
        .find(|(r, attr)| r.rtype == POLICY_DATA_SOURCE && attr == "json")
        .map(|(r, _)| Fact::Known(r))
        .unwrap_or(Fact::Unknown)
}

fn config_facts(plan: &Plan, c: &Res, key: Option<&KmsKeyFacts>) -> KeyConfigFacts {
    let id = c
        .get_str("customer_managed_key_id")
        .map(|o| o.unwrap_or_default());
    let id = match id {
        Fact::Known(s) if s.is_empty() => Fact::Unknown,
        other => other,
    };
    let use_cases = c.get_strings("use_cases").map(|o| o.unwrap_or_default());
    let key_arn = match c.get_str("aws_key_info.key_arn") {
        Fact::Known(Some(a)) => Fact::Known(a),
        Fact::Known(None) => Fact::Known(String::new()),
        Fact::Unknown => Fact::Unknown,
    };
    let mut key_region = match c.get_str("aws_key_info.key_region") {
        Fact::Unknown
            if !plan.configured(c, "aws_key_info.key_region")
                && !plan.configured(c, "aws_key_info") =>
        {
            Fact::Known(None)
        }
        other => other,
    };
    if c.rtype == "cmk_key_configuration"
        && key_arn.is_unknown()
        && key_region.is_unknown()
        && key_arn_source(plan, c).is_some()
    {
        // This provider plans key_region from the ARN when it is not set;
        // with `aws_key_info` made of the key's ARN alone, an unknown
        // key_region is that one (a key_region written as a value would be
        // known in the plan), so the key's own region decides it.
        key_region = Fact::Known(None);
    }
    if key_arn.is_unknown() && key_region == Fact::Known(None) {
        // Databricks takes the region from the ARN; the linked key may know it.
        key_region = match key.map(|k| &k.region) {
            Some(Fact::Known(r)) => Fact::Known(Some(r.clone())),
            _ => Fact::Unknown,
        };
    }
    let reuse = if c.rtype == "cmk_key_configuration" {
        c.get_bool("aws_key_info.reuse_key_for_cluster_volumes")
    } else {
        Fact::Known(None)
    };
    KeyConfigFacts {
        id,
        use_cases,
        key_arn,
        key_arn_prefix: None,
        key_region,
        reuse_key_for_cluster_volumes: reuse,
    }
}

/// The plan's KMS keys by known ARN (the first of each).
fn keys_by_arn(plan: &Plan) -> HashMap<String, &Res> {
    let mut m = HashMap::new();
    for k in scan(plan, &KMS_KEY_TYPES) {
        if let Some(arn) = str_known(k.get_str("arn")) {
            m.entry(arn).or_insert(k);
        }
    }
    m
}

/// The KMS key an `aws_kms_alias` points at (`target_key_id` referencing
/// the key's `key_id`, `arn` or `id`).
fn alias_target<'a>(plan: &'a Plan, alias: &Res) -> Option<&'a Res> {
    walk(plan, alias, "target_key_id")
        .into_iter()
        .find(|(r, attr)| {
            KMS_KEY_TYPES.contains(&r.rtype.as_str())
                && matches!(attr.as_str(), "key_id" | "arn" | "id")
        })
        .map(|(r, _)| r)
}

/// The KMS key resource a key configuration uses: by reference to the
/// key's `arn`, through an `aws_kms_alias` (`key_arn` from its
/// `target_key_arn`, or `key_alias` from its `name`), or by ARN.
fn linked_key<'a>(plan: &'a Plan, c: &Res, by_arn: &HashMap<String, &'a Res>) -> Option<&'a Res> {
    let arn_refs = walk(plan, c, "aws_key_info.key_arn");
    // (Mirrors the one-pass analysis: a root variable read by key_arn.)
    let open = plan.reads_root_variable(c, "aws_key_info.key_arn");
    let by_ref = arn_refs
        .iter()
        .find(|(r, attr)| !open && KMS_KEY_TYPES.contains(&r.rtype.as_str()) && attr == "arn")
        .map(|(r, _)| *r);
    let via_alias = || {
        arn_refs
            .iter()
            .find(|(r, attr)| r.rtype == "aws_kms_alias" && attr == "target_key_arn")
            .map(|(r, _)| *r)
            .or_else(|| {
                walk(plan, c, "aws_key_info.key_alias")
                    .into_iter()
                    .find(|(r, attr)| r.rtype == "aws_kms_alias" && attr == "name")
                    .map(|(r, _)| r)
            })
            .and_then(|alias| alias_target(plan, alias))
    };
    // `aws_kms_key.k[each.key].arn` is recorded as references to `k` and
    // `each.key`: the instance with the configuration's own key.
    let dynamic = || {
        if open {
            return None;
        }
        walk_whole(plan, c, "aws_key_info.key_arn")
            .into_iter()
            .find(|r| KMS_KEY_TYPES.contains(&r.rtype.as_str()))
    };
    // The key whose `arn` the value is (HCL mode: through module outputs,
    // splats, `concat(...)[0]`, `element`, `one`, `try`).
    let by_origin = || {
        let origin = key_arn_origin(plan, c)?;
        plan.get(origin.strip_suffix(".arn")?)
    };
    // The origin first: it names the one instance the value is.
    by_origin()
        .or(by_ref)
        .or_else(dynamic)
        .or_else(via_alias)
        .or_else(|| {
            let arn = str_known(c.get_str("aws_key_info.key_arn"))?;
            by_arn.get(&arn).copied()
        })
}

/// Where a key configuration's `key_arn`, not known until apply, comes
/// from, when that is a KMS key resource's `arn` (or an alias's
/// `target_key_arn`) and nothing else: the expression references only
/// that attribute and the resource holding it (as `terraform show -json`
/// records `aws_kms_key.k.arn`: `aws_kms_key.k.arn`, `aws_kms_key.k`).
fn key_arn_source(plan: &Plan, c: &Res) -> Option<String> {
    key_arn_source_by_refs(plan, c).or_else(|| key_arn_origin(plan, c))
}

/// HCL mode: the KMS key resource whose `arn` the value is, by its origin
/// (through module outputs, splats and the functions that pass it on).
fn key_arn_origin(plan: &Plan, c: &Res) -> Option<String> {
    let marker = c.origin("aws_key_info.key_arn")?;
    let origin = crate::rules::unknown::exact(&marker)?.origin;
    let key = plan.get(origin.strip_suffix(".arn")?)?;
    KMS_KEY_TYPES
        .contains(&key.rtype.as_str())
        .then_some(origin)
}

fn key_arn_source_by_refs(plan: &Plan, c: &Res) -> Option<String> {
    if plan.reads_root_variable(c, "aws_key_info.key_arn") {
        return None;
    }
    let (r, attr) = walk(plan, c, "aws_key_info.key_arn")
        .into_iter()
        .find(|(r, attr)| {
            (KMS_KEY_TYPES.contains(&r.rtype.as_str()) && attr == "arn")
                || (r.rtype == "aws_kms_alias" && attr == "target_key_arn")
        })?;
    let whole = walk_whole(plan, c, "aws_key_info.key_arn");
    if whole.iter().any(|w| w.config_address != r.config_address) {
        return None;
    }
    Some(format!("{}.{attr}", r.config_address))
}

/// The start of a `cmk_kms_key`'s ARN when the plan knows its region and
/// account but not the key id (a key made in this plan).
fn planned_arn_prefix(plan: &Plan, k: &Res) -> Option<String> {
    if k.rtype != "cmk_kms_key" {
        return None;
    }
    let region = key_region(plan, k).known().cloned()?;
    let account = str_known(k.get_str("aws_account_id"))?;
    crate::rules::ids::new_key_arn_prefix(&region, &account)
}

/// The cross-account IAM role of an official workspace resource: its
/// `credentials_id` followed to a `databricks_mws_credentials` of the plan
/// (by reference, or by the id's value), whose `role_arn` it is.
fn cross_account_role(
    plan: &Plan,
    w: &Res,
    creds_by_id: &HashMap<String, &Res>,
) -> Fact<Option<String>> {
    let creds = walk(plan, w, "credentials_id")
        .into_iter()
        .find(|(r, attr)| r.rtype == "databricks_mws_credentials" && attr == "credentials_id")
        .map(|(r, _)| r)
        .or_else(|| {
            str_known(w.get_str("credentials_id")).and_then(|id| creds_by_id.get(&id).copied())
        });
    match creds {
        // Not known until apply, but one reference (HCL mode): the same
        // value as every other use of that reference.
        Some(c) => match (c.get_str("role_arn"), c.origin("role_arn")) {
            (Fact::Unknown, Some(marker)) => Fact::Known(Some(marker)),
            (f, _) => f,
        },
        None => Fact::Unknown,
    }
}

struct Slot<'a> {
    req: RequestedKey,
    config: Option<&'a Res>,
}

fn slot<'a>(
    plan: &'a Plan,
    w: &Res,
    attr: &str,
    configs_by_id: &HashMap<String, &'a Res>,
) -> Slot<'a> {
    let id = w.get_str(attr);
    let mut req = RequestedKey {
        id: id.clone(),
        ..RequestedKey::unknown()
    };
    let mut config = None;
    for (r, a) in walk(plan, w, attr) {
        if !KEY_CONFIG_TYPES.contains(&r.rtype.as_str()) {
            continue;
        }
        if r.rtype == "databricks_mws_customer_managed_keys" && a == "id" {
            req.composite_source = Some(format!("{}.id", r.config_address));
        } else if a == "customer_managed_key_id" {
            req.bare_source = Some(format!("{}.customer_managed_key_id", r.config_address));
        } else {
            continue;
        }
        req.created_in_plan = r.creates();
        req.config_name = Some(address_phrase(r));
        config = Some(r);
        // The instance with the workspace's own count/for_each key comes first.
        break;
    }
    if config.is_none() {
        // `c[each.key].customer_managed_key_id` is recorded as a reference
        // to `c` and `each.key` only: the instance matching the workspace's
        // key, attribute not known (so neither bare nor composite).
        if let Some(r) = walk_whole(plan, w, attr)
            .into_iter()
            .find(|r| KEY_CONFIG_TYPES.contains(&r.rtype.as_str()))
        {
            req.created_in_plan = r.creates();
            req.config_name = Some(address_phrase(r));
            config = Some(r);
        }
    }
    // A binding given a key configuration whole (`storage_key =
    // cmk_key_configuration.s`): the id is that configuration's bare id.
    let object_attr = match attr {
        "storage_key_id" => Some("storage_key"),
        "managed_services_key_id" => Some("managed_services_key"),
        _ => None,
    };
    if let (true, Some(object_attr)) = (w.rtype == "cmk_workspace_binding", object_attr) {
        for r in walk_whole(plan, w, object_attr) {
            if KEY_CONFIG_TYPES.contains(&r.rtype.as_str()) {
                req.bare_source = Some(format!("{}.customer_managed_key_id", r.config_address));
                req.created_in_plan = r.creates();
                req.config_name = Some(address_phrase(r));
                if req.id.is_unknown() {
                    req.id = r.get_str("customer_managed_key_id");
                }
                config = Some(r);
            }
        }
    }
    if config.is_none() {
        if let Fact::Known(Some(id)) = &id {
            config = configs_by_id.get(id).copied();
        }
    }
    Slot { req, config }
}

fn workspace_facts(plan: &Plan, w: &Res) -> WorkspaceFacts {
    // A cmk_workspace_binding binds keys to a workspace that exists already:
    // creating the binding says nothing about the workspace's keys, tier or
    // compute, which the plan does not carry (the resource itself reads them
    // live at plan time). Only its planned region and name are facts here.
    if w.rtype == "cmk_workspace_binding" {
        let mut f = WorkspaceFacts::unknown();
        if !w.before.is_null() {
            f.managed_services_key_id = Fact::Known(w.before_str("managed_services_key_id"));
            f.storage_key_id = Fact::Known(w.before_str("storage_key_id"));
            if let Some(s) = w
                .before_str("workspace_status")
                .and_then(|s| WorkspaceStatus::parse(&s))
            {
                f.status = Fact::Known(Some(s));
            }
        }
        f.name = w.get_str("workspace_name");
        f.region = w
            .get_str("aws_region")
            .and_then(|o| o.map(Fact::Known).unwrap_or(Fact::Unknown));
        return f;
    }
    let mut f = if plan.without_state {
        // A configuration's source: the workspace may exist already, and
        // what it has now was not read (see `source_state`).
        WorkspaceFacts {
            state: StateRead::NotRead { settings: false },
            ..WorkspaceFacts::unknown()
        }
    } else if w.creates() && w.before.is_null() {
        WorkspaceFacts::new_workspace()
    } else {
        let status = w
            .before_str("workspace_status")
            .and_then(|s| WorkspaceStatus::parse(&s));
        WorkspaceFacts {
            id: Fact::Known(
                w.before
                    .get("workspace_id")
                    .map(|v| v.to_string().trim_matches('"').to_string()),
            ),
            status: match status {
                Some(s) => Fact::Known(Some(s)),
                None => Fact::Unknown,
            },
            managed_services_key_id: Fact::Known(
                w.before_str("managed_services_customer_managed_key_id"),
            ),
            storage_key_id: Fact::Known(w.before_str("storage_customer_managed_key_id")),
            ..WorkspaceFacts::unknown()
        }
    };
    f.name = w.get_str("workspace_name");
    f.region = w
        .get_str("aws_region")
        .and_then(|o| o.map(Fact::Known).unwrap_or(Fact::Unknown));
    f.pricing_tier = w.get_str("pricing_tier").and_then(|o| {
        o.and_then(|s| PricingTier::parse(&s))
            .map(Fact::Known)
            .unwrap_or(Fact::Unknown)
    });
    f.compute_mode = w.get_str("compute_mode").and_then(|o| match o {
        None => Fact::Known(ComputeMode::Hybrid),
        Some(s) => ComputeMode::parse(&s)
            .map(Fact::Known)
            .unwrap_or(Fact::Unknown),
    });
    f
}

/// How `--live` finds a workspace the configuration declares: its
/// `workspace_name` and `deployment_name`, when known.
fn workspace_name_of(plan: &Plan, w: &Res) -> Option<crate::review::live::WorkspaceName> {
    if w.rtype != "databricks_mws_workspaces" {
        return None;
    }
    let workspace_name = str_known(w.get_str("workspace_name"))?;
    let deployment_name = match w.get_str("deployment_name") {
        Fact::Known(d) => d.filter(|d| !d.is_empty()),
        // Not set: computed by Databricks, so the name alone finds it.
        Fact::Unknown if !plan.configured(w, "deployment_name") => None,
        Fact::Unknown => return None,
    };
    Some(crate::review::live::WorkspaceName {
        workspace_name,
        deployment_name,
    })
}

/// The current state of a workspace reviewed from a configuration's
/// source (no plan, so no prior state). `declared`: the
/// `databricks_mws_workspaces` of the configuration it is (the resource
/// itself, or a binding's target). Without `--live` the state is not read
/// (its rules say "needs state"); with `--live` the account's workspace of
/// that name (or the binding's `workspace_id`) gives it, none is a new
/// workspace (said in `notes`), several cannot be told apart.
fn source_state(
    plan: &Plan,
    ws: &mut WorkspaceFacts,
    w: &Res,
    declared: Option<&Res>,
    live: Option<&crate::review::live::LiveFacts>,
    notes: &mut Vec<String>,
) {
    use crate::review::live::NameMatch;
    let Some(live) = live else {
        ws.state = StateRead::NotRead {
            settings: declared.is_none(),
        };
        return;
    };
    let Some(d) = declared else {
        // A binding to a workspace the configuration does not declare:
        // read by its workspace_id (overlaid already), when known.
        let read = existing_workspace_id(w).is_some_and(|id| live.workspaces.contains_key(&id));
        if !read && existing_workspace_id(w).is_none() {
            ws.state = StateRead::Ambiguous(format!(
                "the workspace_id of {} is not known, so --live cannot read its workspace",
                w.address
            ));
        }
        return;
    };
    let Some(name) = workspace_name_of(plan, d) else {
        ws.state = StateRead::Ambiguous(format!(
            "the workspace_name or deployment_name of {} is not known, so --live cannot find it in the account",
            d.address
        ));
        return;
    };
    match live.by_name.get(&name) {
        Some(NameMatch::Found(id)) => {
            if let Some(l) = live.workspaces.get(id) {
                overlay_live(ws, l);
                if w.address == d.address {
                    notes.push(format!(
                        "{} of {} is workspace {id} of the account: its current state was read",
                        name.label(),
                        d.address
                    ));
                }
            }
        }
        Some(NameMatch::NotFound) => {
            let new = WorkspaceFacts::new_workspace();
            ws.id = new.id;
            ws.status = new.status;
            ws.managed_services_key_id = new.managed_services_key_id;
            ws.storage_key_id = new.storage_key_id;
            ws.running_classic_compute = new.running_classic_compute;
            ws.dashboards = new.dashboards;
            ws.state = StateRead::Read;
            if w.address == d.address {
                notes.push(format!(
                    "{} of {} is not a workspace of the account: reviewed as a new workspace",
                    name.label(),
                    d.address
                ));
            }
        }
        Some(NameMatch::Ambiguous(ids)) => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            ws.state = StateRead::Ambiguous(format!(
                "{} of {} could be any of {} workspaces of the account ({}); set its deployment_name to tell them apart",
                name.label(),
                d.address,
                ids.len(),
                ids.join(", ")
            ));
        }
        // Listing failed (reported as a live error).
        None => {
            ws.state = StateRead::Ambiguous(format!(
                "the account's workspaces could not be listed, so --live could not find {} of {}",
                name.label(),
                d.address
            ));
        }
    }
}

/// The key slots of a workspace resource, as its type names them.
fn key_slots(w: &Res) -> [&'static str; 2] {
    if w.rtype == "databricks_mws_workspaces" {
        [
            "managed_services_customer_managed_key_id",
            "storage_customer_managed_key_id",
        ]
    } else {
        ["managed_services_key_id", "storage_key_id"]
    }
}

/// True when the plan keeps a workspace resource that exists with the keys
/// it has (a no-op, or an update of other arguments): both slots are known
/// in the plan and equal to the prior state's.
fn keys_unchanged(w: &Res) -> bool {
    if w.before.is_null() || w.creates() {
        return false;
    }
    key_slots(w).iter().all(|attr| match w.get(attr) {
        Fact::Known(after) => after.as_ref() == w.before.get(*attr).filter(|v| !v.is_null()),
        Fact::Unknown => false,
    })
}

/// The rules about a change of keys, asked of a workspace resource whose
/// keys do not change: what they cannot tell (tier, compute mode,
/// dashboards: facts the plan does not hold) concerns a request this plan
/// does not send. Rules about the result (CMK012, CMK013: required
/// coverage) stay as they are.
fn settle_unchanged(address: &str, outs: &mut [Outcome]) {
    for o in outs.iter_mut() {
        let about_the_result = matches!(
            o.rule,
            RuleId::UnprotectableDataType | RuleId::RequiredCoverage
        );
        if o.verdict == crate::rules::Verdict::CannotTell && !about_the_result {
            *o = Outcome::pass(
                o.rule,
                o.subject,
                format!("the keys of {address} do not change in this plan: nothing is sent to Databricks"),
            );
        }
    }
}

/// The existing workspace a workspace resource is about, when its id is
/// known: an official `databricks_mws_workspaces` that exists already (its
/// prior `workspace_id`), or a binding's `workspace_id`.
pub fn existing_workspace_id(w: &Res) -> Option<i64> {
    let as_id = |v: &serde_json::Value| {
        match v {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse::<i64>().ok(),
            _ => None,
        }
        .filter(|id| *id > 0)
    };
    if w.rtype == "databricks_mws_workspaces" {
        if w.before.is_null() {
            return None;
        }
        return w.before.get("workspace_id").and_then(as_id);
    }
    match w.get("workspace_id") {
        Fact::Known(Some(v)) => as_id(&v),
        _ => w.before.get("workspace_id").and_then(as_id),
    }
}

fn workspace_resources(plan: &Plan) -> impl Iterator<Item = &Res> {
    scan(plan, &WORKSPACE_TYPES).filter(|w| w.mode == "managed" && !w.deletes_only())
}

/// What `review --live` would read for this plan: the existing workspaces
/// it touches, and the key configuration ids it names without creating them.
pub fn live_targets(plan: &Plan) -> crate::review::live::Targets {
    let mut t = crate::review::live::Targets::default();
    let mut configs_by_id: HashMap<String, &Res> = HashMap::new();
    for c in scan(plan, &KEY_CONFIG_TYPES) {
        if let Some(id) = str_known(c.get_str("customer_managed_key_id")) {
            configs_by_id.entry(id).or_insert(c);
        }
    }
    for w in workspace_resources(plan) {
        if let Some(id) = existing_workspace_id(w) {
            t.workspace_ids.insert(id);
        }
        if plan.without_state {
            if let Some(n) = workspace_name_of(plan, w) {
                t.workspace_names.insert(n);
            }
        }
        for attr in key_slots(w) {
            let s = slot(plan, w, attr, &configs_by_id);
            if let (None, Fact::Known(Some(id))) = (s.config, &s.req.id) {
                if crate::rules::ids::is_composite_key_id(id) {
                    continue;
                }
                t.key_config_ids.insert(id.clone());
            }
        }
    }
    t
}

/// Live facts over what the plan says of a workspace: the plan's planned
/// name, region, tier and compute mode stay when known; everything the
/// plan cannot hold (status, current keys, running compute, dashboards)
/// comes from the live reading when it has it.
fn overlay_live(ws: &mut WorkspaceFacts, live: &WorkspaceFacts) {
    fn fill<T: Clone>(plan: &mut Fact<T>, live: &Fact<T>) {
        if plan.is_unknown() {
            *plan = live.clone();
        }
    }
    fn take<T: Clone>(plan: &mut Fact<T>, live: &Fact<T>) {
        if !live.is_unknown() {
            *plan = live.clone();
        }
    }
    fill(&mut ws.name, &live.name);
    fill(&mut ws.region, &live.region);
    fill(&mut ws.pricing_tier, &live.pricing_tier);
    fill(&mut ws.compute_mode, &live.compute_mode);
    take(&mut ws.id, &live.id);
    take(&mut ws.storage_mode, &live.storage_mode);
    take(&mut ws.status, &live.status);
    take(
        &mut ws.managed_services_key_id,
        &live.managed_services_key_id,
    );
    take(&mut ws.storage_key_id, &live.storage_key_id);
    take(
        &mut ws.running_classic_compute,
        &live.running_classic_compute,
    );
    take(&mut ws.dashboards, &live.dashboards);
    take(
        &mut ws.all_results_in_customer_account,
        &live.all_results_in_customer_account,
    );
    ws.state = StateRead::Read;
}

/// Applies the rules to every relevant object of the plan, offline. The
/// outcomes that cannot tell yet but that facts read live would decide are
/// marked `live_decides`.
pub fn analyze(plan: &Plan, required: &Requirements) -> Analysis {
    let mut a = analyze_with(plan, required, None);
    let targets = live_targets(plan);
    if targets.is_empty() {
        return a;
    }
    // Probe: the same analysis with placeholder live facts for every
    // target. What it decides, --live decides (whatever the values).
    let probe = analyze_with(plan, required, Some(&placeholder_live(&targets)));
    let decided: std::collections::HashSet<(&str, crate::rules::RuleId, Subject)> = probe
        .outcomes
        .iter()
        .filter(|l| {
            !matches!(
                l.outcome.verdict,
                crate::rules::Verdict::CannotTell | crate::rules::Verdict::NeedsState
            )
        })
        .map(|l| (l.address.as_str(), l.outcome.rule, l.outcome.subject))
        .collect();
    for l in &mut a.outcomes {
        if matches!(
            l.outcome.verdict,
            crate::rules::Verdict::CannotTell | crate::rules::Verdict::NeedsState
        ) && decided.contains(&(l.address.as_str(), l.outcome.rule, l.outcome.subject))
        {
            l.live_decides = true;
        }
    }
    a
}

/// Applies the rules with facts read live.
pub fn analyze_live(
    plan: &Plan,
    required: &Requirements,
    live: &crate::review::live::LiveFacts,
) -> Analysis {
    analyze_with(plan, required, Some(live))
}

/// Facts of the shape a live reading gives, with placeholder values.
fn placeholder_live(t: &crate::review::live::Targets) -> crate::review::live::LiveFacts {
    let mut live = crate::review::live::LiveFacts::default();
    for &id in &t.workspace_ids {
        let f = WorkspaceFacts {
            id: Fact::Known(Some(id.to_string())),
            name: Fact::Known(Some(format!("workspace {id}"))),
            region: Fact::Known("placeholder-region-1".into()),
            pricing_tier: Fact::Known(PricingTier::Enterprise),
            compute_mode: Fact::Known(ComputeMode::Hybrid),
            status: Fact::Known(Some(WorkspaceStatus::Running)),
            managed_services_key_id: Fact::Known(None),
            storage_key_id: Fact::Known(None),
            running_classic_compute: Fact::Known(vec![]),
            dashboards: Fact::Known(vec![]),
            ..WorkspaceFacts::unknown()
        };
        live.workspaces.insert(id, f);
    }
    // Each named workspace found, as a workspace of its own.
    for (i, n) in t.workspace_names.iter().enumerate() {
        let id = (1_i64 << 60) + i as i64;
        live.by_name
            .insert(n.clone(), crate::review::live::NameMatch::Found(id));
        live.workspaces.insert(
            id,
            WorkspaceFacts {
                id: Fact::Known(Some(id.to_string())),
                status: Fact::Known(Some(WorkspaceStatus::Running)),
                managed_services_key_id: Fact::Known(None),
                storage_key_id: Fact::Known(None),
                running_classic_compute: Fact::Known(vec![]),
                dashboards: Fact::Known(vec![]),
                ..WorkspaceFacts::unknown()
            },
        );
    }
    for id in &t.key_config_ids {
        live.key_configs.insert(
            id.clone(),
            KeyConfigFacts {
                id: Fact::Known(id.clone()),
                use_cases: Fact::Known(vec!["MANAGED_SERVICES".into(), "STORAGE".into()]),
                key_arn: Fact::Known(
                    "arn:aws:kms:placeholder-region-1:000000000000:key/00000000-0000-4000-8000-000000000000".into(),
                ),
                key_arn_prefix: None,
                key_region: Fact::Known(None),
                reuse_key_for_cluster_volumes: Fact::Known(None),
            },
        );
    }
    live
}

fn analyze_with(
    plan: &Plan,
    required: &Requirements,
    live: Option<&crate::review::live::LiveFacts>,
) -> Analysis {
    let mut a = Analysis::default();
    let push = |a: &mut Analysis, res: &Res, outs: Vec<Outcome>| {
        for o in outs {
            a.outcomes.push(Located {
                address: res.address.clone(),
                resource_type: res.rtype.clone(),
                attribute: attribute_for(&res.rtype, o.subject),
                outcome: o,
                live_decides: false,
            });
        }
    };
    // Key configurations, each with the KMS key it uses (looked up once).
    let by_arn = keys_by_arn(plan);
    let configs: Vec<(&Res, Option<&Res>, KeyConfigFacts)> = scan(plan, &KEY_CONFIG_TYPES)
        .filter(|c| c.mode == "managed" && !c.deletes_only())
        .map(|c| {
            let linked = linked_key(plan, c, &by_arn);
            let key = linked.map(|k| kms_facts(plan, k));
            (c, linked, config_facts(plan, c, key.as_ref()))
        })
        .collect();
    for (c, linked, _) in &configs {
        // The configuration on its own: key_region as written (an unset
        // one is not the region derived from the linked key).
        let mut written = config_facts(plan, c, None);
        if written.key_arn.is_unknown() && key_arn_source(plan, c).is_some() {
            // The ARN of a key made in this plan starts with what its
            // planned region and account already say (as the provider's
            // own plan of the ARN does).
            written.key_arn_prefix = linked.and_then(|k| planned_arn_prefix(plan, k));
        }
        if c.get_str("aws_key_info.key_region").is_unknown()
            && !plan.configured(c, "aws_key_info.key_region")
            && !plan.configured(c, "aws_key_info")
        {
            // Not set: Databricks takes it from the ARN (computed, so unknown in the plan).
            written.key_region = Fact::Known(None);
        }
        let mut outs = check_key_configuration(&written);
        if written.key_arn.is_unknown() {
            if let Some(source) = key_arn_source(plan, c) {
                for o in outs
                    .iter_mut()
                    .filter(|o| o.rule == RuleId::KeyArnWellFormed)
                {
                    *o = key_arn_from_key_resource(&source);
                }
            }
        }
        // CMK022: the key's partition (its ARN's, a promised ARN's, or the
        // linked key's region's) against the deployment.
        let region = match (&written.key_region, linked) {
            (Fact::Known(Some(r)), _) => Fact::Known(r.clone()),
            (_, Some(k)) => key_region(plan, k),
            _ => Fact::Unknown,
        };
        let partition = key_partition_of(
            written.key_arn.known().map(String::as_str),
            written.key_arn_prefix.as_deref(),
            region.known().map(String::as_str),
        );
        outs.extend(check_key_partition(plan.deployment(), partition));
        push(&mut a, c, outs);
    }
    let config_index: HashMap<&str, usize> = configs
        .iter()
        .enumerate()
        .map(|(i, (c, _, _))| (c.address.as_str(), i))
        .collect();
    let facts_of = |r: &Res| {
        config_index
            .get(r.address.as_str())
            .map(|i| configs[*i].2.clone())
    };
    let mut configs_by_id: HashMap<String, &Res> = HashMap::new();
    for c in scan(plan, &KEY_CONFIG_TYPES) {
        if let Some(id) = str_known(c.get_str("customer_managed_key_id")) {
            configs_by_id.entry(id).or_insert(c);
        }
    }
    // The key configurations using each KMS key.
    let mut users_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (_, linked, _)) in configs.iter().enumerate() {
        if let Some(k) = linked {
            users_of.entry(k.address.as_str()).or_default().push(i);
        }
    }
    // Workspaces and bindings; the regions and cross-account roles of the
    // workspaces each key configuration serves.
    let mut regions: HashMap<String, Vec<Fact<String>>> = HashMap::new();
    let mut roles: HashMap<String, Vec<Fact<Option<String>>>> = HashMap::new();
    let mut creds_by_id: HashMap<String, &Res> = HashMap::new();
    for c in scan(plan, &["databricks_mws_credentials"]) {
        if let Some(id) = str_known(c.get_str("credentials_id")) {
            creds_by_id.entry(id).or_insert(c);
        }
    }
    for w in workspace_resources(plan) {
        let mut role = Fact::Unknown;
        let (mut ws, ms, st) = if w.rtype == "databricks_mws_workspaces" {
            role = cross_account_role(plan, w, &creds_by_id);
            (
                workspace_facts(plan, w),
                slot(
                    plan,
                    w,
                    "managed_services_customer_managed_key_id",
                    &configs_by_id,
                ),
                slot(plan, w, "storage_customer_managed_key_id", &configs_by_id),
            )
        } else {
            let target = walk(plan, w, "workspace_id")
                .into_iter()
                .find(|(r, _)| r.rtype == "databricks_mws_workspaces")
                .map(|(r, _)| r);
            if let Some(t) = target {
                role = cross_account_role(plan, t, &creds_by_id);
            }
            // The binding's own planned facts (region, name, status and keys
            // so far) when the plan does not hold the workspace resource.
            let mut ws = target
                .map(|t| workspace_facts(plan, t))
                .unwrap_or_else(|| workspace_facts(plan, w));
            if let Fact::Known(Some(id)) = w
                .get("workspace_id")
                .map(|o| o.map(|v| v.to_string().trim_matches('"').to_string()))
            {
                ws.id = Fact::Known(Some(id));
            }
            if w.creates() && w.before.is_null() {
                // A new binding: the workspace's keys so far are those its own
                // resource plans (when it is in the plan), else unknown.
                if target.is_none() {
                    ws.managed_services_key_id = Fact::Unknown;
                    ws.storage_key_id = Fact::Unknown;
                }
            } else {
                ws.managed_services_key_id = Fact::Known(w.before_str("managed_services_key_id"));
                ws.storage_key_id = Fact::Known(w.before_str("storage_key_id"));
            }
            (
                ws,
                slot(plan, w, "managed_services_key_id", &configs_by_id),
                slot(plan, w, "storage_key_id", &configs_by_id),
            )
        };
        if let Some(l) = existing_workspace_id(w).and_then(|id| live?.workspaces.get(&id)) {
            overlay_live(&mut ws, l);
        }
        if plan.without_state {
            let declared = if w.rtype == "databricks_mws_workspaces" {
                Some(w)
            } else {
                walk(plan, w, "workspace_id")
                    .into_iter()
                    .find(|(r, _)| r.rtype == "databricks_mws_workspaces")
                    .map(|(r, _)| r)
            };
            source_state(plan, &mut ws, w, declared, live, &mut a.live_notes);
        }
        for c in [ms.config, st.config].into_iter().flatten() {
            regions
                .entry(c.address.clone())
                .or_default()
                .push(ws.region.clone());
            roles
                .entry(c.address.clone())
                .or_default()
                .push(role.clone());
        }
        // A configuration the plan names but does not hold: as read live.
        let live_cfg = |slot: &Slot| match (&slot.req.id, live) {
            (Fact::Known(Some(id)), Some(l)) => l.key_configs.get(id).cloned(),
            _ => None,
        };
        let ms_cfg = ms.config.and_then(facts_of).or_else(|| live_cfg(&ms));
        let st_cfg = st.config.and_then(facts_of).or_else(|| live_cfg(&st));
        let change = BindingChange {
            managed_services: ms.req,
            storage: st.req,
        };
        let mut outs = check_binding(&ws, &change, ms_cfg.as_ref(), st_cfg.as_ref(), required);
        if keys_unchanged(w) {
            settle_unchanged(&w.address, &mut outs);
        }
        push(&mut a, w, outs);
        a.coverage.push(WorkspaceCoverage {
            address: w.address.clone(),
            coverage: coverage(&ws, &PlannedKeys::from_binding(&change, st_cfg.as_ref())),
        });
    }
    // KMS keys used by the key configurations (or declaring use cases).
    for k in scan(plan, &KMS_KEY_TYPES).filter(|k| k.mode == "managed") {
        let user_ids: &[usize] = users_of
            .get(k.address.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let users: Vec<&KeyConfigFacts> = user_ids.iter().map(|i| &configs[*i].2).collect();
        let own_use_cases = if k.rtype == "cmk_kms_key" {
            k.get_strings("use_cases")
        } else {
            Fact::Known(None)
        };
        if users.is_empty() && !matches!(own_use_cases, Fact::Known(Some(_))) {
            continue;
        }
        let kf = kms_facts(plan, k);
        let mut use_cases: Fact<BTreeSet<KeyFeature>> = Fact::Known(BTreeSet::new());
        let mut cluster_volumes = Fact::Known(false);
        for u in &users {
            use_cases = match (use_cases, u.features()) {
                (Fact::Known(mut a), Fact::Known(b)) => {
                    a.extend(b);
                    Fact::Known(a)
                }
                _ => Fact::Unknown,
            };
            cluster_volumes = match (cluster_volumes, u.covers_cluster_volumes()) {
                (Fact::Known(true), _) | (_, Fact::Known(true)) => Fact::Known(true),
                (Fact::Known(false), Fact::Known(false)) => Fact::Known(false),
                _ => Fact::Unknown,
            };
        }
        if users.is_empty() {
            if let Fact::Known(Some(v)) = &own_use_cases {
                use_cases = Fact::Known(v.iter().filter_map(|s| KeyFeature::parse(s)).collect());
                // No configuration of the plan uses it: the key's own
                // reuse_key_for_cluster_volumes (default true), as the
                // provider checks its policy.
                cluster_volumes = if v.iter().any(|s| s == "STORAGE") {
                    k.get_bool("reuse_key_for_cluster_volumes")
                        .map(|r| r != Some(false))
                } else {
                    Fact::Known(false)
                };
            }
        }
        let source = policy_source(plan, k);
        // The account of the key configurations using the key, else the
        // one a `cmk_kms_key`'s own policy is generated for (an AWS key has
        // no such argument), else the policy data source's, else the one
        // the `cmk` and `databricks` provider blocks agree on (the account
        // every key configuration of theirs is made in).
        let databricks_account_id = user_ids
            .iter()
            .find_map(|i| str_known(configs[*i].0.get_str("account_id")))
            .or_else(|| str_known(k.get_str("databricks_account_id")))
            .or_else(|| {
                source
                    .known()
                    .and_then(|d| str_known(d.get_str("databricks_account_id")))
            })
            .or_else(|| {
                plan.provider_setting("account_id")
                    .ok()
                    .flatten()
                    .map(|(v, _)| v)
            });
        // The workspace's own role (its credentials) first: that is the
        // role EC2 acts for; else the one the policy data source was given.
        let workspace_role = user_ids
            .iter()
            .filter_map(|i| roles.get(&configs[*i].0.address))
            .flatten()
            .find_map(|f| match f {
                Fact::Known(Some(r)) => Some(r.clone()),
                _ => None,
            });
        // Then the role a `cmk_kms_key` was given for its EBS statement (its
        // own argument, in the plan), else the policy data source's.
        let own_role = if k.rtype == "cmk_kms_key" {
            k.get_str("cross_account_role_arn")
        } else {
            Fact::Known(None)
        };
        let role = match (workspace_role, own_role, source) {
            (Some(r), _, _) => Fact::Known(Some(r)),
            (None, Fact::Known(Some(r)), _) => Fact::Known(Some(r)),
            (None, Fact::Unknown, _) => Fact::Unknown,
            (None, Fact::Known(None), Fact::Known(d)) => d.get_str("cross_account_role_arn"),
            (None, Fact::Known(None), Fact::Unknown) => Fact::Unknown,
        };
        let needs = PolicyNeeds {
            use_cases,
            cluster_volumes,
            databricks_account_id: databricks_account_id
                .map(Fact::Known)
                .unwrap_or(Fact::Unknown),
            cross_account_role_arn: role,
            workspace_region: user_ids
                .iter()
                .filter_map(|i| regions.get(&configs[*i].0.address))
                .flatten()
                .find_map(|f| f.known().cloned())
                .map(Fact::Known)
                .unwrap_or_else(|| kf.region.clone()),
            databricks_principal: source
                .known()
                .and_then(|d| str_known(d.get_str("databricks_principal"))),
            deployment: plan.deployment(),
        };
        let mut outcomes = check_kms_key(&kf, &needs);
        if generates_policy(plan, k) && kf.policy.is_unknown() && plan.deployment().is_none() {
            shard_decides_generated_policy(&mut outcomes, &kf.region);
        }
        outcomes.extend(check_key_partition(
            plan.deployment(),
            key_partition_of(
                kf.arn.known().map(String::as_str),
                None,
                kf.region.known().map(String::as_str),
            ),
        ));
        if let (true, Fact::Known(None) | Fact::Unknown, Fact::Known(Some(role))) = (
            generates_policy(plan, k),
            k.get_str("aws_account_id"),
            &needs.cross_account_role_arn,
        ) {
            owner_decides_cluster_volumes(&mut outcomes, role);
        }
        push(&mut a, k, outcomes);
    }
    a
}
