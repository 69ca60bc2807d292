//! Drives the real `terraform` CLI against providers built from this crate.
//!
//! Each test gets a temporary directory with its configuration, a CLI config
//! with dev_overrides pointing at a private copy of the provider binary (so
//! the test can tell whether its provider process is still alive), and no
//! `terraform init`. `TF_ACC=1` runs these tests (`make test` sets it); a
//! missing `terraform` is a failure with a clear message, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const CMK_SOURCE: &str = "databricks-cmk/cmk";

pub const CMK_HEADER: &str = r#"terraform {
  required_providers {
    cmk = { source = "databricks-cmk/cmk" }
  }
}
"#;

/// True when acceptance tests should run; otherwise prints why they do not.
pub fn enabled(test: &str) -> bool {
    let on = std::env::var("TF_ACC").is_ok_and(|v| !v.is_empty() && v != "0");
    if !on {
        eprintln!("{test}: acceptance test not run: set TF_ACC=1 (make test does)");
    }
    on
}

pub fn terraform() -> PathBuf {
    let candidate = std::env::var_os("TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"));
    match Command::new(&candidate).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => candidate,
        _ => panic!(
            "terraform CLI not found ({}): install Terraform 1.11+ and put it on PATH (or set TERRAFORM). Acceptance tests need the real CLI.",
            candidate.display()
        ),
    }
}

/// The provider binary cargo built for this test run.
pub fn provider_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-cmk"))
}

/// An example binary of this crate (built by `cargo build --examples`; `make test` does).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/acceptance-HASH -> target/<profile>/examples/NAME
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let p = profile_dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --release --examples` (make test does)",
        p.display()
    );
    p
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "terraform failed:\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A working directory with its own providers.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub bin_dir: PathBuf,
    terraform: PathBuf,
}

impl Workdir {
    /// A directory whose `main.tf` is `config`, with the cmk provider.
    pub fn new(config: &str) -> Workdir {
        Workdir::with_providers(
            config,
            &[(CMK_SOURCE, "terraform-provider-cmk", provider_bin())],
        )
    }

    /// `providers`: (source address, binary name, built binary).
    pub fn with_providers(config: &str, providers: &[(&str, &str, PathBuf)]) -> Workdir {
        let terraform = terraform();
        let dir = tempfile::Builder::new()
            .prefix("cmk-acc-")
            .tempdir()
            .expect("tempdir");
        let bin_dir = dir.path().join("providers");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let mut overrides = String::new();
        for (source, name, bin) in providers {
            std::fs::copy(bin, bin_dir.join(name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", bin.display()));
            overrides.push_str(&format!("    \"{source}\" = \"{}\"\n", bin_dir.display()));
        }
        std::fs::write(
            dir.path().join("cli.tfrc"),
            format!("provider_installation {{\n  dev_overrides {{\n{overrides}  }}\n  direct {{}}\n}}\n"),
        )
        .unwrap();
        let w = Workdir {
            dir,
            bin_dir,
            terraform,
        };
        w.write("main.tf", config);
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.path().join(name), content).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.terraform);
        c.args(args)
            .current_dir(self.path())
            .env("TF_CLI_CONFIG_FILE", self.path().join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_REATTACH_PROVIDERS")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.command(args).output().expect("run terraform"))
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.run(args);
        o.ok();
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| {
            panic!("terraform {args:?} did not print JSON ({e}):\n{}", o.stdout)
        })
    }

    /// PIDs of live processes started from this directory's provider copies.
    pub fn provider_pids(&self) -> Vec<u32> {
        let mut pids = vec![];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(exe) = std::fs::read_link(entry.path().join("exe")) {
                if exe.starts_with(&self.bin_dir) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The 1-based line of the first line of main.tf containing `needle`.
    pub fn line_of(&self, needle: &str) -> u64 {
        let text = std::fs::read_to_string(self.path().join("main.tf")).unwrap();
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .unwrap_or_else(|| panic!("{needle:?} not in main.tf"))
    }
}

/// Diagnostics of `terraform validate -json`.
pub fn validate_diagnostics(w: &Workdir) -> Vec<serde_json::Value> {
    let o = w.run(&["validate", "-json", "-no-color"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("validate -json: {e}\n{}", o.all()));
    v["diagnostics"].as_array().cloned().unwrap_or_default()
}

/// Diagnostics of `terraform plan -json`.
pub fn plan_diagnostics(w: &Workdir) -> (i32, Vec<serde_json::Value>) {
    let o = w.run(&["plan", "-json", "-no-color", "-input=false"]);
    let diags = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "diagnostic")
        .map(|v| v["diagnostic"].clone())
        .collect();
    (o.code, diags)
}
