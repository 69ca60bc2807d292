//! Fuzz targets of the IAM policy evaluator (`make fuzz` runs them with
//! many cases; `make test` with a few): any text, and policies and requests
//! built from IAM's grammar with hostile values. No panic, and the
//! evaluator keeps IAM's laws.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::iam::{wildcard_match, CtxValue, Decision, Policy, Request};
use super::unknown::{self, Kind};

fn cases() -> u32 {
    crate::test_settings::fuzz_cases(256)
}

fn pick(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(pool).prop_map(str::to_string).boxed()
}

fn principal_str() -> BoxedStrategy<String> {
    prop_oneof![
        pick(&[
            "*",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::414351767826:root",
            "arn:aws:iam::123456789012:role/databricks/cross-account",
            "arn:aws:iam::123456789012:role/*",
            "arn:aws-us-gov:iam::123456789012:root",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "123456789012",
            "arn:aws:iam::*:root",
            "",
        ]),
        any::<String>().boxed(),
    ]
    .boxed()
}

fn action_str() -> BoxedStrategy<String> {
    prop_oneof![
        pick(&[
            "*",
            "kms:*",
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:De*",
            "kms:?ncrypt",
            "KMS:DECRYPT",
            "kms:GenerateDataKey*",
            "kms:CreateGrant",
            "kms:ReEncrypt*",
            "s3:GetObject",
            "kms:",
            "**",
            "*?*",
        ]),
        "[a-zA-Z:*?]{0,20}".boxed(),
    ]
    .boxed()
}

fn string_or_list(s: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    prop_oneof![
        s.clone().prop_map(Value::String),
        prop::collection::vec(s, 0..4).prop_map(|v| json!(v)),
        Just(json!(42)),
        Just(Value::Null),
        Just(json!({})),
    ]
    .boxed()
}

fn condition() -> BoxedStrategy<Value> {
    let op = pick(&[
        "StringEquals",
        "StringLike",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringEqualsIfExists",
        "Bool",
        "ForAnyValue:StringLike",
        "ForAllValues:StringEquals",
        "Null",
        "ArnLike",
        "ArnEquals",
        "NumericLessThan",
        "DateGreaterThan",
        "IpAddress",
        "Weird",
        "ForAnyValue:",
    ]);
    let key = pick(&[
        "kms:ViaService",
        "aws:PrincipalTag/DatabricksAccountId",
        "kms:GrantIsForAWSResource",
        "kms:CallerAccount",
        "aws:SourceIp",
        "kms:EncryptionContext:aws:ebs:id",
        "aws:PrincipalArn",
    ]);
    let value = prop_oneof![
        pick(&[
            "ec2.*.amazonaws.com",
            "true",
            "false",
            "123456789012",
            "*",
            "",
            "x?"
        ])
        .prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::collection::vec(pick(&["a", "true", "ec2.us-east-1.amazonaws.com"]), 0..3)
            .prop_map(|v| json!(v)),
        Just(Value::Null),
        Just(json!({"nested": 1})),
    ];
    prop::collection::vec((op, prop::collection::vec((key, value), 0..3)), 0..3)
        .prop_map(|ops| {
            let mut c = serde_json::Map::new();
            for (op, kvs) in ops {
                let mut m = serde_json::Map::new();
                for (k, v) in kvs {
                    m.insert(k, v);
                }
                c.insert(op, Value::Object(m));
            }
            Value::Object(c)
        })
        .boxed()
}

