//! Every example runs in a test: the quickstart behind `make demo` as the
//! README runs it, and every other `.tf` under `examples/` planned against
//! cmk-sandbox (and moto's KMS for keys), so no example rots unseen.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{enabled, terraform, Workdir, CMK_HEADER};
use crate::moto_server::MotoServer;
use crate::sandbox::{oauth_env, Sandbox, ACCOUNT_ID};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the built provider and cmk-sandbox.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-cmk"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn quickstart_runs_as_make_demo_does() {
    if !enabled("quickstart_runs_as_make_demo_does") {
        return;
    }
    let o = Command::new(repo().join("examples/quickstart/run.sh"))
        .arg(bin_dir())
        .env("TERRAFORM", terraform())
        .env_remove("TF_LOG")
        .output()
        .expect("run examples/quickstart/run.sh");
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "make demo's script failed:\n{out}");
    // The for_each form plans a configuration and a binding per workspace.
    let many = &out[out
        .find("with for_each: terraform plan")
        .expect("the for_each section")
        ..out.find("== terraform apply").expect("the apply")];
    assert!(
        many.contains("Plan:\x1b[0m 4 to add") || many.contains("Plan: 4 to add"),
        "the for_each plan:\n{many}"
    );
    assert!(
        many.contains("cmk_workspace_binding.each[\"analytics-staging\"]"),
        "{many}"
    );
    assert!(out.contains("Apply complete! Resources: 2 added"), "{out}");
    assert!(out.contains("(no changes)"), "the re-plan is empty:\n{out}");
    // The refusal on the PREMIUM, SERVERLESS workspace in eu-west-1 names
    // each rule it breaks.
    let refusal = &out[out
        .find("a mistake caught at plan time")
        .expect("the refusal section")..];
    for rule in ["CMK001", "CMK002", "CMK007", "CMK013"] {
        assert!(refusal.contains(rule), "{rule} in the refusal:\n{refusal}");
    }
    assert!(out.contains("the plan above failed on purpose"), "{out}");
}

/// Every example file except the quickstart (run above), with the file it
/// is documented from.
fn example_files() -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![repo().join("examples")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("quickstart") {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_plans_against_the_sandbox() {
    if !enabled("every_example_plans_against_the_sandbox") {
        return;
    }
    let files = example_files();
    assert!(files.len() >= 9, "examples found: {files:?}");
    let sb = Sandbox::start();
    let moto = MotoServer::start();
    let mut failed = vec![];
    // Every example shows the form users write most: `count` or
    // `for_each` (the provider block has neither in Terraform).
    let without: Vec<_> = files
        .iter()
        .filter(|f| !f.ends_with("provider/provider.tf"))
        .filter(|f| {
            !std::fs::read_to_string(f).unwrap().lines().any(|l| {
                let l = l.trim_start();
                ["for_each", "count"].iter().any(|m| {
                    l.strip_prefix(m)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
            })
        })
        .collect();
    assert!(
        without.is_empty(),
        "examples without a count or for_each form: {without:?}"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let standalone = text.contains("required_providers");
        let w = if standalone {
            // The provider example configures itself from the environment.
            Workdir::new(&text)
        } else if text.contains("resource \"cmk_kms_key\"") {
            // Keys are created in moto's KMS.
            let provider = sb.provider_block().replacen(
                "provider \"cmk\" {",
                &format!(
                    "provider \"cmk\" {{\n  aws_region   = \"us-east-1\"\n  kms_endpoint = \"{}\"",
                    moto.endpoint
                ),
                1,
            );
            let w = Workdir::new(&text);
            w.write("provider.tf", &format!("{CMK_HEADER}\n{provider}"));
            w
        } else {
            // No AWS settings: key ARNs named literally are not verified
            // (a warning), as the README says.
            let w = Workdir::new(&text);
            w.write(
                "provider.tf",
                &format!("{CMK_HEADER}\n{}", sb.provider_block()),
            );
            w
        };
        let mut cmd = w.command(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
        if text.contains("resource \"cmk_kms_key\"") {
            cmd.envs(moto.env())
                .env("AWS_ENDPOINT_URL_STS", &moto.endpoint)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE");
        }
        let o = cmd
            .env("DATABRICKS_HOST", &sb.url)
            .env("DATABRICKS_ACCOUNT_ID", ACCOUNT_ID)
            .envs(oauth_env())
            .output()
            .expect("run terraform");
        let code = o.status.code().unwrap_or(-1);
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // 0: nothing to do; 2: a plan with changes. 1 is an error.
        if code == 1 || all.contains("Error:") {
            failed.push(format!("{}:\n{all}", file.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "examples that do not plan:\n{}",
        failed.join("\n\n")
    );
}
