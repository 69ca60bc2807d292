//! Drives the real `terraform` CLI against providers built from this crate.
//!
//! Each test gets a temporary directory with its configuration, a CLI config
//! with dev_overrides pointing at a private copy of the provider binary (so
//! the test can tell whether its provider process is still alive), and no
//! `terraform init`. `TF_ACC=1` runs these tests (`make test` sets it); a
//! missing `terraform` is a failure with a clear message, never a skip.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    /// Extra environment for every terraform run (credentials, endpoints).
    pub env: Vec<(String, String)>,
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
            env: vec![],
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
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

/// A `terraform` run in its own process group (as a shell runs a
/// foreground job), its output lines on a channel.
pub struct LiveRun {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// What it printed so far (both streams, a line each).
    pub output: String,
}

impl LiveRun {
    pub fn start(mut cmd: Command) -> LiveRun {
        let mut child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform");
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx.send(l)))
        });
        std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx2.send(l)))
        });
        LiveRun {
            child,
            lines: rx,
            output: String::new(),
        }
    }

    /// Reads output until a line contains `needle` (a hang guard of
    /// `limit`, not a timing goal).
    pub fn wait_for(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("never saw {needle:?}:\n{}", self.output));
            self.output.push_str(&line);
            self.output.push('\n');
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Ctrl-C as a terminal sends it: SIGINT to every process of the group.
    pub fn interrupt_group(&self) {
        let pgid = self.child.id();
        let ok = Command::new("kill")
            .args(["-INT", "--", &format!("-{pgid}")])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -INT -{pgid}");
    }

    /// Collects the output printed so far.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.output.push_str(&l);
            self.output.push('\n');
        }
    }

    /// Waits for the exit (hang guard `limit`) and collects the rest of the output.
    pub fn finish(&mut self, limit: Duration) -> std::process::ExitStatus {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                // The whole group, so that no provider outlives the test.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", self.child.id())])
                    .status();
                let _ = self.child.wait();
                panic!("terraform did not stop:\n{}", self.output);
            }
            while let Ok(l) = self.lines.try_recv() {
                self.output.push_str(&l);
                self.output.push('\n');
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(l) = self.lines.try_recv() {
            self.output.push_str(&l);
            self.output.push('\n');
        }
        status
    }
}
