//! `terraform providers schema -json`: every attribute and parameter is documented.

use crate::harness::{enabled, Workdir, CMK_HEADER};

fn check_block(where_: &str, block: &serde_json::Value, missing: &mut Vec<String>) {
    if let Some(attrs) = block["attributes"].as_object() {
        for (name, a) in attrs {
            if a["description"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                missing.push(format!("{where_}.{name}"));
            }
            if let Some(nested) = a.get("nested_type") {
                check_block(&format!("{where_}.{name}"), nested, missing);
            }
        }
    }
    if let Some(blocks) = block["block_types"].as_object() {
        for (name, b) in blocks {
            check_block(&format!("{where_}.{name}"), &b["block"], missing);
        }
    }
}

#[test]
fn every_attribute_and_function_parameter_has_a_description() {
    if !enabled("every_attribute_and_function_parameter_has_a_description") {
        return;
    }
    let w = Workdir::new(CMK_HEADER);
    let v = w.json(&["providers", "schema", "-json"]);
    let p = &v["provider_schemas"]["registry.terraform.io/databricks-cmk/cmk"];
    assert!(p.is_object(), "provider missing from schema output: {v}");
    let mut missing = vec![];
    let mut seen = 0;
    for kind in ["resource_schemas", "data_source_schemas"] {
        for (name, s) in p[kind].as_object().into_iter().flatten() {
            seen += 1;
            if s["block"]["description"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                missing.push(format!("{name} (type description)"));
            }
            check_block(name, &s["block"], &mut missing);
        }
    }
    assert!(p["data_source_schemas"]["cmk_kms_key_policy"].is_object());
    let functions = p["functions"].as_object().expect("functions");
    assert!(functions.contains_key("key_features") && functions.contains_key("parse_key_arn"));
    for (name, f) in functions {
        seen += 1;
        for key in ["summary", "description"] {
            if f[key].as_str().unwrap_or_default().is_empty() {
                missing.push(format!("function {name} {key}"));
            }
        }
        for param in f["parameters"].as_array().into_iter().flatten() {
            if param["description"].as_str().unwrap_or_default().is_empty() {
                missing.push(format!("function {name} parameter {}", param["name"]));
            }
        }
    }
    assert!(seen >= 3);
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
