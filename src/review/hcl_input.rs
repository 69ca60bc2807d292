//! HCL mode: `review DIR` / `review FILE.tf ...` reads a configuration's
//! source (hcl-rs, with hcl-edit's spans for file and line) and builds the
//! JSON that `terraform show -json PLANFILE` would write for a plan that
//! creates it: `resource_changes` with the values the source decides (the
//! rest unknown, as in a plan before apply), and `configuration` with the
//! references of every expression. The plan reader and the rules then run
//! unchanged on it.
//!
//! What only a plan knows (computed ids, data sources that read the cloud,
//! the live workspace) stays unknown: the rules say "cannot tell yet".
//!
//! The source may come from anyone who can open a pull request, so the
//! reading is confined and bounded: only regular files inside the reviewed
//! tree are read (a symlink leaving it, a module source outside it, a
//! device or a pipe is refused), every file counts against one input
//! budget, and the evaluation against the budgets of [`super::limits`]
//! (instances, module calls, value size; time and memory guarded by the
//! binary). Crossing one is an error naming the budget and the place. A
//! message quotes at most a short escaped excerpt of a line
//! ([`crate::text::excerpt`]); `# cmk:ignore` comments are taken from the
//! token stream ([`comments`]), never from inside a string or heredoc.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::limits::{self, Budget};

use hcl::edit::Span;
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::expr::{Expression, ObjectKey, Operation, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::{Block, BlockLabel, Body, Structure};
use serde_json::{json, Map, Value};

/// Where a block starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

/// `# cmk:ignore RULE reason` inside a resource block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineIgnore {
    /// The configuration address of the resource (module path, no key).
    pub config_address: String,
    pub rule: String,
    pub reason: String,
    pub at: Source,
}

/// What HCL mode read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// In the shape of `terraform show -json PLANFILE`.
    pub plan: Value,
    /// Configuration address -> where its block starts.
    pub locations: HashMap<String, Source>,
    pub ignores: Vec<InlineIgnore>,
    /// What could not be evaluated (an unsupported function), with its place.
    pub unevaluated: Vec<String>,
}

/// The command line's inputs of HCL mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// One directory, or `.tf` files (of one directory).
    pub paths: Vec<String>,
    pub var_files: Vec<String>,
    /// `-var NAME=VALUE`, in order.
    pub vars: Vec<(String, String)>,
    /// Values already evaluated (a plan's `variables`, for `--source`):
    /// they win over every other source of a variable's value.
    pub values: Vec<(String, serde_json::Value)>,
    /// What may be read (`--root`); else the enclosing git work tree of
    /// the configuration's directory, else that directory.
    pub root: Option<PathBuf>,
    /// All files read together (`--max-input-mib`); default 256 MiB.
    pub max_input_bytes: Option<u64>,
    /// The evaluation's budgets; default [`Budget::default`].
    pub budget: Option<Budget>,
}

/// What one load may still spend, and what it met.
struct Spend {
    /// Canonical: nothing outside is read.
    root: PathBuf,
    input_left: u64,
    input_mib: u64,
    budget: Budget,
    /// Instances per resource address (the latest pass's count).
    instances: HashMap<String, u64>,
    instances_total: u64,
    module_calls: u64,
    /// What is being evaluated, for messages.
    place: String,
    /// The first budget crossed: the load fails with it.
    tripped: Option<String>,
    unevaluated: Vec<String>,
    /// Provider configuration key -> the region it sets.
    regions: HashMap<String, String>,
    /// Module calls counted against the budget (by instance prefix).
    counted_calls: HashSet<String>,
}

thread_local! {
    static SPEND: RefCell<Option<Spend>> = const { RefCell::new(None) };
}

fn with_spend<R>(f: impl FnOnce(&mut Spend) -> R) -> Option<R> {
    SPEND.with(|s| s.borrow_mut().as_mut().map(f))
}

/// Names what is evaluated now (for budget messages and the guards).
fn set_place(place: String) {
    limits::set_place(&place);
    with_spend(|s| s.place = place);
}

/// The first budget crossed, as the load's error.
fn check() -> Result<(), HclError> {
    match with_spend(|s| s.tripped.clone()).flatten() {
        Some(m) => Err(err(m)),
        None => Ok(()),
    }
}

fn tripped() -> bool {
    with_spend(|s| s.tripped.is_some()).unwrap_or(false)
}

/// Evaluates an expression within the value budget: `None` when it does
/// not evaluate, is larger than the budget (which is then recorded as
/// crossed), or a budget was crossed before.
fn ev(e: &Expression, ctx: &Context) -> Option<hcl::Value> {
    if tripped() {
        return None;
    }
    let v = match e.evaluate(ctx) {
        Ok(v) => v,
        // `try` passes over arguments that fail, `coalesce` and `lookup` need
        // not every argument ([`resolve_lazy`]).
        Err(_) if has_lazy(e) => resolve_lazy(e, ctx).evaluate(ctx).ok()?,
        Err(_) => return None,
    };
    within_value_budget(v)
}

/// [`ev`] of an expression whose lazy calls are resolved already (an
/// argument of [`resolve_lazy`]): a call it kept is not resolved again,
/// so nested calls cost their depth, not two to its power.
fn ev_resolved(e: &Expression, ctx: &Context) -> Option<hcl::Value> {
    if tripped() {
        return None;
    }
    within_value_budget(e.evaluate(ctx).ok()?)
}

/// Evaluates an expression that may hold values not known until apply:
/// wholly known in `ctx` (unknowns absent), else in `sctx` (unknowns as
/// markers with their origin, [`crate::rules::unknown`]) when the unknowns
/// only pass through ([`transparent`]): placed in lists, objects, strings
/// and `jsonencode`, never compared, tested or computed with, so that the
/// value with markers is the value for every value of the unknowns.
fn ev_sym(e: &Expression, ctx: &Context, sctx: &Context) -> Option<hcl::Value> {
    if let Some(v) = ev(e, ctx) {
        return Some(v);
    }
    // `try` chooses its argument where the unknowns are markers: one that
    // reads an unknown is chosen (whether it fails is not known).
    let resolved;
    let e = if has_lazy(e) {
        resolved = resolve_lazy(e, sctx);
        &resolved
    } else {
        e
    };
    if !transparent(e, ctx) {
        return None;
    }
    ev(e, sctx)
}

/// Whether the unknowns of an expression only pass through it: each part
/// that decides something (a condition, an index, an operand, a function
/// that reads its argument) is known in `ctx`.
fn transparent(e: &Expression, ctx: &Context) -> bool {
    let known = |x: &Expression| ev(x, ctx).is_some();
    match e {
        Expression::Null
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_)
        | Expression::Variable(_) => true,
        Expression::Array(a) => a.iter().all(|x| transparent(x, ctx)),
        Expression::Object(o) => o.iter().all(|(k, v)| {
            let key_known = match k {
                ObjectKey::Expression(k) => known(k),
                _ => true,
            };
            key_known && transparent(v, ctx)
        }),
        Expression::Parenthesis(p) => transparent(p, ctx),
        Expression::Traversal(t) => {
            let base = match &t.expr {
                Expression::Variable(_) => true,
                other => transparent(other, ctx),
            };
            base && t.operators.iter().all(|op| match op {
                TraversalOperator::Index(i) => known(i),
                _ => true,
            })
        }
        Expression::TemplateExpr(t) => match Template::from_expr(t) {
            Ok(t) => t.elements().iter().all(|el| match el {
                Element::Literal(_) => true,
                Element::Interpolation(i) => transparent(&i.expr, ctx),
                Element::Directive(_) => false,
            }),
            Err(_) => false,
        },
        Expression::Conditional(c) => match ev(&c.cond_expr, ctx) {
            Some(hcl::Value::Bool(true)) => transparent(&c.true_expr, ctx),
            Some(hcl::Value::Bool(false)) => transparent(&c.false_expr, ctx),
            _ => false,
        },
        Expression::FuncCall(f) if f.name.namespace.is_empty() => {
            let args: Vec<&Expression> = f.args.iter().collect();
            // Which arguments must be known: the others pass through.
            let decides = |i: usize| -> bool {
                match f.name.name.as_str() {
                    "jsonencode" | "tolist" | "toset" | "tomap" | "concat" | "flatten" | "one"
                    | "merge" | "tostring" | "sensitive" | "nonsensitive" | "try" => false,
                    // Unknown arguments give an unknown named after the
                    // call, or pass through whole (see [`functions`]).
                    "lookup" | "coalesce" | "length" | "lower" | "upper" | "replace" => false,
                    "element" => i == 1,
                    "format" | "join" => i == 0,
                    _ => true,
                }
            };
            // The length of a set holding unknowns is not known (one may
            // equal another element).
            if f.name.name.as_str() == "length"
                && args.first().is_some_and(|a| calls_any(a, &["toset"]))
            {
                return args.iter().all(|a| known(a));
            }
            args.iter().enumerate().all(|(i, a)| {
                if decides(i) {
                    known(a)
                } else {
                    transparent(a, ctx)
                }
            })
        }
        _ => known(e),
    }
}

/// What is known of an attribute not known until apply.
fn unknown_kind(rtype: &str, attr: &str) -> crate::rules::unknown::Kind {
    use crate::rules::unknown::Kind;
    match (rtype, attr) {
        ("aws_iam_role", "arn") => Kind::OwnRoleArn,
        ("aws_caller_identity", "account_id") => Kind::OwnAccountId,
        _ => Kind::Any,
    }
}

fn unknown_value(origin: &str, kind: crate::rules::unknown::Kind) -> hcl::Value {
    hcl::Value::String(crate::rules::unknown::marker(origin, kind))
}

fn within_value_budget(v: hcl::Value) -> Option<hcl::Value> {
    let over = with_spend(|s| {
        let limit = s.budget.value_bytes;
        if limits::value_size(&v, limit) > limit {
            s.tripped.get_or_insert(format!(
                "the value budget (--max-value-mib {}) ran out at {}: a value larger than that; simplify the configuration or raise --max-value-mib",
                limit / (1024 * 1024),
                s.place
            ));
            true
        } else {
            false
        }
    })
    .unwrap_or(false);
    (!over).then_some(v)
}

/// Counts `n` instances of `address` against the instance budget (a
/// resource evaluated again replaces its count); false when it ran out.
fn reserve_instances(address: &str, n: u64) -> bool {
    with_spend(|s| {
        let old = s.instances.insert(address.to_string(), n).unwrap_or(0);
        s.instances_total = s.instances_total - old + n;
        if s.instances_total > s.budget.instances {
            s.tripped.get_or_insert(format!(
                "the instance budget (--max-instances {}) ran out at {}: {n} instances of {address} ({} in all); nothing is reviewed in part: lower count/for_each or raise --max-instances",
                s.budget.instances, s.place, s.instances_total
            ));
            false
        } else {
            true
        }
    })
    .unwrap_or(true)
}

/// Reads a file of the configuration: a regular file inside the reviewed
/// tree (a symlink may point inside it, not out of it), counted against
/// the input budget.
fn read_text(path: &Path) -> Result<String, HclError> {
    let name = path.display().to_string();
    let link = std::fs::symlink_metadata(path)
        .map_err(|e| err(format!("cannot read {name}: {e}")))?
        .file_type()
        .is_symlink();
    let (root, left, mib) = with_spend(|s| (s.root.clone(), s.input_left, s.input_mib))
        .unwrap_or((PathBuf::from("/"), u64::MAX, 0));
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        err(format!(
            "cannot read {name}: {e}{}",
            if link { " (a symbolic link)" } else { "" }
        ))
    })?;
    if !canonical.starts_with(&root) {
        return Err(err(if link {
            format!(
                "{name} is a symbolic link that leaves the reviewed tree ({}); review reads only files inside it: remove the link, or widen the tree with --root",
                root.display()
            )
        } else {
            format!(
                "{name} is outside the reviewed tree ({}); review reads only files inside it: widen the tree with --root",
                root.display()
            )
        }));
    }
    let f = std::fs::File::open(&canonical).map_err(|e| err(format!("cannot read {name}: {e}")))?;
    let regular = f.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !regular {
        return Err(err(format!(
            "{name} is not a regular file (a directory, device or pipe); review reads only regular files"
        )));
    }
    let text = match super::plan::read_limited(f, left) {
        Ok(t) => t,
        Err(super::plan::ReadError::Io(e)) => return Err(err(format!("cannot read {name}: {e}"))),
        Err(super::plan::ReadError::Plan(super::plan::PlanError::TooLarge { .. })) => {
            return Err(err(format!(
                "the input budget (--max-input-mib {mib}) ran out reading {name}: the configuration's files (modules read once per call) are larger together; raise --max-input-mib"
            )))
        }
        Err(super::plan::ReadError::Plan(_)) => {
            return Err(err(format!("{name} is not UTF-8 text")));
        }
    };
    with_spend(|s| s.input_left = s.input_left.saturating_sub(text.len() as u64));
    Ok(text)
}

/// The enclosing git work tree of a directory (canonical), if any.
fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
        .map(Path::to_path_buf)
}

/// Functions review evaluates (see [`functions`]); a call of any other
/// is reported as not evaluated.
const SUPPORTED_FUNCTIONS: &[&str] = &[
    "jsonencode",
    "jsondecode",
    "lower",
    "upper",
    "tostring",
    "tolist",
    "tomap",
    "sensitive",
    "nonsensitive",
    "toset",
    "concat",
    "merge",
    "lookup",
    "length",
    "join",
    "format",
    "coalesce",
    "element",
    "one",
    "flatten",
    "try",
    "replace",
];

/// Calls of functions review does not evaluate, in an expression.
fn unsupported_calls(e: &Expression, out: &mut Vec<String>) {
    match e {
        Expression::FuncCall(f) => {
            let name = f.name.to_string();
            let supported =
                f.name.namespace.is_empty() && SUPPORTED_FUNCTIONS.contains(&name.as_str());
            if !supported && !out.contains(&name) {
                out.push(name);
            }
            f.args.iter().for_each(|x| unsupported_calls(x, out));
        }
        Expression::Traversal(t) => {
            unsupported_calls(&t.expr, out);
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op {
                    unsupported_calls(i, out);
                }
            }
        }
        Expression::Array(a) => a.iter().for_each(|x| unsupported_calls(x, out)),
        Expression::Object(o) => {
            for (k, v) in o {
                if let ObjectKey::Expression(k) = k {
                    unsupported_calls(k, out);
                }
                unsupported_calls(v, out);
            }
        }
        Expression::TemplateExpr(t) => {
            if let Ok(t) = Template::from_expr(t) {
                let mut refs = vec![];
                template_exprs(&t, &mut refs);
                for x in refs {
                    unsupported_calls(&x, out);
                }
            }
        }
        Expression::Parenthesis(p) => unsupported_calls(p, out),
        Expression::Conditional(c) => {
            unsupported_calls(&c.cond_expr, out);
            unsupported_calls(&c.true_expr, out);
            unsupported_calls(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => unsupported_calls(&u.expr, out),
            Operation::Binary(b) => {
                unsupported_calls(&b.lhs_expr, out);
                unsupported_calls(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            unsupported_calls(&f.collection_expr, out);
            if let Some(k) = &f.key_expr {
                unsupported_calls(k, out);
            }
            unsupported_calls(&f.value_expr, out);
            if let Some(c) = &f.cond_expr {
                unsupported_calls(c, out);
            }
        }
        _ => {}
    }
}

/// The expressions of a template (interpolations, directives' conditions
/// and collections).
fn template_exprs(t: &Template, out: &mut Vec<Expression>) {
    for el in t.elements() {
        match el {
            Element::Interpolation(i) => out.push(i.expr.clone()),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(i) => {
                    out.push(i.cond_expr.clone());
                    template_exprs(&i.true_template, out);
                    if let Some(f) = &i.false_template {
                        template_exprs(f, out);
                    }
                }
                Directive::For(f) => {
                    out.push(f.collection_expr.clone());
                    template_exprs(&f.template, out);
                }
            },
            Element::Literal(_) => {}
        }
    }
}

/// Unsupported function calls in a body.
fn body_unsupported(body: &Body, out: &mut Vec<String>) {
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => unsupported_calls(&a.expr, out),
            Structure::Block(b) => body_unsupported(&b.body, out),
        }
    }
}

