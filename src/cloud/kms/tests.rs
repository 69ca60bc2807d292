//! The KMS client and `verify_key` against moto's KMS server (see
//! `tests/support/moto_server.rs`: `CMK_VENV` must point at the venv; these
//! tests never skip).

use std::collections::{BTreeMap, BTreeSet};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;

use super::*;
use crate::rules::kms_policy::{self, PolicyInput};
use crate::rules::{ids::Partition, KeyFeature, Verdict};
use moto_server::{MotoServer, ACCOUNT_ID};

#[path = "../../../tests/support/moto_server.rs"]
mod moto_server;

async fn kms_in(m: &MotoServer, region: &str) -> Kms {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Kms::from_sdk_config(sdk, Some(&m.endpoint))
}

fn both() -> BTreeSet<KeyFeature> {
    [KeyFeature::ManagedServices, KeyFeature::Storage].into()
}

fn good_policy() -> String {
    kms_policy::to_canonical_json(
        &kms_policy::generate(&PolicyInput {
            use_cases: both(),
            aws_account_id: ACCOUNT_ID.into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: false,
            partition: Partition::Aws,
            databricks_principal: None,
            deployment: None,
        })
        .unwrap(),
    )
}

fn needs(region: Option<&str>) -> PolicyNeeds {
    needs_for(both(), false, None, None, region.map(str::to_string))
}

fn failures(o: &[Outcome]) -> Vec<(RuleId, Severity, String)> {
    o.iter()
        .filter(|o| o.verdict == Verdict::Fail)
        .map(|o| (o.rule, o.severity, o.message.clone()))
        .collect()
}

async fn good_key(kms: &Kms) -> KeyInfo {
    kms.create_key(Some(&good_policy()), "test", &BTreeMap::new(), false)
        .await
        .expect("create key")
}

#[tokio::test]
async fn good_key_passes_every_rule() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    let k = good_key(&kms).await;
    assert_eq!(k.state, "Enabled");
    assert_eq!(k.spec, "SYMMETRIC_DEFAULT");
    assert_eq!(k.region, "us-east-1");
    let out = kms.verify_key(&k.arn, &needs(Some("us-east-1"))).await;
    assert!(failures(&out).is_empty(), "{out:#?}");
    for r in [
        RuleId::KeyRegion,
        RuleId::SymmetricKey,
        RuleId::KeyUsable,
        RuleId::PolicyDatabricksGrants,
    ] {
        assert!(
            out.iter()
                .any(|o| o.rule == r && o.verdict == Verdict::Pass),
            "{r} passes: {out:#?}"
        );
    }
}

#[tokio::test]
async fn key_in_another_region_than_the_workspace_fails_cmk002() {
    let m = MotoServer::start();
    let west = kms_in(&m, "us-west-2").await;
    let k = good_key(&west).await;
    assert_eq!(k.region, "us-west-2");
    // A client configured for us-east-1 reaches the key in its own region.
    let east = kms_in(&m, "us-east-1").await;
    let out = east.verify_key(&k.arn, &needs(Some("us-east-1"))).await;
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:#?}");
    assert_eq!(f[0].0, RuleId::KeyRegion);
    assert!(f[0].2.contains("us-west-2") && f[0].2.contains("us-east-1"));
    // An ARN naming another region than the key's: the key is not there.
    let wrong = k.arn.replace("us-west-2", "us-east-1");
    let out = east.verify_key(&wrong, &needs(None)).await;
    let f = failures(&out);
    assert_eq!(f[0].0, RuleId::KeyUsable, "{out:#?}");
    assert!(f[0].2.contains("does not exist"));
}

#[tokio::test]
async fn asymmetric_key_fails_cmk003() {
    let m = MotoServer::start();
    let arn = m.boto3(
        "us-east-1",
        "print(kms.create_key(KeySpec='RSA_2048', KeyUsage='SIGN_VERIFY')['KeyMetadata']['Arn'])",
    );
    let kms = kms_in(&m, "us-east-1").await;
    kms.put_policy(&arn, &good_policy()).await.unwrap();
    let out = kms.verify_key(&arn, &needs(None)).await;
    let f = failures(&out);
    assert!(
        f.iter()
            .any(|x| x.0 == RuleId::SymmetricKey && x.2.contains("RSA_2048")),
        "{out:#?}"
    );
    assert!(
        f.iter()
            .any(|x| x.0 == RuleId::SymmetricKey && x.2.contains("SIGN_VERIFY")),
        "{out:#?}"
    );
}

