//! Plan mode with the configuration's source (`review PLAN_JSON --source DIR`):
//! one evaluated configuration from both.
//!
//! A plan knows what Terraform knew at plan time: variables, data sources
//! read during planning, the prior state. What it leaves unknown it leaves
//! wholly unknown: a key policy built with `jsonencode(...)` that names a
//! role created in the same plan is `"policy": true` in `after_unknown`,
//! and the `configuration` section keeps only the references inside it.
//! The source keeps the expression: HCL mode evaluates it with the plan's
//! own variable values to the known statements and one unknown with its
//! origin (`aws_iam_role.cross_account_role[0].arn`).
//!
//! Filling is one way: a value the plan knows is never replaced; a value
//! the plan leaves unknown takes what the source knows of it (known parts,
//! unknowns with their origins). A source that is not the one the plan was
//! made from is refused: an instance or a known value the two disagree on
//! names the address and the attribute.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::rules::unknown;

/// What filling did, for the review's summary and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filled {
    /// Attribute values the plan left unknown that the source evaluated
    /// (wholly or in part).
    pub values: Vec<String>,
    /// Unknown values that stay unknown but now carry their origin.
    pub origins: Vec<String>,
    /// Markers whose origin the plan knows, replaced by the plan's value.
    pub resolved: usize,
}

/// Why a source cannot fill a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// How many differences a mismatch message lists.
const SHOWN: usize = 3;

