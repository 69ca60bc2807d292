//! `cmk-sandbox`, the project's Databricks Account API emulator, as a real
//! process on a free loopback port, for acceptance tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

pub const ACCOUNT_ID: &str = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13";
/// A personal access token of the seed's account: Databricks' Account API
/// (and the sandbox) refuse it; kept for the tests of that refusal.
pub const TOKEN: &str = "dapi-sandbox-account-token";
/// The seed's service principal (OAuth machine-to-machine).
pub const CLIENT_ID: &str = "3a1b6c2d-sp-terraform";
pub const CLIENT_SECRET: &str = "sandbox-oauth-secret";

/// Credentials as users should pass them: the service principal's OAuth
/// client id and secret in the environment, not in the configuration.
pub fn oauth_env() -> Vec<(String, String)> {
    vec![
        ("DATABRICKS_CLIENT_ID".into(), CLIENT_ID.into()),
        ("DATABRICKS_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
    ]
}
pub const ADMIN_TOKEN: &str = "sandbox-admin";
/// ENTERPRISE, HYBRID, us-east-1, RUNNING, managed-services key bound, no storage key.
pub const PROD_WORKSPACE: i64 = 1234567890123456;
/// PREMIUM, SERVERLESS, eu-west-1.
pub const PREMIUM_WORKSPACE: i64 = 2234567890123456;
/// The seeded managed-services key configuration.
pub const SEEDED_KEY: &str = "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98";

pub struct Sandbox {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        Sandbox::start_with(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/sandbox/seed.json"
        ))
    }

    /// A sandbox seeded from `seed` (a path).
    pub fn start_with(seed: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cmk-sandbox"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--seed",
                seed,
                "--provisioning-delay-ms",
                "300",
            ])
            .arg("--state")
            .arg(dir.path().join("state.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cmk-sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected sandbox output {line:?}"))
            .to_string();
        Sandbox {
            child,
            url,
            _dir: dir,
        }
    }

    /// The provider block for this sandbox (credentials come from [`oauth_env`]).
    pub fn provider_block(&self) -> String {
        format!(
            r#"provider "cmk" {{
  host                            = "{url}"
  account_id                      = "{ACCOUNT_ID}"
  workspace_host_template         = "{url}/_ws/{{deployment_name}}"
  workspace_poll_interval_seconds = 0.1
}}
"#,
            url = self.url
        )
    }

    /// Key configurations committed by creates since the start.
    pub fn creates_committed(&self) -> u64 {
        let (status, body) = self.admin("GET", "/_sandbox/stats", "");
        assert_eq!(status, 200, "sandbox stats: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["creates_committed"].as_u64().unwrap()
    }

    /// An admin call (`/_sandbox/...`): changes the world behind Terraform's back.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let hostport = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(hostport).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
