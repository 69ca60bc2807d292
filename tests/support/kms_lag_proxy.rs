//! A KMS that is eventually consistent, as AWS documents KMS to be: a small
//! proxy in front of moto's KMS server (`moto_server.rs`) whose reads lag
//! its writes. Shared by the acceptance tests and `examples/kms_lag_proxy.rs`
//! (which `make bench` runs), both including it with `#[path]`.
//!
//! Each write about a key (PutKeyPolicy, TagResource, CreateAlias, ...) is
//! recorded with what the key's reads answered just before it; for `lag`
//! after the write, reads about the key (DescribeKey, GetKeyPolicy,
//! GetKeyRotationStatus, ListResourceTags, ListAliases by key) answer that
//! earlier state, and a key made by CreateKey is NotFoundException (and left
//! out of ListKeys). In other words a read at time t shows the key as it was
//! at t - lag. Everything else passes through.
//!
//! It can also refuse one call once ([`LagProxy::fail_once`]), throttle a
//! call a number of times ([`LagProxy::throttle`]), and counts the requests
//! it served, by action.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Writes whose effect reads show late.
const WRITES: &[&str] = &[
    "CreateKey",
    "PutKeyPolicy",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "TagResource",
    "UntagResource",
    "UpdateKeyDescription",
    "CreateAlias",
    "UpdateAlias",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
];

/// Reads about one key that answer the state before a recent write.
const READS: &[&str] = &[
    "DescribeKey",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListResourceTags",
    "ListAliases",
];

/// A saved answer: status, content type, body.
type Answer = (u16, String, Bytes);

struct Write {
    at: Instant,
    /// The reads' answers just before the write; `None` for CreateKey (the
    /// key did not exist).
    before: Option<HashMap<String, Answer>>,
}

#[derive(Default)]
struct Inner {
    writes: HashMap<String, Vec<Write>>,
    fail_once: Vec<String>,
    lose_answer_once: Vec<String>,
    /// Action -> how many more of its calls answer ThrottlingException.
    throttle: HashMap<String, u32>,
    requests: BTreeMap<String, u64>,
    /// Reads answered with the state before a write (or NotFound).
    stale: u64,
}

struct Shared {
    upstream: String,
    lag: Mutex<Duration>,
    http: reqwest::Client,
    inner: Mutex<Inner>,
}

/// The running proxy; stops when dropped.
pub struct LagProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LagProxy {
    /// Starts the proxy in front of `upstream` (moto's endpoint) on a free
    /// loopback port, on a thread of its own.
    pub fn start(upstream: &str, lag: Duration) -> LagProxy {
        Self::start_on(upstream, lag, "127.0.0.1:0")
    }

    pub fn start_on(upstream: &str, lag: Duration, listen: &str) -> LagProxy {
        // reqwest is built without a default crypto provider (the crate's
        // one is aws-lc-rs); an error means one is installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            lag: Mutex::new(lag),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            inner: Mutex::new(Inner::default()),
        });
        let listener = std::net::TcpListener::bind(listen).expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new()
                    .route("/_proxy/stats", axum::routing::get(stats))
                    .route("/_proxy/fail-once/{action}", axum::routing::post(fail_once))
                    .fallback(handle)
                    .with_state(s);
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        LagProxy {
            endpoint,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The next call of `action` (e.g. `CreateAlias`) is refused with a
    /// KMSInvalidStateException (a 400, which the SDK does not retry).
    pub fn fail_once(&self, action: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .fail_once
            .push(action.to_string());
    }

    /// The next `times` calls of `action` are refused with a
    /// ThrottlingException (a 400, as KMS answers a caller over its request
    /// rate), without reaching moto.
    pub fn throttle(&self, action: &str, times: u32) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .throttle
            .insert(action.to_string(), times);
    }

    /// The next call of `action` is made upstream, but its answer is
    /// replaced by a 500 KMSInternalException: the caller cannot tell
    /// whether it happened (as with a timeout after KMS acted).
    pub fn lose_answer_once(&self, action: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .lose_answer_once
            .push(action.to_string());
    }

    /// Reads answered with a key's earlier state (or NotFound) so far.
    pub fn stale_answers(&self) -> u64 {
        self.shared.inner.lock().unwrap().stale
    }

    pub fn set_lag(&self, lag: Duration) {
        *self.shared.lag.lock().unwrap() = lag;
    }

    /// Requests served, by action.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    pub fn total_requests(&self) -> u64 {
        self.requests().values().sum()
    }
}

impl Drop for LagProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn stats(axum::extract::State(s): axum::extract::State<Arc<Shared>>) -> Response {
    let r = s.inner.lock().unwrap().requests.clone();
    let stale = s.inner.lock().unwrap().stale;
    let total: u64 = r.values().sum();
    axum::Json(serde_json::json!({"total": total, "stale": stale, "by_action": r})).into_response()
}

async fn fail_once(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    axum::extract::Path(action): axum::extract::Path<String>,
) -> StatusCode {
    s.inner.lock().unwrap().fail_once.push(action);
    StatusCode::NO_CONTENT
}

/// The key a request is about: a key id, or the id in a key ARN. Aliases
/// are not followed (their reads pass through).
fn key_of(body: &serde_json::Value) -> Option<String> {
    let k = body
        .get("KeyId")
        .or_else(|| body.get("TargetKeyId"))?
        .as_str()?;
    if k.starts_with("alias/") || k.contains(":alias/") {
        return None;
    }
    Some(match k.rsplit_once(":key/") {
        Some((_, id)) => id.to_string(),
        None => k.to_string(),
    })
}

