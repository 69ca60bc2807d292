//! `review DIR` on a hostile pull request (issue 29), through the built
//! binary: each case ends with its exit code within a generous hang guard,
//! within a bounded peak memory (measured by wait4's rusage, not timed),
//! and no output (standard output or error, in any format) holds the
//! environment (a canary secret is set for the child), a file outside the
//! reviewed tree, an unescaped control or bidirectional character, or a
//! line a CI system would run as a command.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROVIDER: &str = env!("CARGO_BIN_EXE_terraform-provider-cmk");

/// The child's secret: it must appear in no output.
const CANARY: &str = "sekrit-canary";

/// A case that runs longer is killed and fails (a hang guard, not a
/// timing goal: the review's own time budget is 120 s).
const HANG_GUARD: Duration = Duration::from_secs(200);

/// Peak memory any case may reach, KiB ("a few hundred MB").
const MAX_RSS_KIB: i64 = 450 * 1024;

/// Linux's `struct rusage` (only `maxrss` is read; the rest is layout).
#[repr(C)]
#[allow(dead_code)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}

extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// Peak resident set, KiB.
    max_rss_kib: i64,
}

impl Run {
    fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn show(&self) -> String {
        let cut = |s: &str| s.chars().take(3000).collect::<String>();
        format!(
            "exit {}, peak {} KiB\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.max_rss_kib,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// Runs `review` in `dir` with the canary secret in its environment.
fn review(dir: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(PROVIDER);
    c.arg("review").args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("DATABRICKS_") || k.starts_with("AWS_") || k.starts_with("TF_") {
            c.env_remove(k);
        }
    }
    c.env("DATABRICKS_CLIENT_SECRET", CANARY)
        .env("DATABRICKS_HOST", format!("https://{CANARY}.example"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run the provider binary");
    let pid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = vec![];
        out.read_to_end(&mut s).ok();
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = vec![];
        err.read_to_end(&mut s).ok();
        s
    });
    let done = Arc::new(AtomicBool::new(false));
    let guard = {
        let done = done.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if t0.elapsed() > HANG_GUARD {
                    // SAFETY: signals our own child, not yet reaped.
                    unsafe { kill(pid, 9) };
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    let mut status = 0i32;
    let mut ru = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: valid pointers; the child is ours and std has not waited.
    let r = unsafe { wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    done.store(true, Ordering::SeqCst);
    let killed = guard.join().unwrap();
    assert!(!killed, "review {args:?} ran longer than {HANG_GUARD:?}");
    std::mem::forget(child);
    let code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        -(status & 0x7f)
    };
    let run = Run {
        code,
        stdout: String::from_utf8_lossy(&o.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&e.join().unwrap()).into_owned(),
        max_rss_kib: ru.maxrss,
    };
    safe(&run, args);
    run
}

/// What every run must hold to, whatever its exit code.
fn safe(run: &Run, args: &[&str]) {
    let all = run.both();
    assert!(
        !all.contains(CANARY),
        "the environment leaked: {}",
        run.show()
    );
    assert!(
        !all.contains("OUTSIDE-CANARY"),
        "a file outside the tree leaked: {}",
        run.show()
    );
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "peak memory {} KiB: {}",
        run.max_rss_kib,
        run.show()
    );
    let github = args.contains(&"github");
    for line in all.lines() {
        let t = line.trim_start();
        let own = github
            && ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|c| line.starts_with(c));
        assert!(
            own || !(t.starts_with("::") || t.starts_with("##")),
            "a CI command line {line:?}: {}",
            run.show()
        );
        if own {
            // Review's own annotation: properties hold no `::`, no raw new line.
            let props = &line[2..line[2..].find("::").map_or(line.len(), |p| p + 2)];
            assert!(!props.contains('\n'), "{line}");
        }
    }
    for c in ['\u{1b}', '\u{202e}', '\u{ffff}', '\u{7}', '\u{9b}'] {
        assert!(
            !all.contains(c),
            "raw U+{:04X} in the output: {}",
            c as u32,
            run.show()
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A repository (a git work tree) with the configuration in `repo/`.
fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("repo");
    std::fs::create_dir_all(r.join(".git")).unwrap();
    (t, r)
}

/// A workspace on the PREMIUM tier: CMK001, an error, at main.tf line 9.
const PREMIUM: &str = r#"variable "account" {
  default = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
}

resource "databricks_mws_customer_managed_keys" "k" {
  account_id = var.account
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info {
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/0d26daa6-5e44-4c97-a497-ef015f91254a"
  }
}

resource "databricks_mws_workspaces" "w" {
  account_id                               = var.account
  workspace_name                           = "w"
  aws_region                               = "us-east-1"
  pricing_tier                             = "PREMIUM"
  managed_services_customer_managed_key_id = databricks_mws_customer_managed_keys.k.customer_managed_key_id
}
"#;

fn assert_refused(run: &Run, wanted: &str) {
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains(wanted),
        "wanted {wanted:?}: {}",
        run.show()
    );
}

#[test]
fn a_tf_file_linked_to_the_environment_is_refused_by_name() {
    let (_t, r) = repo();
    write(&r, "main.tf", PREMIUM);
    std::os::unix::fs::symlink("/proc/self/environ", r.join("env.tf")).unwrap();
    let run = review(&r, &["."]);
    assert_refused(
        &run,
        "env.tf is a symbolic link that leaves the reviewed tree",
    );
}

#[test]
fn tfvars_linked_to_the_environment_is_refused_by_name() {
    let (_t, r) = repo();
    write(&r, "main.tf", PREMIUM);
    std::os::unix::fs::symlink("/proc/self/environ", r.join("terraform.tfvars")).unwrap();
    let run = review(&r, &["."]);
    assert_refused(&run, "terraform.tfvars is a symbolic link");
    // The same file named with -var-file.
    std::fs::remove_file(r.join("terraform.tfvars")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", r.join("prod.tfvars")).unwrap();
    let run = review(&r, &[".", "-var-file", "prod.tfvars"]);
    assert_refused(&run, "prod.tfvars is a symbolic link");
}

#[test]
fn a_module_outside_the_repository_is_not_read() {
    let (t, r) = repo();
    // Outside the work tree, with text that a parse error would quote.
    write(
        t.path(),
        "outside/main.tf",
        "locals {\n  a = 1\n}\n# OUTSIDE-CANARY\n",
    );
    write(
        &r,
        "main.tf",
        &format!("{PREMIUM}\nmodule \"m\" {{\n  source = \"../outside\"\n}}\n"),
    );
    let run = review(&r, &["."]);
    assert_refused(&run, "leaves the reviewed tree");
    // --root widens the tree on purpose: then the module is read.
    let run = review(&r, &[".", "--root", t.path().to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(run.stdout.contains("error CMK001"), "{}", run.show());
}

#[test]
fn a_parse_error_quotes_a_short_escaped_excerpt_only() {
    let (_t, r) = repo();
    let long = format!(
        "locals {{\n  a = \"{}{}\" \u{1b}[2J \u{202e} = =\n}}\n",
        "OUTSIDE-CANARY",
        "x".repeat(60_000)
    );
    write(&r, "main.tf", &long);
    let run = review(&r, &["."]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.stderr.contains("main.tf:2:"), "{}", run.show());
    assert!(run.stderr.contains("not valid HCL"), "{}", run.show());
    assert!(run.stderr.len() < 1000, "{}", run.show());
}

#[test]
fn doubling_locals_stop_at_the_value_budget() {
    let (_t, r) = repo();
    let mut text = String::from("locals {\n  l0 = \"0123456789abcdef\"\n");
    for i in 1..48 {
        text.push_str(&format!(
            "  l{i} = \"${{local.l{p}}}${{local.l{p}}}\"\n",
            p = i - 1
        ));
    }
    text.push_str("}\n");
    write(&r, "main.tf", &text);
    let run = review(&r, &["."]);
    assert_refused(
        &run,
        "the value budget (--max-value-mib 16) ran out at ./main.tf:1 (local.l",
    );
}

#[test]
fn a_for_expression_too_large_for_memory_stops_at_the_memory_budget() {
    let (_t, r) = repo();
    let items: Vec<String> = (0..1000).map(|i| format!("\"{i}\"")).collect();
    write(
        &r,
        "main.tf",
        &format!(
            "locals {{\n  big = [{}]\n  boom = [for a in local.big : [for b in local.big : [for c in local.big : \"${{a}}${{b}}${{c}}\"]]]\n}}\n",
            items.join(",")
        ),
    );
    let run = review(&r, &["."]);
    assert_refused(&run, "the memory budget of the review (256 MiB) ran out");
    assert!(run.stderr.contains("local.boom"), "{}", run.show());
}

#[test]
fn modules_called_twice_at_every_level_stop_at_the_call_budget() {
    let (_t, r) = repo();
    write(&r, "main.tf", "module \"a\" {\n  source = \"./m0\"\n}\n");
    for i in 0..25 {
        write(
            &r,
            &format!("m{i}/main.tf"),
            &format!(
                "module \"x\" {{\n  source = \"../m{n}\"\n}}\nmodule \"y\" {{\n  source = \"../m{n}\"\n}}\n",
                n = i + 1
            ),
        );
    }
    write(&r, "m25/main.tf", "locals {\n  a = 1\n}\n");
    let run = review(&r, &["."]);
    assert_refused(
        &run,
        "the module call budget (--max-module-calls 500) ran out",
    );
}

#[test]
fn a_million_instances_are_refused_not_cut() {
    let (_t, r) = repo();
    let mut text = String::new();
    for i in 0..8 {
        text.push_str(&format!(
            "resource \"aws_kms_key\" \"k{i}\" {{\n  count = 1000000\n}}\n"
        ));
    }
    write(&r, "main.tf", &text);
    let run = review(&r, &["."]);
    assert_refused(&run, "the instance budget (--max-instances 10000) ran out");
    // Under the budget, every instance is reviewed (no silent cut).
    write(
        &r,
        "main.tf",
        "resource \"aws_kms_key\" \"k\" {\n  count = 20\n}\n",
    );
    let run = review(&r, &[".", "--format", "json", "--max-instances", "20"]);
    assert_eq!(run.code, 0, "{}", run.show());
    let run = review(&r, &[".", "--max-instances", "19"]);
    assert_refused(&run, "20 instances of aws_kms_key.k");
}

#[test]
fn for_each_over_a_quarter_million_keys_is_refused() {
    let (_t, r) = repo();
    let c: Vec<String> = (0..64).map(|i| format!("\"{i:02}\"")).collect();
    write(
        &r,
        "main.tf",
        &format!(
            r#"locals {{
  c  = [{}]
  m2 = merge([for a in local.c : {{ for b in local.c : "${{a}}${{b}}" => 1 }}]...)
  m3 = merge([for a in local.c : {{ for k, v in local.m2 : "${{a}}${{k}}" => v }}]...)
}}
resource "aws_kms_key" "k" {{
  for_each = local.m3
  description = each.key
}}
"#,
            c.join(",")
        ),
    );
    let run = review(&r, &["."]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains("budget") && run.stderr.contains("ran out"),
        "{}",
        run.show()
    );
    assert!(run.stdout.len() < 10_000, "{}", run.show());
}

#[test]
fn max_input_mib_bounds_hcl_mode() {
    let (_t, r) = repo();
    let mut text = String::from(PREMIUM);
    text.push_str(&format!("# {}\n", "p".repeat(2 * 1024 * 1024)));
    write(&r, "main.tf", &text);
    let run = review(&r, &[".", "--max-input-mib", "1"]);
    assert_refused(
        &run,
        "the input budget (--max-input-mib 1) ran out reading ./main.tf",
    );
    let run = review(&r, &[".", "--max-input-mib", "4"]);
    assert_eq!(run.code, 1, "{}", run.show());
}

/// A configuration whose file name, instance key and suppression reason
/// carry workflow commands, ESC, U+202E and U+FFFF.
fn injection_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, r) = repo();
    let name = "x\n::add-mask::m\n::stop-commands::s\n::error title=pwned::\u{1b}[2J\u{202e}.tf";
    write(&r, name, PREMIUM);
    write(
        &r,
        "keys.tf",
        r#"resource "databricks_mws_workspaces" "each" {
  for_each = { "a\uFFFF\u202E\n::error::k" = "PREMIUM" }
  account_id   = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
  aws_region   = "us-east-1"
  pricing_tier = each.value
  managed_services_customer_managed_key_id = databricks_mws_customer_managed_keys.k.customer_managed_key_id
}
"#,
    );
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(10)).to_string();
    write(
        &r,
        "owner.json",
        &format!(
            r#"{{"suppressions": [{{"rule": "CMK001", "address": "databricks_mws_workspaces.w", "reason": "ok\n::add-mask::r\n::error::reason \u001b[2J \u202e", "expires": "{expires}"}}]}}"#
        ),
    );
    (t, r)
}

