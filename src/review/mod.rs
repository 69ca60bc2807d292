//! `terraform-provider-cmk review PLAN_JSON|DIR|FILE.tf... [options]`:
//! applies the rules to a plan written by `terraform show -json PLANFILE`
//! (`-` reads standard input), or to a configuration's `.tf` source (HCL
//! mode, src/review/hcl_input.rs: no plan, no credentials).
//!
//! Exit code: 1 when a finding at `--fail-on` (default: error) exists that
//! no suppression accepts, 0 otherwise, 2 when the input, a suppression or
//! the arguments cannot be read. The JSON output is documented in
//! `docs/review.md`.

pub mod analyze;
pub mod hcl_input;
pub mod limits;
pub mod live;
pub mod output;
pub mod plan;
#[cfg(test)]
mod plan_fuzz;
pub mod policy_document;
pub mod source_fill;
pub mod suppress;
pub mod unknown_refs;

use std::io::Write;

use crate::rules::facts::Requirements;
use crate::rules::DataType;

pub use analyze::{analyze, Analysis, Located};
pub use plan::{read_limited, Plan, PlanError, ReadError, DEFAULT_MAX_INPUT_MIB};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
}

pub use output::FailOn;

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The first input: plan JSON, `-`, a directory or a `.tf` file.
    pub plan: String,
    /// Further `.tf` files (HCL mode).
    pub more: Vec<String>,
    /// `-var-file FILE` (HCL mode), in order.
    pub var_files: Vec<String>,
    /// `-var NAME=VALUE` (HCL mode), in order.
    pub vars: Vec<(String, String)>,
    pub fail_on: FailOn,
    /// `--suppressions FILE`; else `.cmk-review.json` where it is found.
    pub suppressions: Option<String>,
    pub format: Format,
    pub required: Requirements,
    /// Input larger than this is refused (`--max-input-mib`): the plan, or
    /// all the files HCL mode reads together.
    pub max_input_mib: u64,
    /// The other budgets of HCL mode's evaluation.
    pub budget: limits::Budget,
    /// `--root DIR`: what HCL mode may read (else the enclosing git work
    /// tree of the configuration, else its directory).
    pub root: Option<String>,
    /// `--no-inline-suppressions`: `# cmk:ignore` comments accept nothing.
    pub no_inline_suppressions: bool,
    /// `--max-suppression-days N`: a suppression must expire within N days
    /// of today.
    pub max_suppression_days: u32,
    /// `--max-suppression-days` was given: a suppression without an
    /// expiry date is refused.
    pub require_expiry: bool,
    /// Read what the plan cannot hold from Databricks (`--live`).
    pub live: bool,
    /// `--profile`: the `~/.databrickscfg` profile for `--live`.
    pub profile: Option<String>,
    /// `--workspace-host-template`: where workspaces' own APIs live.
    pub workspace_host_template: Option<String>,
    /// `--deployment`: the Databricks deployment (commercial, GovCloud
    /// civilian or DoD), over what the provider blocks' hosts say.
    pub deployment: Option<crate::rules::Deployment>,
    /// `--source DIR`: plan mode evaluates what the plan leaves unknown
    /// from the configuration's source ([`source_fill`]).
    pub source: Option<String>,
}

/// Default of `--max-suppression-days`.
pub const DEFAULT_MAX_SUPPRESSION_DAYS: u32 = 90;

/// Why the command line is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("missing input: PLAN_JSON (a file written by `terraform show -json PLANFILE`, or - for standard input), a configuration's directory, or .tf files")]
    MissingPlan,
    #[error("unknown format {0:?}; use text, json, sarif, junit or github")]
    BadFormat(String),
    #[error("unknown --fail-on {0:?}; use error, warning, needs-state, cannot-tell or never")]
    BadFailOn(String),
    #[error("-var takes NAME=VALUE, not {0:?}")]
    BadVar(String),
    /// `--help`: not an error; the usage goes to standard output.
    #[error("help")]
    Help,
    #[error("unknown data type {0:?}; valid data types are {1}")]
    BadDataType(String, String),
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    #[error("--max-input-mib takes a whole number of MiB from 1 to 65536, not {0:?}")]
    BadLimit(String),
    #[error("unknown --deployment {0:?}; use commercial, govcloud-civilian or govcloud-dod")]
    BadDeployment(String),
    #[error("{0} takes a whole number from {1} to {2}, not {3:?}")]
    BadNumber(String, u64, u64, String),
}

