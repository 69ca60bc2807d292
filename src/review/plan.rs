//! Reading `terraform show -json PLANFILE`: resources with their planned
//! values, unknown markers, prior values and configuration references.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::rules::Fact;

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
    let mut out = String::new();
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
}

/// Why a plan cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the input is not JSON: {0}")]
    NotJson(String),
    #[error("the input is not the output of `terraform show -json PLANFILE`: {0}")]
    NotAPlan(String),
}

impl Plan {
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PlanError::NotJson(e.to_string()))?;
        Plan::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Plan, PlanError> {
        let Some(o) = v.as_object() else {
            return Err(PlanError::NotAPlan("expected a JSON object".into()));
        };
        if !o.contains_key("format_version")
            || !(o.contains_key("planned_values") || o.contains_key("resource_changes"))
        {
            return Err(PlanError::NotAPlan(
                "expected \"format_version\" and \"planned_values\" or \"resource_changes\" (run `terraform show -json PLANFILE`)".into(),
            ));
        }
        let mut plan = Plan::default();
        let mut seen = std::collections::BTreeSet::new();
        if let Some(Value::Array(rcs)) = o.get("resource_changes") {
            for rc in rcs {
                let Some(address) = rc.get("address").and_then(Value::as_str) else {
                    continue;
                };
                let change = rc.get("change").cloned().unwrap_or(Value::Null);
                let res = Res {
                    address: address.to_string(),
                    config_address: strip_index(address),
                    mode: rc
                        .get("mode")
                        .and_then(Value::as_str)
                        .unwrap_or("managed")
                        .to_string(),
                    rtype: rc
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    after: change.get("after").cloned().unwrap_or(Value::Null),
                    after_unknown: change.get("after_unknown").cloned().unwrap_or(Value::Null),
                    before: change.get("before").cloned().unwrap_or(Value::Null),
                    actions: change
                        .get("actions")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                if seen.insert(res.address.clone()) {
                    plan.resources.push(res);
                }
            }
        }
        let mut extra = vec![];
        if let Some(m) = o.get("planned_values").and_then(|p| p.get("root_module")) {
            collect_module(m, &mut extra, 0);
        }
        if let Some(m) = o
            .get("prior_state")
            .and_then(|p| p.get("values"))
            .and_then(|p| p.get("root_module"))
        {
            let mut prior = vec![];
            collect_module(m, &mut prior, 0);
            // Data sources read during planning appear only in the prior state.
            extra.extend(prior.into_iter().filter(|r| r.mode == "data"));
        }
        for r in extra {
            if seen.insert(r.address.clone()) {
                plan.resources.push(r);
            }
        }
        if let Some(m) = o.get("configuration").and_then(|c| c.get("root_module")) {
            collect_config(m, "", &mut plan.references, 0);
        }
        Ok(plan)
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
    /// expression at `path`, in the module of `from`.
    pub fn resolve_whole(&self, from: &Res, path: &str) -> Vec<&Res> {
        let prefix = module_prefix(&from.config_address);
        let mut out: Vec<&Res> = vec![];
        for r in self.refs(from, path) {
            let full = strip_index(&format!("{prefix}{r}"));
            for res in &self.resources {
                if res.config_address == full && !out.iter().any(|x| x.address == res.address) {
                    out.push(res);
                }
            }
        }
        out
    }

    /// Resolves references to (resource, attribute) pairs among the plan's
    /// resources, in the module of `from`.
    pub fn resolve(&self, from: &Res, path: &str) -> Vec<(&Res, String)> {
        let prefix = module_prefix(&from.config_address);
        let mut out: Vec<(&Res, String)> = vec![];
        for r in self.refs(from, path) {
            let full = strip_index(&format!("{prefix}{r}"));
            for res in &self.resources {
                let a = &res.config_address;
                if let Some(rest) = full.strip_prefix(a.as_str()) {
                    if let Some(attr) = rest.strip_prefix('.') {
                        if !out
                            .iter()
                            .any(|(x, at)| x.address == res.address && at == attr)
                        {
                            out.push((res, attr.to_string()));
                        }
                    }
                }
            }
        }
        out
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

fn collect_module(m: &Value, out: &mut Vec<Res>, depth: usize) {
    if depth > 32 {
        return;
    }
    if let Some(Value::Array(rs)) = m.get("resources") {
        for r in rs {
            let Some(address) = r.get("address").and_then(Value::as_str) else {
                continue;
            };
            out.push(Res {
                address: address.to_string(),
                config_address: strip_index(address),
                mode: r
                    .get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("managed")
                    .to_string(),
                rtype: r
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                after: r.get("values").cloned().unwrap_or(Value::Null),
                after_unknown: Value::Null,
                before: r.get("values").cloned().unwrap_or(Value::Null),
                actions: vec!["no-op".to_string()],
            });
        }
    }
    if let Some(Value::Array(cs)) = m.get("child_modules") {
        for c in cs {
            collect_module(c, out, depth + 1);
        }
    }
}

fn collect_config(
    m: &Value,
    prefix: &str,
    out: &mut BTreeMap<String, BTreeMap<String, Vec<String>>>,
    depth: usize,
) {
    if depth > 32 {
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
            out.insert(format!("{prefix}{address}"), attrs);
        }
    }
    if let Some(Value::Object(calls)) = m.get("module_calls") {
        for (name, call) in calls {
            if let Some(child) = call.get("module") {
                collect_config(child, &format!("{prefix}module.{name}."), out, depth + 1);
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
