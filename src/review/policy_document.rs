//! `data "aws_iam_policy_document"`, computed as the AWS provider computes
//! it, without any cloud call: `statement` blocks (`sid`, `effect`,
//! `actions` / `not_actions`, `resources` / `not_resources`, `principals`
//! / `not_principals`, `condition`), `policy_id`, `version`, and the
//! layering of `source_policy_documents` (merged first; their statements'
//! sids are unique) and `override_policy_documents` (a statement with a
//! non-blank sid replaces the earlier one with that sid; the others are
//! appended), as the provider's documentation describes.
//!
//! Values not known until apply stay in the document as markers
//! ([`crate::rules::unknown`]): the key policy rules decide what does not
//! depend on them.

use serde_json::{json, Map, Value};

/// A list or a single string, as the provider writes one value: a list of
/// one element becomes the string.
fn one_or_list(v: &Value) -> Option<Value> {
    let list: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::String(_) => vec![v.clone()],
        Value::Null => return None,
        _ => return None,
    };
    if list.is_empty() {
        return None;
    }
    let mut list: Vec<Value> = list;
    // The provider sorts sets of strings; order does not change a policy's
    // meaning, and sorting keeps the output stable.
    list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    list.dedup();
    Some(if list.len() == 1 {
        list.remove(0)
    } else {
        Value::Array(list)
    })
}

/// `principals { type identifiers }` blocks as a `Principal` value.
fn principals(blocks: &Value) -> Option<Value> {
    let blocks = blocks.as_array()?;
    if blocks.is_empty() {
        return None;
    }
    let mut by_type: Map<String, Value> = Map::new();
    for b in blocks {
        let t = b.get("type")?.as_str()?.to_string();
        let ids = b.get("identifiers")?.as_array()?.clone();
        if t == "*" {
            return Some(json!("*"));
        }
        let e = by_type.entry(t).or_insert_with(|| json!([]));
        if let Value::Array(a) = e {
            a.extend(ids);
        }
    }
    let out: Map<String, Value> = by_type
        .into_iter()
        .filter_map(|(t, ids)| Some((t, one_or_list(&ids)?)))
        .collect();
    Some(Value::Object(out))
}

/// One `statement` block as a policy statement; `None` when a part of it
/// is not in the known shape.
fn statement(s: &Value) -> Option<Value> {
    let mut out = Map::new();
    if let Some(sid) = s.get("sid").and_then(Value::as_str) {
        if !sid.is_empty() {
            out.insert("Sid".into(), json!(sid));
        }
    }
    let effect = match s.get("effect") {
        None | Some(Value::Null) => "Allow",
        Some(Value::String(e)) => e.as_str(),
        Some(_) => return None,
    };
    out.insert("Effect".into(), json!(effect));
    for (arg, key) in [
        ("actions", "Action"),
        ("not_actions", "NotAction"),
        ("resources", "Resource"),
        ("not_resources", "NotResource"),
    ] {
        if let Some(v) = s.get(arg).and_then(one_or_list) {
            out.insert(key.into(), v);
        }
    }
    for (arg, key) in [
        ("principals", "Principal"),
        ("not_principals", "NotPrincipal"),
    ] {
        if let Some(b) = s.get(arg) {
            if let Some(p) = principals(b) {
                out.insert(key.into(), p);
            } else if b.as_array().is_some_and(|a| !a.is_empty()) {
                return None;
            }
        }
    }
    if let Some(Value::Array(conds)) = s.get("condition") {
        let mut c: Map<String, Value> = Map::new();
        for cond in conds {
            let test = cond.get("test")?.as_str()?;
            let variable = cond.get("variable")?.as_str()?;
            let values = one_or_list(cond.get("values")?)?;
            if let Value::Object(m) = c.entry(test.to_string()).or_insert_with(|| json!({})) {
                m.insert(variable.to_string(), values);
            }
        }
        if !c.is_empty() {
            out.insert("Condition".into(), Value::Object(c));
        }
    }
    Some(Value::Object(out))
}

