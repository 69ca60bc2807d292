//! Reading `terraform show -json PLANFILE`: resources with their planned
//! values, unknown markers, prior values and configuration references.

use std::collections::{BTreeMap, HashMap};

use std::io::Read;

use serde_json::{Map, Value};

use crate::rules::{Deployment, Fact};

/// One resource (or data source) instance of the plan.
#[derive(Debug, Clone, Default)]
pub struct Res {
    pub address: String,
    /// The configuration address (no instance key, with module path).
    pub config_address: String,
    pub mode: String,
    pub rtype: String,
    pub after: Value,
    pub after_unknown: Value,
    pub before: Value,
    pub actions: Vec<String>,
    /// HCL mode: attribute path -> the value not known until apply that
    /// it is, with its origin ([`crate::rules::unknown`]).
    pub origins: BTreeMap<String, String>,
}

impl Res {
    pub fn creates(&self) -> bool {
        self.actions.iter().any(|a| a == "create")
    }

    pub fn deletes_only(&self) -> bool {
        self.actions.iter().any(|a| a == "delete") && !self.creates()
    }

    /// A value at a dotted path of `after`: unknown, absent/null, or a value.
    /// A list of one nested block is entered transparently.
    pub fn get(&self, path: &str) -> Fact<Option<Value>> {
        let mut v = &self.after;
        let mut u = &self.after_unknown;
        for seg in path.split('.') {
            if u == &Value::Bool(true) {
                return Fact::Unknown;
            }
            v = enter(v).get(seg).unwrap_or(&Value::Null);
            u = enter(u).get(seg).unwrap_or(&Value::Null);
        }
        if u == &Value::Bool(true) {
            return Fact::Unknown;
        }
        match v {
            Value::Null => Fact::Known(None),
            other => Fact::Known(Some(other.clone())),
        }
    }

    /// The value not known until apply at a path, as its marker, when the
    /// configuration gives its origin (HCL mode).
    pub fn origin(&self, path: &str) -> Option<String> {
        self.origins.get(path).cloned()
    }

    pub fn get_str(&self, path: &str) -> Fact<Option<String>> {
        self.get(path)
            .map(|o| o.and_then(|v| v.as_str().map(str::to_string)))
    }

    pub fn get_bool(&self, path: &str) -> Fact<Option<bool>> {
        self.get(path).map(|o| o.and_then(|v| v.as_bool()))
    }

