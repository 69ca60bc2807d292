//! AWS KMS through `aws-sdk-kms`: the calls `cmk_kms_key` makes, and
//! [`Kms::verify_key`], which checks a key against Databricks' rules with the
//! real key's facts (DescribeKey, GetKeyPolicy) fed to the rule engine.
//!
//! Credentials come from `aws-config`'s default chain (environment, shared
//! config and profiles, SSO, container and instance roles). The provider's
//! `aws_region`, `aws_profile` and `kms_endpoint` override it; without
//! `kms_endpoint`, the SDK's own `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL`
//! keep working. A [`Kms`] is built at most once per provider configuration
//! and only when an operation needs it (see `support::Clients::kms`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::DateTimeFormat;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};

use crate::rules::facts::{KeyState, KmsKeyFacts};
use crate::rules::{check_kms_key, ids, Fact, Outcome, PolicyNeeds, RuleId, Severity, Subject};
use crate::text::{printable, MESSAGE_MAX_BYTES};

/// The only key policy name KMS knows.
pub const POLICY_NAME: &str = "default";

/// The tag the provider puts on a key in the `CreateKey` call itself, with a
/// random token of that one create (see [`Kms::create_key_tagged`]). It is
/// not one of the resource's `tags`: reads leave it out, tag changes never
/// touch it, and a create that finishes removes it.
pub const CREATE_TOKEN_TAG: &str = "terraform-provider-cmk:create-token";

/// Where and as whom to call KMS: the provider's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    /// The FIPS endpoints (`kms-fips.REGION.amazonaws.com`); `None`: the
    /// SDK's own setting (`AWS_USE_FIPS_ENDPOINT`, the profile's
    /// `use_fips_endpoint`). An explicit `endpoint` wins.
    pub use_fips: Option<bool>,
    pub timeouts: KmsTimeouts,
}

/// How long KMS work may take. `request` bounds one KMS call with the SDK's
/// own retries (the SDK's operation timeout); each attempt gets at most
/// [`KmsTimeouts::ATTEMPT`] (and `request`), the TCP connect at most
/// [`KmsTimeouts::CONNECT`], and an answer that stops (or trickles) at most
/// [`KmsTimeouts::READ`] between reads. `create`, `update` and `delete` bound
/// a whole `cmk_kms_key` operation, its waits for KMS's eventual consistency
/// included: KMS documents that reads can lag writes, so the defaults are
/// minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmsTimeouts {
    pub request: Duration,
    pub create: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl KmsTimeouts {
    pub const CONNECT: Duration = Duration::from_secs(10);
    pub const READ: Duration = Duration::from_secs(30);
    pub const ATTEMPT: Duration = Duration::from_secs(30);
    /// Attempts of one KMS call (the SDK's standard retry mode: throttling,
    /// 5xx and transport errors, with exponential backoff and jitter).
    pub const MAX_ATTEMPTS: u32 = 4;
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(60);
    pub const DEFAULT_CREATE: Duration = Duration::from_secs(600);
    pub const DEFAULT_UPDATE: Duration = Duration::from_secs(600);
    pub const DEFAULT_DELETE: Duration = Duration::from_secs(300);
}

impl Default for KmsTimeouts {
    fn default() -> Self {
        KmsTimeouts {
            request: Self::DEFAULT_REQUEST,
            create: Self::DEFAULT_CREATE,
            update: Self::DEFAULT_UPDATE,
            delete: Self::DEFAULT_DELETE,
        }
    }
}

/// Errors of KMS calls, classified for messages and decisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("the AWS configuration is incomplete: {0}")]
    Config(String),
    #[error("KMS key {key} was not found: {message}")]
    NotFound { key: String, message: String },
    #[error("access denied: the caller lacks {permission} on {key}: {message}")]
    AccessDenied {
        permission: &'static str,
        key: String,
        message: String,
    },
    #[error("KMS refused {action} on {key} ({code}): {message}")]
    Service {
        action: &'static str,
        key: String,
        code: String,
        message: String,
    },
    #[error("{action} on {key} failed at the KMS endpoint {endpoint}: {message}")]
    Transport {
        action: &'static str,
        key: String,
        endpoint: String,
        message: String,
    },
    /// The deadline of the whole Terraform operation (a refresh, a plan, an
    /// import) came while a KMS call was still waiting for its answer.
    #[error("{action} on {key} had no answer from the KMS endpoint {endpoint} when the time of the whole refresh, plan or import ran out (the provider's retry_timeout_seconds bounds every call of one operation together); check that the endpoint answers, or raise retry_timeout_seconds")]
    OutOfTime {
        action: &'static str,
        key: String,
        endpoint: String,
    },
    #[error("{what} on {key} did not show in KMS's reads within {waited} s (KMS is eventually consistent; the bound is {setting}): {last}")]
    NotPropagated {
        what: String,
        key: String,
        waited: u64,
        setting: &'static str,
        last: String,
    },
}

impl KmsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, KmsError::NotFound { .. })
    }
}

/// A deadline for a bounded wait, and the provider setting that sets it
/// (named in the error when it passes).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub setting: &'static str,
}

impl Deadline {
    /// `d` from now, or the deadline of the operation this runs in (see
    /// [`crate::budget`]) when that comes first. A resource's `timeouts`
    /// duration replaces `d` (and names itself as the setting).
    pub fn after(d: Duration, setting: &'static str) -> Deadline {
        if let Some(o) = crate::budget::overridden() {
            return Deadline {
                at: o.at,
                setting: o.setting,
            };
        }
        Deadline {
            at: Instant::now() + d,
            setting,
        }
        .clamped()
    }

    /// `d` from now whatever bounds the operation: for a step that must run
    /// even when the operation's time ran out (putting back a mark).
    pub fn own(d: Duration, setting: &'static str) -> Deadline {
        Deadline {
            at: Instant::now() + d,
            setting,
        }
    }

