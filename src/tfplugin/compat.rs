//! Schema compatibility between releases.
//!
//! A provider's schemas are rendered in the shape of `terraform providers
//! schema -json` ([`provider_json`]), normalized to what decides
//! compatibility ([`normalize`]: descriptions and other text dropped). The
//! schema of the last release is kept in that form, and [`compare`] says
//! what in the current one would break a configuration or a stored state
//! written for it: a resource type, attribute or block removed, a type or
//! a nesting changed, an optional argument made required or no longer
//! settable, a new required argument or block. A resource whose schema
//! version was raised above the recorded one, with state upgraders from
//! that version, may change its attributes (its upgraders carry the old
//! state over). Knows nothing of any cloud.

use serde_json::{json, Map, Value as J};

use super::provider::Provider;
use super::schema::{AttrType, Attribute, Block, Nesting, Schema};
use super::server::ProviderServer;

fn nesting(n: Nesting) -> &'static str {
    match n {
        Nesting::Single => "single",
        Nesting::List => "list",
        Nesting::Set => "set",
        Nesting::Map => "map",
    }
}

fn attribute_json(a: &Attribute) -> J {
    let mut o = Map::new();
    match &a.ty {
        AttrType::Primitive(t) => {
            let bytes = t.to_json_bytes();
            o.insert(
                "type".into(),
                serde_json::from_slice(&bytes).unwrap_or(J::Null),
            );
        }
        AttrType::Nested {
            nesting: n,
            attributes,
        } => {
            o.insert(
                "nested_type".into(),
                json!({
                    "attributes": attributes
                        .iter()
                        .map(|a| (a.name.clone(), attribute_json(a)))
                        .collect::<Map<_, _>>(),
                    "nesting_mode": nesting(*n),
                }),
            );
        }
    }
    o.insert("description".into(), J::from(a.description_with_default()));
    o.insert("description_kind".into(), J::from("markdown"));
    let f = &a.flags;
    for (name, on) in [
        ("deprecated", f.deprecated),
        ("required", f.required),
        ("optional", f.optional),
        ("computed", f.computed),
        ("sensitive", f.sensitive),
        ("write_only", f.write_only),
    ] {
        if on {
            o.insert(name.into(), J::Bool(true));
        }
    }
    J::Object(o)
}

fn block_json(b: &Block) -> J {
    let mut o = Map::new();
    if !b.attributes.is_empty() {
        o.insert(
            "attributes".into(),
            J::Object(
                b.attributes
                    .iter()
                    .map(|a| (a.name.clone(), attribute_json(a)))
                    .collect(),
            ),
        );
    }
    if !b.blocks.is_empty() {
        let mut blocks = Map::new();
        for nb in &b.blocks {
            let mut x = Map::new();
            x.insert("nesting_mode".into(), J::from(nesting(nb.nesting)));
            x.insert("block".into(), block_json(&nb.block));
            if nb.min_items > 0 {
                x.insert("min_items".into(), J::from(nb.min_items));
            }
            if nb.max_items > 0 {
                x.insert("max_items".into(), J::from(nb.max_items));
            }
            blocks.insert(nb.name.clone(), J::Object(x));
        }
        o.insert("block_types".into(), J::Object(blocks));
    }
    if !b.description.is_empty() {
        o.insert("description".into(), J::from(b.description.clone()));
    }
    o.insert("description_kind".into(), J::from("markdown"));
    J::Object(o)
}

/// One schema as `terraform providers schema -json` shows it.
pub fn schema_json(s: &Schema) -> J {
    json!({ "version": s.version, "block": block_json(&s.block) })
}

/// The provider's schemas as `terraform providers schema -json` shows them
/// under `provider_schemas.<address>` (functions left out).
pub fn provider_json<P: Provider>(server: &ProviderServer<P>) -> J {
    json!({
        "provider": schema_json(server.provider_schema()),
        "resource_schemas": server
            .resource_schemas()
            .map(|(k, s)| (k.to_string(), schema_json(s)))
            .collect::<Map<_, _>>(),
        "data_source_schemas": server
            .data_source_schemas()
            .map(|(k, s)| (k.to_string(), schema_json(s)))
            .collect::<Map<_, _>>(),
    })
}

/// What decides compatibility, of a provider's schemas in the shape of
/// `terraform providers schema -json` (one provider's entry): descriptions,
/// deprecation and functions dropped; everything else kept.
pub fn normalize(provider: &J) -> J {
    // Keys sorted, so that the recorded file reads the same every time.
    fn strip(j: &J) -> J {
        match j {
            J::Object(m) => {
                let mut keys: Vec<&String> = m
                    .keys()
                    .filter(|k| {
                        !matches!(
                            k.as_str(),
                            "description" | "description_kind" | "deprecated"
                        )
                    })
                    .collect();
                keys.sort();
                J::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), strip(&m[k])))
                        .collect(),
                )
            }
            J::Array(a) => J::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let mut out = Map::new();
    for key in ["provider", "resource_schemas", "data_source_schemas"] {
        out.insert(key.into(), strip(provider.get(key).unwrap_or(&J::Null)));
    }
    J::Object(out)
}

fn flag(a: &J, name: &str) -> bool {
    a.get(name).and_then(J::as_bool).unwrap_or(false)
}

fn map<'a>(j: &'a J, key: &str) -> impl Iterator<Item = (&'a String, &'a J)> {
    j.get(key).and_then(J::as_object).into_iter().flatten()
}