#[tokio::test]
async fn disabled_and_pending_deletion_keys_fail_cmk004() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    let a = good_key(&kms).await;
    kms.disable(&a.arn).await.unwrap();
    let out = kms.verify_key(&a.arn, &needs(None)).await;
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:#?}");
    assert_eq!(f[0].0, RuleId::KeyUsable);
    assert!(f[0].2.contains("Disabled"));

    let b = good_key(&kms).await;
    let date = kms.schedule_deletion(&b.arn, 7).await.unwrap();
    assert!(!date.is_empty());
    let info = kms.describe(&b.arn).await.unwrap();
    assert_eq!(info.state, "PendingDeletion");
    assert!(info.deletion_date.is_some());
    let out = kms.verify_key(&b.arn, &needs(None)).await;
    let f = failures(&out);
    assert_eq!(f[0].0, RuleId::KeyUsable, "{out:#?}");
    assert!(f[0].2.contains("PendingDeletion"));
    // Cancelling leaves it Disabled, enabling makes it usable again.
    kms.cancel_deletion(&b.arn).await.unwrap();
    kms.enable(&b.arn).await.unwrap();
    assert!(failures(&kms.verify_key(&b.arn, &needs(None)).await).is_empty());
}

#[tokio::test]
async fn bad_policy_fails_cmk015() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    // moto's default key policy: the account root only.
    let k = kms
        .create_key(None, "no databricks", &BTreeMap::new(), false)
        .await
        .unwrap();
    let out = kms.verify_key(&k.arn, &needs(None)).await;
    let f = failures(&out);
    assert!(
        f.iter()
            .any(|x| x.0 == RuleId::PolicyDatabricksGrants && x.1 == Severity::Error),
        "{out:#?}"
    );
    // Managed services only in the policy, storage needed too.
    let ms_only = kms_policy::to_canonical_json(
        &kms_policy::generate(&PolicyInput {
            use_cases: [KeyFeature::ManagedServices].into(),
            aws_account_id: ACCOUNT_ID.into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: false,
            partition: Partition::Aws,
            databricks_principal: None,
            deployment: None,
        })
        .unwrap(),
    );
    kms.put_policy(&k.arn, &ms_only).await.unwrap();
    let f = failures(&kms.verify_key(&k.arn, &needs(None)).await);
    assert!(
        f.iter()
            .any(|x| x.0 == RuleId::PolicyDatabricksGrants && x.2.contains("STORAGE")),
        "{f:#?}"
    );
    // The real policy is read: fixing it fixes the verdict.
    kms.put_policy(&k.arn, &good_policy()).await.unwrap();
    assert!(failures(&kms.verify_key(&k.arn, &needs(None)).await).is_empty());
}

#[tokio::test]
async fn missing_key_and_malformed_arn() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    let arn =
        format!("arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-3333-4444-555555555555");
    let f = failures(&kms.verify_key(&arn, &needs(None)).await);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].0, f[0].1), (RuleId::KeyUsable, Severity::Error));
    let f = failures(&kms.verify_key("not-an-arn", &needs(None)).await);
    assert_eq!(f[0].0, RuleId::KeyArnWellFormed);
    assert!(kms.describe(&arn).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn deletion_window_is_checked_here_because_moto_does_not() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    let k = good_key(&kms).await;
    // moto answers a 3-day window with success but does nothing (real KMS
    // answers ValidationException): a provider trusting it would report a
    // deletion that never happened.
    let other = good_key(&kms).await;
    let moto_says = m.boto3(
        "us-east-1",
        &format!(
            "kms.schedule_key_deletion(KeyId={:?}, PendingWindowInDays=3)\nprint(kms.describe_key(KeyId={:?})['KeyMetadata']['KeyState'])",
            other.key_id, other.key_id
        ),
    );
    assert_eq!(moto_says, "Enabled");
    // ours refuses before calling KMS:
    for bad in [0, 6, 31] {
        let e = kms.schedule_deletion(&k.arn, bad).await.unwrap_err();
        assert!(matches!(e, KmsError::Config(_)), "{e}");
    }
    assert_eq!(kms.describe(&k.arn).await.unwrap().state, "Enabled");
}

