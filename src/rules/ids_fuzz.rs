//! Fuzz targets of identifier parsing (`make fuzz` runs them with many
//! cases; `make test` with a few). Any input: no panic, a message of a
//! readable length, and what is accepted has the promised shape.

use proptest::prelude::*;

use super::*;

fn cases() -> u32 {
    crate::test_settings::fuzz_cases(256)
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_string)
}

/// Strings near the shapes parsed here, and anything at all.
fn id_like() -> impl Strategy<Value = String> {
    let hex = "[0-9a-fA-F]{0,14}";
    let uuidish = prop::collection::vec(hex, 0..7).prop_map(|p| p.join("-"));
    let part = prop_oneof![
        pick(&[
            "",
            "aws",
            "aws-cn",
            "aws-us-gov",
            "azure",
            "kms",
            "iam",
            "s3",
            "us-east-1",
            "us-gov-west-1",
            "useast1",
            "US-EAST-1",
            "eu-west-",
            "123456789012",
            "12345678901",
            "414351767826",
            "root",
            "key/",
            "alias/x",
            "role/",
            "role/a/b",
            "user/bob",
            "..",
            "%2e%2e",
            "?x=1",
            "#frag",
            "\\",
            "/",
            ":",
            "mrk-",
            "é",
            "\u{0}",
            "\u{202e}",
        ]),
        uuidish.clone(),
        any::<String>(),
    ];
    let arn = prop::collection::vec(part.clone(), 0..8).prop_map(|p| p.join(":"));
    let key_arn = (
        pick(&["aws", "aws-cn", "aws-us-gov", "awz"]),
        pick(&[
            "us-east-1",
            "eu-west-1",
            "us-gov-west-1",
            "x-y-1",
            "us-east-1a",
        ]),
        "[0-9]{10,13}",
        prop_oneof![uuidish.clone(), "mrk-[0-9a-f]{30,34}".prop_map(|s| s)],
    )
        .prop_map(|(p, r, a, k)| format!("arn:{p}:kms:{r}:{a}:key/{k}"));
    let composite = (uuidish.clone(), part.clone()).prop_map(|(a, b)| format!("{a}/{b}"));
    prop_oneof![
        any::<String>(),
        "[ -~]{0,2000}",
        arn,
        key_arn,
        uuidish,
        composite,
        "-?[0-9]{0,25}",
        part,
    ]
}

/// Two quoted values and the explanation at most.
const MESSAGE_LIMIT: usize = 700;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_key_arn_parsing(s in id_like()) {
        match parse_key_arn(&s) {
            Ok(k) => {
                let again = format!(
                    "arn:{}:kms:{}:{}:key/{}",
                    k.partition, k.region, k.account_id, k.key_id
                );
                prop_assert_eq!(&again, &s);
                prop_assert!(check_region(&k.region).is_ok());
                prop_assert!(check_aws_account_id(&k.account_id).is_ok());
                prop_assert_eq!(k.multi_region, k.key_id.starts_with("mrk-"));
            }
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT, "{} characters", e.0.len()),
        }
    }

    #[test]
    fn fuzz_role_and_principal_arn_parsing(s in id_like()) {
        match parse_role_arn(&s) {
            Ok(r) => {
                prop_assert!(!r.name.is_empty() && !r.name.ends_with('/'));
                prop_assert!(check_aws_account_id(&r.account_id).is_ok());
                prop_assert!(check_principal_arn(&s).is_ok());
            }
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        if let Err(e) = check_principal_arn(&s) {
            prop_assert!(e.0.len() < MESSAGE_LIMIT);
        }
    }

    #[test]
    fn fuzz_databricks_id_parsing(s in id_like()) {
        match KeyConfigId::parse(&s) {
            Ok(k) => {
                prop_assert_eq!(k.as_str().len(), 36);
                prop_assert!(k.as_str().bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
            }
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        match KeyConfigId::parse_import(&s) {
            Ok((a, k)) => {
                prop_assert!(KeyConfigId::parse(k.as_str()).is_ok());
                if let Some(a) = a {
                    prop_assert!(AccountId::parse(a.as_str()).is_ok());
                }
            }
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        match WorkspaceId::parse(&s) {
            Ok(w) => {
                prop_assert!(w.get() > 0);
                prop_assert_eq!(WorkspaceId::parse(&w.to_string()), Ok(w));
            }
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        match AccountId::parse(&s) {
            Ok(a) => prop_assert_eq!(a.as_str().len(), 36),
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        match check_deployment_name(&s) {
            Ok(()) => prop_assert!(
                s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            ),
            Err(e) => prop_assert!(e.0.len() < MESSAGE_LIMIT),
        }
        let q = quoted(&s);
        prop_assert!(q.len() < 160, "{}", q);
    }

    #[test]
    fn fuzz_workspace_ids_from_numbers(n in any::<i64>()) {
        prop_assert_eq!(WorkspaceId::new(n).is_ok(), n > 0);
    }
}
