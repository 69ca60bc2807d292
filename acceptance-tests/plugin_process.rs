//! The provider process: start-up refusal, clean exit, interrupts, debug mode.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{enabled, example_bin, provider_bin, LiveRun, Workdir, CMK_HEADER};

#[test]
fn run_by_hand_it_says_it_is_a_plugin_and_fails() {
    let o = Command::new(provider_bin())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "nothing on stdout without a handshake");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("plugin for Terraform") && err.contains("--debug"),
        "{err}"
    );
}

#[test]
fn provider_exits_cleanly_when_terraform_finishes() {
    if !enabled("provider_exits_cleanly_when_terraform_finishes") {
        return;
    }
    let w = Workdir::new(&format!(
        "{CMK_HEADER}\ndata \"cmk_kms_key_policy\" \"p\" {{\n  use_cases = [\"MANAGED_SERVICES\"]\n  aws_account_id = \"123456789012\"\n}}\n"
    ));
    let o = w
        .command(&["plan", "-input=false", "-no-color"])
        .env("TF_LOG", "debug")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("plugin exited"),
        "terraform saw no plugin exit"
    );
    assert!(
        !log.contains("failed to exit gracefully"),
        "provider had to be killed"
    );
    assert!(!log.contains("panicked"), "provider panicked");
    // The handshake used mutual TLS.
    assert!(log.contains("configuring client automatic mTLS"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !w.provider_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        w.provider_pids().is_empty(),
        "provider processes left behind: {:?}",
        w.provider_pids()
    );
}

#[test]
fn interrupted_apply_stops_the_provider_work_and_leaves_nothing_behind() {
    if !enabled("interrupted_apply_stops_the_provider_work_and_leaves_nothing_behind") {
        return;
    }
    let sleep = example_bin("sleep_provider");
    let w = Workdir::with_providers(
        r#"terraform {
  required_providers {
    sleep = { source = "example/sleep" }
  }
}
resource "sleep_wait" "long" {
  seconds = 300
}
"#,
        &[("example/sleep", "terraform-provider-sleep", sleep)],
    );
    let mut run =
        LiveRun::start(w.command(&["apply", "-auto-approve", "-input=false", "-no-color"]));
    run.wait_for("sleep_wait.long: Creating...", Duration::from_secs(60));
    assert_eq!(
        w.provider_pids().len(),
        1,
        "one provider process runs the create"
    );
    // Terraform prints "Creating..." just before it sends ApplyResourceChange.
    // A StopProvider that arrives before the create starts cancels nothing
    // (later operations get a fresh token, as in HashiCorp's SDK), so give the
    // create time to begin: the interrupt must land while it runs.
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // A hang guard: the 300 s wait must be cut short (checked below).
    let status = run.finish(Duration::from_secs(30));
    let output = run.output;
    assert!(!status.success(), "an interrupted apply fails:\n{output}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the 300 s wait was cut short, not waited out"
    );
    assert!(output.contains("Interrupt received"), "{output}");
    assert!(
        output.contains("Wait interrupted"),
        "the provider saw StopProvider:\n{output}"
    );
    // Nothing half-made in state, and no provider process left.
    let state = w.run(&["state", "list"]);
    assert!(
        !state.stdout.contains("sleep_wait.long"),
        "state: {}",
        state.stdout
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !w.provider_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        w.provider_pids().is_empty(),
        "provider left running after the interrupt"
    );
}

#[test]
fn debug_mode_serves_terraform_through_reattach() {
    if !enabled("debug_mode_serves_terraform_through_reattach") {
        return;
    }
    let w = Workdir::new(&format!(
        "{CMK_HEADER}\noutput \"f\" {{ value = provider::cmk::key_features(\"secrets\") }}\n"
    ));
    let mut provider = Command::new(w.bin_dir.join("terraform-provider-cmk"))
        .arg("--debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(provider.stdout.take().unwrap()).lines();
    let reattach = loop {
        let line = lines.next().expect("debug output ended").unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            break rest.trim_end_matches('\'').to_string();
        }
    };
    let v: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    assert_eq!(
        v["registry.terraform.io/databricks-cmk/cmk"]["ProtocolVersion"],
        6
    );
    let o = w
        .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .env("TF_REATTACH_PROVIDERS", &reattach)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("MANAGED_SERVICES"), "{text}");
    // Terraform leaves a reattached provider running; Ctrl-C stops it cleanly.
    assert!(provider.try_wait().unwrap().is_none());
    Command::new("kill")
        .args(["-INT", &provider.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = provider.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "debug provider ignored Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
}