#[tokio::test]
async fn aliases_tags_rotation_and_policy_round_trip() {
    let m = MotoServer::start();
    let kms = kms_in(&m, "us-east-1").await;
    let tags: BTreeMap<String, String> = [("team".to_string(), "data".to_string())].into();
    let k = kms
        .create_key(Some(&good_policy()), "d", &tags, false)
        .await
        .unwrap();
    assert_eq!(kms.tags(&k.arn).await.unwrap(), tags);
    kms.create_alias(&k.arn, "alias/one").await.unwrap();
    assert_eq!(kms.aliases(&k.key_id).await.unwrap(), vec!["alias/one"]);
    assert_eq!(kms.describe("alias/one").await.unwrap().arn, k.arn);
    kms.delete_alias(&k.arn, "alias/one").await.unwrap();
    assert!(kms.aliases(&k.key_id).await.unwrap().is_empty());
    let want: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
    kms.set_tags(&k.arn, &tags, &want).await.unwrap();
    assert_eq!(kms.tags(&k.arn).await.unwrap(), want);
    assert!(!kms.rotation_enabled(&k.arn).await.unwrap());
    kms.set_rotation(&k.arn, true).await.unwrap();
    assert!(kms.rotation_enabled(&k.arn).await.unwrap());
    assert!(policies_equivalent(
        &kms.get_policy(&k.arn).await.unwrap(),
        &good_policy()
    ));
    kms.update_description(&k.arn, "new").await.unwrap();
    assert_eq!(kms.describe(&k.arn).await.unwrap().description, "new");
    assert_eq!(kms.caller_account_id_via(&m.endpoint).await, ACCOUNT_ID);
}

impl Kms {
    /// STS against the emulator (the SDK config has no STS endpoint).
    async fn caller_account_id_via(&self, endpoint: &str) -> String {
        let conf = aws_sdk_sts::config::Builder::from(&self.sdk)
            .endpoint_url(endpoint)
            .build();
        aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send()
            .await
            .unwrap()
            .account()
            .unwrap()
            .to_string()
    }
}

/// A KMS endpoint that denies every call, as KMS does for a caller without
/// the permission (moto cannot: it enforces no IAM).
async fn denying_endpoint() -> String {
    let body = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform this operation"}"#;
    answering_endpoint(body.to_string(), "AccessDeniedException").await
}

/// A KMS endpoint that answers every call 400 with `body` and the error
/// type `code`.
async fn answering_endpoint(body: String, code: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = vec![];
                // Read headers and the body (Content-Length).
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let resp = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn access_denied_is_a_warning_naming_the_permission() {
    let endpoint = denying_endpoint().await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        // STS too: it denies GetCallerIdentity, so the caller's account is unknown.
        .endpoint_url(&endpoint)
        .load()
        .await;
    let kms = Kms::from_sdk_config(sdk, Some(&endpoint));
    let arn =
        format!("arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-3333-4444-555555555555");
    let out = kms.verify_key(&arn, &needs(None)).await;
    assert!(out.iter().all(|o| !o.is_error()), "{out:#?}");
    let f = failures(&out);
    assert!(
        f.iter()
            .any(|x| x.1 == Severity::Warning && x.2.contains("kms:DescribeKey")),
        "{out:#?}"
    );
    assert!(
        f.iter()
            .any(|x| x.1 == Severity::Warning && x.2.contains("kms:GetKeyPolicy")),
        "{out:#?}"
    );
}

#[tokio::test]
async fn one_crypto_provider_and_the_client_builds_after_it_is_installed() {
    crate::tfplugin::install_crypto_provider();
    let m = MotoServer::start();
    // The same path the provider takes (default chain, lazily), with the
    // emulator's endpoint; the call must work and nothing may panic.
    let settings = KmsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint: Some(m.endpoint.clone()),
        ..KmsSettings::default()
    };
    // The default chain reads credentials from the environment; give this
    // client static ones instead of touching the process environment.
    let kms = Kms::connect(&settings).await.expect("client builds");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let kms2 = Kms::from_sdk_config(sdk, settings.endpoint.as_deref());
    assert_eq!(kms.region().as_deref(), Some("us-east-1"));
    good_key(&kms2).await;
    // An https endpoint builds the rustls connector (nothing listens there).
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let tls = Kms::from_sdk_config(sdk, Some("https://127.0.0.1:9"));
    assert!(tls.describe("alias/x").await.is_err());
    let p = rustls::crypto::CryptoProvider::get_default().expect("a provider is installed");
    assert!(
        format!("{:?}", p.cipher_suites).contains("TLS13"),
        "aws-lc-rs provider in place"
    );
}