pub const USAGE: &str = "usage: terraform-provider-cmk review PLAN_JSON|DIR|FILE.tf... [--format text|json|sarif|junit|github] [--fail-on error|warning|needs-state|cannot-tell|never] [--suppressions FILE] [--no-inline-suppressions] [--max-suppression-days N] [-var NAME=VALUE...] [-var-file FILE...] [--root DIR] [--require DATA_TYPE...] [--max-input-mib N] [--max-instances N] [--max-module-calls N] [--max-value-mib N] [--max-seconds N] [--deployment commercial|govcloud-civilian|govcloud-dod] [--source DIR] [--live [--profile NAME] [--workspace-host-template URL]]\n\
  PLAN_JSON        output of `terraform show -json PLANFILE`, or - for standard input\n\
  DIR, FILE.tf     HCL mode: a configuration's .tf source (with terraform.tfvars, *.auto.tfvars,\n\
                   local modules); no plan and no credentials; what only a plan knows\n\
                   (computed ids, live workspace facts) is \"cannot tell yet\"; what compares\n\
                   with a workspace that may exist already (its current keys, status, compute,\n\
                   dashboards: CMK009, CMK010, CMK011, CMK019, CMK020, ...) is \"needs state\",\n\
                   never a pass: a plan's prior state or --live decides it\n\
  -var, -var-file  HCL mode: variable values, as terraform plan takes them\n\
  --source DIR     with a plan: the configuration's source the plan was made from; what the\n\
                   plan leaves unknown until apply (a jsonencode(...) policy naming a role of\n\
                   the same plan) is evaluated from it with the plan's variables: known parts\n\
                   decided, the rest unknown with its origin. A source that does not match\n\
                   the plan (an instance or a known value they disagree on) is exit 2\n\
  --format         text (default), json (see docs/review.md), sarif (SARIF 2.1.0),\n\
                   junit (JUnit XML) or github (GitHub Actions annotations)\n\
  --fail-on        exit 1 on error findings (default: \"needs state\" alone does not fail), on\n\
                   warnings too, on errors and every \"needs state\" (needs-state), on errors,\n\
                   every \"cannot tell yet\", \"needs state\" or expression not evaluated\n\
                   (cannot-tell), or never\n\
  --suppressions   a suppressions file (default: .cmk-review.json in the configuration's\n\
                   directory or the current one); inline: # cmk:ignore CMK021 reason\n\
  --no-inline-suppressions  # cmk:ignore comments accept nothing (for pull requests:\n\
                   only the file the owner names decides)\n\
  --max-suppression-days  a suppression must expire within N days of today (default 90;\n\
                   one without an expiry date is refused)\n\
  --root           HCL mode reads nothing outside DIR (default: the enclosing git work\n\
                   tree, else the configuration's directory); symlinks leaving it are refused\n\
  --require        data types that must be protected, e.g. --require secrets dbfs_root\n\
  --max-input-mib  refuse input larger than this (default 256; HCL mode: all files read)\n\
  --max-instances, --max-module-calls, --max-value-mib, --max-seconds  HCL mode's budgets:\n\
                   resource instances (default 10000), module calls (default 500), one\n\
                   value (default 16 MiB), wall time (default 120 s); crossing one is exit 2\n\
  --deployment     the Databricks deployment whose principal key policies must name:\n\
                   commercial, govcloud-civilian or govcloud-dod (default: the one the\n\
                   Databricks or cmk provider block's host names)\n\
  --live           read the current keys, tier, compute and dashboards of the existing\n\
                   workspaces the plan touches from Databricks (read-only calls; credentials\n\
                   as the provider takes them: DATABRICKS_* variables or a ~/.databrickscfg profile).\n\
                   The account id, account host and workspace host template come, first to last,\n\
                   from a flag, the environment (DATABRICKS_ACCOUNT_ID, DATABRICKS_HOST, the\n\
                   profile), then the cmk and databricks provider blocks (account_id, host,\n\
                   workspace_host_template) of the plan or configuration. HCL mode finds a\n\
                   configuration's workspace by deployment_name or workspace_name (not in the\n\
                   account: reviewed as a new workspace)\n\
  --profile        the ~/.databrickscfg profile for --live (else DATABRICKS_CONFIG_PROFILE, DEFAULT)\n\
  --workspace-host-template  workspace API host for --live, {deployment_name} replaced\n\
                   (default: the cmk provider block's, else the deployment's,\n\
                   https://{deployment_name}.cloud.databricks.com for commercial)";