fn settable(a: &J) -> bool {
    flag(a, "required") || flag(a, "optional")
}

/// Compares two attribute lists (`attributes` maps) at `at`.
fn compare_attributes(at: &str, old: &J, new: &J, out: &mut Vec<String>) {
    let name_at = |n: &str| {
        if at.is_empty() {
            n.to_string()
        } else {
            format!("{at}.{n}")
        }
    };
    for (name, o) in map(old, "attributes") {
        let path = name_at(name);
        let Some(n) = new.get("attributes").and_then(|a| a.get(name)) else {
            out.push(format!("attribute `{path}` was removed"));
            continue;
        };
        match (o.get("type"), n.get("type")) {
            (Some(a), Some(b)) if a != b => {
                out.push(format!("attribute `{path}` changed type from {a} to {b}"))
            }
            _ => {}
        }
        match (o.get("nested_type"), n.get("nested_type")) {
            (Some(_), None) | (None, Some(_)) => out.push(format!(
                "attribute `{path}` changed between a nested attribute and a primitive one"
            )),
            (Some(a), Some(b)) => {
                let (ma, mb) = (&a["nesting_mode"], &b["nesting_mode"]);
                if ma != mb {
                    out.push(format!(
                        "attribute `{path}` changed nesting from {ma} to {mb}"
                    ));
                }
                compare_attributes(&path, a, b, out);
            }
            (None, None) => {}
        }
        if flag(o, "optional") && flag(n, "required") {
            out.push(format!(
                "attribute `{path}` changed from optional to required"
            ));
        }
        if settable(o) && !settable(n) {
            out.push(format!(
                "attribute `{path}` is no longer an argument (it is computed only)"
            ));
        }
    }
    for (name, n) in map(new, "attributes") {
        if flag(n, "required") && old.get("attributes").and_then(|a| a.get(name)).is_none() {
            out.push(format!("new required argument `{}`", name_at(name)));
        }
    }
}

/// Compares two blocks (`block` objects) at `at`.
fn compare_block(at: &str, old: &J, new: &J, out: &mut Vec<String>) {
    compare_attributes(at, old, new, out);
    let name_at = |n: &str| {
        if at.is_empty() {
            n.to_string()
        } else {
            format!("{at}.{n}")
        }
    };
    for (name, o) in map(old, "block_types") {
        let path = name_at(name);
        let Some(n) = new.get("block_types").and_then(|b| b.get(name)) else {
            out.push(format!("block `{path}` was removed"));
            continue;
        };
        let (ma, mb) = (&o["nesting_mode"], &n["nesting_mode"]);
        if ma != mb {
            out.push(format!("block `{path}` changed nesting from {ma} to {mb}"));
        }
        let min = |b: &J| b.get("min_items").and_then(J::as_i64).unwrap_or(0);
        if min(n) > min(o) {
            out.push(format!(
                "block `{path}` needs at least {} (before: {})",
                min(n),
                min(o)
            ));
        }
        compare_block(&path, &o["block"], &n["block"], out);
    }
    for (name, n) in map(new, "block_types") {
        let min = n.get("min_items").and_then(J::as_i64).unwrap_or(0);
        if min > 0 && old.get("block_types").and_then(|b| b.get(name)).is_none() {
            out.push(format!("new required block `{}`", name_at(name)));
        }
    }
}

/// What in `new` breaks what was written for `old` (both [`normalize`]d),
/// one line each, naming the resource (or data source, or the provider
/// block) and the attribute. `upgrades_from(resource, version)`: whether
/// the current provider upgrades that resource's state of `version`.
pub fn compare(old: &J, new: &J, upgrades_from: impl Fn(&str, i64) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let one = |what: String, o: &J, n: &J, out: &mut Vec<String>| {
        let mut found = Vec::new();
        compare_block("", &o["block"], &n["block"], &mut found);
        out.extend(found.into_iter().map(|f| format!("{what}: {f}")));
    };
    one(
        "provider".into(),
        &old["provider"],
        &new["provider"],
        &mut out,
    );
    for (name, o) in map(old, "data_source_schemas") {
        match new["data_source_schemas"].get(name) {
            None => out.push(format!("data source {name} was removed")),
            Some(n) => one(format!("data source {name}"), o, n, &mut out),
        }
    }
    for (name, o) in map(old, "resource_schemas") {
        let Some(n) = new["resource_schemas"].get(name) else {
            out.push(format!("resource {name} was removed"));
            continue;
        };
        let (vo, vn) = (
            o["version"].as_i64().unwrap_or(0),
            n["version"].as_i64().unwrap_or(0),
        );
        if vn < vo {
            out.push(format!(
                "resource {name}: schema version went down from {vo} to {vn}"
            ));
            continue;
        }
        let mut found = Vec::new();
        one(format!("resource {name}"), o, n, &mut found);
        if found.is_empty() {
            continue;
        }
        if vn > vo && upgrades_from(name, vo) {
            // The upgraders carry state of the recorded version over.
            continue;
        }
        let why = if vn > vo {
            format!(" (schema version {vn} has no state upgrade from the recorded version {vo})")
        } else {
            format!(" (schema version still {vo}: raise it and add a state upgrader)")
        };
        out.extend(found.into_iter().map(|f| format!("{f}{why}")));
    }
    out
}