#[test]
fn policies_compare_semantically() {
    let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}"#;
    let b = r#"{
        "Statement": {"Resource": ["*"], "Action": ["kms:Decrypt", "kms:Encrypt"],
                      "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root"]}},
        "Version": "2012-10-17"
    }"#;
    assert!(policies_equivalent(a, b));
    assert!(!policies_equivalent(
        a,
        &a.replace("kms:Encrypt", "kms:Sign")
    ));
    assert!(check_deletion_window(7).is_ok() && check_deletion_window(30).is_ok());
    assert!(check_deletion_window(6).is_err() && check_deletion_window(31).is_err());
}

/// The central security account that holds the key.
const SECURITY_ACCOUNT: &str = "222222222222";

/// What the cross-account front of moto saw: (operation, KeyId).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// moto keeps AWS accounts apart (by the credentials STS AssumeRole
/// returns) but resolves every key in the caller's own account, even when
/// named by the ARN of another. This front adds what AWS documents on top of
/// moto and forwards everything else unchanged: a key named by the ARN of
/// another account is looked up in that account for the operations that
/// work across accounts (DescribeKey among them), and the others
/// (GetKeyPolicy among them) are refused as KMS refuses them. A bare key id
/// stays in the caller's account ("To specify a KMS key in a different AWS
/// account, you must use the key ARN or alias ARN"). The caller is moto's
/// default account (the test credentials).
async fn cross_account_front(moto: &str, seen: Seen) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    // AWS KMS's table of operations that accept a key of another account.
    const CROSS_ACCOUNT: &[&str] = &[
        "DescribeKey",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "CreateGrant",
        "ListGrants",
        "RevokeGrant",
        "RetireGrant",
        "GetKeyRotationStatus",
        "GetPublicKey",
        "Sign",
        "Verify",
    ];
    let moto = moto.to_string();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (moto, http, seen) = (moto.clone(), http.clone(), seen.clone());
            async move {
                let op = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|t| t.strip_prefix("TrentService."))
                    .unwrap_or_default()
                    .to_string();
                let key = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("KeyId").and_then(|k| k.as_str()).map(str::to_string))
                    .unwrap_or_default();
                if !op.is_empty() {
                    seen.lock().unwrap().push((op.clone(), key.clone()));
                }
                let owner = ids::parse_key_arn(&key).ok().map(|a| a.account_id);
                let mut req = http
                    .request(method, format!("{moto}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")))
                    .body(body.clone());
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        req = req.header(k, v);
                    }
                }
                match owner {
                    Some(acct) if acct != ACCOUNT_ID => {
                        if !CROSS_ACCOUNT.contains(&op.as_str()) {
                            let msg = format!("{op} does not work across accounts: {key}");
                            return (
                                StatusCode::BAD_REQUEST,
                                [("content-type", "application/x-amz-json-1.1")],
                                serde_json::json!({"__type": "AccessDeniedException", "message": msg})
                                    .to_string(),
                            )
                                .into_response();
                        }
                        req = req.header("x-moto-account-id", acct);
                    }
                    _ => {}
                }
                let r = req.send().await.unwrap();
                let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/x-amz-json-1.1")
                    .to_string();
                let bytes = r.bytes().await.unwrap();
                (status, [("content-type", ct)], bytes).into_response()
            }
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_key_of_another_account_is_verified_by_its_arn() {
    crate::tfplugin::install_crypto_provider();
    let m = MotoServer::start();
    // The key lives in the security account, created with the credentials
    // STS AssumeRole returns for a role there (moto keeps accounts apart by them).
    let policy = kms_policy::to_canonical_json(
        &kms_policy::generate(&PolicyInput {
            use_cases: both(),
            aws_account_id: SECURITY_ACCOUNT.into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: false,
            partition: Partition::Aws,
            databricks_principal: None,
            deployment: None,
        })
        .unwrap(),
    );
    let arn = m.boto3(
        "us-east-1",
        &format!(
            "sts = boto3.client('sts', region_name='us-east-1', endpoint_url={ep:?})\n\
             c = sts.assume_role(RoleArn='arn:aws:iam::{SECURITY_ACCOUNT}:role/key-admin', RoleSessionName='terraform')['Credentials']\n\
             k2 = boto3.client('kms', region_name='us-east-1', endpoint_url={ep:?}, aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n\
             print(k2.create_key(Policy={policy:?}, KeySpec='SYMMETRIC_DEFAULT', KeyUsage='ENCRYPT_DECRYPT')['KeyMetadata']['Arn'])",
            ep = m.endpoint
        ),
    );
    assert!(arn.contains(&format!(":{SECURITY_ACCOUNT}:key/")), "{arn}");
    let seen: Seen = Default::default();
    let front = cross_account_front(&m.endpoint, seen.clone()).await;
    // Terraform runs as the default account (123456789012).
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(&front)
        .load()
        .await;
    let kms = Kms::from_sdk_config(sdk, Some(&front));
    assert_eq!(kms.caller_account_id().await.unwrap(), ACCOUNT_ID);

    let out = kms.verify_key(&arn, &needs(Some("us-east-1"))).await;
    // Found by its ARN: enabled, symmetric, in the workspace's region.
    for r in [RuleId::KeyUsable, RuleId::SymmetricKey, RuleId::KeyRegion] {
        assert!(
            out.iter()
                .any(|o| o.rule == r && o.verdict == Verdict::Pass),
            "{r} passes: {out:#?}"
        );
    }
    // The policy cannot be read across accounts: one warning that says so.
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:#?}");
    assert_eq!(
        (f[0].0, f[0].1),
        (RuleId::PolicyDatabricksGrants, Severity::Warning)
    );
    assert!(
        f[0].2.contains("could not be read across accounts")
            && f[0].2.contains(SECURITY_ACCOUNT)
            && f[0].2.contains(ACCOUNT_ID),
        "{}",
        f[0].2
    );
    // Every KMS call named the key by its full ARN.
    let calls = seen.lock().unwrap().clone();
    assert!(
        calls.contains(&("DescribeKey".to_string(), arn.clone())),
        "{calls:?}"
    );
    assert!(calls.iter().all(|(_, k)| k == &arn), "{calls:?}");
    // What a bare key id would have done: look in the caller's account,
    // where there is no such key (the false CMK004 of before).
    let bare = ids::parse_key_arn(&arn).unwrap().key_id;
    assert!(kms.describe(&bare).await.unwrap_err().is_not_found());
}