fn push_required(req: &mut Requirements, v: &str) -> Result<(), UsageError> {
    for name in v.split(',').filter(|s| !s.is_empty()) {
        let d = DataType::parse(name)
            .ok_or_else(|| UsageError::BadDataType(name.to_string(), DataType::valid_names()))?;
        req.data_types.insert(d);
    }
    Ok(())
}

/// Parses the arguments after `review` (a leading `review` is skipped).
pub fn parse_args(args: &[String]) -> Result<Options, UsageError> {
    let args = match args.first() {
        Some(a) if a == "review" => &args[1..],
        _ => args,
    };
    let mut plan = None;
    let mut more = vec![];
    let mut var_files = vec![];
    let mut vars = vec![];
    let mut fail_on = FailOn::Error;
    let mut suppressions = None;
    let mut format = Format::Text;
    let mut required = Requirements::default();
    let mut max_input_mib = DEFAULT_MAX_INPUT_MIB;
    let mut budget = limits::Budget::default();
    let mut root = None;
    let mut no_inline_suppressions = false;
    let mut max_suppression_days = DEFAULT_MAX_SUPPRESSION_DAYS;
    let mut require_expiry = false;
    let mut live = false;
    let mut profile = None;
    let mut workspace_host_template = None;
    let mut deployment = None;
    let mut source = None;
    let mut i = 0;
    let mut in_require = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        // Flags that take a value, as `--flag VALUE` or `--flag=VALUE`
        // (`-var`/`-var-file` also with one dash, as terraform takes them).
        let valued = |names: &[&str], i: &mut usize| -> Option<Result<String, UsageError>> {
            for n in names {
                if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                    return Some(Ok(v.to_string()));
                }
                if a == n {
                    let v = args.get(*i).cloned();
                    *i += 1;
                    return Some(v.ok_or_else(|| UsageError::MissingValue(n.to_string())));
                }
            }
            None
        };
        if a == "--help" || a == "-h" || a == "help" && plan.is_none() {
            return Err(UsageError::Help);
        } else if let Some(v) = valued(&["--fail-on"], &mut i) {
            let v = v?;
            fail_on = match v.as_str() {
                "error" => FailOn::Error,
                "warning" => FailOn::Warning,
                "never" => FailOn::Never,
                "cannot-tell" => FailOn::CannotTell,
                "needs-state" => FailOn::NeedsState,
                _ => return Err(UsageError::BadFailOn(v)),
            };
            in_require = false;
        } else if let Some(v) = valued(&["--deployment"], &mut i) {
            let v = v?;
            deployment =
                Some(crate::rules::Deployment::parse(&v).ok_or(UsageError::BadDeployment(v))?);
            in_require = false;
        } else if a == "--no-inline-suppressions" {
            no_inline_suppressions = true;
            in_require = false;
        } else if let Some(v) = valued(&["--source"], &mut i) {
            let v = v?;
            if v.is_empty() {
                return Err(UsageError::MissingValue("--source".into()));
            }
            source = Some(v);
            in_require = false;
        } else if let Some(v) = valued(&["--root"], &mut i) {
            let v = v?;
            if v.is_empty() {
                return Err(UsageError::MissingValue("--root".into()));
            }
            root = Some(v);
            in_require = false;
        } else if let Some(v) = valued(&["--max-suppression-days"], &mut i) {
            max_suppression_days = number("--max-suppression-days", &v?, 0, 3650)? as u32;
            require_expiry = true;
            in_require = false;
        } else if let Some(v) = valued(&["--max-instances"], &mut i) {
            budget.instances = number("--max-instances", &v?, 1, 10_000_000)?;
            in_require = false;
        } else if let Some(v) = valued(&["--max-module-calls"], &mut i) {
            budget.module_calls = number("--max-module-calls", &v?, 1, 1_000_000)?;
            in_require = false;
        } else if let Some(v) = valued(&["--max-value-mib"], &mut i) {
            budget.value_bytes = number("--max-value-mib", &v?, 1, 4096)? * 1024 * 1024;
            in_require = false;
        } else if let Some(v) = valued(&["--max-seconds"], &mut i) {
            budget.seconds = number("--max-seconds", &v?, 1, 86_400)?;
            in_require = false;
        } else if let Some(v) = valued(&["--suppressions"], &mut i) {
            suppressions = Some(v?);
            in_require = false;
        } else if let Some(v) = valued(&["-var-file", "--var-file"], &mut i) {
            var_files.push(v?);
            in_require = false;
        } else if let Some(v) = valued(&["-var", "--var"], &mut i) {
            let v = v?;
            let (k, val) = v
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| UsageError::BadVar(v.clone()))?;
            vars.push((k.to_string(), val.to_string()));
            in_require = false;
        } else if let Some(v) = a.strip_prefix("--format=") {
            format = parse_format(v)?;
            in_require = false;
        } else if a == "--format" {
            let v = args
                .get(i)
                .ok_or_else(|| UsageError::MissingValue("--format".into()))?;
            i += 1;
            format = parse_format(v)?;
            in_require = false;
        } else if a == "--live" {
            live = true;
            in_require = false;
        } else if let Some((flag, slot)) = [
            ("--profile", &mut profile),
            ("--workspace-host-template", &mut workspace_host_template),
        ]
        .into_iter()
        .find(|(f, _)| a == f || a.starts_with(&format!("{f}=")))
        {
            let v = match a.strip_prefix(&format!("{flag}=")) {
                Some(v) => v.to_string(),
                None => {
                    let v = args
                        .get(i)
                        .filter(|v| !v.starts_with("--"))
                        .ok_or_else(|| UsageError::MissingValue(flag.into()))?;
                    i += 1;
                    v.clone()
                }
            };
            if v.is_empty() {
                return Err(UsageError::MissingValue(flag.into()));
            }
            *slot = Some(v);
            in_require = false;
        } else if a == "--max-input-mib" || a.starts_with("--max-input-mib=") {
            let v = match a.strip_prefix("--max-input-mib=") {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| UsageError::MissingValue("--max-input-mib".into()))?;
                    i += 1;
                    v
                }
            };
            max_input_mib = v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=65536).contains(n))
                .ok_or_else(|| UsageError::BadLimit(v.to_string()))?;
            in_require = false;
        } else if let Some(v) = a.strip_prefix("--require=") {
            push_required(&mut required, v)?;
            in_require = true;
        } else if a == "--require" {
            if args.get(i).is_none_or(|n| n.starts_with("--")) {
                return Err(UsageError::MissingValue("--require".into()));
            }
            in_require = true;
        } else if a.starts_with("--") {
            return Err(UsageError::Unexpected(a.clone()));
        } else if in_require && (plan.is_some() || DataType::parse(a).is_some()) {
            push_required(&mut required, a)?;
        } else if plan.is_none() {
            plan = Some(a.clone());
        } else if a.ends_with(".tf") && plan.as_deref().is_some_and(|p| p.ends_with(".tf")) {
            more.push(a.clone());
        } else {
            return Err(UsageError::Unexpected(a.clone()));
        }
    }
    Ok(Options {
        plan: plan.ok_or(UsageError::MissingPlan)?,
        more,
        var_files,
        vars,
        fail_on,
        suppressions,
        format,
        required,
        max_input_mib,
        budget,
        root,
        no_inline_suppressions,
        max_suppression_days,
        require_expiry,
        live,
        profile,
        workspace_host_template,
        deployment,
        source,
    })
}