fn sid_of(s: &Value) -> Option<&str> {
    s.get("Sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Statements of `later` replace those of `into` with the same non-blank
/// sid; the others are appended.
fn layer(into: &mut Vec<Value>, later: Vec<Value>) {
    for s in later {
        match sid_of(&s).and_then(|sid| into.iter().position(|x| sid_of(x) == Some(sid))) {
            Some(i) => into[i] = s,
            None => into.push(s),
        }
    }
}

/// The statements of a JSON policy document given as a string.
fn statements_of(doc: &Value) -> Option<Vec<Value>> {
    let text = doc.as_str()?;
    let v: Value = serde_json::from_str(text).ok()?;
    match v.get("Statement") {
        Some(Value::Array(a)) => Some(a.clone()),
        Some(o @ Value::Object(_)) => Some(vec![o.clone()]),
        None => Some(vec![]),
        _ => None,
    }
}

/// The `json` the data source computes from its evaluated arguments (the
/// blocks as lists of objects); `None` when an argument it needs is not in
/// a shape it knows (then the document stays unknown).
pub fn document(args: &Value) -> Option<String> {
    let mut statements: Vec<Value> = vec![];
    if let Some(sources) = args.get("source_policy_documents") {
        for d in sources.as_array()? {
            statements.extend(statements_of(d)?);
        }
    }
    let own: Vec<Value> = match args.get("statement") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().map(statement).collect::<Option<_>>()?,
        Some(_) => return None,
    };
    layer(&mut statements, own);
    if let Some(overrides) = args.get("override_policy_documents") {
        for d in overrides.as_array()? {
            layer(&mut statements, statements_of(d)?);
        }
    }
    let mut doc = Map::new();
    let version = match args.get("version") {
        Some(Value::String(v)) => v.clone(),
        None | Some(Value::Null) => "2012-10-17".to_string(),
        Some(_) => return None,
    };
    doc.insert("Version".into(), json!(version));
    if let Some(Value::String(id)) = args.get("policy_id") {
        doc.insert("Id".into(), json!(id));
    }
    doc.insert("Statement".into(), Value::Array(statements));
    serde_json::to_string(&Value::Object(doc)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_principals_and_conditions_as_the_provider_writes_them() {
        let args = json!({
            "policy_id": "key-policy",
            "statement": [
                {"sid": "Owner", "actions": ["kms:*"], "resources": ["*"],
                 "principals": [{"type": "AWS", "identifiers": ["arn:aws:iam::123456789012:root"]}]},
                {"sid": "Databricks", "effect": "Allow", "actions": ["kms:Encrypt", "kms:Decrypt"],
                 "resources": ["*"],
                 "principals": [{"type": "AWS", "identifiers": ["arn:aws:iam::414351767826:root"]}],
                 "condition": [{"test": "StringEquals", "variable": "aws:PrincipalTag/DatabricksAccountId",
                                "values": ["acct"]}]}
            ]
        });
        let doc: Value = serde_json::from_str(&document(&args).unwrap()).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(doc["Id"], "key-policy");
        assert_eq!(
            doc["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:root"
        );
        assert_eq!(doc["Statement"][0]["Action"], "kms:*");
        assert_eq!(
            doc["Statement"][1]["Action"],
            json!(["kms:Decrypt", "kms:Encrypt"])
        );
        assert_eq!(
            doc["Statement"][1]["Condition"]["StringEquals"]
                ["aws:PrincipalTag/DatabricksAccountId"],
            "acct"
        );
    }

    #[test]
    fn source_and_override_documents_merge_by_sid() {
        let source = json!({"Statement": [
            {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
            {"Sid": "B", "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}
        ]})
        .to_string();
        let over = json!({"Statement": [
            {"Sid": "B", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
            {"Effect": "Allow", "Principal": "*", "Action": "kms:List*", "Resource": "*"}
        ]})
        .to_string();
        let args = json!({
            "source_policy_documents": [source],
            "override_policy_documents": [over],
            "statement": [{"sid": "A", "actions": ["kms:*"], "resources": ["*"],
                           "principals": [{"type": "*", "identifiers": ["*"]}]}]
        });
        let doc: Value = serde_json::from_str(&document(&args).unwrap()).unwrap();
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(
            st[0]["Action"], "kms:*",
            "the document's own A replaces the source's"
        );
        assert_eq!(st[0]["Principal"], "*");
        assert_eq!(st[1]["Effect"], "Deny", "the override's B replaces B");
        assert_eq!(
            st[2]["Action"], "kms:List*",
            "a statement without sid is appended"
        );
    }

    #[test]
    fn a_shape_it_does_not_know_stays_unknown() {
        assert_eq!(document(&json!({"statement": "x"})), None);
        assert_eq!(
            document(&json!({"source_policy_documents": ["not json"]})),
            None
        );
    }
}
