//! From the plan's resources to facts, and the rules applied to them.

use std::cell::OnceCell;
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

use super::plan::{Plan, Res};

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
/// resources and walks along references ([`Plan::resolve`],
/// [`Plan::resolve_whole`]).
#[cfg(test)]
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

/// The plan's resources: one scan of all of them (one per analysis, in
/// [`Index::new`]).
fn scan(plan: &Plan) -> std::slice::Iter<'_, Res> {
    #[cfg(test)]
    visits::scanned();
    plan.resources.iter()
}

/// [`Plan::resolve`]: one walk along the
/// references of an expression.
fn walk<'a>(
    plan: &'a Plan,
    from: &Res,
    path: &str,
) -> impl Iterator<Item = (&'a Res, String)> + 'a {
    #[cfg(test)]
    visits::walked();
    plan.resolve_iter(from, path)
}

/// [`Plan::resolve_whole`]: one walk
/// along the references of an expression.
fn walk_whole<'a>(plan: &'a Plan, from: &Res, path: &str) -> impl Iterator<Item = &'a Res> + 'a {
    #[cfg(test)]
    visits::walked();
    plan.resolve_whole_iter(from, path)
}

/// A key the plan creates whose configuration sets no `policy` (the plan
/// records the resource's expressions, and none for `policy`).
fn default_policy_planned(plan: &Plan, k: &Res) -> bool {
    k.creates()
        && k.before.is_null()
        && plan.references.contains_key(&k.config_address)
        && !plan.configured(k, "policy")
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

/// A KMS key's facts, with the `cmk_kms_key_policy` its policy comes from
/// (when it does) and the grants on it, both found by [`Keys`].
fn kms_facts(
    plan: &Plan,
    k: &Res,
    source: Option<&Res>,
    grants: Vec<crate::rules::facts::GrantFacts>,
) -> KmsKeyFacts {
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
            // A key created without a `policy` argument gets KMS's default
            // key policy; the AWS provider plans the attribute as unknown
            // (computed), but the plan's configuration shows none is set.
            Fact::Unknown if k.rtype == "aws_kms_key" && default_policy_planned(plan, k) => {
                Fact::Known(None)
            }
            _ => match source {
                Some(d) => d.get_str("json").map(|p| p.filter(|s| !s.is_empty())),
                None => Fact::Unknown,
            },
        }
    };
    KmsKeyFacts {
        arn: arn.map(|a| a.unwrap_or_default()),
        state,
        spec,
        usage,
        region,
        policy,
        grants,
    }
}

/// The KMS key an `aws_kms_grant`'s `key_id` refers to (its `key_id`,
/// `arn` or `id`, or the key whole), by address.
fn grant_target<'a>(plan: &'a Plan, g: &Res) -> Option<&'a str> {
    walk(plan, g, "key_id")
        .into_iter()
        .find(|(r, attr)| {
            KMS_KEY_TYPES.contains(&r.rtype.as_str())
                && matches!(attr.as_str(), "key_id" | "arn" | "id")
        })
        .map(|(r, _)| r.address.as_str())
        .or_else(|| {
            walk_whole(plan, g, "key_id")
                .into_iter()
                .find(|r| KMS_KEY_TYPES.contains(&r.rtype.as_str()))
                .map(|r| r.address.as_str())
        })
}

/// A grant as the rules read it; `key_not_known`: its `key_id` is not
/// known, so it may be on any key.
fn grant_facts(g: &Res, key_not_known: bool) -> crate::rules::facts::GrantFacts {
    crate::rules::facts::GrantFacts {
        name: g.address.clone(),
        grantee: g
            .get_str("grantee_principal")
            .and_then(|o| o.map(Fact::Known).unwrap_or(Fact::Unknown)),
        operations: g.get_strings("operations").map(Option::unwrap_or_default),
        key_not_known,
    }
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
fn policy_source<'a>(plan: &'a Plan, k: &Res) -> Option<&'a Res> {
    walk(plan, k, "policy")
        .into_iter()
        .find(|(r, attr)| r.rtype == POLICY_DATA_SOURCE && attr == "json")
        .map(|(r, _)| r)
}

/// A key configuration's facts; `arn_source`: its `key_arn` is a KMS key
/// resource's ARN ([`key_arn_source`]); `key`: the facts of the key it uses.
fn config_facts(
    plan: &Plan,
    c: &Res,
    arn_source: bool,
    key: Option<&KmsKeyFacts>,
) -> KeyConfigFacts {
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
        && arn_source
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
fn linked_key<'a>(
    plan: &'a Plan,
    c: &Res,
    arn: &ArnRefs<'a>,
    by_arn: &HashMap<String, &'a Res>,
) -> Option<&'a Res> {
    let arn_refs = &arn.refs;
    // References alone name the key only when nothing the caller gives
    // can take its place (`coalesce(var.arn, aws_kms_key.k.arn)`).
    let open = arn.reads_variable;
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
        arn.whole(plan, c)
            .iter()
            .find(|r| KMS_KEY_TYPES.contains(&r.rtype.as_str()))
            .copied()
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
fn key_arn_source<'a>(plan: &'a Plan, c: &Res, arn: &ArnRefs<'a>) -> Option<String> {
    key_arn_source_by_refs(plan, c, arn).or_else(|| key_arn_origin(plan, c))
}

/// A key configuration's `aws_key_info.key_arn`, followed once: the
/// resources (with attributes) its references name, and those it names
/// whole (followed when first asked).
struct ArnRefs<'a> {
    refs: Vec<(&'a Res, String)>,
    whole: OnceCell<Vec<&'a Res>>,
    /// The expression reads a root variable ([`Plan::reads_root_variable`]).
    reads_variable: bool,
}

impl<'a> ArnRefs<'a> {
    fn of(plan: &'a Plan, c: &Res) -> Self {
        ArnRefs {
            refs: walk(plan, c, "aws_key_info.key_arn").collect(),
            whole: OnceCell::new(),
            reads_variable: plan.reads_root_variable(c, "aws_key_info.key_arn"),
        }
    }

