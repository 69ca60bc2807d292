//! Every guide works as written, because this test runs it.
//!
//! The fenced blocks of README.md and docs/guides/*.md are extracted and run
//! with the real `terraform` CLI and the built provider (installed as `make
//! install` does it), so a guide cannot drift from the binaries unseen.
//! A guide that needs cmk-sandbox or moto's KMS server starts them in its
//! own blocks, as the reader does.
//!
//! Each fenced block carries a marker, an HTML comment right before its
//! fence (invisible once rendered). A block without one fails
//! [`every_block_of_every_guide_is_marked`], so a new block must say how it
//! is run, or why it cannot be:
//!
//! ```text
//! <!-- not runnable: why (a GitHub Actions job, a real cloud login, ...) -->
//!
//! <!-- runnable: GROUP
//! file: NAME                 write the block there (relative to the group's
//!                            directory; HCL goes to main.tf without it; a
//!                            shell block with `file:` is a script, written,
//!                            not run); later blocks append to the file
//! replace: FROM => TO        a substitution the text tells the reader to make
//!                            (each must match); `\n` is a new line
//! expect: N                  a shell block's exit code (default 0)
//! contains: TEXT             its output holds TEXT
//! lacks: TEXT                its output does not hold TEXT
//! background: TEXT           run it in the background until the group ends,
//!                            once its output holds TEXT
//! -->
//! ```
//!
//! In `TO`, `${PORT}` and `${PORT2}` are free loopback ports (the same
//! two for a whole document), `${BIN_DIR}` where cargo built the binaries
//! (`target/release`), `${REPO}` this repository, `${SANDBOX}` the URL of a
//! cmk-sandbox the harness starts (seeded from examples/sandbox/seed.json;
//! only when named), `${MOTO}` that of a moto server it starts (only when
//! named), and `${DIST}` what `make release` writes (made from the binary
//! under test by tools/package_release.py, only when named).
//!
//! **A clean shell.** Nothing of the harness's or the developer's
//! environment reaches a block: each runs in `bash` started with
//! `env_clear()` and `set -euo pipefail` (so a variable the guide never set
//! fails the block where it is read), with only:
//! - `HOME`: the group's own home, where tools/install.sh (what `make
//!   install` runs) put `terraform-provider-cmk` and `cmk-sandbox` in
//!   `~/.local/bin` and the provider in `~/.terraform.d/plugins`;
//! - `PATH`: that `~/.local/bin` (the README tells the reader to put it on
//!   `PATH`), the directory of `terraform`, `/usr/local/bin:/usr/bin:/bin`;
//! - `CHECKPOINT_DISABLE=1` and `TF_IN_AUTOMATION=1`: no call home and no
//!   "run terraform apply next" hints, no effect on what a block decides;
//! - `TF_CLI_ARGS=-no-color`: plain text for `contains:`;
//! - and what earlier blocks of the same group exported: the environment a
//!   block ends with (after `export`s, `unset`s) is the next block's, as
//!   in the reader's terminal. (Background blocks pass nothing on.)
//!
//! So a credential, an endpoint or a setting a guide does not show fails
//! the test ([`a_block_sees_nothing_the_guide_does_not_set`]).
//!
//! Blocks of one group run in their order in the document, in one working
//! directory (each starts there, whatever an earlier one `cd`ed to). A
//! group must end with a shell block, so every configuration it writes is
//! run.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{enabled, terraform};
use crate::moto_server::MotoServer;
use crate::sandbox::Sandbox;

/// The documents this test runs; a guide not listed fails
/// [`every_guide_has_a_runner`].
const DOCUMENTS: [&str; 6] = [
    "README.md",
    "docs/guides/binding-keys-to-a-workspace.md",
    "docs/guides/cmk-sandbox-in-ci.md",
    "docs/guides/govcloud.md",
    "docs/guides/moving-from-the-official-provider.md",
    "docs/guides/review-in-ci.md",
];

