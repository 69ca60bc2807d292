//! A small IAM policy evaluator for KMS key policies: the subset Databricks'
//! key policies use. Principals (`"*"`, `{"AWS": ...}` with account ids,
//! roots and role ARNs), Action / NotAction with wildcards (case-insensitive),
//! Resource / NotResource, Deny over Allow, and the condition operators of
//! Databricks' statements. Anything outside the subset gives
//! [`Decision::CannotTell`], never a false pass.

use std::collections::BTreeMap;

use serde_json::Value;

use super::catalog::KeyFeature;
use super::kms_policy::{
    CLUSTER_VOLUME_ACTIONS, MANAGED_SERVICES_ACTIONS, MANAGED_SERVICES_REQUIRED, STORAGE_ACTIONS,
    STORAGE_GRANT_ACTIONS, STORAGE_REQUIRED,
};
use super::unknown::{self, Kind};

/// Why a policy document cannot be evaluated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the key policy is not JSON: {0}")]
    NotJson(String),
    #[error("the key policy must be a JSON object with a \"Statement\"")]
    NoStatements,
    #[error("statement {index} of the key policy: {problem}")]
    BadStatement { index: usize, problem: String },
}

/// A request-context value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtxValue {
    /// The key is present with these values.
    Values(Vec<String>),
    /// The key is known to be absent from the request.
    Absent,
    /// The value is not known (conditions on it cannot be decided).
    Unknown,
}

/// A request to KMS, as a key policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller: an account root or a role ARN.
    pub principal: String,
    /// e.g. `kms:Decrypt`.
    pub action: String,
    /// The key ARN, when known.
    pub resource: Option<String>,
    /// Condition keys, lowercase. Keys not listed are unknown.
    pub context: BTreeMap<String, CtxValue>,
    /// The caller is known not to be of the key owner's AWS account
    /// (Databricks' principal): an unknown of the owner's account
    /// ([`unknown::Kind::OwnAccountId`], [`unknown::Kind::OwnRoleArn`])
    /// never names it.
    pub outside_owner: bool,
}

impl Request {
    pub fn new(principal: &str, action: &str) -> Request {
        Request {
            principal: principal.to_string(),
            action: action.to_string(),
            resource: None,
            context: BTreeMap::new(),
            outside_owner: false,
        }
    }

    pub fn with(mut self, key: &str, value: CtxValue) -> Request {
        self.context.insert(key.to_ascii_lowercase(), value);
        self
    }

    pub fn with_value(self, key: &str, value: &str) -> Request {
        self.with(key, CtxValue::Values(vec![value.to_string()]))
    }

    fn ctx(&self, key: &str) -> &CtxValue {
        self.context
            .get(&key.to_ascii_lowercase())
            .unwrap_or(&CtxValue::Unknown)
    }
}

/// What a policy decides for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matches and no Deny does. `via_account_root`: only
    /// a statement naming the caller's account root matched, so the caller's
    /// own IAM policy must allow the action too.
    Allow { via_account_root: bool },
    /// A Deny statement matches.
    ExplicitDeny { sid: Option<String> },
    /// No statement allows it.
    ImplicitDeny,
    /// The answer depends on something the evaluator does not know or model.
    CannotTell(String),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Three-valued match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum M {
    Yes,
    /// Matches through the account root (delegation to IAM).
    ViaRoot,
    No,
    Maybe(String),
}

impl M {
    fn and(self, other: M) -> M {
        match (self, other) {
            (M::No, _) | (_, M::No) => M::No,
            (M::Maybe(r), _) | (_, M::Maybe(r)) => M::Maybe(r),
            (M::ViaRoot, _) | (_, M::ViaRoot) => M::ViaRoot,
            _ => M::Yes,
        }
    }

    fn from_bool(b: bool) -> M {
        if b {
            M::Yes
        } else {
            M::No
        }
    }
}

/// Wildcard match with `*` and `?`; `ci`: ignore ASCII case.
pub fn wildcard_match(pattern: &str, text: &str, ci: bool) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        // The usual case, without allocating: bytes are characters.
        let eq = |a: u8, b: u8| {
            if ci {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        return glob(pattern.as_bytes(), text.as_bytes(), b'*', b'?', eq);
    }
    let (p, t): (Vec<char>, Vec<char>) = if ci {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            text.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    glob(&p, &t, '*', '?', |a, b| a == b)
}

/// `*` (any run) and `?` (one element) matching, linear with backtracking
/// to the last star.
fn glob<T: Copy + PartialEq>(
    p: &[T],
    t: &[T],
    star_c: T,
    one_c: T,
    eq: impl Fn(T, T) -> bool,
) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != star_c && (p[pi] == one_c || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star_c {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star_c)
}

#[derive(Debug, Clone)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    /// (negated, entries); `None` entries = Principal missing.
    principal: (bool, Value),
    action: (bool, Vec<String>),
    resource: Option<(bool, Vec<String>)>,
    condition: Option<serde_json::Map<String, Value>>,
}