/// The plan's root variables with values, as `(name, value)`, for
/// evaluating the source as the plan did.
pub fn plan_variables(plan: &Value) -> Vec<(String, Value)> {
    plan.get("variables")
        .and_then(Value::as_object)
        .map(|vars| {
            vars.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.get("value")?.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// Fills `plan`'s unknown values from `source` (the plan HCL mode made of
/// the same configuration, with the plan's variables).
pub fn fill(plan: &mut Value, source: &Value) -> Result<Filled, Mismatch> {
    let by_address: HashMap<&str, &Value> = changes(source)
        .iter()
        .filter_map(|rc| Some((rc.get("address")?.as_str()?, rc)))
        .collect();
    let mut filled = Filled::default();
    let mut differences = vec![];
    let mut missing = vec![];
    let Some(rcs) = plan
        .get_mut("resource_changes")
        .and_then(Value::as_array_mut)
    else {
        return Ok(filled);
    };
    for rc in rcs.iter_mut() {
        let address = rc
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let managed = rc.get("mode").and_then(Value::as_str) == Some("managed");
        let Some(change) = rc.get_mut("change").and_then(Value::as_object_mut) else {
            continue;
        };
        let actions: Vec<&str> = change
            .get("actions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let planned = !actions.iter().all(|a| *a == "delete" || *a == "forget");
        let Some(src) = by_address.get(address.as_str()) else {
            // An instance the plan will have that the source does not
            // declare: not the same configuration.
            if managed && planned {
                missing.push(address.clone());
            }
            continue;
        };
        let src_change = &src["change"];
        let src_after = &src_change["after"];
        let src_unknown = &src_change["after_unknown"];
        let src_origins = src_change
            .get("after_origins")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut after = change.remove("after").unwrap_or(Value::Null);
        let mut after_unknown = change.remove("after_unknown").unwrap_or(Value::Null);
        let mut origins = match change.remove("after_origins") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if planned {
            let mut walk = Walk {
                address: &address,
                src_origins: &src_origins,
                origins: &mut origins,
                filled: &mut filled,
                differences: &mut differences,
            };
            walk.node(
                &mut after,
                &mut after_unknown,
                src_after,
                src_unknown,
                &mut vec![],
            );
        }
        change.insert("after".into(), after);
        change.insert("after_unknown".into(), after_unknown);
        if !origins.is_empty() {
            change.insert("after_origins".into(), Value::Object(origins));
        }
    }
    if !missing.is_empty() || !differences.is_empty() {
        let mut parts = vec![];
        if !missing.is_empty() {
            parts.push(format!(
                "the plan has {} the source does not declare",
                shown(&missing)
            ));
        }
        if !differences.is_empty() {
            parts.push(format!("the two differ: {}", shown(&differences)));
        }
        return Err(Mismatch(format!(
            "--source is not the configuration this plan was made from ({}); give the directory `terraform plan` ran in, or leave --source out",
            parts.join("; ")
        )));
    }
    resolve_known_origins(plan, &mut filled);
    Ok(filled)
}

fn shown(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(|x| x.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

fn changes(plan: &Value) -> &[Value] {
    plan.get("resource_changes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// One step of a path into `after`: an attribute or a list index.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path as `after_origins` and messages write it: `aws_key_info.key_arn`
/// (a list of one nested block is entered without an index).
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The origins key of a path: as [`dotted`], without indexes of lists of
/// one block (HCL mode's `after_origins` enters them).
fn origins_key(path: &[Step]) -> String {
    path.iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

struct Walk<'a> {
    address: &'a str,
    src_origins: &'a Map<String, Value>,
    origins: &'a mut Map<String, Value>,
    filled: &'a mut Filled,
    differences: &'a mut Vec<String>,
}

impl Walk<'_> {
    /// The plan's `after`/`after_unknown` at one path against the source's.
    fn node(
        &mut self,
        after: &mut Value,
        unknown: &mut Value,
        src: &Value,
        src_unknown: &Value,
        path: &mut Vec<Step>,
    ) {
        if *unknown == Value::Bool(true) {
            self.fill_unknown(after, unknown, src, src_unknown, path);
            return;
        }
        if *src_unknown == Value::Bool(true) {
            // Known in the plan, not from the source alone (a data source
            // read at plan time, a provider default): the plan's stands.
            return;
        }
        match after {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    let sv = src.get(k).unwrap_or(&Value::Null);
                    let su = src_unknown.get(k).unwrap_or(&Value::Null);
                    let mut u = unknown
                        .get_mut(k)
                        .map(std::mem::take)
                        .unwrap_or(Value::Null);
                    path.push(Step::Key(k.clone()));
                    self.node(v, &mut u, sv, su, path);
                    path.pop();
                    if !u.is_null() {
                        if let Value::Object(um) = unknown {
                            um.insert(k.clone(), u);
                        }
                    }
                }
                // Attributes the plan lists as unknown but not in `after`.
                if let (Value::Object(um), Value::Object(am)) = (&mut *unknown, &mut *after) {
                    let pending: Vec<String> = um
                        .iter()
                        .filter(|(k, v)| **v == Value::Bool(true) && !am.contains_key(*k))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in pending {
                        let mut v = Value::Null;
                        let mut u = Value::Bool(true);
                        path.push(Step::Key(k.clone()));
                        self.fill_unknown(
                            &mut v,
                            &mut u,
                            src.get(&k).unwrap_or(&Value::Null),
                            src_unknown.get(&k).unwrap_or(&Value::Null),
                            path,
                        );
                        path.pop();
                        if u != Value::Bool(true) {
                            am.insert(k.clone(), v);
                            if u.is_null() || u == Value::Bool(false) {
                                um.remove(&k);
                            } else {
                                um.insert(k, u);
                            }
                        }
                    }
                }
            }
            Value::Array(items) => {
                // A set of strings: Terraform orders it, the source may not.
                if let (Some(mut a), Some(mut b)) =
                    (strings(items), src.as_array().and_then(|x| strings(x)))
                {
                    if a.len() == b.len() && !b.iter().any(|t| unknown::contains(t)) {
                        a.sort_unstable();
                        b.sort_unstable();
                        if a != b {
                            self.differences.push(format!(
                                "{}.{} is [{}] in the plan, [{}] from the source",
                                self.address,
                                dotted(path),
                                a.iter()
                                    .map(|x| crate::rules::findings::quote(x))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                b.iter()
                                    .map(|x| crate::rules::findings::quote(x))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            ));
                        }
                        return;
                    }
                }
                for (i, v) in items.iter_mut().enumerate() {
                    let sv = src.get(i).unwrap_or(&Value::Null);
                    let su = src_unknown.get(i).unwrap_or(&Value::Null);
                    let mut u = match unknown {
                        Value::Array(us) => us.get_mut(i).map(std::mem::take).unwrap_or_default(),
                        _ => Value::Null,
                    };
                    path.push(Step::Index(i));
                    self.node(v, &mut u, sv, su, path);
                    path.pop();
                    if let Value::Array(us) = unknown {
                        if let Some(slot) = us.get_mut(i) {
                            *slot = u;
                        }
                    }
                }
            }
            Value::String(s) => {
                // Both known: the same configuration gives the same value
                // (JSON documents compared as documents).
                if let Value::String(t) = src {
                    if !holds_unknown(t) && !same_text(s, t) {
                        self.differences.push(format!(
                            "{}.{} is {} in the plan, {} from the source",
                            self.address,
                            dotted(path),
                            crate::rules::findings::quote(s),
                            crate::rules::findings::quote(t),
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    /// A value the plan leaves unknown: what the source knows of it.
    fn fill_unknown(
        &mut self,
        after: &mut Value,
        unknown: &mut Value,
        src: &Value,
        src_unknown: &Value,
        path: &[Step],
    ) {
        let key = origins_key(path);
        let at = format!("{}.{}", self.address, dotted(path));
        if *src_unknown == Value::Bool(true) || src.is_null() {
            // Unknown in both: keep the source's origin of it, if one.
            if let Some(o) = self.src_origins.get(&key) {
                self.origins.insert(key, o.clone());
                self.filled.origins.push(at);
            }
            return;
        }
        *after = src.clone();
        *unknown = match src_unknown {
            Value::Null | Value::Bool(false) => Value::Null,
            other => other.clone(),
        };
        let prefix = format!("{key}.");
        for (k, o) in self.src_origins {
            if k.starts_with(&prefix) {
                self.origins.insert(k.clone(), o.clone());
            }
        }
        self.filled.values.push(at);
    }
}

/// The elements of a list that holds only strings.
fn strings(items: &[Value]) -> Option<Vec<&str>> {
    items.iter().map(Value::as_str).collect()
}

/// A JSON document (`jsonencode(...)`, a policy) as a value, when the text
/// is one.
fn document(s: &str) -> Option<Value> {
    let t = s.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        .then(|| serde_json::from_str::<Value>(s).ok())
        .flatten()
}

/// Whether a string holds an unknown: in its text, or (escaped by
/// `jsonencode`) in a string of the JSON document it is.
fn holds_unknown(s: &str) -> bool {
    fn any(v: &Value) -> bool {
        match v {
            Value::String(s) => unknown::contains(s),
            Value::Array(a) => a.iter().any(any),
            Value::Object(m) => m.values().any(any),
            _ => false,
        }
    }
    unknown::contains(s) || document(s).is_some_and(|d| any(&d))
}

/// Equal strings, or equal JSON documents however they are spaced and
/// ordered (Terraform's `jsonencode` orders keys; a literal may not).
fn same_text(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (document(a), document(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A marker whose origin the plan knows (`data.aws_caller_identity.current.account_id`,
/// read at plan time) stands for that value: it is replaced by it, in
/// every string of every planned value.
fn resolve_known_origins(plan: &mut Value, filled: &mut Filled) {
    let known = known_strings(plan);
    if known.is_empty() {
        return;
    }
    let Some(rcs) = plan
        .get_mut("resource_changes")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for rc in rcs {
        if let Some(after) = rc.pointer_mut("/change/after") {
            replace_markers(after, &known, filled);
        }
    }
}

fn replace_markers(v: &mut Value, known: &BTreeMap<String, String>, filled: &mut Filled) {
    match v {
        // A JSON document (a `jsonencode` policy) holds its markers escaped:
        // they are replaced in its strings, and the document written again.
        Value::String(s) if !unknown::contains(s) && holds_unknown(s) => {
            if let Some(mut d) = document(s) {
                let before = filled.resolved;
                replace_markers(&mut d, known, filled);
                if filled.resolved != before {
                    *s = d.to_string();
                }
            }
        }
        Value::String(s) if unknown::contains(s) => {
            let mut out = String::new();
            for p in unknown::parts(s) {
                match p {
                    unknown::Part::Text(t) => out.push_str(&t),
                    unknown::Part::Unknown(u) => match known.get(&u.origin) {
                        Some(k) => {
                            out.push_str(k);
                            filled.resolved += 1;
                        }
                        None => out.push_str(&unknown::marker(&u.origin, u.kind)),
                    },
                }
            }
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_markers(x, known, filled)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|x| replace_markers(x, known, filled)),
        _ => {}
    }
}

/// `address.attribute` -> the known string value, of every instance the
/// plan knows: planned values and data sources read during planning.
fn known_strings(plan: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for at in [
        "/prior_state/values/root_module",
        "/planned_values/root_module",
    ] {
        if let Some(m) = plan.pointer(at) {
            collect_known(m, &mut out, 0);
        }
    }
    out
}

const MAX_DEPTH: usize = 64;

fn collect_known(module: &Value, out: &mut BTreeMap<String, String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for r in module
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(address), Some(values)) = (
            r.get("address").and_then(Value::as_str),
            r.get("values").and_then(Value::as_object),
        ) else {
            continue;
        };
        for (k, v) in values {
            if let Value::String(s) = v {
                out.entry(format!("{address}.{k}"))
                    .or_insert_with(|| s.clone());
            }
        }
    }
    for c in module
        .get("child_modules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_known(c, out, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(address: &str, after: Value, unknown: Value) -> Value {
        json!({
            "address": address, "mode": "managed", "type": address.split('.').next().unwrap(),
            "change": { "actions": ["create"], "before": null, "after": after, "after_unknown": unknown }
        })
    }

    fn plan_of(rcs: Vec<Value>) -> Value {
        json!({ "format_version": "1.2", "resource_changes": rcs,
                "planned_values": { "root_module": { "resources": [] } } })
    }

    fn with_origins(mut rc: Value, origins: Value) -> Value {
        rc["change"]["after_origins"] = origins;
        rc
    }

    #[test]
    fn an_unknown_policy_takes_the_sources_known_statements_and_keeps_the_plans_known_values() {
        let role = unknown::marker("aws_iam_role.r[0].arn", unknown::Kind::OwnRoleArn);
        let policy =
            format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{role}"}}}}]}}"#);
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "description": "storage" }),
            json!({ "policy": true, "arn": true }),
        )]);
        let source = plan_of(vec![with_origins(
            rc(
                "aws_kms_key.k",
                json!({ "description": "storage", "policy": policy }),
                json!({ "arn": true }),
            ),
            json!({ "arn": unknown::marker("aws_kms_key.k.arn", unknown::Kind::Any) }),
        )]);
        let filled = fill(&mut plan, &source).unwrap();
        let change = &plan["resource_changes"][0]["change"];
        assert_eq!(change["after"]["policy"], json!(policy));
        assert_eq!(change["after"]["description"], json!("storage"));
        assert_eq!(change["after_unknown"]["arn"], json!(true));
        assert!(change["after_unknown"].get("policy").is_none());
        assert_eq!(filled.values, vec!["aws_kms_key.k.policy".to_string()]);
        assert_eq!(filled.origins, vec!["aws_kms_key.k.arn".to_string()]);
        // The unknown keeps its origin for the rules that compare origins.
        assert!(change["after_origins"]["arn"]
            .as_str()
            .is_some_and(|m| unknown::exact(m).unwrap().origin == "aws_kms_key.k.arn"));
    }

    #[test]
    fn a_known_value_the_source_disagrees_on_is_refused_naming_it() {
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "description": "storage" }),
            json!({}),
        )]);
        let source = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "description": "managed services" }),
            json!({}),
        )]);
        let e = fill(&mut plan, &source).unwrap_err().0;
        assert!(
            e.contains("aws_kms_key.k.description is \"storage\" in the plan, \"managed services\" from the source"),
            "{e}"
        );
        // An instance the source lacks.
        let mut plan = plan_of(vec![rc("aws_kms_key.k", json!({}), json!({}))]);
        let e = fill(&mut plan, &plan_of(vec![])).unwrap_err().0;
        assert!(
            e.contains("the plan has aws_kms_key.k the source does not declare"),
            "{e}"
        );
    }

    #[test]
    fn json_documents_and_sets_compare_by_content_not_by_order() {
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": "{\"a\":1,\"b\":[2]}", "use_cases": ["MANAGED_SERVICES", "STORAGE"] }),
            json!({}),
        )]);
        let source = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": "{ \"b\": [2], \"a\": 1 }", "use_cases": ["STORAGE", "MANAGED_SERVICES"] }),
            json!({}),
        )]);
        fill(&mut plan, &source).unwrap();
        let source = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": "{\"a\":2}", "use_cases": ["STORAGE", "MANAGED_SERVICES"] }),
            json!({}),
        )]);
        assert!(fill(&mut plan, &source).unwrap_err().0.contains("policy"));
    }

    #[test]
    fn a_marker_whose_origin_the_plan_read_becomes_that_value() {
        let me = unknown::marker(
            "data.aws_caller_identity.current.account_id",
            unknown::Kind::OwnAccountId,
        );
        let role = unknown::marker("aws_iam_role.r.arn", unknown::Kind::OwnRoleArn);
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({}),
            json!({ "policy": true }),
        )]);
        plan["prior_state"] = json!({ "values": { "root_module": { "resources": [
            { "address": "data.aws_caller_identity.current", "mode": "data",
              "values": { "account_id": "123456789012" } } ] } } });
        let source = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": format!("arn:aws:iam::{me}:root {role}") }),
            json!({}),
        )]);
        let filled = fill(&mut plan, &source).unwrap();
        assert_eq!(filled.resolved, 1);
        let p = plan["resource_changes"][0]["change"]["after"]["policy"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(p.starts_with("arn:aws:iam::123456789012:root "), "{p}");
        assert_eq!(unknown::unknowns(&p)[0].origin, "aws_iam_role.r.arn");
    }

    #[test]
    fn markers_escaped_inside_a_jsonencode_document_are_seen_and_resolved() {
        let me = unknown::marker(
            "data.aws_caller_identity.current.account_id",
            unknown::Kind::OwnAccountId,
        );
        let role = unknown::marker("aws_iam_role.r.arn", unknown::Kind::OwnRoleArn);
        // As jsonencode writes it: the marks escaped as \u0001.
        let policy = json!({ "Statement": [
            { "Principal": { "AWS": format!("arn:aws:iam::{me}:root") } },
            { "Principal": { "AWS": role } } ] })
        .to_string();
        assert!(!unknown::contains(&policy) && holds_unknown(&policy));
        // The plan knows the policy (no role in it there): not a difference.
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": "{\"Statement\":[]}" }),
            json!({}),
        )]);
        let source = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({ "policy": policy }),
            json!({}),
        )]);
        fill(&mut plan, &source).unwrap();
        // Unknown in the plan: filled, and the account the plan read resolved.
        let mut plan = plan_of(vec![rc(
            "aws_kms_key.k",
            json!({}),
            json!({ "policy": true }),
        )]);
        plan["prior_state"] = json!({ "values": { "root_module": { "resources": [
            { "address": "data.aws_caller_identity.current",
              "values": { "account_id": "123456789012" } } ] } } });
        let filled = fill(&mut plan, &source).unwrap();
        assert_eq!(filled.resolved, 1);
        let p: Value = serde_json::from_str(
            plan["resource_changes"][0]["change"]["after"]["policy"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            p["Statement"][0]["Principal"]["AWS"],
            json!("arn:aws:iam::123456789012:root")
        );
        let r = p["Statement"][1]["Principal"]["AWS"].as_str().unwrap();
        assert_eq!(unknown::exact(r).unwrap().origin, "aws_iam_role.r.arn");
    }

    #[test]
    fn deleted_instances_and_plan_variables() {
        let mut plan = plan_of(vec![json!({
            "address": "aws_kms_key.gone", "mode": "managed", "type": "aws_kms_key",
            "change": { "actions": ["delete"], "before": {}, "after": null }
        })]);
        plan["variables"] = json!({ "region": { "value": "us-east-1" }, "n": { "value": 2 } });
        assert!(fill(&mut plan, &plan_of(vec![])).is_ok());
        assert_eq!(
            plan_variables(&plan),
            vec![
                ("region".to_string(), json!("us-east-1")),
                ("n".to_string(), json!(2))
            ]
        );
    }
}