/// The comments of HCL source, from its tokens: (byte offset of the
/// comment marker, text after `#` or `//`). What is inside a string, a
/// template or a heredoc is not a comment; `/* */` comments are skipped.
pub fn comments(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = vec![];
    // Open strings (`"`, depth 0) and interpolations (`{`, brace depth).
    let mut stack: Vec<(u8, usize)> = vec![];
    let eol = |from: usize| {
        b[from..]
            .iter()
            .position(|c| *c == b'\n')
            .map_or(n, |p| from + p)
    };
    let mut i = 0;
    while i < n {
        if let Some((b'"', _)) = stack.last() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => {
                    stack.pop();
                    i += 1;
                }
                b'\n' => {
                    // A string does not span lines: unterminated, recover.
                    stack.pop();
                    i += 1;
                }
                c @ (b'$' | b'%') if b.get(i + 1) == Some(&b'{') => {
                    if i > 0 && b[i - 1] == c {
                        // `$${` / `%%{`: a literal, not an interpolation.
                        i += 2;
                    } else {
                        stack.push((b'{', 0));
                        i += 2;
                    }
                }
                _ => i += 1,
            }
            continue;
        }
        match b[i] {
            b'"' => {
                stack.push((b'"', 0));
                i += 1;
            }
            b'{' => {
                if let Some((b'{', d)) = stack.last_mut() {
                    *d += 1;
                }
                i += 1;
            }
            b'}' => {
                match stack.last_mut() {
                    Some((b'{', 0)) => {
                        stack.pop();
                    }
                    Some((b'{', d)) => *d -= 1,
                    _ => {}
                }
                i += 1;
            }
            b'#' => {
                let e = eol(i);
                out.push((i, &text[i + 1..e]));
                i = e;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let e = eol(i);
                out.push((i, &text[i + 2..e]));
                i = e;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(n, |p| i + 2 + p + 2);
            }
            b'<' if b.get(i + 1) == Some(&b'<') => {
                // A heredoc: `<<ID` or `<<-ID`, to the line that is ID.
                let mut j = i + 2;
                if b.get(j) == Some(&b'-') {
                    j += 1;
                }
                let start = j;
                while j < n && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
                    j += 1;
                }
                let id = &text[start..j];
                if id.is_empty() {
                    i = j;
                    continue;
                }
                let mut k = eol(j);
                loop {
                    if k >= n {
                        i = n;
                        break;
                    }
                    let next = eol(k + 1);
                    if text[k + 1..next].trim() == id {
                        i = next;
                        break;
                    }
                    k = next;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Why the source cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HclError(pub String);

fn err(s: impl Into<String>) -> HclError {
    HclError(s.into())
}

/// Module nesting read before the configuration is refused.
const MAX_MODULE_DEPTH: usize = 32;
/// How deep `local.x` references are followed to their own references.
const MAX_LOCAL_HOPS: usize = 16;

/// Attributes the official providers compute (unknown in a plan that
/// creates the object, when the configuration does not set them).
/// This provider's own resources answer from their schemas.
const COMPUTED: &[(&str, &[&str])] = &[
    ("aws_kms_key", &["arn", "id", "key_id", "tags_all"]),
    (
        "aws_iam_role",
        &["arn", "id", "unique_id", "create_date", "tags_all"],
    ),
    (
        "aws_caller_identity",
        &["account_id", "arn", "id", "user_id"],
    ),
    (
        "aws_partition",
        &["partition", "id", "dns_suffix", "reverse_dns_prefix"],
    ),
    ("aws_region", &["name", "region", "id"]),
    ("aws_iam_policy_document", &["json", "minified_json", "id"]),
    ("aws_kms_replica_key", &["arn", "id", "key_id", "tags_all"]),
    ("aws_kms_alias", &["arn", "id", "target_key_arn"]),
    (
        "databricks_mws_customer_managed_keys",
        &["customer_managed_key_id", "id", "creation_time"],
    ),
    (
        "databricks_mws_workspaces",
        &[
            "workspace_id",
            "workspace_status",
            "workspace_status_message",
            "deployment_name",
            "id",
            "workspace_url",
            "creation_time",
        ],
    ),
    (
        "databricks_mws_credentials",
        &["credentials_id", "id", "creation_time", "external_id"],
    ),
];

/// Nested-block attributes the official providers compute.
const COMPUTED_NESTED: &[(&str, &str, &str)] = &[(
    "databricks_mws_customer_managed_keys",
    "aws_key_info",
    "key_region",
)];

/// The attributes of this provider's resources and data sources that are
/// computed and not settable (from the models' schemas).
fn own_computed(rtype: &str) -> Vec<String> {
    use crate::tfplugin::schema::Schema;
    let schema = match rtype {
        "cmk_key_configuration" => {
            Schema::of::<crate::resources::key_configuration::KeyConfigurationModel>(0)
        }
        "cmk_kms_key" => Schema::of::<crate::resources::kms_key::KmsKeyModel>(0),
        "cmk_workspace_binding" => {
            Schema::of::<crate::resources::workspace_binding::WorkspaceBindingModel>(0)
        }
        "cmk_kms_key_policy" => {
            Schema::of::<crate::data_sources::kms_key_policy::KmsKeyPolicyModel>(0)
        }
        "cmk_encryption_coverage" => {
            Schema::of::<crate::data_sources::encryption_coverage::EncryptionCoverageModel>(0)
        }
        "cmk_workspace" => Schema::of::<crate::data_sources::workspace::WorkspaceModel>(0),
        _ => return vec![],
    };
    schema
        .map(|s| {
            s.block
                .attributes
                .iter()
                .filter(|a| a.flags.computed && !a.flags.optional && !a.flags.required)
                .map(|a| a.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// One parsed `.tf` file.
struct File {
    name: String,
    text: String,
    /// Top-level structures, with the byte span of each block.
    structures: Structures,
    /// Byte offsets of the newlines.
    newlines: Vec<usize>,
}

impl File {
    /// The 1-based line of a byte offset (binary search over line starts).
    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|n| *n < offset) + 1
    }
}

/// Why a file is not HCL: its place, the parser's message and a short
/// escaped excerpt of the line (never the whole line).
fn parse_error(name: &str, e: &hcl::edit::parser::Error) -> HclError {
    let at = e.location();
    err(format!(
        "{name}:{}:{}: not valid HCL: {} (near \"{}\")",
        at.line(),
        at.column(),
        crate::text::escape(e.message(), 200),
        crate::text::excerpt(e.line(), at.column())
    ))
}

fn parse_file(path: &Path) -> Result<File, HclError> {
    let name = path.display().to_string();
    let text = read_text(path)?;
    let structures = parse_structures(&text).map_err(|e| parse_error(&name, &e))?;
    let newlines = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect();
    Ok(File {
        name,
        text,
        structures,
        newlines,
    })
}

/// A file's top-level structures with the byte span of each.
type Structures = Vec<(Structure, Option<std::ops::Range<usize>>)>;

/// Texts from this size on are parsed in two halves at once
/// ([`parse_structures`]).
const SPLIT_PARSE_MIN_BYTES: usize = 256 * 1024;

/// The stack of the thread that parses a second half: the main thread's
/// (hcl-edit refuses nesting deeper than 64 levels, so this is ample).
const PARSE_STACK_BYTES: usize = 8 * 1024 * 1024;

/// The top-level structures of a file's text. A large text is split after
/// a block's closing line ([`split_point`]) and its halves are parsed at
/// once, on two threads. The result is the whole text's: a half that parses alone ends
/// with every block, string, heredoc and comment of it closed, so the
/// whole text parses to the same structures; the one check of the parser
/// that spans the halves, a top-level attribute defined twice, is made
/// here. If either half does not parse, or an attribute is in both, the
/// whole text is parsed, and its error says where.
fn parse_structures(text: &str) -> Result<Structures, hcl::edit::parser::Error> {
    if let Some(at) = split_point(text) {
        let (a, b) = text.split_at(at);
        let (first, second) = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("parse".into())
                .stack_size(PARSE_STACK_BYTES)
                .spawn_scoped(scope, || parse_whole(b));
            let first = parse_whole(a);
            let second = match other {
                Ok(h) => h.join().ok(),
                // No thread to be had: the second half here, after the first.
                Err(_) => Some(parse_whole(b)),
            };
            (first, second)
        });
        if let (Ok(mut first), Some(Ok(second))) = (first, second) {
            let attributes = |s: &Structures| -> HashSet<String> {
                s.iter()
                    .filter_map(|(s, _)| s.as_attribute().map(|a| a.key.as_str().to_string()))
                    .collect()
            };
            if attributes(&first).is_disjoint(&attributes(&second)) {
                first.extend(
                    second
                        .into_iter()
                        .map(|(s, span)| (s, span.map(|r| r.start + at..r.end + at))),
                );
                return Ok(first);
            }
        }
    }
    parse_whole(text)
}

/// [`parse_structures`] in one piece.
fn parse_whole(text: &str) -> Result<Structures, hcl::edit::parser::Error> {
    let body = hcl::edit::parser::parse_body(text)?;
    Ok(body
        .into_iter()
        .map(|s| {
            let span = s.span();
            (Structure::from(s), span)
        })
        .collect())
}

/// Where [`parse_structures`] splits a text: the start of the first line
/// from the middle on that follows a line that is `}` alone (where
/// `terraform fmt` closes a top-level block); `None` for a small text or
/// none found.
fn split_point(text: &str) -> Option<usize> {
    if text.len() < SPLIT_PARSE_MIN_BYTES {
        return None;
    }
    let b = text.as_bytes();
    let mid = b.len() / 2;
    memchr::memmem::find(&b[mid..], b"\n}\n")
        .map(|i| mid + i + 3)
        .filter(|&at| at < b.len())
}

/// The `.tf` files of a directory, sorted (Terraform reads them all).
fn tf_files(dir: &Path) -> Result<Vec<PathBuf>, HclError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot read directory {}: {e}", dir.display())))?;
    // Every entry named *.tf but a directory: a symlink, device or pipe
    // is then refused by name when read (read_text).
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .filter(|p| !std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
        .collect();
    out.sort();
    Ok(out)
}

fn label(l: &BlockLabel) -> &str {
    match l {
        BlockLabel::Identifier(i) => i.as_str(),
        BlockLabel::String(s) => s.as_str(),
    }
}

/// A top-level block with where it is.
/// Terraform refuses a module whose files declare the same resource, data
/// source, module call, variable, local or output twice (`terraform
/// validate`: "Duplicate ... configuration"); so does review, naming both
/// places, rather than letting the last one win.
fn duplicate_declarations(blocks: &[Located]) -> Result<(), HclError> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut declare = |what: String, at: String| -> Result<(), HclError> {
        match seen.get(&what) {
            Some(first) => Err(err(format!(
                "{at}: duplicate {what}: already declared at {first}; Terraform refuses a configuration that declares it twice"
            ))),
            None => {
                seen.insert(what, at);
                Ok(())
            }
        }
    };
    for b in blocks {
        let at = |line: usize| format!("{}:{line}", b.file.name);
        let labels: Vec<&str> = b.block.labels.iter().map(label).collect();
        match (b.block.identifier.as_str(), labels.as_slice()) {
            ("resource", [t, n]) => {
                declare(format!("resource \"{t}\" \"{n}\""), at(b.source().line))?
            }
            ("data", [t, n]) => declare(format!("data \"{t}\" \"{n}\""), at(b.source().line))?,
            (kind @ ("module" | "variable" | "output"), [n]) => {
                declare(format!("{kind} \"{n}\""), at(b.source().line))?
            }
            ("locals", _) => {
                for a in b.block.body.attributes() {
                    declare(format!("local.{}", a.key.as_str()), at(b.source().line))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

struct Located<'a> {
    block: &'a Block,
    file: &'a File,
    span: Option<std::ops::Range<usize>>,
}

impl Located<'_> {
    fn source(&self) -> Source {
        Source {
            file: self.file.name.clone(),
            line: self
                .span
                .as_ref()
                .map(|s| self.file.line_of(s.start))
                .unwrap_or(1),
        }
    }

    /// `cmk:ignore` comments inside the block: (rule, reason, line).
    fn ignores(&self) -> Vec<(String, String, usize)> {
        let Some(span) = &self.span else {
            return vec![];
        };
        let Some(text) = self.file.text.get(span.clone()) else {
            return vec![];
        };
        let mut out = vec![];
        for (at, comment) in comments(text) {
            let Some(rest) = comment.trim_start().strip_prefix("cmk:ignore") else {
                continue;
            };
            let rest = rest.trim();
            let (rule, reason) = match rest.split_once(char::is_whitespace) {
                Some((r, why)) => (r, why.trim()),
                None => (rest, ""),
            };
            let line = self.file.line_of(span.start + at);
            out.push((rule.to_string(), reason.to_string(), line));
        }
        out
    }
}

/// Functions of Terraform's language that configurations of keys use.
fn functions(ctx: &mut Context) {
    fn jsonencode(a: FuncArgs) -> Result<hcl::Value, String> {
        let v = serde_json::to_value(&a[0]).map_err(|e| e.to_string())?;
        Ok(hcl::Value::String(v.to_string()))
    }
    fn jsondecode(a: FuncArgs) -> Result<hcl::Value, String> {
        let s = a[0].as_str().unwrap_or_default();
        let v: Value = serde_json::from_str(s).map_err(|e| e.to_string())?;
        hcl::to_value(v).map_err(|e| e.to_string())
    }
    fn lower(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(case_map(
            a[0].as_str().unwrap_or_default(),
            "lower",
            str::to_lowercase,
        )
        .into())
    }
    fn upper(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(case_map(
            a[0].as_str().unwrap_or_default(),
            "upper",
            str::to_uppercase,
        )
        .into())
    }
    fn tostring(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(match &a[0] {
            hcl::Value::String(s) => s.clone().into(),
            hcl::Value::Null => hcl::Value::Null,
            other if holds_unknown(other) => derived_unknown("tostring", &a),
            other => other.to_string().into(),
        })
    }
    fn identity(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(a[0].clone())
    }
    fn concat(a: FuncArgs) -> Result<hcl::Value, String> {
        let mut out = vec![];
        for v in a.iter() {
            match v {
                hcl::Value::Array(x) => out.extend(x.iter().cloned()),
                _ => return Err("concat takes lists".into()),
            }
        }
        Ok(hcl::Value::Array(out))
    }
    fn merge(a: FuncArgs) -> Result<hcl::Value, String> {
        let mut out = hcl::Map::new();
        for v in a.iter() {
            match v {
                hcl::Value::Object(x) => out.extend(x.iter().map(|(k, v)| (k.clone(), v.clone()))),
                hcl::Value::Null => {}
                _ => return Err("merge takes maps".into()),
            }
        }
        Ok(hcl::Value::Object(out))
    }
    fn lookup(a: FuncArgs) -> Result<hcl::Value, String> {
        // An unknown map, or an unknown key: which entry (or the default)
        // is not known.
        if unknown_map(&a[0]) || holds_unknown(&a[1]) {
            return Ok(derived_unknown("lookup", &a));
        }
        let key = a[1].as_str().unwrap_or_default();
        match (a[0].as_object().and_then(|m| m.get(key)), a.get(2)) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(format!("lookup: no key {key:?}")),
        }
    }
    fn length(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(match &a[0] {
            // A list or map holding unknown elements has a known length.
            hcl::Value::Array(x) => x.len(),
            hcl::Value::Object(x) => x.len(),
            // An unknown (a collection or a string not known until apply),
            // or a string with an unknown part.
            hcl::Value::String(s) if crate::rules::unknown::contains(s) => {
                return Ok(derived_unknown("length", &a));
            }
            hcl::Value::String(s) => s.chars().count(),
            _ => return Err("length of what?".into()),
        }
        .into())
    }
    fn join(a: FuncArgs) -> Result<hcl::Value, String> {
        // An unknown separator, or a list that is itself unknown: the
        // text is not known. Unknown elements stand in the result whole.
        if holds_unknown(&a[0])
            || a.iter()
                .skip(1)
                .any(|l| l.as_array().is_none() && holds_unknown(l))
        {
            return Ok(derived_unknown("join", &a));
        }
        let sep = a[0].as_str().unwrap_or_default();
        let mut parts: Vec<String> = vec![];
        for list in a.iter().skip(1) {
            let list = list.as_array().ok_or("join takes lists of strings")?;
            for v in list {
                match v {
                    hcl::Value::String(s) => parts.push(s.clone()),
                    hcl::Value::Null => return Err("join: a null element".into()),
                    other if holds_unknown(other) => return Ok(derived_unknown("join", &a)),
                    other => parts.push(other.to_string()),
                }
            }
        }
        Ok(parts.join(sep).into())
    }
    fn replace(a: FuncArgs) -> Result<hcl::Value, String> {
        // Where the substring is, in a string with an unknown part, is not
        // known (it may lie inside the unknown, or across its edge): the
        // result is unknown as a whole, never a marker cut into.
        if a.iter().any(holds_unknown) {
            return Ok(derived_unknown("replace", &a));
        }
        let (s, from, to) = (
            a[0].as_str().unwrap_or_default(),
            a[1].as_str().unwrap_or_default(),
            a[2].as_str().unwrap_or_default(),
        );
        if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
            return Err("replace: regular expressions are not evaluated".into());
        }
        if from.is_empty() {
            return Err("replace: the substring to replace is empty".into());
        }
        Ok(s.replace(from, to).into())
    }
    fn format(a: FuncArgs) -> Result<hcl::Value, String> {
        if holds_unknown(&a[0]) {
            return Ok(derived_unknown("format", &a));
        }
        let mut out = String::new();
        let fmt = a[0].as_str().unwrap_or_default();
        let mut args = a.iter().skip(1);
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('s' | 'd' | 'v') => match args.next() {
                    Some(hcl::Value::String(s)) => out.push_str(s),
                    // A list or object holding an unknown: written out, its
                    // markers would be escaped into text.
                    Some(v) if holds_unknown(v) => return Ok(derived_unknown("format", &a)),
                    Some(v) => out.push_str(&v.to_string()),
                    None => return Err("format: too few arguments".into()),
                },
                _ => return Err("format: unsupported verb".into()),
            }
        }
        Ok(out.into())
    }
    // `coalesce(a, ...)`: the first argument neither null nor "". An
    // unknown met before it decides nothing: it may be null or "" (then a
    // later one wins) or not; the result is unknown, named after the call
    // (so never taken for the unknown itself). An unknown that cannot be
    // empty (an IAM role's ARN, an account id), or a string with known
    // text around an unknown, is the result.
    fn coalesce(a: FuncArgs) -> Result<hcl::Value, String> {
        use crate::rules::unknown::{parts, Kind, Part};
        for v in a.iter() {
            match v {
                hcl::Value::Null => continue,
                hcl::Value::String(s) if s.is_empty() => continue,
                hcl::Value::String(s) => {
                    let surely_filled = parts(s).iter().any(|p| match p {
                        Part::Text(t) => !t.is_empty(),
                        Part::Unknown(u) => u.kind != Kind::Any || never_empty(&u.origin),
                    });
                    return Ok(if surely_filled {
                        v.clone()
                    } else {
                        derived_unknown("coalesce", &a)
                    });
                }
                other => return Ok(other.clone()),
            }
        }
        Err("coalesce: no non-null, non-empty argument".to_string())
    }
    // `toset`: each value once (two unknowns with the same origin are the
    // same value); known strings in Terraform's order (lexical). With
    // unknowns, the known elements stay known; how many elements there
    // are is not known (an unknown may equal another element): see
    // `length` in [`transparent`].
    fn toset(a: FuncArgs) -> Result<hcl::Value, String> {
        if let hcl::Value::String(s) = &a[0] {
            if crate::rules::unknown::contains(s) {
                return Ok(a[0].clone());
            }
        }
        let mut out: Vec<hcl::Value> = vec![];
        for v in a[0].as_array().ok_or("toset takes a list")? {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        if out
            .iter()
            .all(|v| matches!(v, hcl::Value::String(s) if !crate::rules::unknown::contains(s)))
        {
            out.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        }
        Ok(hcl::Value::Array(out))
    }
    fn element(a: FuncArgs) -> Result<hcl::Value, String> {
        let list = a[0].as_array().ok_or("element takes a list")?;
        let i = a[1].as_u64().ok_or("element takes an index")? as usize;
        if list.is_empty() {
            return Err("element of an empty list".into());
        }
        Ok(list[i % list.len()].clone())
    }
    fn one(a: FuncArgs) -> Result<hcl::Value, String> {
        match &a[0] {
            hcl::Value::Null => Ok(hcl::Value::Null),
            hcl::Value::Array(x) if x.is_empty() => Ok(hcl::Value::Null),
            hcl::Value::Array(x) if x.len() == 1 => Ok(x[0].clone()),
            _ => Err("one takes a list of at most one element".into()),
        }
    }
    fn flatten(a: FuncArgs) -> Result<hcl::Value, String> {
        fn go(v: &hcl::Value, out: &mut Vec<hcl::Value>) {
            match v {
                hcl::Value::Array(x) => x.iter().for_each(|y| go(y, out)),
                other => out.push(other.clone()),
            }
        }
        let mut out = vec![];
        go(&a[0], &mut out);
        Ok(hcl::Value::Array(out))
    }
    // `try(a, ...)`: hcl evaluates a call's arguments before the call, so
    // here every argument evaluated; the first wins. An argument that fails
    // is passed over before the call, by [`resolve_lazy`].
    fn try_first(a: FuncArgs) -> Result<hcl::Value, String> {
        a.iter()
            .next()
            .cloned()
            .ok_or_else(|| "try: no argument".into())
    }
    let any = || ParamType::Any;
    ctx.declare_func("element", FuncDef::new(element, [any(), any()]));
    ctx.declare_func("one", FuncDef::new(one, [any()]));
    ctx.declare_func("flatten", FuncDef::new(flatten, [any()]));
    ctx.declare_func(
        "try",
        FuncDef::builder().variadic_param(any()).build(try_first),
    );
    ctx.declare_func("jsonencode", FuncDef::new(jsonencode, [any()]));
    ctx.declare_func("jsondecode", FuncDef::new(jsondecode, [ParamType::String]));
    ctx.declare_func("lower", FuncDef::new(lower, [ParamType::String]));
    ctx.declare_func("upper", FuncDef::new(upper, [ParamType::String]));
    ctx.declare_func("tostring", FuncDef::new(tostring, [any()]));
    for f in ["tolist", "tomap", "sensitive", "nonsensitive"] {
        ctx.declare_func(f, FuncDef::new(identity, [any()]));
    }
    ctx.declare_func("toset", FuncDef::new(toset, [any()]));
    ctx.declare_func(
        "concat",
        FuncDef::builder().variadic_param(any()).build(concat),
    );
    ctx.declare_func(
        "merge",
        FuncDef::builder().variadic_param(any()).build(merge),
    );
    ctx.declare_func(
        "lookup",
        FuncDef::builder()
            .params([any(), ParamType::String])
            .variadic_param(any())
            .build(lookup),
    );
    ctx.declare_func("length", FuncDef::new(length, [any()]));
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(ParamType::String)
            .variadic_param(any())
            .build(join),
    );
    ctx.declare_func(
        "replace",
        FuncDef::new(
            replace,
            [ParamType::String, ParamType::String, ParamType::String],
        ),
    );
    ctx.declare_func(
        "format",
        FuncDef::builder()
            .param(ParamType::String)
            .variadic_param(any())
            .build(format),
    );
    ctx.declare_func(
        "coalesce",
        FuncDef::builder().variadic_param(any()).build(coalesce),
    );
}

