//! Databricks' official Python SDK against the `cmk-sandbox` binary: starts
//! the sandbox on a free port and runs `acceptance-tests/sdk_compat` with
//! pytest from the venv named by `CMK_VENV` (made by `make venv`). Without
//! that venv the test fails, on purpose: it is never skipped silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("CMK_VENV").unwrap_or_else(|| {
        panic!(
            "CMK_VENV is not set: this test runs Databricks' Python SDK from the project's venv. \
             Run `make venv`, then `CMK_VENV=$PWD/.venv cargo test --test sdk_compat`."
        )
    });
    let py = Path::new(&venv).join("bin").join("python");
    assert!(
        py.exists(),
        "CMK_VENV={} has no bin/python: run `make venv` (it installs requirements-test.txt)",
        Path::new(&venv).display()
    );
    let probe = Command::new(&py)
        .args(["-c", "import databricks.sdk, pytest"])
        .status()
        .expect("cannot run the venv's python");
    assert!(
        probe.success(),
        "the venv at CMK_VENV lacks databricks-sdk or pytest: run `make venv` (requirements-test.txt pins them)"
    );
    py
}

#[test]
fn databricks_python_sdk_against_the_sandbox() {
    let py = venv_python();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("acceptance-tests").join("sdk_compat");
    let seed = dir.join("seed.json");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cmk-sandbox"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--provisioning-delay-ms",
                "300",
                "--seed",
            ])
            .arg(&seed)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start cmk-sandbox"),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from cmk-sandbox: {first:?}"))
        .to_string();
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(dir.join("test_sdk_compat.py"))
        .env("CMK_SANDBOX_URL", &url)
        .env("CMK_SANDBOX_SEED", &seed)
        .current_dir(root)
        .output()
        .expect("cannot run pytest");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "SDK compatibility tests failed:\n{text}"
    );
}
