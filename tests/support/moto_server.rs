//! Test helper shared by the unit tests of `cloud::kms`
//! (`src/cloud/kms/tests.rs`) and the acceptance tests, both including it
//! with `#[path]`: starts moto's server from the project's venv on a free
//! loopback port and stops it on drop.
//!
//! `CMK_VENV` must name the venv `make venv` built. When it is unset or moto
//! is missing the test FAILS with a message saying so: these tests never skip.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials and account moto answers with.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
pub const ACCOUNT_ID: &str = "123456789012";

/// A running `moto_server`.
pub struct MotoServer {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    pub venv: PathBuf,
}

fn venv() -> PathBuf {
    let Some(v) = std::env::var_os("CMK_VENV").filter(|v| !v.is_empty()) else {
        panic!(
            "CMK_VENV is not set: these tests need moto's KMS server. Run `make venv` and set \
             CMK_VENV=$PWD/.venv (make test does). They never skip."
        );
    };
    let v = PathBuf::from(v);
    let bin = v.join("bin").join("moto_server");
    assert!(
        bin.exists(),
        "{} is missing: moto[server] is not installed in CMK_VENV={}; run `make venv`",
        bin.display(),
        v.display()
    );
    v
}

/// Whether the server on this port is moto (its `/moto-api/data.json`).
fn answers_as_moto(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> MotoServer {
        let venv = venv();
        let port = free_port();
        let mut m = MotoServer {
            child: None,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            venv,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let bin = self.venv.join("bin").join("moto_server");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Listening is not enough: the port must be answered by moto
            // (another test's server could hold a port picked the same way).
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && answers_as_moto(self.port) {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("moto_server exited before listening: {status}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Empties moto (its `POST /moto-api/reset`): every key is gone, as if
    /// deleted outside Terraform after its waiting period. The server and its
    /// port stay, so no other test can take the port in between.
    pub fn reset(&self) {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            s,
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send reset");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "moto reset failed: {answer}"
        );
    }

    /// Environment for AWS tools pointed at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// Runs a Python snippet with boto3 from the venv, `kms` bound to a KMS
    /// client of `region` on this server; returns its stdout (trimmed).
    pub fn boto3(&self, region: &str, code: &str) -> String {
        let script = format!(
            "import boto3, json, sys\nkms = boto3.client('kms', region_name={region:?}, endpoint_url={:?})\n{code}\n",
            self.endpoint
        );
        let out = Command::new(self.venv.join("bin").join("python"))
            .arg("-c")
            .arg(&script)
            .envs(self.env())
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run the venv's python");
        assert!(
            out.status.success(),
            "boto3 script failed:\n{script}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
