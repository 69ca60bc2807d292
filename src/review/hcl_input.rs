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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

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
}

/// The command line's inputs of HCL mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// One directory, or `.tf` files (of one directory).
    pub paths: Vec<String>,
    pub var_files: Vec<String>,
    /// `-var NAME=VALUE`, in order.
    pub vars: Vec<(String, String)>,
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
    structures: Vec<(Structure, Option<std::ops::Range<usize>>)>,
    /// Byte offsets of the newlines.
    newlines: Vec<usize>,
}

impl File {
    /// The 1-based line of a byte offset (binary search over line starts).
    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|n| *n < offset) + 1
    }
}

fn parse_file(path: &Path) -> Result<File, HclError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {name}: {e}")))?;
    let body = hcl::edit::parser::parse_body(&text)
        .map_err(|e| err(format!("{name}: not valid HCL: {e}")))?;
    let structures = body
        .into_iter()
        .map(|s| {
            let span = s.span();
            (Structure::from(s), span)
        })
        .collect();
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

/// The `.tf` files of a directory, sorted (Terraform reads them all).
fn tf_files(dir: &Path) -> Result<Vec<PathBuf>, HclError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "tf"))
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
        let text = &self.file.text[span.clone()];
        let first = self.file.line_of(span.start);
        let mut out = vec![];
        for (i, l) in text.lines().enumerate() {
            let t = l.trim_start();
            let rest = t
                .strip_prefix('#')
                .or_else(|| t.strip_prefix("//"))
                .map(str::trim_start);
            let Some(rest) = rest.and_then(|r| r.strip_prefix("cmk:ignore")) else {
                continue;
            };
            let rest = rest.trim();
            let (rule, reason) = match rest.split_once(char::is_whitespace) {
                Some((r, why)) => (r, why.trim()),
                None => (rest, ""),
            };
            out.push((rule.to_string(), reason.to_string(), first + i));
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
        Ok(a[0].as_str().unwrap_or_default().to_lowercase().into())
    }
    fn upper(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(a[0].as_str().unwrap_or_default().to_uppercase().into())
    }
    fn tostring(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(match &a[0] {
            hcl::Value::String(s) => s.clone().into(),
            hcl::Value::Null => hcl::Value::Null,
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
        let key = a[1].as_str().unwrap_or_default();
        match (a[0].as_object().and_then(|m| m.get(key)), a.get(2)) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(format!("lookup: no key {key:?}")),
        }
    }
    fn length(a: FuncArgs) -> Result<hcl::Value, String> {
        Ok(match &a[0] {
            hcl::Value::Array(x) => x.len(),
            hcl::Value::Object(x) => x.len(),
            hcl::Value::String(s) => s.chars().count(),
            _ => return Err("length of what?".into()),
        }
        .into())
    }
    fn join(a: FuncArgs) -> Result<hcl::Value, String> {
        let sep = a[0].as_str().unwrap_or_default();
        let parts: Vec<String> = a[1]
            .as_array()
            .map(|x| {
                x.iter()
                    .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(parts.join(sep).into())
    }
    fn format(a: FuncArgs) -> Result<hcl::Value, String> {
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
                    Some(v) => out.push_str(&v.to_string()),
                    None => return Err("format: too few arguments".into()),
                },
                _ => return Err("format: unsupported verb".into()),
            }
        }
        Ok(out.into())
    }
    fn coalesce(a: FuncArgs) -> Result<hcl::Value, String> {
        a.iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or_else(|| "coalesce: no non-null argument".to_string())
    }
    fn toset(a: FuncArgs) -> Result<hcl::Value, String> {
        let mut out: Vec<hcl::Value> = vec![];
        for v in a[0].as_array().into_iter().flatten() {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        Ok(hcl::Value::Array(out))
    }
    let any = || ParamType::Any;
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
    ctx.declare_func("join", FuncDef::new(join, [ParamType::String, any()]));
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

fn to_json(v: &hcl::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A module's evaluation scope.
struct Scope<'a> {
    ctx: Context<'a>,
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
        e.evaluate(ctx).ok()
    }
}