/// A parsed key policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::NotJson(e.to_string()))?;
        Policy::from_owned(v)
    }

    pub fn from_value(v: &Value) -> Result<Policy, PolicyError> {
        Policy::from_owned(v.clone())
    }

    /// [`Policy::from_value`], taking the document's parts rather than
    /// copying them.
    fn from_owned(v: Value) -> Result<Policy, PolicyError> {
        let stmts: Vec<Value> = match v {
            Value::Object(mut o) => match o.remove("Statement") {
                Some(Value::Array(a)) => a,
                Some(s @ Value::Object(_)) => vec![s],
                _ => return Err(PolicyError::NoStatements),
            },
            _ => return Err(PolicyError::NoStatements),
        };
        let mut statements = vec![];
        for (index, s) in stmts.into_iter().enumerate() {
            let bad = |problem: &str| PolicyError::BadStatement {
                index,
                problem: problem.to_string(),
            };
            let Value::Object(mut o) = s else {
                return Err(bad("not a JSON object"));
            };
            let effect = match o.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
            };
            let principal = match (o.remove("Principal"), o.remove("NotPrincipal")) {
                (Some(p), None) => (false, p),
                (None, Some(p)) => (true, p),
                _ => {
                    return Err(bad(
                        "a key policy statement needs exactly one of Principal or NotPrincipal",
                    ))
                }
            };
            let action = match (o.get("Action"), o.get("NotAction")) {
                (Some(a), None) => (
                    false,
                    strings(a)
                        .ok_or_else(|| bad("Action must be a string or a list of strings"))?,
                ),
                (None, Some(a)) => (
                    true,
                    strings(a)
                        .ok_or_else(|| bad("NotAction must be a string or a list of strings"))?,
                ),
                _ => return Err(bad("needs exactly one of Action or NotAction")),
            };
            let resource = match (o.get("Resource"), o.get("NotResource")) {
                (Some(r), None) => Some((
                    false,
                    strings(r)
                        .ok_or_else(|| bad("Resource must be a string or a list of strings"))?,
                )),
                (None, Some(r)) => Some((
                    true,
                    strings(r)
                        .ok_or_else(|| bad("NotResource must be a string or a list of strings"))?,
                )),
                (None, None) => None,
                _ => return Err(bad("has both Resource and NotResource")),
            };
            let condition = match o.remove("Condition") {
                None => None,
                Some(Value::Object(c)) => Some(c),
                Some(_) => return Err(bad("Condition must be an object")),
            };
            statements.push(Statement {
                sid: o.get("Sid").and_then(Value::as_str).map(str::to_string),
                effect,
                principal,
                action,
                resource,
                condition,
            });
        }
        Ok(Policy { statements })
    }

    /// Evaluates a request as IAM does for a key policy.
    pub fn evaluate(&self, req: &Request) -> Decision {
        let mut allowed_exact = false;
        let mut allowed_via_root = false;
        let mut maybe_allow: Option<String> = None;
        let mut maybe_deny: Option<String> = None;
        for s in &self.statements {
            let m = match_principal(&s.principal, req)
                .and(match_action(&s.action, &req.action))
                .and(match_resource(&s.resource, req.resource.as_deref()))
                .and(match_conditions(s.condition.as_ref(), req));
            match (&s.effect, m) {
                (_, M::No) => {}
                (Effect::Deny, M::Yes | M::ViaRoot) => {
                    return Decision::ExplicitDeny { sid: s.sid.clone() }
                }
                (Effect::Deny, M::Maybe(r)) => {
                    maybe_deny.get_or_insert(format!(
                        "a Deny statement{} may apply: {r}",
                        sid_text(&s.sid)
                    ));
                }
                (Effect::Allow, M::Yes) => allowed_exact = true,
                (Effect::Allow, M::ViaRoot) => allowed_via_root = true,
                (Effect::Allow, M::Maybe(r)) => {
                    maybe_allow.get_or_insert(format!(
                        "an Allow statement{} may apply: {r}",
                        sid_text(&s.sid)
                    ));
                }
            }
        }
        if allowed_exact || allowed_via_root {
            if let Some(r) = maybe_deny {
                return Decision::CannotTell(r);
            }
            if !allowed_exact {
                if let Some(r) = maybe_allow {
                    return Decision::CannotTell(r);
                }
            }
            return Decision::Allow {
                via_account_root: !allowed_exact,
            };
        }
        match maybe_allow {
            Some(r) => Decision::CannotTell(r),
            None => Decision::ImplicitDeny,
        }
    }
}

fn sid_text(sid: &Option<String>) -> String {
    sid.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
}

fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    // arn:PARTITION:iam::ACCOUNT:RESOURCE
    let mut p = arn.splitn(6, ':');
    let (arn_, partition, service) = (p.next()?, p.next()?, p.next()?);
    let (_region, account, resource) = (p.next()?, p.next()?, p.next()?);
    (arn_ == "arn" && service == "iam").then_some((partition, account, resource))
}

fn match_one_principal(entry: &str, caller: &str, outside_owner: bool) -> M {
    if entry == "*" || entry == caller {
        return M::Yes;
    }
    if unknown::contains(entry) || unknown::contains(caller) {
        return match_unknown_principal(entry, caller, outside_owner);
    }
    let (c_part, c_acct, c_res) = match arn_parts(caller) {
        Some(x) => x,
        None => return M::No,
    };
    let (e_part, e_acct, e_res) = if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit())
    {
        (c_part, entry, "root")
    } else if let Some(x) = arn_parts(entry) {
        x
    } else {
        return M::No;
    };
    if e_part != c_part || e_acct != c_acct {
        return M::No;
    }
    if e_res == c_res {
        M::Yes
    } else if e_res == "root" {
        M::ViaRoot
    } else {
        M::No
    }
}

