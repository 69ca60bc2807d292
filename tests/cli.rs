//! The command lines a person types first, through the built binaries:
//! `--help` on each command and subcommand, `--version`. Each must exit 0
//! and print what the README and the guides say it does (issue 22: `review
//! --help` exited 2, the top-level help left out `--live` and
//! `--max-input-mib`, `cmk-sandbox --version` was an error).

use std::process::{Command, Output};

const PROVIDER: &str = env!("CARGO_BIN_EXE_terraform-provider-cmk");
const SANDBOX: &str = env!("CARGO_BIN_EXE_cmk-sandbox");

/// Runs a binary with no Databricks or AWS settings of the test's shell,
/// and a timeout: help must not wait on anything.
fn run(bin: &str, args: &[&str]) -> Output {
    let mut c = Command::new(bin);
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("DATABRICKS_") || k.starts_with("AWS_") || k.starts_with("TF_") {
            c.env_remove(k);
        }
    }
    let child = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let t0 = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{bin} {args:?} took {:?}",
        t0.elapsed()
    );
    out
}

/// The exit code is 0 and the standard output holds every `wanted` text;
/// returns that output.
fn succeeds_with(bin: &str, args: &[&str], wanted: &[&str]) -> String {
    let out = run(bin, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{bin} {args:?} exit code\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let missing: Vec<&&str> = wanted.iter().filter(|w| !stdout.contains(**w)).collect();
    assert!(
        missing.is_empty(),
        "{bin} {args:?}: the output lacks {missing:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

#[test]
fn provider_help_lists_every_command_and_the_review_flags() {
    let out = succeeds_with(
        PROVIDER,
        &["--help"],
        &[
            "Usage:",
            "--debug",
            "review PLAN_JSON|DIR|FILE.tf",
            "--format text|json|sarif|junit|github",
            "--fail-on error|warning|cannot-tell|never",
            "--no-inline-suppressions",
            "--max-suppression-days N",
            "--root DIR",
            "--max-input-mib N",
            "--max-instances N",
            "--max-seconds N",
            "--live",
            "--workspace-host-template",
            "docs [--out DIR]",
            "--version",
        ],
    );
    // -h is the same text.
    assert_eq!(succeeds_with(PROVIDER, &["-h"], &[]), out);
}

#[test]
fn review_help_exits_0_and_explains_each_flag() {
    let wanted = [
        "usage: terraform-provider-cmk review",
        "PLAN_JSON",
        "HCL mode",
        "--format",
        "--fail-on",
        "--suppressions",
        "--require",
        "--max-input-mib",
        "--no-inline-suppressions",
        "--max-suppression-days",
        "--root",
        "--max-instances",
        "--max-module-calls",
        "--max-value-mib",
        "--max-seconds",
        "--live",
        "--profile",
        "--workspace-host-template",
        "-var-file",
        // where --live's account id and hosts come from, in order
        "from a flag, the environment (DATABRICKS_ACCOUNT_ID, DATABRICKS_HOST, the",
        "then the cmk and databricks provider blocks",
    ];
    let long = succeeds_with(PROVIDER, &["review", "--help"], &wanted);
    let short = succeeds_with(PROVIDER, &["review", "-h"], &wanted);
    assert_eq!(long, short);
    // Help wins over anything else on the line: nothing is read.
    succeeds_with(
        PROVIDER,
        &["review", "/nonexistent/plan.json", "--help"],
        &["usage: terraform-provider-cmk review"],
    );
}

#[test]
fn provider_version_is_the_package_version() {
    let wanted = format!("terraform-provider-cmk {}\n", env!("CARGO_PKG_VERSION"));
    let long = succeeds_with(PROVIDER, &["--version"], &[&wanted]);
    assert_eq!(long, wanted);
    // -V is the same, on both binaries (cmk-sandbox has had it from clap).
    assert_eq!(succeeds_with(PROVIDER, &["-V"], &[]), long);
    let sandbox = succeeds_with(SANDBOX, &["--version"], &[]);
    assert_eq!(succeeds_with(SANDBOX, &["-V"], &[]), sandbox);
    succeeds_with(PROVIDER, &["--help"], &["--version | -V"]);
}

#[test]
fn sandbox_help_and_version_exit_0() {
    succeeds_with(
        SANDBOX,
        &["--help"],
        &[
            "Databricks Account API",
            "Usage: cmk-sandbox",
            "--seed <SEED>",
            "--state <STATE>",
            "--listen <LISTEN>",
            "--admin-token",
            "--relaxed-auth",
            "--version",
        ],
    );
    succeeds_with(
        SANDBOX,
        &["--version"],
        &[&format!("cmk-sandbox {}", env!("CARGO_PKG_VERSION"))],
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error_not_a_help_page() {
    // The other side of the tests above: exit 2, said on stderr.
    let out = run(PROVIDER, &["review", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag"), "{err}");
    let out = run(SANDBOX, &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