// ------------------------------------------- timeouts, eventual consistency

#[path = "../../../tests/support/kms_lag_proxy.rs"]
mod kms_lag_proxy;

async fn kms_at(endpoint: &str, timeouts: KmsTimeouts) -> Kms {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Kms::from_sdk_config(sdk, Some(endpoint)).with_timeouts(timeouts)
}

/// A loopback endpoint that accepts connections and then either never
/// answers (`trickle` false) or answers one byte a second, forever.
async fn stalling_endpoint(trickle: bool) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n";
                for b in head.iter().cycle() {
                    if trickle && sock.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_kms_endpoint_that_never_answers_or_trickles_fails_in_bounded_time() {
    // The bound this test states: kms_request_timeout_seconds = 3 s ends the
    // call; 15 s leaves room for a loaded machine, far below "forever".
    let timeouts = KmsTimeouts {
        request: std::time::Duration::from_secs(3),
        ..KmsTimeouts::default()
    };
    for trickle in [false, true] {
        let endpoint = stalling_endpoint(trickle).await;
        let kms = kms_at(&endpoint, timeouts).await;
        let started = std::time::Instant::now();
        let e = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            kms.describe(
                "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
            ),
        )
        .await
        .expect("hang guard: the call returned")
        .expect_err("a silent endpoint is an error");
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(15),
            "trickle={trickle}: failed after {took:?}, bound 15 s"
        );
        let msg = e.to_string();
        assert!(
            matches!(e, KmsError::Transport { .. }) && msg.contains(&endpoint),
            "trickle={trickle}: the error names the endpoint: {msg}"
        );
        assert!(msg.contains("kms_request_timeout_seconds"), "{msg}");
    }
}