/// Whether a value holds an unknown anywhere (a marker in a string, a
/// key or an element).
fn holds_unknown(v: &hcl::Value) -> bool {
    match v {
        hcl::Value::String(s) => crate::rules::unknown::contains(s),
        hcl::Value::Array(a) => a.iter().any(holds_unknown),
        hcl::Value::Object(o) => o
            .iter()
            .any(|(k, v)| crate::rules::unknown::contains(k) || holds_unknown(v)),
        _ => false,
    }
}

/// Whether a map is not known as a map: an unknown (a marker), or with a
/// key not known. (Unknown values leave it a map whose entries are known.)
fn unknown_map(v: &hcl::Value) -> bool {
    match v {
        hcl::Value::String(s) => crate::rules::unknown::contains(s),
        hcl::Value::Object(o) => o.keys().any(|k| crate::rules::unknown::contains(k)),
        _ => false,
    }
}

/// A call's arguments as Terraform writes them, for the origin of the
/// unknown a call gives: an unknown by its origin (`var.x`), a string
/// with unknown parts as a template (`"arn:${var.a}"`), a short known
/// value as written, a long one by a digest of it (so that two calls on
/// different values never read the same).
fn render_args(args: &[hcl::Value]) -> String {
    use std::hash::{Hash, Hasher};
    args.iter()
        .map(|v| {
            // (Bounded: a call of two calls of two calls ... would double
            // the origin at each level.)
            if let Some(u) = v.as_str().and_then(crate::rules::unknown::exact) {
                if u.origin.chars().count() <= MAX_ORIGIN_CHARS {
                    return u.origin;
                }
            }
            let text = template_json(v).to_string();
            if text.chars().count() <= 64 && !text.contains('\u{1}') {
                text
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                to_json(v).to_string().hash(&mut h);
                format!("<value {:016x}>", h.finish())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as JSON with each string as Terraform writes a template: an
/// unknown as `${origin}`, a known `${` as `$${` (so that no known text
/// reads as an unknown).
fn template_json(v: &hcl::Value) -> Value {
    use crate::rules::unknown::{parts, Part};
    let text = |s: &str| -> String {
        parts(s)
            .into_iter()
            .map(|p| match p {
                Part::Text(t) => t.replace("${", "$${"),
                Part::Unknown(u) => format!("${{{}}}", u.origin),
            })
            .collect()
    };
    match v {
        hcl::Value::String(s) => Value::String(text(s)),
        hcl::Value::Array(a) => Value::Array(a.iter().map(template_json).collect()),
        hcl::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (text(k), template_json(v))).collect())
        }
        other => to_json(other),
    }
}

/// The longest origin of an unknown written whole into the origin of a
/// call on it (a longer one is written as its digest).
const MAX_ORIGIN_CHARS: usize = 160;

/// The unknown a call gives when an argument it reads is unknown: named
/// after the call (`lookup(local.keys, var.name)`), so its origin names the
/// unknowns it comes from, and it is never taken for one of them (two
/// unknowns with the same origin are equal; `lower(var.x)` is not `var.x`).
fn derived_unknown(name: &str, args: &[hcl::Value]) -> hcl::Value {
    unknown_value(
        &format!("{name}({})", render_args(args)),
        crate::rules::unknown::Kind::Any,
    )
}

/// `lower`/`upper` of a string with unknown parts: the known text mapped,
/// each unknown whole: an account id (digits) is its own lower and upper
/// case; any other becomes the unknown `lower(ORIGIN)`. A marker is never
/// mapped itself (that would corrupt it).
fn case_map(s: &str, name: &str, f: fn(&str) -> String) -> String {
    use crate::rules::unknown::{marker, parts, Kind, Part};
    if !crate::rules::unknown::contains(s) {
        return f(s);
    }
    parts(s)
        .into_iter()
        .map(|p| match p {
            Part::Text(t) => f(&t),
            Part::Unknown(u) if u.kind == Kind::OwnAccountId => marker(&u.origin, u.kind),
            Part::Unknown(u) => marker(&format!("{name}({})", u.origin), Kind::Any),
        })
        .collect()
}

/// The functions whose arguments Terraform does not all need: `try`
/// (the first that evaluates), `coalesce` (up to the first non-empty),
/// `lookup` (the entry, else the default). [`resolve_lazy`] decides them
/// before the call, whose arguments hcl evaluates all.
const LAZY_FUNCTIONS: &[&str] = &["try", "coalesce", "lookup"];

/// Whether an unknown is a resource's or data source's `arn` or `id`
/// (`aws_kms_key.this[0].arn`, `module.keys.aws_kms_key.k.arn`): set by
/// the provider, never null or "" once known.
fn never_empty(origin: &str) -> bool {
    let segs: Vec<&str> = origin.split('.').collect();
    let mut i = 0;
    while segs.get(i) == Some(&"module") {
        i += 2;
    }
    let rest = segs.get(i..).unwrap_or_default();
    let resource = match rest.first() {
        Some(&"data") => rest.len() == 4,
        Some(t) => t.contains('_') && rest.len() == 3,
        None => false,
    };
    resource && matches!(rest.last(), Some(&"arn") | Some(&"id"))
}

/// Whether an expression calls one of [`LAZY_FUNCTIONS`] (outside
/// templates, whose calls are not rewritten: there an argument that fails
/// leaves the value unknown).
fn has_lazy(e: &Expression) -> bool {
    calls_any(e, LAZY_FUNCTIONS)
}

/// Whether `f` holds for a direct sub-expression of `e`, for the kinds of
/// expression made of others (collections, traversals, conditionals,
/// operations, for expressions, calls' arguments); `None` for any other
/// kind (literals, variables, templates), which [`may_call`] and
/// [`calls_any`] each decide themselves.
fn any_part(e: &Expression, mut f: impl FnMut(&Expression) -> bool) -> Option<bool> {
    Some(match e {
        Expression::Array(a) => a.iter().any(f),
        Expression::Object(o) => o
            .iter()
            .any(|(k, v)| matches!(k, ObjectKey::Expression(k) if f(k)) || f(v)),
        Expression::Parenthesis(p) => f(p),
        Expression::Traversal(t) => {
            f(&t.expr)
                || t.operators
                    .iter()
                    .any(|op| matches!(op, TraversalOperator::Index(i) if f(i)))
        }
        Expression::Conditional(c) => f(&c.cond_expr) || f(&c.true_expr) || f(&c.false_expr),
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => f(&u.expr),
            Operation::Binary(b) => f(&b.lhs_expr) || f(&b.rhs_expr),
        },
        Expression::ForExpr(x) => {
            f(&x.collection_expr)
                || x.key_expr.as_ref().is_some_and(&mut f)
                || f(&x.value_expr)
                || x.cond_expr.as_ref().is_some_and(&mut f)
        }
        Expression::FuncCall(c) => c.args.iter().any(f),
        _ => return None,
    })
}

/// Whether evaluating an expression may call a function: it holds a call,
/// or a template (whose interpolations hcl-rs reads only as it evaluates
/// them), or an expression of a kind not listed here.
fn may_call(e: &Expression) -> bool {
    match e {
        Expression::Null
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_)
        | Expression::Variable(_) => false,
        Expression::FuncCall(_) => true,
        _ => any_part(e, may_call).unwrap_or(true),
    }
}

/// [`may_call`] for every expression of a body, its nested blocks' too.
fn body_may_call(body: &Body) -> bool {
    body.iter().any(|s| match s {
        Structure::Attribute(a) => may_call(&a.expr),
        Structure::Block(b) => body_may_call(&b.body),
    })
}

/// Whether an expression calls one of these functions (outside templates,
/// and of a for expression, in its collection only).
fn calls_any(e: &Expression, names: &[&str]) -> bool {
    match e {
        Expression::FuncCall(f)
            if f.name.namespace.is_empty() && names.contains(&f.name.name.as_str()) =>
        {
            true
        }
        Expression::ForExpr(f) => calls_any(&f.collection_expr, names),
        _ => any_part(e, |x| calls_any(x, names)).unwrap_or(false),
    }
}