    fn whole(&self, plan: &'a Plan, c: &Res) -> &[&'a Res] {
        self.whole
            .get_or_init(|| walk_whole(plan, c, "aws_key_info.key_arn").collect())
    }
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

fn key_arn_source_by_refs<'a>(plan: &'a Plan, c: &Res, arn: &ArnRefs<'a>) -> Option<String> {
    if arn.reads_variable {
        return None;
    }
    let (r, attr) = arn.refs.iter().find(|(r, attr)| {
        (KMS_KEY_TYPES.contains(&r.rtype.as_str()) && attr == "arn")
            || (r.rtype == "aws_kms_alias" && attr == "target_key_arn")
    })?;
    let whole = arn.whole(plan, c);
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
fn workspace_name_of(plan: &Plan, w: &Res) -> Option<super::live::WorkspaceName> {
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
    Some(super::live::WorkspaceName {
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
    live: Option<&super::live::LiveFacts>,
    notes: &mut Vec<String>,
) {
    use super::live::NameMatch;
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

/// The KMS keys of the plan (resources and data sources, in the plan's
/// order), each with what is worked out about it once: its facts, the
/// policy data source its policy comes from, the grants on it.
struct Keys<'a> {
    plan: &'a Plan,
    all: Vec<&'a Res>,
    at: HashMap<&'a str, usize>,
    /// By known ARN (the first key of each).
    by_arn: HashMap<String, &'a Res>,
    /// The grants on each key (in the plan's order), taken out when its
    /// facts are made.
    grants: Vec<Vec<crate::rules::facts::GrantFacts>>,
    sources: Vec<OnceCell<Option<&'a Res>>>,
    facts: Vec<OnceCell<KmsKeyFacts>>,
}

impl<'a> Keys<'a> {
    /// `grants`: the plan's managed `aws_kms_grant`s that are not deleted,
    /// each followed once to its key: by reference, or by the id or ARN its
    /// `key_id` names; one whose `key_id` is not known may be on any key.
    fn new(plan: &'a Plan, all: Vec<&'a Res>, grants: &[&'a Res]) -> Self {
        let at: HashMap<&str, usize> = all
            .iter()
            .enumerate()
            .map(|(i, k)| (k.address.as_str(), i))
            .collect();
        let mut by_arn = HashMap::new();
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, k) in all.iter().enumerate() {
            let arn = str_known(k.get_str("arn"));
            if let Some(arn) = &arn {
                by_arn.entry(arn.clone()).or_insert(*k);
            }
            for id in [arn, str_known(k.get_str("key_id"))].into_iter().flatten() {
                let keys = by_id.entry(id).or_default();
                if keys.last() != Some(&i) {
                    keys.push(i);
                }
            }
        }
        let mut on = vec![Vec::new(); all.len()];
        for g in grants {
            match (grant_target(plan, g), g.get_str("key_id")) {
                (Some(addr), _) => {
                    if let Some(i) = at.get(addr) {
                        on[*i].push(grant_facts(g, false));
                    }
                }
                (None, Fact::Known(Some(id))) => {
                    for i in by_id.get(&id).into_iter().flatten() {
                        on[*i].push(grant_facts(g, false));
                    }
                }
                (None, Fact::Known(None)) => {}
                (None, Fact::Unknown) => {
                    let f = grant_facts(g, true);
                    for grants in &mut on {
                        grants.push(f.clone());
                    }
                }
            }
        }
        Keys {
            plan,
            sources: (0..all.len()).map(|_| OnceCell::new()).collect(),
            facts: (0..all.len()).map(|_| OnceCell::new()).collect(),
            all,
            at,
            by_arn,
            grants: on,
        }
    }

    fn source_at(&self, i: usize) -> Option<&'a Res> {
        *self.sources[i].get_or_init(|| policy_source(self.plan, self.all[i]))
    }

    fn facts_at(&self, i: usize) -> &KmsKeyFacts {
        self.facts[i].get_or_init(|| {
            kms_facts(
                self.plan,
                self.all[i],
                self.source_at(i),
                self.grants[i].clone(),
            )
        })
    }

    /// The facts of a KMS key of the plan.
    fn facts(&self, k: &Res) -> Option<&KmsKeyFacts> {
        self.at.get(k.address.as_str()).map(|i| self.facts_at(*i))
    }
}

/// A key configuration of the plan (managed, not deleted), with the KMS
/// key it uses and its facts.
struct ConfigEntry<'a> {
    res: &'a Res,
    linked: Option<&'a Res>,
    /// [`key_arn_source`].
    arn_source: Option<String>,
    facts: KeyConfigFacts,
}

/// A workspace resource of the plan (managed, not deleted): an official
/// workspace or a binding, with what its references say.
struct WorkspaceEntry<'a> {
    res: &'a Res,
    /// The `databricks_mws_workspaces` of the plan it is: itself, or the
    /// one a binding's `workspace_id` refers to.
    declared: Option<&'a Res>,
    /// The declared workspace's cross-account role ([`cross_account_role`]).
    role: Fact<Option<String>>,
    /// Its managed services and storage slots.
    slots: [Slot<'a>; 2],
}

/// The plan read once for an analysis (and its live probe): one scan of
/// its resources sorts out the KMS keys, key configurations, workspaces,
/// credentials and grants; each reference is followed once, and each fact
/// builder then reads from here, never from the whole plan again.
struct Index<'a> {
    plan: &'a Plan,
    keys: Keys<'a>,
    configs: Vec<ConfigEntry<'a>>,
    workspaces: Vec<WorkspaceEntry<'a>>,
}

impl<'a> Index<'a> {
    fn new(plan: &'a Plan) -> Self {
        let (mut keys, mut configs, mut workspaces, mut creds, mut grants) =
            (vec![], vec![], vec![], vec![], vec![]);
        let live = |r: &Res| r.mode == "managed" && !r.deletes_only();
        for r in scan(plan) {
            let t = r.rtype.as_str();
            if KMS_KEY_TYPES.contains(&t) {
                keys.push(r);
            } else if KEY_CONFIG_TYPES.contains(&t) {
                configs.push(r);
            } else if WORKSPACE_TYPES.contains(&t) {
                if live(r) {
                    workspaces.push(r);
                }
            } else if t == "databricks_mws_credentials" {
                creds.push(r);
            } else if t == "aws_kms_grant" && live(r) {
                grants.push(r);
            }
        }
        let keys = Keys::new(plan, keys, &grants);
        let configs_by_id = first_by(&configs, "customer_managed_key_id");
        let creds_by_id = first_by(&creds, "credentials_id");
        let configs = configs
            .into_iter()
            .filter(|c| live(c))
            .map(|c| {
                let arn = ArnRefs::of(plan, c);
                let linked = linked_key(plan, c, &arn, &keys.by_arn);
                let arn_source = key_arn_source(plan, c, &arn);
                let key = linked.and_then(|k| keys.facts(k));
                ConfigEntry {
                    res: c,
                    linked,
                    facts: config_facts(plan, c, arn_source.is_some(), key),
                    arn_source,
                }
            })
            .collect();
        let workspaces = workspaces
            .into_iter()
            .map(|w| {
                let declared = if w.rtype == "databricks_mws_workspaces" {
                    Some(w)
                } else {
                    walk(plan, w, "workspace_id")
                        .into_iter()
                        .find(|(r, _)| r.rtype == "databricks_mws_workspaces")
                        .map(|(r, _)| r)
                };
                let role = declared
                    .map(|d| cross_account_role(plan, d, &creds_by_id))
                    .unwrap_or(Fact::Unknown);
                let [ms, st] = key_slots(w);
                WorkspaceEntry {
                    res: w,
                    declared,
                    role,
                    slots: [
                        slot(plan, w, ms, &configs_by_id),
                        slot(plan, w, st, &configs_by_id),
                    ],
                }
            })
            .collect();
        Index {
            plan,
            keys,
            configs,
            workspaces,
        }
    }