#[tokio::test]
async fn writes_are_waited_for_through_a_lagging_kms() {
    let m = MotoServer::start();
    let lag = std::time::Duration::from_millis(1500);
    let p = kms_lag_proxy::LagProxy::start(&m.endpoint, lag);
    let kms = kms_at(&p.endpoint, KmsTimeouts::default()).await;
    let tags: BTreeMap<String, String> = [("team".to_string(), "data".to_string())].into();
    // create_key waits until the key is visible.
    let k = kms
        .create_key(Some(&good_policy()), "d", &tags, false)
        .await
        .expect("create through the lag");
    assert!(p.stale_answers() > 0, "the lag was met: {:?}", p.requests());
    let d = Deadline::after(std::time::Duration::from_secs(60), "test");
    // Right after a write, reads show the old value; the waits end when
    // they show the new one.
    kms.set_rotation(&k.arn, true).await.unwrap();
    assert!(!kms.rotation_enabled(&k.arn).await.unwrap(), "read lags");
    kms.wait_rotation(&k.arn, true, d).await.unwrap();
    assert!(kms.rotation_enabled(&k.arn).await.unwrap());
    let want: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
    kms.set_tags(&k.arn, &tags, &want).await.unwrap();
    kms.wait_tags(&k.arn, &want, d).await.unwrap();
    assert_eq!(kms.tags(&k.arn).await.unwrap(), want, "no create token");
    kms.create_alias(&k.arn, "alias/lagging").await.unwrap();
    kms.wait_alias(&k.key_id, "alias/lagging", d).await.unwrap();
    kms.update_description(&k.arn, "new").await.unwrap();
    kms.wait_description(&k.arn, "new", d).await.unwrap();
    // Policy: compared as parsed JSON (KMS may reformat it).
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&good_policy()).unwrap(),
    )
    .unwrap();
    kms.put_policy(&k.arn, &pretty).await.unwrap();
    kms.wait_policy(&k.arn, &good_policy(), d).await.unwrap();
    // A wait that cannot end says so, naming the setting that bounds it.
    let short = Deadline::after(
        std::time::Duration::from_millis(300),
        "kms_update_timeout_seconds",
    );
    let e = kms.wait_rotation(&k.arn, false, short).await.unwrap_err();
    assert!(
        matches!(e, KmsError::NotPropagated { .. })
            && e.to_string().contains("kms_update_timeout_seconds")
            && e.to_string().contains(&k.arn),
        "{e}"
    );
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_by_its_token_not_made_twice() {
    let m = MotoServer::start();
    let p = kms_lag_proxy::LagProxy::start(&m.endpoint, std::time::Duration::from_millis(1000));
    let kms = kms_at(&p.endpoint, KmsTimeouts::default()).await;
    // KMS makes the key, but the answer is a 500: the create cannot tell.
    p.lose_answer_once("CreateKey");
    let k = kms
        .create_key(Some(&good_policy()), "lost answer", &BTreeMap::new(), false)
        .await
        .expect("the create recovers its key");
    let direct = kms_in(&m, "us-east-1").await;
    let ids = direct.key_ids().await.unwrap();
    assert_eq!(ids, vec![k.key_id.clone()], "exactly one key was made");
    assert_eq!(
        p.requests().get("CreateKey"),
        Some(&1),
        "CreateKey was not sent again: {:?}",
        p.requests()
    );
    assert!(
        direct.raw_tags(&k.arn).await.unwrap().is_empty(),
        "the create token is removed once the create is over"
    );
}

