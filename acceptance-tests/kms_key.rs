//! Resource `cmk_kms_key` through the real Terraform CLI against moto's KMS
//! server (`CMK_VENV` must point at the venv `make venv` builds).

use std::process::Output;

use crate::harness::{enabled, Workdir, CMK_HEADER};

use crate::moto_server::MotoServer;

const DATABRICKS_ACCOUNT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "terraform failed:\n{}", self.all());
        self
    }
}

fn tf(w: &Workdir, m: &MotoServer, args: &[&str]) -> Run {
    let o: Output = w
        .command(args)
        .envs(m.env())
        .env("AWS_ENDPOINT_URL_STS", &m.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run terraform");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn apply(w: &Workdir, m: &MotoServer) -> Run {
    let r = tf(
        w,
        m,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    r.ok();
    r
}

/// `plan -detailed-exitcode`: 0 empty, 2 changes.
fn plan_code(w: &Workdir, m: &MotoServer) -> (i32, String) {
    let r = tf(
        w,
        m,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    (r.code, r.all())
}

fn config(m: &MotoServer, body: &str) -> String {
    format!(
        "{CMK_HEADER}\nprovider \"cmk\" {{\n  aws_region   = \"us-east-1\"\n  kms_endpoint = \"{}\"\n}}\n\n{body}\n\noutput \"arn\" {{ value = cmk_kms_key.k.arn }}\n",
        m.endpoint
    )
}

fn output(w: &Workdir, m: &MotoServer, name: &str) -> String {
    let r = tf(w, m, &["output", "-raw", name]);
    r.ok();
    r.stdout.trim().to_string()
}

fn key_body(alias: &str, extra: &str) -> String {
    format!(
        r#"resource "cmk_kms_key" "k" {{
  use_cases             = ["MANAGED_SERVICES", "STORAGE"]
  databricks_account_id = "{DATABRICKS_ACCOUNT}"
  alias                 = "{alias}"
  description           = "Databricks CMK"
{extra}
}}"#
    )
}

/// `(id, key_id)` of `cmk_kms_key.k` in the state (`terraform show -json`).
fn key_ids_in_state(w: &Workdir, m: &MotoServer) -> (String, String) {
    let shown = tf(w, m, &["show", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&shown.ok().stdout).unwrap();
    let r = v["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == "cmk_kms_key.k")
        .unwrap_or_else(|| panic!("cmk_kms_key.k not in the state: {v}"));
    let s = |k: &str| r["values"][k].as_str().unwrap_or_default().to_string();
    (s("id"), s("key_id"))
}

fn boto(m: &MotoServer, code: &str) -> String {
    m.boto3("us-east-1", code)
}

fn key_state(m: &MotoServer, arn: &str) -> String {
    boto(
        m,
        &format!("print(kms.describe_key(KeyId={arn:?})['KeyMetadata']['KeyState'])"),
    )
}

#[test]
fn kms_key_create_update_in_place_and_protected_destroy() {
    if !enabled("kms_key_create_update_in_place_and_protected_destroy") {
        return;
    }
    let m = MotoServer::start();
    let w = Workdir::new(&config(
        &m,
        &key_body("alias/acc-one", "  tags = { team = \"data\" }"),
    ));
    // The new key's region is known at plan (review and other resources
    // read it there); the ARN is not. Its generated policy has no EBS
    // statement (STORAGE, reused for cluster volumes, no role): the plan
    // says so, on the argument, naming CMK016.
    let planned = tf(
        &w,
        &m,
        &["plan", "-input=false", "-no-color", "-out", "p.bin"],
    );
    // (Terraform wraps the detail: compare with single spaces.)
    let said = planned
        .ok()
        .all()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("Warning: CMK016: key policy may not be what you meant")
            && said.contains("reuse_key_for_cluster_volumes")
            && said.contains("Set cross_account_role_arn"),
        "{said}"
    );
    let shown = tf(&w, &m, &["show", "-json", "p.bin"]);
    let plan: serde_json::Value = serde_json::from_str(&shown.ok().stdout).unwrap();
    let change = &plan["resource_changes"][0]["change"];
    assert_eq!(change["after"]["region"], "us-east-1", "{change}");
    assert_eq!(change["after_unknown"]["arn"], true, "{change}");
    apply(&w, &m);
    let arn = output(&w, &m, "arn");
    assert!(
        arn.starts_with("arn:aws:kms:us-east-1:123456789012:key/"),
        "{arn}"
    );
    // What KMS holds: generated policy (account from STS), alias, rotation, tags.
    let facts = boto(
        &m,
        &format!(
            "k={arn:?}\np=json.loads(kms.get_key_policy(KeyId=k, PolicyName='default')['Policy'])\n\
             print(json.dumps({{'sids': [s['Sid'] for s in p['Statement']], 'admin': p['Statement'][0]['Principal']['AWS'],\
             'aliases': [a['AliasName'] for a in kms.list_aliases(KeyId=k)['Aliases']],\
             'rotation': kms.get_key_rotation_status(KeyId=k)['KeyRotationEnabled'],\
             'tags': kms.list_resource_tags(KeyId=k)['Tags'], 'desc': kms.describe_key(KeyId=k)['KeyMetadata']['Description']}}))"
        ),
    );
    let facts: serde_json::Value = serde_json::from_str(&facts).unwrap();
    assert_eq!(
        facts["sids"],
        serde_json::json!([
            "EnableKeyOwnerAdministration",
            "AllowDatabricksManagedServices",
            "AllowDatabricksWorkspaceStorage",
            "AllowDatabricksStorageGrants"
        ])
    );
    assert_eq!(facts["admin"], "arn:aws:iam::123456789012:root");
    assert_eq!(facts["aliases"], serde_json::json!(["alias/acc-one"]));
    assert_eq!(facts["rotation"], true);
    assert_eq!(
        facts["tags"],
        serde_json::json!([{"TagKey": "team", "TagValue": "data"}])
    );
    assert_eq!(facts["desc"], "Databricks CMK");
    let (code, out) = plan_code(&w, &m);
    assert_eq!(code, 0, "re-plan after create is empty:\n{out}");

    // Update in place: policy (use cases), alias, rotation, tags.
    w.write(
        "main.tf",
        &config(
            &m,
            &r#"resource "cmk_kms_key" "k" {
  use_cases             = ["MANAGED_SERVICES"]
  databricks_account_id = "DBX"
  alias                 = "alias/acc-two"
  description           = "Databricks CMK (managed services)"
  enable_key_rotation   = false
  tags                  = { team = "platform", env = "prod" }
}"#
            .replace("DBX", DATABRICKS_ACCOUNT),
        ),
    );
    let (code, out) = plan_code(&w, &m);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("will be updated in-place") && !out.contains("must be replaced"),
        "{out}"
    );
    apply(&w, &m);
    assert_eq!(output(&w, &m, "arn"), arn, "same key after the update");
    let facts = boto(
        &m,
        &format!(
            "k={arn:?}\np=json.loads(kms.get_key_policy(KeyId=k, PolicyName='default')['Policy'])\n\
             print(json.dumps({{'sids': [s['Sid'] for s in p['Statement']],\
             'aliases': [a['AliasName'] for a in kms.list_aliases(KeyId=k)['Aliases']],\
             'rotation': kms.get_key_rotation_status(KeyId=k)['KeyRotationEnabled'],\
             'tags': sorted((t['TagKey'], t['TagValue']) for t in kms.list_resource_tags(KeyId=k)['Tags']),\
             'desc': kms.describe_key(KeyId=k)['KeyMetadata']['Description']}}))"
        ),
    );
    let facts: serde_json::Value = serde_json::from_str(&facts).unwrap();
    assert_eq!(
        facts["sids"],
        serde_json::json!([
            "EnableKeyOwnerAdministration",
            "AllowDatabricksManagedServices"
        ])
    );
    assert_eq!(facts["aliases"], serde_json::json!(["alias/acc-two"]));
    assert_eq!(facts["rotation"], false);
    assert_eq!(
        facts["tags"],
        serde_json::json!([["env", "prod"], ["team", "platform"]])
    );
    assert_eq!(facts["desc"], "Databricks CMK (managed services)");
    let (code, out) = plan_code(&w, &m);
    assert_eq!(code, 0, "re-plan after update is empty:\n{out}");

    // Replacing (multi_region) is refused at plan while protected.
    let cfg = std::fs::read_to_string(w.path().join("main.tf")).unwrap();
    w.write(
        "main.tf",
        &cfg.replace(
            "enable_key_rotation   = false",
            "enable_key_rotation   = false\n  multi_region          = true",
        ),
    );
    let (code, out) = plan_code(&w, &m);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deletion_protection is true"), "{out}");
    w.write("main.tf", &cfg);

    // Destroy is refused at plan time while deletion_protection is true.
    let r = tf(
        &w,
        &m,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    let all = r.all();
    assert!(all.contains("deletion_protection is true"), "{all}");
    assert!(
        all.contains("set deletion_protection = false") && all.contains("then destroy"),
        "{all}"
    );
    assert_eq!(key_state(&m, &arn), "Enabled");

    // Lift the protection, apply, destroy: the key is PendingDeletion.
    w.write(
        "main.tf",
        &cfg.replace(
            "enable_key_rotation   = false",
            "enable_key_rotation   = false\n  deletion_protection   = false\n  deletion_window_in_days = 7",
        ),
    );
    apply(&w, &m);
    let r = tf(
        &w,
        &m,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
    );
    r.ok();
    let all = r.all();
    assert!(
        all.contains("could not check whether a Databricks key configuration uses this key (no Databricks credentials configured)"),
        "{all}"
    );
    assert!(all.contains("scheduled for deletion"), "{all}");
    assert!(all.contains("aws kms cancel-key-deletion"), "{all}");
    assert_eq!(key_state(&m, &arn), "PendingDeletion");
    let aliases = boto(
        &m,
        "print(json.dumps(sorted(a['AliasName'] for a in kms.list_aliases()['Aliases'] if not a['AliasName'].startswith('alias/aws/'))))",
    );
    assert_eq!(aliases, "[]", "the alias is released");
}

#[test]
fn kms_key_import_and_drift() {
    if !enabled("kms_key_import_and_drift") {
        return;
    }
    let m = MotoServer::start();
    let body = key_body("alias/imported", "  aws_account_id = \"123456789012\"");
    let a = Workdir::new(&config(&m, &body));
    apply(&a, &m);
    let arn = output(&a, &m, "arn");
    let key_id = arn.rsplit('/').next().unwrap().to_string();
    // The resource's id is the key id (as aws_kms_key's), known after apply
    // and shown when Terraform refreshes.
    let ids = key_ids_in_state(&a, &m);
    assert_eq!(
        ids,
        (key_id.clone(), key_id.clone()),
        "id, key_id after apply"
    );
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 0, "re-plan after apply is empty:\n{out}");
    assert!(
        out.contains(&format!("cmk_kms_key.k: Refreshing state... [id={key_id}]")),
        "{out}"
    );

    // Import by alias, by ARN and by key id into fresh directories: each
    // sets id to the key id and re-plans empty.
    for id in ["alias/imported", arn.as_str(), key_id.as_str()] {
        let b = Workdir::new(&config(&m, &body));
        tf(
            &b,
            &m,
            &["import", "-input=false", "-no-color", "cmk_kms_key.k", id],
        )
        .ok();
        let ids = key_ids_in_state(&b, &m);
        assert_eq!(
            ids,
            (key_id.clone(), key_id.clone()),
            "id, key_id after import of {id}"
        );
        let (code, out) = plan_code(&b, &m);
        assert_eq!(code, 0, "re-plan after import of {id} is empty:\n{out}");
    }

    // Disabled out of band: a diff (enabled false -> true) and a warning;
    // apply enables it again.
    boto(&m, &format!("kms.disable_key(KeyId={key_id:?})"));
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("KMS key is disabled"), "{out}");
    assert!(
        out.contains("~ enabled") && out.contains("false -> true"),
        "{out}"
    );
    apply(&a, &m);
    assert_eq!(key_state(&m, &arn), "Enabled");

    // Scheduled for deletion out of band: warning with the date, diff; apply
    // cancels the deletion and enables the key.
    boto(
        &m,
        &format!("kms.schedule_key_deletion(KeyId={key_id:?}, PendingWindowInDays=7)"),
    );
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("scheduled for deletion outside Terraform")
            && out.contains("cancel-key-deletion"),
        "{out}"
    );
    apply(&a, &m);
    assert_eq!(key_state(&m, &arn), "Enabled");
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 0, "{out}");

    // Policy changed out of band: a diff on policy; an equivalent
    // re-formatting is no diff.
    boto(
        &m,
        &format!(
            "p=json.loads(kms.get_key_policy(KeyId={key_id:?}, PolicyName='default')['Policy'])\n\
             p['Statement'] = list(reversed(p['Statement']))\n\
             kms.put_key_policy(KeyId={key_id:?}, PolicyName='default', Policy=json.dumps(p, separators=(',', ':')))"
        ),
    );
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 0, "an equivalent policy is no diff:\n{out}");
    boto(
        &m,
        &format!(
            "p=json.loads(kms.get_key_policy(KeyId={key_id:?}, PolicyName='default')['Policy'])\n\
             p['Statement'] = [s for s in p['Statement'] if s['Sid'] != 'AllowDatabricksManagedServices']\n\
             kms.put_key_policy(KeyId={key_id:?}, PolicyName='default', Policy=json.dumps(p))"
        ),
    );
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("~ policy"), "{out}");
    apply(&a, &m);
    let sids = boto(
        &m,
        &format!("print([s['Sid'] for s in json.loads(kms.get_key_policy(KeyId={key_id:?}, PolicyName='default')['Policy'])['Statement']])"),
    );
    assert!(sids.contains("AllowDatabricksManagedServices"), "{sids}");

    // Deleted outside Terraform (moto emptied): removed from the
    // state with a warning, and the plan creates a new key.
    m.reset();
    let (code, out) = plan_code(&a, &m);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("KMS key deleted outside Terraform"), "{out}");
    assert!(out.contains("will be created"), "{out}");
}