#[test]
fn no_format_lets_input_write_a_command_or_hidden_character() {
    let (_t, r) = injection_repo();
    for format in ["text", "json", "sarif", "junit", "github"] {
        // `safe` (in review) checks every line of both streams.
        let run = review(
            &r,
            &[".", "--format", format, "--suppressions", "owner.json"],
        );
        assert_eq!(run.code, 1, "{format}: {}", run.show());
        match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert!(v["findings"].as_array().is_some_and(|f| !f.is_empty()));
            }
            "sarif" => {
                let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                let results = v["runs"][0]["results"].as_array().unwrap();
                assert!(!results.is_empty());
                for res in results {
                    let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                        .as_str()
                        .unwrap();
                    assert!(
                        uri.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
                        "not percent-encoded: {uri:?}"
                    );
                }
            }
            "text" => {
                // The hostile characters are there, escaped.
                for esc in ["\\u{202e}", "\\u{ffff}", "\\u{1b}[2J", "\\u{a}::add-mask::"] {
                    assert!(run.stdout.contains(esc), "{esc}: {}", run.show());
                }
            }
            "junit" => well_formed_xml(&run.stdout),
            "github" => {
                assert!(
                    run.stdout.lines().any(|l| l.starts_with("::error file=")),
                    "{}",
                    run.show()
                );
            }
            _ => {}
        }
    }
}