/// A whole number flag's value in `lo..=hi`.
fn number(flag: &str, v: &str, lo: u64, hi: u64) -> Result<u64, UsageError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| UsageError::BadNumber(flag.into(), lo, hi, v.into()))
}

fn parse_format(v: &str) -> Result<Format, UsageError> {
    match v {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        "sarif" => Ok(Format::Sarif),
        "junit" => Ok(Format::Junit),
        "github" => Ok(Format::Github),
        _ => Err(UsageError::BadFormat(v.to_string())),
    }
}

/// Reviews plan JSON text: the analysis, or why the plan cannot be read.
pub fn review_text(text: &str, required: &Requirements) -> Result<Analysis, PlanError> {
    let plan = Plan::parse(text)?;
    Ok(analyze(&plan, required))
}

/// Reads the live facts of a plan's targets with the provider's Databricks
/// settings (environment, profile) and applies the rules with them.
pub fn review_live(
    plan: &Plan,
    required: &Requirements,
    settings: &crate::cloud::databricks::DatabricksSettings,
) -> Result<(Analysis, Vec<String>), String> {
    let targets = analyze::live_targets(plan);
    if targets.is_empty() {
        let mut a = analyze(plan, required);
        a.live = Some(vec![]);
        return Ok((a, vec![]));
    }
    let client = crate::cloud::databricks::AccountClient::new(settings)
        .map_err(|e| format!("--live: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("--live: cannot start the async runtime: {e}"))?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let facts = rt.block_on(live::read(&client, &targets, &cancel));
    let mut a = analyze::analyze_live(plan, required, &facts);
    a.live = Some(facts.errors.clone());
    Ok((a, facts.errors))
}

/// Renders an analysis in a format.
pub fn render(a: &Analysis, format: Format, source: &str) -> String {
    render_with(a, &[], format, source, FailOn::Error)
}

/// Renders an analysis with its outcomes' notes (place, suppression).
pub fn render_with(
    a: &Analysis,
    notes: &[suppress::Note],
    format: Format,
    source: &str,
    fail_on: FailOn,
) -> String {
    let out = match format {
        Format::Text => output::text_with(a, notes),
        Format::Json => output::json_with(a, notes, source),
        Format::Sarif => output::sarif_with(a, notes, source),
        Format::Junit => output::junit(a, notes, source, fail_on),
        Format::Github => output::github(a, notes, source, fail_on),
    };
    // Every line: no CI command, but the annotations `--format github`
    // writes itself (their properties and data escaped).
    crate::text::no_commands(out, |line| {
        format == Format::Github
            && ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|c| line.starts_with(c))
    })
}

/// Exit code for an analysis: 1 when any error-level finding exists.
pub fn exit_code(a: &Analysis) -> i32 {
    exit_code_with(a, &[], FailOn::Error)
}

/// Exit code at a threshold: 1 when a finding at `fail_on` or above exists
/// that no suppression accepts (an expired suppression accepts nothing).
pub fn exit_code_with(a: &Analysis, notes: &[suppress::Note], fail_on: FailOn) -> i32 {
    let fails = a.outcomes.iter().enumerate().any(|(i, l)| {
        let suppressed = notes.get(i).is_some_and(|n| n.suppressed());
        !suppressed && fail_on.fails(&l.outcome)
    });
    let unevaluated = fail_on == FailOn::CannotTell && !a.unevaluated.is_empty();
    i32::from(fails || unevaluated)
}

/// Reads a configuration's source (HCL mode) into the plan the rules read.
pub fn load_hcl(opts: &Options) -> Result<(Plan, hcl_input::Loaded), String> {
    let mut paths = vec![opts.plan.clone()];
    paths.extend(opts.more.iter().cloned());
    let mut loaded = hcl_input::load(&hcl_input::Inputs {
        paths,
        var_files: opts.var_files.clone(),
        vars: opts.vars.clone(),
        values: vec![],
        root: opts.root.as_ref().map(std::path::PathBuf::from),
        max_input_bytes: Some(opts.max_input_mib.saturating_mul(1024 * 1024)),
        budget: Some(opts.budget.clone()),
    })
    .map_err(|e| e.0)?;
    let plan = Plan::from_value(std::mem::take(&mut loaded.plan))
        .map_err(|e| format!("internal: the configuration's plan could not be read: {e}"))?;
    let mut plan = plan;
    // A configuration's source says nothing of what exists.
    plan.without_state = true;
    shorten_paths(&mut loaded, &reviewed_dir(opts));
    Ok((plan, loaded))
}

/// The reviewed root module's directory: the directory given, or the
/// directory of the `.tf` files given (as typed, for lexical paths).
fn reviewed_dir(opts: &Options) -> String {
    let p = std::path::Path::new(&opts.plan);
    if p.is_dir() {
        return opts.plan.clone();
    }
    p.parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `a/./b/../c` as `a/c`: `.` dropped, `x/..` folded, leading `..` kept
/// (lexical: what a symbolic link points at is not asked).
fn normalize(path: &str) -> Vec<String> {
    use std::path::Component;
    let mut out: Vec<String> = vec![];
    for c in std::path::Path::new(path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != ".." && l != "/") {
                    out.pop();
                } else if out.last().map(String::as_str) != Some("/") {
                    out.push("..".into());
                }
            }
            Component::RootDir => out.push("/".into()),
            Component::Prefix(p) => out.push(p.as_os_str().to_string_lossy().into_owned()),
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
        }
    }
    out
}