/// A principal entry or a caller with values not known until apply
/// ([`unknown`]): `No` when no value of them makes the entry name the
/// caller (an unknown of the owner's account never names Databricks'
/// principal), `ViaRoot` for a role of the owner's account under the
/// owner's account root, else `Maybe` naming the unknown's origin.
fn match_unknown_principal(entry: &str, caller: &str, outside_owner: bool) -> M {
    let maybe = || {
        let names = [entry, caller]
            .iter()
            .map(|s| unknown::origins(s))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        M::Maybe(format!(
            "whether the principal {} names {} is not known until apply ({names})",
            unknown::readable(entry),
            unknown::readable(caller)
        ))
    };
    // Databricks' own AWS accounts: never the configuration's.
    let databricks_account = |acct: &str| {
        super::deployment::DEPLOYMENTS
            .iter()
            .any(|d| d.databricks_aws_account == acct)
    };
    let own_account =
        |acct: &str| unknown::exact(acct).is_some_and(|u| u.kind == Kind::OwnAccountId);
    // The entry as an account root: `ACCOUNT` or `arn:P:iam::ACCOUNT:root`.
    let entry_root_account = match arn_parts(entry) {
        Some((_, acct, "root")) => Some(acct),
        Some(_) => None,
        None => (unknown::exact(entry).is_some_and(|u| u.kind == Kind::OwnAccountId)
            || (entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit())))
        .then_some(entry),
    };
    if let Some(u) = unknown::exact(caller) {
        // A caller not known until apply: a role of the owner's account.
        if u.kind != Kind::OwnRoleArn {
            return maybe();
        }
        if unknown::exact(entry).is_some_and(|e| e.kind == Kind::OwnAccountId)
            || entry_root_account.is_some_and(own_account)
        {
            return M::ViaRoot;
        }
        let entry_account = entry_root_account.or_else(|| arn_parts(entry).map(|(_, a, _)| a));
        if entry_account.is_some_and(databricks_account) {
            return M::No;
        }
        return maybe();
    }
    if unknown::contains(caller) {
        return maybe();
    }
    // The caller is known; the entry is not.
    if outside_owner
        && (unknown::exact(entry)
            .is_some_and(|e| matches!(e.kind, Kind::OwnRoleArn | Kind::OwnAccountId))
            || entry_root_account.is_some_and(own_account)
            || arn_parts(entry).is_some_and(|(_, acct, _)| own_account(acct)))
    {
        return M::No;
    }
    let Some((c_part, c_acct, _)) = arn_parts(caller) else {
        return if unknown::could_equal(entry, caller) {
            maybe()
        } else {
            M::No
        };
    };
    let as_root = format!("arn:{c_part}:iam::{c_acct}:root");
    if unknown::could_equal(entry, caller)
        || unknown::could_equal(entry, &as_root)
        || unknown::could_equal(entry, c_acct)
    {
        maybe()
    } else {
        M::No
    }
}

fn match_principal(p: &(bool, Value), req: &Request) -> M {
    let caller = req.principal.as_str();
    let (negated, v) = p;
    let m = match v {
        Value::String(s) if s == "*" => M::Yes,
        Value::Object(o) => {
            let mut best = M::No;
            for (kind, entries) in o {
                if kind != "AWS" {
                    continue; // Service, Federated, CanonicalUser: not an IAM caller
                }
                let Some(list) = strings(entries) else {
                    return M::Maybe("a Principal's AWS entry is not a string or list".into());
                };
                for e in list {
                    best = match (best, match_one_principal(&e, caller, req.outside_owner)) {
                        (M::Yes, _) | (_, M::Yes) => M::Yes,
                        (M::ViaRoot, _) | (_, M::ViaRoot) => M::ViaRoot,
                        (M::Maybe(r), _) | (_, M::Maybe(r)) => M::Maybe(r),
                        _ => M::No,
                    };
                }
            }
            best
        }
        _ => M::Maybe("the Principal has an unsupported form".into()),
    };
    if !*negated {
        return m;
    }
    match m {
        M::No => M::Yes,
        M::Yes => M::No,
        M::Maybe(r) => M::Maybe(r),
        _ => M::Maybe("NotPrincipal naming an account root is not evaluated".into()),
    }
}

/// Whether a list of patterns (some with values not known until apply)
/// names a value: `Some(true)` when a known pattern does, `None` when only
/// an unknown one could.
fn any_pattern(list: &[String], value: &str, ci: bool) -> Option<bool> {
    if list
        .iter()
        .any(|p| !unknown::contains(p) && wildcard_match(p, value, ci))
    {
        return Some(true);
    }
    if list.iter().any(|p| unknown::contains(p)) {
        return None;
    }
    Some(false)
}

fn unknown_patterns(list: &[String]) -> String {
    list.iter()
        .filter(|p| unknown::contains(p))
        .map(|p| unknown::origins(p))
        .collect::<Vec<_>>()
        .join(", ")
}

fn match_action((negated, list): &(bool, Vec<String>), action: &str) -> M {
    match any_pattern(list, action, true) {
        Some(any) => M::from_bool(any != *negated),
        None => M::Maybe(format!(
            "an action is not known until apply ({})",
            unknown_patterns(list)
        )),
    }
}

