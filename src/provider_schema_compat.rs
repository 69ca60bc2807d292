//! The current schema against the last release's
//! (tests/fixtures/schema/0.1.0.json, see its README): compatible, and the
//! check catches the changes that would break what users wrote.

use serde_json::{json, Value as J};

use crate::provider::CmkProvider;
use crate::tfplugin::compat::{compare, normalize, provider_json};
use crate::tfplugin::server::ProviderServer;

const RELEASED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/schema/0.1.0.json"
));

fn released() -> J {
    serde_json::from_str(RELEASED).expect("tests/fixtures/schema/0.1.0.json is JSON")
}

fn current() -> (ProviderServer<CmkProvider>, J) {
    let server = ProviderServer::new(CmkProvider);
    let j = normalize(&provider_json(&server));
    (server, j)
}

/// No state upgrade anywhere.
fn no_upgrades(_: &str, _: i64) -> bool {
    false
}

#[test]
fn the_current_schema_is_compatible_with_the_last_release() {
    let (server, now) = current();
    let problems = compare(&released(), &now, |r, v| {
        server.resource_upgrades_from(r, v)
    });
    assert!(
        problems.is_empty(),
        "incompatible with 0.1.0:\n{}",
        problems.join("\n")
    );
    // The recorded file is normalized (nothing but what decides compatibility).
    assert_eq!(normalize(&released()), released());
}

#[test]
fn every_resource_raised_its_version_and_upgrades_the_released_state() {
    let (server, now) = current();
    for (name, old) in released()["resource_schemas"].as_object().unwrap() {
        let (vo, vn) = (
            old["version"].as_i64().unwrap(),
            now["resource_schemas"][name]["version"].as_i64().unwrap(),
        );
        assert_eq!((vo, vn), (0, 1), "{name}");
        assert!(server.resource_upgrades_from(name, 0), "{name}");
        assert!(!server.resource_upgrades_from(name, 2), "{name}");
        // The block the upgrade is for is new, optional, and not in 0.1.0.
        assert!(old["block"]["block_types"].get("timeouts").is_none());
        let t = &now["resource_schemas"][name]["block"]["block_types"]["timeouts"];
        assert_eq!(t["nesting_mode"], "single", "{name}");
        for op in ["create", "read", "update", "delete"] {
            assert_eq!(
                t["block"]["attributes"][op]["optional"], true,
                "{name}.{op}"
            );
            assert_eq!(
                t["block"]["attributes"][op]["type"], "string",
                "{name}.{op}"
            );
        }
    }
}

/// The released schema with one change made by `f`.
fn changed(f: impl FnOnce(&mut J)) -> J {
    let mut j = released();
    f(&mut j);
    j
}

#[test]
fn a_removed_attribute_is_caught_unless_the_version_is_raised_with_an_upgrader() {
    // The deliberate incompatible change: cmk_kms_key loses `alias`.
    let removed = changed(|j| {
        j["resource_schemas"]["cmk_kms_key"]["block"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("alias");
    });
    let problems = compare(&released(), &removed, no_upgrades);
    assert_eq!(
        problems,
        vec!["resource cmk_kms_key: attribute `alias` was removed (schema version still 0: raise it and add a state upgrader)"]
    );
    // Raised, but no upgrader from 0: still caught.
    let mut raised = removed.clone();
    raised["resource_schemas"]["cmk_kms_key"]["version"] = json!(1);
    let problems = compare(&released(), &raised, no_upgrades);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("no state upgrade from the recorded version 0"),
        "{problems:?}"
    );
    // Raised, with an upgrader from 0: accepted.
    assert!(compare(&released(), &raised, |r, v| r == "cmk_kms_key" && v == 0).is_empty());
}

#[test]
fn a_new_optional_attribute_is_compatible() {
    let added = changed(|j| {
        j["resource_schemas"]["cmk_workspace_binding"]["block"]["attributes"]["note"] =
            json!({"type": "string", "optional": true});
        j["data_source_schemas"]["cmk_kms_key_policy"]["block"]["attributes"]["extra"] =
            json!({"type": "bool", "optional": true, "computed": true});
    });
    assert_eq!(
        compare(&released(), &added, no_upgrades),
        Vec::<String>::new()
    );
}

#[test]
fn type_required_nesting_and_block_changes_are_caught_naming_the_attribute() {
    let now = changed(|j| {
        let r = &mut j["resource_schemas"];
        r["cmk_kms_key"]["block"]["attributes"]["deletion_window_in_days"]["type"] =
            json!("string");
        let alias = &mut r["cmk_kms_key"]["block"]["attributes"]["alias"];
        alias.as_object_mut().unwrap().remove("optional");
        alias["required"] = json!(true);
        r["cmk_kms_key"]["block"]["attributes"]["owner"] =
            json!({"type": "string", "required": true});
        let info =
            &mut r["cmk_key_configuration"]["block"]["attributes"]["aws_key_info"]["nested_type"];
        info["nesting_mode"] = json!("list");
        info["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("key_alias");
        r["cmk_workspace_binding"]["block"]["attributes"]["required_coverage"]
            .as_object_mut()
            .unwrap()
            .remove("optional");
        r["cmk_workspace_binding"]["block"]["attributes"]["required_coverage"]["computed"] =
            json!(true);
        r["cmk_workspace_binding"]["block"]["block_types"] =
            json!({"rule": {"nesting_mode": "list", "min_items": 1, "block": {}}});
        j["provider"]["block"]["attributes"]["host"]["type"] = json!("number");
        j["data_source_schemas"]
            .as_object_mut()
            .unwrap()
            .remove("cmk_workspace");
    });
    let problems = compare(&released(), &now, no_upgrades);
    let expect = [
        "provider: attribute `host` changed type from \"string\" to \"number\"",
        "data source cmk_workspace was removed",
        "resource cmk_kms_key: attribute `deletion_window_in_days` changed type from \"number\" to \"string\"",
        "resource cmk_kms_key: attribute `alias` changed from optional to required",
        "resource cmk_kms_key: new required argument `owner`",
        "resource cmk_key_configuration: attribute `aws_key_info` changed nesting from \"single\" to \"list\"",
        "resource cmk_key_configuration: attribute `aws_key_info.key_alias` was removed",
        "resource cmk_workspace_binding: attribute `required_coverage` is no longer an argument (it is computed only)",
        "resource cmk_workspace_binding: new required block `rule`",
    ];
    for e in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in:\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(problems.len(), expect.len(), "{}", problems.join("\n"));
}