    /// This deadline, or the operation's when that comes first; it then
    /// names the setting that bounds the operation.
    pub fn clamped(self) -> Deadline {
        match crate::budget::current() {
            Some(op) if op < self.at => Deadline {
                at: op,
                setting: OPERATION_SETTING,
            },
            _ => self,
        }
    }
}

/// The provider setting that bounds a whole read-only operation (see
/// [`crate::budget`]).
pub const OPERATION_SETTING: &str = "retry_timeout_seconds";

fn classify<E, R>(endpoint: &str, action: &'static str, key: &str, e: SdkError<E, R>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let key = key.to_string();
    // What KMS (or whatever answers at the endpoint) says is quoted in
    // diagnostics: made printable and cut first.
    let message = printable(
        &e.message()
            .map(str::to_string)
            .unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
        MESSAGE_MAX_BYTES,
    );
    match e.code() {
        Some("NotFoundException") => KmsError::NotFound { key, message },
        Some("AccessDeniedException" | "AccessDenied") => KmsError::AccessDenied {
            permission: action,
            key,
            message,
        },
        Some(code) => KmsError::Service {
            action,
            key,
            code: printable(code, CODE_MAX_BYTES),
            message,
        },
        None => KmsError::Transport {
            action,
            key,
            endpoint: endpoint.to_string(),
            message: transport_message(&e),
        },
    }
}

/// The longest error code a message quotes.
const CODE_MAX_BYTES: usize = 100;

/// What went wrong below KMS's answers, for a person (printable: the SDK's
/// error chain can quote what the endpoint sent).
fn transport_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    printable(&transport_text(e), MESSAGE_MAX_BYTES)
}

fn transport_text<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e {
        SdkError::TimeoutError(_) => "no complete answer within the time allowed for the call (the provider's kms_request_timeout_seconds, retries included)".to_string(),
        SdkError::DispatchFailure(d) if d.is_timeout() => format!(
            "timed out (connect within {} s, each attempt within {} s): {}",
            KmsTimeouts::CONNECT.as_secs(),
            KmsTimeouts::ATTEMPT.as_secs(),
            root_cause(e)
        ),
        // The SDK's own rendering of a connection error nests the Rust
        // debug form of its layers; a person needs the last cause
        // ("Connection refused (os error 111)").
        SdkError::DispatchFailure(d) if d.is_io() => {
            format!("the connection failed: {}", root_cause(e))
        }
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// The innermost cause of an error chain, as its own message.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    for _ in 0..32 {
        match cur.source() {
            Some(s) => cur = s,
            None => break,
        }
    }
    cur.to_string()
}

/// Whether a failed write may still have happened: no answer, or a 5xx.
/// A 4xx answer (throttling included) is a refusal: nothing was done.
fn ambiguous<E>(e: &SdkError<E, aws_sdk_kms::config::http::HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(s) => s.raw().status().as_u16() >= 500,
        SdkError::ResponseError(r) => {
            let code = r.raw().status().as_u16();
            !(400..500).contains(&code)
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

/// What DescribeKey says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub arn: String,
    pub key_id: String,
    /// The region in the key's ARN.
    pub region: String,
    /// AWS's spelling, e.g. `Enabled`, `PendingDeletion`.
    pub state: String,
    pub spec: String,
    pub usage: String,
    pub description: String,
    pub multi_region: bool,
    /// RFC 3339, when deletion is scheduled.
    pub deletion_date: Option<String>,
}

/// A KMS client for one provider configuration.
#[derive(Debug, Clone)]
pub struct Kms {
    sdk: SdkConfig,
    conf: aws_sdk_kms::Config,
    /// The endpoint named in transport errors: the configured one, or KMS's
    /// regional endpoint.
    endpoint: String,
    timeouts: KmsTimeouts,
    /// The caller's account, asked once (STS), when a check needs it.
    caller: std::sync::Arc<tokio::sync::OnceCell<Option<String>>>,
    /// Keys this client created (key id -> when CreateKey answered). A read
    /// of one of them that answers NotFoundException within the create
    /// timeout is KMS's eventual consistency, not a deleted key: it is
    /// retried (see [`Kms::describe`]).
    created: Arc<Mutex<HashMap<String, Instant>>>,
}

fn timeout_config(t: &KmsTimeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(KmsTimeouts::CONNECT.min(t.request))
        .read_timeout(KmsTimeouts::READ.min(t.request))
        .operation_attempt_timeout(KmsTimeouts::ATTEMPT.min(t.request))
        .operation_timeout(t.request)
        .build()
}

fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(KmsTimeouts::MAX_ATTEMPTS)
}