/// A file of the configuration as findings show it: relative to the
/// reviewed root module's directory `dir` and normalized, as tflint and
/// checkov print them (`modules/x/main.tf`, `../shared/y/main.tf`).
pub fn shown_path(dir: &str, file: &str) -> String {
    let (d, f) = (normalize(dir), normalize(file));
    let common = d.iter().zip(&f).take_while(|(a, b)| a == b).count();
    // A directory above which the file lies can only be climbed out of by
    // names it has (not by `..` it starts with): else the path as it is.
    if d[common..].iter().any(|c| c == ".." || c == "/") {
        return f.join("/").replacen("//", "/", 1);
    }
    let mut parts: Vec<&str> = d[common..].iter().map(|_| "..").collect();
    parts.extend(f[common..].iter().map(String::as_str));
    parts.join("/")
}

/// Every place HCL mode read, shown relative to the reviewed directory:
/// the resources' blocks, the inline suppressions, and the places named in
/// what could not be evaluated.
fn shorten_paths(loaded: &mut hcl_input::Loaded, dir: &str) {
    // Each file once (a configuration's blocks share a few files).
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut shorten = |file: &mut String| {
        if !seen.contains_key(file.as_str()) {
            seen.insert(file.clone(), shown_path(dir, file));
        }
        let shown = &seen[file.as_str()];
        if shown != file {
            file.clone_from(shown);
        }
    };
    for s in loaded.locations.values_mut() {
        shorten(&mut s.file);
    }
    for i in &mut loaded.ignores {
        shorten(&mut i.at.file);
    }
    let mut raw: Vec<(String, String)> = seen.into_iter().filter(|(r, s)| r != s).collect();
    // Longest first: `d/./modules/x/main.tf` before `d/./main.tf`.
    raw.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    for u in &mut loaded.unevaluated {
        for (r, shown) in &raw {
            if u.starts_with(r.as_str()) {
                *u = format!("{shown}{}", &u[r.len()..]);
                break;
            }
        }
    }
}