fn statement() -> BoxedStrategy<Value> {
    let principal = prop_oneof![
        principal_str().prop_map(Value::String),
        string_or_list(principal_str()).prop_map(|v| json!({ "AWS": v })),
        Just(json!({"Service": "ec2.amazonaws.com"})),
        Just(json!(7)),
    ];
    (
        pick(&["Allow", "Deny", "allow", ""]),
        prop::option::of(principal),
        any::<bool>(),
        string_or_list(action_str()),
        any::<bool>(),
        prop::option::of(string_or_list(pick(&[
            "*",
            "arn:aws:kms:us-east-1:123456789012:key/*",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ]))),
        prop::option::of(condition()),
        prop::option::of("[a-zA-Z0-9 ]{0,10}"),
    )
        .prop_map(
            |(effect, principal, not_p, action, not_a, resource, cond, sid)| {
                let mut s = serde_json::Map::new();
                if !effect.is_empty() {
                    s.insert("Effect".into(), json!(effect));
                }
                if let Some(p) = principal {
                    s.insert(if not_p { "NotPrincipal" } else { "Principal" }.into(), p);
                }
                s.insert(if not_a { "NotAction" } else { "Action" }.into(), action);
                if let Some(r) = resource {
                    s.insert("Resource".into(), r);
                }
                if let Some(c) = cond {
                    s.insert("Condition".into(), c);
                }
                if let Some(sid) = sid {
                    s.insert("Sid".into(), json!(sid));
                }
                Value::Object(s)
            },
        )
        .boxed()
}

fn request() -> BoxedStrategy<Request> {
    let ctx = prop::collection::vec(
        (
            pick(&[
                "kms:ViaService",
                "aws:PrincipalTag/DatabricksAccountId",
                "kms:GrantIsForAWSResource",
                "kms:CallerAccount",
            ]),
            prop_oneof![
                prop::collection::vec(
                    pick(&["ec2.us-east-1.amazonaws.com", "true", "x", ""]),
                    0..3
                )
                .prop_map(CtxValue::Values),
                Just(CtxValue::Absent),
                Just(CtxValue::Unknown),
            ],
        ),
        0..4,
    );
    (
        principal_str(),
        action_str(),
        prop::option::of(pick(&[
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-1:999999999999:key/x",
        ])),
        ctx,
    )
        .prop_map(|(p, a, r, ctx)| {
            let mut req = Request::new(&p, &a);
            req.resource = r;
            for (k, v) in ctx {
                req = req.with(&k, v);
            }
            req
        })
        .boxed()
}

/// The decision without its texts.
fn kind(d: &Decision) -> String {
    match d {
        Decision::Allow { via_account_root } => format!("allow(root={via_account_root})"),
        Decision::ExplicitDeny { .. } => "explicit deny".into(),
        Decision::ImplicitDeny => "implicit deny".into(),
        Decision::CannotTell(_) => "cannot tell".into(),
    }
}

/// The values an unknown may take in [`fuzz_unknowns_decide_only_what_every_value_gives`].
const VALUES: &[&str] = &[
    "*",
    "arn:aws:iam::123456789012:root",
    "arn:aws:iam::414351767826:root",
    "arn:aws:iam::123456789012:role/databricks/cross-account",
    "123456789012",
    "kms:Decrypt",
    "kms:*",
    "kms:GenerateDataKey*",
    "ec2.us-east-1.amazonaws.com",
    "ec2.*.amazonaws.com",
    "true",
    "x",
    "",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
];