#[test]
fn kms_key_plan_time_findings() {
    if !enabled("kms_key_plan_time_findings") {
        return;
    }
    let m = MotoServer::start();
    // A policy of the user's own that does not let Databricks use the key
    // for STORAGE: an error on `policy` at plan, before anything exists.
    let w = Workdir::new(&config(
        &m,
        r#"resource "cmk_kms_key" "k" {
  use_cases      = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id = "123456789012"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "Admin", Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = "kms:*", Resource = "*" },
      { Sid = "Databricks", Effect = "Allow", Principal = { AWS = "arn:aws:iam::414351767826:root" }, Action = ["kms:Encrypt", "kms:Decrypt"], Resource = "*" },
    ]
  })
}"#,
    ));
    let r = tf(&w, &m, &["plan", "-json", "-no-color", "-input=false"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let diags: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "diagnostic")
        .map(|v| v["diagnostic"].clone())
        .collect();
    let err = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap_or_else(|| panic!("an error: {diags:#?}"));
    assert!(
        err["summary"].as_str().unwrap().contains("CMK015"),
        "{err:#}"
    );
    assert!(
        err["detail"].as_str().unwrap().contains("STORAGE"),
        "{err:#}"
    );
    assert!(
        err["snippet"]["code"]
            .as_str()
            .unwrap_or_default()
            .contains("policy"),
        "the error points at the policy attribute: {err:#}"
    );
    let n = boto(&m, "print(len(kms.list_keys()['Keys']))");
    assert_eq!(n, "0", "nothing created");

    // Deletion window outside 7..30: refused by us (moto would accept it).
    w.write(
        "main.tf",
        &config(
            &m,
            r#"resource "cmk_kms_key" "k" {
  use_cases               = ["MANAGED_SERVICES"]
  aws_account_id          = "123456789012"
  deletion_window_in_days = 5
}"#,
        ),
    );
    let r = tf(&w, &m, &["plan", "-no-color", "-input=false"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("deletion_window_in_days"), "{}", r.all());
    assert!(r.all().contains("7 to 30"), "{}", r.all());
}