/// The suppressions that apply: the named file, else `.cmk-review.json`
/// of the configuration's directory (HCL mode) or of the current
/// directory; with the inline ones of HCL mode first.
pub fn load_suppressions(
    opts: &Options,
    inline: &[hcl_input::InlineIgnore],
) -> Result<Vec<suppress::Suppression>, String> {
    let policy = suppress::Policy::new(today(), opts.max_suppression_days, opts.require_expiry);
    // `--no-inline-suppressions`: the comments of the reviewed source (a
    // pull request's) accept nothing; only the file decides.
    let mut out = if opts.no_inline_suppressions {
        vec![]
    } else {
        suppress::from_inline(inline, &policy)?
    };
    let file = match &opts.suppressions {
        Some(f) => Some(std::path::PathBuf::from(f)),
        None => {
            let mut candidates = vec![];
            let p = std::path::Path::new(&opts.plan);
            if p.is_dir() {
                candidates.push(p.join(suppress::DEFAULT_FILE));
            } else if opts.plan.ends_with(".tf") {
                if let Some(d) = p.parent() {
                    candidates.push(d.join(suppress::DEFAULT_FILE));
                }
            }
            candidates.push(std::path::PathBuf::from(suppress::DEFAULT_FILE));
            candidates.into_iter().find(|c| c.is_file())
        }
    };
    if let Some(f) = file {
        let name = f.display().to_string();
        let text = read_suppressions(&f, opts.suppressions.is_none())?;
        out.extend(suppress::parse_file(&name, &text, &policy)?);
    }
    Ok(out)
}

/// Longest suppressions file read.
const SUPPRESSIONS_MAX_BYTES: u64 = 1024 * 1024;

/// A suppressions file: a regular file of at most 1 MiB; one found by
/// itself (not named on the command line) must not be a symlink that
/// leaves its directory.
fn read_suppressions(f: &std::path::Path, found: bool) -> Result<String, String> {
    let name = f.display().to_string();
    let cannot = |e: std::io::Error| format!("cannot read {name}: {e}");
    if found
        && std::fs::symlink_metadata(f)
            .map_err(cannot)?
            .file_type()
            .is_symlink()
    {
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let inside = std::fs::canonicalize(f)
            .ok()
            .zip(std::fs::canonicalize(dir).ok())
            .is_some_and(|(t, d)| t.starts_with(d));
        if !inside {
            return Err(format!(
                "{name} is a symbolic link that leaves its directory; review reads only a regular suppressions file there (or name one with --suppressions)"
            ));
        }
    }
    let file = std::fs::File::open(f).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    match read_limited(file, SUPPRESSIONS_MAX_BYTES) {
        Ok(t) => Ok(t),
        Err(ReadError::Io(e)) => Err(cannot(e)),
        Err(ReadError::Plan(PlanError::TooLarge { .. })) => Err(format!(
            "{name} is larger than 1 MiB; a suppressions file lists a few accepted findings"
        )),
        Err(ReadError::Plan(_)) => Err(format!("{name} is not UTF-8 text")),
    }
}