fn match_resource(r: &Option<(bool, Vec<String>)>, resource: Option<&str>) -> M {
    let Some((negated, list)) = r else {
        return M::Maybe("the statement has no Resource".into());
    };
    if list.iter().any(|p| p == "*") {
        return M::from_bool(!*negated);
    }
    match resource {
        Some(res) => match any_pattern(list, res, false) {
            Some(any) => M::from_bool(any != *negated),
            None => M::Maybe(format!(
                "a resource is not known until apply ({})",
                unknown_patterns(list)
            )),
        },
        None => M::Maybe(
            "the statement names specific resources and the key ARN is not known yet".into(),
        ),
    }
}

fn policy_values(v: &Value) -> Option<Vec<String>> {
    let one = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Bool,
}

fn match_conditions(c: Option<&serde_json::Map<String, Value>>, req: &Request) -> M {
    let Some(c) = c else { return M::Yes };
    let mut acc = M::Yes;
    for (op, block) in c {
        let Some(block) = block.as_object() else {
            return M::Maybe(format!("condition {op} is not an object"));
        };
        for (key, want) in block {
            acc = acc.and(match_condition(op, key, want, req));
            if acc == M::No {
                return M::No;
            }
        }
    }
    acc
}

fn match_condition(op: &str, key: &str, want: &Value, req: &Request) -> M {
    let (set_op, rest) = if let Some(r) = op.strip_prefix("ForAnyValue:") {
        (Some(true), r)
    } else if let Some(r) = op.strip_prefix("ForAllValues:") {
        (Some(false), r)
    } else {
        (None, op)
    };
    let (base_name, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let Some(wanted) = policy_values(want) else {
        return M::Maybe(format!(
            "condition {op} on {key} has values that are not strings"
        ));
    };
    if wanted.iter().any(|w| w.contains("${")) {
        return M::Maybe(format!("condition {op} on {key} uses a policy variable"));
    }
    let ctx = req.ctx(key);
    if base_name == "Null" {
        let want_absent = match wanted.as_slice() {
            [w] if w.eq_ignore_ascii_case("true") => true,
            [w] if w.eq_ignore_ascii_case("false") => false,
            _ => return M::Maybe(format!("condition Null on {key} has an unexpected value")),
        };
        return match ctx {
            CtxValue::Unknown => M::Maybe(format!("{key} is not known for this request")),
            CtxValue::Absent => M::from_bool(want_absent),
            CtxValue::Values(_) => M::from_bool(!want_absent),
        };
    }
    let (base, negated) = match base_name {
        "StringEquals" | "ArnEquals" => (Base::StringEquals, false),
        "StringNotEquals" | "ArnNotEquals" => (Base::StringEquals, true),
        "StringEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, true),
        "StringLike" | "ArnLike" => (Base::StringLike, false),
        "StringNotLike" | "ArnNotLike" => (Base::StringLike, true),
        "Bool" => (Base::Bool, false),
        _ => {
            return M::Maybe(format!(
                "condition operator {op} is not evaluated by this checker"
            ))
        }
    };
    let values = match ctx {
        CtxValue::Unknown => return M::Maybe(format!("{key} is not known for this request")),
        CtxValue::Absent => {
            let r = if_exists || set_op == Some(false) || (negated && set_op.is_none());
            return M::from_bool(r);
        }
        CtxValue::Values(v) => v,
    };
    // Whether a context value matches one of the policy's values: `None`
    // when only a value not known until apply ([`unknown`]) could.
    let matches_one = |v: &String| -> Option<bool> {
        let mut could = false;
        for w in &wanted {
            if w == v {
                return Some(true);
            }
            let (wu, vu) = (unknown::contains(w), unknown::contains(v));
            if !wu && !vu {
                let m = match base {
                    Base::StringEquals => w == v,
                    Base::StringEqualsIgnoreCase | Base::Bool => w.eq_ignore_ascii_case(v),
                    Base::StringLike => wildcard_match(w, v, false),
                };
                if m {
                    return Some(true);
                }
                continue;
            }
            could |= match (base, wu, vu) {
                (Base::StringEquals, true, false) => unknown::could_equal(w, v),
                (Base::StringEquals, false, true) => unknown::could_equal(v, w),
                (Base::StringLike, false, true) if w == "*" => return Some(true),
                _ => true,
            };
        }
        if could {
            None
        } else {
            Some(false)
        }
    };
    // Each context value "satisfies" the operator when it matches (or, for a
    // negated operator, matches none of the policy's values).
    let sat = |v: &String| matches_one(v).map(|m| m != negated);
    let all = || {
        let s: Vec<Option<bool>> = values.iter().map(sat).collect();
        if s.contains(&Some(false)) {
            Some(false)
        } else if s.contains(&None) {
            None
        } else {
            Some(true)
        }
    };
    let any = || {
        let s: Vec<Option<bool>> = values.iter().map(sat).collect();
        if s.contains(&Some(true)) {
            Some(true)
        } else if s.contains(&None) {
            None
        } else {
            Some(false)
        }
    };
    let r = match set_op {
        Some(false) => all(),
        Some(true) => any(),
        None if negated => all(),
        None => any(),
    };
    match r {
        Some(r) => M::from_bool(r),
        None => {
            let names: Vec<String> = wanted
                .iter()
                .chain(values.iter())
                .filter(|x| unknown::contains(x))
                .map(|x| unknown::origins(x))
                .collect();
            M::Maybe(format!(
                "condition {op} on {key} compares with a value not known until apply ({})",
                names.join(", ")
            ))
        }
    }
}

/// The concrete KMS actions a pattern such as `kms:GenerateDataKey*` stands
/// for, among those a symmetric key serves Databricks with.
pub fn concrete_actions(pattern: &str) -> Vec<&'static str> {
    const SYMMETRIC: [&str; 10] = [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:ListGrants",
        "kms:RevokeGrant",
    ];
    SYMMETRIC
        .into_iter()
        .filter(|a| wildcard_match(pattern, a, true))
        .collect()
}