/// An expression some of whose values are unknown: an object constructor
/// element by element (known elements in the first, `true` for each
/// unknown one in the second, as a plan's `after` and `after_unknown`);
/// anything else wholly known or wholly unknown.
fn eval_partial(e: &Expression, ctx: &Context) -> (Option<Value>, Option<Value>) {
    if let Ok(v) = e.evaluate(ctx) {
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
        .map(|(key, value)| Some((object_key(key, ctx)?, value.evaluate(ctx).ok())))
        .collect()
}

/// An object constructor's key, when it is known (a name, or an
/// expression that evaluates to a string).
fn object_key(key: &ObjectKey, ctx: &Context) -> Option<String> {
    match key {
        ObjectKey::Identifier(i) => Some(i.to_string()),
        ObjectKey::Expression(k) => match k.evaluate(ctx) {
            Ok(hcl::Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// A body's values: (after, after_unknown, expressions).
fn eval_body(
    body: &Body,
    scope: &Scope,
    ctx: &Context,
    top: bool,
) -> (Map<String, Value>, Map<String, Value>, Map<String, Value>) {
    let (mut after, mut unknown, mut exprs) = (Map::new(), Map::new(), Map::new());
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
                        after.insert(k.to_string(), to_json(v));
                    }
                    None => {
                        // An object written out (`aws_key_info = { ... }`)
                        // keeps what it decides, as a plan does.
                        let (known, u) = eval_partial(&a.expr, ctx);
                        if let Some(known) = known {
                            after.insert(k.to_string(), known);
                        }
                        unknown.insert(k.to_string(), u.unwrap_or(Value::Bool(true)));
                    }
                }
                let e = if refs.is_empty() {
                    json!({ "constant_value": value.as_ref().map(to_json).unwrap_or(Value::Null) })
                } else {
                    json!({ "references": refs })
                };
                exprs.insert(k.to_string(), e);
            }
            Structure::Block(b) => {
                let k = b.identifier.as_str();
                if matches!(
                    k,
                    "lifecycle" | "provisioner" | "connection" | "dynamic" | "precondition"
                ) {
                    continue;
                }
                let (a, u, e) = eval_body(&b.body, scope, ctx, false);
                for (m, v) in [(&mut after, a), (&mut unknown, u), (&mut exprs, e)] {
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
    (after, unknown, exprs)
}

/// Everything read of one module (and its children).
struct Out {
    changes: Vec<Value>,
    config: Value,
    locations: HashMap<String, Source>,
    ignores: Vec<InlineIgnore>,
    /// Root only: provider config key -> its configuration.
    providers: Map<String, Value>,
}

/// A module call's inputs: known values and references.
struct Call<'a> {
    prefix: String,
    inputs: hcl::Map<String, hcl::Value>,
    /// provider local name in the module -> provider config key of the root.
    providers: HashMap<String, String>,
    parent: Option<&'a Call<'a>>,
}

/// Passes over a module's locals and resources (each decides what the
/// previous one left unknown for want of another resource's value).
const MAX_PASSES: usize = 8;

/// One instance of a resource, evaluated.
struct Instance {
    /// The `count` index or `for_each` key.
    key: Option<Value>,
    after: Map<String, Value>,
    unknown: Map<String, Value>,
}

/// A resource block, evaluated.
struct Evaluated {
    instances: Vec<Instance>,
    exprs: Map<String, Value>,
    /// `count_expression` / `for_each_expression` of the configuration.
    repetition: Option<(&'static str, Value)>,
    /// Instances keyed by `count` (a list) or `for_each` (a map).
    keyed: Option<bool>,
}

impl Evaluated {
    /// What `type.name` evaluates to for others: the known values only
    /// (an unknown attribute is absent, so reading it stays unknown).
    fn value(&self) -> hcl::Value {
        let one = |i: &Instance| {
            hcl::to_value(Value::Object(i.after.clone())).unwrap_or(hcl::Value::Null)
        };
        match self.keyed {
            None => self.instances.first().map(one).unwrap_or(hcl::Value::Null),
            Some(true) => hcl::Value::Array(self.instances.iter().map(one).collect()),
            Some(false) => hcl::Value::Object(
                self.instances
                    .iter()
                    .map(|i| {
                        let k = match &i.key {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => String::new(),
                        };
                        (k, one(i))
                    })
                    .collect(),
            ),
        }
    }
}

/// The locals a context decides, in as many rounds as they need.
fn eval_locals(attrs: &[&hcl::Attribute], ctx: &Context) -> hcl::Map<String, hcl::Value> {
    let mut locals = hcl::Map::new();
    let mut ctx = ctx.clone();
    for _ in 0..=attrs.len().min(64) {
        let before = locals.len();
        ctx.declare_var("local", hcl::Value::Object(locals.clone()));
        for a in attrs {
            if locals.contains_key(a.key.as_str()) {
                continue;
            }
            if let Ok(v) = a.expr.evaluate(&ctx) {
                locals.insert(a.key.to_string(), v);
            }
        }
        if locals.len() == before {
            break;
        }
    }
    locals
}

/// Evaluates a resource or data block: its instances (`count` and
/// `for_each` when their keys are known, else one instance without a key)
/// with the values the source decides and the computed attributes unknown.
fn eval_resource(
    block: &Block,
    data: bool,
    computed: &[String],
    scope: &Scope,
    ctx: &mut Context,
) -> Evaluated {
    let attr = |k: &str| block.body.attributes().find(|a| a.key.as_str() == k);
    let rtype = block.labels.first().map(label).unwrap_or_default();
    let mut keys: Vec<(Option<Value>, hcl::Value)> = vec![];
    let mut repetition = None;
    let mut keyed = None;
    if let Some(c) = attr("count") {
        repetition = Some(("count_expression", expression_json_in(scope, &c.expr, ctx)));
        match c.expr.evaluate(ctx).ok().and_then(|v| v.as_u64()) {
            Some(n) => {
                keyed = Some(true);
                for i in 0..n.min(100_000) {
                    keys.push((Some(json!(i)), hcl::value!({ index = (i) })));
                }
            }
            None => keys.push((None, hcl::Value::Null)),
        }
    } else if let Some(f) = attr("for_each") {
        repetition = Some((
            "for_each_expression",
            expression_json_in(scope, &f.expr, ctx),
        ));
        match f.expr.evaluate(ctx).ok() {
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
                Some(entries) => {
                    keyed = Some(false);
                    for (k, v) in entries {
                        let meta = match v {
                            Some(v) => hcl::value!({ key = (k.clone()), value = (v) }),
                            None => hcl::value!({ key = (k.clone()) }),
                        };
                        keys.push((Some(json!(k)), meta));
                    }
                }
                None => keys.push((None, hcl::Value::Null)),
            },
        }
    } else {
        keys.push((None, hcl::Value::Null));
    }
    let mut instances = vec![];
    let mut exprs_once = None;
    for (key, meta) in keys {
        match (&repetition, &meta) {
            (Some(("count_expression", _)), hcl::Value::Object(_)) => {
                ctx.declare_var("count", meta)
            }
            (Some(_), hcl::Value::Object(_)) => ctx.declare_var("each", meta),
            _ => {}
        }
        let (after, mut unknown, exprs) = eval_body(&block.body, scope, ctx, true);
        for c in computed {
            if !after.contains_key(c) && !unknown.contains_key(c) {
                unknown.insert(c.clone(), Value::Bool(true));
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
    let mut base = Context::new();
    functions(&mut base);
    // Variables: the root's from -var/-var-file/tfvars, a module's from its call.
    let mut vars = hcl::Map::new();
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
        let value = match (given, default) {
            // A module input given but unknown stays unknown.
            (Some(v), _) if v.as_str() == Some(UNKNOWN_INPUT) => None,
            (Some(v), _) => Some(v),
            (None, Some(d)) => d.expr.evaluate(&base).ok(),
            (None, None) => None,
        };
        if let Some(v) = value {
            vars.insert(name.to_string(), v);
        }
    }
    base.declare_var("var", hcl::Value::Object(vars));
    let dir_s = dir.display().to_string();
    base.declare_var(
        "path",
        hcl::value!({ module = (dir_s.clone()), root = (root_dir.display().to_string()), cwd = "." }),
    );
    base.declare_var("terraform", hcl::value!({ workspace = "default" }));
    // Locals and resources, in passes: each pass evaluates the locals and
    // every resource with what the previous one decided of the others
    // (`aws_kms_key.k.policy` is known when its configuration decides it),
    // until nothing more is decided.
    let local_attrs: Vec<&hcl::Attribute> = of("locals")
        .into_iter()
        .flat_map(|b| b.block.body.attributes())
        .collect();
    let mut scope = Scope {
        ctx: base,
        local_refs: HashMap::new(),
    };
    for a in &local_attrs {
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
    };
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
    // Resource values known so far: type (or `data`) -> name -> value.
    let mut known: BTreeMap<String, hcl::Map<String, hcl::Value>> = BTreeMap::new();
    let mut results: Vec<Evaluated> = vec![];
    // The objects each block refers to (`type`, `name`): a block is
    // evaluated with those only, so the time stays linear in the resources.
    let roots: Vec<Vec<(String, String)>> = resource_blocks
        .iter()
        .map(|(b, _)| block_roots(&b.block.body))
        .collect();
    for _pass in 0..MAX_PASSES {
        let mut full = scope.ctx.clone();
        for (t, m) in &known {
            full.declare_var(t.as_str(), hcl::Value::Object(m.clone()));
        }
        let mut base = scope.ctx.clone();
        base.declare_var(
            "local",
            hcl::Value::Object(eval_locals(&local_attrs, &full)),
        );
        drop(full);
        results = resource_blocks
            .iter()
            .zip(&computed)
            .zip(&roots)
            .map(|(((b, data), c), r)| {
                let mut ctx = base.clone();
                let mut narrow: BTreeMap<&str, hcl::Map<String, hcl::Value>> = BTreeMap::new();
                for (root, name) in r {
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
                eval_resource(b.block, *data, c, &scope, &mut ctx)
            })
            .collect();
        let mut next: BTreeMap<String, hcl::Map<String, hcl::Value>> = BTreeMap::new();
        for ((b, data), r) in resource_blocks.iter().zip(&results) {
            let (rtype, name) = (label(&b.block.labels[0]), label(&b.block.labels[1]));
            let value = r.value();
            if *data {
                let d = next.entry("data".into()).or_default();
                if let hcl::Value::Object(m) = d
                    .entry(rtype.to_string())
                    .or_insert_with(|| hcl::Value::Object(hcl::Map::new()))
                {
                    m.insert(name.to_string(), value);
                }
            } else {
                next.entry(rtype.to_string())
                    .or_default()
                    .insert(name.to_string(), value);
            }
        }
        if next == known {
            break;
        }
        known = next;
    }
    scope.ctx = {
        let mut ctx = scope.ctx.clone();
        for (t, m) in &known {
            ctx.declare_var(t.as_str(), hcl::Value::Object(m.clone()));
        }
        ctx.declare_var("local", hcl::Value::Object(eval_locals(&local_attrs, &ctx)));
        ctx
    };
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
            .and_then(|a| a.expr.evaluate(&scope.ctx).ok())
            .and_then(|v| v.as_str().map(str::to_string));
        let local_key = match &alias {
            Some(a) => format!("{name}.{a}"),
            None => name.to_string(),
        };
        let key = if depth == 0 {
            local_key
        } else {
            format!("{}:{local_key}", prefix.trim_end_matches('.'))
        };
        let (_, _, mut exprs) = eval_body(&b.block.body, &scope, &scope.ctx, true);
        // The region (and a Databricks host or deployment) as a constant
        // when the source decides it.
        for attr in ["region", "aws_region", "host", "deployment"] {
            if let Some(a) = b.block.body.attributes().find(|a| a.key.as_str() == attr) {
                if let Ok(hcl::Value::String(s)) = a.expr.evaluate(&scope.ctx) {
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
    for ((b, data), r) in resource_blocks.iter().zip(results) {
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
        let provider_local = b
            .block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "provider")
            .map(|a| {
                let mut r = vec![];
                references(&a.expr, &mut r);
                r.first().cloned().unwrap_or_default()
            })
            .unwrap_or_else(|| rtype.split('_').next().unwrap_or_default().to_string());
        let mut config = json!({
            "address": local_address,
            "mode": if data { "data" } else { "managed" },
            "type": rtype,
            "name": name,
            "provider_config_key": provider_key(call, &provider_local, depth),
            "expressions": r.exprs,
        });
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
            let mut rc = json!({
                "address": format!("{prefix}{local_address}{index}"),
                "mode": if data { "data" } else { "managed" },
                "type": rtype,
                "name": name,
                "change": {
                    "actions": [if data { "read" } else { "create" }],
                    "before": null,
                    // An official data source's results come from the cloud.
                    "after": if official_data { json!({}) } else { Value::Object(inst.after) },
                    "after_unknown": if official_data { Value::Bool(true) } else { Value::Object(inst.unknown) },
                },
            });
            if let Some(k) = inst.key {
                rc["index"] = k;
            }
            if !prefix.is_empty() {
                rc["module_address"] = Value::String(prefix.trim_end_matches('.').into());
            }
            out.changes.push(rc);
        }
    }
    // Outputs: their references.
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
            outputs.insert(
                name.to_string(),
                json!({ "expression": expression_json(&scope, &v.expr) }),
            );
        }
    }
    // Module calls with a local source.
    let mut calls = Map::new();
    for b in of("module") {
        let Some(name) = b.block.labels.first().map(label) else {
            continue;
        };
        let attr = |k: &str| b.block.body.attributes().find(|a| a.key.as_str() == k);
        let source = attr("source")
            .and_then(|a| a.expr.evaluate(&scope.ctx).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut exprs = Map::new();
        let mut inputs = hcl::Map::new();
        let mut set = vec![];
        for a in b.block.body.attributes() {
            let k = a.key.as_str();
            if matches!(
                k,
                "source" | "version" | "providers" | "count" | "for_each" | "depends_on"
            ) {
                continue;
            }
            exprs.insert(k.to_string(), expression_json(&scope, &a.expr));
            set.push(k.to_string());
            if let Ok(v) = a.expr.evaluate(&scope.ctx) {
                inputs.insert(k.to_string(), v);
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
        let mut call_json = json!({ "source": source, "expressions": exprs });
        if source.starts_with("./") || source.starts_with("../") {
            let child_dir = dir.join(&source);
            let child_files = tf_files(&child_dir)?
                .iter()
                .map(|p| parse_file(p))
                .collect::<Result<Vec<_>, _>>()?;
            let child_call = Call {
                prefix: format!("{prefix}module.{name}."),
                inputs,
                providers,
                parent: Some(call),
            };
            let mut child_call = child_call;
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
            call_json["module"] = child.config;
        }
        calls.insert(name.to_string(), call_json);
    }
    out.config = json!({
        "resources": resources_cfg,
        "outputs": outputs,
        "module_calls": calls,
    });
    Ok(out)
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
        json!({ "constant_value": e.evaluate(ctx).ok().map(|v| to_json(&v)).unwrap_or(Value::Null) })
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
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {name}: {e}")))?;
    let body: Body = hcl::parse(&text).map_err(|e| err(format!("{name}: not valid HCL: {e}")))?;
    let ctx = Context::new();
    for a in body.attributes() {
        let v = a.expr.evaluate(&ctx).map_err(|e| {
            err(format!(
                "{name}: variable {} is not a constant: {e}",
                a.key.as_str()
            ))
        })?;
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
    let files = paths
        .iter()
        .map(|p| parse_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    // Variables, in Terraform's order of precedence.
    let mut vars = hcl::Map::new();
    let tfvars = dir.join("terraform.tfvars");
    if tfvars.is_file() {
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
    let root = Call {
        prefix: String::new(),
        inputs: hcl::Map::new(),
        providers: HashMap::new(),
        parent: None,
    };
    let out = read_module(&files, &dir, &dir, &root, &vars, 0)?;
    let variables: Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "value": to_json(v) })))
        .collect();
    let planned: Vec<Value> = vec![];
    let plan = json!({
        "format_version": "1.2",
        "variables": variables,
        "planned_values": { "root_module": { "resources": planned } },
        "resource_changes": out.changes,
        "configuration": {
            "provider_config": out.providers,
            "root_module": out.config,
        },
    });
    Ok(Loaded {
        plan,
        locations: out.locations,
        ignores: out.ignores,
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