/// Today's date (UTC), for suppressions' expiry.
fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// What a review run gives: the output, the exit code, and (with
/// `--live`) the reads that failed.
#[derive(Debug)]
pub struct Done {
    pub code: i32,
    pub out: String,
    pub live_errors: Vec<String>,
    /// What the output was made from: the command leaves it to the
    /// process's exit ([`main`]), which hands the memory back at once,
    /// instead of freeing it value by value (at 10,000 resources, a
    /// twentieth of the run).
    pub made_from: MadeFrom,
}

/// The analysis and its notes, once rendered.
#[derive(Debug)]
pub struct MadeFrom {
    _analysis: Analysis,
    _notes: Vec<suppress::Note>,
}

/// Reads a plan's JSON (a file, or standard input for `-`).
/// A plan whose unknown values are evaluated, where the source can, from
/// the configuration in `dir` with the plan's own variable values
/// ([`source_fill`]).
fn plan_with_source(opts: &Options, dir: &str) -> Result<(Plan, hcl_input::Loaded), String> {
    if opts.plan != "-" && !opts.more.is_empty() {
        return Err("--source goes with a plan JSON, not with .tf files".into());
    }
    if !std::path::Path::new(dir).is_dir() {
        return Err(format!(
            "--source {}: not a directory (give the directory `terraform plan` ran in)",
            crate::rules::findings::quote(dir)
        ));
    }
    let name = plan_name(opts);
    let mut value: serde_json::Value = serde_json::from_str(&read_plan_text(opts)?)
        .map_err(|e| format!("{name}: the input is not JSON: {e}"))?;
    let mut source_opts = opts.clone();
    source_opts.plan = dir.to_string();
    source_opts.more = vec![];
    let mut loaded = hcl_input::load(&hcl_input::Inputs {
        paths: vec![dir.to_string()],
        var_files: vec![],
        vars: vec![],
        values: source_fill::plan_variables(&value),
        root: opts.root.as_ref().map(std::path::PathBuf::from),
        max_input_bytes: Some(opts.max_input_mib.saturating_mul(1024 * 1024)),
        budget: Some(opts.budget.clone()),
    })
    .map_err(|e| format!("--source: {}", e.0))?;
    source_fill::fill(&mut value, &loaded.plan).map_err(|e| e.to_string())?;
    loaded.plan = serde_json::Value::Null;
    shorten_paths(&mut loaded, &reviewed_dir(&source_opts));
    let plan = Plan::from_value(value).map_err(|e| format!("{name}: {e}"))?;
    Ok((plan, loaded))
}

fn plan_name(opts: &Options) -> String {
    if opts.plan == "-" {
        "standard input".to_string()
    } else {
        crate::rules::findings::quote(&opts.plan)
    }
}

/// The plan's text, read within `--max-input-mib`.
fn read_plan_text(opts: &Options) -> Result<String, String> {
    let name = plan_name(opts);
    let limit = opts.max_input_mib.saturating_mul(1024 * 1024);
    let read = if opts.plan == "-" {
        read_limited(std::io::stdin().lock(), limit)
    } else {
        let f = std::fs::File::open(&opts.plan).map_err(|e| format!("cannot read {name}: {e}"))?;
        read_limited(f, limit)
    };
    match read {
        Ok(t) => Ok(t),
        Err(ReadError::Io(e)) => Err(format!("cannot read {name}: {e}")),
        Err(ReadError::Plan(e)) => Err(format!("{name}: {e}")),
    }
}

fn read_plan(opts: &Options) -> Result<Plan, String> {
    let text = read_plan_text(opts)?;
    Plan::parse(&text).map_err(|e| format!("{}: {e}", plan_name(opts)))
}