/// A shell block that runs longer than this is stopped (a hang guard, not
/// a timing goal).
const BLOCK_LIMIT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put the provider and cmk-sandbox of this test run.
fn bin_dir() -> PathBuf {
    crate::harness::provider_bin()
        .parent()
        .unwrap()
        .to_path_buf()
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Runnable {
    group: String,
    file: Option<String>,
    replace: Vec<(String, String)>,
    expect: i32,
    contains: Vec<String>,
    lacks: Vec<String>,
    background: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Runnable(Runnable),
    NotRunnable(String),
}

#[derive(Debug, Clone)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    body: String,
    /// The marker, or why the block has no valid one.
    marker: Result<Marker, String>,
}

impl Block {
    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "shell" | "bash")
    }
    fn is_hcl(&self) -> bool {
        matches!(self.lang.as_str(), "hcl" | "terraform" | "tf")
    }
}

fn parse_marker(comment: &str) -> Result<Marker, String> {
    let inner = comment
        .trim()
        .strip_prefix("<!--")
        .and_then(|c| c.strip_suffix("-->"))
        .ok_or("the marker is not one HTML comment")?
        .trim();
    if let Some(reason) = inner.strip_prefix("not runnable:") {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err("`not runnable:` needs the reason".into());
        }
        return Ok(Marker::NotRunnable(reason.to_string()));
    }
    let rest = inner
        .strip_prefix("runnable:")
        .ok_or("the comment before the fence is neither `runnable:` nor `not runnable:`")?;
    let mut lines = rest.lines();
    let group = lines.next().unwrap_or("").trim();
    if group.is_empty() || group.contains(char::is_whitespace) {
        return Err(format!("`runnable:` needs one group name, found {group:?}"));
    }
    let mut r = Runnable {
        group: group.to_string(),
        ..Runnable::default()
    };
    for l in lines.map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = l
            .split_once(':')
            .ok_or_else(|| format!("marker line {l:?} is not `key: value`"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "file" => r.file = Some(value),
            "replace" => {
                let (from, to) = value
                    .split_once(" => ")
                    .ok_or_else(|| format!("`replace: {value}` needs `FROM => TO`"))?;
                r.replace
                    .push((from.replace("\\n", "\n"), to.replace("\\n", "\n")));
            }
            "expect" => {
                r.expect = value
                    .parse()
                    .map_err(|_| format!("`expect: {value}` is not an exit code"))?
            }
            "contains" => r.contains.push(value),
            "lacks" => r.lacks.push(value),
            "background" => r.background = Some(value),
            other => return Err(format!("unknown marker key {other:?}")),
        }
    }
    Ok(Marker::Runnable(r))
}

/// The fenced blocks of a Markdown text, each with its marker: the HTML
/// comment that ends on the last non-blank line before the fence.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(lang) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let start = i;
        let mut body = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let l = lines[i];
            let cut = l.len() - l.trim_start().len();
            body.push_str(&l[cut.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        i += 1;
        // The marker: the comment ending right before the fence.
        let mut j = start;
        while j > 0 && lines[j - 1].trim().is_empty() {
            j -= 1;
        }
        let marker = if j > 0 && lines[j - 1].trim_end().ends_with("-->") {
            let end = j - 1;
            let mut k = end;
            while !lines[k].contains("<!--") && k > 0 {
                k -= 1;
            }
            let comment: Vec<&str> = lines[k..=end].to_vec();
            parse_marker(&comment.join("\n"))
        } else {
            Err("no `<!-- runnable: ... -->` or `<!-- not runnable: ... -->` marker".into())
        };
        out.push(Block {
            line: start + 1,
            lang: lang.trim().to_string(),
            body,
            marker,
        });
    }
    out
}