impl Kms {
    /// Loads the default credential chain with the provider's overrides.
    pub async fn connect(settings: &KmsSettings) -> Result<Kms, KmsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeout_config(&settings.timeouts))
            .retry_config(retry_config());
        if let Some(r) = &settings.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(f) = settings.use_fips {
            loader = loader.use_fips(f);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(KmsError::Config(
                "no AWS region: set the provider's aws_region, AWS_REGION, or a region in the AWS profile".into(),
            ));
        }
        Ok(
            Kms::from_sdk_config(sdk, settings.endpoint.as_deref())
                .with_timeouts(settings.timeouts),
        )
    }

    /// A client from an explicit SDK configuration (tests, embedding), with
    /// the default [`KmsTimeouts`].
    pub fn from_sdk_config(sdk: SdkConfig, endpoint: Option<&str>) -> Kms {
        let timeouts = KmsTimeouts::default();
        let mut b = aws_sdk_kms::config::Builder::from(&sdk)
            .timeout_config(timeout_config(&timeouts))
            .retry_config(retry_config());
        if let Some(e) = endpoint {
            b = b.endpoint_url(e);
        }
        let conf = b.build();
        let endpoint = match endpoint {
            Some(e) => e.to_string(),
            None => match conf.region() {
                Some(r) => default_endpoint(r.as_ref(), sdk.use_fips() == Some(true)),
                None => "of the AWS SDK's configuration".to_string(),
            },
        };
        Kms {
            sdk,
            conf,
            endpoint,
            timeouts,
            caller: Default::default(),
            created: Default::default(),
        }
    }

    /// The same client with other timeouts.
    pub fn with_timeouts(mut self, timeouts: KmsTimeouts) -> Kms {
        self.conf = self
            .conf
            .to_builder()
            .timeout_config(timeout_config(&timeouts))
            .build();
        self.timeouts = timeouts;
        self
    }

    pub fn timeouts(&self) -> KmsTimeouts {
        self.timeouts
    }

    fn err<E, R>(&self, action: &'static str, key: &str, e: SdkError<E, R>) -> KmsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        classify(&self.endpoint, action, key, e)
    }

    /// Awaits one KMS call (`send`), classifying its error. Inside a
    /// read-only operation (see [`crate::budget`]) the wait stops at the
    /// operation's deadline, with [`KmsError::OutOfTime`] naming the call:
    /// the SDK's own timeouts are per call and would let a silent endpoint
    /// outlast the operation.
    async fn within<T, E, R>(
        &self,
        action: &'static str,
        key: &str,
        send: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, KmsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let answer = match crate::budget::current() {
            Some(at) => match tokio::time::timeout_at(at.into(), send).await {
                Ok(a) => a,
                Err(_) => {
                    return Err(KmsError::OutOfTime {
                        action,
                        key: key.to_string(),
                        endpoint: self.endpoint.clone(),
                    })
                }
            },
            None => send.await,
        };
        answer.map_err(|e| self.err(action, key, e))
    }

    /// The endpoint calls go to (for messages).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The AWS SDK configuration the client was built from.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The configured region.
    pub fn region(&self) -> Option<String> {
        self.conf.region().map(|r| r.to_string())
    }

    fn client(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(self.conf.clone())
    }

    /// A client for the region in `key` when it is a key ARN (KMS answers
    /// only for keys of the endpoint's region), and the key to send: always
    /// `key` as given. A key ARN stays an ARN: KMS finds a key of another AWS
    /// account only by its ARN ("To specify a KMS key in a different AWS
    /// account, you must use the key ARN or alias ARN"), and a bare id would
    /// look in the caller's own account.
    fn client_for(&self, key: &str) -> (aws_sdk_kms::Client, String) {
        match ids::parse_key_arn(key) {
            Ok(arn) if Some(arn.region.as_str()) != self.conf.region().map(|r| r.as_ref()) => {
                let conf = self
                    .conf
                    .to_builder()
                    .region(Region::new(arn.region))
                    .build();
                (aws_sdk_kms::Client::from_conf(conf), key.to_string())
            }
            _ => (self.client(), key.to_string()),
        }
    }

    /// For the calls KMS allows on a key of the caller's own account only
    /// (its "Cross-account use: No" calls that change a key's state:
    /// EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion): the
    /// client of the ARN's region and the bare key id, which KMS reads
    /// exactly as the ARN there. (moto 5.2 resolves only bare ids for these
    /// four.)
    fn own_account_client_for(&self, key: &str) -> (aws_sdk_kms::Client, String) {
        let (c, k) = self.client_for(key);
        match ids::parse_key_arn(&k) {
            Ok(arn) => (c, arn.key_id),
            Err(_) => (c, k),
        }
    }

    /// The caller's account, asked once; `None` when STS does not answer.
    async fn caller_account_cached(&self) -> Option<String> {
        self.caller
            .get_or_init(|| async { self.caller_account_id().await.ok() })
            .await
            .clone()
    }

    /// The caller's AWS account (STS GetCallerIdentity).
    pub async fn caller_account_id(&self) -> Result<String, KmsError> {
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.sdk)
                .timeout_config(timeout_config(&self.timeouts))
                .retry_config(retry_config())
                .build(),
        );
        let out = self
            .within(
                "sts:GetCallerIdentity",
                "the caller",
                sts.get_caller_identity().send(),
            )
            .await?;
        out.account().map(str::to_string).ok_or_else(|| {
            KmsError::Config("STS GetCallerIdentity answered without an account".into())
        })
    }

    /// DescribeKey: accepts a key id, key ARN, alias name or alias ARN. A
    /// key this client created answers NotFoundException for a while (KMS is
    /// eventually consistent): for such a key the call is retried, with
    /// backoff, until the create timeout after its creation.
    pub async fn describe(&self, key: &str) -> Result<KeyInfo, KmsError> {
        match self.describe_once(key).await {
            Err(e) if e.is_not_found() => match self.created_until(key) {
                Some(until) => {
                    let d = Deadline {
                        at: until,
                        setting: "kms_create_timeout_seconds",
                    };
                    self.wait_for("the new key", key, d, || async {
                        self.describe_once(key).await.map(Some)
                    })
                    .await
                    .map_err(|w| match w {
                        KmsError::NotPropagated { .. } => e.clone(),
                        other => other,
                    })
                }
                None => Err(e),
            },
            other => other,
        }
    }

    /// Until when a NotFoundException about `key` is taken for propagation
    /// (a key this client created, within the create timeout).
    fn created_until(&self, key: &str) -> Option<Instant> {
        let id = ids::parse_key_arn(key)
            .map(|a| a.key_id)
            .unwrap_or_else(|_| key.to_string());
        let created = self.created.lock().ok()?.get(&id).copied()?;
        let until = created + self.timeouts.create;
        (Instant::now() < until).then_some(until)
    }

    async fn describe_once(&self, key: &str) -> Result<KeyInfo, KmsError> {
        let (c, id) = self.client_for(key);
        let out = self
            .within("kms:DescribeKey", key, c.describe_key().key_id(id).send())
            .await?;
        let m = out.key_metadata().ok_or_else(|| KmsError::Service {
            action: "kms:DescribeKey",
            key: key.to_string(),
            code: "NoMetadata".into(),
            message: "DescribeKey answered without key metadata".into(),
        })?;
        Ok(key_info(m))
    }

    /// GetKeyPolicy with the policy name `default`.
    pub async fn get_policy(&self, key: &str) -> Result<String, KmsError> {
        let (c, id) = self.client_for(key);
        let out = self
            .within(
                "kms:GetKeyPolicy",
                key,
                c.get_key_policy()
                    .key_id(id)
                    .policy_name(POLICY_NAME)
                    .send(),
            )
            .await?;
        Ok(out.policy().unwrap_or_default().to_string())
    }

    pub async fn put_policy(&self, key: &str, policy: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        self.within(
            "kms:PutKeyPolicy",
            key,
            c.put_key_policy()
                .key_id(id)
                .policy_name(POLICY_NAME)
                .policy(policy)
                .send(),
        )
        .await?;
        Ok(())
    }

    /// CreateKey (always SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT), then waits
    /// until KMS's reads show the key, and removes the create token: for
    /// callers that need no partial result (tests, tools). `cmk_kms_key`
    /// takes the steps one by one, so that a key is in its state as soon as
    /// CreateKey has answered.
    pub async fn create_key(
        &self,
        policy: Option<&str>,
        description: &str,
        tags: &BTreeMap<String, String>,
        multi_region: bool,
    ) -> Result<KeyInfo, KmsError> {
        let deadline = Deadline::after(self.timeouts.create, "kms_create_timeout_seconds");
        let token = new_create_token();
        let made = self
            .create_key_tagged(policy, description, tags, multi_region, &token, deadline)
            .await?;
        let info = self.wait_key_visible(&made.arn, deadline).await?;
        self.finish_create(&info.arn, deadline).await?;
        Ok(info)
    }

    /// CreateKey with the tag [`CREATE_TOKEN_TAG`] = `token` (a fresh
    /// [`new_create_token`] per create) among the tags, so that one create
    /// never makes two keys:
    ///
    /// - the SDK's own retries are off for this call: after a lost answer
    ///   they would send CreateKey again and make a second key;
    /// - an answer that refuses (any 4xx) means no key was made: the error
    ///   is returned, except for throttling (`ThrottlingException`), after
    ///   which CreateKey is sent again, with backoff and jitter, until
    ///   `deadline`;
    /// - no answer (timeout, dropped connection) or a 5xx may hide a key that
    ///   was made: the account's keys are searched for the token (ListKeys,
    ///   then the tags of each key) for up to [`CREATE_SEARCH`], since KMS
    ///   also lists a new key late. A key found is this create's key;
    ///   otherwise CreateKey is sent again, with the same token, until
    ///   `deadline`.
    ///
    /// Why a random token and not one derived from the resource's arguments:
    /// Terraform does not tell a provider the resource's address, so two
    /// resources with the same arguments (`count`, `for_each`) would carry
    /// the same token, and one could take the other's key. The search runs
    /// only after an ambiguous failure of this create, in this process; a
    /// provider killed between CreateKey and its answer to Terraform leaves
    /// a key tagged with the token, which `aws kms list-resource-tags` finds.
    ///
    /// Returns what CreateKey (or the search) answered; KMS's reads may not
    /// show the key yet: see [`Kms::wait_key_visible`].
    pub async fn create_key_tagged(
        &self,
        policy: Option<&str>,
        description: &str,
        tags: &BTreeMap<String, String>,
        multi_region: bool,
        token: &str,
        deadline: Deadline,
    ) -> Result<KeyInfo, KmsError> {
        let mut all = tags.clone();
        all.insert(CREATE_TOKEN_TAG.to_string(), token.to_string());
        let mut pause = Duration::from_millis(500);
        loop {
            let mut req = self
                .client()
                .create_key()
                .key_spec(KeySpec::SymmetricDefault)
                .key_usage(KeyUsageType::EncryptDecrypt)
                .multi_region(multi_region)
                .description(description);
            if let Some(p) = policy {
                req = req.policy(p);
            }
            for t in to_tags(&all)? {
                req = req.tags(t);
            }
            let answer = req
                .customize()
                .config_override(
                    aws_sdk_kms::config::Builder::default()
                        .retry_config(RetryConfig::standard().with_max_attempts(1)),
                )
                .send()
                .await;
            let e = match answer {
                Ok(out) => {
                    let Some(m) = out.key_metadata() else {
                        return Err(KmsError::Service {
                            action: "kms:CreateKey",
                            key: "a new key".into(),
                            code: "NoMetadata".into(),
                            message: "CreateKey answered without key metadata".into(),
                        });
                    };
                    let info = key_info(m);
                    self.remember_created(&info.key_id);
                    return Ok(info);
                }
                Err(e) => e,
            };
            let maybe_made = ambiguous(&e);
            let throttled = is_throttling(&e);
            let err = self.err("kms:CreateKey", "a new key", e);
            if throttled {
                // A refusal: no key was made, so no search. Sent again after
                // a pause, with jitter so that parallel creates spread out.
                let wait = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
                if Instant::now() + wait >= deadline.at {
                    return Err(err);
                }
                tracing::debug!(error = %err, "CreateKey throttled: sent again after {wait:?}");
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(CREATE_MAX_PAUSE);
                continue;
            }
            if !maybe_made {
                return Err(err);
            }
            tracing::debug!(error = %err, "CreateKey without a clear answer: searching for its token");
            let search = Deadline {
                at: deadline.at.min(Instant::now() + CREATE_SEARCH),
                setting: deadline.setting,
            };
            if let Some(info) = self.find_by_create_token(token, search).await {
                self.remember_created(&info.key_id);
                return Ok(info);
            }
            if Instant::now() + pause >= deadline.at {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(CREATE_MAX_PAUSE);
        }
    }

    fn remember_created(&self, key_id: &str) {
        if let Ok(mut c) = self.created.lock() {
            let now = Instant::now();
            let keep = self.timeouts.create;
            c.retain(|_, t| now.duration_since(*t) < keep);
            c.insert(key_id.to_string(), now);
        }
    }

    /// The key tagged with this create token, searched until `search`.
    async fn find_by_create_token(&self, token: &str, search: Deadline) -> Option<KeyInfo> {
        let mut pause = Duration::from_millis(250);
        loop {
            match self.key_ids().await {
                Ok(ids) => {
                    for id in ids {
                        let Ok(tags) = self.raw_tags(&id).await else {
                            continue;
                        };
                        if tags.get(CREATE_TOKEN_TAG).map(String::as_str) == Some(token) {
                            if let Ok(info) = self.describe_once(&id).await {
                                return Some(info);
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "ListKeys failed while searching"),
            }
            if Instant::now() + pause >= search.at {
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Every key id of the account in the client's region (ListKeys).
    pub async fn key_ids(&self) -> Result<Vec<String>, KmsError> {
        let mut ids = vec![];
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .within(
                    "kms:ListKeys",
                    "the account's keys",
                    self.client().list_keys().set_marker(marker.clone()).send(),
                )
                .await?;
            ids.extend(
                out.keys()
                    .iter()
                    .filter_map(|k| k.key_id().map(str::to_string)),
            );
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => return Ok(ids),
            }
        }
    }

    /// Whether the key still carries [`CREATE_TOKEN_TAG`]: the create that
    /// made it never finished (the tag goes in CreateKey itself and comes
    /// off as the create's last step, see `cmk_kms_key`).
    pub async fn create_unfinished(&self, key: &str) -> Result<bool, KmsError> {
        Ok(self.raw_tags(key).await?.contains_key(CREATE_TOKEN_TAG))
    }

    /// Removes [`CREATE_TOKEN_TAG`], the create's last step, and waits until
    /// KMS's reads no longer show it: a key that reads as tagged is taken
    /// for an unfinished create (see [`Kms::create_unfinished`]), so a
    /// finished key must never read that way.
    pub async fn finish_create(&self, key: &str, d: Deadline) -> Result<(), KmsError> {
        self.remove_create_token(key).await?;
        self.wait_create_token_gone(key, d).await
    }

    /// Waits until KMS's reads no longer show [`CREATE_TOKEN_TAG`] on the key.
    pub async fn wait_create_token_gone(&self, key: &str, d: Deadline) -> Result<(), KmsError> {
        self.wait_for("the removal of the create token tag", key, d, || async {
            Ok((!self.create_unfinished(key).await?).then_some(()))
        })
        .await
    }

    /// Puts [`CREATE_TOKEN_TAG`] = `token` back on a key whose create turned
    /// out not to finish after the tag was removed, and waits until KMS's
    /// reads show it (the next apply decides by them whether the key may be
    /// replaced).
    pub async fn restore_create_token(
        &self,
        key: &str,
        token: &str,
        d: Deadline,
    ) -> Result<(), KmsError> {
        let want: BTreeMap<String, String> =
            [(CREATE_TOKEN_TAG.to_string(), token.to_string())].into();
        self.set_tags(key, &BTreeMap::new(), &want).await?;
        self.wait_for("the create token tag put back", key, d, || async {
            Ok(self.create_unfinished(key).await?.then_some(()))
        })
        .await
    }

    /// Removes [`CREATE_TOKEN_TAG`] (without waiting for reads to show it).
    pub async fn remove_create_token(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        self.within(
            "kms:UntagResource",
            key,
            c.untag_resource()
                .key_id(id)
                .tag_keys(CREATE_TOKEN_TAG)
                .send(),
        )
        .await?;
        Ok(())
    }

    // -------------------------------------------------- waits for propagation

    /// Polls `check` until it gives a value, with backoff (50 ms doubling to
    /// 500 ms), until `deadline`. NotFoundException is "not yet" (a new key);
    /// any other error ends the wait.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        key: &str,
        deadline: Deadline,
        mut check: F,
    ) -> Result<T, KmsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, KmsError>>,
    {
        let deadline = deadline.clamped();
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let last = match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => "KMS still answers the value from before the change".to_string(),
                Err(e) if e.is_not_found() => e.to_string(),
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            if now >= deadline.at {
                return Err(KmsError::NotPropagated {
                    what: what.to_string(),
                    key: key.to_string(),
                    waited: now.duration_since(start).as_secs(),
                    setting: deadline.setting,
                    last,
                });
            }
            tokio::time::sleep(pause.min(deadline.at - now)).await;
            pause = (pause * 2).min(WAIT_MAX_PAUSE);
        }
    }

    /// Waits until DescribeKey finds a new key.
    pub async fn wait_key_visible(&self, key: &str, d: Deadline) -> Result<KeyInfo, KmsError> {
        self.wait_for("the new key", key, d, || async {
            self.describe_once(key).await.map(Some)
        })
        .await
    }

    /// Waits until DescribeKey shows the key in one of `states`.
    pub async fn wait_key_state(
        &self,
        key: &str,
        states: &[&str],
        d: Deadline,
    ) -> Result<KeyInfo, KmsError> {
        let what = format!("the key state {}", states.join(" or "));
        self.wait_for(&what, key, d, || async {
            let k = self.describe_once(key).await?;
            Ok(states.contains(&k.state.as_str()).then_some(k))
        })
        .await
    }

    /// Waits until GetKeyPolicy answers a policy equivalent to `want` (parsed
    /// JSON compared, see [`policies_equivalent`]).
    pub async fn wait_policy(&self, key: &str, want: &str, d: Deadline) -> Result<(), KmsError> {
        self.wait_for("the new key policy", key, d, || async {
            let p = self.get_policy(key).await?;
            Ok(policies_equivalent(&p, want).then_some(()))
        })
        .await
    }

    /// Waits until ListAliases of the key lists `alias`.
    pub async fn wait_alias(&self, key_id: &str, alias: &str, d: Deadline) -> Result<(), KmsError> {
        let what = format!("the alias {alias}");
        self.wait_for(&what, key_id, d, || async {
            let list = self.aliases(key_id).await?;
            Ok(list.iter().any(|a| a == alias).then_some(()))
        })
        .await
    }

    /// Waits until GetKeyRotationStatus answers `enabled`.
    pub async fn wait_rotation(
        &self,
        key: &str,
        enabled: bool,
        d: Deadline,
    ) -> Result<(), KmsError> {
        let what = format!("key rotation {}", if enabled { "on" } else { "off" });
        self.wait_for(&what, key, d, || async {
            Ok((self.rotation_enabled(key).await? == enabled).then_some(()))
        })
        .await
    }

    /// Waits until the key's tags are exactly `want`.
    pub async fn wait_tags(
        &self,
        key: &str,
        want: &BTreeMap<String, String>,
        d: Deadline,
    ) -> Result<(), KmsError> {
        self.wait_for("the new tags", key, d, || async {
            Ok((&self.tags(key).await? == want).then_some(()))
        })
        .await
    }

    /// Waits until DescribeKey shows `description`.
    pub async fn wait_description(
        &self,
        key: &str,
        description: &str,
        d: Deadline,
    ) -> Result<(), KmsError> {
        self.wait_for("the new description", key, d, || async {
            Ok((self.describe_once(key).await?.description == description).then_some(()))
        })
        .await
    }

    /// Alias names (`alias/...`) pointing at the key.
    pub async fn aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError> {
        let mut names = vec![];
        let mut marker: Option<String> = None;
        loop {
            let (c, id) = self.client_for(key_id);
            let out = self
                .within(
                    "kms:ListAliases",
                    key_id,
                    c.list_aliases()
                        .key_id(id)
                        .set_marker(marker.clone())
                        .send(),
                )
                .await?;
            names.extend(
                out.aliases()
                    .iter()
                    .filter_map(|a| a.alias_name().map(str::to_string)),
            );
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => return Ok(names),
            }
        }
    }

    pub async fn create_alias(&self, key_arn: &str, alias: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key_arn);
        self.within(
            "kms:CreateAlias",
            alias,
            c.create_alias().alias_name(alias).target_key_id(id).send(),
        )
        .await?;
        Ok(())
    }

    /// `key_arn` picks the region.
    pub async fn delete_alias(&self, key_arn: &str, alias: &str) -> Result<(), KmsError> {
        let (c, _) = self.client_for(key_arn);
        self.within(
            "kms:DeleteAlias",
            alias,
            c.delete_alias().alias_name(alias).send(),
        )
        .await?;
        Ok(())
    }

    pub async fn update_description(&self, key: &str, description: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        self.within(
            "kms:UpdateKeyDescription",
            key,
            c.update_key_description()
                .key_id(id)
                .description(description)
                .send(),
        )
        .await?;
        Ok(())
    }

    pub async fn rotation_enabled(&self, key: &str) -> Result<bool, KmsError> {
        let (c, id) = self.client_for(key);
        let out = self
            .within(
                "kms:GetKeyRotationStatus",
                key,
                c.get_key_rotation_status().key_id(id).send(),
            )
            .await?;
        Ok(out.key_rotation_enabled())
    }

    pub async fn set_rotation(&self, key: &str, enabled: bool) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        if enabled {
            self.within(
                "kms:EnableKeyRotation",
                key,
                c.enable_key_rotation().key_id(&id).send(),
            )
            .await?;
        } else {
            self.within(
                "kms:DisableKeyRotation",
                key,
                c.disable_key_rotation().key_id(&id).send(),
            )
            .await?;
        }
        Ok(())
    }

    /// The key's tags, without the provider's [`CREATE_TOKEN_TAG`].
    pub async fn tags(&self, key: &str) -> Result<BTreeMap<String, String>, KmsError> {
        Ok(self.tags_and_token(key).await?.0)
    }

    /// The key's tags without [`CREATE_TOKEN_TAG`], and whether that tag
    /// was on it (see [`Kms::create_unfinished`]).
    pub async fn tags_and_token(
        &self,
        key: &str,
    ) -> Result<(BTreeMap<String, String>, bool), KmsError> {
        let mut tags = self.raw_tags(key).await?;
        let token = tags.remove(CREATE_TOKEN_TAG).is_some();
        Ok((tags, token))
    }

    async fn raw_tags(&self, key: &str) -> Result<BTreeMap<String, String>, KmsError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let (c, id) = self.client_for(key);
            let out = self
                .within(
                    "kms:ListResourceTags",
                    key,
                    c.list_resource_tags()
                        .key_id(id)
                        .set_marker(marker.clone())
                        .send(),
                )
                .await?;
            for t in out.tags() {
                tags.insert(t.tag_key().to_string(), t.tag_value().to_string());
            }
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => return Ok(tags),
            }
        }
    }

    /// Makes the key's tags exactly `want` (tags first, then untags).
    pub async fn set_tags(
        &self,
        key: &str,
        have: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        let changed: BTreeMap<String, String> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            self.within(
                "kms:TagResource",
                key,
                c.tag_resource()
                    .key_id(&id)
                    .set_tags(Some(to_tags(&changed)?))
                    .send(),
            )
            .await?;
        }
        let removed: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        if !removed.is_empty() {
            self.within(
                "kms:UntagResource",
                key,
                c.untag_resource()
                    .key_id(&id)
                    .set_tag_keys(Some(removed))
                    .send(),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn enable(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        self.within("kms:EnableKey", key, c.enable_key().key_id(id).send())
            .await?;
        Ok(())
    }

    pub async fn disable(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        self.within("kms:DisableKey", key, c.disable_key().key_id(id).send())
            .await?;
        Ok(())
    }

    /// Cancels a scheduled deletion; the key is then Disabled.
    pub async fn cancel_deletion(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        self.within(
            "kms:CancelKeyDeletion",
            key,
            c.cancel_key_deletion().key_id(id).send(),
        )
        .await?;
        Ok(())
    }

    /// Schedules deletion after `window_days` (checked here: 7 to 30, since
    /// some KMS emulators accept anything). Returns the deletion date.
    pub async fn schedule_deletion(&self, key: &str, window_days: i64) -> Result<String, KmsError> {
        check_deletion_window(window_days).map_err(KmsError::Config)?;
        let (c, id) = self.own_account_client_for(key);
        let out = self
            .within(
                "kms:ScheduleKeyDeletion",
                key,
                c.schedule_key_deletion()
                    .key_id(id)
                    .pending_window_in_days(window_days as i32)
                    .send(),
            )
            .await?;
        Ok(out
            .deletion_date()
            .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
            .unwrap_or_else(|| format!("in {window_days} days")))
    }

    /// Verifies a key for the use cases in `needs`: it exists and is
    /// reachable, is Enabled, SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT, is in
    /// the region its ARN names (and the workspace's, when `needs` knows it),
    /// and its real policy (GetKeyPolicy, policy `default`) grants what the
    /// use cases need. The result is the rule engine's outcomes, plus:
    /// - AccessDenied on DescribeKey / GetKeyPolicy: a **warning** naming the
    ///   missing permission (`kms:DescribeKey`, `kms:GetKeyPolicy`);
    /// - a key that does not exist: an error (CMK004);
    /// - KMS unreachable: a warning (the check could not run).
    pub async fn verify_key(&self, key_arn: &str, needs: &PolicyNeeds) -> Vec<Outcome> {
        let parsed = match ids::parse_key_arn(key_arn) {
            Ok(a) => a,
            Err(e) => {
                return vec![Outcome::fail(
                    RuleId::KeyArnWellFormed,
                    Subject::KeyArn,
                    e.0,
                )]
            }
        };
        let mut out = vec![];
        let mut facts = KmsKeyFacts::unknown();
        facts.arn = Fact::Known(key_arn.to_string());
        match self.describe(key_arn).await {
            Ok(k) => {
                facts.arn = Fact::Known(k.arn.clone());
                facts.state = KeyState::parse(&k.state).map_or(Fact::Unknown, Fact::Known);
                // An answer without spec or usage (moto omits KeyUsage when
                // CreateKey did not name it) is "cannot tell", not a failure.
                let known = |s: &String| {
                    if s.is_empty() {
                        Fact::Unknown
                    } else {
                        Fact::Known(s.clone())
                    }
                };
                facts.spec = known(&k.spec);
                facts.usage = known(&k.usage);
                facts.region = Fact::Known(k.region.clone());
                out.push(region_outcome(key_arn, &parsed.region, &k.region, needs));
            }
            Err(KmsError::NotFound { message, .. }) => {
                out.push(Outcome::fail(
                    RuleId::KeyUsable,
                    Subject::KeyArn,
                    format!(
                        "key {key_arn} does not exist in {} (or is not visible to this AWS account): {message}",
                        parsed.region
                    ),
                ));
                return out;
            }
            Err(e @ KmsError::AccessDenied { .. }) => {
                out.push(permission_warning("kms:DescribeKey", key_arn, &e));
            }
            Err(e) => {
                out.push(
                    Outcome::fail(
                        RuleId::KeyUsable,
                        Subject::KeyArn,
                        format!("could not verify key {key_arn}: {e}"),
                    )
                    .with_severity(Severity::Warning),
                );
                return out;
            }
        }
        let mut policy_denied = None;
        match self.get_policy(key_arn).await {
            Ok(p) => facts.policy = Fact::Known(Some(p)),
            // KMS never returns the policy of another account's key
            // (GetKeyPolicy does not work across accounts): say so, as a
            // warning, instead of blaming a permission or the key.
            Err(e @ (KmsError::AccessDenied { .. } | KmsError::NotFound { .. }))
                if self
                    .caller_account_cached()
                    .await
                    .is_some_and(|c| c != parsed.account_id) =>
            {
                policy_denied = Some(
                    Outcome::fail(
                        RuleId::PolicyDatabricksGrants,
                        Subject::KeyPolicy,
                        format!(
                            "the key policy of {key_arn} could not be read across accounts: the key is in AWS account {}, Terraform runs as account {}, and KMS returns a key policy only to its own account, so the policy was not checked; check it in account {} (the cmk_kms_key_policy data source gives the statements Databricks needs) ({e})",
                            parsed.account_id,
                            self.caller_account_cached().await.unwrap_or_default(),
                            parsed.account_id
                        ),
                    )
                    .with_severity(Severity::Warning),
                );
            }
            Err(e @ KmsError::AccessDenied { .. }) => {
                policy_denied = Some(permission_warning("kms:GetKeyPolicy", key_arn, &e));
            }
            Err(e) => {
                policy_denied = Some(
                    Outcome::fail(
                        RuleId::PolicyDatabricksGrants,
                        Subject::KeyPolicy,
                        format!("could not read the key policy of {key_arn}: {e}"),
                    )
                    .with_severity(Severity::Warning),
                );
            }
        }
        let engine = check_kms_key(&facts, needs);
        for o in engine {
            // A fact we could not read is reported once, as the warning above.
            if o.verdict == crate::rules::Verdict::CannotTell
                && ((o.subject == Subject::KeyPolicy && policy_denied.is_some())
                    || (matches!(
                        o.subject,
                        Subject::KeySpec | Subject::KeyUsage | Subject::KeyState
                    ) && facts.state.is_unknown()))
            {
                continue;
            }
            out.push(o);
        }
        out.extend(policy_denied);
        out
    }
}

fn permission_warning(permission: &str, key_arn: &str, e: &KmsError) -> Outcome {
    let (rule, subject) = if permission == "kms:GetKeyPolicy" {
        (RuleId::PolicyDatabricksGrants, Subject::KeyPolicy)
    } else {
        (RuleId::KeyUsable, Subject::KeyState)
    };
    Outcome::fail(
        rule,
        subject,
        format!(
            "could not verify key {key_arn}: the caller lacks {permission} on it, so this check was skipped; grant {permission} to the identity Terraform runs as ({e})"
        ),
    )
    .with_severity(Severity::Warning)
}

fn region_outcome(
    key_arn: &str,
    arn_region: &str,
    key_region: &str,
    needs: &PolicyNeeds,
) -> Outcome {
    let (r, s) = (RuleId::KeyRegion, Subject::KeyRegion);
    if arn_region != key_region {
        return Outcome::fail(
            r,
            s,
            format!(
                "key {key_arn} names region {arn_region}, but KMS reports the key in {key_region}"
            ),
        );
    }
    match &needs.workspace_region {
        Fact::Known(w) if w != key_region => Outcome::fail(
            r,
            s,
            format!("key {key_arn} is in {key_region} but the workspace is in {w}"),
        ),
        Fact::Known(_) => Outcome::pass(
            r,
            s,
            format!("the key is in the workspace's region {key_region}"),
        ),
        Fact::Unknown => Outcome::pass(
            r,
            s,
            format!("the key is in {key_region}, the region its ARN names"),
        ),
    }
}

/// How long an ambiguous CreateKey failure searches for its key before
/// CreateKey is sent again.
pub const CREATE_SEARCH: Duration = Duration::from_secs(15);
/// The longest pause between two reads of a wait for propagation.
const WAIT_MAX_PAUSE: Duration = Duration::from_millis(500);

/// A fresh create token: 128 random bits, hex.
pub fn new_create_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The longest pause before CreateKey is sent again.
const CREATE_MAX_PAUSE: Duration = Duration::from_secs(8);

/// Whether KMS refused a call for its request rate (nothing was done).
fn is_throttling<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && matches!(
            e.code(),
            Some("ThrottlingException" | "Throttling" | "TooManyRequestsException")
        )
}