    /// What `review --live` would read for this plan: the existing
    /// workspaces it touches, and the key configuration ids it names
    /// without creating them.
    fn live_targets(&self) -> super::live::Targets {
        let mut t = super::live::Targets::default();
        for e in &self.workspaces {
            let w = e.res;
            if let Some(id) = existing_workspace_id(w) {
                t.workspace_ids.insert(id);
            }
            if self.plan.without_state {
                if let Some(n) = workspace_name_of(self.plan, w) {
                    t.workspace_names.insert(n);
                }
            }
            for s in &e.slots {
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
}

/// The resources by the known value of an attribute (the first of each).
fn first_by<'a>(rs: &[&'a Res], attr: &str) -> HashMap<String, &'a Res> {
    let mut m = HashMap::new();
    for r in rs {
        if let Some(id) = str_known(r.get_str(attr)) {
            m.entry(id).or_insert(*r);
        }
    }
    m
}

/// What `review --live` would read for this plan: the existing workspaces
/// it touches, and the key configuration ids it names without creating them.
pub fn live_targets(plan: &Plan) -> super::live::Targets {
    Index::new(plan).live_targets()
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
    let index = Index::new(plan);
    let mut needs = HashMap::new();
    let mut a = analyze_with(&index, required, None, Pass::Record(&mut needs));
    let targets = index.live_targets();
    let open = |l: &Located| {
        matches!(
            l.outcome.verdict,
            crate::rules::Verdict::CannotTell | crate::rules::Verdict::NeedsState
        )
    };
    // Probe: the same analysis with placeholder live facts for every
    // target, for the objects with an outcome still open (the others have
    // nothing --live could decide), but the keys whose needs the live
    // facts leave as they were. What it decides, --live decides (whatever
    // the values).
    let undecided: std::collections::HashSet<&str> = a
        .outcomes
        .iter()
        .filter(|l| open(l))
        .map(|l| l.address.as_str())
        .collect();
    if targets.is_empty() || undecided.is_empty() {
        return a;
    }
    let probe = analyze_with(
        &index,
        required,
        Some(&placeholder_live(&targets)),
        Pass::Probe {
            undecided: &undecided,
            needs: &needs,
        },
    );
    let decided: std::collections::HashSet<(&str, crate::rules::RuleId, Subject)> = probe
        .outcomes
        .iter()
        .filter(|l| !open(l))
        .map(|l| (l.address.as_str(), l.outcome.rule, l.outcome.subject))
        .collect();
    drop(undecided);
    for l in &mut a.outcomes {
        if open(l) && decided.contains(&(l.address.as_str(), l.outcome.rule, l.outcome.subject)) {
            l.live_decides = true;
        }
    }
    a
}

/// Applies the rules with facts read live.
pub fn analyze_live(
    plan: &Plan,
    required: &Requirements,
    live: &super::live::LiveFacts,
) -> Analysis {
    analyze_with(&Index::new(plan), required, Some(live), Pass::All)
}