/// What is wrong with the markers of one document (empty: nothing).
fn marker_problems(doc: &str, text: &str) -> Vec<String> {
    let mut out = vec![];
    let all = blocks(text);
    let mut last_of_group: BTreeMap<String, &Block> = BTreeMap::new();
    for b in &all {
        match &b.marker {
            Err(e) => out.push(format!("{doc}:{}: ```{} block: {e}", b.line, b.lang)),
            Ok(Marker::Runnable(r)) => {
                if !b.is_shell() && !b.is_hcl() && r.file.is_none() {
                    out.push(format!(
                        "{doc}:{}: a runnable ```{} block needs `file:`",
                        b.line, b.lang
                    ));
                }
                if r.background.is_some() && r.file.is_some() {
                    out.push(format!(
                        "{doc}:{}: a block is either written (`file:`) or run in the background",
                        b.line
                    ));
                }
                last_of_group.insert(r.group.clone(), b);
            }
            Ok(Marker::NotRunnable(_)) => {}
        }
    }
    for (g, b) in last_of_group {
        let runs = matches!(&b.marker, Ok(Marker::Runnable(r)) if b.is_shell() && r.file.is_none());
        if !runs {
            out.push(format!(
                "{doc}: group {g} ends with the ```{} block of line {}: a group must end with a shell block that runs what it wrote",
                b.lang, b.line
            ));
        }
    }
    out
}