/// A key's metadata (DescribeKey's or CreateKey's answer) as [`KeyInfo`].
fn key_info(m: &aws_sdk_kms::types::KeyMetadata) -> KeyInfo {
    let arn = m.arn().unwrap_or_default().to_string();
    let region = ids::parse_key_arn(&arn)
        .map(|a| a.region)
        .or_else(|_| arn.split(':').nth(3).map(str::to_string).ok_or(()))
        .unwrap_or_default();
    KeyInfo {
        key_id: m.key_id().to_string(),
        region,
        state: m
            .key_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        spec: m
            .key_spec()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        usage: m
            .key_usage()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        description: m.description().unwrap_or_default().to_string(),
        multi_region: m.multi_region().unwrap_or(false),
        deletion_date: m
            .deletion_date()
            .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()),
        arn,
    }
}

fn to_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, KmsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| KmsError::Config(format!("tag {k:?}: {e}")))
        })
        .collect()
}

/// KMS's shortest waiting period before a key is deleted: what a key left
/// by an unfinished create gets (it never protected data).
pub const SHORTEST_DELETION_WINDOW: i64 = 7;

/// KMS's bounds for a deletion waiting period.
pub fn check_deletion_window(days: i64) -> Result<(), String> {
    if (SHORTEST_DELETION_WINDOW..=30).contains(&days) {
        Ok(())
    } else {
        Err(format!(
            "the deletion waiting period must be 7 to 30 days, got {days}"
        ))
    }
}

