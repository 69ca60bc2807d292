//! What the real services do, through Terraform and cmk-sandbox: which
//! credentials the Account API takes, the Databricks CLI's login, a stray
//! `\r` in a credential, a storage-key update behind a RUNNING status
//! (customer-managed VPC), and the binding's import by the bare workspace id
//! or `<account_id>/<workspace_id>`.

use crate::harness::{enabled, plan_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{
    oauth_env, Sandbox, ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, PROD_WORKSPACE, TOKEN,
};

const US_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

fn workdir(sb: &Sandbox, body: &str, env: Vec<(String, String)>) -> Workdir {
    let mut w = Workdir::new(&format!("{CMK_HEADER}\n{}\n{body}", sb.provider_block()));
    w.env.extend(env);
    w
}

fn workspace_data_source() -> String {
    format!("data \"cmk_workspace\" \"prod\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\n")
}

fn api_requests(sb: &Sandbox) -> u64 {
    let (status, body) = sb.admin("GET", "/_sandbox/stats", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["api_requests"].as_u64().unwrap()
}

fn no_debug_output(text: &str) {
    for debug in ["Some(", "None)", "None,", "Ok(", "Err("] {
        assert!(!text.contains(debug), "debug output {debug:?} in:\n{text}");
    }
}

#[test]
fn personal_access_token_gets_the_warning_and_the_401_says_why() {
    if !enabled("personal_access_token_gets_the_warning_and_the_401_says_why") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &workspace_data_source(),
        vec![("DATABRICKS_TOKEN".into(), TOKEN.into())],
    );
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0, "{diags:?}");
    let warning = diags
        .iter()
        .find(|d| {
            d["severity"] == "warning"
                && d["summary"] == "Personal access tokens do not work with the Account API"
        })
        .unwrap_or_else(|| panic!("no warning about the token among {diags:?}"));
    let detail = warning["detail"].as_str().unwrap();
    assert!(
        detail.contains("DATABRICKS_TOKEN")
            && detail.contains("client_id and client_secret")
            && detail.contains("auth_type = \"databricks-cli\""),
        "{detail}"
    );
    let error = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap_or_else(|| panic!("no error among {diags:?}"));
    let text = format!("{} {}", error["summary"], error["detail"]);
    assert!(
        text.contains("401") && text.contains("does not accept personal access tokens"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    no_debug_output(&text);
}

#[test]
fn a_credential_with_a_stray_carriage_return_fails_before_any_request() {
    if !enabled("a_credential_with_a_stray_carriage_return_fails_before_any_request") {
        return;
    }
    let sb = Sandbox::start();
    // As `export DATABRICKS_CLIENT_SECRET=$(cat secret.txt)` gives it from a
    // file with Windows line endings.
    let w = workdir(
        &sb,
        &workspace_data_source(),
        vec![
            ("DATABRICKS_CLIENT_ID".into(), CLIENT_ID.into()),
            (
                "DATABRICKS_CLIENT_SECRET".into(),
                format!("{CLIENT_SECRET}\r"),
            ),
        ],
    );
    let before = api_requests(&sb);
    let (code, diags) = plan_diagnostics(&w);
    assert_ne!(code, 0, "{diags:?}");
    let error = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap_or_else(|| panic!("no error among {diags:?}"));
    let text = format!("{} {}", error["summary"], error["detail"]);
    assert!(
        text.contains("DATABRICKS_CLIENT_SECRET") && text.contains("carriage return"),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert_eq!(
        api_requests(&sb),
        before,
        "nothing was sent: the credential was refused before any request"
    );
}

#[test]
fn databricks_cli_login_through_terraform() {
    if !enabled("databricks_cli_login_through_terraform") {
        return;
    }
    let sb = Sandbox::start();
    // A stand-in for the Databricks CLI: `auth token` answers a token the
    // sandbox issued for the audience it is asked about (as the real CLI
    // answers from its login cache), and every call is logged.
    let dir = tempfile::tempdir().unwrap();
    let token_of = |path: &str| {
        let hostport = sb.url.trim_start_matches("http://");
        let body = "grant_type=client_credentials&scope=all-apis";
        let basic = base64_encode(&format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = raw_http(hostport, &raw);
        let v: serde_json::Value =
            serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    };
    let account_token = token_of(&format!("/oidc/accounts/{ACCOUNT_ID}/v1/token"));
    let ws_token = token_of("/_ws/analytics-prod/oidc/v1/token");
    let cli = dir.path().join("databricks");
    std::fs::write(
        &cli,
        format!(
            "#!/bin/sh\necho \"$@\" >> \"{log}\"\ncase \"$1\" in version) echo '{{\"Major\":0,\"Minor\":250,\"Patch\":0}}'; exit 0;; esac\ncase \"$*\" in *--account-id*) t={account_token};; *) t={ws_token};; esac\necho \"{{\\\"access_token\\\": \\\"$t\\\", \\\"token_type\\\": \\\"Bearer\\\", \\\"expiry\\\": \\\"2099-01-01T00:00:00Z\\\"}}\"\n",
            log = dir.path().join("calls.log").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let body = format!(
        "{}data \"cmk_encryption_coverage\" \"prod\" {{\n  workspace_id = {PROD_WORKSPACE}\n}}\noutput \"region\" {{ value = data.cmk_workspace.prod.aws_region }}\n",
        workspace_data_source()
    );
    let w = workdir(
        &sb,
        &body,
        vec![
            ("DATABRICKS_AUTH_TYPE".into(), "databricks-cli".into()),
            ("DATABRICKS_CLI_PATH".into(), cli.display().to_string()),
        ],
    );
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    assert!(
        calls.contains(&format!(
            "auth token --host {} --account-id {ACCOUNT_ID}",
            sb.url
        )),
        "{calls}"
    );
    // The dashboards list (coverage) is a workspace call: the CLI is asked
    // for that workspace's host.
    assert!(
        calls.contains(&format!("auth token --host {}/_ws/analytics-prod", sb.url)),
        "{calls}"
    );
    let out = w.json(&["output", "-json"]);
    assert_eq!(out["region"]["value"], "us-east-1");
}

#[test]
fn customer_managed_vpc_storage_key_update_completes_without_a_false_revert() {
    if !enabled("customer_managed_vpc_storage_key_update_completes_without_a_false_revert") {
        return;
    }
    let sb = Sandbox::start();
    // The workspace runs in a customer-managed VPC: during the update its
    // status stays RUNNING and the new key id appears only after 5 reads.
    let (status, body) = sb.admin(
        "POST",
        &format!("/_sandbox/workspaces/{PROD_WORKSPACE}/key-update"),
        r#"{"network_id": "4c1d2e3f-0000-4000-8000-00000000beef", "key_update_reads": 5}"#,
    );
    assert_eq!(status, 200, "{body}");
    let w = workdir(
        &sb,
        &format!(
            r#"resource "cmk_key_configuration" "storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id   = {PROD_WORKSPACE}
  storage_key_id = cmk_key_configuration.storage.customer_managed_key_id
}}
"#
        ),
        oauth_env(),
    );
    let out = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    out.ok();
    assert!(!out.all().contains("reverted"), "{}", out.all());
    let state = w.json(&["show", "-json"]);
    let values = |address: &str| {
        state["values"]["root_module"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap()["values"]
            .clone()
    };
    let b = values("cmk_workspace_binding.prod");
    assert_eq!(
        b["storage_key_id"],
        values("cmk_key_configuration.storage")["customer_managed_key_id"]
    );
    assert_eq!(b["workspace_status"], "RUNNING");
    let re = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(re.code, 0, "re-plan must be empty:\n{}", re.all());
}

#[test]
fn a_silently_reverted_key_update_is_reported_after_workspace_update_timeout_seconds() {
    if !enabled("a_silently_reverted_key_update_is_reported_after_workspace_update_timeout_seconds")
    {
        return;
    }
    let sb = Sandbox::start();
    // Databricks reverts a failed key update silently: RUNNING again, old id.
    let (status, body) = sb.admin(
        "POST",
        &format!("/_sandbox/workspaces/{PROD_WORKSPACE}/key-update"),
        r#"{"key_update_outcome": "reverted"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let provider = sb.provider_block().replace(
        "workspace_poll_interval_seconds = 0.1",
        "workspace_poll_interval_seconds = 0.1\n  workspace_update_timeout_seconds = 2",
    );
    assert!(provider.contains("workspace_update_timeout_seconds = 2"));
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
{provider}
resource "cmk_key_configuration" "storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id   = {PROD_WORKSPACE}
  storage_key_id = cmk_key_configuration.storage.customer_managed_key_id
}}
"#
    ));
    w.env.extend(oauth_env());
    let out = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    let text = out
        .all()
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("is RUNNING but its storage_customer_managed_key_id is still")
            && text.contains("Databricks did not apply the change")
            && text.contains("The key update could not be applied and was rolled back."),
        "{text}"
    );
    no_debug_output(&text);
    // The wait ended at the configured bound (2 s), not the default (1200 s).
    let waited: u64 = text
        .split_once("s after the update")
        .and_then(|(head, _)| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {text}"));
    assert!((2..1200).contains(&waited), "waited {waited}s: {text}");
    // The state never holds the id Databricks did not take.
    let state = w.json(&["show", "-json"]);
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cfg = resources
        .iter()
        .find(|r| r["address"] == "cmk_key_configuration.storage")
        .expect("the key configuration was created");
    let new_id = cfg["values"]["customer_managed_key_id"].clone();
    if let Some(b) = resources
        .iter()
        .find(|r| r["address"] == "cmk_workspace_binding.prod")
    {
        assert_ne!(b["values"]["storage_key_id"], new_id, "{b:#}");
    }

    // Out of range: refused at plan, naming the argument and the range.
    let bad = Workdir::new(&format!(
        "{CMK_HEADER}\n{}\n{}",
        sb.provider_block().replace(
            "workspace_poll_interval_seconds = 0.1",
            "workspace_update_timeout_seconds = 0\n  retry_timeout_seconds = 86401",
        ),
        workspace_data_source()
    ));
    let (code, diags) = plan_diagnostics(&bad);
    assert_ne!(code, 0, "{diags:?}");
    for (name, range) in [
        ("workspace_update_timeout_seconds", "from 1 to 86400"),
        ("retry_timeout_seconds", "from 1 to 86400"),
    ] {
        assert!(
            diags.iter().any(|d| d["severity"] == "error"
                && d["summary"] == format!("Invalid {name}")
                && d["detail"]
                    .as_str()
                    .is_some_and(|t| t.contains(name) && t.contains(range))),
            "{name}: {diags:?}"
        );
    }
}

#[test]
fn binding_imports_by_account_and_workspace_id() {
    if !enabled("binding_imports_by_account_and_workspace_id") {
        return;
    }
    let sb = Sandbox::start();
    let w = workdir(
        &sb,
        &format!(
            r#"resource "cmk_key_configuration" "storage" {{
  use_cases    = ["STORAGE"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "prod" {{
  workspace_id   = {PROD_WORKSPACE}
  storage_key_id = cmk_key_configuration.storage.customer_managed_key_id
}}
"#
        ),
        oauth_env(),
    );
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let binding = "cmk_workspace_binding.prod";
    let import = |id: &str| w.run(&["import", "-input=false", "-no-color", binding, id]);
    let forget = || {
        w.run(&["state", "rm", "-no-color", binding]).ok();
    };
    let empty_plan = |how: &str| {
        let re = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        assert_eq!(
            re.code,
            0,
            "{how}: the imported binding re-plans empty:\n{}",
            re.all()
        );
    };
    // Terraform wraps diagnostics in a box: compare the words.
    let words = |text: String| {
        text.replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };

    // The bare workspace id, as before.
    forget();
    import(&PROD_WORKSPACE.to_string()).ok();
    empty_plan("bare workspace id");

    // The official databricks_mws_workspaces resource's id.
    forget();
    import(&format!("{ACCOUNT_ID}/{PROD_WORKSPACE}")).ok();
    empty_plan("<account_id>/<workspace_id>");

    // Another account: refused, naming both accounts and the fix.
    forget();
    let other = "0d26daa6-5e44-4c97-a497-ef015f91254a";
    let wrong = import(&format!("{other}/{PROD_WORKSPACE}"));
    assert_ne!(wrong.code, 0, "{}", wrong.all());
    let text = words(wrong.all());
    assert!(
        text.contains(&format!(
            "The import id names account {other}, but the provider manages account {ACCOUNT_ID}. Import with {ACCOUNT_ID}/{PROD_WORKSPACE}"
        )),
        "{text}"
    );
    no_debug_output(&text);

    // A malformed id names the expected forms.
    let bad = import(&format!("{ACCOUNT_ID}/prod"));
    assert_ne!(bad.code, 0, "{}", bad.all());
    let text = words(bad.all());
    assert!(
        text.contains("is not <account_id>/<workspace_id>")
            && text.contains("is not a workspace id")
            && text.contains("Import with the workspace id, or <account_id>/<workspace_id>"),
        "{text}"
    );
    no_debug_output(&text);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn raw_http(hostport: &str, raw: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