fn kms_error(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        serde_json::json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

fn answer(a: &Answer) -> Response {
    (
        StatusCode::from_u16(a.0).unwrap_or(StatusCode::BAD_GATEWAY),
        [("content-type", a.1.clone())],
        a.2.clone(),
    )
        .into_response()
}

impl Shared {
    async fn forward(&self, headers: &HeaderMap, target: &str, body: Bytes) -> Option<Answer> {
        let mut req = self
            .http
            .post(format!("{}/", self.upstream))
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .body(body);
        if let Some(a) = headers.get("authorization") {
            req = req.header("authorization", a);
        }
        let r = req.send().await.ok()?;
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-amz-json-1.1")
            .to_string();
        let body = r.bytes().await.ok()?;
        Some((status, ct, body))
    }

    /// What each read about `key` answers now (upstream, without lag).
    async fn snapshot(&self, headers: &HeaderMap, key: &str) -> HashMap<String, Answer> {
        let mut out = HashMap::new();
        for read in READS {
            let body = if *read == "GetKeyPolicy" {
                serde_json::json!({"KeyId": key, "PolicyName": "default"})
            } else {
                serde_json::json!({"KeyId": key})
            };
            let target = format!("TrentService.{read}");
            if let Some(a) = self
                .forward(headers, &target, Bytes::from(body.to_string()))
                .await
            {
                out.insert(read.to_string(), a);
            }
        }
        out
    }

    /// The write whose "before" a read of `key` now sees, if any: the
    /// earliest write about the key within the lag.
    fn lagging(&self, key: &str) -> Option<Option<HashMap<String, Answer>>> {
        let lag = *self.lag.lock().unwrap();
        let mut inner = self.inner.lock().unwrap();
        let list = inner.writes.get_mut(key)?;
        let now = Instant::now();
        list.retain(|w| now.duration_since(w.at) < lag);
        list.first().map(|w| w.before.clone())
    }

    /// Keys whose CreateKey is within the lag.
    fn unlisted(&self) -> Vec<String> {
        let lag = *self.lag.lock().unwrap();
        let inner = self.inner.lock().unwrap();
        let now = Instant::now();
        inner
            .writes
            .iter()
            .filter(|(_, ws)| {
                ws.iter()
                    .any(|w| w.before.is_none() && now.duration_since(w.at) < lag)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }
}

async fn handle(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let action = target.rsplit('.').next().unwrap_or_default().to_string();
    {
        let mut inner = s.inner.lock().unwrap();
        *inner.requests.entry(action.clone()).or_default() += 1;
        if let Some(n) = inner.throttle.get_mut(&action).filter(|n| **n > 0) {
            *n -= 1;
            return kms_error(
                "ThrottlingException",
                &format!("Rate exceeded (injected by the test proxy for {action})"),
            );
        }
        if let Some(i) = inner.fail_once.iter().position(|a| *a == action) {
            inner.fail_once.remove(i);
            return kms_error(
                "KMSInvalidStateException",
                &format!("injected fault: the test proxy refused {action} once"),
            );
        }
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = key_of(&parsed);

    if WRITES.contains(&action.as_str()) {
        let before = match (&key, action.as_str()) {
            (_, "CreateKey") | (None, _) => None,
            (Some(k), _) => Some(s.snapshot(&headers, k).await),
        };
        let Some(a) = s.forward(&headers, &target, body).await else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        if (200..300).contains(&a.0) {
            let written = if action == "CreateKey" {
                serde_json::from_slice::<serde_json::Value>(&a.2)
                    .ok()
                    .and_then(|v| v["KeyMetadata"]["KeyId"].as_str().map(str::to_string))
            } else {
                key.clone()
            };
            if let Some(k) = written {
                let is_create = action == "CreateKey";
                if is_create || before.is_some() {
                    s.inner
                        .lock()
                        .unwrap()
                        .writes
                        .entry(k)
                        .or_default()
                        .push(Write {
                            at: Instant::now(),
                            before,
                        });
                }
            }
        }
        let lose = {
            let mut inner = s.inner.lock().unwrap();
            match inner.lose_answer_once.iter().position(|x| *x == action) {
                Some(i) => {
                    inner.lose_answer_once.remove(i);
                    true
                }
                None => false,
            }
        };
        if lose {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "application/x-amz-json-1.1")],
                serde_json::json!({"__type": "KMSInternalException", "message": "injected fault: the answer was lost"}).to_string(),
            )
                .into_response();
        }
        return answer(&a);
    }

    if READS.contains(&action.as_str()) {
        if let Some(k) = &key {
            match s.lagging(k) {
                Some(None) => {
                    s.inner.lock().unwrap().stale += 1;
                    return kms_error(
                        "NotFoundException",
                        &format!("Key '{k}' does not exist (not yet: the test proxy lags)"),
                    );
                }
                // Paged list calls (a Marker) pass through.
                Some(Some(before)) if parsed.get("Marker").is_none() => {
                    if let Some(a) = before.get(&action) {
                        s.inner.lock().unwrap().stale += 1;
                        return answer(a);
                    }
                }
                _ => {}
            }
        }
    }

    let Some(mut a) = s.forward(&headers, &target, body).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    if action == "ListKeys" && a.0 == 200 {
        let hidden = s.unlisted();
        if !hidden.is_empty() {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&a.2) {
                if let Some(keys) = v["Keys"].as_array_mut() {
                    keys.retain(|k| {
                        !k["KeyId"]
                            .as_str()
                            .is_some_and(|id| hidden.iter().any(|h| h == id))
                    });
                }
                a.2 = Bytes::from(v.to_string());
            }
        }
    }
    answer(&a)
}