/// Parses XML with Python's expat (a test needs a real parser): an error
/// fails the test with the parser's message.
fn well_formed_xml(text: &str) {
    let mut c = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.buffer.read()); print('well-formed')",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (make test needs it) parses the JUnit XML");
    use std::io::Write;
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("well-formed"),
        "JUnit XML not well-formed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        text.chars().take(3000).collect::<String>()
    );
}

#[test]
fn inline_suppressions_are_the_owners_to_allow() {
    let (_t, r) = repo();
    let text = PREMIUM.replace(
        "  pricing_tier                             = \"PREMIUM\"\n",
        "  # cmk:ignore CMK001 the pull request says so\n  pricing_tier                             = \"PREMIUM\"\n",
    );
    write(&r, "main.tf", &text);
    let run = review(&r, &["."]);
    assert_eq!(run.code, 0, "inline accepted by default: {}", run.show());
    let run = review(&r, &[".", "--no-inline-suppressions"]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(run.stdout.contains("CMK001"), "{}", run.show());
}

#[test]
fn a_far_expiry_is_refused() {
    let (_t, r) = repo();
    let text = PREMIUM.replace(
        "  pricing_tier                             = \"PREMIUM\"\n",
        "  # cmk:ignore CMK001 exp:9999-12-31 forever\n  pricing_tier                             = \"PREMIUM\"\n",
    );
    write(&r, "main.tf", &text);
    let run = review(&r, &["."]);
    assert_refused(&run, "main.tf:17: the suppression expires on 9999-12-31, later than --max-suppression-days 90 allows");
    // With the flag given, a suppression must carry an expiry date.
    write(
        &r,
        "main.tf",
        &PREMIUM.replace(
            "  pricing_tier                             = \"PREMIUM\"\n",
            "  # cmk:ignore CMK001 no date\n  pricing_tier                             = \"PREMIUM\"\n",
        ),
    );
    let run = review(&r, &[".", "--max-suppression-days", "30"]);
    assert_refused(&run, "the suppression has no expiry date");
}

#[test]
fn a_comment_inside_a_heredoc_suppresses_nothing() {
    let (_t, r) = repo();
    let text = PREMIUM.replace(
        "  workspace_name                           = \"w\"\n",
        "  workspace_name                           = \"w\"\n  custom_tags = {\n    note = <<EOT\n# cmk:ignore CMK001 hidden in a heredoc\nEOT\n    other = \"# cmk:ignore CMK001 hidden in a string\"\n  }\n",
    );
    write(&r, "main.tf", &text);
    let run = review(&r, &["."]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(!run.stdout.contains("suppressed"), "{}", run.show());
}

#[test]
fn an_unsupported_function_is_named_and_fails_the_strict_gate() {
    let (_t, r) = repo();
    write(
        &r,
        "main.tf",
        &PREMIUM.replace("= \"PREMIUM\"", "= trimspace(\" PREMIUM \")"),
    );
    let run = review(&r, &["."]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stdout
            .contains("could not evaluate: main.tf:13 (resource.databricks_mws_workspaces.w): function trimspace() is not supported"),
        "{}",
        run.show()
    );
    let run = review(&r, &[".", "--fail-on", "cannot-tell"]);
    assert_eq!(run.code, 1, "{}", run.show());
    let run = review(&r, &[".", "--fail-on", "cannot-tell", "--format", "junit"]);
    assert_eq!(run.code, 1, "{}", run.show());
    well_formed_xml(&run.stdout);
    assert!(
        run.stdout.contains("type=\"unevaluated\""),
        "{}",
        run.show()
    );
}
