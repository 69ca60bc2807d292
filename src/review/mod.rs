//! `terraform-provider-cmk review PLAN_JSON [--format text|json|sarif]
//! [--require DATA_TYPE...]`: applies the rules to a plan written by
//! `terraform show -json PLANFILE` (`-` reads standard input).
//!
//! Exit code: 1 when an error-level finding exists, 0 otherwise, 2 when the
//! input or the arguments cannot be read. The JSON output is documented in
//! `docs/review.md`.

pub mod analyze;
pub mod live;
pub mod output;
pub mod plan;
#[cfg(test)]
mod plan_fuzz;

use std::io::{Read, Write};

use crate::rules::facts::Requirements;
use crate::rules::DataType;

pub use analyze::{analyze, Analysis, Located};
pub use plan::{Plan, PlanError};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub plan: String,
    pub format: Format,
    pub required: Requirements,
    /// Input larger than this is refused (`--max-input-mib`).
    pub max_input_mib: u64,
    /// Read what the plan cannot hold from Databricks (`--live`).
    pub live: bool,
    /// `--profile`: the `~/.databrickscfg` profile for `--live`.
    pub profile: Option<String>,
    /// `--workspace-host-template`: where workspaces' own APIs live.
    pub workspace_host_template: Option<String>,
}

/// Default input size limit, MiB. A plan of 10,000 resources is about 15 MiB.
pub const DEFAULT_MAX_INPUT_MIB: u64 = 256;

/// Why the command line is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("missing PLAN_JSON (a file written by `terraform show -json PLANFILE`, or - for standard input)")]
    MissingPlan,
    #[error("unknown format {0:?}; use text, json or sarif")]
    BadFormat(String),
    #[error("unknown data type {0:?}; valid data types are {1}")]
    BadDataType(String, String),
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    #[error("--max-input-mib takes a whole number of MiB from 1 to 65536, not {0:?}")]
    BadLimit(String),
}

pub const USAGE: &str = "usage: terraform-provider-cmk review PLAN_JSON [--format text|json|sarif] [--require DATA_TYPE...] [--max-input-mib N] [--live [--profile NAME] [--workspace-host-template URL]]\n\
  PLAN_JSON        output of `terraform show -json PLANFILE`, or - for standard input\n\
  --format         text (default), json (see docs/review.md) or sarif (SARIF 2.1.0)\n\
  --require        data types that must be protected, e.g. --require secrets dbfs_root\n\
  --max-input-mib  refuse input larger than this (default 256)\n\
  --live           read the current keys, tier, compute and dashboards of the existing\n\
                   workspaces the plan touches from Databricks (read-only calls; credentials\n\
                   as the provider takes them: DATABRICKS_* variables or a ~/.databrickscfg profile)\n\
  --profile        the ~/.databrickscfg profile for --live (else DATABRICKS_CONFIG_PROFILE, DEFAULT)\n\
  --workspace-host-template  workspace API host for --live, {deployment_name} replaced\n\
                   (default https://{deployment_name}.cloud.databricks.com)";

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
    let mut format = Format::Text;
    let mut required = Requirements::default();
    let mut max_input_mib = DEFAULT_MAX_INPUT_MIB;
    let mut live = false;
    let mut profile = None;
    let mut workspace_host_template = None;
    let mut i = 0;
    let mut in_require = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if let Some(v) = a.strip_prefix("--format=") {
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
        } else {
            return Err(UsageError::Unexpected(a.clone()));
        }
    }
    Ok(Options {
        plan: plan.ok_or(UsageError::MissingPlan)?,
        format,
        required,
        max_input_mib,
        live,
        profile,
        workspace_host_template,
    })
}

fn parse_format(v: &str) -> Result<Format, UsageError> {
    match v {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        "sarif" => Ok(Format::Sarif),
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

/// Why the input could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Plan(PlanError),
}

/// Reads at most `limit` bytes of UTF-8 text; more is `TooLarge` (never
/// read into memory), bytes that are not UTF-8 are `NotJson`.
pub fn read_limited(r: impl Read, limit: u64) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::Plan(PlanError::TooLarge {
            limit_mib: limit / (1024 * 1024),
        }));
    }
    String::from_utf8(buf).map_err(|e| {
        ReadError::Plan(PlanError::NotJson(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )))
    })
}

/// Renders an analysis in a format.
pub fn render(a: &Analysis, format: Format, source: &str) -> String {
    match format {
        Format::Text => output::text(a),
        Format::Json => output::json(a, source),
        Format::Sarif => output::sarif(a, source),
    }
}

/// Exit code for an analysis: 1 when any error-level finding exists.
pub fn exit_code(a: &Analysis) -> i32 {
    if a.outcomes.iter().any(|l| l.outcome.is_error()) {
        1
    } else {
        0
    }
}

/// The `review` command. Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("review: {e}\n{USAGE}");
            return 2;
        }
    };
    let name = if opts.plan == "-" {
        "standard input".to_string()
    } else {
        crate::rules::findings::quote(&opts.plan)
    };
    let limit = opts.max_input_mib.saturating_mul(1024 * 1024);
    let read = if opts.plan == "-" {
        read_limited(std::io::stdin().lock(), limit)
    } else {
        match std::fs::File::open(&opts.plan) {
            Ok(f) => read_limited(f, limit),
            Err(e) => {
                eprintln!("review: cannot read {name}: {e}");
                return 2;
            }
        }
    };
    let text = match read {
        Ok(t) => t,
        Err(ReadError::Io(e)) => {
            eprintln!("review: cannot read {name}: {e}");
            return 2;
        }
        Err(ReadError::Plan(e)) => {
            eprintln!("review: {name}: {e}");
            return 2;
        }
    };
    let plan = match Plan::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("review: {name}: {e}");
            return 2;
        }
    };
    drop(text);
    let mut live_errors = vec![];
    let analysis = if opts.live {
        let settings = crate::cloud::databricks::DatabricksSettings {
            profile: opts.profile.clone(),
            workspace_host_template: opts.workspace_host_template.clone(),
            ..Default::default()
        };
        match review_live(&plan, &opts.required, &settings) {
            Ok((a, errors)) => {
                live_errors = errors;
                a
            }
            Err(e) => {
                eprintln!("review: {e}");
                return 2;
            }
        }
    } else {
        analyze(&plan, &opts.required)
    };
    let out = render(&analysis, opts.format, &opts.plan);
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return 2;
    }
    if !live_errors.is_empty() {
        // Asked to look and could not: the review is incomplete.
        for e in &live_errors {
            eprintln!("review: --live: {e}");
        }
        return 2;
    }
    exit_code(&analysis)
}

#[cfg(test)]
mod tests;
