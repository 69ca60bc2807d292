//! HCL mode's functions on values not known until apply (issue 32): `try`,
//! `lookup`, `coalesce`, `tolist`/`toset`, `length`, `lower`/`upper`,
//! `format`, `join`, `replace`. Each unit test says what Terraform gives
//! (checked with `terraform console` 1.11.4 on a `terraform_data` output,
//! which is "(known after apply)" there); an unknown is a marker with its
//! origin ([`crate::rules::unknown`]), and a value computed from one is an
//! unknown named after the call, never a marker cut into or taken for the
//! unknown it came from. The end-to-end tests put each function between a
//! module's output and a key configuration's `key_arn` or a key policy's
//! principal, and review the configuration in HCL mode.

use std::path::Path;

use super::hcl_input::eval_for_test;
use super::*;
use crate::rules::findings::Verdict;
use crate::rules::unknown::{self, exact, marker, parts, Kind, Part};

fn u(origin: &str) -> hcl::Value {
    hcl::Value::String(marker(origin, Kind::Any))
}

fn st(s: &str) -> hcl::Value {
    hcl::Value::String(s.to_string())
}

/// Root names and their values.
type Roots = Vec<(&'static str, hcl::Value)>;

/// `local` wholly known; `var.a` known; `var.x`, `var.k`, `var.m`,
/// `var.obj`, `var.l` not known (markers where the unknowns are).
fn scope() -> (Roots, Roots) {
    let local = hcl::value!({
        obj = { a = 1 }
        list = ["first", "second"]
        keys = { storage = "arn:aws:kms:us-east-1:123456789012:key/s" }
        empty = []
    });
    let known = vec![
        ("local", local),
        ("var", hcl::value!({ a = "A" })),
        // `count = 0`: no instance.
        (
            "aws_kms_key",
            hcl::value!({ none = [], one = [{ description = "d" }] }),
        ),
    ];
    let unknown = vec![
        (
            "var",
            hcl::Value::Object(
                [
                    ("a".to_string(), st("A")),
                    ("x".to_string(), u("var.x")),
                    ("k".to_string(), u("var.k")),
                    ("m".to_string(), u("var.m")),
                    ("obj".to_string(), u("var.obj")),
                    ("l".to_string(), u("var.l")),
                ]
                .into_iter()
                .collect(),
            ),
        ),
        // The instance's `arn` is computed: a marker of its own reference.
        (
            "aws_kms_key",
            hcl::Value::Object(
                [
                    ("none".to_string(), hcl::Value::Array(vec![])),
                    (
                        "one".to_string(),
                        hcl::Value::Array(vec![hcl::Value::Object(
                            [
                                ("description".to_string(), st("d")),
                                ("arn".to_string(), u("aws_kms_key.one[0].arn")),
                            ]
                            .into_iter()
                            .collect(),
                        )]),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
        ),
    ];
    (known, unknown)
}

/// (wholly known value, value with the unknowns as markers).
fn eval(src: &str) -> (Option<hcl::Value>, Option<hcl::Value>) {
    let (known, unknown) = scope();
    eval_for_test(src, &known, &unknown)
}

/// Known: the same value in both evaluations.
fn known(src: &str) -> hcl::Value {
    let (k, s) = eval(src);
    assert_eq!(k, s, "{src}");
    k.unwrap_or_else(|| panic!("{src}: not known"))
}

/// Not known: absent from the known evaluation; the value with markers.
fn unknown_sym(src: &str) -> Option<hcl::Value> {
    let (k, s) = eval(src);
    assert_eq!(k, None, "{src} is known as {k:?}");
    s
}

/// The one unknown a value is (a marker standing alone).
fn the_unknown(src: &str) -> unknown::Unknown {
    match unknown_sym(src) {
        Some(hcl::Value::String(s)) => {
            exact(&s).unwrap_or_else(|| panic!("{src}: {:?}", unknown::readable(&s)))
        }
        other => panic!("{src}: {other:?}"),
    }
}

/// A string's text with each unknown as `${origin}`.
fn readable(v: &Option<hcl::Value>) -> String {
    match v {
        Some(hcl::Value::String(s)) => unknown::readable(s),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn try_takes_the_first_argument_that_evaluates_without_an_error() {
    // Terraform: try(local.obj.missing, "b") is "b".
    assert_eq!(known(r#"try(local.obj.missing, "b")"#), st("b"));
    assert_eq!(known(r#"try(local.obj.a, "b")"#), hcl::Value::from(1));
    assert_eq!(known(r#"try(local.list[5], local.list[0])"#), st("first"));
    assert_eq!(known(r#"try(jsondecode("{"), "d")"#), st("d"));
    assert_eq!(known(r#"try(one(local.list), "many")"#), st("many"));
    // Nested: the inner try decides first.
    assert_eq!(
        known(r#"try(try(local.obj.b, local.obj.c), local.keys.storage)"#),
        st("arn:aws:kms:us-east-1:123456789012:key/s")
    );
    // count = 0: no instance to index, the fallback (a public module's
    // `try(aws_kms_key.this[0].arn, "")`).
    assert_eq!(known(r#"try(aws_kms_key.none[0].arn, "")"#), st(""));
    // No argument succeeds: an error in Terraform, not a value here.
    assert_eq!(eval("try(local.obj.b, local.obj.c)"), (None, None));
}

#[test]
fn try_of_an_argument_not_known_yet_is_unknown_never_the_fallback() {
    // Terraform: try(terraform_data.x.id, "b") is (known after apply).
    let x = the_unknown(r#"try(var.x, "b")"#);
    assert_eq!(x.origin, "var.x");
    // Reading into an unknown object may succeed once it is known.
    let s = unknown_sym(r#"try(var.obj.attr, "b")"#);
    assert_ne!(s, Some(st("b")));
    // An unknown key into a known map: unknown, not 5.
    let s = unknown_sym(r#"try(local.obj[var.k], 5)"#);
    assert_ne!(s, Some(hcl::Value::from(5)));
    // The instance exists, its ARN is computed: the ARN, unknown.
    let arn = the_unknown(r#"try(aws_kms_key.one[0].arn, "")"#);
    assert_eq!(arn.origin, "aws_kms_key.one[0].arn");
    // A known attribute of the same instance: known.
    assert_eq!(known(r#"try(aws_kms_key.one[0].description, "")"#), st("d"));
    // A list with an unknown element evaluates: its elements, the known
    // ones known.
    assert_eq!(
        unknown_sym(r#"try(["a", var.x], "b")"#),
        Some(hcl::Value::Array(vec![st("a"), u("var.x")]))
    );
    // A function review does not evaluate may succeed: not passed over.
    let s = unknown_sym(r#"try(base64decode(local.obj.a), "b")"#);
    assert_ne!(s, Some(st("b")));
}

#[test]
fn lookup_with_an_unknown_map_or_key_is_unknown() {
    // Terraform: lookup(local.obj, terraform_data.x.id, 3) is (known after apply).
    let k = the_unknown(r#"lookup(local.keys, var.k, "default")"#);
    assert!(
        k.origin.starts_with("lookup(") && k.origin.contains("var.k"),
        "{k:?}"
    );
    assert_ne!(k.origin, "var.k");
    // An unknown map: unknown, never the default.
    let m = the_unknown(r#"lookup(var.m, "storage", "default")"#);
    assert_eq!(m.origin, r#"lookup(var.m, "storage", "default")"#);
    // Known map and key: the entry, else the default, even when the
    // default is not known (Terraform needs only the entry).
    assert_eq!(
        known(r#"lookup(local.keys, "storage")"#),
        st("arn:aws:kms:us-east-1:123456789012:key/s")
    );
    assert_eq!(known(r#"lookup(local.obj, "zz", 3)"#), hcl::Value::from(3));
    assert_eq!(
        known(r#"lookup(local.keys, "storage", var.x)"#),
        st("arn:aws:kms:us-east-1:123456789012:key/s")
    );
    // A known map holding an unknown: that unknown itself.
    assert_eq!(
        the_unknown(r#"lookup({ storage = var.x }, "storage")"#).origin,
        "var.x"
    );
}

#[test]
fn coalesce_is_decided_by_the_first_argument_known_to_be_set() {
    // Terraform: coalesce("y", terraform_data.x.id) is "y".
    let (k, _) = eval(r#"coalesce("y", var.x)"#);
    assert_eq!(k, Some(st("y")));
    assert_eq!(known(r#"coalesce("", null, "x")"#), st("x"));
    // Terraform: coalesce(terraform_data.x.id, "x") is (known after apply):
    // the unknown may be "" or null. Named after the call, never var.x
    // itself (coalesce(var.x, "x") is "x" when var.x is "").
    let c = the_unknown(r#"coalesce(var.x, "x")"#);
    assert_eq!(c.origin, r#"coalesce(var.x, "x")"#);
    assert_eq!(c.kind, Kind::Any);
    let c = the_unknown(r#"coalesce(null, "", var.x, "x")"#);
    assert!(c.origin.contains("var.x"), "{c:?}");
    // Known text around an unknown is never empty: that string.
    assert_eq!(
        readable(&unknown_sym(r#"coalesce("arn:${var.x}", "x")"#)),
        "arn:${var.x}"
    );
    // A resource's computed ARN is never null or "": it decides.
    assert_eq!(
        the_unknown(r#"coalesce(null, aws_kms_key.one[0].arn, "x")"#).origin,
        "aws_kms_key.one[0].arn"
    );
}

#[test]
fn tolist_and_toset_keep_the_known_elements_and_length_counts_a_list() {
    // Terraform: tolist(["a", terraform_data.x.id]) is ["a", (known after apply)].
    assert_eq!(
        unknown_sym(r#"tolist(["a", var.x])"#),
        Some(hcl::Value::Array(vec![st("a"), u("var.x")]))
    );
    // A set: each value once (the same origin is the same value), known
    // strings in lexical order.
    assert_eq!(
        unknown_sym(r#"toset(["b", var.x, "b", var.x])"#),
        Some(hcl::Value::Array(vec![st("b"), u("var.x")]))
    );
    assert_eq!(
        known(r#"toset(["b", "a", "b"])"#),
        hcl::Value::Array(vec![st("a"), st("b")])
    );
    // Terraform: length(["a", terraform_data.x.id]) is 2.
    assert_eq!(
        unknown_sym(r#"length(["a", var.x])"#),
        Some(hcl::Value::from(2))
    );
    assert_eq!(
        unknown_sym(r#"length({ a = var.x, b = 1 })"#),
        Some(hcl::Value::from(2))
    );
    // Terraform: length(toset(["a", terraform_data.x.id])) is (known after
    // apply): the unknown may be "a".
    assert_eq!(unknown_sym(r#"length(toset(["a", var.x]))"#), None);
    // An unknown list: its length is not known.
    let l = the_unknown("length(var.l)");
    assert_eq!(l.origin, "length(var.l)");
    assert_eq!(known(r#"length(local.list)"#), hcl::Value::from(2));
}

#[test]
fn string_functions_keep_each_unknown_whole() {
    // lower/upper: the known text mapped, the unknown named after the call
    // (lower(var.x) is not var.x), never a marker lower-cased.
    let v = unknown_sym(r#"lower("ARN:${var.x}:ROOT")"#);
    assert_eq!(readable(&v), "arn:${lower(var.x)}:root");
    let Some(hcl::Value::String(s)) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(
        parts(s)
            .iter()
            .filter(|p| matches!(p, Part::Unknown(_)))
            .count(),
        1
    );
    assert_eq!(
        readable(&unknown_sym(r#"upper("a-${var.x}")"#)),
        "A-${upper(var.x)}"
    );
    // An account id is digits: its own lower and upper case.
    let (known_v, unknown_v) = scope();
    let mut unknown_v = unknown_v;
    unknown_v.push((
        "data",
        hcl::value!({
            aws_caller_identity = {
                current = {
                    account_id = (marker(
                        "data.aws_caller_identity.current.account_id",
                        Kind::OwnAccountId,
                    ))
                }
            }
        }),
    ));
    let (_, v) = eval_for_test(
        r#"upper("arn:aws:iam::${data.aws_caller_identity.current.account_id}:root")"#,
        &known_v,
        &unknown_v,
    );
    assert_eq!(
        readable(&v),
        "ARN:AWS:IAM::${data.aws_caller_identity.current.account_id}:ROOT"
    );
    // format and join put each unknown in whole.
    assert_eq!(
        readable(&unknown_sym(r#"format("arn:aws:iam::%s:root", var.x)"#)),
        "arn:aws:iam::${var.x}:root"
    );
    assert_eq!(
        readable(&unknown_sym(r#"join(",", ["a", var.x], ["b"])"#)),
        "a,${var.x},b"
    );
    assert_eq!(known(r#"join("-", local.list)"#), st("first-second"));
    // An unknown list: the text is not known.
    assert_eq!(
        the_unknown(r#"join(",", var.l)"#).origin,
        r#"join(",", var.l)"#
    );
    // replace: where the substring is in a string with an unknown part is
    // not known (inside the unknown, or across its edge): unknown whole.
    let r = the_unknown(r#"replace("ab${var.x}", "a", "c")"#);
    assert_eq!(r.origin, r#"replace("ab${var.x}", "a", "c")"#);
    assert_eq!(known(r#"replace("a-b-c", "-", "/")"#), st("a/b/c"));
    // A list holding an unknown, written out by format or join: an unknown,
    // never text with the marker escaped into it.
    for src in [
        r#"format("%v", ["a", var.x])"#,
        r#"join(",", [["a", var.x]])"#,
        r#"tostring(["a", var.x])"#,
    ] {
        let u = the_unknown(src);
        assert!(u.origin.contains("var.x"), "{src}: {u:?}");
    }
    // Terraform: each of these is (known after apply) when its argument is.
    for src in [
        "lower(var.x)",
        "upper(var.x)",
        r#"replace(var.x, "a", "b")"#,
        r#"format("%s-x", var.x)"#,
        r#"join(",", ["a", var.x])"#,
    ] {
        let (k, s) = eval(src);
        assert_eq!(k, None, "{src}");
        let Some(hcl::Value::String(s)) = s else {
            panic!("{src}: {s:?}")
        };
        assert!(unknown::contains(&s), "{src}: {s:?}");
    }
}

#[test]
fn a_call_on_different_values_is_a_different_unknown() {
    // Two unknowns with the same origin are equal: the origin of a call's
    // unknown must tell different arguments apart, long ones included.
    let long_a = format!(r#"lookup({{ k = "{}" }}, var.k)"#, "a".repeat(100));
    let long_b = format!(r#"lookup({{ k = "{}" }}, var.k)"#, "b".repeat(100));
    let a = the_unknown(&long_a);
    let b = the_unknown(&long_b);
    assert_ne!(a.origin, b.origin);
    assert!(a.origin.len() < 120, "{a:?}");
    assert_ne!(
        the_unknown("lower(var.x)").origin,
        the_unknown("upper(var.x)").origin
    );
}

// End to end: the functions between a module's outputs and the key
// configurations' `key_arn`s and the key policy's principals.

/// The SRA shape (acceptance-tests/fixtures/review/eval/sra_role_reference)
/// with the role, the account and the keys' ARNs given back by modules, and
/// read through the functions.
const MODULE_BASE: &str = r#"
variable "resource_prefix" {
  type = string
}
data "aws_caller_identity" "current" {}
resource "aws_iam_role" "cross_account_role" {
  name               = "${var.resource_prefix}-crossaccount"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}
output "roles" {
  value = { cross = aws_iam_role.cross_account_role.arn }
}
output "role_arns" {
  value = [aws_iam_role.cross_account_role.arn]
}
output "account_id" {
  value = data.aws_caller_identity.current.account_id
}
"#;

fn sra_with(
    ebs_principal: &str,
    owner_principal: &str,
    role_arn: &str,
    storage_arn: &str,
    ms_arn: &str,
) -> String {
    format!(
        r#"
variable "databricks_account_id" {{
  type = string
}}
variable "existing_storage_key_arn" {{
  type    = string
  default = null
}}
variable "key_arns" {{
  type    = map(string)
  default = {{}}
}}
provider "aws" {{
  region = "us-east-1"
}}
module "base" {{
  source          = "./modules/base"
  resource_prefix = "sra"
}}
resource "aws_kms_key" "workspace_storage" {{
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = {{ AWS = {owner_principal} }}
        Action    = "kms:*"
        Resource  = "*"
      }},
      {{
        Sid       = "Allow Databricks to use KMS key for DBFS"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {{ StringEquals = {{ "aws:PrincipalTag/DatabricksAccountId" = [var.databricks_account_id] }} }}
      }},
      {{
        Sid       = "Allow Databricks to use KMS key for EBS"
        Effect    = "Allow"
        Principal = {{ AWS = {ebs_principal} }}
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {{ "ForAnyValue:StringLike" = {{ "kms:ViaService" = "ec2.*.amazonaws.com" }} }}
      }}
    ]
  }})
}}
resource "aws_kms_key" "managed_services" {{
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = {{ AWS = {owner_principal} }}
        Action    = "kms:*"
        Resource  = "*"
      }},
      {{
        Sid       = "Allow Databricks to use KMS key for managed services in the control plane"
        Effect    = "Allow"
        Principal = {{ AWS = "arn:aws:iam::414351767826:root" }}
        Action    = ["kms:Encrypt", "kms:Decrypt"]
        Resource  = "*"
        Condition = {{ StringEquals = {{ "aws:PrincipalTag/DatabricksAccountId" = [var.databricks_account_id] }} }}
      }}
    ]
  }})
}}
module "keys" {{
  source  = "./modules/keys"
  storage = aws_kms_key.workspace_storage.arn
  ms      = aws_kms_key.managed_services.arn
}}
resource "databricks_mws_customer_managed_keys" "workspace_storage" {{
  account_id = var.databricks_account_id
  use_cases  = ["STORAGE"]
  aws_key_info {{
    key_arn = {storage_arn}
  }}
}}
resource "databricks_mws_customer_managed_keys" "managed_services" {{
  account_id = var.databricks_account_id
  use_cases  = ["MANAGED_SERVICES"]
  aws_key_info {{
    key_arn = {ms_arn}
  }}
}}
resource "databricks_mws_credentials" "this" {{
  account_id       = var.databricks_account_id
  credentials_name = "sra-credentials"
  role_arn         = {role_arn}
}}
resource "databricks_mws_workspaces" "this" {{
  account_id                               = var.databricks_account_id
  aws_region                               = "us-east-1"
  workspace_name                           = "sra"
  pricing_tier                             = "ENTERPRISE"
  credentials_id                           = databricks_mws_credentials.this.credentials_id
  storage_configuration_id                 = "c0ffee00-0000-4000-8000-000000000002"
  network_id                               = "c0ffee00-0000-4000-8000-000000000003"
  managed_services_customer_managed_key_id = databricks_mws_customer_managed_keys.managed_services.customer_managed_key_id
  storage_customer_managed_key_id          = databricks_mws_customer_managed_keys.workspace_storage.customer_managed_key_id
}}
"#
    )
}

/// A module handing the keys' ARNs back in an object.
const MODULE_KEYS: &str = r#"
variable "storage" {
  type = string
}
variable "ms" {
  type = string
}
output "arns" {
  value = { storage = var.storage, managed_services = var.ms }
}
output "storage_arn" {
  value = var.storage
}
"#;

fn review_config(main: &str) -> Analysis {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("main.tf", main),
        ("modules/base/main.tf", MODULE_BASE),
        ("modules/keys/main.tf", MODULE_KEYS),
    ] {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    review_at(d.path())
}

fn review_at(dir: &Path) -> Analysis {
    let args: Vec<String> = vec![
        dir.to_str().unwrap().to_string(),
        "-var".into(),
        "databricks_account_id=0d26daa6-5e44-4c97-a497-ef015f91254a".into(),
    ];
    let opts = parse_args(&args).unwrap();
    let (plan, _) = load_hcl(&opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    analyze(&plan, &Requirements::default())
}

/// (address rule attribute) -> verdict, with the message of each "cannot tell".
fn verdicts(a: &Analysis) -> std::collections::BTreeMap<String, String> {
    a.outcomes
        .iter()
        .map(|l| {
            let v = match l.outcome.verdict {
                Verdict::Fail => format!("fail {}", l.outcome.severity),
                Verdict::CannotTell => format!("cannot tell: {}", l.outcome.message),
                Verdict::Pass => "pass".to_string(),
                Verdict::NeedsState => "needs state".to_string(),
            };
            (
                format!("{} {} {}", l.address, l.outcome.rule.code(), l.attribute),
                v,
            )
        })
        .collect()
}

fn verdict(a: &Analysis, address: &str, rule: &str) -> (Verdict, String) {
    a.outcomes
        .iter()
        .find(|l| l.address == address && l.outcome.rule.code() == rule)
        .map(|l| (l.outcome.verdict, l.outcome.message.clone()))
        .unwrap_or_else(|| panic!("no {rule} on {address}: {:#?}", verdicts(a)))
}

#[test]
fn functions_between_module_outputs_and_keys_decide_as_the_direct_references_do() {
    // The references written out: what the functions must reach.
    let direct = review_config(&sra_with(
        "module.base.roles.cross",
        r#""arn:aws:iam::${module.base.account_id}:root""#,
        "module.base.roles.cross",
        "aws_kms_key.workspace_storage.arn",
        "aws_kms_key.managed_services.arn",
    ));
    let direct_v = verdicts(&direct);
    assert_eq!(
        verdict(&direct, "aws_kms_key.workspace_storage", "CMK016").0,
        Verdict::Pass,
        "{direct_v:#?}"
    );
    // Each through a function public modules use.
    let through = review_config(&sra_with(
        // lookup in a module's object output
        r#"lookup(module.base.roles, "cross")"#,
        // format of the account id a module gives back (an account id:
        // lower() keeps it whole)
        r#"lower(format("arn:aws:iam::%s:root", module.base.account_id))"#,
        // try over an index out of a known list first
        r#"try(module.base.role_arns[3], module.base.role_arns[0], "")"#,
        // coalesce over a variable that defaults to null, then the key's
        // ARN through a module's object output
        "coalesce(var.existing_storage_key_arn, module.keys.arns.storage)",
        // lookup over a variable map without the key, defaulting to the
        // module's output
        r#"lookup(var.key_arns, "managed_services", try(module.keys.arns.managed_services, ""))"#,
    ));
    let through_v = verdicts(&through);
    assert_eq!(through_v, direct_v);
    for (address, rule, want) in [
        ("aws_kms_key.workspace_storage", "CMK015", Verdict::Pass),
        ("aws_kms_key.workspace_storage", "CMK016", Verdict::Pass),
        ("aws_kms_key.workspace_storage", "CMK021", Verdict::Fail),
        ("aws_kms_key.managed_services", "CMK015", Verdict::Pass),
        (
            "databricks_mws_customer_managed_keys.workspace_storage",
            "CMK018",
            Verdict::Pass,
        ),
        (
            "databricks_mws_customer_managed_keys.managed_services",
            "CMK018",
            Verdict::Pass,
        ),
    ] {
        let (v, m) = verdict(&through, address, rule);
        assert_eq!(v, want, "{address} {rule}: {m}");
    }
    assert!(
        !through_v.values().any(|v| v.starts_with("cannot tell")),
        "{through_v:#?}"
    );
}

#[test]
fn a_function_of_an_unknown_that_may_differ_is_never_taken_for_it() {
    // The EBS statement names lower(role ARN): not the credentials' role
    // (a role name may have capitals), so CMK016 cannot pass; it cannot
    // tell, naming what it waits for.
    let a = review_config(&sra_with(
        "lower(module.base.roles.cross)",
        r#""arn:aws:iam::${module.base.account_id}:root""#,
        "module.base.roles.cross",
        "aws_kms_key.workspace_storage.arn",
        "aws_kms_key.managed_services.arn",
    ));
    let (v, m) = verdict(&a, "aws_kms_key.workspace_storage", "CMK016");
    assert_eq!(v, Verdict::CannotTell, "{m}");
    assert!(
        m.contains("lower(module.base.aws_iam_role.cross_account_role.arn)"),
        "{m}"
    );
    // coalesce over a variable not given, before the role: the EBS
    // principal may be any other (coalesce gives var.override_role when it
    // is set), so CMK016 cannot pass; it cannot tell, naming the call.
    let main = sra_with(
        "coalesce(var.override_role, module.base.roles.cross)",
        r#""arn:aws:iam::${module.base.account_id}:root""#,
        "module.base.roles.cross",
        "aws_kms_key.workspace_storage.arn",
        "aws_kms_key.managed_services.arn",
    ) + "variable \"override_role\" {\n  type = string\n}\n";
    let a = review_config(&main);
    let (v, m) = verdict(&a, "aws_kms_key.workspace_storage", "CMK016");
    assert_eq!(v, Verdict::CannotTell, "{m}");
    assert!(
        m.contains("coalesce(var.override_role, module.base.aws_iam_role.cross_account_role.arn)"),
        "{m}"
    );
    // The same for a key configuration's key_arn: the references name
    // module.keys' key, but a set variable wins, so CMK018 cannot pass on
    // the references alone.
    let main = sra_with(
        "module.base.roles.cross",
        r#""arn:aws:iam::${module.base.account_id}:root""#,
        "module.base.roles.cross",
        "coalesce(var.override_arn, module.keys.arns.storage)",
        "aws_kms_key.managed_services.arn",
    ) + "variable \"override_arn\" {\n  type = string\n}\n";
    let a = review_config(&main);
    let (v, m) = verdict(
        &a,
        "databricks_mws_customer_managed_keys.workspace_storage",
        "CMK018",
    );
    assert_eq!(v, Verdict::CannotTell, "{m}");
}

#[test]
fn nested_calls_cost_their_depth() {
    // Each call is decided once: 40 nested coalesce/try/lookup calls around
    // an unknown would take 2^40 evaluations if each level evaluated the
    // levels below it again.
    for name in ["coalesce", "try"] {
        let depth = 40;
        let src = format!(
            "{}var.x{}",
            format!("{name}(").repeat(depth),
            r#", "a")"#.repeat(depth)
        );
        let t = std::time::Instant::now();
        let (k, s) = eval(&src);
        assert_eq!(k, None, "{name}");
        let Some(hcl::Value::String(s)) = s else {
            panic!("{name}: {s:?}")
        };
        assert!(unknown::contains(&s), "{name}");
        assert!(t.elapsed().as_secs() < 5, "{name}: {:?}", t.elapsed());
    }
    let src = format!(
        "{}var.k{}",
        "lookup(local.keys, ".repeat(20),
        r#", "d")"#.repeat(20)
    );
    let t = std::time::Instant::now();
    let (k, _) = eval(&src);
    assert_eq!(k, None);
    assert!(t.elapsed().as_secs() < 5, "lookup: {:?}", t.elapsed());
}

#[test]
fn the_origin_of_a_call_on_a_long_unknown_stays_short() {
    // coalesce(X, X) names X twice: through a chain of locals each
    // doubling, the origin would double at each step if written whole.
    let long = "module.a.".repeat(40) + "var.x";
    let var = hcl::Value::Object(
        [(
            "big".to_string(),
            hcl::Value::String(marker(&long, Kind::Any)),
        )]
        .into_iter()
        .collect(),
    );
    let (k, s) = eval_for_test("coalesce(var.big, var.big)", &[], &[("var", var)]);
    assert_eq!(k, None);
    let Some(hcl::Value::String(s)) = s else {
        panic!("{s:?}")
    };
    let u = exact(&s).unwrap();
    assert!(u.origin.len() < 120, "{}", u.origin);
    assert!(u.origin.starts_with("coalesce(<value "), "{}", u.origin);
}