/// The KMS endpoint the SDK calls in a region without an endpoint URL (for
/// messages): `kms-fips.` with FIPS, as the SDK's endpoint rules resolve
/// it in the `aws` and `aws-us-gov` partitions.
pub fn default_endpoint(region: &str, fips: bool) -> String {
    let host = if fips { "kms-fips" } else { "kms" };
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{host}.{region}.{suffix}")
}

/// Policy needs for a key that serves `use_cases` (helper for callers).
pub fn needs_for(
    use_cases: BTreeSet<crate::rules::KeyFeature>,
    cluster_volumes: bool,
    databricks_account_id: Option<String>,
    cross_account_role_arn: Option<String>,
    workspace_region: Option<String>,
) -> PolicyNeeds {
    PolicyNeeds {
        cluster_volumes: Fact::Known(
            cluster_volumes && use_cases.contains(&crate::rules::KeyFeature::Storage),
        ),
        use_cases: Fact::Known(use_cases),
        databricks_account_id: databricks_account_id.map_or(Fact::Unknown, Fact::Known),
        cross_account_role_arn: Fact::Known(cross_account_role_arn),
        workspace_region: workspace_region.map_or(Fact::Unknown, Fact::Known),
        databricks_principal: None,
        deployment: None,
    }
}

/// Normalizes a policy for semantic comparison: object key order is
/// ignored, arrays become sorted sets, and a one-element array equals its
/// element (as IAM reads them).
pub fn normalize_policy(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), normalize_policy(v)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => {
            let mut n: Vec<Value> = items.iter().map(normalize_policy).collect();
            n.sort_by_cached_key(|x| x.to_string());
            n.dedup();
            if n.len() == 1 {
                n.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(n)
            }
        }
        other => other.clone(),
    }
}

/// Whether two policy documents mean the same (see [`normalize_policy`]);
/// text that is not JSON compares as text.
pub fn policies_equivalent(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => normalize_policy(&x) == normalize_policy(&y),
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests;