    /// A list (or set) of strings; an element that is unknown makes the whole unknown.
    pub fn get_strings(&self, path: &str) -> Fact<Option<Vec<String>>> {
        if let Some(Value::Array(us)) = path_value(&self.after_unknown, path) {
            if us.iter().any(|x| x == &Value::Bool(true)) {
                return Fact::Unknown;
            }
        }
        self.get(path).map(|o| {
            o.and_then(|v| match v {
                Value::Array(a) => Some(
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
        })
    }

    pub fn before_str(&self, path: &str) -> Option<String> {
        path_value(&self.before, path).and_then(|v| v.as_str().map(str::to_string))
    }
}

fn enter(v: &Value) -> &Value {
    match v {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    }
}

fn path_value<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = v;
    for seg in path.split('.') {
        v = enter(v).get(seg)?;
    }
    Some(v)
}

/// Strips instance keys: `a.b["x"]` and `module.m[0].a.b[1]` lose the `[...]`.
pub fn strip_index(address: &str) -> String {
    if !address.contains('[') {
        return address.to_string();
    }
    let mut out = String::with_capacity(address.len());
    let mut depth = 0;
    let mut in_str = false;
    for c in address.chars() {
        match c {
            '"' if depth > 0 => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The plan, read.
#[derive(Debug, Default)]
pub struct Plan {
    pub resources: Vec<Res>,
    /// config address -> attribute path -> references.
    pub references: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Indexes into `resources`: by address, and by configuration address
    /// (every instance of a `count`/`for_each` resource shares one).
    by_address: HashMap<String, usize>,
    by_config: HashMap<String, Vec<usize>>,
    /// Of each resource (as `resources`): its instance key and its module
    /// instance prefix, read once ([`Plan::instances`] orders by them).
    placement: Vec<(Option<String>, String)>,
    /// The configuration as `terraform show -json` records it, for following
    /// references across modules and to provider configurations.
    config: ConfigFacts,
    /// Made from a configuration's source (HCL mode), not a plan: every
    /// resource is planned as created, but any of them may exist already,
    /// and what exists was not read.
    pub without_state: bool,
}

/// What the plan's `configuration` and `variables` say beyond references.
#[derive(Debug, Default)]
struct ConfigFacts {
    /// config address -> its `provider_config_key` (resolved through
    /// `providers` maps, as Terraform writes it: `aws`, `aws.west`).
    provider_keys: HashMap<String, String>,
    /// provider config key -> the region it is configured with.
    provider_regions: HashMap<String, Fact<String>>,
    /// module prefix (`module.a.`) -> input variable -> references in the caller.
    module_inputs: HashMap<String, BTreeMap<String, Vec<String>>>,
    /// module prefix -> output -> references inside the module.
    module_outputs: HashMap<String, BTreeMap<String, Vec<String>>>,
    /// config address -> the references of its `for_each` expression.
    for_each: HashMap<String, Vec<String>>,
    /// The Databricks deployments the Databricks and cmk provider blocks
    /// name (their `host`, or cmk's `deployment`), with the block and host.
    deployments: Vec<(Deployment, String)>,
    /// `--deployment`: wins over the provider blocks.
    deployment_override: Option<Deployment>,
    /// What the `cmk` and `databricks` provider blocks set for `--live`
    /// (`account_id`, `host`, `workspace_host_template`): argument -> the
    /// known values, each with the block that set it.
    provider_settings: BTreeMap<&'static str, Vec<(String, String)>>,
    /// The shard the plan's key policies name, worked out once.
    policy_deployment: std::sync::OnceLock<Option<Deployment>>,
}

/// The provider arguments `review --live` takes from the `cmk` and
/// `databricks` provider blocks.
pub const PROVIDER_SETTINGS: [&str; 3] = ["account_id", "host", "workspace_host_template"];

/// How deep references are followed through module variables and outputs.
const MAX_REFERENCE_HOPS: usize = 16;

/// Why a plan cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the input is not JSON: {0}")]
    NotJson(String),
    #[error("the input is not the output of `terraform show -json PLANFILE`: {0}")]
    NotAPlan(String),
    #[error("the input is larger than {limit_mib} MiB (raise the limit with --max-input-mib if this is really a plan)")]
    TooLarge { limit_mib: u64 },
}

/// The actions `terraform show -json` writes in `change.actions`.
pub const ACTIONS: [&str; 6] = ["no-op", "create", "read", "update", "delete", "forget"];

/// Nesting of modules read before the plan is refused.
const MAX_MODULE_DEPTH: usize = 64;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(path: &str, expected: &str, found: &Value) -> PlanError {
    PlanError::NotAPlan(format!(
        "{path}: expected {expected}, found {}",
        kind(found)
    ))
}

/// A required member of an object.
fn member<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value, PlanError> {
    o.get(key)
        .ok_or_else(|| PlanError::NotAPlan(format!("{} is missing", join(path, key))))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, PlanError> {
    v.as_object().ok_or_else(|| wrong(path, "an object", v))
}

fn object_mut<'a>(v: &'a mut Value, path: &str) -> Result<&'a mut Map<String, Value>, PlanError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(wrong(path, "an object", other)),
    }
}

/// `parent.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, PlanError> {
    v.as_str().ok_or_else(|| wrong(path, "a string", v))
}

/// An optional member that, when present, must be an object.
fn opt_object<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, PlanError> {
    o.get(key).map(|v| object(v, &join(path, key))).transpose()
}

/// An optional member that, when present, must be an array.
fn opt_array<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a [Value], PlanError> {
    match o.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(wrong(&join(path, key), "an array", v)),
    }
}

/// `before`/`after`/`values`: an object, or null for an object that does
/// not exist on that side.
fn object_or_null(o: &Map<String, Value>, path: &str, key: &str) -> Result<Value, PlanError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(v) => Err(wrong(&join(path, key), "an object or null", v)),
    }
}

/// The same, moved out of `o`.
fn take_object_or_null(
    o: &mut Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Value, PlanError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(v) => Err(wrong(&join(path, key), "an object or null", &v)),
    }
}

fn mode(o: &Map<String, Value>, path: &str) -> Result<String, PlanError> {
    let m = string(member(o, path, "mode")?, &format!("{path}.mode"))?;
    if m != "managed" && m != "data" {
        return Err(PlanError::NotAPlan(format!(
            "{path}.mode: expected \"managed\" or \"data\", found {}",
            crate::rules::findings::quote(m)
        )));
    }
    Ok(m.to_string())
}

/// True when a module of `planned_values` holds any resource.
fn holds_resources(m: &Map<String, Value>) -> bool {
    matches!(m.get("resources"), Some(Value::Array(a)) if !a.is_empty())
        || matches!(m.get("child_modules"), Some(Value::Array(a)) if !a.is_empty())
}