/// [`concrete_actions`] of a pattern of Databricks' lists (the
/// `*_ACTIONS` and `*_REQUIRED` constants), expanded once per process.
fn listed_actions(pattern: &'static str) -> &'static [&'static str] {
    static EXPANDED: std::sync::OnceLock<
        std::collections::HashMap<&'static str, Vec<&'static str>>,
    > = std::sync::OnceLock::new();
    let table = EXPANDED.get_or_init(|| {
        [
            &MANAGED_SERVICES_ACTIONS[..],
            &MANAGED_SERVICES_REQUIRED[..],
            &STORAGE_ACTIONS[..],
            &STORAGE_GRANT_ACTIONS[..],
            &STORAGE_REQUIRED[..],
        ]
        .into_iter()
        .flatten()
        .map(|p| (*p, concrete_actions(p)))
        .collect()
    });
    table.get(pattern).map_or(&[], Vec::as_slice)
}

fn grant_action(a: &str) -> bool {
    matches!(a, "kms:CreateGrant" | "kms:ListGrants" | "kms:RevokeGrant")
}

/// Which of the requests of Databricks' principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyPart {
    /// Every statement of Databricks' guide.
    All,
    /// What the services cannot work without (CMK015).
    Required,
    /// What the guide adds beyond that (CMK021).
    GuideAdds,
}

/// The requests Databricks' principal makes for the use cases.
/// `databricks_account_id`: the tag value on Databricks' principal, if known.
pub fn databricks_requests(
    use_cases: &std::collections::BTreeSet<KeyFeature>,
    principal: &str,
    databricks_account_id: Option<&str>,
    key_arn: Option<&str>,
) -> Vec<(KeyFeature, Request)> {
    databricks_requests_for(
        use_cases,
        principal,
        databricks_account_id,
        key_arn,
        PolicyPart::All,
    )
}

/// The same, for a part of the policy.
pub fn databricks_requests_for(
    use_cases: &std::collections::BTreeSet<KeyFeature>,
    principal: &str,
    databricks_account_id: Option<&str>,
    key_arn: Option<&str>,
    part: PolicyPart,
) -> Vec<(KeyFeature, Request)> {
    let required: Vec<&str> = MANAGED_SERVICES_REQUIRED
        .iter()
        .chain(STORAGE_REQUIRED.iter())
        .flat_map(|p| listed_actions(p).iter().copied())
        .collect();
    let wanted = |f: KeyFeature, a: &str| match part {
        PolicyPart::All => true,
        PolicyPart::Required => match f {
            KeyFeature::ManagedServices => MANAGED_SERVICES_REQUIRED.contains(&a),
            KeyFeature::Storage => STORAGE_REQUIRED.contains(&a),
        },
        PolicyPart::GuideAdds => f == KeyFeature::Storage && !required.contains(&a),
    };
    let mut out: Vec<(KeyFeature, Request)> = vec![];
    let mut push = |f: KeyFeature, patterns: &[&'static str]| {
        for p in patterns {
            for &a in listed_actions(p) {
                if out.iter().any(|(_, r)| r.action == a) || !wanted(f, a) {
                    continue;
                }
                let mut r = Request::new(principal, a);
                r.outside_owner = true;
                let mut r = r
                    .with(
                        "aws:PrincipalTag/DatabricksAccountId",
                        match databricks_account_id {
                            Some(id) => CtxValue::Values(vec![id.to_string()]),
                            None => CtxValue::Unknown,
                        },
                    )
                    .with_value("aws:PrincipalArn", principal)
                    .with(
                        "kms:GrantIsForAWSResource",
                        if grant_action(a) {
                            CtxValue::Values(vec!["true".into()])
                        } else {
                            CtxValue::Absent
                        },
                    );
                if let Some((_, acct, _)) = arn_parts(principal) {
                    r = r.with_value("aws:PrincipalAccount", acct);
                }
                r.resource = key_arn.map(str::to_string);
                out.push((f, r));
            }
        }
    };
    if use_cases.contains(&KeyFeature::ManagedServices) {
        push(KeyFeature::ManagedServices, &MANAGED_SERVICES_ACTIONS);
    }
    if use_cases.contains(&KeyFeature::Storage) {
        push(KeyFeature::Storage, &STORAGE_ACTIONS);
        push(KeyFeature::Storage, &STORAGE_GRANT_ACTIONS);
    }
    out
}