#[tokio::test]
async fn a_new_key_read_as_missing_is_retried_not_dropped() {
    let m = MotoServer::start();
    let p = kms_lag_proxy::LagProxy::start(&m.endpoint, std::time::Duration::from_millis(1500));
    let kms = kms_at(&p.endpoint, KmsTimeouts::default()).await;
    let d = Deadline::after(std::time::Duration::from_secs(60), "test");
    let made = kms
        .create_key_tagged(None, "", &BTreeMap::new(), false, &new_create_token(), d)
        .await
        .unwrap();
    // DescribeKey of a key this client just made retries NotFoundException.
    let seen = kms.describe(&made.arn).await.expect("found after the lag");
    assert_eq!(seen.key_id, made.key_id);
    // A key it did not make is not retried: NotFound at once.
    let other = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
    let started = std::time::Instant::now();
    assert!(kms.describe(other).await.unwrap_err().is_not_found());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn the_create_token_stays_until_the_create_finishes() {
    let m = MotoServer::start();
    let p = kms_lag_proxy::LagProxy::start(&m.endpoint, std::time::Duration::from_millis(1500));
    let kms = kms_at(&p.endpoint, KmsTimeouts::default()).await;
    let d = Deadline::after(std::time::Duration::from_secs(60), "test");
    let made = kms
        .create_key_tagged(None, "", &BTreeMap::new(), false, &new_create_token(), d)
        .await
        .unwrap();
    kms.wait_key_visible(&made.arn, d).await.unwrap();
    // Until the create finishes, the key reads as unfinished; reads of its
    // tags leave the token out.
    assert!(kms.create_unfinished(&made.arn).await.unwrap());
    assert_eq!(
        kms.tags_and_token(&made.arn).await.unwrap(),
        (BTreeMap::new(), true)
    );
    // finish_create returns only once reads (which lag the untag here) no
    // longer show the token: a finished key never reads as unfinished.
    kms.finish_create(&made.arn, d).await.unwrap();
    assert!(!kms.create_unfinished(&made.arn).await.unwrap());
    assert!(
        p.requests().get("ListResourceTags").copied().unwrap_or(0) >= 3,
        "the wait read the tags again: {:?}",
        p.requests()
    );
}

#[tokio::test]
async fn kms_calls_and_waits_stop_at_the_operation_deadline() {
    // The client's own bounds are far (60 s a call, minutes a wait); the
    // operation's deadline (retry_timeout_seconds, set by the protocol
    // layer for a refresh or plan) is 2 s away and ends both, naming the
    // call or the wait and the setting.
    let kms = kms_at(&stalling_endpoint(false).await, KmsTimeouts::default()).await;
    let key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
    let started = std::time::Instant::now();
    let e = crate::budget::scope(
        std::time::Instant::now() + std::time::Duration::from_secs(2),
        kms.describe(key),
    )
    .await
    .expect_err("a silent endpoint is an error");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1900) && took < std::time::Duration::from_secs(6),
        "ended at the operation's deadline: {took:?}"
    );
    let msg = e.to_string();
    assert!(matches!(e, KmsError::OutOfTime { .. }), "{msg}");
    assert!(
        msg.contains("kms:DescribeKey")
            && msg.contains(key)
            && msg.contains("retry_timeout_seconds"),
        "{msg}"
    );
    // A wait whose own deadline is minutes away ends at the operation's.
    let started = std::time::Instant::now();
    let e = crate::budget::scope(
        std::time::Instant::now() + std::time::Duration::from_secs(1),
        kms.wait_for(
            "key rotation on",
            key,
            Deadline::after(
                std::time::Duration::from_secs(600),
                "kms_update_timeout_seconds",
            ),
            || async { Ok::<Option<()>, KmsError>(None) },
        ),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let msg = e.to_string();
    assert!(
        matches!(e, KmsError::NotPropagated { .. })
            && msg.contains("key rotation on")
            && msg.contains("retry_timeout_seconds")
            && !msg.contains("kms_update_timeout_seconds"),
        "{msg}"
    );
    // Outside an operation's scope nothing changes: the wait keeps its own
    // deadline and setting.
    let e = kms
        .wait_for(
            "key rotation on",
            key,
            Deadline::after(
                std::time::Duration::from_millis(200),
                "kms_update_timeout_seconds",
            ),
            || async { Ok::<Option<()>, KmsError>(None) },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("kms_update_timeout_seconds"), "{e}");
}

#[tokio::test]
async fn kms_error_text_is_printable_and_cut_before_a_diagnostic() {
    // An error message with a terminal title (OSC ... BEL), a colour (ESC
    // [ ... m), a C1 CSI and 5000 more bytes, as a hostile endpoint could
    // send.
    let hostile = format!(
        "denied \u{1b}]0;pwned\u{7}\u{1b}[31mred\u{9b}2J {}",
        "x".repeat(5000)
    );
    let body =
        serde_json::json!({"__type": "KMSInvalidStateException", "message": hostile}).to_string();
    let endpoint = answering_endpoint(body, "KMSInvalidStateException").await;
    let kms = kms_at(&endpoint, KmsTimeouts::default()).await;
    let e = kms
        .describe("arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555")
        .await
        .unwrap_err();
    let KmsError::Service { code, message, .. } = &e else {
        panic!("a service refusal: {e}");
    };
    assert_eq!(code, "KMSInvalidStateException");
    let text = e.to_string();
    assert!(
        !text.chars().any(|c| c.is_control()),
        "no control character reaches the message: {text:?}"
    );
    assert!(
        message.starts_with("denied \\u{1b}]0;pwned\\u{7}\\u{1b}[31mred\\u{9b}2J xxx"),
        "escaped, not dropped: {message:?}"
    );
    assert!(
        message.len() < MESSAGE_MAX_BYTES + 40 && message.ends_with(" more bytes)"),
        "cut, with a note of what was left out: {} bytes, ends {:?}",
        message.len(),
        &message[message.len() - 30..]
    );
}