impl Plan {
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PlanError::NotJson(e.to_string()))?;
        Plan::from_value(v)
    }

    /// Reads a plan, refusing (never skipping) anything that is not in the
    /// shape `terraform show -json PLANFILE` writes: the error names the
    /// JSON path and what was expected there. Values move out of `v`
    /// (nothing is copied).
    pub fn from_value(v: Value) -> Result<Plan, PlanError> {
        let mut o = match v {
            Value::Object(o) => o,
            other => {
                return Err(PlanError::NotAPlan(format!(
                    "expected a JSON object, found {}",
                    kind(&other)
                )))
            }
        };
        let Some(fv) = o.get("format_version") else {
            return Err(PlanError::NotAPlan(
                "there is no \"format_version\" (this JSON was written by another tool; run `terraform show -json PLANFILE`)".into(),
            ));
        };
        let fv = string(fv, "format_version")?;
        if fv.split('.').next() != Some("1") {
            return Err(PlanError::NotAPlan(format!(
                "format_version {} is not supported (this review reads format 1.x)",
                crate::rules::findings::quote(fv)
            )));
        }
        let planned = match o.remove("planned_values") {
            None if o.contains_key("values") => {
                return Err(PlanError::NotAPlan(
                    "this is a Terraform state (`terraform show -json` without a plan file), not a plan; run `terraform plan -out PLANFILE` and `terraform show -json PLANFILE`".into(),
                ))
            }
            None => {
                return Err(PlanError::NotAPlan(
                    "\"planned_values\" is missing (run `terraform show -json PLANFILE`)".into(),
                ))
            }
            Some(p) => p,
        };
        let planned = object(&planned, "planned_values")?;
        let root = object(
            member(planned, "planned_values", "root_module")?,
            "planned_values.root_module",
        )?;
        let changes: Vec<Value> = match o.remove("resource_changes") {
            // Terraform leaves it out only when the plan has no resource at all.
            None if holds_resources(root) => {
                return Err(PlanError::NotAPlan(
                    "\"resource_changes\" is missing although planned_values lists resources"
                        .into(),
                ))
            }
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => return Err(wrong("resource_changes", "an array", &other)),
        };
        let mut plan = Plan::default();
        for (i, mut rc) in changes.into_iter().enumerate() {
            let path = format!("resource_changes[{i}]");
            let rco = object_mut(&mut rc, &path)?;
            let address = string(member(rco, &path, "address")?, &format!("{path}.address"))?;
            if address.is_empty() {
                return Err(PlanError::NotAPlan(format!("{path}.address is empty")));
            }
            let address = address.to_string();
            let rtype = string(member(rco, &path, "type")?, &format!("{path}.type"))?.to_string();
            let mode = mode(rco, &path)?;
            let cpath = format!("{path}.change");
            let Some(mut change) = rco.remove("change") else {
                return Err(PlanError::NotAPlan(format!("{path}.change is missing")));
            };
            let change = object_mut(&mut change, &cpath)?;
            let apath = format!("{cpath}.actions");
            let acts = member(change, &cpath, "actions")?;
            let acts = acts
                .as_array()
                .ok_or_else(|| wrong(&apath, "an array of strings", acts))?;
            let mut actions = Vec::with_capacity(acts.len());
            for (j, a) in acts.iter().enumerate() {
                let a = string(a, &format!("{apath}[{j}]"))?;
                if !ACTIONS.contains(&a) {
                    return Err(PlanError::NotAPlan(format!(
                        "{apath}[{j}]: unknown action {}; Terraform writes {}",
                        crate::rules::findings::quote(a),
                        ACTIONS.join(", ")
                    )));
                }
                actions.push(a.to_string());
            }
            let after_unknown = match change.remove("after_unknown") {
                None => Value::Null,
                Some(v @ (Value::Null | Value::Bool(_) | Value::Object(_))) => v,
                Some(v) => {
                    return Err(wrong(
                        &format!("{cpath}.after_unknown"),
                        "an object or a boolean",
                        &v,
                    ))
                }
            };
            // Only markers of this process count ([`crate::rules::unknown`]).
            let origins = match change.remove("after_origins") {
                Some(Value::Object(m)) => m
                    .into_iter()
                    .filter_map(|(k, v)| match v {
                        Value::String(s) if crate::rules::unknown::exact(&s).is_some() => {
                            Some((k, s))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
            let res = Res {
                config_address: strip_index(&address),
                address,
                mode,
                rtype,
                after: take_object_or_null(change, &cpath, "after")?,
                after_unknown,
                before: take_object_or_null(change, &cpath, "before")?,
                actions,
                origins,
            };
            plan.add(res);
        }
        collect_module(root, "planned_values.root_module", &mut plan, false, 0)?;
        if let Some(prior) = opt_object(&o, "", "prior_state")? {
            if let Some(values) = opt_object(prior, "prior_state", "values")? {
                if let Some(m) = opt_object(values, "prior_state.values", "root_module")? {
                    // Data sources read during planning appear only in the prior state.
                    collect_module(m, "prior_state.values.root_module", &mut plan, true, 0)?;
                }
            }
        }
        if let Some(c) = opt_object(&o, "", "configuration")? {
            if opt_object(c, "configuration", "root_module")?.is_some() {
                if let Some(m) = c.get("root_module") {
                    collect_config(m, "", &mut plan.references, &mut plan.config, 0);
                }
            }
            if let Some(pcs) = opt_object(c, "configuration", "provider_config")? {
                let vars = o.get("variables");
                for (key, pc) in pcs {
                    let region = ["region", "aws_region"]
                        .iter()
                        .find_map(|attr| pc.get("expressions")?.get(*attr))
                        .map(|e| expression_value(e, vars))
                        .unwrap_or(Fact::Unknown);
                    plan.config.provider_regions.insert(key.clone(), region);
                    let name = pc.get("name").and_then(Value::as_str).unwrap_or(key);
                    if name == "databricks" || name == "cmk" {
                        let expr = |attr: &str| {
                            pc.get("expressions")
                                .and_then(|e| e.get(attr))
                                .map(|e| expression_value(e, vars))
                        };
                        for attr in PROVIDER_SETTINGS {
                            if let Some(Fact::Known(v)) = expr(attr) {
                                if !v.trim().is_empty() {
                                    plan.config
                                        .provider_settings
                                        .entry(attr)
                                        .or_default()
                                        .push((v, format!("provider \"{key}\" {attr}")));
                                }
                            }
                        }
                        let named = match expr("deployment") {
                            Some(Fact::Known(d)) => Deployment::parse(&d).map(|d| {
                                (
                                    d,
                                    format!("provider \"{key}\" deployment = {d:?}", d = d.name()),
                                )
                            }),
                            _ => None,
                        }
                        .or_else(|| match expr("host") {
                            Some(Fact::Known(h)) => Deployment::of_host(&h).map(|d| {
                                (
                                    d,
                                    format!(
                                        "provider \"{key}\" host {}",
                                        crate::rules::ids::quoted(&h)
                                    ),
                                )
                            }),
                            _ => None,
                        });
                        plan.config.deployments.extend(named);
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Adds a resource unless its address is known already (the first
    /// reading, from `resource_changes`, wins).
    fn add(&mut self, r: Res) {
        if self.by_address.contains_key(&r.address) {
            return;
        }
        let i = self.resources.len();
        self.by_address.insert(r.address.clone(), i);
        self.by_config
            .entry(r.config_address.clone())
            .or_default()
            .push(i);
        self.placement.push((
            instance_key(&r.address).map(str::to_string),
            module_instance_prefix(&r.address),
        ));
        self.resources.push(r);
    }

    /// The resource at an address.
    pub fn get(&self, address: &str) -> Option<&Res> {
        self.by_address.get(address).map(|i| &self.resources[*i])
    }

    pub fn by_type<'a>(&'a self, types: &'a [&str]) -> impl Iterator<Item = &'a Res> + 'a {
        self.resources
            .iter()
            .filter(move |r| types.contains(&r.rtype.as_str()))
    }

    /// The references of an attribute path (or of its enclosing attribute).
    pub fn refs(&self, res: &Res, path: &str) -> Vec<String> {
        let Some(m) = self.references.get(&res.config_address) else {
            return vec![];
        };
        let mut p = path.to_string();
        loop {
            if let Some(r) = m.get(&p) {
                return r.clone();
            }
            match p.rfind('.') {
                Some(i) => p.truncate(i),
                None => return vec![],
            }
        }
    }

    /// Resources referenced whole (`x = cmk_key_configuration.s`) by the
    /// expression at `path`, in the module of `from` (through module
    /// variables and outputs).
    ///
    /// Each resource is kept once, by a set of addresses (not a search of
    /// those kept so far): time linear in the instances a `count`/`for_each`
    /// reference names (review's analysis follows one per workspace, grant
    /// and key configuration).
    pub fn resolve_whole(&self, from: &Res, path: &str) -> Vec<&Res> {
        self.resolve_whole_iter(from, path).collect()
    }

    /// [`Plan::resolve_whole`] as it is read: a caller that stops at the
    /// first match stops the keeping-once too (a `count` reference names
    /// every instance, the one with `from`'s key first).
    pub fn resolve_whole_iter<'a>(
        &'a self,
        from: &Res,
        path: &str,
    ) -> impl Iterator<Item = &'a Res> + 'a {
        let (found, sources) = self.whole_of(self.expand(from, path), from);
        // One lookup names each instance once: only several can repeat.
        let mut seen = (sources > 1).then(std::collections::HashSet::new);
        found
            .into_iter()
            .filter(move |r| seen.as_mut().is_none_or(|s| s.insert(r.address.as_str())))
    }

    /// What [`Plan::resolve_whole`] keeps, in order, with repeats.
    #[cfg(test)]
    pub(crate) fn resolve_whole_all(&self, from: &Res, path: &str) -> Vec<&Res> {
        self.whole_of(self.expand(from, path), from).0
    }

    /// The instances references name, and how many of the references
    /// found any.
    fn whole_of(&self, expansions: Vec<(String, String)>, from: &Res) -> (Vec<&Res>, usize) {
        let mut out = vec![];
        let mut sources = 0;
        for (prefix, r) in expansions {
            let found = self.instances_of(&format!("{prefix}{r}"), from);
            sources += usize::from(!found.is_empty());
            out.extend(found);
        }
        (out, sources)
    }

    /// Resolves references to (resource, attribute) pairs among the plan's
    /// resources, in the module of `from`. Each reference is looked up by
    /// its configuration address (every instance of it, the one with
    /// `from`'s own `count`/`for_each` key first), not searched for;
    /// `var.x` inside a module is followed to the caller's expression, and
    /// `module.m.out` to the module's output.
    /// Each (resource, attribute) is kept once, by a set (see
    /// [`Plan::resolve_whole`]).
    pub fn resolve(&self, from: &Res, path: &str) -> Vec<(&Res, String)> {
        self.resolve_iter(from, path).collect()
    }

    /// [`Plan::resolve`] as it is read (see [`Plan::resolve_whole_iter`]).
    pub fn resolve_iter<'a>(
        &'a self,
        from: &Res,
        path: &str,
    ) -> impl Iterator<Item = (&'a Res, String)> + 'a {
        let (found, sources) = self.attributes_of(self.expand(from, path), from);
        // One lookup names each instance once: only several can repeat.
        let mut seen = (sources > 1).then(std::collections::HashSet::new);
        found.into_iter().filter(move |(r, attr)| {
            seen.as_mut()
                .is_none_or(|s| s.insert((r.address.as_str(), attr.clone())))
        })
    }

    /// What [`Plan::resolve`] keeps, in order, with repeats.
    #[cfg(test)]
    pub(crate) fn resolve_all(&self, from: &Res, path: &str) -> Vec<(&Res, String)> {
        self.attributes_of(self.expand(from, path), from).0
    }

    /// The (instance, attribute) pairs references name, and how many
    /// lookups (a reference cut into address and attribute) found any.
    fn attributes_of(
        &self,
        expansions: Vec<(String, String)>,
        from: &Res,
    ) -> (Vec<(&Res, String)>, usize) {
        let mut out: Vec<(&Res, String)> = vec![];
        let mut sources = 0;
        for (prefix, r) in expansions {
            let full = format!("{prefix}{r}");
            // Every split "<address>.<attribute>" of the reference.
            for cut in top_level_dots(&full) {
                let (addr, attr) = (&full[..cut], strip_index(&full[cut + 1..]));
                let found = self.instances_of(addr, from);
                sources += usize::from(!found.is_empty());
                out.extend(found.into_iter().map(|res| (res, attr.clone())));
            }
        }
        (out, sources)
    }

    /// The resources a referenced address names: the one instance when the
    /// reference gives a constant key (`k["a"]`, `m[0]`; Terraform records
    /// those whole), else every instance of the configuration address, the
    /// one with `from`'s own key first.
    fn instances_of(&self, address: &str, from: &Res) -> Vec<&Res> {
        if address.ends_with(']') {
            if let Some(r) = self.get(address) {
                return vec![r];
            }
        }
        self.instances(&strip_index(address), from)
    }

    /// The instances of a configuration address, the one whose instance
    /// key is `from`'s first.
    fn instances(&self, config_address: &str, from: &Res) -> Vec<&Res> {
        let Some(ids) = self.by_config.get(config_address) else {
            return vec![];
        };
        // Each instance's key and module were read once (`placement`): a
        // walk costs a pass over the instances, not a sort that parses
        // every address again.
        let mut v: Vec<usize> = ids.clone();
        if v.len() > 1 {
            let first = |v: Vec<usize>, keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
                let (mut a, b): (Vec<usize>, Vec<usize>) = v.into_iter().partition(|&i| keep(i));
                a.extend(b);
                a
            };
            if let Some(key) = instance_key(&from.address) {
                v = first(v, &|i| self.placement[i].0.as_deref() == Some(key));
            }
            // In the same module instance (`module.m["k"].`) as `from` first.
            let own = module_instance_prefix(&from.address);
            if !own.is_empty() {
                v = first(v, &|i| self.placement[i].1 == own);
            }
        }
        v.into_iter().map(|i| &self.resources[i]).collect()
    }

    /// The references of `from`'s expression at `path`, each with the
    /// module prefix it is relative to, after following module variables
    /// (to the caller) and module outputs (into the module).
    fn expand(&self, from: &Res, path: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        let prefix = module_prefix(&from.config_address);
        let refs: Vec<String> = self
            .refs(from, path)
            .into_iter()
            .map(|r| self.through_each_value(from, r))
            .collect();
        self.expand_refs(&prefix, &refs, 0, &mut out);
        out
    }

    /// `each.value...` under a `for_each` over one whole resource or data
    /// source (`for_each = cmk_kms_key.k`, chained instances): that
    /// resource's attribute, whose instance of `from`'s own key
    /// [`Plan::instances`] puts first. Any other reference as it is.
    fn through_each_value(&self, from: &Res, r: String) -> String {
        let Some(rest) = r.strip_prefix("each.value") else {
            return r;
        };
        let Some(refs) = self.config.for_each.get(&from.config_address) else {
            return r;
        };
        match refs.as_slice() {
            [target]
                if !target.contains('[')
                    && !["var.", "local.", "each.", "count.", "module."]
                        .iter()
                        .any(|p| target.starts_with(p))
                    && (rest.is_empty() || rest.starts_with('.')) =>
            {
                format!("{target}{rest}")
            }
            _ => r,
        }
    }

    fn expand_refs(
        &self,
        prefix: &str,
        refs: &[String],
        hops: usize,
        out: &mut Vec<(String, String)>,
    ) {
        if hops > MAX_REFERENCE_HOPS {
            return;
        }
        for r in refs {
            if let Some(rest) = r.strip_prefix("var.") {
                let name = rest.split(['.', '[']).next().unwrap_or_default();
                let Some((parent, _)) = split_last_module(prefix) else {
                    // A root module variable: whatever the caller gives.
                    // Kept, so that a reader can tell the expression
                    // reads one ([`Plan::reads_root_variable`]).
                    if !out.iter().any(|(p, x)| p == prefix && x == r) {
                        out.push((prefix.to_string(), r.clone()));
                    }
                    continue;
                };
                if let Some(refs) = self
                    .config
                    .module_inputs
                    .get(prefix)
                    .and_then(|m| m.get(name))
                {
                    self.expand_refs(&parent, refs, hops + 1, out);
                }
            } else if let Some(rest) = r.strip_prefix("module.") {
                let mut parts = rest.splitn(3, '.');
                let (Some(m), Some(output)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let m = strip_index(m);
                let output = output.split('[').next().unwrap_or_default();
                let child = format!("{prefix}module.{m}.");
                if let Some(refs) = self
                    .config
                    .module_outputs
                    .get(&child)
                    .and_then(|o| o.get(output))
                {
                    self.expand_refs(&child, refs, hops + 1, out);
                }
            } else if !out.iter().any(|(p, x)| p == prefix && x == r) {
                out.push((prefix.to_string(), r.clone()));
            }
        }
    }

    /// The region a resource's provider configuration sets (`region` of
    /// the AWS provider, `aws_region` of this one), when the plan knows it.
    /// The Databricks deployment: `--deployment`, else the one every
    /// Databricks and cmk provider block that names one agrees on. `None`
    /// when none names one, or they disagree.
    pub fn deployment(&self) -> Option<Deployment> {
        if let Some(d) = self.config.deployment_override {
            return Some(d);
        }
        let mut named = self.config.deployments.iter().map(|(d, _)| *d);
        match named.next() {
            Some(first) => named.all(|d| d == first).then_some(first),
            None => self.policy_deployment(),
        }
    }

    /// With no provider block naming one: the deployment whose Databricks
    /// account the plan's key policies name, when they name exactly one of
    /// those their keys' partitions allow (a policy written for a shard
    /// decides it). A policy naming Databricks' commercial account in a
    /// GovCloud key names none.
    fn policy_deployment(&self) -> Option<Deployment> {
        *self.config.policy_deployment.get_or_init(|| {
            let mut found = std::collections::BTreeSet::new();
            for k in self.resources.iter().filter(|r| {
                r.mode == "managed" && matches!(r.rtype.as_str(), "aws_kms_key" | "cmk_kms_key")
            }) {
                let Fact::Known(Some(policy)) = k.get_str("policy") else {
                    continue;
                };
                let arn = k.get_str("arn").known().cloned().flatten();
                let region = match k.get_str("region") {
                    Fact::Known(Some(r)) => Some(r),
                    _ => self.provider_region(k).known().cloned(),
                };
                let Some(partition) =
                    crate::rules::key_partition_of(arn.as_deref(), None, region.as_deref())
                else {
                    continue;
                };
                found.extend(
                    crate::rules::deployment::named_in(&policy)
                        .into_iter()
                        .filter(|d| d.partition() == partition),
                );
            }
            let mut it = found.into_iter();
            match (it.next(), it.next()) {
                (Some(d), None) => Some(d),
                _ => None,
            }
        })
    }

    /// What said which deployment it is (for the summary), or why none is
    /// known.
    pub fn deployment_source(&self) -> String {
        if let Some(d) = self.config.deployment_override {
            return format!("{d} (--deployment {})", d.name());
        }
        match (self.deployment(), self.config.deployments.as_slice()) {
            (Some(d), [(_, src), ..]) => format!("{d} ({src})"),
            (Some(d), []) => format!("{d} (the key policies name its Databricks account)"),
            (None, []) => "not known: no Databricks provider block names a host of a Databricks deployment (use --deployment)".to_string(),
            (_, all) => format!(
                "not known: the provider blocks disagree ({}); use --deployment",
                all.iter().map(|(d, s)| format!("{s}: {d}")).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// What the `cmk` and `databricks/databricks` provider blocks set for
    /// `arg` (one of [`PROVIDER_SETTINGS`]): `Ok(Some((value, which
    /// block)))` when they agree on one, `Ok(None)` when none sets it, `Err`
    /// naming every block when they disagree.
    pub fn provider_setting(&self, arg: &str) -> Result<Option<(String, String)>, String> {
        let Some(all) = self.config.provider_settings.get(arg) else {
            return Ok(None);
        };
        let first = &all[0];
        if all.iter().all(|(v, _)| v == &first.0) {
            return Ok(Some(first.clone()));
        }
        Err(format!(
            "the provider blocks disagree on {arg} ({})",
            all.iter()
                .map(|(v, src)| format!("{src} = {}", crate::rules::ids::quoted(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Sets `--deployment`.
    pub fn set_deployment(&mut self, d: Deployment) {
        self.config.deployment_override = Some(d);
    }

    pub fn provider_region(&self, res: &Res) -> Fact<String> {
        self.config
            .provider_keys
            .get(&res.config_address)
            .and_then(|k| self.config.provider_regions.get(k))
            .cloned()
            .unwrap_or(Fact::Unknown)
    }
}

/// Byte offsets of the dots of a reference outside `[...]` and quoted keys
/// (`k["a.b"].arn` splits at the last dot only).
fn top_level_dots(r: &str) -> Vec<usize> {
    let mut out = vec![];
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in r.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' if depth > 0 => in_str = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => out.push(i),
            _ => {}
        }
    }
    out
}

/// `[...]` at the end of an address: the `count`/`for_each` key.
/// The module instance an address is in, with its keys:
/// `module.m["k"].module.n[0].` for `module.m["k"].module.n[0].aws_kms_key.x`.
fn module_instance_prefix(address: &str) -> String {
    // Top-level segments (dots inside keys do not count).
    let mut segments: Vec<String> = vec![];
    let mut cur = String::new();
    let (mut depth, mut in_str, mut prev) = (0usize, false, '\0');
    for c in address.chars() {
        match c {
            '"' if depth > 0 && prev != '\\' => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                segments.push(std::mem::take(&mut cur));
                prev = c;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        prev = c;
    }
    segments.push(cur);
    let mut out = String::new();
    let mut i = 0;
    while i + 2 < segments.len() && segments[i] == "module" {
        out.push_str(&format!("module.{}.", segments[i + 1]));
        i += 2;
    }
    out
}

fn instance_key(address: &str) -> Option<&str> {
    if !address.ends_with(']') {
        return None;
    }
    // The last top-level '[' (keys may hold quoted brackets).
    let mut depth = 0usize;
    let mut in_str = false;
    let mut start = None;
    let b = address.as_bytes();
    for (i, c) in b.iter().enumerate() {
        match c {
            b'"' if depth > 0 && (i == 0 || b[i - 1] != b'\\') => in_str = !in_str,
            b'[' if !in_str => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            b']' if !in_str => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    start.map(|i| &address[i..])
}

/// `module.a.module.b.` -> (`module.a.`, `b`).
fn split_last_module(prefix: &str) -> Option<(String, String)> {
    let t = prefix.strip_suffix('.')?;
    let i = t.rfind("module.")?;
    Some((t[..i].to_string(), t[i + "module.".len()..].to_string()))
}

/// The value of a configuration expression: a constant string, or a root
/// variable's value from the plan's `variables`.
fn expression_value(e: &Value, vars: Option<&Value>) -> Fact<String> {
    if let Some(Value::String(s)) = e.get("constant_value") {
        return Fact::Known(s.clone());
    }
    let refs = e.get("references").and_then(Value::as_array);
    match refs.map(|r| r.as_slice()) {
        Some([Value::String(r), ..]) => r
            .strip_prefix("var.")
            .and_then(|v| vars?.get(v)?.get("value")?.as_str())
            .map(|s| Fact::Known(s.to_string()))
            .unwrap_or(Fact::Unknown),
        _ => Fact::Unknown,
    }
}

fn module_prefix(config_address: &str) -> String {
    // "module.a.module.b.type.name" -> "module.a.module.b."
    let parts: Vec<&str> = config_address.split('.').collect();
    let mut prefix = String::new();
    let mut i = 0;
    while i + 1 < parts.len() && parts[i] == "module" {
        prefix.push_str(&format!("module.{}.", parts[i + 1]));
        i += 2;
    }
    prefix
}

/// Adds a module's resources (and its children's) that the plan does not
/// hold yet; `only_data`: data sources only.
fn collect_module(
    m: &Map<String, Value>,
    path: &str,
    plan: &mut Plan,
    only_data: bool,
    depth: usize,
) -> Result<(), PlanError> {
    if depth > MAX_MODULE_DEPTH {
        return Err(PlanError::NotAPlan(format!(
            "{path}: modules nested deeper than {MAX_MODULE_DEPTH}"
        )));
    }
    for (i, r) in opt_array(m, path, "resources")?.iter().enumerate() {
        let rpath = format!("{path}.resources[{i}]");
        let ro = object(r, &rpath)?;
        let address = string(member(ro, &rpath, "address")?, &format!("{rpath}.address"))?;
        let rtype = string(member(ro, &rpath, "type")?, &format!("{rpath}.type"))?;
        let mode = mode(ro, &rpath)?;
        if (only_data && mode != "data") || plan.by_address.contains_key(address) {
            // Checked, not copied.
            object_or_null(ro, &rpath, "values")?;
            continue;
        }
        let values = object_or_null(ro, &rpath, "values")?;
        plan.add(Res {
            address: address.to_string(),
            config_address: strip_index(address),
            mode,
            rtype: rtype.to_string(),
            before: values.clone(),
            after: values,
            after_unknown: Value::Null,
            actions: vec!["no-op".to_string()],
            origins: BTreeMap::new(),
        });
    }
    for (i, c) in opt_array(m, path, "child_modules")?.iter().enumerate() {
        let cpath = format!("{path}.child_modules[{i}]");
        collect_module(object(c, &cpath)?, &cpath, plan, only_data, depth + 1)?;
    }
    Ok(())
}

fn collect_config(
    m: &Value,
    prefix: &str,
    out: &mut BTreeMap<String, BTreeMap<String, Vec<String>>>,
    config: &mut ConfigFacts,
    depth: usize,
) {
    if depth > MAX_MODULE_DEPTH {
        return;
    }
    if let Some(Value::Array(rs)) = m.get("resources") {
        for r in rs {
            let Some(address) = r.get("address").and_then(Value::as_str) else {
                continue;
            };
            let mut attrs = BTreeMap::new();
            if let Some(e) = r.get("expressions") {
                collect_expressions(e, "", &mut attrs, 0);
            }
            let full = format!("{prefix}{address}");
            if let Some(Value::Array(refs)) = r.pointer("/for_each_expression/references") {
                let refs = refs.iter().filter_map(Value::as_str).map(str::to_string);
                config.for_each.insert(full.clone(), refs.collect());
            }
            if let Some(k) = r.get("provider_config_key").and_then(Value::as_str) {
                config.provider_keys.insert(full.clone(), k.to_string());
            }
            out.insert(full, attrs);
        }
    }
    if let Some(Value::Object(outputs)) = m.get("outputs") {
        let mut o = BTreeMap::new();
        for (name, def) in outputs {
            let mut attrs = BTreeMap::new();
            if let Some(e) = def.get("expression") {
                collect_expressions(e, "", &mut attrs, 0);
            }
            o.insert(name.clone(), attrs.into_values().flatten().collect());
        }
        config.module_outputs.insert(prefix.to_string(), o);
    }
    if let Some(Value::Object(calls)) = m.get("module_calls") {
        for (name, call) in calls {
            let child_prefix = format!("{prefix}module.{name}.");
            let mut inputs = BTreeMap::new();
            if let Some(Value::Object(exprs)) = call.get("expressions") {
                for (var, e) in exprs {
                    let mut attrs = BTreeMap::new();
                    collect_expressions(e, "", &mut attrs, 0);
                    inputs.insert(var.clone(), attrs.into_values().flatten().collect());
                }
            }
            config.module_inputs.insert(child_prefix.clone(), inputs);
            if let Some(child) = call.get("module") {
                collect_config(child, &child_prefix, out, config, depth + 1);
            }
        }
    }
}

fn collect_expressions(
    e: &Value,
    path: &str,
    out: &mut BTreeMap<String, Vec<String>>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    match e {
        Value::Object(o) => {
            if let Some(Value::Array(refs)) = o.get("references") {
                let refs: Vec<String> = refs
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
                out.insert(path.to_string(), refs);
                return;
            }
            if o.contains_key("constant_value") {
                out.entry(path.to_string()).or_default();
                return;
            }
            for (k, v) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect_expressions(v, &p, out, depth + 1);
            }
        }
        Value::Array(a) => {
            // Nested blocks: a list of expression objects.
            for v in a {
                collect_expressions(v, path, out, depth + 1);
            }
        }
        _ => {}
    }
}

impl Plan {
    /// Whether the configuration sets this attribute path (exactly).
    pub fn configured(&self, res: &Res, path: &str) -> bool {
        self.references
            .get(&res.config_address)
            .is_some_and(|m| m.contains_key(path))
    }
}

/// Default input size limit, MiB. A plan of 10,000 resources is about 15 MiB.
pub const DEFAULT_MAX_INPUT_MIB: u64 = 256;

/// Why the input could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Plan(PlanError),
}

/// Reads at most `limit` bytes of UTF-8 text; more is `TooLarge` (never
/// read into memory), bytes that are not UTF-8 are `NotJson`.
pub fn read_limited(r: impl Read, limit: u64) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::Plan(PlanError::TooLarge {
            limit_mib: limit / (1024 * 1024),
        }));
    }
    String::from_utf8(buf).map_err(|e| {
        ReadError::Plan(PlanError::NotJson(format!(
            "not UTF-8 text (invalid byte at offset {}); if it is a binary plan file (terraform plan -out), review its JSON: terraform show -json PLANFILE > plan.json",
            e.utf8_error().valid_up_to()
        )))
    })
}

impl Plan {
    /// Whether the expression at `path` reads a root module variable,
    /// directly or through module inputs and outputs. Its references then
    /// do not say which resource the value is: `coalesce(var.arn,
    /// module.keys.arn)` records `module.keys.arn`'s key, but the variable
    /// wins when it is set.
    pub fn reads_root_variable(&self, from: &Res, path: &str) -> bool {
        self.expand(from, path)
            .iter()
            .any(|(prefix, r)| prefix.is_empty() && r.starts_with("var."))
    }
}