/// A configured `aws_account_id` names the new key's account: the plan
/// promises the key's ARN prefix (partition, region, account) with no STS
/// call, so `startswith` on it is decided at plan. A loopback listener
/// stands in for STS and records any connection; none comes. Without
/// `aws_account_id`, the same plan asks it (the listener sees the call and
/// closes it unanswered: the prefix is then not known at plan, and a
/// warning on `aws_account_id` says why and what to check).
#[test]
fn a_configured_account_plans_the_key_arn_without_sts() {
    if !enabled("a_configured_account_plans_the_key_arn_without_sts") {
        return;
    }
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let m = MotoServer::start();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let sts = format!("http://{}", l.local_addr().unwrap());
    let (count, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (c, st) = (count.clone(), stop.clone());
    let listener = std::thread::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            match l.accept() {
                // Counted, then closed unanswered: the call fails at once.
                Ok(_) => {
                    c.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    let plan = |account: &str| {
        let w = Workdir::new(&config(
            &m,
            &format!(
                "resource \"cmk_kms_key\" \"k\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  {account}\n}}\n\noutput \"in_account\" {{\n  value = startswith(cmk_kms_key.k.arn, \"arn:aws:kms:us-east-1:123456789012:key/\")\n}}\n"
            ),
        ));
        let o = w
            .command(&["plan", "-input=false", "-no-color"])
            .envs(m.env())
            .env("AWS_ENDPOINT_URL_STS", &sts)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run terraform");
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), all)
    };
    let (code, out) = plan("aws_account_id = \"123456789012\"");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("+ in_account = true"), "{out}");
    assert_eq!(count.load(Ordering::SeqCst), 0, "STS was called:\n{out}");
    // The check can fail: without the account, the plan asks STS.
    let (code, out) = plan("");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        count.load(Ordering::SeqCst) > 0,
        "STS was not called:\n{out}"
    );
    assert!(!out.contains("+ in_account = true"), "{out}");
    // ...and says so on aws_account_id, naming STS and what to check.
    assert!(
        out.contains("Warning: The key's AWS account is not known at plan")
            && out.contains("STS GetCallerIdentity did not answer")
            && out.contains("aws_account_id to the account that will own the key"),
        "{out}"
    );
    // The cause as a person reads it, never the SDK's debug form.
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the connection failed: Connection reset by peer")
            && !out.contains("DispatchFailure")
            && !out.contains("ConnectorError"),
        "{out}"
    );
    stop.store(true, Ordering::SeqCst);
    listener.join().unwrap();
}