/// The calls of [`LAZY_FUNCTIONS`] decided as Terraform decides them,
/// innermost first, each replaced by what it chose:
///
/// - `try(a, b, ...)`: the first argument that evaluates without an error
///   wins; an argument that reads a value not known yet ends the search
///   (whether it fails is not known, so the result is unknown: that
///   argument stays, unknown in `ctx`, with its unknowns as markers in the
///   context of [`ev_sym`]). A call none of whose arguments can succeed
///   stays (and fails, as in Terraform).
/// - `coalesce(a, ...)`: the first argument known to be neither null nor
///   "", when every one before it is known to be one of those; else the
///   call stays (the function decides on its markers).
/// - `lookup(map, key, default)`: with the map and key known, the entry,
///   else the default.
///
/// For-expression bodies are left as written (their arguments depend on
/// the iteration).
fn resolve_lazy(e: &Expression, ctx: &Context) -> Expression {
    let r = |x: &Expression| resolve_lazy(x, ctx);
    match e {
        Expression::FuncCall(f) => {
            let args: Vec<Expression> = f.args.iter().map(r).collect();
            let lazy = f.name.namespace.is_empty() && !f.expand_final;
            match f.name.name.as_str() {
                "try" if lazy => {
                    for a in &args {
                        if ev_resolved(a, ctx).is_some() || !fails_for_sure(a, ctx) {
                            return a.clone();
                        }
                    }
                }
                "coalesce" if lazy => {
                    for a in &args {
                        match ev_resolved(a, ctx) {
                            Some(hcl::Value::Null) => continue,
                            Some(hcl::Value::String(s)) if s.is_empty() => continue,
                            Some(v) if !holds_unknown(&v) => return a.clone(),
                            _ => break,
                        }
                    }
                }
                "lookup" if lazy && (2..=3).contains(&args.len()) => {
                    let map = ev_resolved(&args[0], ctx).filter(|v| !unknown_map(v));
                    let key = ev_resolved(&args[1], ctx).filter(|v| !holds_unknown(v));
                    if let (Some(hcl::Value::Object(map)), Some(hcl::Value::String(key))) =
                        (map, key)
                    {
                        match (map.get(&key), args.get(2)) {
                            (Some(v), _) => return Expression::from(v.clone()),
                            (None, Some(d)) => return d.clone(),
                            (None, None) => {}
                        }
                    }
                }
                _ => {}
            }
            let mut f = f.as_ref().clone();
            f.args = args;
            Expression::FuncCall(Box::new(f))
        }
        Expression::Array(a) => Expression::Array(a.iter().map(r).collect()),
        Expression::Object(o) => Expression::Object(
            o.iter()
                .map(|(k, v)| {
                    let k = match k {
                        ObjectKey::Expression(k) => ObjectKey::Expression(r(k)),
                        other => other.clone(),
                    };
                    (k, r(v))
                })
                .collect(),
        ),
        Expression::Parenthesis(p) => Expression::Parenthesis(Box::new(r(p))),
        Expression::Traversal(t) => {
            let mut t = t.as_ref().clone();
            t.expr = r(&t.expr);
            for op in t.operators.iter_mut() {
                if let TraversalOperator::Index(i) = op {
                    *i = r(i);
                }
            }
            Expression::Traversal(Box::new(t))
        }
        Expression::Conditional(c) => {
            let mut c = c.as_ref().clone();
            c.cond_expr = r(&c.cond_expr);
            c.true_expr = r(&c.true_expr);
            c.false_expr = r(&c.false_expr);
            Expression::Conditional(Box::new(c))
        }
        Expression::Operation(op) => Expression::Operation(Box::new(match op.as_ref() {
            Operation::Unary(u) => {
                let mut u = u.clone();
                u.expr = r(&u.expr);
                Operation::Unary(u)
            }
            Operation::Binary(b) => {
                let mut b = b.clone();
                b.lhs_expr = r(&b.lhs_expr);
                b.rhs_expr = r(&b.rhs_expr);
                Operation::Binary(b)
            }
        })),
        Expression::ForExpr(f) => {
            let mut f = f.as_ref().clone();
            f.collection_expr = r(&f.collection_expr);
            Expression::ForExpr(Box::new(f))
        }
        other => other.clone(),
    }
}

/// Whether an expression that did not evaluate fails whatever the values
/// not known yet turn out to be: it calls only functions review evaluates,
/// and each value it reads is known, or fails on a known value (an
/// attribute missing from a known object, an index out of a known list).
/// A read that reaches a value not known yet (absent from `ctx`, or a
/// marker) may succeed once it is known: not a sure failure.
fn fails_for_sure(e: &Expression, ctx: &Context) -> bool {
    let mut reads = vec![];
    if !free_reads(e, &mut vec![], &mut reads) {
        return false;
    }
    reads
        .iter()
        .all(|(root, ops)| read_reach(root, ops, ctx) != Reach::NotKnown)
}

#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Known,
    NotKnown,
    Fails,
}

/// The reads of an expression (a root name and its traversal), except of
/// names a for-expression binds; false when it calls a function review
/// does not evaluate, or has a template directive.
fn free_reads(
    e: &Expression,
    bound: &mut Vec<String>,
    out: &mut Vec<(String, Vec<TraversalOperator>)>,
) -> bool {
    let mut go = |x: &Expression, bound: &mut Vec<String>| free_reads(x, bound, out);
    match e {
        Expression::Variable(v) => {
            if !bound.iter().any(|b| b == v.as_str()) {
                out.push((v.as_str().to_string(), vec![]));
            }
            true
        }
        Expression::Traversal(t) => {
            let mut ok = true;
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op {
                    ok &= free_reads(i, bound, out);
                }
            }
            match &t.expr {
                Expression::Variable(v) => {
                    if !bound.iter().any(|b| b == v.as_str()) {
                        out.push((v.as_str().to_string(), t.operators.clone()));
                    }
                    ok
                }
                other => ok && free_reads(other, bound, out),
            }
        }
        Expression::FuncCall(f) => {
            let name = f.name.name.as_str();
            f.name.namespace.is_empty()
                && SUPPORTED_FUNCTIONS.contains(&name)
                && f.args.iter().all(|a| free_reads(a, bound, out))
        }
        Expression::Array(a) => a.iter().all(|x| go(x, bound)),
        Expression::Object(o) => o.iter().all(|(k, v)| {
            (match k {
                ObjectKey::Expression(k) => free_reads(k, bound, out),
                _ => true,
            }) && free_reads(v, bound, out)
        }),
        Expression::Parenthesis(p) => go(p, bound),
        Expression::Conditional(c) => {
            free_reads(&c.cond_expr, bound, out)
                && free_reads(&c.true_expr, bound, out)
                && free_reads(&c.false_expr, bound, out)
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => go(&u.expr, bound),
            Operation::Binary(b) => {
                free_reads(&b.lhs_expr, bound, out) && free_reads(&b.rhs_expr, bound, out)
            }
        },
        Expression::ForExpr(f) => {
            if !free_reads(&f.collection_expr, bound, out) {
                return false;
            }
            let n = bound.len();
            bound.push(f.value_var.as_str().to_string());
            if let Some(k) = &f.key_var {
                bound.push(k.as_str().to_string());
            }
            let ok = f
                .key_expr
                .as_ref()
                .is_none_or(|k| free_reads(k, bound, out))
                && free_reads(&f.value_expr, bound, out)
                && f.cond_expr
                    .as_ref()
                    .is_none_or(|c| free_reads(c, bound, out));
            bound.truncate(n);
            ok
        }
        Expression::TemplateExpr(t) => match Template::from_expr(t) {
            Ok(t) => {
                if t.elements()
                    .iter()
                    .any(|el| matches!(el, Element::Directive(_)))
                {
                    return false;
                }
                let mut parts = vec![];
                template_exprs(&t, &mut parts);
                parts.iter().all(|x| go(x, bound))
            }
            Err(_) => false,
        },
        _ => true,
    }
}

/// How far a read gets: the root, then each step of its traversal. A
/// step that fails on a known value fails for sure, except where a known
/// value may lack what is not known yet: below the declaration (`var.x`,
/// `local.x`, `module.m`, `data.t.n`, `type.name`) nothing is known when
/// it is absent, and a resource's, data source's or module's object lacks
/// the attributes not known until apply (only an index out of its known
/// instances fails for sure).
fn read_reach(root: &str, ops: &[TraversalOperator], ctx: &Context) -> Reach {
    let depth = if root == "data" { 2 } else { 1 };
    let object_like = !matches!(
        root,
        "var" | "local" | "each" | "count" | "path" | "terraform"
    );
    let at = |k: usize| -> Option<hcl::Value> {
        let root = Expression::Variable(hcl::expr::Variable::unchecked(root));
        if k == 0 {
            return ev(&root, ctx);
        }
        let t = hcl::expr::Traversal::new(root, ops[..k].to_vec());
        ev(&Expression::Traversal(Box::new(t)), ctx)
    };
    let Some(mut prev) = at(0) else {
        return Reach::NotKnown;
    };
    for k in 1..=ops.len() {
        match at(k) {
            Some(v) => prev = v,
            None => {
                // Into an unknown (a marker), or at a declaration not
                // evaluated (yet).
                if matches!(&prev, hcl::Value::String(s) if crate::rules::unknown::contains(s))
                    || k <= depth
                {
                    return Reach::NotKnown;
                }
                let index = matches!(
                    ops[k - 1],
                    TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_)
                );
                let instance_index = k == depth + 1
                    && index
                    && matches!(prev, hcl::Value::Array(_) | hcl::Value::Object(_));
                // A module's output not known is absent from `ctx`; what
                // an output holds is whole (its unknowns are markers).
                let output_name = root == "module"
                    && !index
                    && ops[depth..k - 1].iter().all(|op| {
                        matches!(
                            op,
                            TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_)
                        )
                    });
                return if instance_index {
                    Reach::Fails
                } else if root == "module" {
                    if output_name {
                        Reach::NotKnown
                    } else {
                        Reach::Fails
                    }
                } else if object_like {
                    Reach::NotKnown
                } else {
                    Reach::Fails
                };
            }
        }
    }
    if holds_unknown(&prev) {
        Reach::NotKnown
    } else {
        Reach::Known
    }
}

/// An expression's value, wholly known and with the unknowns as markers
/// (`var` given in `known`, and as `unknown` adds), for the tests of the
/// functions on unknowns.
#[cfg(test)]
pub(super) fn eval_for_test(
    src: &str,
    known: &[(&str, hcl::Value)],
    unknown: &[(&str, hcl::Value)],
) -> (Option<hcl::Value>, Option<hcl::Value>) {
    let body: Body = hcl::from_str(&format!("x = {src}\n")).expect(src);
    let attr = body.attributes().next().expect(src);
    let mut ctx = Context::new();
    functions(&mut ctx);
    let mut sctx = ctx.clone();
    for (name, v) in known {
        ctx.declare_var(*name, v.clone());
        sctx.declare_var(*name, v.clone());
    }
    for (name, v) in unknown {
        sctx.declare_var(*name, v.clone());
    }
    (ev(&attr.expr, &ctx), ev_sym(&attr.expr, &ctx, &sctx))
}