/// The requests the workspace's cross-account role makes through EC2 when
/// the key encrypts cluster EBS volumes. `region`: the workspace's region.
pub fn cluster_volume_requests(
    role_arn: &str,
    region: Option<&str>,
    key_arn: Option<&str>,
) -> Vec<Request> {
    let mut out = vec![];
    for p in CLUSTER_VOLUME_ACTIONS {
        for a in concrete_actions(p) {
            let mut r = Request::new(role_arn, a)
                .with(
                    "kms:ViaService",
                    match region {
                        Some(reg) => CtxValue::Values(vec![format!("ec2.{reg}.amazonaws.com")]),
                        None => CtxValue::Unknown,
                    },
                )
                .with_value("aws:PrincipalArn", role_arn)
                .with(
                    "kms:GrantIsForAWSResource",
                    if grant_action(a) {
                        CtxValue::Values(vec!["true".into()])
                    } else {
                        CtxValue::Absent
                    },
                );
            if let Some((_, acct, _)) = arn_parts(role_arn) {
                r = r.with_value("aws:PrincipalAccount", acct);
            }
            r.resource = key_arn.map(str::to_string);
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ids::Partition;
    use crate::rules::kms_policy::{generate, PolicyInput};
    use serde_json::json;

    const DBX: &str = "arn:aws:iam::414351767826:root";
    const ROLE: &str = "arn:aws:iam::123456789012:role/dbx";
    const ACCT: &str = "0d26daa6-5e44-4c97-a497-ef015f91254a";

    fn policy(statements: Value) -> Policy {
        Policy::from_value(&json!({ "Version": "2012-10-17", "Statement": statements })).unwrap()
    }

    fn dbx(action: &str) -> Request {
        Request::new(DBX, action)
            .with_value("aws:PrincipalTag/DatabricksAccountId", ACCT)
            .with("kms:GrantIsForAWSResource", CtxValue::Absent)
    }

    fn allow(principal: Value, action: Value) -> Value {
        json!({ "Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*" })
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match("kms:*", "kms:Decrypt", true));
        assert!(wildcard_match(
            "KMS:generatedatakey*",
            "kms:GenerateDataKeyWithoutPlaintext",
            true
        ));
        assert!(wildcard_match("kms:ReEncrypt?o", "kms:ReEncryptTo", true));
        assert!(!wildcard_match("kms:Encrypt", "kms:Decrypt", true));
        assert!(!wildcard_match(
            "ec2.*.amazonaws.com",
            "EC2.us-east-1.amazonaws.com",
            false
        ));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn evaluator_cases() {
        let cases: Vec<(&str, Value, Request, Decision)> = vec![
            (
                "star principal, kms:*",
                json!([allow(json!("*"), json!("kms:*"))]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "AWS star",
                json!([allow(json!({"AWS": "*"}), json!("kms:Decrypt"))]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "account id means the root",
                json!([allow(
                    json!({"AWS": "414351767826"}),
                    json!(["kms:Encrypt", "kms:Decrypt"])
                )]),
                dbx("kms:Encrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "list principal",
                json!([allow(
                    json!({"AWS": ["arn:aws:iam::111111111111:root", DBX]}),
                    json!("kms:Decrypt")
                )]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "other principal",
                json!([allow(
                    json!({"AWS": "arn:aws:iam::111111111111:root"}),
                    json!("kms:*")
                )]),
                dbx("kms:Decrypt"),
                Decision::ImplicitDeny,
            ),
            (
                "case-insensitive action",
                json!([allow(json!({"AWS": DBX}), json!("KMS:DECRYPT"))]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "action wildcard",
                json!([allow(json!({"AWS": DBX}), json!("kms:GenerateDataKey*"))]),
                dbx("kms:GenerateDataKeyWithoutPlaintext"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "action not granted",
                json!([allow(json!({"AWS": DBX}), json!("kms:Encrypt"))]),
                dbx("kms:Decrypt"),
                Decision::ImplicitDeny,
            ),
            (
                "NotAction excludes",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "NotAction": ["kms:Decrypt"], "Resource": "*"}]),
                dbx("kms:Decrypt"),
                Decision::ImplicitDeny,
            ),
            (
                "NotAction includes the rest",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}]),
                dbx("kms:Encrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "Deny overrides Allow",
                json!([allow(json!("*"), json!("kms:*")), {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]),
                dbx("kms:Decrypt"),
                Decision::ExplicitDeny {
                    sid: Some("NoDecrypt".into()),
                },
            ),
            (
                "Deny with NotAction",
                json!([allow(json!("*"), json!("kms:*")), {"Effect": "Deny", "Principal": "*", "NotAction": "kms:Encrypt", "Resource": "*"}]),
                dbx("kms:Decrypt"),
                Decision::ExplicitDeny { sid: None },
            ),
            (
                "tag condition matches",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": [ACCT]}}}]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "tag condition other account",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": "ffffffff-5e44-4c97-a497-ef015f91254a"}}}]),
                dbx("kms:Decrypt"),
                Decision::ImplicitDeny,
            ),
            (
                "condition key case-insensitive",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"AWS:principaltag/databricksaccountid": ACCT}}}]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "Bool grant condition, grant absent",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]),
                dbx("kms:CreateGrant"),
                Decision::ImplicitDeny,
            ),
            (
                "Bool grant condition, JSON bool",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]),
                dbx("kms:CreateGrant").with_value("kms:GrantIsForAWSResource", "true"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "ViaService for EBS",
                json!([{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}}]),
                Request::new(ROLE, "kms:Decrypt")
                    .with_value("kms:ViaService", "ec2.us-east-1.amazonaws.com"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "ViaService s3 is not ec2",
                json!([{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}}]),
                Request::new(ROLE, "kms:Decrypt")
                    .with_value("kms:ViaService", "s3.us-east-1.amazonaws.com"),
                Decision::ImplicitDeny,
            ),
            (
                "role through the account root",
                json!([allow(
                    json!({"AWS": "arn:aws:iam::123456789012:root"}),
                    json!("kms:*")
                )]),
                Request::new(ROLE, "kms:Decrypt"),
                Decision::Allow {
                    via_account_root: true,
                },
            ),
            (
                "unknown operator: cannot tell",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]),
                dbx("kms:Decrypt"),
                Decision::CannotTell(String::new()),
            ),
            (
                "unknown Deny condition: cannot tell",
                json!([allow(json!("*"), json!("kms:*")), {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]),
                dbx("kms:Decrypt"),
                Decision::CannotTell(String::new()),
            ),
            (
                "unknown context key: cannot tell",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}]),
                dbx("kms:Decrypt"),
                Decision::CannotTell(String::new()),
            ),
            (
                "StringNotEquals on absent key matches",
                json!([{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringNotEquals": {"kms:GrantIsForAWSResource": "true"}}}, allow(json!("*"), json!("kms:*"))]),
                dbx("kms:Decrypt"),
                Decision::ExplicitDeny { sid: None },
            ),
            (
                "IfExists on absent key matches",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}}}]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
            (
                "policy variable: cannot tell",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": "${aws:PrincipalAccount}"}}}]),
                dbx("kms:Decrypt"),
                Decision::CannotTell(String::new()),
            ),
            (
                "specific resource, key unknown",
                json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:123456789012:key/*"}]),
                dbx("kms:Decrypt"),
                Decision::CannotTell(String::new()),
            ),
            (
                "NotPrincipal Deny excluding Databricks",
                json!([allow(json!("*"), json!("kms:*")), {"Effect": "Deny", "NotPrincipal": {"AWS": DBX}, "Action": "kms:Decrypt", "Resource": "*"}]),
                dbx("kms:Decrypt"),
                Decision::Allow {
                    via_account_root: false,
                },
            ),
        ];
        for (name, stmts, req, want) in cases {
            let got = policy(stmts).evaluate(&req);
            match (&want, &got) {
                (Decision::CannotTell(_), Decision::CannotTell(why)) => {
                    assert!(!why.is_empty(), "{name}")
                }
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn malformed_policies_are_errors_not_panics() {
        assert!(matches!(
            Policy::parse("nope"),
            Err(PolicyError::NotJson(_))
        ));
        assert_eq!(Policy::parse("{}").unwrap_err(), PolicyError::NoStatements);
        let e =
            Policy::parse(r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*"}]}"#)
                .unwrap_err();
        assert!(e.to_string().contains("Effect"), "{e}");
        let e =
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"kms:*"}]}"#).unwrap_err();
        assert!(e.to_string().contains("Principal"), "{e}");
        // A single statement object is accepted.
        assert!(Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#
        )
        .is_ok());
    }

    #[test]
    fn generated_policies_allow_every_required_request() {
        for partition in Partition::ALL {
            for (uc, tag) in [
                (vec![KeyFeature::ManagedServices], false),
                (vec![KeyFeature::Storage], true),
                (vec![KeyFeature::ManagedServices, KeyFeature::Storage], true),
            ] {
                let role = format!("arn:{partition}:iam::123456789012:role/dbx");
                let doc = generate(&PolicyInput {
                    use_cases: uc.iter().copied().collect(),
                    aws_account_id: "123456789012".into(),
                    databricks_account_id: tag.then(|| ACCT.to_string()),
                    cross_account_role_arn: Some(role.clone()),
                    reuse_key_for_cluster_volumes: true,
                    partition,
                    databricks_principal: None,
                    deployment: None,
                });
                // A partition with one deployment decides it; GovCloud's two
                // shards need one named, and aws-cn has none.
                let Ok(doc) = doc else {
                    assert_ne!(partition, Partition::Aws);
                    continue;
                };
                let p = Policy::from_value(&doc).unwrap();
                let principal = crate::rules::Deployment::Commercial.principal();
                let set = uc.iter().copied().collect();
                let reqs = databricks_requests(&set, &principal, Some(ACCT), None);
                assert!(!reqs.is_empty());
                for (_, r) in &reqs {
                    assert_eq!(
                        p.evaluate(r),
                        Decision::Allow {
                            via_account_root: false
                        },
                        "{partition} {uc:?} {}",
                        r.action
                    );
                }
                if uc.contains(&KeyFeature::Storage) {
                    for r in cluster_volume_requests(&role, Some("us-east-1"), None) {
                        assert_eq!(
                            p.evaluate(&r),
                            Decision::Allow {
                                via_account_root: false
                            },
                            "{partition} EBS {}",
                            r.action
                        );
                    }
                }
                // The Databricks principal of another account is not let in.
                let other = Request::new("arn:aws:iam::999999999999:root", "kms:Decrypt");
                assert_eq!(p.evaluate(&other), Decision::ImplicitDeny);
            }
        }
    }

    #[test]
    fn required_actions_expand_from_the_policy_constants() {
        assert_eq!(
            concrete_actions("kms:GenerateDataKey*"),
            ["kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]
        );
        assert_eq!(
            concrete_actions("kms:ReEncrypt*"),
            ["kms:ReEncryptFrom", "kms:ReEncryptTo"]
        );
        let set = [KeyFeature::Storage].into_iter().collect();
        let actions: Vec<String> = databricks_requests(&set, DBX, None, None)
            .into_iter()
            .map(|(_, r)| r.action)
            .collect();
        assert_eq!(actions.len(), 10, "{actions:?}");
    }

    #[test]
    fn statements_with_unknowns_decide_what_every_value_gives() {
        use crate::rules::unknown::{marker, Kind};
        let role = marker("aws_iam_role.cross_account_role[0].arn", Kind::OwnRoleArn);
        let acct = marker(
            "data.aws_caller_identity.current.account_id",
            Kind::OwnAccountId,
        );
        let var = marker("var.extra_principal", Kind::Any);
        let owner = json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{acct}:root")},
                           "Action": "kms:*", "Resource": "*"});
        let ebs = json!({"Effect": "Allow", "Principal": {"AWS": role.clone()},
                         "Action": ["kms:Decrypt", "kms:CreateGrant"], "Resource": "*"});
        let p = policy(json!([
            owner,
            ebs,
            allow(json!({"AWS": DBX}), json!(["kms:Encrypt", "kms:Decrypt"]))
        ]));
        // The same reference is the same value: the EBS statement names the role.
        let r = Request::new(&role, "kms:Decrypt");
        assert_eq!(
            p.evaluate(&r),
            Decision::Allow {
                via_account_root: false
            }
        );
        // A role of the owner's account reaches the rest through the owner's root.
        assert_eq!(
            p.evaluate(&Request::new(&role, "kms:Encrypt")),
            Decision::Allow {
                via_account_root: true
            }
        );
        // Databricks' principal is never the owner's account nor its role.
        let mut d = Request::new(DBX, "kms:Decrypt");
        d.outside_owner = true;
        assert_eq!(
            p.evaluate(&d),
            Decision::Allow {
                via_account_root: false
            }
        );
        let mut d = Request::new(DBX, "kms:CreateGrant");
        d.outside_owner = true;
        assert_eq!(p.evaluate(&d), Decision::ImplicitDeny);
        // An Allow with an unknown principal takes nothing away from what
        // known statements grant, and grants nothing for sure.
        let p = policy(json!([
            allow(json!({"AWS": DBX}), json!("kms:Decrypt")),
            allow(json!({"AWS": var.clone()}), json!("kms:*"))
        ]));
        assert!(p.evaluate(&dbx("kms:Decrypt")).is_allow());
        match p.evaluate(&dbx("kms:Encrypt")) {
            Decision::CannotTell(why) => assert!(why.contains("var.extra_principal"), "{why}"),
            other => panic!("{other:?}"),
        }
        // An unknown in a Deny leaves "cannot tell", naming its origin.
        let p = policy(json!([
            allow(json!({"AWS": DBX}), json!("kms:*")),
            {"Effect": "Deny", "Principal": {"AWS": var}, "Action": "kms:Decrypt", "Resource": "*"}
        ]));
        match p.evaluate(&dbx("kms:Decrypt")) {
            Decision::CannotTell(why) => assert!(why.contains("var.extra_principal"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(p.evaluate(&dbx("kms:Encrypt")).is_allow());
        // A condition comparing with an unknown decides nothing for sure.
        let tag = marker("var.databricks_account_id", Kind::Any);
        let p = policy(
            json!([{"Effect": "Allow", "Principal": {"AWS": DBX}, "Action": "kms:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": [tag]}}}]),
        );
        assert!(matches!(
            p.evaluate(&dbx("kms:Decrypt")),
            Decision::CannotTell(_)
        ));
    }
}

#[cfg(test)]
mod glob_tests {
    use super::wildcard_match;

    #[test]
    fn ascii_fast_path_and_unicode_path_agree() {
        let cases = [
            ("kms:*", "kms:Decrypt", false, true),
            ("kms:*", "KMS:Decrypt", true, true),
            ("kms:*", "KMS:Decrypt", false, false),
            ("kms:Re*", "kms:ReEncryptFrom", false, true),
            (
                "kms:GenerateDataKey*",
                "kms:GenerateDataKeyWithoutPlaintext",
                false,
                true,
            ),
            (
                "ec2.*.amazonaws.com",
                "ec2.us-east-1.amazonaws.com",
                false,
                true,
            ),
            ("ec2.?.amazonaws.com", "ec2.xy.amazonaws.com", false, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("*", "", false, true),
            ("", "x", false, false),
        ];
        for (p, t, ci, want) in cases {
            assert_eq!(wildcard_match(p, t, ci), want, "{p} {t} {ci}");
            // The same through the character path (a non-ASCII suffix on both).
            let (p2, t2) = (format!("{p}é"), format!("{t}é"));
            assert_eq!(wildcard_match(&p2, &t2, ci), want, "{p2} {t2} {ci}");
        }
        assert!(wildcard_match("é?", "éü", false));
        assert!(!wildcard_match("é?", "éüü", false));
    }
}