#[test]
fn every_block_of_every_guide_is_marked() {
    let mut problems = vec![];
    let mut runnable = 0;
    for doc in DOCUMENTS {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        problems.extend(marker_problems(doc, &text));
        runnable += blocks(&text)
            .iter()
            .filter(|b| matches!(b.marker, Ok(Marker::Runnable(_))))
            .count();
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(runnable >= 15, "runnable blocks: {runnable}");
}

#[test]
fn every_guide_has_a_runner() {
    let mut guides: Vec<String> = std::fs::read_dir(repo().join("docs/guides"))
        .unwrap()
        .flatten()
        .map(|e| format!("docs/guides/{}", e.file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md"))
        // The rule pages are guides for the registry, generated by `make
        // docs` (checked against the generator by the lib docs test): no
        // block of theirs is a step to run.
        .filter(|p| {
            !std::fs::read_to_string(repo().join(p))
                .unwrap()
                .contains("<!-- Generated by `make docs`; do not edit by hand. -->")
        })
        .collect();
    guides.sort();
    assert!(guides.len() >= 5, "{guides:?}");
    let this_file = include_str!("guides.rs");
    for g in &guides {
        assert!(
            DOCUMENTS.contains(&g.as_str()),
            "{g} is not in guides.rs's DOCUMENTS: add it, with a test that runs it"
        );
    }
    for d in DOCUMENTS {
        assert!(
            this_file.contains(&format!("run_document(\"{d}\")")),
            "{d} is in DOCUMENTS but no test calls run_document on it"
        );
    }
}

/// The marker checker itself: what it accepts and what it refuses.
#[test]
fn the_marker_checker_refuses_unmarked_and_unfinished_blocks() {
    let unmarked = "text\n\n```sh\necho hi\n```\n";
    assert!(marker_problems("d", unmarked)[0].contains("no `<!-- runnable"));
    let no_reason = "<!-- not runnable: -->\n```sh\necho\n```\n";
    assert!(marker_problems("d", no_reason)[0].contains("needs the reason"));
    let unknown_key = "<!-- runnable: g\nfiel: x.tf -->\n```sh\necho\n```\n";
    assert!(marker_problems("d", unknown_key)[0].contains("unknown marker key"));
    let unfinished = "<!-- runnable: g -->\n```hcl\nx = 1\n```\n";
    assert!(marker_problems("d", unfinished)[0].contains("must end with a shell block"));
    let json_without_file =
        "<!-- runnable: g -->\n```json\n{}\n```\n<!-- runnable: g -->\n```sh\ntrue\n```\n";
    assert!(marker_problems("d", json_without_file)[0].contains("needs `file:`"));
    let good = "<!-- runnable: g\n  file: seed.json\n  replace: a => ${SANDBOX}\\nb\n-->\n\n```json\n{}\n```\n  <!-- not runnable: a GitHub Actions job -->\n  ```yaml\n  on: push\n  ```\n<!-- runnable: g\nexpect: 1\ncontains: x -->\n```sh\nfalse\n```\n";
    assert_eq!(marker_problems("d", good), Vec::<String>::new());
    let b = blocks(good);
    assert_eq!(b.len(), 3);
    let Ok(Marker::Runnable(r)) = &b[0].marker else {
        panic!("{:?}", b[0].marker)
    };
    assert_eq!(r.file.as_deref(), Some("seed.json"));
    assert_eq!(r.replace, vec![("a".into(), "${SANDBOX}\nb".into())]);
    assert_eq!(b[1].body, "on: push\n");
    assert_eq!(
        b[1].marker,
        Ok(Marker::NotRunnable("a GitHub Actions job".into()))
    );
}

/// One group's directory, home and environment.
struct Group {
    work: PathBuf,
    home: PathBuf,
    env: BTreeMap<String, String>,
    failed: bool,
    /// Background blocks, stopped when the document ends.
    background: Vec<Child>,
}

/// The machine the reader runs the guides on.
struct Machine<'a> {
    root: &'a Path,
    /// Two free loopback ports, for blocks that name them.
    ports: [u16; 2],
    /// Started when a marker names `${SANDBOX}` / `${MOTO}`.
    sandbox: Option<Sandbox>,
    moto: Option<MotoServer>,
    dist: Option<PathBuf>,
}

impl Machine<'_> {
    fn vars(&mut self, text: &str) -> String {
        if text.contains("${DIST}") && self.dist.is_none() {
            let dist = self.root.join("dist");
            let o = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
                .arg(repo().join("tools/package_release.py"))
                .arg(crate::harness::provider_bin())
                .arg(&dist)
                .output()
                .expect("run tools/package_release.py");
            assert!(
                o.status.success(),
                "package_release.py: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            self.dist = Some(dist);
        }
        if text.contains("${SANDBOX}") && self.sandbox.is_none() {
            self.sandbox = Some(Sandbox::start());
        }
        if text.contains("${MOTO}") && self.moto.is_none() {
            self.moto = Some(MotoServer::start());
        }
        let mut out = text
            .replace("${REPO}", &repo().display().to_string())
            .replace("${PORT2}", &self.ports[1].to_string())
            .replace("${PORT}", &self.ports[0].to_string())
            .replace("${BIN_DIR}", &bin_dir().display().to_string());
        if let Some(s) = &self.sandbox {
            out = out.replace("${SANDBOX}", &s.url);
        }
        if let Some(m) = &self.moto {
            out = out.replace("${MOTO}", &m.endpoint);
        }
        if let Some(d) = &self.dist {
            out = out.replace("${DIST}", &d.display().to_string());
        }
        out
    }

    fn group(&self, name: &str) -> Group {
        let base = self.root.join(name);
        let (work, home) = (base.join("work"), base.join("home"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        // What `make install` does, into this home.
        let o = Command::new(repo().join("tools/install.sh"))
            .arg(bin_dir())
            .arg(home.join(".local"))
            .arg(home.join(".terraform.d/plugins"))
            .env("HOME", &home)
            .output()
            .expect("run tools/install.sh");
        assert!(
            o.status.success(),
            "tools/install.sh: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let tf = terraform();
        let tf_dir = std::fs::canonicalize(which(&tf))
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let path = format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            home.join(".local/bin").display(),
            tf_dir.display()
        );
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("HOME", home.display().to_string()),
            ("PATH", path),
            ("CHECKPOINT_DISABLE", "1".into()),
            ("TF_IN_AUTOMATION", "1".into()),
            // Plain text for `contains:`; no other effect on what runs.
            ("TF_CLI_ARGS", "-no-color".into()),
        ] {
            env.insert(k.to_string(), v);
        }
        Group {
            work,
            home,
            env,
            failed: false,
            background: vec![],
        }
    }
}

/// `terraform`'s full path (the harness may give a bare name).
fn which(p: &Path) -> PathBuf {
    if p.components().count() > 1 {
        return p.to_path_buf();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .unwrap_or_else(|| panic!("{} is not on PATH", p.display()))
}

/// Where a block leaves the environment it ends with.
fn env_file(g: &Group) -> PathBuf {
    g.home.join(".block-env")
}

fn shell(g: &Group, script: &str, pass_env_on: bool) -> Command {
    let mut c = Command::new("bash");
    let keep = if pass_env_on {
        format!(
            "trap '/usr/bin/env -0 > \"{}\"' EXIT\n",
            env_file(g).display()
        )
    } else {
        String::new()
    };
    c.arg("-c")
        .arg(format!("{keep}set -euo pipefail\n{script}"))
        .current_dir(&g.work)
        .env_clear()
        .envs(&g.env)
        .stdin(Stdio::null())
        .process_group(0);
    c
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// What a block exported, for the blocks after it: the environment it ended
/// with, less what bash sets by itself.
fn keep_exports(g: &mut Group) {
    let Ok(raw) = std::fs::read(env_file(g)) else {
        return;
    };
    let mut env = BTreeMap::new();
    for entry in raw.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        if let Some((k, v)) = entry.split_once('=') {
            if !["PWD", "OLDPWD", "SHLVL", "_"].contains(&k) {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    g.env = env;
}

/// Runs a shell block to its end (hang guard [`BLOCK_LIMIT`]): exit code and
/// both streams.
fn run_to_end(g: &Group, script: &str) -> (i32, String) {
    let log = g.work.join(".block-output");
    let file = std::fs::File::create(&log).unwrap();
    let _ = std::fs::remove_file(env_file(g));
    let mut child = shell(g, script, true)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("run bash");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > BLOCK_LIMIT {
            kill_group(&mut child);
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return (-1, format!("{out}\n(stopped after {BLOCK_LIMIT:?})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (status.code().unwrap_or(-1), out)
}

/// Starts a background block and waits until its output holds `ready`.
fn run_in_background(g: &mut Group, script: &str, ready: &str) -> Result<(), String> {
    let log = g
        .home
        .join(format!("background-{}.log", g.background.len()));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = shell(g, script, false)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("run bash");
    let t0 = Instant::now();
    loop {
        let mut out = String::new();
        if let Ok(mut f) = std::fs::File::open(&log) {
            let _ = f.read_to_string(&mut out);
        }
        if out.contains(ready) {
            g.background.push(child);
            return Ok(());
        }
        if let Some(s) = child.try_wait().unwrap() {
            return Err(format!("ended ({s}) before printing {ready:?}:\n{out}"));
        }
        if t0.elapsed() > Duration::from_secs(30) {
            kill_group(&mut child);
            return Err(format!("never printed {ready:?}:\n{out}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs every runnable block of `doc`; panics with every failure.
fn run_document(doc: &str) {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    if let Err(e) = run_text(doc, &text) {
        panic!("{e}");
    }
}

/// Runs every runnable block of a guide's text: every failure, or nothing.
fn run_text(doc: &str, text: &str) -> Result<(), String> {
    let problems = marker_problems(doc, text);
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let all = blocks(text);
    if !all
        .iter()
        .any(|b| matches!(b.marker, Ok(Marker::Runnable(_))))
    {
        // Every block says why it cannot run here (checked above).
        return Ok(());
    }
    let root = tempfile::Builder::new()
        .prefix("cmk-guide-")
        .tempdir()
        .unwrap();
    let (p1, mut p2) = (free_port(), free_port());
    while p2 == p1 {
        p2 = free_port();
    }
    let mut m = Machine {
        root: root.path(),
        sandbox: None,
        moto: None,
        dist: None,
        ports: [p1, p2],
    };
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut failures = vec![];
    let mut ran = 0;
    for b in &all {
        let Ok(Marker::Runnable(r)) = &b.marker else {
            continue;
        };
        let mut g = groups.remove(&r.group).unwrap_or_else(|| m.group(&r.group));
        let at = format!("{doc}:{} (group {})", b.line, r.group);
        if g.failed {
            groups.insert(r.group.clone(), g);
            continue;
        }
        let mut body = b.body.clone();
        let mut stale = vec![];
        for (from, to) in &r.replace {
            if !body.contains(from.as_str()) {
                stale.push(from.clone());
            }
            body = body.replace(from.as_str(), &m.vars(to));
        }
        if !stale.is_empty() {
            failures.push(format!(
                "{at}: the marker replaces {stale:?}, which the block does not hold"
            ));
            g.failed = true;
        } else if b.is_shell() && r.file.is_none() {
            ran += 1;
            let result = match &r.background {
                Some(ready) => run_in_background(&mut g, &body, ready),
                None => {
                    let (code, out) = run_to_end(&g, &body);
                    keep_exports(&mut g);
                    let mut wrong = vec![];
                    if code != r.expect {
                        wrong.push(format!("exit code {code}, expected {}", r.expect));
                    }
                    for c in &r.contains {
                        if !out.contains(c.as_str()) {
                            wrong.push(format!("the output lacks {c:?}"));
                        }
                    }
                    for l in &r.lacks {
                        if out.contains(l.as_str()) {
                            wrong.push(format!("the output holds {l:?}"));
                        }
                    }
                    if wrong.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{}\n--- output\n{out}", wrong.join("; ")))
                    }
                }
            };
            if let Err(e) = result {
                failures.push(format!("{at}: ```{}\n{body}```\n{e}", b.lang));
                g.failed = true;
            }
        } else {
            let name = r.file.clone().unwrap_or_else(|| "main.tf".into());
            let path = g.work.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut content = std::fs::read_to_string(&path).unwrap_or_default();
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&body);
            std::fs::write(&path, content).unwrap();
        }
        groups.insert(r.group.clone(), g);
    }
    for g in groups.values_mut() {
        for c in &mut g.background {
            kill_group(c);
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n\n"));
    }
    let expected_runs = all
        .iter()
        .filter(
            |b| matches!(&b.marker, Ok(Marker::Runnable(r)) if b.is_shell() && r.file.is_none()),
        )
        .count();
    if ran != expected_runs {
        return Err(format!(
            "{ran} of {expected_runs} runnable shell blocks ran"
        ));
    }
    Ok(())
}

/// The harness itself: a block sees only what the guide set. A variable of
/// the harness's own environment (`TF_ACC`, which this test needs) or one
/// no block exported fails the block reading it, in the shell and in a
/// program; one an earlier block of the group exported reaches it.
#[test]
fn a_block_sees_nothing_the_guide_does_not_set() {
    if !enabled("a_block_sees_nothing_the_guide_does_not_set") {
        return;
    }
    assert!(std::env::var_os("TF_ACC").is_some());
    let in_the_shell = "<!-- runnable: g -->\n```sh\necho \"host: $DATABRICKS_HOST\"\n```\n";
    let e = run_text("shell.md", in_the_shell).unwrap_err();
    assert!(e.contains("DATABRICKS_HOST: unbound variable"), "{e}");
    let from_the_harness = "<!-- runnable: g -->\n```sh\nprintenv TF_ACC\n```\n";
    let e = run_text("harness.md", from_the_harness).unwrap_err();
    assert!(e.contains("exit code 1, expected 0"), "{e}");
    let exported =
        "<!-- runnable: g -->\n```sh\nexport GUIDE_SETTING=shown\nexport GONE=x\n```\n\n\
        <!-- runnable: g -->\n```sh\nunset GONE\n```\n\n\
        <!-- runnable: g\ncontains: setting=shown\nlacks: TF_ACC\n-->\n```sh\n\
        echo \"setting=$(printenv GUIDE_SETTING)\"\nenv\ntest -z \"${GONE:-}\"\n```\n";
    run_text("exported.md", exported).unwrap();
}

#[test]
fn readme_runs_as_written() {
    if enabled("readme_runs_as_written") {
        run_document("README.md");
    }
}

#[test]
fn binding_guide_runs_as_written() {
    if enabled("binding_guide_runs_as_written") {
        run_document("docs/guides/binding-keys-to-a-workspace.md");
    }
}

#[test]
fn sandbox_in_ci_guide_runs_as_written() {
    if enabled("sandbox_in_ci_guide_runs_as_written") {
        run_document("docs/guides/cmk-sandbox-in-ci.md");
    }
}

#[test]
fn moving_guide_runs_as_written() {
    if enabled("moving_guide_runs_as_written") {
        run_document("docs/guides/moving-from-the-official-provider.md");
    }
}

#[test]
fn review_guide_runs_as_written() {
    if enabled("review_guide_runs_as_written") {
        run_document("docs/guides/review-in-ci.md");
    }
}

#[test]
fn govcloud_guide_runs_as_written() {
    if enabled("govcloud_guide_runs_as_written") {
        run_document("docs/guides/govcloud.md");
    }
}