/// Facts of the shape a live reading gives, with placeholder values.
fn placeholder_live(t: &super::live::Targets) -> super::live::LiveFacts {
    let mut live = super::live::LiveFacts::default();
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
            .insert(n.clone(), super::live::NameMatch::Found(id));
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

/// Which objects an analysis looks at, and what it keeps for the next.
enum Pass<'p, 's> {
    /// Every object.
    All,
    /// Every object, keeping each KMS key's needs (by its place among the
    /// keys) for a probe.
    Record(&'p mut HashMap<usize, PolicyNeeds>),
    /// The objects `undecided` names (the facts other objects lend them,
    /// a workspace's region to its keys, still come from every object),
    /// but the keys whose needs are those recorded: the same facts, the
    /// same outcomes.
    Probe {
        undecided: &'p std::collections::HashSet<&'s str>,
        needs: &'p HashMap<usize, PolicyNeeds>,
    },
}

fn analyze_with(
    index: &Index,
    required: &Requirements,
    live: Option<&super::live::LiveFacts>,
    mut pass: Pass,
) -> Analysis {
    let plan = index.plan;
    let only = match &pass {
        Pass::Probe { undecided, .. } => Some(*undecided),
        _ => None,
    };
    let wanted = |r: &Res| only.is_none_or(|o| o.contains(r.address.as_str()));
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
    // Key configurations, each with the KMS key it uses (looked up once,
    // in the index).
    let configs = &index.configs;
    for e in configs.iter().filter(|e| wanted(e.res)) {
        let (c, linked) = (e.res, &e.linked);
        // The configuration on its own: key_region as written (an unset
        // one is not the region derived from the linked key).
        let mut written = config_facts(plan, c, e.arn_source.is_some(), None);
        if written.key_arn.is_unknown() && e.arn_source.is_some() {
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
            if let Some(source) = &e.arn_source {
                for o in outs
                    .iter_mut()
                    .filter(|o| o.rule == RuleId::KeyArnWellFormed)
                {
                    *o = key_arn_from_key_resource(source);
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
        .map(|(i, e)| (e.res.address.as_str(), i))
        .collect();
    let facts_of = |r: &Res| {
        config_index
            .get(r.address.as_str())
            .map(|i| configs[*i].facts.clone())
    };
    // The key configurations using each KMS key.
    let mut users_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in configs.iter().enumerate() {
        if let Some(k) = e.linked {
            users_of.entry(k.address.as_str()).or_default().push(i);
        }
    }
    // Workspaces and bindings; the regions and cross-account roles of the
    // workspaces each key configuration serves.
    let mut regions: HashMap<String, Vec<Fact<String>>> = HashMap::new();
    let mut roles: HashMap<String, Vec<Fact<Option<String>>>> = HashMap::new();
    for e in &index.workspaces {
        let (w, role) = (e.res, e.role.clone());
        let [ms, st] = [&e.slots[0], &e.slots[1]];
        // A binding's own planned facts (region, name, status and keys so
        // far) when the plan does not hold the workspace resource.
        let mut ws = workspace_facts(plan, e.declared.unwrap_or(w));
        if w.rtype != "databricks_mws_workspaces" {
            if let Fact::Known(Some(id)) = w
                .get("workspace_id")
                .map(|o| o.map(|v| v.to_string().trim_matches('"').to_string()))
            {
                ws.id = Fact::Known(Some(id));
            }
            if w.creates() && w.before.is_null() {
                // A new binding: the workspace's keys so far are those its own
                // resource plans (when it is in the plan), else unknown.
                if e.declared.is_none() {
                    ws.managed_services_key_id = Fact::Unknown;
                    ws.storage_key_id = Fact::Unknown;
                }
            } else {
                ws.managed_services_key_id = Fact::Known(w.before_str("managed_services_key_id"));
                ws.storage_key_id = Fact::Known(w.before_str("storage_key_id"));
            }
        }
        if let Some(l) = existing_workspace_id(w).and_then(|id| live?.workspaces.get(&id)) {
            overlay_live(&mut ws, l);
        }
        if plan.without_state {
            source_state(plan, &mut ws, w, e.declared, live, &mut a.live_notes);
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
        if !wanted(w) {
            continue;
        }
        // A configuration the plan names but does not hold: as read live.
        let live_cfg = |slot: &Slot| match (&slot.req.id, live) {
            (Fact::Known(Some(id)), Some(l)) => l.key_configs.get(id).cloned(),
            _ => None,
        };
        let ms_cfg = ms.config.and_then(facts_of).or_else(|| live_cfg(ms));
        let st_cfg = st.config.and_then(facts_of).or_else(|| live_cfg(st));
        let change = BindingChange {
            managed_services: ms.req.clone(),
            storage: st.req.clone(),
        };
        let mut outs = check_binding(&ws, &change, ms_cfg.as_ref(), st_cfg.as_ref(), required);
        if keys_unchanged(w) {
            settle_unchanged(&w.address, &mut outs);
        }
        push(&mut a, w, outs);
        // (A probe reads outcomes only.)
        if only.is_none() {
            a.coverage.push(super::analyze::WorkspaceCoverage {
                address: w.address.clone(),
                coverage: coverage(&ws, &PlannedKeys::from_binding(&change, st_cfg.as_ref())),
            });
        }
    }
    // KMS keys used by the key configurations (or declaring use cases).
    let keys = &index.keys;
    for (ki, k) in keys
        .all
        .iter()
        .enumerate()
        .filter(|(_, k)| k.mode == "managed" && wanted(k))
    {
        let user_ids: &[usize] = users_of
            .get(k.address.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let users: Vec<&KeyConfigFacts> = user_ids.iter().map(|i| &configs[*i].facts).collect();
        let own_use_cases = if k.rtype == "cmk_kms_key" {
            k.get_strings("use_cases")
        } else {
            Fact::Known(None)
        };
        if users.is_empty() && !matches!(own_use_cases, Fact::Known(Some(_))) {
            continue;
        }
        let kf = keys.facts_at(ki);
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
        let source = keys.source_at(ki).map(Fact::Known).unwrap_or(Fact::Unknown);
        // The account of the key configurations using the key, else the
        // one a `cmk_kms_key`'s own policy is generated for (an AWS key has
        // no such argument), else the policy data source's, else the one
        // the `cmk` and `databricks` provider blocks agree on (the account
        // every key configuration of theirs is made in).
        let databricks_account_id = user_ids
            .iter()
            .find_map(|i| str_known(configs[*i].res.get_str("account_id")))
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
            .filter_map(|i| roles.get(&configs[*i].res.address))
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
                .filter_map(|i| regions.get(&configs[*i].res.address))
                .flatten()
                .find_map(|f| f.known().cloned())
                .map(Fact::Known)
                .unwrap_or_else(|| kf.region.clone()),
            databricks_principal: source
                .known()
                .and_then(|d| str_known(d.get_str("databricks_principal"))),
            deployment: plan.deployment(),
        };
        match &mut pass {
            Pass::Record(m) => {
                m.insert(ki, needs.clone());
            }
            Pass::Probe { needs: first, .. } if first.get(&ki) == Some(&needs) => continue,
            _ => {}
        }
        let mut outcomes = check_kms_key(kf, &needs);
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

#[cfg(test)]
mod equivalence_tests {
    //! What the analysis says of every review fixture (plans, `*.json`,
    //! and configurations reviewed from source, directories with the
    //! variables their `expected.json` gives), recorded in
    //! `src/review/analysis_snapshot.txt`: outcome by outcome, coverage,
    //! live targets, with placeholder live facts too, and what each
    //! analysis asks of the plan. A change of behaviour shows there as a
    //! difference to read and record (`CMK_REWRITE_ANALYSIS_SNAPSHOT=1`).
    //! (Until the one-pass analysis settled, it was compared with the
    //! analysis before it, kept as a second implementation for tests.)

    use super::*;
    use crate::rules::catalog::DataType;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn fixtures_root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("acceptance-tests/fixtures/review")
    }

    /// Every review fixture as a plan, with its name: the plan files, and
    /// the configuration directories read as `review DIR` reads them.
    fn fixture_plans() -> Vec<(String, Plan)> {
        let mut out = vec![];
        let mut dirs = vec![fixtures_root()];
        while let Some(d) = dirs.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            let holds_tf = entries
                .iter()
                .any(|p| p.extension().is_some_and(|x| x == "tf"));
            if holds_tf {
                let mut args = vec![d.to_str().unwrap().to_string()];
                if let Ok(t) = std::fs::read_to_string(d.join("expected.json")) {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if v["terraform_refuses"] == true {
                        // Refused by Terraform and by review (eval_tests.rs
                        // checks it): nothing to analyze.
                        continue;
                    }
                    for (k, v) in v["vars"].as_object().into_iter().flatten() {
                        args.push("-var".into());
                        args.push(format!("{k}={}", v.as_str().unwrap()));
                    }
                }
                let opts = crate::review::parse_args(&args).unwrap();
                let (plan, _) = crate::review::load_hcl(&opts)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
                out.push((d.display().to_string(), plan));
                continue;
            }
            for p in entries {
                if p.is_dir() && !p.ends_with("modules") {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "json")
                    && p.file_name().is_some_and(|n| n != "expected.json")
                {
                    let plan = Plan::parse(&std::fs::read_to_string(&p).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    out.push((p.display().to_string(), plan));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Everything an analysis says, comparable.
    fn said(a: &Analysis) -> String {
        let outcomes: Vec<_> = a
            .outcomes
            .iter()
            .map(|l| {
                (
                    &l.address,
                    &l.resource_type,
                    &l.attribute,
                    &l.outcome,
                    l.live_decides,
                )
            })
            .collect();
        let coverage: Vec<_> = a
            .coverage
            .iter()
            .map(|c| (&c.address, &c.coverage))
            .collect();
        format!(
            "{outcomes:#?}\n{coverage:#?}\n{:?}\n{:?}\n{:?}",
            a.live, a.unevaluated, a.live_notes
        )
    }

    fn requirements() -> [Requirements; 2] {
        [
            Requirements::default(),
            Requirements {
                data_types: DataType::all().collect(),
                not_known: 1,
            },
        ]
    }

    /// One outcome on one line: where, rule, subject, verdict, severity,
    /// whether --live decides it, and (`full`) the resource type and message.
    fn outcome_line(l: &Located, full: bool) -> String {
        let o = &l.outcome;
        let (rtype, message) = if full {
            (format!(" {}", l.resource_type), format!(" {}", o.message))
        } else {
            (String::new(), String::new())
        };
        format!(
            "  {}{rtype} {} {:?} {:?} {:?} {:?}{}{message}\n",
            l.address,
            l.attribute,
            o.rule,
            o.subject,
            o.verdict,
            o.severity,
            if l.live_decides { " live-decides" } else { "" },
        )
    }

    /// What the analysis of a plan says, offline and with (placeholder)
    /// live facts, under both sets of requirements, and what it asks of
    /// the plan (scans, walks): one line per outcome.
    fn said_in_full(plan: &Plan) -> String {
        fn lines(a: &Analysis) -> String {
            let mut out = String::new();
            for l in &a.outcomes {
                out.push_str(&outcome_line(l, true));
            }
            for c in &a.coverage {
                out.push_str(&format!("  coverage {} {:?}\n", c.address, c.coverage));
            }
            out.push_str(&format!(
                "  live {:?} unevaluated {:?} notes {:?}\n",
                a.live, a.unevaluated, a.live_notes
            ));
            out
        }
        let targets = live_targets(plan);
        let live = placeholder_live(&targets);
        let mut out = format!("live targets {targets:?}\n");
        for (i, required) in requirements().iter().enumerate() {
            out.push_str(&format!("requirements {i}, offline\n"));
            out.push_str(&lines(&analyze(plan, required)));
            out.push_str(&format!("requirements {i}, live placeholders\n"));
            out.push_str(&lines(&analyze_live(plan, required, &live)));
        }
        let (scans, walks) = visits_now(plan);
        out.push_str(&format!("visits: {scans} scans, {walks} walks\n"));
        out
    }

    /// The record of a plan: each offline outcome (default requirements)
    /// without its message, then a digest of everything
    /// [`said_in_full`] says (messages, coverage, the other requirements,
    /// live placeholders, visits), so that the record stays small.
    fn recorded(plan: &Plan) -> (String, String) {
        let mut out = String::new();
        for l in &analyze(plan, &Requirements::default()).outcomes {
            out.push_str(&outcome_line(l, false));
        }
        let full = said_in_full(plan);
        // FNV-1a, 64 bits: the same on every machine and toolchain.
        let digest = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        out.push_str(&format!(
            "  all it says: {} lines, digest {digest:016x}\n",
            full.lines().count()
        ));
        (out, full)
    }

    const SNAPSHOT: &str = "src/review/analysis_snapshot.txt";

    #[test]
    fn every_review_fixture_is_analyzed_as_recorded() {
        let root = fixtures_root().display().to_string();
        let plans = fixture_plans();
        assert!(plans.len() > 30, "{} fixtures", plans.len());
        let mut now = String::new();
        let mut outcomes = 0;
        // Everything said, per fixture, where a difference can be read.
        let full_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/analysis-said");
        std::fs::create_dir_all(&full_dir).unwrap();
        for (name, plan) in &plans {
            let name = name.trim_start_matches(&root);
            let (record, full) = recorded(plan);
            now.push_str(&format!("== {name}\n{record}"));
            std::fs::write(
                full_dir.join(name.trim_start_matches('/').replace('/', "__")),
                full,
            )
            .unwrap();
            outcomes += analyze(plan, &Requirements::default()).outcomes.len();
        }
        // The fixtures do say something (the record is not of empty lists).
        assert!(outcomes > 300, "{outcomes} outcomes");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
        if std::env::var_os("CMK_REWRITE_ANALYSIS_SNAPSHOT").is_some() {
            std::fs::write(&path, &now).unwrap();
            return;
        }
        let before = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{SNAPSHOT}: {e} (CMK_REWRITE_ANALYSIS_SNAPSHOT=1 writes it)")
        });
        if let Some((i, (b, n))) = before
            .lines()
            .zip(now.lines())
            .enumerate()
            .find(|(_, (b, n))| b != n)
        {
            let fixture = now
                .lines()
                .take(i + 1)
                .filter(|l| l.starts_with("== "))
                .last()
                .unwrap_or("");
            panic!(
                "the analysis says something else than {SNAPSHOT} records, at line {} ({fixture}):\n  recorded: {b}\n  now:      {n}\n\
                 Everything it says now is in target/analysis-said/ (the same files from the commit before show what it said); \
                 if the change is intended, rewrite the record with CMK_REWRITE_ANALYSIS_SNAPSHOT=1.",
                i + 1
            );
        }
        assert_eq!(
            before.lines().count(),
            now.lines().count(),
            "{SNAPSHOT} has another number of lines than the analysis says (CMK_REWRITE_ANALYSIS_SNAPSHOT=1 rewrites it)"
        );
    }

    #[test]
    fn the_linear_walks_find_what_resolve_finds() {
        // Plan::resolve and resolve_whole keep each item once by a set;
        // against keeping it once by a search of those kept so far (as
        // they did before, quadratic): every configured path of every
        // resource of every fixture, and of a plan of count instances.
        let mut plans = fixture_plans();
        plans.push(("40 copies".into(), copies(40)));
        plans.push(("30 count instances".into(), count_instances(30)));
        let mut compared = 0;
        for (name, plan) in &plans {
            for r in &plan.resources {
                let paths: Vec<String> = plan
                    .references
                    .get(&r.config_address)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for path in paths {
                    let key = |v: &[(&Res, String)]| -> Vec<(String, String)> {
                        v.iter()
                            .map(|(x, a)| (x.address.clone(), a.clone()))
                            .collect()
                    };
                    let mut before: Vec<(String, String)> = vec![];
                    for k in key(&plan.resolve_all(r, &path)) {
                        if !before.contains(&k) {
                            before.push(k);
                        }
                    }
                    let now = key(&plan.resolve(r, &path));
                    assert_eq!(now, before, "{name}: {} {path}", r.address);
                    let mut whole_before: Vec<String> = vec![];
                    for x in plan.resolve_whole_all(r, &path) {
                        if !whole_before.contains(&x.address) {
                            whole_before.push(x.address.clone());
                        }
                    }
                    let whole: Vec<String> = plan
                        .resolve_whole(r, &path)
                        .iter()
                        .map(|x| x.address.clone())
                        .collect();
                    assert_eq!(whole, whole_before, "{name}: {} {path}", r.address);
                    compared += usize::from(!before.is_empty());
                }
            }
        }
        assert!(compared > 100, "{compared} paths resolved to something");
    }

    /// (scans, walks) of one `review` of a plan: the analysis with its live
    /// probe, as `review` runs it.
    fn visits_now(plan: &Plan) -> (usize, usize) {
        visits::take();
        analyze(plan, &Requirements::default());
        visits::take()
    }

    #[test]
    fn one_scan_of_the_plan_per_analysis_on_every_fixture() {
        let root = fixtures_root().display().to_string();
        let mut rows = vec![format!(
            "{:<60} {:>9} {:>7} {:>7}",
            "fixture", "resources", "scans", "walks"
        )];
        let mut walks_now = 0;
        for (name, plan) in fixture_plans() {
            let (sn, wn) = visits_now(&plan);
            assert_eq!(sn, 1, "{name}: {sn} scans of the plan's resources");
            walks_now += wn;
            rows.push(format!(
                "{:<60} {:>9} {:>7} {:>7}",
                name.trim_start_matches(&root),
                plan.resources.len(),
                sn,
                wn
            ));
        }
        rows.push(format!("walks in all: {walks_now}"));
        println!("{}", rows.join("\n"));
    }

    /// A plan of `n` copies of a key with its policy data source, a grant
    /// on it, a key configuration, credentials and a workspace.
    fn copies(n: usize) -> Plan {
        let mut g = Gen::default();
        for i in 0..n {
            g.policy_source(i);
            g.key(i, "aws_kms_key", Arn::Unknown, Policy::Source(i), None);
            g.grant(i, GrantKey::Ref(i));
            g.config(
                i,
                "databricks_mws_customer_managed_keys",
                KeyArn::Ref(i),
                true,
            );
            g.creds(i);
            g.workspace(
                i,
                "databricks_mws_workspaces",
                [Slot_::Ref(i), Slot_::Ref(i)],
                true,
            );
        }
        Plan::from_value(g.plan()).unwrap()
    }

    /// The shape of `bench/review_bench.sh`'s instances: `n` each of
    /// `aws_kms_key.k[i]`, a grant `g[i]` on it, a key configuration `c[i]`
    /// using it and a workspace `w[i]` on `c[i]`, references recorded as
    /// Terraform records `x[count.index]`.
    fn count_instances(n: usize) -> Plan {
        let mut changes = vec![];
        let add =
            |changes: &mut Vec<Value>, rtype: &str, name: &str, after: Value, unknown: Value| {
                for i in 0..n {
                    changes.push(json!({
                    "address": format!("{rtype}.{name}[{i}]"), "mode": "managed",
                    "type": rtype, "name": name, "index": i,
                    "change": {"actions": ["create"], "before": null,
                               "after": after, "after_unknown": unknown}}));
                }
            };
        add(
            &mut changes,
            "aws_kms_key",
            "k",
            json!({"is_enabled": true, "region": "us-east-1", "policy": "{}"}),
            json!({"arn": true, "key_id": true}),
        );
        add(
            &mut changes,
            "aws_kms_grant",
            "g",
            json!({"grantee_principal": DATABRICKS, "operations": ["Encrypt", "Decrypt"]}),
            json!({"key_id": true}),
        );
        add(
            &mut changes,
            "databricks_mws_customer_managed_keys",
            "c",
            json!({"account_id": ACCOUNT, "use_cases": ["MANAGED_SERVICES", "STORAGE"],
                   "aws_key_info": [{}]}),
            json!({"customer_managed_key_id": true, "id": true,
                   "aws_key_info": [{"key_arn": true, "key_region": true}]}),
        );
        add(
            &mut changes,
            "databricks_mws_workspaces",
            "w",
            json!({"account_id": ACCOUNT, "aws_region": "us-east-1",
                   "pricing_tier": "ENTERPRISE", "workspace_name": "ws"}),
            json!({"managed_services_customer_managed_key_id": true,
                   "storage_customer_managed_key_id": true}),
        );
        let r = |a: &str| json!({"references": [a, "count.index"]});
        let c = "databricks_mws_customer_managed_keys.c";
        let config = json!([
            {"address": "aws_kms_key.k", "mode": "managed", "type": "aws_kms_key", "name": "k",
             "expressions": {}},
            {"address": "aws_kms_grant.g", "mode": "managed", "type": "aws_kms_grant",
             "name": "g", "expressions": {"key_id": r("aws_kms_key.k")}},
            {"address": c, "mode": "managed", "type": "databricks_mws_customer_managed_keys",
             "name": "c", "expressions": {"aws_key_info": [{"key_arn": r("aws_kms_key.k")}]}},
            {"address": "databricks_mws_workspaces.w", "mode": "managed",
             "type": "databricks_mws_workspaces", "name": "w",
             "expressions": {"managed_services_customer_managed_key_id": r(c),
                             "storage_customer_managed_key_id": r(c)}}]);
        Plan::from_value(json!({"format_version": "1.2",
            "planned_values": {"root_module": {}}, "resource_changes": changes,
            "configuration": {"root_module": {"resources": config}}}))
        .unwrap()
    }

    #[test]
    fn count_instances_are_analyzed_each_with_its_own() {
        let plan = count_instances(30);
        // Each key has the grant of its own index, each configuration the
        // key of its own, each workspace the configuration of its own.
        let grants = keys_of(&plan);
        assert_eq!(grants.len(), 30);
        assert!(grants.iter().all(|(_, n)| *n == 1), "{grants:?}");
        let index = Index::new(&plan);
        for e in &index.configs {
            let i = instance_key(&e.res.address);
            assert_eq!(e.linked.map(|k| instance_key(&k.address)), Some(i));
        }
        for e in &index.workspaces {
            let i = instance_key(&e.res.address);
            for s in &e.slots {
                assert_eq!(s.config.map(|c| instance_key(&c.address)), Some(i));
            }
        }
        let (scans, walks) = visits_now(&plan);
        assert_eq!(scans, 1);
        println!("30 count instances: {walks} walks");
    }

    fn instance_key(address: &str) -> &str {
        &address[address.rfind('[').unwrap_or(address.len())..]
    }

    #[test]
    fn the_visits_of_the_plan_do_not_grow_with_each_item() {
        let (one, forty) = (copies(1), copies(40));
        let (s1, w1) = visits_now(&one);
        let (s40, w40) = visits_now(&forty);
        println!("1 copy: {s1} scans {w1} walks; 40 copies: {s40} scans {w40} walks");
        // One scan of the resources whatever their number; each reference
        // followed a fixed number of times per item.
        assert_eq!((s1, s40), (1, 1));
        assert_eq!(w40, 40 * w1, "walks grow with the items, one set each");
    }

    // --- generated plans ------------------------------------------------

    #[derive(Debug, Clone, Copy)]
    enum Arn {
        Known,
        Unknown,
    }

    #[derive(Debug, Clone, Copy)]
    enum Policy {
        /// A policy text naming Databricks' principal (or none).
        Text(bool),
        /// `data.cmk_kms_key_policy.p<i>.json`.
        Source(usize),
        Unknown,
    }

    #[derive(Debug, Clone, Copy)]
    enum KeyArn {
        /// `aws_kms_key.k<i>.arn` (or the `cmk_kms_key`'s).
        Ref(usize),
        /// The known ARN of key i, written as a value.
        Value(usize),
        /// `aws_kms_alias.a<i>.target_key_arn`.
        Alias(usize),
        Unknown,
    }

    #[derive(Debug, Clone, Copy)]
    enum GrantKey {
        Ref(usize),
        Value(usize),
        Unknown,
    }

    #[derive(Debug, Clone, Copy)]
    #[allow(non_camel_case_types)]
    enum Slot_ {
        /// `<config i>.customer_managed_key_id`.
        Ref(usize),
        /// `<config i>.id` (the composite id).
        Composite(usize),
        /// The id of config i, written as a value.
        Value(usize),
        Unknown,
        None,
    }

    const DATABRICKS: &str = "arn:aws:iam::414351767826:root";
    const ACCOUNT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";

    fn key_arn(i: usize) -> String {
        format!("arn:aws:kms:us-east-1:123456789012:key/{i:08}-0000-4000-8000-000000000000")
    }

    /// A plan built resource by resource, in the shape `terraform show
    /// -json` writes (changes, planned values, configuration references).
    #[derive(Default)]
    struct Gen {
        changes: Vec<Value>,
        planned: Vec<Value>,
        config: Vec<Value>,
        key_types: Vec<&'static str>,
        config_types: Vec<&'static str>,
    }

    impl Gen {
        #[allow(clippy::too_many_arguments)]
        fn add(
            &mut self,
            mode: &str,
            rtype: &str,
            name: &str,
            action: &str,
            after: Value,
            unknown: Value,
            exprs: Value,
        ) {
            let address = if mode == "data" {
                format!("data.{rtype}.{name}")
            } else {
                format!("{rtype}.{name}")
            };
            let (actions, before) = match action {
                "create" => (json!(["create"]), Value::Null),
                "delete" => (json!(["delete"]), after.clone()),
                "read" => (json!(["read"]), Value::Null),
                _ => (json!(["no-op"]), after.clone()),
            };
            self.changes.push(json!({
                "address": address, "mode": mode, "type": rtype, "name": name,
                "change": {"actions": actions, "before": before, "after": after,
                           "after_unknown": unknown}}));
            self.planned
                .push(json!({"address": address, "mode": mode, "type": rtype,
                                     "name": name, "values": after}));
            self.config
                .push(json!({"address": address, "mode": mode, "type": rtype,
                                    "name": name, "expressions": exprs}));
        }

        fn key_address(&self, i: usize) -> String {
            let t = self.key_types.get(i).copied().unwrap_or("aws_kms_key");
            format!("{t}.k{i}")
        }

        fn config_address(&self, i: usize) -> String {
            let t = self
                .config_types
                .get(i)
                .copied()
                .unwrap_or("databricks_mws_customer_managed_keys");
            format!("{t}.c{i}")
        }

        fn policy_source(&mut self, i: usize) {
            let policy = json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": DATABRICKS},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*"}]});
            self.add(
                "data",
                "cmk_kms_key_policy",
                &format!("p{i}"),
                "read",
                json!({"json": policy.to_string(), "databricks_account_id": ACCOUNT,
                       "use_cases": ["MANAGED_SERVICES"]}),
                json!({}),
                json!({}),
            );
        }

        fn key(
            &mut self,
            i: usize,
            rtype: &'static str,
            arn: Arn,
            policy: Policy,
            uses: Option<&str>,
        ) {
            self.key_types.push(rtype);
            let mut after = json!({"is_enabled": true, "region": "us-east-1"});
            let mut unknown = json!({});
            let mut exprs = json!({});
            match arn {
                Arn::Known => after["arn"] = json!(key_arn(i)),
                Arn::Unknown => {
                    unknown["arn"] = json!(true);
                    unknown["key_id"] = json!(true);
                }
            }
            match policy {
                Policy::Text(databricks) => {
                    let principal = if databricks {
                        DATABRICKS
                    } else {
                        "arn:aws:iam::123456789012:root"
                    };
                    after["policy"] = json!(json!({"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"AWS": principal},
                        "Action": "kms:*", "Resource": "*"}]})
                    .to_string());
                }
                Policy::Source(j) => {
                    unknown["policy"] = json!(true);
                    exprs["policy"] = json!({"references": [
                        format!("data.cmk_kms_key_policy.p{j}.json"),
                        format!("data.cmk_kms_key_policy.p{j}")]});
                }
                Policy::Unknown => unknown["policy"] = json!(true),
            }
            if let (Some(u), "cmk_kms_key") = (uses, rtype) {
                after["use_cases"] = json!(u.split(',').collect::<Vec<_>>());
                after["aws_account_id"] = json!("123456789012");
                after["databricks_account_id"] = json!(ACCOUNT);
                after["cross_account_role_arn"] = json!("arn:aws:iam::123456789012:role/x");
            }
            self.add(
                "managed",
                rtype,
                &format!("k{i}"),
                "create",
                after,
                unknown,
                exprs,
            );
        }

        fn alias(&mut self, i: usize, key: usize) {
            let k = self.key_address(key);
            self.add(
                "managed",
                "aws_kms_alias",
                &format!("a{i}"),
                "create",
                json!({"name": format!("alias/a{i}")}),
                json!({"target_key_arn": true}),
                json!({"target_key_id": {"references": [format!("{k}.key_id"), k]}}),
            );
        }

        fn grant(&mut self, i: usize, key: GrantKey) {
            let mut after = json!({"grantee_principal": DATABRICKS,
                                   "operations": ["Encrypt", "Decrypt"]});
            let mut unknown = json!({});
            let mut exprs = json!({});
            match key {
                GrantKey::Ref(k) => {
                    let k = self.key_address(k);
                    unknown["key_id"] = json!(true);
                    exprs["key_id"] = json!({"references": [format!("{k}.key_id"), k]});
                }
                GrantKey::Value(k) => after["key_id"] = json!(key_arn(k)),
                GrantKey::Unknown => unknown["key_id"] = json!(true),
            }
            self.add(
                "managed",
                "aws_kms_grant",
                &format!("g{i}"),
                "create",
                after,
                unknown,
                exprs,
            );
        }

        fn config(&mut self, i: usize, rtype: &'static str, arn: KeyArn, created: bool) {
            self.config_types.push(rtype);
            let mut info = json!({});
            let mut info_unknown = json!({"key_region": true});
            let mut exprs = json!({});
            match arn {
                KeyArn::Ref(k) => {
                    let k = self.key_address(k);
                    info_unknown["key_arn"] = json!(true);
                    exprs = json!({"aws_key_info": [{"key_arn": {"references": [format!("{k}.arn"), k]}}]});
                }
                KeyArn::Value(k) => info["key_arn"] = json!(key_arn(k)),
                KeyArn::Alias(a) => {
                    info_unknown["key_arn"] = json!(true);
                    exprs = json!({"aws_key_info": [{"key_arn": {"references": [
                        format!("aws_kms_alias.a{a}.target_key_arn"), format!("aws_kms_alias.a{a}")]}}]});
                }
                KeyArn::Unknown => info_unknown["key_arn"] = json!(true),
            }
            let mut after = json!({"account_id": ACCOUNT,
                                   "use_cases": ["MANAGED_SERVICES", "STORAGE"],
                                   "aws_key_info": [info]});
            let unknown = if created {
                json!({"customer_managed_key_id": true, "id": true, "aws_key_info": [info_unknown]})
            } else {
                after["customer_managed_key_id"] = json!(format!("cfg-{i}"));
                json!({"aws_key_info": [info_unknown]})
            };
            self.add(
                "managed",
                rtype,
                &format!("c{i}"),
                if created { "create" } else { "no-op" },
                after,
                unknown,
                exprs,
            );
        }

        fn creds(&mut self, i: usize) {
            self.add(
                "managed",
                "databricks_mws_credentials",
                &format!("r{i}"),
                "create",
                json!({"role_arn": format!("arn:aws:iam::123456789012:role/cross-{i}")}),
                json!({"credentials_id": true}),
                json!({}),
            );
        }

        fn workspace(&mut self, i: usize, rtype: &str, slots: [Slot_; 2], created: bool) {
            let binding = rtype == "cmk_workspace_binding";
            let names = if binding {
                ["managed_services_key_id", "storage_key_id"]
            } else {
                [
                    "managed_services_customer_managed_key_id",
                    "storage_customer_managed_key_id",
                ]
            };
            let mut after = json!({"account_id": ACCOUNT, "aws_region": "us-east-1",
                                   "workspace_name": format!("ws{i}"),
                                   "pricing_tier": "ENTERPRISE"});
            let mut unknown = json!({});
            let mut exprs = json!({});
            if binding {
                after["workspace_id"] = json!(1000 + i);
            } else {
                unknown["credentials_id"] = json!(true);
                let r = format!("databricks_mws_credentials.r{i}");
                exprs["credentials_id"] = json!({"references": [format!("{r}.credentials_id"), r]});
            }
            for (slot, attr) in slots.iter().zip(names) {
                match *slot {
                    Slot_::Ref(c) | Slot_::Composite(c) => {
                        let c_addr = self.config_address(c);
                        let a = if matches!(slot, Slot_::Ref(_)) {
                            "customer_managed_key_id"
                        } else {
                            "id"
                        };
                        unknown[attr] = json!(true);
                        exprs[attr] = json!({"references": [format!("{c_addr}.{a}"), c_addr]});
                    }
                    Slot_::Value(c) => after[attr] = json!(format!("cfg-{c}")),
                    Slot_::Unknown => unknown[attr] = json!(true),
                    Slot_::None => {}
                }
            }
            self.add(
                "managed",
                rtype,
                &format!("w{i}"),
                if created { "create" } else { "no-op" },
                after,
                unknown,
                exprs,
            );
        }

        fn plan(self) -> Value {
            json!({"format_version": "1.2", "terraform_version": "1.11.4",
                   "planned_values": {"root_module": {"resources": self.planned}},
                   "resource_changes": self.changes,
                   "configuration": {"root_module": {"resources": self.config}}})
        }
    }

    /// A workspace: binding or official, its two slots (how, which
    /// configuration), created or existing.
    type WorkspaceShape = (bool, [(u8, usize); 2], bool);

    #[derive(Debug, Clone)]
    struct Shape {
        sources: usize,
        keys: Vec<(bool, bool, u8, u8, u8)>,
        aliases: Vec<usize>,
        grants: Vec<(u8, usize)>,
        configs: Vec<(bool, u8, usize, bool)>,
        creds: usize,
        workspaces: Vec<WorkspaceShape>,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            0..3usize,
            proptest::collection::vec((any::<bool>(), any::<bool>(), 0..4u8, 0..4u8, 0..4u8), 0..5),
            proptest::collection::vec(0..6usize, 0..3),
            proptest::collection::vec((0..3u8, 0..6usize), 0..4),
            proptest::collection::vec((any::<bool>(), 0..4u8, 0..6usize, any::<bool>()), 0..5),
            0..3usize,
            proptest::collection::vec(
                (
                    any::<bool>(),
                    [(0..5u8, 0..6usize), (0..5u8, 0..6usize)],
                    any::<bool>(),
                ),
                0..4,
            ),
        )
            .prop_map(
                |(sources, keys, aliases, grants, configs, creds, workspaces)| Shape {
                    sources,
                    keys,
                    aliases,
                    grants,
                    configs,
                    creds,
                    workspaces,
                },
            )
    }

    /// The plan of a shape; references to what is not there stay (a plan
    /// may name what it does not hold).
    fn generated(s: &Shape) -> Value {
        let mut g = Gen::default();
        for i in 0..s.sources {
            g.policy_source(i);
        }
        for (i, (cmk, known, policy, uses, src)) in s.keys.iter().enumerate() {
            let rtype = if *cmk { "cmk_kms_key" } else { "aws_kms_key" };
            let arn = if *known { Arn::Known } else { Arn::Unknown };
            let policy = match policy {
                0 => Policy::Text(true),
                1 => Policy::Text(false),
                2 => Policy::Source(*src as usize % 3),
                _ => Policy::Unknown,
            };
            let uses = match uses {
                0 => Some("MANAGED_SERVICES"),
                1 => Some("STORAGE"),
                2 => Some("MANAGED_SERVICES,STORAGE"),
                _ => None,
            };
            g.key(i, rtype, arn, policy, uses);
        }
        for (i, k) in s.aliases.iter().enumerate() {
            g.alias(i, *k);
        }
        for (i, (how, k)) in s.grants.iter().enumerate() {
            let key = match how {
                0 => GrantKey::Ref(*k),
                1 => GrantKey::Value(*k),
                _ => GrantKey::Unknown,
            };
            g.grant(i, key);
        }
        for (i, (cmk, how, k, created)) in s.configs.iter().enumerate() {
            let rtype = if *cmk {
                "cmk_key_configuration"
            } else {
                "databricks_mws_customer_managed_keys"
            };
            let arn = match how {
                0 => KeyArn::Ref(*k),
                1 => KeyArn::Value(*k),
                2 => KeyArn::Alias(*k % 3),
                _ => KeyArn::Unknown,
            };
            g.config(i, rtype, arn, *created);
        }
        for i in 0..s.creds {
            g.creds(i);
        }
        for (i, (binding, slots, created)) in s.workspaces.iter().enumerate() {
            let rtype = if *binding {
                "cmk_workspace_binding"
            } else {
                "databricks_mws_workspaces"
            };
            let slots = slots.map(|(how, c)| match how {
                0 => Slot_::Ref(c),
                1 => Slot_::Composite(c),
                2 => Slot_::Value(c),
                3 => Slot_::Unknown,
                _ => Slot_::None,
            });
            g.workspace(i, rtype, slots, *created);
        }
        g.plan()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn generated_plans_are_analyzed_in_one_scan(s in shape()) {
            let plan = Plan::from_value(generated(&s)).unwrap();
            let (scans, _) = visits_now(&plan);
            prop_assert_eq!(scans, 1);
            // What the probe marks `live_decides` is a result --live leaves
            // undecided today and decides with live facts.
            let targets = live_targets(&plan);
            let live = analyze_live(&plan, &Requirements::default(), &placeholder_live(&targets));
            for l in analyze(&plan, &Requirements::default()).outcomes.iter().filter(|l| l.live_decides) {
                prop_assert!(live.outcomes.iter().any(|x| x.address == l.address
                    && x.outcome.rule == l.outcome.rule
                    && x.outcome.subject == l.outcome.subject
                    && !matches!(x.outcome.verdict, crate::rules::Verdict::CannotTell | crate::rules::Verdict::NeedsState)),
                    "{} {:?} marked live_decides", l.address, l.outcome.rule);
            }
        }
    }

    #[test]
    fn generated_plans_make_findings() {
        // The generator's plans are reviewed, not refused or empty: keys,
        // grants, configurations and workspaces all reach the rules.
        let s = Shape {
            sources: 1,
            keys: vec![(false, true, 0, 3, 0), (true, false, 2, 2, 0)],
            aliases: vec![0],
            grants: vec![(0, 1), (1, 0), (2, 0)],
            configs: vec![
                (false, 0, 0, true),
                (true, 2, 0, false),
                (false, 1, 1, true),
            ],
            creds: 2,
            workspaces: vec![
                (false, [(0, 0), (1, 1)], true),
                (true, [(2, 1), (3, 0)], false),
            ],
        };
        let plan = Plan::from_value(generated(&s)).unwrap();
        let a = analyze(&plan, &Requirements::default());
        for address in [
            "aws_kms_key.k0",
            "cmk_kms_key.k1",
            "databricks_mws_customer_managed_keys.c0",
            "databricks_mws_workspaces.w0",
            "cmk_workspace_binding.w1",
        ] {
            assert!(
                a.outcomes.iter().any(|l| l.address == address),
                "{address}: {}",
                said(&a)
            );
        }
        let k1 = keys_of(&plan);
        assert_eq!(
            k1,
            vec![
                ("aws_kms_key.k0".to_string(), 2),
                ("cmk_kms_key.k1".to_string(), 2)
            ]
        );
    }

    /// Each key of the plan with the number of grants found on it.
    fn keys_of(plan: &Plan) -> Vec<(String, usize)> {
        let index = Index::new(plan);
        index
            .keys
            .all
            .iter()
            .enumerate()
            .map(|(i, k)| (k.address.clone(), index.keys.facts_at(i).grants.len()))
            .collect()
    }
}