/// References of an expression, in the form `terraform show -json` writes
/// them (`aws_kms_key.k.arn`, `aws_kms_key.k`, `var.x`, `each.key`).
fn references(e: &Expression, out: &mut Vec<String>) {
    let push = |s: String, out: &mut Vec<String>| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    match e {
        Expression::Variable(v) => push(v.to_string(), out),
        Expression::Traversal(t) => {
            let Expression::Variable(root) = &t.expr else {
                references(&t.expr, out);
                for op in &t.operators {
                    if let TraversalOperator::Index(i) = op {
                        references(i, out);
                    }
                }
                return;
            };
            let root = root.to_string();
            // How many steps name the object (resource: type.name; data:
            // data.type.name; var/local/module/each/count: two).
            let object_steps = if root == "data" { 3 } else { 2 };
            let mut s = root.clone();
            let mut steps = 1;
            let mut object: Option<String> = None;
            let mut chain = vec![];
            let mut rest = vec![];
            let mut ops = t.operators.iter();
            for op in ops.by_ref() {
                match op {
                    TraversalOperator::GetAttr(id) => {
                        s.push('.');
                        s.push_str(id.as_str());
                        steps += 1;
                    }
                    TraversalOperator::Index(Expression::String(k)) => {
                        s.push_str(&format!("[{}]", Value::String(k.clone())));
                    }
                    TraversalOperator::Index(Expression::Number(n)) => {
                        s.push_str(&format!("[{n}]"));
                    }
                    TraversalOperator::LegacyIndex(n) => s.push_str(&format!("[{n}]")),
                    TraversalOperator::Index(other) => {
                        references(other, &mut rest);
                        break;
                    }
                    _ => break,
                }
                if steps == object_steps && object.is_none() {
                    object = Some(s.clone());
                }
                chain.push(s.clone());
            }
            for op in ops {
                if let TraversalOperator::Index(i) = op {
                    references(i, &mut rest);
                }
            }
            // Terraform lists the longest traversal, then the object's.
            if let Some(last) = chain.last() {
                push(last.clone(), out);
            } else {
                push(s.clone(), out);
            }
            // The object with its constant key, if any, else without.
            if let Some(o) = chain.iter().rfind(|c| {
                c.starts_with(object.as_deref().unwrap_or("\u{0}"))
                    && !c[object.as_deref().unwrap_or_default().len()..].contains('.')
            }) {
                // With a constant key Terraform also lists the bare object.
                let bare = super::plan::strip_index(o);
                push(o.clone(), out);
                if bare != *o {
                    push(bare, out);
                }
            }
            for r in rest {
                push(r, out);
            }
        }
        Expression::Array(a) => a.iter().for_each(|x| references(x, out)),
        Expression::Object(o) => {
            for (k, v) in o {
                if let ObjectKey::Expression(k) = k {
                    references(k, out);
                }
                references(v, out);
            }
        }
        Expression::TemplateExpr(t) => {
            if let Ok(t) = Template::from_expr(t) {
                template_references(&t, out);
            }
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|x| references(x, out)),
        Expression::Parenthesis(p) => references(p, out),
        Expression::Conditional(c) => {
            references(&c.cond_expr, out);
            references(&c.true_expr, out);
            references(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => references(&u.expr, out),
            Operation::Binary(b) => {
                references(&b.lhs_expr, out);
                references(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            let mut inner = vec![];
            references(&f.collection_expr, out);
            if let Some(k) = &f.key_expr {
                references(k, &mut inner);
            }
            references(&f.value_expr, &mut inner);
            if let Some(c) = &f.cond_expr {
                references(c, &mut inner);
            }
            let bound = |r: &String| {
                let head = r.split(['.', '[']).next().unwrap_or_default();
                head == f.value_var.as_str()
                    || f.key_var.as_ref().is_some_and(|k| head == k.as_str())
            };
            for r in inner.into_iter().filter(|r| !bound(r)) {
                push(r, out);
            }
        }
        _ => {}
    }
}

fn template_references(t: &Template, out: &mut Vec<String>) {
    for el in t.elements() {
        match el {
            Element::Interpolation(i) => references(&i.expr, out),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(i) => {
                    references(&i.cond_expr, out);
                    template_references(&i.true_template, out);
                    if let Some(f) = &i.false_template {
                        template_references(f, out);
                    }
                }
                Directive::For(f) => {
                    references(&f.collection_expr, out);
                    template_references(&f.template, out);
                }
            },
            Element::Literal(_) => {}
        }
    }
}

/// An HCL value as JSON (as serde converts it, without serializing).
fn to_json(v: &hcl::Value) -> Value {
    match v {
        hcl::Value::Null => Value::Null,
        hcl::Value::Bool(b) => Value::Bool(*b),
        hcl::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        hcl::Value::String(s) => Value::String(s.clone()),
        hcl::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        hcl::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// A JSON value as HCL (as serde converts it, without serializing).
fn to_hcl(v: Value) -> hcl::Value {
    match v {
        Value::Null => hcl::Value::Null,
        Value::Bool(b) => hcl::Value::Bool(b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                hcl::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                hcl::Value::from(i)
            } else {
                n.as_f64()
                    .and_then(hcl::Number::from_f64)
                    .map_or(hcl::Value::Null, hcl::Value::Number)
            }
        }
        Value::String(s) => hcl::Value::String(s),
        Value::Array(a) => hcl::Value::Array(a.into_iter().map(to_hcl).collect()),
        Value::Object(o) => {
            hcl::Value::Object(o.into_iter().map(|(k, v)| (k, to_hcl(v))).collect())
        }
    }
}

/// A module's evaluation scope.
struct Scope<'a> {
    ctx: Context<'a>,
    /// `ctx` with the values not known until apply as markers ([`ev_sym`]).
    sctx: Context<'a>,
    /// `ctx` and `sctx` as the module's evaluation starts, without the
    /// functions (for a block that calls none).
    plain: Context<'a>,
    splain: Context<'a>,
    /// local name -> references of its expression (to follow `local.x`).
    local_refs: HashMap<String, Vec<String>>,
}

impl Scope<'_> {
    /// The references of an expression, with `local.x` followed to what
    /// the local refers to (Terraform records `local.x` only).
    fn refs(&self, e: &Expression) -> Vec<String> {
        let mut out = vec![];
        references(e, &mut out);
        let mut seen = HashSet::new();
        let mut i = 0;
        let mut hops = 0;
        while i < out.len() && hops < MAX_LOCAL_HOPS * 8 {
            if let Some(name) = out[i].strip_prefix("local.") {
                let name = name
                    .split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if seen.insert(name.clone()) {
                    hops += 1;
                    for r in self.local_refs.get(&name).into_iter().flatten() {
                        if !out.contains(r) {
                            out.push(r.clone());
                        }
                    }
                }
            }
            i += 1;
        }
        out
    }

    fn eval(&self, e: &Expression, ctx: &Context) -> Option<hcl::Value> {
        ev(e, ctx)
    }
}

/// An expression some of whose values are unknown: an object constructor
/// element by element (known elements in the first, `true` for each
/// unknown one in the second, as a plan's `after` and `after_unknown`);
/// anything else wholly known or wholly unknown.
fn eval_partial(e: &Expression, ctx: &Context) -> (Option<Value>, Option<Value>) {
    if let Some(v) = ev(e, ctx) {
        return (Some(to_json(&v)), None);
    }
    let Expression::Object(fields) = e else {
        return (None, Some(Value::Bool(true)));
    };
    let (mut known, mut unknown) = (Map::new(), Map::new());
    for (key, value) in fields {
        // A key not known: nothing of the object is.
        let Some(key) = object_key(key, ctx) else {
            return (None, Some(Value::Bool(true)));
        };
        let (k, u) = eval_partial(value, ctx);
        if let Some(k) = k {
            known.insert(key.clone(), k);
        }
        if let Some(u) = u {
            unknown.insert(key, u);
        }
    }
    (Some(Value::Object(known)), Some(Value::Object(unknown)))
}

/// The entries of an object constructor whose keys are all known, each
/// with its value when that is known; `None` if a key is not known.
fn known_keys(e: &Expression, ctx: &Context) -> Option<Vec<(String, Option<hcl::Value>)>> {
    let Expression::Object(fields) = e else {
        return None;
    };
    fields
        .iter()
        .map(|(key, value)| Some((object_key(key, ctx)?, ev(value, ctx))))
        .collect()
}

/// An object constructor's key, when it is known (a name, or an
/// expression that evaluates to a string).
fn object_key(key: &ObjectKey, ctx: &Context) -> Option<String> {
    match key {
        ObjectKey::Identifier(i) => Some(i.to_string()),
        ObjectKey::Expression(k) => match ev(k, ctx) {
            Some(hcl::Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// A body's values.
#[derive(Default)]
struct BodyValues {
    /// What the source decides (a plan's `after`).
    after: Map<String, Value>,
    /// `true` for each value not known (a plan's `after_unknown`).
    unknown: Map<String, Value>,
    /// The configuration's expressions.
    exprs: Map<String, Value>,
    /// `after` with the values not known until apply as markers, where
    /// their origin is known ([`ev_sym`]).
    sym: Map<String, Value>,
    /// Every attribute is in `sym` (no block is `dynamic`).
    complete: bool,
}

fn eval_body(body: &Body, scope: &Scope, ctx: &Context, sctx: &Context, top: bool) -> BodyValues {
    let mut out = BodyValues {
        complete: true,
        ..Default::default()
    };
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let k = a.key.as_str();
                if top && matches!(k, "count" | "for_each" | "provider" | "depends_on") {
                    continue;
                }
                let refs = scope.refs(&a.expr);
                let value = scope.eval(&a.expr, ctx);
                match &value {
                    Some(v) => {
                        let v = to_json(v);
                        out.sym.insert(k.to_string(), v.clone());
                        out.after.insert(k.to_string(), v);
                    }
                    None => {
                        // An object written out (`aws_key_info = { ... }`)
                        // keeps what it decides, as a plan does.
                        let (known, u) = eval_partial(&a.expr, ctx);
                        if let Some(known) = known {
                            out.after.insert(k.to_string(), known);
                        }
                        out.unknown
                            .insert(k.to_string(), u.unwrap_or(Value::Bool(true)));
                        match ev_sym(&a.expr, ctx, sctx) {
                            Some(v) => {
                                out.sym.insert(k.to_string(), to_json(&v));
                            }
                            None => out.complete = false,
                        }
                    }
                }
                let e = if refs.is_empty() {
                    json!({ "constant_value": value.as_ref().map(to_json).unwrap_or(Value::Null) })
                } else {
                    json!({ "references": refs })
                };
                out.exprs.insert(k.to_string(), e);
            }
            Structure::Block(b) => {
                let k = b.identifier.as_str();
                if k == "dynamic" {
                    out.complete = false;
                }
                if matches!(
                    k,
                    "lifecycle" | "provisioner" | "connection" | "dynamic" | "precondition"
                ) {
                    continue;
                }
                let inner = eval_body(&b.body, scope, ctx, sctx, false);
                out.complete &= inner.complete;
                for (m, v) in [
                    (&mut out.after, inner.after),
                    (&mut out.unknown, inner.unknown),
                    (&mut out.exprs, inner.exprs),
                    (&mut out.sym, inner.sym),
                ] {
                    if let Value::Array(list) = m
                        .entry(k.to_string())
                        .or_insert_with(|| Value::Array(vec![]))
                    {
                        list.push(Value::Object(v));
                    }
                }
            }
        }
    }
    out
}

/// Everything read of one module (and its children).
struct Out {
    changes: Vec<Value>,
    config: Value,
    locations: HashMap<String, Source>,
    ignores: Vec<InlineIgnore>,
    /// Root only: provider config key -> its configuration.
    providers: Map<String, Value>,
    /// The module's outputs: known values, and with unknowns as markers.
    outputs: hcl::Map<String, hcl::Value>,
    soutputs: hcl::Map<String, hcl::Value>,
}

/// A module call's inputs: known values and references.
struct Call<'a> {
    prefix: String,
    inputs: hcl::Map<String, hcl::Value>,
    /// Inputs not known until apply, as markers where their origin is known.
    sinputs: hcl::Map<String, hcl::Value>,
    /// provider local name in the module -> provider config key of the root.
    providers: HashMap<String, String>,
    parent: Option<&'a Call<'a>>,
}

/// Passes over a module's locals and resources (each decides what the
/// previous one left unknown for want of another resource's value).
const MAX_PASSES: usize = 8;

/// The order in which a module's resource and data blocks are evaluated,
/// and what each reads ([`read_module`]).
struct EvalOrder {
    /// Each block after the blocks it reads (a cycle, which Terraform
    /// refuses, is cut where it closes).
    order: Vec<usize>,
    /// The blocks each block reads: those its references name, and those
    /// any local names when it reads a local.
    reads: Vec<Vec<usize>>,
    reads_locals: Vec<bool>,
    reads_modules: Vec<bool>,
}

impl EvalOrder {
    fn new(
        blocks: &[(&Located, bool)],
        roots: &[Vec<(String, String)>],
        locals: &[(&hcl::Attribute, String)],
    ) -> EvalOrder {
        let key = |(b, data): &(&Located, bool)| {
            let (rtype, name) = (label(&b.block.labels[0]), label(&b.block.labels[1]));
            if *data {
                ("data".to_string(), rtype.to_string())
            } else {
                (rtype.to_string(), name.to_string())
            }
        };
        let mut by_key: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            by_key.entry(key(b)).or_default().push(i);
        }
        let mut local_refs = vec![];
        for (a, _) in locals {
            references(&a.expr, &mut local_refs);
        }
        let blocks_named = |refs: &[(String, String)]| -> Vec<usize> {
            refs.iter()
                .filter_map(|k| by_key.get(k))
                .flatten()
                .copied()
                .collect()
        };
        let local_reads = blocks_named(&root_pairs(&local_refs));
        let mut reads = vec![];
        let (mut reads_locals, mut reads_modules) = (vec![], vec![]);
        for (i, r) in roots.iter().enumerate() {
            let of_locals = r.iter().any(|(root, _)| root == "local");
            let mut here = blocks_named(r);
            if of_locals {
                here.extend(&local_reads);
            }
            here.sort_unstable();
            here.dedup();
            here.retain(|&d| d != i);
            reads.push(here);
            reads_locals.push(of_locals);
            reads_modules.push(r.iter().any(|(root, _)| root == "module"));
        }
        // Depth first, each block after what it reads.
        let n = blocks.len();
        let mut state = vec![0u8; n];
        let mut order = Vec::with_capacity(n);
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            state[start] = 1;
            let mut stack = vec![(start, 0usize)];
            while let Some((v, next)) = stack.last_mut() {
                let v = *v;
                if let Some(&d) = reads[v].get(*next) {
                    *next += 1;
                    if state[d] == 0 {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                } else {
                    state[v] = 2;
                    order.push(v);
                    stack.pop();
                }
            }
        }
        EvalOrder {
            order,
            reads,
            reads_locals,
            reads_modules,
        }
    }

    /// Whether block `i` was never evaluated, or something it reads
    /// changed after its last evaluation.
    fn stale(&self, i: usize, clock: &Clock) -> bool {
        let since = clock.evaluated[i];
        since == 0
            || self.reads[i].iter().any(|&d| clock.changed[d] > since)
            || (self.reads_locals[i] && clock.locals > since)
            || (self.reads_modules[i] && clock.modules > since)
    }
}

/// When each block was last evaluated and last changed its value, and
/// when the locals and the module outputs last changed ([`EvalOrder`]).
struct Clock {
    now: u64,
    evaluated: Vec<u64>,
    changed: Vec<u64>,
    locals: u64,
    modules: u64,
}

impl Clock {
    fn new(blocks: usize) -> Clock {
        Clock {
            now: 0,
            evaluated: vec![0; blocks],
            changed: vec![0; blocks],
            locals: 0,
            modules: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.now += 1;
        self.now
    }
}

/// One instance of a resource, evaluated.
struct Instance {
    /// The `count` index or `for_each` key.
    key: Option<Value>,
    after: Map<String, Value>,
    unknown: Map<String, Value>,
    /// `after` with unknowns as markers where their origin is known.
    sym: Map<String, Value>,
}

/// A resource block, evaluated.
#[derive(Default)]
struct Evaluated {
    instances: Vec<Instance>,
    exprs: Map<String, Value>,
    /// `count_expression` / `for_each_expression` of the configuration.
    repetition: Option<(&'static str, Value)>,
    /// Instances keyed by `count` (a list) or `for_each` (a map).
    keyed: Option<bool>,
}

/// Instances as `type.name` evaluates: one object, a list (`count`) or a
/// map (`for_each`).
fn keyed_value(keyed: Option<bool>, items: Vec<(Option<Value>, hcl::Value)>) -> hcl::Value {
    match keyed {
        None => items
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(hcl::Value::Null),
        Some(true) => hcl::Value::Array(items.into_iter().map(|(_, v)| v).collect()),
        Some(false) => hcl::Value::Object(
            items
                .into_iter()
                .map(|(k, v)| {
                    let k = match k {
                        Some(Value::String(s)) => s,
                        Some(v) => v.to_string(),
                        None => String::new(),
                    };
                    (k, v)
                })
                .collect(),
        ),
    }
}

impl Evaluated {
    /// What `type.name` evaluates to for others: the known values only
    /// (an unknown attribute is absent, so reading it stays unknown).
    fn value(&self) -> hcl::Value {
        let items = self
            .instances
            .iter()
            .map(|i| (i.key.clone(), to_hcl(Value::Object(i.after.clone()))))
            .collect();
        keyed_value(self.keyed, items)
    }

