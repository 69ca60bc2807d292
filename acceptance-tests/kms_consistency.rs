//! `cmk_kms_key` against a KMS whose reads lag its writes (moto behind the
//! project's lagging proxy, `tests/support/kms_lag_proxy.rs`), through the
//! real Terraform CLI: every apply succeeds, every re-plan is empty, and no
//! key is ever made that the state does not hold.

use std::time::Duration;

use crate::harness::{enabled, Out, Workdir, CMK_HEADER};
use crate::kms_lag_proxy::LagProxy;
use crate::moto_server::MotoServer;

/// The lag of the proxy: KMS's reads show a write this late (2 s, as in
/// issue 19; `CMK_KMS_LAG_MS` changes it).
fn lag() -> Duration {
    Duration::from_millis(
        std::env::var("CMK_KMS_LAG_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}

fn tf(w: &Workdir, m: &MotoServer, args: &[&str]) -> Out {
    let o = w
        .command(args)
        .envs(m.env())
        .env("AWS_ENDPOINT_URL_STS", &m.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run terraform");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn apply(w: &Workdir, m: &MotoServer) -> Out {
    tf(
        w,
        m,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    )
}

fn assert_replan_empty(w: &Workdir, m: &MotoServer, when: &str) {
    let r = tf(
        w,
        m,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(r.code, 0, "re-plan {when} is empty:\n{}", r.all());
}

fn config(p: &LagProxy, body: &str) -> String {
    format!(
        "{CMK_HEADER}\nprovider \"cmk\" {{\n  aws_region   = \"us-east-1\"\n  kms_endpoint = \"{}\"\n}}\n\n{body}\n",
        p.endpoint
    )
}

/// What moto holds (asked directly, without the lag): per key its state,
/// aliases, tags (raw, the provider's create token included), rotation,
/// description and policy.
fn held(m: &MotoServer) -> Vec<serde_json::Value> {
    let out = m.boto3(
        "us-east-1",
        "out = []\n\
         for k in kms.list_keys()['Keys']:\n\
         \x20   i = k['KeyId']\n\
         \x20   md = kms.describe_key(KeyId=i)['KeyMetadata']\n\
         \x20   out.append({'id': i, 'state': md['KeyState'], 'desc': md.get('Description', ''),\n\
         \x20     'aliases': sorted(a['AliasName'] for a in kms.list_aliases(KeyId=i)['Aliases']),\n\
         \x20     'tags': {t['TagKey']: t['TagValue'] for t in kms.list_resource_tags(KeyId=i)['Tags']},\n\
         \x20     'rotation': kms.get_key_rotation_status(KeyId=i)['KeyRotationEnabled'],\n\
         \x20     'policy': json.loads(kms.get_key_policy(KeyId=i, PolicyName='default')['Policy'])})\n\
         print(json.dumps(out))",
    );
    serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("moto's keys as JSON")
}

/// Keys KMS still holds: a key scheduled for deletion (PendingDeletion) is
/// on its way out and is not counted.
fn live(keys: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    keys.iter()
        .filter(|k| k["state"] != "PendingDeletion")
        .collect()
}

fn ten_keys(p: &LagProxy, stage: &str, tags: &str, dbx_account: &str) -> String {
    config(
        p,
        &format!(
            r#"data "cmk_kms_key_policy" "p" {{
  use_cases             = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id        = "123456789012"
  databricks_account_id = "{dbx_account}"
}}

resource "cmk_kms_key" "k" {{
  count                 = 10
  use_cases             = ["MANAGED_SERVICES", "STORAGE"]
  databricks_account_id = "{dbx_account}"
  policy                = data.cmk_kms_key_policy.p.json
  alias                 = "alias/lag-${{count.index}}"
  description           = "{stage} ${{count.index}}"
  enable_key_rotation   = true
  deletion_protection   = false
  tags                  = {tags}
}}"#
        ),
    )
}

#[test]
fn ten_kms_keys_through_a_lagging_kms_apply_update_and_replan_empty() {
    if !enabled("ten_kms_keys_through_a_lagging_kms_apply_update_and_replan_empty") {
        return;
    }
    let m = MotoServer::start();
    let p = LagProxy::start(&m.endpoint, lag());
    let a1 = "0d26daa6-5e44-4c97-a497-ef015f91254a";
    let a2 = "7b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
    let w = Workdir::new(&ten_keys(
        &p,
        "first",
        r#"{ team = "data", lane = "lag" }"#,
        a1,
    ));

    let r = apply(&w, &m);
    assert_eq!(r.code, 0, "apply through the lag succeeds:\n{}", r.all());
    assert!(
        p.stale_answers() > 0,
        "the proxy answered stale reads (else the lag was not exercised): {:?}",
        p.requests()
    );
    assert_replan_empty(&w, &m, "after create");
    let keys = held(&m);
    assert_eq!(keys.len(), 10, "exactly 10 keys in KMS: {keys:#?}");
    for k in &keys {
        assert_eq!(k["state"], "Enabled", "{k}");
        assert_eq!(k["rotation"], true, "{k}");
        assert_eq!(
            k["tags"],
            serde_json::json!({"team": "data", "lane": "lag"}),
            "only the configured tags (the create token was removed): {k}"
        );
        let aliases = k["aliases"].as_array().expect("aliases");
        assert_eq!(aliases.len(), 1, "{k}");
        let n = aliases[0]
            .as_str()
            .unwrap()
            .trim_start_matches("alias/lag-");
        assert_eq!(k["desc"], format!("first {n}"), "{k}");
        assert!(
            k["policy"].to_string().contains(a1),
            "the given policy, with its Databricks account condition: {k}"
        );
    }

    // Change tags, description and policy of all ten.
    let before_update = p.stale_answers();
    w.write(
        "main.tf",
        &ten_keys(&p, "second", r#"{ team = "platform", env = "prod" }"#, a2),
    );
    let r = apply(&w, &m);
    assert_eq!(r.code, 0, "update through the lag succeeds:\n{}", r.all());
    assert!(
        r.stdout.contains("0 added, 10 changed, 0 destroyed"),
        "{}",
        r.stdout
    );
    assert!(p.stale_answers() > before_update, "the update met the lag");
    assert_replan_empty(&w, &m, "after update");
    let keys = held(&m);
    assert_eq!(keys.len(), 10, "still exactly 10 keys: {keys:#?}");
    for k in &keys {
        assert_eq!(
            k["tags"],
            serde_json::json!({"team": "platform", "env": "prod"}),
            "{k}"
        );
        assert!(k["desc"].as_str().unwrap().starts_with("second "), "{k}");
        let policy = k["policy"].to_string();
        assert!(policy.contains(a2) && !policy.contains(a1), "{k}");
    }
}

#[test]
fn kms_key_whose_alias_fails_after_create_is_tainted_then_completed() {
    if !enabled("kms_key_whose_alias_fails_after_create_is_tainted_then_completed") {
        return;
    }
    let m = MotoServer::start();
    let p = LagProxy::start(&m.endpoint, lag());
    // deletion_protection is left at its default, true.
    let w = Workdir::new(&config(
        &p,
        r#"resource "cmk_kms_key" "k" {
  use_cases             = ["MANAGED_SERVICES"]
  databricks_account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  alias                 = "alias/fault-once"
  tags                  = { team = "data" }
}"#,
    ));
    p.fail_once("CreateAlias");
    let r = apply(&w, &m);
    assert_ne!(r.code, 0, "the refused CreateAlias fails the apply");
    let keys = held(&m);
    assert_eq!(keys.len(), 1, "one key was made: {keys:#?}");
    let id = keys[0]["id"].as_str().unwrap().to_string();
    let arn = format!("arn:aws:kms:us-east-1:123456789012:key/{id}");
    let all = r.all();
    assert!(
        all.contains(&format!(
            "KMS key {arn} created, but creating alias alias/fault-once failed"
        )) && all.contains("injected fault"),
        "the error names the key ARN and the cause:\n{all}"
    );
    assert!(
        !all.contains("untaint"),
        "no untaint advice: the next apply finishes it:\n{all}"
    );
    assert!(
        keys[0]["tags"]
            .as_object()
            .is_some_and(|t| t.contains_key("terraform-provider-cmk:create-token")),
        "the unfinished key keeps its create token tag: {keys:#?}"
    );
    // In the state, tainted: the key is not lost.
    let show = w.json(&["show", "-json"]);
    let res = &show["values"]["root_module"]["resources"][0];
    assert_eq!(res["address"], "cmk_kms_key.k", "{show:#}");
    assert_eq!(res["tainted"], true, "{show:#}");
    assert_eq!(res["values"]["arn"], arn.as_str(), "{show:#}");
    assert_eq!(res["values"]["deletion_protection"], true, "{show:#}");
    assert!(
        res["values"]["alias"].is_null(),
        "no alias claimed: {show:#}"
    );

    // The next plain apply (no untaint, protection still on) replaces the
    // tainted key: its create never finished, so protection does not hold it.
    let r = apply(&w, &m);
    assert_eq!(r.code, 0, "the next apply completes:\n{}", r.all());
    assert!(
        r.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        r.stdout
    );
    // Terraform wraps diagnostics: compared with whitespace collapsed.
    let all = r.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        all.contains("KMS key of an unfinished create scheduled for deletion")
            && all.contains(&format!("KMS key {arn} is scheduled for deletion on"))
            && all.contains("(after a 7-day waiting period)")
            && all.contains("was made by a create that did not finish"),
        "the destroy says it was an unfinished create, with the shortest window:\n{all}"
    );
    assert_replan_empty(&w, &m, "after the replacement");
    let keys = held(&m);
    let held_now = live(&keys);
    assert_eq!(
        held_now.len(),
        1,
        "KMS holds exactly one live key for the resource: {keys:#?}"
    );
    let k = held_now[0];
    assert_eq!(k["state"], "Enabled", "{k}");
    assert_eq!(k["aliases"], serde_json::json!(["alias/fault-once"]), "{k}");
    assert_eq!(
        k["tags"],
        serde_json::json!({"team": "data"}),
        "the configured tags only: the create token is gone once the create finished: {k}"
    );
    assert_eq!(k["rotation"], true, "{k}");
    assert!(
        k["policy"]
            .to_string()
            .contains("0d26daa6-5e44-4c97-a497-ef015f91254a"),
        "the generated policy, with the Databricks account condition: {k}"
    );
    let show = w.json(&["show", "-json"]);
    let res = &show["values"]["root_module"]["resources"][0];
    assert_eq!(res["tainted"], serde_json::Value::Null, "{show:#}");
    assert_eq!(res["values"]["key_id"], k["id"], "{show:#}");
    assert_eq!(keys.len(), 2, "{keys:#?}");
    let old = keys
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("the unfinished key is still listed");
    assert_eq!(old["state"], "PendingDeletion", "{old}");

    // A key whose create finished stays protected: replacing it (asked
    // for explicitly) is refused, and nothing is scheduled for deletion.
    let r = tf(
        &w,
        &m,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-replace=cmk_kms_key.k",
        ],
    );
    assert_ne!(r.code, 0, "replacing a finished protected key is refused");
    assert!(
        r.all().contains("deletion_protection is true"),
        "{}",
        r.all()
    );
    let after = held(&m);
    assert_eq!(live(&after).len(), 1, "{after:#?}");
    assert_eq!(live(&after)[0]["id"], k["id"], "{after:#?}");
    assert_eq!(after.len(), 2, "no key made or deleted: {after:#?}");
}

/// The create token tag comes off as soon as every write was accepted, and
/// its removal is waited for with the other writes; a wait that fails after
/// that puts the tag back, so the key still reads as an unfinished create
/// and the next plain apply replaces it, deletion_protection on.
#[test]
fn kms_key_whose_wait_fails_after_the_token_came_off_is_still_replaced() {
    if !enabled("kms_key_whose_wait_fails_after_the_token_came_off_is_still_replaced") {
        return;
    }
    let m = MotoServer::start();
    let p = LagProxy::start(&m.endpoint, lag());
    let w = Workdir::new(&config(
        &p,
        r#"resource "cmk_kms_key" "k" {
  use_cases = ["MANAGED_SERVICES"]
  alias     = "alias/wait-fails"
}"#,
    ));
    // CreateAlias is accepted; the wait's first ListAliases is refused.
    p.fail_once("ListAliases");
    let r = apply(&w, &m);
    assert_ne!(r.code, 0, "the failed wait fails the apply:\n{}", r.all());
    let all = r.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        all.contains("created, but creating alias alias/wait-fails failed")
            && all.contains("injected fault"),
        "{all}"
    );
    assert!(
        p.requests().get("UntagResource").copied().unwrap_or(0) >= 1,
        "the token came off before the waits: {:?}",
        p.requests()
    );
    let keys = held(&m);
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert!(
        keys[0]["tags"]
            .as_object()
            .is_some_and(|t| t.contains_key("terraform-provider-cmk:create-token")),
        "the tag was put back: {keys:#?}"
    );
    let r = apply(&w, &m);
    assert_eq!(r.code, 0, "the next apply replaces it:\n{}", r.all());
    assert!(
        r.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        r.stdout
    );
    assert_replan_empty(&w, &m, "after the replacement");
    let keys = held(&m);
    let now = live(&keys);
    assert_eq!(now.len(), 1, "{keys:#?}");
    assert_eq!(now[0]["aliases"], serde_json::json!(["alias/wait-fails"]));
    assert_eq!(now[0]["tags"], serde_json::json!({}), "{keys:#?}");
    assert_eq!(keys.len(), 2, "{keys:#?}");
}