#[tokio::test]
async fn a_throttled_create_key_is_sent_again_and_makes_one_key() {
    let m = MotoServer::start();
    let p = kms_lag_proxy::LagProxy::start(&m.endpoint, std::time::Duration::ZERO);
    let kms = kms_at(&p.endpoint, KmsTimeouts::default()).await;
    // Three refusals for the request rate, then KMS takes it.
    p.throttle("CreateKey", 3);
    let started = std::time::Instant::now();
    let k = kms
        .create_key(None, "throttled", &BTreeMap::new(), false)
        .await
        .expect("the create waits out the throttling");
    assert_eq!(
        p.requests().get("CreateKey"),
        Some(&4),
        "{:?}",
        p.requests()
    );
    assert_eq!(
        p.requests().get("ListKeys"),
        None,
        "a refusal is not searched for: {:?}",
        p.requests()
    );
    // Backoff: pauses of 0.5 s, 1 s and 2 s, each with jitter down to half.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1750),
        "{:?}",
        started.elapsed()
    );
    let direct = kms_in(&m, "us-east-1").await;
    assert_eq!(direct.key_ids().await.unwrap(), vec![k.key_id.clone()]);

    // Throttled past the create's deadline: the throttling error, no key.
    p.throttle("CreateKey", 1000);
    let d = Deadline::after(
        std::time::Duration::from_secs(2),
        "kms_create_timeout_seconds",
    );
    let started = std::time::Instant::now();
    let e = kms
        .create_key_tagged(None, "", &BTreeMap::new(), false, &new_create_token(), d)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        matches!(&e, KmsError::Service { code, .. } if code == "ThrottlingException"),
        "{e}"
    );
    assert_eq!(direct.key_ids().await.unwrap().len(), 1, "no second key");
}

/// `use_fips_endpoint`: the SDK's own endpoint rules pick the FIPS host in
/// GovCloud and in commercial US regions, and the endpoint our messages
/// name is the one the SDK calls.
#[tokio::test]
async fn fips_endpoints_are_the_ones_the_sdk_resolves() {
    use aws_sdk_kms::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    for (region, fips, want) in [
        (
            "us-gov-west-1",
            true,
            "https://kms-fips.us-gov-west-1.amazonaws.com",
        ),
        (
            "us-gov-west-1",
            false,
            "https://kms.us-gov-west-1.amazonaws.com",
        ),
        (
            "us-gov-east-1",
            true,
            "https://kms-fips.us-gov-east-1.amazonaws.com",
        ),
        (
            "us-east-1",
            true,
            "https://kms-fips.us-east-1.amazonaws.com",
        ),
        ("eu-west-1", false, "https://kms.eu-west-1.amazonaws.com"),
    ] {
        let params = Params::builder()
            .region(region)
            .use_fips(fips)
            .use_dual_stack(false)
            .build()
            .expect("endpoint parameters");
        let resolved = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .expect("the SDK resolves an endpoint");
        assert_eq!(resolved.url(), want, "{region} fips={fips}");
        assert_eq!(crate::cloud::kms::default_endpoint(region, fips), want);
    }
    // Through the client the provider builds: the setting reaches the SDK's
    // configuration, and the message names the FIPS host.
    let kms = Kms::connect(&KmsSettings {
        region: Some("us-gov-west-1".into()),
        use_fips: Some(true),
        ..KmsSettings::default()
    })
    .await
    .expect("client builds without a call");
    assert_eq!(
        kms.endpoint(),
        "https://kms-fips.us-gov-west-1.amazonaws.com"
    );
    assert_eq!(kms.sdk_config().use_fips(), Some(true));
}