    /// The same with the values not known until apply as markers: those
    /// [`ev_sym`] gave, and each other unknown attribute (`computed`, or
    /// unknown at the top level) as its own reference,
    /// `aws_iam_role.r[0].arn`.
    fn sym_value(&self, address: &str, rtype: &str, computed: &[String]) -> hcl::Value {
        let items = self
            .instances
            .iter()
            .map(|i| {
                let index = i.key.as_ref().map(|k| format!("[{k}]")).unwrap_or_default();
                let mut m = i.sym.clone();
                let unknown_top = i
                    .unknown
                    .iter()
                    .filter(|(_, u)| **u == Value::Bool(true))
                    .map(|(k, _)| k.clone());
                for attr in computed.iter().cloned().chain(unknown_top) {
                    if !m.contains_key(&attr) {
                        let origin = format!("{address}{index}.{attr}");
                        m.insert(
                            attr.clone(),
                            Value::String(crate::rules::unknown::marker(
                                &origin,
                                unknown_kind(rtype, &attr),
                            )),
                        );
                    }
                }
                (i.key.clone(), to_hcl(Value::Object(m)))
            })
            .collect();
        keyed_value(self.keyed, items)
    }
}

/// The locals a context decides, in as many rounds as they need.
fn eval_locals(attrs: &[(&hcl::Attribute, String)], ctx: &Context) -> hcl::Map<String, hcl::Value> {
    let mut locals = hcl::Map::new();
    if attrs.is_empty() {
        return locals;
    }
    let mut ctx = ctx.clone();
    for _ in 0..=attrs.len().min(64) {
        if tripped() {
            break;
        }
        let before = locals.len();
        ctx.declare_var("local", hcl::Value::Object(locals.clone()));
        for (a, at) in attrs {
            if locals.contains_key(a.key.as_str()) {
                continue;
            }
            set_place(format!("{at} (local.{})", a.key.as_str()));
            if let Some(v) = ev(&a.expr, &ctx) {
                locals.insert(a.key.to_string(), v);
            }
        }
        if locals.len() == before {
            break;
        }
    }
    locals
}

/// The locals with the values not known until apply as markers
/// ([`ev_sym`]): `locals` (what `ctx` decides) and, for the others, what
/// `sctx` gives where the unknowns only pass through.
fn eval_locals_sym(
    attrs: &[(&hcl::Attribute, String)],
    locals: &hcl::Map<String, hcl::Value>,
    ctx: &Context,
    sctx: &Context,
) -> hcl::Map<String, hcl::Value> {
    let mut out = locals.clone();
    if attrs.is_empty() {
        return out;
    }
    let mut ctx = ctx.clone();
    ctx.declare_var("local", hcl::Value::Object(locals.clone()));
    let mut sctx = sctx.clone();
    for _ in 0..=attrs.len().min(64) {
        if tripped() {
            break;
        }
        let before = out.len();
        sctx.declare_var("local", hcl::Value::Object(out.clone()));
        for (a, at) in attrs {
            if out.contains_key(a.key.as_str()) {
                continue;
            }
            set_place(format!("{at} (local.{})", a.key.as_str()));
            if let Some(v) = ev_sym(&a.expr, &ctx, &sctx) {
                out.insert(a.key.to_string(), v);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

/// Evaluates a resource or data block: its instances (`count` and
/// `for_each` when their keys are known, else one instance without a key)
/// with the values the source decides and the computed attributes unknown.
#[allow(clippy::too_many_arguments)]
fn eval_resource(
    block: &Block,
    data: bool,
    computed: &[String],
    scope: &Scope,
    ctx: &mut Context,
    sctx: &mut Context,
    address: &str,
    region: Option<&str>,
) -> Evaluated {
    let attr = |k: &str| block.body.attributes().find(|a| a.key.as_str() == k);
    let rtype = block.labels.first().map(label).unwrap_or_default();
    let mut keys: Vec<(Option<Value>, hcl::Value)> = vec![];
    let mut sym_each: HashMap<String, hcl::Value> = HashMap::new();
    let mut repetition = None;
    let mut keyed = None;
    if let Some(c) = attr("count") {
        repetition = Some(("count_expression", expression_json_in(scope, &c.expr, ctx)));
        match ev(&c.expr, ctx).and_then(|v| v.as_u64()) {
            Some(n) => {
                keyed = Some(true);
                if reserve_instances(address, n) {
                    for i in 0..n {
                        keys.push((Some(json!(i)), hcl::value!({ index = (i) })));
                    }
                }
            }
            None => {
                reserve_instances(address, 1);
                keys.push((None, hcl::Value::Null))
            }
        }
    } else if let Some(f) = attr("for_each") {
        repetition = Some((
            "for_each_expression",
            expression_json_in(scope, &f.expr, ctx),
        ));
        let value = ev(&f.expr, ctx);
        let n = match &value {
            Some(hcl::Value::Object(m)) => m.len(),
            Some(hcl::Value::Array(a)) => a.len(),
            _ => 1,
        };
        let value = if reserve_instances(address, n as u64) {
            value
        } else {
            Some(hcl::Value::Array(vec![]))
        };
        match value {
            Some(hcl::Value::Object(m)) => {
                keyed = Some(false);
                for (k, v) in m {
                    keys.push((
                        Some(json!(k)),
                        hcl::value!({ key = (k.clone()), value = (v) }),
                    ));
                }
            }
            Some(hcl::Value::Array(a)) => {
                keyed = Some(false);
                for v in a {
                    let k = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    keys.push((
                        Some(json!(k)),
                        hcl::value!({ key = (k.clone()), value = (k.clone()) }),
                    ));
                }
            }
            // A map written out whose keys are known and some values not
            // (the ARNs of keys made in the same plan): Terraform makes an
            // instance per key, and `each.value` is unknown where the value is.
            _ => match known_keys(&f.expr, ctx) {
                Some(entries) if reserve_instances(address, entries.len() as u64) => {
                    keyed = Some(false);
                    for (k, v) in entries {
                        let meta = match v {
                            Some(v) => hcl::value!({ key = (k.clone()), value = (v) }),
                            None => hcl::value!({ key = (k.clone()) }),
                        };
                        keys.push((Some(json!(k)), meta));
                    }
                    // `each.value` with its unknowns as markers.
                    if let Expression::Object(fields) = &f.expr {
                        for (key, value) in fields {
                            if let Some(k) = object_key(key, ctx) {
                                if let Some(v) = ev_sym(value, ctx, sctx) {
                                    sym_each
                                        .insert(k.clone(), hcl::value!({ key = (k), value = (v) }));
                                }
                            }
                        }
                    }
                }
                _ => keys.push((None, hcl::Value::Null)),
            },
        }
    } else {
        reserve_instances(address, 1);
        keys.push((None, hcl::Value::Null));
    }
    let mut instances = vec![];
    let mut exprs_once = None;
    for (key, meta) in keys {
        let smeta = key
            .as_ref()
            .and_then(|k| k.as_str())
            .and_then(|k| sym_each.get(k).cloned())
            .unwrap_or_else(|| meta.clone());
        match (&repetition, &meta) {
            (Some(("count_expression", _)), hcl::Value::Object(_)) => {
                ctx.declare_var("count", meta.clone());
                sctx.declare_var("count", meta);
            }
            (Some(_), hcl::Value::Object(_)) => {
                ctx.declare_var("each", meta);
                sctx.declare_var("each", smeta);
            }
            _ => {}
        }
        let BodyValues {
            mut after,
            mut unknown,
            exprs,
            mut sym,
            complete,
        } = eval_body(&block.body, scope, ctx, sctx, true);
        for c in computed {
            if !after.contains_key(c) && !unknown.contains_key(c) {
                unknown.insert(c.clone(), Value::Bool(true));
            }
        }
        if data {
            // Data sources Terraform computes without the cloud.
            let mut computed_here: Vec<(&str, Value, bool)> = vec![];
            match rtype {
                "aws_iam_policy_document" if complete => {
                    if let Some(doc) = super::policy_document::document(&Value::Object(sym.clone()))
                    {
                        let known = !crate::rules::unknown::contains(&doc);
                        computed_here.push(("json", json!(doc), known));
                        computed_here.push(("minified_json", json!(doc), known));
                    }
                }
                "aws_partition" => {
                    if let Some(r) = region {
                        let p = crate::rules::ids::Partition::of_region(r);
                        let (dns, rev) = match p.as_str() {
                            "aws-cn" => ("amazonaws.com.cn", "cn.com.amazonaws"),
                            _ => ("amazonaws.com", "com.amazonaws"),
                        };
                        computed_here.push(("partition", json!(p.as_str()), true));
                        computed_here.push(("id", json!(p.as_str()), true));
                        computed_here.push(("dns_suffix", json!(dns), true));
                        computed_here.push(("reverse_dns_prefix", json!(rev), true));
                    }
                }
                "aws_region" => {
                    let given = ["region", "name"]
                        .iter()
                        .find_map(|k| after.get(*k).and_then(Value::as_str).map(str::to_string));
                    if let Some(r) = given.or_else(|| region.map(str::to_string)) {
                        for k in ["name", "region", "id"] {
                            computed_here.push((k, json!(r), true));
                        }
                    }
                }
                _ => {}
            }
            for (k, v, known) in computed_here {
                sym.insert(k.to_string(), v.clone());
                if known {
                    after.insert(k.to_string(), v);
                    unknown.remove(k);
                }
            }
        }
        if !data {
            for (_, nested, attr) in COMPUTED_NESTED.iter().filter(|(t, _, _)| *t == rtype) {
                if let Some(Value::Array(list)) = unknown.get_mut(*nested) {
                    for (i, u) in list.iter_mut().enumerate() {
                        let set = after
                            .get(*nested)
                            .and_then(|l| l.get(i))
                            .is_some_and(|o| o.get(*attr).is_some());
                        if let (Value::Object(u), false) = (u, set) {
                            u.insert(attr.to_string(), Value::Bool(true));
                        }
                    }
                }
            }
        }
        instances.push(Instance {
            key,
            after,
            unknown,
            sym,
        });
        exprs_once.get_or_insert(exprs);
    }
    Evaluated {
        instances,
        exprs: exprs_once.unwrap_or_default(),
        repetition,
        keyed,
    }
}

/// The objects a block's expressions refer to, as (`type`, `name`), or
/// (`data`, `type`) for data sources.
fn block_roots(body: &Body) -> Vec<(String, String)> {
    let mut refs = vec![];
    fn walk(body: &Body, refs: &mut Vec<String>) {
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => references(&a.expr, refs),
                Structure::Block(b) => walk(&b.body, refs),
            }
        }
    }
    walk(body, &mut refs);
    root_pairs(&refs)
}

/// The (`type`, `name`) pairs of references, sorted, each once.
fn root_pairs(refs: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = refs
        .iter()
        .filter_map(|r| {
            let mut parts = r.split('.');
            let root = parts.next()?;
            let name = parts.next()?.split('[').next()?;
            Some((root.to_string(), name.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn read_module(
    files: &[File],
    dir: &Path,
    root_dir: &Path,
    call: &Call,
    root_vars: &hcl::Map<String, hcl::Value>,
    depth: usize,
) -> Result<Out, HclError> {
    if depth > MAX_MODULE_DEPTH {
        return Err(err(format!(
            "{}: modules nested deeper than {MAX_MODULE_DEPTH}",
            dir.display()
        )));
    }
    check()?;
    let blocks: Vec<Located> = files
        .iter()
        .flat_map(|f| {
            f.structures.iter().filter_map(move |(s, span)| match s {
                Structure::Block(b) => Some(Located {
                    block: b,
                    file: f,
                    span: span.clone(),
                }),
                _ => None,
            })
        })
        .collect();
    let of = |kind: &str| -> Vec<&Located> {
        blocks
            .iter()
            .filter(|b| b.block.identifier.as_str() == kind)
            .collect()
    };
    duplicate_declarations(&blocks)?;
    let mut base = Context::new();
    functions(&mut base);
    // Variables: the root's from -var/-var-file/tfvars, a module's from its call.
    let mut vars = hcl::Map::new();
    let mut svars = hcl::Map::new();
    for b in of("variable") {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        let given = if depth == 0 {
            root_vars.get(name).cloned()
        } else {
            call.inputs.get(name).cloned()
        };
        let default = b
            .block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "default");
        set_place(format!("{}:{} (var.{name})", b.file.name, b.source().line));
        let value = match (given, default) {
            // A module input given but unknown stays unknown.
            (Some(v), _) if v.as_str() == Some(UNKNOWN_INPUT) => None,
            (Some(v), _) => Some(v),
            (None, Some(d)) => ev(&d.expr, &base),
            (None, None) => None,
        };
        match value {
            Some(v) => {
                vars.insert(name.to_string(), v.clone());
                svars.insert(name.to_string(), v);
            }
            None => {
                // Not known: what the call gives with its unknowns as
                // markers, else the variable itself.
                let sv = (depth > 0)
                    .then(|| call.sinputs.get(name).cloned())
                    .flatten()
                    .unwrap_or_else(|| {
                        unknown_value(
                            &format!("{}var.{name}", call.prefix),
                            crate::rules::unknown::Kind::Any,
                        )
                    });
                svars.insert(name.to_string(), sv);
            }
        }
    }
    let dir_s = dir.display().to_string();
    // The same variables without the functions, for a block that calls
    // none ([`may_call`]): cloning every function's definition for every
    // block's evaluation was a twentieth of a large review.
    let mut plain = Context::new();
    for c in [&mut base, &mut plain] {
        c.declare_var("var", hcl::Value::Object(vars.clone()));
        c.declare_var(
            "path",
            hcl::value!({ module = (dir_s.clone()), root = (root_dir.display().to_string()), cwd = "." }),
        );
        c.declare_var("terraform", hcl::value!({ workspace = "default" }));
    }
    let mut sbase = base.clone();
    sbase.declare_var("var", hcl::Value::Object(svars.clone()));
    let mut splain = plain.clone();
    splain.declare_var("var", hcl::Value::Object(svars));
    // Locals and resources, in passes: each pass evaluates the locals and
    // every resource with what the previous one decided of the others
    // (`aws_kms_key.k.policy` is known when its configuration decides it),
    // until nothing more is decided.
    let local_attrs: Vec<(&hcl::Attribute, String)> = of("locals")
        .into_iter()
        .flat_map(|b| {
            let at = format!("{}:{}", b.file.name, b.source().line);
            b.block.body.attributes().map(move |a| (a, at.clone()))
        })
        .collect();
    // Functions review does not evaluate: named, with their block.
    for b in &blocks {
        let mut names = vec![];
        if b.block.identifier.as_str() == "variable" {
            // `type = map(object({...}))` is a type constraint, not a call.
            for a in b
                .block
                .body
                .attributes()
                .filter(|a| a.key.as_str() == "default")
            {
                unsupported_calls(&a.expr, &mut names);
            }
        } else {
            body_unsupported(&b.block.body, &mut names);
        }
        let what = std::iter::once(b.block.identifier.as_str())
            .chain(b.block.labels.iter().map(label))
            .collect::<Vec<_>>()
            .join(".");
        for f in names {
            let note = format!(
                "{}:{} ({prefix}{what}): function {f}() is not supported by review; what depends on it cannot be told",
                b.file.name,
                b.source().line,
                prefix = call.prefix
            );
            with_spend(|s| {
                if !s.unevaluated.contains(&note) && s.unevaluated.len() < 1000 {
                    s.unevaluated.push(note);
                }
            });
        }
    }
    let mut scope = Scope {
        ctx: base,
        sctx: sbase,
        plain,
        splain,
        local_refs: HashMap::new(),
    };
    for (a, _) in &local_attrs {
        let mut r = vec![];
        references(&a.expr, &mut r);
        scope.local_refs.insert(a.key.to_string(), r);
    }
    let prefix = &call.prefix;
    let mut out = Out {
        changes: vec![],
        config: json!({}),
        locations: HashMap::new(),
        ignores: vec![],
        providers: Map::new(),
        outputs: hcl::Map::new(),
        soutputs: hcl::Map::new(),
    };
    // The region of each provider configuration of this module, before
    // the resources: `data "aws_partition"` and `data "aws_region"` read it.
    for b in of("provider") {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        let key = provider_block_key(b, name, call, depth, &scope.ctx);
        let region = b
            .block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "region")
            .and_then(|a| ev(&a.expr, &scope.ctx))
            .and_then(|v| v.as_str().map(str::to_string));
        if let Some(r) = region {
            with_spend(|s| s.regions.insert(key, r));
        }
    }
    let resource_blocks: Vec<(&Located, bool)> = of("resource")
        .into_iter()
        .map(|b| (b, false))
        .chain(of("data").into_iter().map(|b| (b, true)))
        .filter(|(b, _)| b.block.labels.len() == 2)
        .collect();
    let computed: Vec<Vec<String>> = resource_blocks
        .iter()
        .map(|(b, _)| {
            let rtype = label(&b.block.labels[0]);
            match COMPUTED.iter().find(|(t, _)| *t == rtype) {
                Some((_, c)) => c.iter().map(|s| s.to_string()).collect(),
                None => own_computed(rtype),
            }
        })
        .collect();
    let provider_locals: Vec<String> = resource_blocks
        .iter()
        .map(|(b, _)| {
            let rtype = label(&b.block.labels[0]);
            b.block
                .body
                .attributes()
                .find(|a| a.key.as_str() == "provider")
                .map(|a| {
                    let mut r = vec![];
                    references(&a.expr, &mut r);
                    r.first().cloned().unwrap_or_default()
                })
                .unwrap_or_else(|| rtype.split('_').next().unwrap_or_default().to_string())
        })
        .collect();
    let regions: Vec<Option<String>> = provider_locals
        .iter()
        .map(|l| {
            let key = provider_key(call, l, depth);
            with_spend(|s| s.regions.get(&key).cloned()).flatten()
        })
        .collect();
    // Values known so far: type (or `data`, `module`) -> name -> value;
    // and the same with the unknowns as markers.
    type Known = BTreeMap<String, hcl::Map<String, hcl::Value>>;
    let mut known: Known = BTreeMap::new();
    let mut sknown: Known = BTreeMap::new();
    // The objects each block refers to (`type`, `name`): a block is
    // evaluated with those only, so the time stays linear in the resources.
    let roots: Vec<Vec<(String, String)>> = resource_blocks
        .iter()
        .map(|(b, _)| block_roots(&b.block.body))
        .collect();
    let plan = EvalOrder::new(&resource_blocks, &roots, &local_attrs);
    // Which blocks may call a function.
    let calls: Vec<bool> = resource_blocks
        .iter()
        .map(|(b, _)| body_may_call(&b.block.body))
        .collect();
    // The contexts with the values known so far and the locals they decide.
    let contexts_of = |known: Known, sknown: Known| {
        let mut full = scope.ctx.clone();
        for (t, m) in known {
            full.declare_var(t, hcl::Value::Object(m));
        }
        let mut sfull = scope.sctx.clone();
        for (t, m) in sknown {
            sfull.declare_var(t, hcl::Value::Object(m));
        }
        let locals = eval_locals(&local_attrs, &full);
        let slocals = eval_locals_sym(&local_attrs, &locals, &full, &sfull);
        full.declare_var("local", hcl::Value::Object(locals.clone()));
        sfull.declare_var("local", hcl::Value::Object(slocals.clone()));
        (full, sfull, locals, slocals)
    };
    let contexts = |known: &Known, sknown: &Known| contexts_of(known.clone(), sknown.clone());
    let module_blocks = of("module");
    let mut calls_out: Option<Calls> = None;
    // Each block's last evaluation, and the clock of what changed since:
    // a block is evaluated again only when a value it reads (a block it
    // refers to, the locals, the module outputs) changed after its last
    // evaluation. Blocks go in the order of their references, so that a
    // chain (key, key configuration, workspace) is decided in one pass,
    // and a pass that evaluates nothing ends the passes.
    let mut results: Vec<Option<Evaluated>> = resource_blocks.iter().map(|_| None).collect();
    let mut clock = Clock::new(resource_blocks.len());
    let mut last_locals: Option<(hcl::Map<String, hcl::Value>, hcl::Map<String, hcl::Value>)> =
        None;
    // Module calls are evaluated with what the resources decided, and the
    // resources again with the modules' outputs, until nothing changes.
    for round in 0..MODULE_ROUNDS {
        for _pass in 0..MAX_PASSES {
            check()?;
            let (locals, slocals) = if local_attrs.is_empty() {
                (hcl::Map::new(), hcl::Map::new())
            } else {
                let (_, _, locals, slocals) = contexts(&known, &sknown);
                (locals, slocals)
            };
            if last_locals
                .as_ref()
                .is_none_or(|(l, s)| *l != locals || *s != slocals)
            {
                clock.locals = clock.tick();
                last_locals = Some((locals.clone(), slocals.clone()));
            }
            let mut base = scope.ctx.clone();
            base.declare_var("local", hcl::Value::Object(locals.clone()));
            let mut sbase = scope.sctx.clone();
            sbase.declare_var("local", hcl::Value::Object(slocals.clone()));
            let mut pbase = scope.plain.clone();
            pbase.declare_var("local", hcl::Value::Object(locals));
            let mut psbase = scope.splain.clone();
            psbase.declare_var("local", hcl::Value::Object(slocals));
            let mut evaluated = false;
            for &i in &plan.order {
                if !plan.stale(i, &clock) {
                    continue;
                }
                evaluated = true;
                clock.evaluated[i] = clock.tick();
                let (b, data) = resource_blocks[i];
                let (mut ctx, mut sctx) = if calls[i] {
                    (base.clone(), sbase.clone())
                } else {
                    (pbase.clone(), psbase.clone())
                };
                for (known, ctx) in [(&known, &mut ctx), (&sknown, &mut sctx)] {
                    let mut narrow: BTreeMap<&str, hcl::Map<String, hcl::Value>> = BTreeMap::new();
                    for (root, name) in &roots[i] {
                        if let Some(v) = known.get(root).and_then(|m| m.get(name)) {
                            narrow
                                .entry(root.as_str())
                                .or_default()
                                .insert(name.clone(), v.clone());
                        }
                    }
                    for (t, m) in narrow {
                        ctx.declare_var(t, hcl::Value::Object(m));
                    }
                }
                let (rtype, name) = (label(&b.block.labels[0]), label(&b.block.labels[1]));
                let address = if data {
                    format!("{}data.{rtype}.{name}", call.prefix)
                } else {
                    format!("{}{rtype}.{name}", call.prefix)
                };
                set_place(format!("{}:{} ({address})", b.file.name, b.source().line));
                let r = eval_resource(
                    b.block,
                    data,
                    &computed[i],
                    &scope,
                    &mut ctx,
                    &mut sctx,
                    &address,
                    regions[i].as_deref(),
                );
                let mut changed = false;
                for (m, value) in [
                    (&mut known, r.value()),
                    (&mut sknown, r.sym_value(&address, rtype, &computed[i])),
                ] {
                    let slot: &mut hcl::Map<String, hcl::Value> = if data {
                        let d = m.entry("data".into()).or_default();
                        let hcl::Value::Object(d) = d
                            .entry(rtype.to_string())
                            .or_insert_with(|| hcl::Value::Object(hcl::Map::new()))
                        else {
                            continue;
                        };
                        d
                    } else {
                        m.entry(rtype.to_string()).or_default()
                    };
                    if slot.get(name) != Some(&value) {
                        slot.insert(name.to_string(), value);
                        changed = true;
                    }
                }
                if changed {
                    clock.changed[i] = clock.tick();
                }
                results[i] = Some(r);
            }
            if !evaluated {
                break;
            }
        }
        check()?;
        if module_blocks.is_empty() {
            break;
        }
        let (full, sfull, _, _) = contexts(&known, &sknown);
        let calls = eval_calls(
            &module_blocks,
            &scope,
            &full,
            &sfull,
            dir,
            root_dir,
            call,
            root_vars,
            depth,
            round == 0,
        )?;
        let same = known.get("module") == Some(&calls.values)
            && sknown.get("module") == Some(&calls.svalues);
        known.insert("module".into(), calls.values.clone());
        sknown.insert("module".into(), calls.svalues.clone());
        calls_out = Some(calls);
        if same {
            break;
        }
        clock.modules = clock.tick();
    }
    let results: Vec<Evaluated> = results.into_iter().map(Option::unwrap_or_default).collect();
    check()?;
    let (full, sfull, _, _) = contexts_of(known, sknown);
    scope.ctx = full;
    scope.sctx = sfull;
    // Providers declared in this module (the root's are the usual case).
    for b in of("provider") {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        let alias = b
            .block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "alias")
            .and_then(|a| ev(&a.expr, &scope.ctx))
            .and_then(|v| v.as_str().map(str::to_string));
        let key = provider_block_key(b, name, call, depth, &scope.ctx);
        let mut exprs = eval_body(&b.block.body, &scope, &scope.ctx, &scope.sctx, true).exprs;
        // The region (and a Databricks host, deployment, account id or
        // workspace host template) as a constant when the source decides it.
        for attr in [
            "region",
            "aws_region",
            "host",
            "deployment",
            "account_id",
            "workspace_host_template",
        ] {
            if let Some(a) = b.block.body.attributes().find(|a| a.key.as_str() == attr) {
                if let Some(hcl::Value::String(s)) = ev(&a.expr, &scope.ctx) {
                    exprs.insert(attr.to_string(), json!({ "constant_value": s }));
                }
            }
        }
        out.providers.insert(
            key,
            json!({ "name": name, "alias": alias, "expressions": exprs }),
        );
    }
    let mut resources_cfg = vec![];
    for (((b, data), r), provider_local) in
        resource_blocks.iter().zip(results).zip(&provider_locals)
    {
        let (rtype, name) = (label(&b.block.labels[0]), label(&b.block.labels[1]));
        let data = *data;
        let local_address = if data {
            format!("data.{rtype}.{name}")
        } else {
            format!("{rtype}.{name}")
        };
        let config_address = format!("{prefix}{local_address}");
        out.locations.insert(config_address.clone(), b.source());
        for (rule, reason, line) in b.ignores() {
            out.ignores.push(InlineIgnore {
                config_address: config_address.clone(),
                rule,
                reason,
                at: Source {
                    file: b.file.name.clone(),
                    line,
                },
            });
        }
        let mut config = json!({
            "address": local_address,
            "mode": if data { "data" } else { "managed" },
            "type": rtype,
            "name": name,
            "provider_config_key": provider_key(call, provider_local, depth),
        });
        // Large values are moved in (`json!` would copy them by serializing).
        config["expressions"] = Value::Object(r.exprs);
        if let Some((k, e)) = r.repetition {
            config[k] = e;
        }
        resources_cfg.push(config);
        let official_data = data && !rtype.starts_with("cmk_");
        for inst in r.instances {
            let index = inst
                .key
                .as_ref()
                .map(|k| format!("[{k}]"))
                .unwrap_or_default();
            let (mut after, mut unknown) = (inst.after, inst.unknown);
            // A key policy with values not known until apply: the known
            // statements and the unknowns' origins, for the policy rules.
            if !data && KEY_TYPES_WITH_POLICY.contains(&rtype) && !after.contains_key("policy") {
                // Only a document the evaluator reads whatever the unknowns
                // are (an unknown `Effect`, or a whole policy from `var.x`,
                // stays unknown rather than a policy that does not parse).
                if let Some(Value::String(p)) = inst.sym.get("policy") {
                    if crate::rules::iam::Policy::parse(p).is_ok() {
                        after.insert("policy".into(), json!(p));
                        unknown.remove("policy");
                    }
                }
            }
            let mut origins = Map::new();
            collect_origins(&inst.sym, &unknown, "", &mut origins);
            let mut rc = json!({
                "address": format!("{prefix}{local_address}{index}"),
                "mode": if data { "data" } else { "managed" },
                "type": rtype,
                "name": name,
                "change": {
                    "actions": [if data { "read" } else { "create" }],
                    "before": null,
                },
            });
            // An official data source's results come from the cloud.
            rc["change"]["after"] = if official_data {
                json!({})
            } else {
                Value::Object(after)
            };
            rc["change"]["after_unknown"] = if official_data {
                Value::Bool(true)
            } else {
                Value::Object(unknown)
            };
            if !origins.is_empty() && !official_data {
                rc["change"]["after_origins"] = Value::Object(origins);
            }
            if let Some(k) = inst.key {
                rc["index"] = k;
            }
            if !prefix.is_empty() {
                rc["module_address"] = Value::String(prefix.trim_end_matches('.').into());
            }
            out.changes.push(rc);
        }
    }
    // Outputs: their references, and their values for the caller.
    let mut outputs = Map::new();
    for b in of("output") {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        if let Some(v) = b
            .block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "value")
        {
            set_place(format!(
                "{}:{} ({prefix}output.{name})",
                b.file.name,
                b.source().line
            ));
            outputs.insert(
                name.to_string(),
                json!({ "expression": expression_json(&scope, &v.expr) }),
            );
            if let Some(x) = ev(&v.expr, &scope.ctx) {
                out.outputs.insert(name.to_string(), x);
            }
            let sx = ev_sym(&v.expr, &scope.ctx, &scope.sctx).unwrap_or_else(|| {
                unknown_value(&format!("{prefix}{name}"), crate::rules::unknown::Kind::Any)
            });
            out.soutputs.insert(name.to_string(), sx);
        }
    }
    let calls = calls_out.unwrap_or_default();
    out.changes.extend(calls.changes);
    out.locations.extend(calls.locations);
    out.ignores.extend(calls.ignores);
    out.providers.extend(calls.providers);
    let mut config = Map::new();
    config.insert("resources".into(), Value::Array(resources_cfg));
    config.insert("outputs".into(), Value::Object(outputs));
    config.insert("module_calls".into(), Value::Object(calls.json));
    out.config = Value::Object(config);
    Ok(out)
}

/// Rounds of module calls and resources (see [`read_module`]).
const MODULE_ROUNDS: usize = 3;

/// The KMS key types whose `policy` the key policy rules read.
const KEY_TYPES_WITH_POLICY: &[&str] = &["aws_kms_key", "aws_kms_replica_key", "cmk_kms_key"];

/// The origins of the values not known until apply that are one reference
/// (`role_arn = aws_iam_role.r.arn`), by attribute path (`role_arn`,
/// `aws_key_info.key_arn`), as a plan's `after_origins`.
fn collect_origins(
    sym: &Map<String, Value>,
    unknown: &Map<String, Value>,
    path: &str,
    out: &mut Map<String, Value>,
) {
    for (k, v) in sym {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (v, unknown.get(k)) {
            (Value::String(s), Some(Value::Bool(true)))
                if crate::rules::unknown::exact(s).is_some() =>
            {
                out.insert(p, v.clone());
            }
            (Value::Array(blocks), Some(Value::Array(us))) => {
                if let (Some(Value::Object(b)), Some(Value::Object(u))) =
                    (blocks.first(), us.first())
                {
                    collect_origins(b, u, &p, out);
                }
            }
            _ => {}
        }
    }
}

/// A provider block's configuration key (`aws`, `aws.west`, in a module
/// `module.m:aws`).
fn provider_block_key(b: &Located, name: &str, call: &Call, depth: usize, ctx: &Context) -> String {
    let alias = b
        .block
        .body
        .attributes()
        .find(|a| a.key.as_str() == "alias")
        .and_then(|a| ev(&a.expr, ctx))
        .and_then(|v| v.as_str().map(str::to_string));
    let local_key = match &alias {
        Some(a) => format!("{name}.{a}"),
        None => name.to_string(),
    };
    if depth == 0 {
        local_key
    } else {
        format!("{}:{local_key}", call.prefix.trim_end_matches('.'))
    }
}

/// `count` or `each` of one module instance: the name, its value, and
/// its value with unknowns as markers.
type Repeat = (&'static str, hcl::Value, hcl::Value);

/// A module's calls, read.
#[derive(Default)]
struct Calls {
    changes: Vec<Value>,
    locations: HashMap<String, Source>,
    ignores: Vec<InlineIgnore>,
    providers: Map<String, Value>,
    /// `module_calls` of the configuration.
    json: Map<String, Value>,
    /// `module.NAME` as others read it: the outputs, known and with markers.
    values: hcl::Map<String, hcl::Value>,
    svalues: hcl::Map<String, hcl::Value>,
}

/// Reads the module calls of a module with a local source: each instance
/// (`count`, `for_each`: `module.x[0]`, `module.x["k"]`) with its inputs.
/// `first`: the first round, which counts the calls against the budget.
#[allow(clippy::too_many_arguments)]
fn eval_calls(
    blocks: &[&Located],
    scope: &Scope,
    full: &Context,
    sfull: &Context,
    dir: &Path,
    root_dir: &Path,
    call: &Call,
    root_vars: &hcl::Map<String, hcl::Value>,
    depth: usize,
    first: bool,
) -> Result<Calls, HclError> {
    let prefix = &call.prefix;
    let mut out = Calls::default();
    for b in blocks {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        let attr = |k: &str| b.block.body.attributes().find(|a| a.key.as_str() == k);
        let at = format!("{}:{}", b.file.name, b.source().line);
        set_place(format!("{at} ({prefix}module.{name})"));
        let source = attr("source")
            .and_then(|a| ev(&a.expr, full))
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // Instances: (key, count/each, each with markers).
        let mut instances: Vec<(Option<Value>, Option<Repeat>)> = vec![];
        let mut keyed = None;
        let mut repetition = None;
        if let Some(c) = attr("count") {
            repetition = Some(("count_expression", expression_json_in(scope, &c.expr, full)));
            match ev(&c.expr, full).and_then(|v| v.as_u64()) {
                Some(n) => {
                    keyed = Some(true);
                    for i in 0..n.min(limits::Budget::default().instances) {
                        let meta = hcl::value!({ index = (i) });
                        instances.push((Some(json!(i)), Some(("count", meta.clone(), meta))));
                    }
                }
                None => instances.push((None, None)),
            }
        } else if let Some(f) = attr("for_each") {
            repetition = Some((
                "for_each_expression",
                expression_json_in(scope, &f.expr, full),
            ));
            let sv = ev_sym(&f.expr, full, sfull);
            match ev(&f.expr, full) {
                Some(hcl::Value::Object(m)) => {
                    keyed = Some(false);
                    for (k, v) in m {
                        let meta = hcl::value!({ key = (k.clone()), value = (v) });
                        instances.push((Some(json!(k)), Some(("each", meta.clone(), meta))));
                    }
                }
                Some(hcl::Value::Array(a)) => {
                    keyed = Some(false);
                    for v in a {
                        let k = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                        let meta = hcl::value!({ key = (k.clone()), value = (k.clone()) });
                        instances.push((Some(json!(k)), Some(("each", meta.clone(), meta))));
                    }
                }
                _ => match (known_keys(&f.expr, full), sv) {
                    // Keys known, some values not: each.value with markers.
                    (Some(entries), Some(hcl::Value::Object(sm))) => {
                        keyed = Some(false);
                        for (k, v) in entries {
                            let meta = match v {
                                Some(v) => hcl::value!({ key = (k.clone()), value = (v) }),
                                None => hcl::value!({ key = (k.clone()) }),
                            };
                            let smeta = match sm.get(&k) {
                                Some(v) => hcl::value!({ key = (k.clone()), value = (v.clone()) }),
                                None => meta.clone(),
                            };
                            instances.push((Some(json!(k)), Some(("each", meta, smeta))));
                        }
                    }
                    _ => instances.push((None, None)),
                },
            }
        } else {
            instances.push((None, None));
        }
        let mut call_json = json!({ "source": source });
        if let Some((k, e)) = &repetition {
            call_json[*k] = e.clone();
        }
        let mut items = vec![];
        let mut sitems = vec![];
        for (key, meta) in instances {
            let (mut ctx, mut sctx) = (full.clone(), sfull.clone());
            if let Some((var, m, sm)) = meta {
                ctx.declare_var(var, m);
                sctx.declare_var(var, sm);
            }
            let mut exprs = Map::new();
            let mut inputs = hcl::Map::new();
            let mut sinputs = hcl::Map::new();
            let mut set = vec![];
            for a in b.block.body.attributes() {
                let k = a.key.as_str();
                if matches!(
                    k,
                    "source" | "version" | "providers" | "count" | "for_each" | "depends_on"
                ) {
                    continue;
                }
                exprs.insert(k.to_string(), expression_json_in(scope, &a.expr, &ctx));
                set.push(k.to_string());
                if let Some(v) = ev(&a.expr, &ctx) {
                    inputs.insert(k.to_string(), v);
                } else if let Some(v) = ev_sym(&a.expr, &ctx, &sctx) {
                    sinputs.insert(k.to_string(), v);
                }
            }
            // `providers = { aws = aws.west }`
            let mut providers = HashMap::new();
            if let Some(Expression::Object(o)) = attr("providers").map(|a| &a.expr) {
                for (k, v) in o {
                    let key = match k {
                        ObjectKey::Identifier(i) => i.to_string(),
                        ObjectKey::Expression(e) => {
                            let mut r = vec![];
                            references(e, &mut r);
                            r.first().cloned().unwrap_or_default()
                        }
                        _ => continue,
                    };
                    let mut r = vec![];
                    references(v, &mut r);
                    if let Some(target) = r.first() {
                        providers.insert(key, provider_key(call, target, depth));
                    }
                }
            }
            if call_json.get("expressions").is_none() {
                call_json["expressions"] = Value::Object(exprs);
            }
            let index = key.as_ref().map(|k| format!("[{k}]")).unwrap_or_default();
            if !(source.starts_with("./") || source.starts_with("../")) {
                continue;
            }
            let child_dir = dir.join(&source);
            let child_prefix = format!("{prefix}module.{name}{index}.");
            // Inside the reviewed tree only, and a budget of calls (each
            // call counted once, whatever the rounds).
            let (root, calls_budget, calls) = with_spend(|s| {
                if first && s.counted_calls.insert(child_prefix.clone()) {
                    s.module_calls += 1;
                }
                (s.root.clone(), s.budget.module_calls, s.module_calls)
            })
            .unwrap_or((PathBuf::from("/"), u64::MAX, 0));
            let inside = std::fs::canonicalize(&child_dir)
                .map_err(|e| {
                    err(format!(
                        "{at}: module {name}: cannot read its source {}: {e}",
                        crate::rules::findings::quote(&source)
                    ))
                })?
                .starts_with(&root);
            if !inside {
                return Err(err(format!(
                    "{at}: module {name}: source {} leaves the reviewed tree ({}); review reads only modules inside it: widen the tree with --root",
                    crate::rules::findings::quote(&source),
                    root.display()
                )));
            }
            if calls > calls_budget {
                return Err(err(format!(
                    "the module call budget (--max-module-calls {calls_budget}) ran out at {at} ({prefix}module.{name}): modules are read once per call; lower the calls or raise --max-module-calls"
                )));
            }
            let child_files = module_files(&child_prefix, &child_dir)?;
            let mut child_call = Call {
                prefix: child_prefix,
                inputs,
                sinputs,
                providers,
                parent: Some(call),
            };
            // Inputs set to something unknown stay unknown (not defaulted).
            for k in set {
                child_call
                    .inputs
                    .entry(k)
                    .or_insert(hcl::Value::String(UNKNOWN_INPUT.into()));
            }
            let child = read_module(
                &child_files,
                &child_dir,
                root_dir,
                &child_call,
                root_vars,
                depth + 1,
            )?;
            out.changes.extend(child.changes);
            out.locations.extend(child.locations);
            out.ignores.extend(child.ignores);
            out.providers.extend(child.providers);
            if call_json.get("module").is_none() {
                call_json["module"] = child.config;
            }
            items.push((key.clone(), hcl::Value::Object(child.outputs)));
            sitems.push((key, hcl::Value::Object(child.soutputs)));
        }
        if call_json.get("expressions").is_none() {
            call_json["expressions"] = json!({});
        }
        out.json.insert(name.to_string(), call_json);
        out.values
            .insert(name.to_string(), keyed_value(keyed, items));
        out.svalues
            .insert(name.to_string(), keyed_value(keyed, sitems));
    }
    Ok(out)
}

/// A module call's files, parsed once per call (whatever the rounds).
fn module_files(call_prefix: &str, dir: &Path) -> Result<std::rc::Rc<Vec<File>>, HclError> {
    if let Some(f) = PARSED.with(|p| p.borrow().get(call_prefix).cloned()) {
        return Ok(f);
    }
    let files = std::rc::Rc::new(
        tf_files(dir)?
            .iter()
            .map(|p| parse_file(p))
            .collect::<Result<Vec<_>, _>>()?,
    );
    PARSED.with(|p| {
        p.borrow_mut()
            .insert(call_prefix.to_string(), files.clone())
    });
    Ok(files)
}

thread_local! {
    /// Module files parsed, by call (see [`module_files`]); emptied by [`load`].
    static PARSED: RefCell<HashMap<String, std::rc::Rc<Vec<File>>>> = RefCell::new(HashMap::new());
}

/// Marks a module input that is set, to an unknown value: the module's
/// variable then stays unknown instead of taking its default.
const UNKNOWN_INPUT: &str = "\u{0}cmk-review-unknown-input";

/// The provider configuration key of a provider local name (`aws`,
/// `aws.west`) in a module, through the calls' `providers` maps, as
/// Terraform writes it.
fn provider_key(call: &Call, local: &str, depth: usize) -> String {
    if depth == 0 {
        return local.to_string();
    }
    if let Some(k) = call.providers.get(local) {
        return k.clone();
    }
    // Implicitly inherited default provider configurations.
    match call.parent {
        Some(p) if !local.contains('.') => provider_key(p, local, depth - 1),
        _ => format!("{}:{local}", call.prefix.trim_end_matches('.')),
    }
}

fn expression_json(scope: &Scope, e: &Expression) -> Value {
    expression_json_in(scope, e, &scope.ctx)
}

/// An expression as `configuration` records it: its references, or its
/// constant value.
fn expression_json_in(scope: &Scope, e: &Expression, ctx: &Context) -> Value {
    let refs = scope.refs(e);
    if refs.is_empty() {
        json!({ "constant_value": ev(e, ctx).map(|v| to_json(&v)).unwrap_or(Value::Null) })
    } else {
        json!({ "references": refs })
    }
}

/// A `-var` value: HCL when it parses as an expression that evaluates
/// (lists, maps, numbers), else the string as given (as Terraform does for
/// string variables).
fn var_value(text: &str) -> hcl::Value {
    text.parse::<Expression>()
        .ok()
        .and_then(|e| e.evaluate(&Context::new()).ok())
        .filter(|v| !matches!(v, hcl::Value::String(_)) || text.trim_start().starts_with('"'))
        .unwrap_or_else(|| hcl::Value::String(text.to_string()))
}

fn read_tfvars(path: &Path, into: &mut hcl::Map<String, hcl::Value>) -> Result<(), HclError> {
    let name = path.display().to_string();
    let text = read_text(path)?;
    let body: Body = hcl::edit::parser::parse_body(&text)
        .map_err(|e| parse_error(&name, &e))?
        .into();
    let ctx = Context::new();
    for a in body.attributes() {
        set_place(format!("{name} (variable {})", a.key.as_str()));
        let v = a.expr.evaluate(&ctx).map_err(|e| {
            err(format!(
                "{name}: variable {} is not a constant: {}",
                a.key.as_str(),
                crate::text::escape(&e.to_string(), 200)
            ))
        })?;
        let v = within_value_budget(v).ok_or_else(|| check().err().unwrap_or_else(|| err("")))?;
        into.insert(a.key.to_string(), v);
    }
    Ok(())
}

/// Whether a path is HCL input (a directory or `.tf` files) rather than
/// plan JSON.
pub fn is_hcl_input(path: &str) -> bool {
    let p = Path::new(path);
    p.is_dir() || p.extension().is_some_and(|x| x == "tf")
}

/// Reads a configuration: a directory's `.tf` files (with its
/// `terraform.tfvars` and `*.auto.tfvars`), or the `.tf` files named.
pub fn load(inputs: &Inputs) -> Result<Loaded, HclError> {
    let (dir, paths) = match inputs.paths.as_slice() {
        [one] if Path::new(one).is_dir() => {
            let d = PathBuf::from(one);
            let files = tf_files(&d)?;
            if files.is_empty() {
                return Err(err(format!(
                    "{one} holds no .tf file (give a Terraform configuration's directory)"
                )));
            }
            (d, files)
        }
        [] => return Err(err("no configuration given")),
        many => {
            let files: Vec<PathBuf> = many.iter().map(PathBuf::from).collect();
            if let Some(bad) = files
                .iter()
                .find(|p| p.extension().is_none_or(|x| x != "tf"))
            {
                return Err(err(format!(
                    "{} is not a .tf file; give one directory or .tf files",
                    bad.display()
                )));
            }
            let dir = files[0]
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            (dir, files)
        }
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let base = std::fs::canonicalize(&dir)
        .map_err(|e| err(format!("cannot read directory {}: {e}", dir.display())))?;
    let root = match &inputs.root {
        Some(r) => {
            std::fs::canonicalize(r).map_err(|e| err(format!("--root {}: {e}", r.display())))?
        }
        None => git_root(&base).unwrap_or_else(|| base.clone()),
    };
    if !base.starts_with(&root) {
        return Err(err(format!(
            "{} is outside --root {}; give a --root that holds the configuration",
            dir.display(),
            root.display()
        )));
    }
    let budget = inputs.budget.clone().unwrap_or_default();
    let max_input = inputs
        .max_input_bytes
        .unwrap_or(super::plan::DEFAULT_MAX_INPUT_MIB * 1024 * 1024);
    SPEND.with(|s| {
        *s.borrow_mut() = Some(Spend {
            root,
            input_left: max_input,
            input_mib: max_input / (1024 * 1024),
            budget,
            instances: HashMap::new(),
            instances_total: 0,
            module_calls: 0,
            place: String::new(),
            tripped: None,
            unevaluated: vec![],
            regions: HashMap::new(),
            counted_calls: HashSet::new(),
        })
    });
    PARSED.with(|p| p.borrow_mut().clear());
    let loaded = load_in(inputs, &dir, &paths);
    PARSED.with(|p| p.borrow_mut().clear());
    let spend = SPEND.with(|s| s.borrow_mut().take());
    let mut loaded = match spend.as_ref().and_then(|s| s.tripped.clone()) {
        Some(m) => return Err(err(m)),
        None => loaded?,
    };
    loaded.unevaluated = spend.map(|s| s.unevaluated).unwrap_or_default();
    Ok(loaded)
}

/// [`load`] once the reviewed tree and the budgets are set.
fn load_in(inputs: &Inputs, dir: &Path, paths: &[PathBuf]) -> Result<Loaded, HclError> {
    let dir = dir.to_path_buf();
    let files = paths
        .iter()
        .map(|p| parse_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    // Variables, in Terraform's order of precedence.
    let mut vars = hcl::Map::new();
    let tfvars = dir.join("terraform.tfvars");
    if std::fs::symlink_metadata(&tfvars).is_ok() {
        read_tfvars(&tfvars, &mut vars)?;
    }
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut auto: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".auto.tfvars"))
            .collect();
        auto.sort();
        for p in auto {
            read_tfvars(&p, &mut vars)?;
        }
    }
    for f in &inputs.var_files {
        read_tfvars(Path::new(f), &mut vars)?;
    }
    for (k, v) in &inputs.vars {
        vars.insert(k.clone(), var_value(v));
    }
    for (k, v) in &inputs.values {
        vars.insert(
            k.clone(),
            hcl::to_value(v).unwrap_or_else(|_| hcl::Value::Null),
        );
    }
    let root = Call {
        prefix: String::new(),
        inputs: hcl::Map::new(),
        sinputs: hcl::Map::new(),
        providers: HashMap::new(),
        parent: None,
    };
    let out = read_module(&files, &dir, &dir, &root, &vars, 0)?;
    let variables: Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "value": to_json(v) })))
        .collect();
    let mut plan = json!({
        "format_version": "1.2",
        "planned_values": { "root_module": { "resources": [] } },
        "configuration": {},
    });
    // Moved in: `json!` would copy them by serializing.
    plan["variables"] = Value::Object(variables);
    plan["resource_changes"] = Value::Array(out.changes);
    plan["configuration"]["provider_config"] = Value::Object(out.providers);
    plan["configuration"]["root_module"] = out.config;
    Ok(Loaded {
        plan,
        locations: out.locations,
        ignores: out.ignores,
        unevaluated: vec![],
    })
}

/// Helper for tests and callers: the ordered addresses of a loaded plan.
pub fn addresses(l: &Loaded) -> Vec<String> {
    l.plan["resource_changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod split_parse_tests {
    use super::{parse_structures, parse_whole, split_point, SPLIT_PARSE_MIN_BYTES};

    /// Blocks in `terraform fmt`'s shape, large enough to be split, with
    /// `middle` starting at the middle of the text (where the split is
    /// looked for from).
    fn text_around(middle: &str) -> String {
        let block = |i: usize| {
            format!(
                "resource \"aws_kms_key\" \"k{i}\" {{\n  description = \"key {i}\"\n  tags = {{\n    n = {i}\n  }}\n}}\n\n"
            )
        };
        let blocks = |from: usize, bytes: usize| {
            let mut t = String::new();
            let mut i = from;
            while t.len() + 200 < bytes {
                t.push_str(&block(i));
                i += 1;
            }
            // Blank lines to the exact size.
            t.push_str(&"\n".repeat(bytes - t.len()));
            t
        };
        let half = SPLIT_PARSE_MIN_BYTES;
        let t = format!(
            "{}{middle}{}",
            blocks(0, half),
            blocks(100_000, half - middle.len())
        );
        assert_eq!(t.len() / 2, half);
        t
    }

    #[test]
    fn a_split_text_parses_to_the_whole_texts_structures() {
        let t = text_around("");
        let at = split_point(&t).unwrap();
        // Both halves parse alone: the halves' structures are the result.
        assert!(parse_whole(&t[..at]).is_ok() && parse_whole(&t[at..]).is_ok());
        let (split, whole) = (parse_structures(&t).unwrap(), parse_whole(&t).unwrap());
        assert!(split.len() > 1000, "{} structures", split.len());
        // The same structures at the same byte spans of the whole text.
        assert_eq!(split, whole);
    }

    #[test]
    fn a_split_inside_a_heredoc_or_comment_gives_the_whole_parse() {
        // The first `}` alone on a line after the middle is inside a
        // heredoc, then inside a comment: the first half does not parse
        // alone, and the whole text is parsed instead.
        for middle in [
            "locals {\n  doc = <<EOT\n}\nresource \"x\" \"y\" {\nEOT\n}\n\n",
            "/*\n}\nresource \"x\" \"y\" {\n*/\n\n",
        ] {
            let t = text_around(middle);
            let at = split_point(&t).unwrap();
            assert!(t[..at].ends_with(&middle[..middle.find("}\n").unwrap() + 2]));
            assert_eq!(parse_structures(&t).unwrap(), parse_whole(&t).unwrap());
        }
    }

    #[test]
    fn errors_and_a_twice_defined_attribute_are_the_whole_texts() {
        // A top-level attribute in both halves: each half parses, the whole
        // text does not.
        let t = format!("a = 1\n{}a = 2\n", text_around(""));
        let at = split_point(&t).unwrap();
        assert!(parse_whole(&t[..at]).is_ok() && parse_whole(&t[at..]).is_ok());
        let whole = parse_whole(&t).unwrap_err();
        let split = parse_structures(&t).unwrap_err();
        assert_eq!(split.to_string(), whole.to_string());
        // An error in the second half: the place in the whole text.
        let t = format!("{}resource \"x\" {{\n  a = = 1\n}}\n", text_around(""));
        let whole = parse_whole(&t).unwrap_err();
        let split = parse_structures(&t).unwrap_err();
        assert_eq!(
            (split.location().line(), split.to_string()),
            (whole.location().line(), whole.to_string())
        );
        assert!(whole.location().line() > 10_000, "{whole}");
    }
}

#[cfg(test)]
mod walk_tests {
    use super::{calls_any, may_call};

    fn expr(s: &str) -> hcl::Expression {
        hcl::edit::parser::parse_expr(s).unwrap().into()
    }

    #[test]
    fn may_call_finds_calls_and_templates_at_any_depth() {
        for (e, calls) in [
            ("1", false),
            ("var.x", false),
            ("[var.x, { a = local.y }]", false),
            ("var.m[local.k] == 1 ? !var.b : -2", false),
            ("[for k, v in var.m : v if k != \"a\"]", false),
            ("upper(var.x)", true),
            ("[1, { a = [upper(var.x)] }]", true),
            ("var.m[lower(var.k)]", true),
            ("[for v in var.l : v if contains(v, \"a\")]", true),
            ("\"a-${var.x}\"", true),
        ] {
            assert_eq!(may_call(&expr(e)), calls, "{e}");
        }
    }

    #[test]
    fn calls_any_looks_outside_templates_and_for_bodies() {
        for (e, calls) in [
            ("try(var.x, 1)", true),
            ("[1, { a = upper(try(var.x, 1)) }]", true),
            ("upper(var.x)", false),
            ("[for v in try(var.l, []) : v]", true),
            ("[for v in var.l : try(v.a, 1)]", false),
            ("\"${try(var.x, 1)}\"", false),
        ] {
            assert_eq!(calls_any(&expr(e), &["try"]), calls, "{e}");
        }
    }
}