/// A review: plan JSON or a configuration's source, the rules (with live
/// facts when asked), suppressions, the output. `Err` is a usage or input
/// error (exit code 2), with the message.
pub fn run(opts: &Options) -> Result<Done, String> {
    let hcl = !opts.more.is_empty() || (opts.plan != "-" && hcl_input::is_hcl_input(&opts.plan));
    // HCL mode's guards (also for a plan's --source): the wall time and
    // the memory held (exit 2, naming the budget and what was being evaluated).
    let evaluates = hcl || opts.source.is_some();
    let _watchdog = evaluates.then(|| limits::Watchdog::start(opts.budget.seconds));
    if evaluates {
        limits::guard_memory(opts.budget.memory_bytes);
    }
    let done = run_guarded(opts, hcl);
    limits::release_memory();
    done
}

fn run_guarded(opts: &Options, hcl: bool) -> Result<Done, String> {
    let (plan, locations, ignores, source, unevaluated) = if hcl {
        if opts.source.is_some() {
            return Err("--source goes with a plan JSON: a directory or .tf files are reviewed as the source already".into());
        }
        let (plan, loaded) = load_hcl(opts)?;
        let mut source = opts.plan.clone();
        for m in &opts.more {
            source.push(' ');
            source.push_str(m);
        }
        (
            plan,
            loaded.locations,
            loaded.ignores,
            source,
            loaded.unevaluated,
        )
    } else {
        if !opts.vars.is_empty() || !opts.var_files.is_empty() {
            return Err("-var and -var-file are for a configuration's source (a directory or .tf files); a plan holds its variables' values already".into());
        }
        match &opts.source {
            None => (
                read_plan(opts)?,
                std::collections::HashMap::new(),
                vec![],
                opts.plan.clone(),
                vec![],
            ),
            Some(dir) => {
                let (plan, loaded) = plan_with_source(opts, dir)?;
                (
                    plan,
                    loaded.locations,
                    loaded.ignores,
                    opts.plan.clone(),
                    loaded.unevaluated,
                )
            }
        }
    };
    let mut plan = plan;
    if let Some(d) = opts.deployment {
        plan.set_deployment(d);
    }
    let suppressions = load_suppressions(opts, &ignores)?;
    let (analysis, live_errors) = if opts.live {
        let flags = live::LiveFlags {
            profile: opts.profile.clone(),
            workspace_host_template: opts.workspace_host_template.clone(),
        };
        let resolved =
            live::resolve_settings(&flags, &crate::cloud::databricks::ProcessEnvironment, &plan)
                .map_err(|e| format!("--live: {e}"))?;
        if !resolved.from_configuration.is_empty() {
            eprintln!(
                "review: --live: {} (a flag or the environment overrides them)",
                resolved.from_configuration.join(", ")
            );
        }
        review_live(&plan, &opts.required, &resolved.settings)?
    } else {
        (analyze(&plan, &opts.required), vec![])
    };
    let mut analysis = analysis;
    if !hcl && opts.source.is_none() {
        unknown_refs::name_references(&plan, &mut analysis);
    }
    drop(plan);
    analysis.unevaluated = unevaluated;
    let notes = suppress::notes(&analysis, &suppressions, &locations, today());
    let out = render_with(&analysis, &notes, opts.format, &source, opts.fail_on);
    // Asked to look and could not: the review is incomplete.
    let code = if live_errors.is_empty() {
        exit_code_with(&analysis, &notes, opts.fail_on)
    } else {
        2
    };
    Ok(Done {
        code,
        out,
        live_errors,
        made_from: MadeFrom {
            _analysis: analysis,
            _notes: notes,
        },
    })
}

/// The `review` command. Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(UsageError::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("review: {}\n{USAGE}", stderr_text(&e.to_string()));
            return 2;
        }
    };
    let done = match run(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("review: {}", stderr_text(&e));
            return 2;
        }
    };
    // The process ends with this command: its memory goes back with it.
    std::mem::forget(done.made_from);
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(done.out.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return 2;
    }
    for e in &done.live_errors {
        eprintln!("review: --live: {}", stderr_text(e));
    }
    done.code
}

/// A message for standard error: one line (new lines become spaces),
/// hidden characters escaped ([`crate::text::printable`]), cut.
fn stderr_text(e: &str) -> String {
    crate::text::printable(e, STDERR_MAX_BYTES)
}

/// The longest message review writes on standard error.
const STDERR_MAX_BYTES: usize = 4000;

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod govcloud_tests;
#[cfg(test)]
mod hcl_func_tests;
#[cfg(test)]
mod hcl_tests;
#[cfg(test)]
mod real_plan_tests;
#[cfg(test)]
mod tests;
