//! What a released provider does for its users, through the real CLI: logs
//! that Terraform levels and filters, the install through a
//! `filesystem_mirror`, and the `dashboard_protected` function.

use crate::harness::{enabled, plan_diagnostics, Workdir, CMK_HEADER};
use crate::sandbox::{oauth_env, Sandbox, CLIENT_ID, CLIENT_SECRET};

const US_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

/// The lines of Terraform's log file written by our provider.
fn provider_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("provider.terraform-provider-cmk"))
        .collect()
}

#[test]
fn terraform_levels_and_filters_the_providers_log_lines() {
    if !enabled("terraform_levels_and_filters_the_providers_log_lines") {
        return;
    }
    let sb = Sandbox::start();
    let mut w = Workdir::new(&format!(
        "{CMK_HEADER}\n{}\nresource \"cmk_key_configuration\" \"k\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{ key_arn = \"{US_KEY}\" }}\n}}\n",
        sb.provider_block()
    ));
    w.env.extend(oauth_env());
    let run_logged = |level: &str, args: &[&str]| -> String {
        let path = w.path().join(format!("terraform-{level}.log"));
        let _ = std::fs::remove_file(&path);
        let o = w
            .command(args)
            .env("TF_LOG_PROVIDER", level)
            .env("TF_LOG_PATH", &path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };

    // info: our info lines at INFO, with their fields; none of our debug lines.
    let log = run_logged(
        "info",
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    let ours = provider_lines(&log);
    let created = ours
        .iter()
        .find(|l| l.contains("created key configuration"))
        .unwrap_or_else(|| panic!("no info line of ours in the log:\n{log}"));
    assert!(created.contains("[INFO]"), "{created}");
    assert!(
        created.contains("@module=cmk.cloud.databricks.client"),
        "{created}"
    );
    assert!(created.contains("customer_managed_key_id="), "{created}");
    assert!(
        !ours
            .iter()
            .any(|l| l.contains("[DEBUG]") || l.contains("Databricks call")),
        "debug lines passed TF_LOG_PROVIDER=info:\n{}",
        ours.join("\n")
    );
    // Our lines are never raw JSON (which Terraform would log at DEBUG).
    assert!(!log.contains("\"@level\""), "{log}");

    // debug: one line per Account API call, with method, path, status,
    // duration and retries, at DEBUG.
    let log = run_logged("debug", &["plan", "-input=false", "-no-color"]);
    let call = provider_lines(&log)
        .into_iter()
        .find(|l| l.contains("Databricks call") && l.contains("/customer-managed-keys"))
        .unwrap_or_else(|| panic!("no debug line for the refresh call:\n{log}"));
    // The refresh read came from the read snapshot's one list.
    assert!(log.contains("read snapshot taken"), "{log}");
    assert!(call.contains("[DEBUG]"), "{call}");
    for field in [
        "method=GET",
        "path=/api/2.0/accounts/",
        "status=200",
        "duration_ms=",
        "retries=0",
    ] {
        assert!(call.contains(field), "{field} missing: {call}");
    }

    // trace: everything, and still no credential.
    let log = run_logged("trace", &["plan", "-input=false", "-no-color"]);
    assert!(
        log.contains("Databricks answer"),
        "trace lines were written"
    );
    assert!(
        !log.contains(CLIENT_SECRET),
        "the OAuth client secret reached Terraform's log"
    );
}

#[test]
fn dashboard_protected_answers_from_the_rule_engines_cutoff() {
    if !enabled("dashboard_protected_answers_from_the_rule_engines_cutoff") {
        return;
    }
    let w = Workdir::new(&format!(
        r#"{CMK_HEADER}
output "last_day" {{ value = provider::cmk::dashboard_protected("2024-11-01T23:59:59Z") }}
output "next_day" {{ value = provider::cmk::dashboard_protected("2024-11-02T00:00:00Z") }}
output "new_york" {{ value = provider::cmk::dashboard_protected("2024-11-01T20:00:00-05:00") }}
"#
    ));
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let out = w.json(&["output", "-json"]);
    assert_eq!(out["last_day"]["value"], false);
    assert_eq!(out["next_day"]["value"], true);
    assert_eq!(out["new_york"]["value"], true);

    let bad = Workdir::new(&format!(
        "{CMK_HEADER}\noutput \"x\" {{ value = provider::cmk::dashboard_protected(\"2024-11-05\") }}\n"
    ));
    let (code, diags) = plan_diagnostics(&bad);
    assert_ne!(code, 0);
    let text = serde_json::to_string(&diags).unwrap();
    assert!(
        text.contains("is not an RFC 3339 timestamp") && text.contains("create_time"),
        "{text}"
    );
}

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Terraform's `<os>_<arch>` for this machine.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => panic!("no Terraform platform name for {other}"),
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// `(sha256 hex of the zip, Terraform's h1: hash of a package holding only
/// `binary` under `name`)`, computed by Python's hashlib, independently of
/// the packaging script and of Terraform. h1 is the dirhash "Hash1": the
/// SHA-256 of the sorted `<sha256 hex>  <name>\n` lines, base64.
fn expected_hashes(
    zip: &std::path::Path,
    binary: &std::path::Path,
    name: &str,
) -> (String, String) {
    let code = r#"
import base64, hashlib, sys
zip_sha = hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
bin_sha = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
summary = f"{bin_sha}  {sys.argv[3]}\n".encode()
print(zip_sha)
print("h1:" + base64.b64encode(hashlib.sha256(summary).digest()).decode())
"#;
    let o = std::process::Command::new(python())
        .args(["-c", code])
        .arg(zip)
        .arg(binary)
        .arg(name)
        .output()
        .unwrap_or_else(|e| panic!("{} is needed to check the hashes: {e}", python()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut l = out.lines();
    (l.next().unwrap().to_string(), l.next().unwrap().to_string())
}

/// The `hashes` of our provider in `.terraform.lock.hcl`, and its version.
fn locked(w: &Workdir) -> (String, Vec<String>) {
    let lock = std::fs::read_to_string(w.path().join(".terraform.lock.hcl")).unwrap();
    let block = &lock[lock
        .find("provider \"registry.terraform.io/databricks-cmk/cmk\"")
        .unwrap_or_else(|| panic!("our provider is not locked:\n{lock}"))..];
    let version = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("version"))
        .and_then(|v| v.split('"').nth(1))
        .unwrap_or_else(|| panic!("no version in\n{lock}"))
        .to_string();
    let hashes = block[block.find("hashes").unwrap()..block.find(']').unwrap()]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    (version, hashes)
}

/// A static HTTPS server over `root` (a provider network mirror), with a
/// fresh self-signed certificate for 127.0.0.1 written to `cert_pem`.
fn https_mirror(root: std::path::PathBuf, cert_pem: &std::path::Path) -> String {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress(std::net::IpAddr::V4(
        std::net::Ipv4Addr::LOCALHOST,
    ))];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cmk test mirror");
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(cert_pem, cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (cfg, root) = (cfg.clone(), root.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let file = root.join(path.trim_start_matches('/'));
                let (status, body) = match std::fs::read(&file) {
                    Ok(b) if !path.contains("..") => ("200 OK", b),
                    _ => ("404 Not Found", b"not found".to_vec()),
                };
                let ctype = if path.ends_with(".json") {
                    "application/json"
                } else {
                    "application/zip"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
                let _ = s.flush();
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    url
}

#[test]
fn release_zip_installs_through_terraform_init_from_a_mirror() {
    if !enabled("release_zip_installs_through_terraform_init_from_a_mirror") {
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let plat = platform();
    let dist = tempfile::tempdir().unwrap();
    // What `make release` runs, on the binary this test run built.
    let o = std::process::Command::new(python())
        .arg(repo().join("tools/package_release.py"))
        .arg(crate::harness::provider_bin())
        .arg(dist.path())
        .output()
        .unwrap_or_else(|e| panic!("{} is needed to package the release: {e}", python()));
    assert!(
        o.status.success(),
        "package_release.py failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let zip_name = format!("terraform-provider-cmk_{version}_{plat}.zip");
    let zip = dist.path().join(&zip_name);
    let manifest_name = format!("terraform-provider-cmk_{version}_manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.path().join(&manifest_name)).unwrap())
            .unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );
    let (zip_sha, h1) = expected_hashes(
        &zip,
        &crate::harness::provider_bin(),
        &format!("terraform-provider-cmk_v{version}"),
    );
    let sums = std::fs::read_to_string(
        dist.path()
            .join(format!("terraform-provider-cmk_{version}_SHA256SUMS")),
    )
    .unwrap();
    assert!(
        sums.lines().any(|l| l == format!("{zip_sha}  {zip_name}")),
        "SHA256SUMS does not list the zip's hash {zip_sha}:\n{sums}"
    );
    assert!(sums.contains(&manifest_name), "{sums}");

    let config = format!(
        r#"terraform {{
  required_providers {{
    cmk = {{ source = "databricks-cmk/cmk", version = "{version}" }}
  }}
}}
data "cmk_kms_key_policy" "p" {{
  use_cases      = ["MANAGED_SERVICES"]
  aws_account_id = "123456789012"
}}
output "policy_has_databricks" {{ value = strcontains(data.cmk_kms_key_policy.p.json, "414351767826") }}
output "protected" {{ value = provider::cmk::dashboard_protected("2025-01-01T00:00:00Z") }}
"#
    );
    let mirror = dist.path().join("mirror");
    let installed = |w: &Workdir| {
        w.path().join(format!(
            ".terraform/providers/registry.terraform.io/databricks-cmk/cmk/{version}/{plat}/terraform-provider-cmk_v{version}"
        ))
    };
    let plan_ok = |w: &Workdir| {
        let o = w.run(&["plan", "-input=false", "-no-color"]);
        o.ok();
        assert!(
            o.stdout.contains("policy_has_databricks = true")
                && o.stdout.contains("protected             = true"),
            "{}",
            o.stdout
        );
    };

    // 1. A filesystem_mirror in the packed layout; no dev_overrides anywhere.
    let w = Workdir::new(&config);
    w.write(
        "cli.tfrc",
        &format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/databricks-cmk/cmk\"]\n  }}\n}}\n",
            mirror.display()
        ),
    );
    let init = w.run(&["init", "-input=false", "-no-color"]);
    init.ok();
    assert!(
        init.stdout
            .contains(&format!("Installed databricks-cmk/cmk v{version}")),
        "{}",
        init.stdout
    );
    let (locked_version, hashes) = locked(&w);
    assert_eq!(locked_version, version);
    assert_eq!(
        hashes,
        vec![h1.clone()],
        "the h1: hash of the zip's contents"
    );
    assert!(installed(&w).exists(), "{}", installed(&w).display());
    plan_ok(&w);

    // 2. A lock file that records the zip's zh: hash (as the SHA256SUMS
    // gives it, and as a registry install records it) is what Terraform
    // checks the archive against: init accepts the zip and adds its h1:;
    // a zh: that is not the zip's is refused.
    let fs_cli = std::fs::read_to_string(w.path().join("cli.tfrc")).unwrap();
    let with_lock = |zh: &str| {
        let w = Workdir::new(&config);
        w.write("cli.tfrc", &fs_cli);
        w.write(
            ".terraform.lock.hcl",
            &format!(
                "provider \"registry.terraform.io/databricks-cmk/cmk\" {{\n  version     = \"{version}\"\n  constraints = \"{version}\"\n  hashes = [\n    \"{zh}\",\n  ]\n}}\n"
            ),
        );
        w
    };
    let w = with_lock(&format!("zh:{zip_sha}"));
    w.run(&["init", "-input=false", "-no-color"]).ok();
    let (_, hashes) = locked(&w);
    assert_eq!(hashes, vec![h1.clone(), format!("zh:{zip_sha}")]);
    plan_ok(&w);
    let w = with_lock(&format!("zh:{}", "0".repeat(64)));
    let refused = w.run(&["init", "-input=false", "-no-color"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .all()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("doesn't match any of the checksums previously recorded"),
        "{}",
        refused.all()
    );

    // 3. The same directory as a provider network mirror (HTTPS: index.json,
    // <version>.json with the zh: hash, the zip). Terraform checks the zip
    // against the mirror's zh: hash before installing it.
    let cert = dist.path().join("mirror-cert.pem");
    let url = https_mirror(mirror.clone(), &cert);
    let net_mirror = || {
        let mut w = Workdir::new(&config);
        w.env
            .push(("SSL_CERT_FILE".into(), cert.display().to_string()));
        w.write(
            "cli.tfrc",
            &format!(
                "provider_installation {{\n  network_mirror {{\n    url     = \"{url}\"\n    include = [\"registry.terraform.io/databricks-cmk/cmk\"]\n  }}\n}}\n"
            ),
        );
        w
    };
    let w = net_mirror();
    let init = w.run(&["init", "-input=false", "-no-color"]);
    init.ok();
    assert!(
        init.stdout
            .contains(&format!("Installed databricks-cmk/cmk v{version}")),
        "{}",
        init.stdout
    );
    let (locked_version, hashes) = locked(&w);
    assert_eq!(locked_version, version);
    assert_eq!(hashes, vec![h1.clone()]);
    assert!(installed(&w).exists());
    plan_ok(&w);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            mirror.join("registry.terraform.io/databricks-cmk/cmk/index.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(index, serde_json::json!({"versions": {version: {}}}));
    let version_json = mirror.join(format!(
        "registry.terraform.io/databricks-cmk/cmk/{version}.json"
    ));
    let archives = std::fs::read_to_string(&version_json).unwrap();
    assert!(archives.contains(&format!("zh:{zip_sha}")), "{archives}");
    std::fs::write(
        &version_json,
        archives.replace(&format!("zh:{zip_sha}"), &format!("zh:{}", "0".repeat(64))),
    )
    .unwrap();
    let refused = net_mirror().run(&["init", "-input=false", "-no-color"]);
    assert_ne!(
        refused.code, 0,
        "a zip that does not match the mirror's zh: hash was installed"
    );
}

/// A plan's reads cost one list per kind, however many objects: refresh and
/// plan-time rule reads of 40 key configurations and 10 bindings are served
/// from the read snapshot; an object deleted behind Terraform's back is still
/// seen (the snapshot lacks it, so it is read with a GET).
#[test]
fn a_plan_reads_each_kind_with_one_list() {
    if !enabled("a_plan_reads_each_kind_with_one_list") {
        return;
    }
    const KEYS: usize = 40;
    const WORKSPACES: usize = 10;
    let workspaces: Vec<serde_json::Value> = (0..WORKSPACES)
        .map(|i| {
            serde_json::json!({
                "workspace_id": 3_000_000_000_000_000_i64 + i as i64,
                "workspace_name": format!("ws-{i}"), "deployment_name": format!("ws-{i}"),
                "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
                "storage_mode": "CUSTOMER_HOSTED", "workspace_status": "RUNNING",
                "classic_compute_running": false
            })
        })
        .collect();
    let seed = serde_json::json!({
        "admin_token": crate::sandbox::ADMIN_TOKEN,
        "accounts": [{
            "account_id": crate::sandbox::ACCOUNT_ID,
            "oauth_clients": [{ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET }],
            "customer_managed_keys": [],
            "workspaces": workspaces,
        }]
    });
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.json");
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let sb = Sandbox::start_with(seed_path.to_str().unwrap());
    let mut w = Workdir::new(&format!(
        r#"{CMK_HEADER}
{}
resource "cmk_key_configuration" "k" {{
  count     = {KEYS}
  use_cases = ["MANAGED_SERVICES"]
  aws_key_info = {{ key_arn = "{US_KEY}" }}
}}
resource "cmk_workspace_binding" "b" {{
  count                = {WORKSPACES}
  workspace_id         = 3000000000000000 + count.index
  managed_services_key = cmk_key_configuration.k[count.index]
}}
"#,
        sb.provider_block()
    ));
    w.env.extend(oauth_env());
    w.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let requests = || {
        let (status, body) = sb.admin("GET", "/_sandbox/stats", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["api_requests"]
            .as_u64()
            .unwrap()
    };

    let before = requests();
    let plan = w.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(plan.code, 0, "the re-plan is empty:\n{}", plan.all());
    let spent = requests() - before;
    // One OAuth token (machine-to-machine, as the Account API requires), one
    // list of key configurations, one of workspaces: not 40 + 10 + the
    // plan-time reads of each binding's workspace and key.
    assert_eq!(
        spent, 3,
        "Account API requests of a plan over {KEYS} key configurations and {WORKSPACES} bindings"
    );

    // Drift: a key configuration deleted behind Terraform's back.
    let (_, state) = sb.admin("GET", "/_sandbox/state", "");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let unbound = state["accounts"][0]["customer_managed_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["customer_managed_key_id"].as_str().unwrap().to_string())
        .find(|id| {
            !state["accounts"][0]["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|ws| ws["managed_services_customer_managed_key_id"] == id.as_str())
        })
        .unwrap();
    let (status, body) = sb.admin(
        "DELETE",
        &format!("/_sandbox/customer-managed-keys/{unbound}"),
        "",
    );
    assert!((200..300).contains(&status), "{status} {body}");
    let before = requests();
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    plan.ok();
    assert!(
        plan.all()
            .contains("Key configuration deleted outside Terraform")
            && plan.stdout.contains("1 to add, 0 to change, 0 to destroy"),
        "{}",
        plan.all()
    );
    // The token, the two lists, and the GETs that confirm the deletion: the
    // configuration was created moments ago, so a missing one is read again
    // four times (0.5, 1, 2 and 4 s later) before it is taken as deleted.
    assert_eq!(requests() - before, 8);
}