/// Every string leaf equal to `from` replaced by `to`.
fn replace_leaves(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) if s == from => Value::String(to.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_leaves(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), replace_leaves(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The case proptest once shrank to: a Deny whose Resource is unknown, and
/// no Allow. Denied whatever the resource is ("no statement allows it");
/// explicitly so only when the Deny applies.
#[test]
fn an_unknown_resource_in_a_deny_leaves_the_request_denied() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let marker = unknown::marker("var.fuzzed", Kind::Any);
    let doc = |resource: &str| json!({"Statement": [{"Effect": "Deny", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": resource}]});
    let mut req = Request::new("*", "kms:Encrypt");
    req.resource = Some(key.to_string());
    let d = Policy::from_value(&doc(&marker)).unwrap().evaluate(&req);
    assert_eq!(kind(&d), "implicit deny");
    let concrete = Policy::from_value(&doc(key)).unwrap().evaluate(&req);
    assert_eq!(kind(&concrete), "explicit deny");
    let other = Policy::from_value(&doc("x")).unwrap().evaluate(&req);
    assert_eq!(kind(&other), "implicit deny");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// A policy with a value not known until apply decides a request only
    /// when every value it may take gives that decision.
    #[test]
    fn fuzz_unknowns_decide_only_what_every_value_gives(
        stmts in prop::collection::vec(statement(), 1..5),
        req in request(),
        which in 0..VALUES.len(),
    ) {
        let doc = json!({"Version": "2012-10-17", "Statement": stmts});
        let chosen = VALUES[which];
        let marker = unknown::marker("var.fuzzed", Kind::Any);
        let with_unknown = replace_leaves(&doc, chosen, &marker);
        let Ok(p) = Policy::from_value(&with_unknown) else { return Ok(()); };
        let d = p.evaluate(&req);
        if matches!(d, Decision::CannotTell(_)) {
            return Ok(());
        }
        for v in VALUES {
            let concrete = replace_leaves(&with_unknown, &marker, v);
            let Ok(c) = Policy::from_value(&concrete) else { continue; };
            let dc = c.evaluate(&req);
            if matches!(dc, Decision::CannotTell(_)) {
                continue;
            }
            // "No statement allows it" stays true whatever a Deny that may
            // apply turns out to do: the concrete policy may deny
            // explicitly, and the request is denied either way.
            if matches!(d, Decision::ImplicitDeny) {
                prop_assert!(
                    matches!(dc, Decision::ImplicitDeny | Decision::ExplicitDeny { .. }),
                    "unknown = {:?}: {}", v, kind(&dc)
                );
                continue;
            }
            prop_assert_eq!(kind(&dc), kind(&d), "unknown = {:?}", v);
        }
    }

    #[test]
    fn fuzz_policy_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,a-zA-Z0-9 ]{0,300}",
    ]) {
        if let Ok(p) = Policy::parse(&text) {
            let _ = p.evaluate(&Request::new("arn:aws:iam::123456789012:root", "kms:Decrypt"));
        }
    }

    #[test]
    fn fuzz_policies_keep_iam_laws(
        stmts in prop::collection::vec(statement(), 0..6),
        req in request(),
    ) {
        let doc = json!({"Version": "2012-10-17", "Statement": stmts.clone()});
        let Ok(p) = Policy::from_value(&doc) else { return Ok(()); };
        let d = p.evaluate(&req);
        // Statement order does not matter.
        let mut rev = stmts.clone();
        rev.reverse();
        let r = Policy::from_value(&json!({"Statement": rev})).expect("same statements");
        prop_assert_eq!(kind(&r.evaluate(&req)), kind(&d));
        // An explicit deny of everything wins over any allow.
        let mut with_deny = stmts;
        with_deny.push(json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}));
        let dp = Policy::from_value(&json!({"Statement": with_deny})).expect("one more valid statement");
        prop_assert_eq!(kind(&dp.evaluate(&req)), "explicit deny");
    }

    #[test]
    fn fuzz_wildcards(p in "[a-c*?]{0,12}", t in "[a-cA-C]{0,40}") {
        // A pattern without wildcards matches only itself.
        if !p.contains(['*', '?']) {
            prop_assert_eq!(wildcard_match(&p, &t, false), p == t);
        }
        // "*" matches anything; a pattern matches itself when it has no '?'.
        prop_assert!(wildcard_match("*", &t, false));
        if !p.contains('?') {
            prop_assert!(wildcard_match(&p, &p.replace('*', ""), false));
        }
        // Ignoring case agrees with comparing lowercased texts.
        prop_assert_eq!(
            wildcard_match(&p, &t, true),
            wildcard_match(&p.to_ascii_lowercase(), &t.to_ascii_lowercase(), false)
        );
    }
}
