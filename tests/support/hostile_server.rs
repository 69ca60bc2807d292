//! A stand-in for Databricks on 127.0.0.1 that misbehaves on purpose: a
//! rule answers the requests it picks (endless bodies, trickles, redirects,
//! answers about another object, endless pages) and everything else goes
//! to an upstream (a cmk-sandbox) unchanged, or is a 404 without one.
//! Bounded: every body it makes up has a byte limit, and a trickle a time
//! limit, so a client that never stops reading still ends.

#![allow(dead_code)] // each test crate uses part of it

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// What a rule sees of a request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The `Host` header sent.
    pub host: String,
}

pub type Rule = Arc<dyn Fn(&Req) -> Option<Response> + Send + Sync>;

struct St {
    upstream: Option<String>,
    rule: Rule,
    http: reqwest::Client,
    seen: Mutex<Vec<Req>>,
}

/// A running stand-in.
pub struct Hostile {
    pub url: String,
    state: Arc<St>,
    stop: tokio_util::sync::CancellationToken,
    /// Its own runtime, when started from a test without one.
    rt: Option<tokio::runtime::Runtime>,
}

impl Hostile {
    /// Starts on a runtime of its own (for `#[test]` functions).
    pub fn start(upstream: Option<String>, rule: Rule) -> Hostile {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut h = rt.block_on(Hostile::spawn(upstream, rule));
        h.rt = Some(rt);
        h
    }

    /// Starts in the current runtime (for `#[tokio::test]` functions).
    pub async fn spawn(upstream: Option<String>, rule: Rule) -> Hostile {
        // reqwest is built without a crypto provider of its own.
        cmk::tfplugin::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(St {
            upstream,
            rule,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Hostile {
            url,
            state,
            stop,
            rt: None,
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Req> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests had a path containing `needle`.
    pub fn hits(&self, needle: &str) -> usize {
        self.seen()
            .iter()
            .filter(|r| r.path.contains(needle))
            .count()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

async fn handle(State(st): State<Arc<St>>, req: axum::extract::Request) -> Response {
    let seen = Req {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        host: req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    };
    st.seen.lock().unwrap().push(seen.clone());
    if let Some(r) = (st.rule)(&seen) {
        return r;
    }
    let Some(up) = &st.upstream else {
        return json(
            404,
            serde_json::json!({"error_code": "NOT_FOUND", "message": "no such path"}),
        );
    };
    // Forward as is: method, path and query, credentials, body.
    let mut url = format!("{up}{}", seen.path);
    if !seen.query.is_empty() {
        url.push('?');
        url.push_str(&seen.query);
    }
    let method = reqwest::Method::from_bytes(seen.method.as_bytes()).unwrap();
    let mut out = st.http.request(method, url);
    for h in [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::USER_AGENT,
    ] {
        if let Some(v) = req.headers().get(&h) {
            out = out.header(h.as_str(), v.as_bytes());
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let resp = match out.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let ct = resp.headers().get("content-type").cloned();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut r = (status, bytes).into_response();
    if let Some(ct) = ct {
        if let Ok(v) = HeaderValue::from_bytes(ct.as_bytes()) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
    }
    r
}

/// A JSON answer.
pub fn json(status: u16, v: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// `prefix`, then spaces in 64 KiB chunks up to `limit` bytes in all,
/// without a Content-Length: an answer that looks endless.
pub fn endless(status: u16, prefix: &str, limit: u64) -> Response {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let first = Bytes::from(prefix.to_string());
    let sent = Arc::new(AtomicU64::new(0));
    let rest = futures_lite_repeat(chunk, limit.saturating_sub(first.len() as u64), sent);
    let stream = tokio_stream::StreamExt::chain(
        tokio_stream::once(Ok::<Bytes, std::io::Error>(first)),
        rest,
    );
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn futures_lite_repeat(
    chunk: Bytes,
    limit: u64,
    sent: Arc<AtomicU64>,
) -> impl tokio_stream::Stream<Item = Result<Bytes, std::io::Error>> {
    let n = limit / chunk.len() as u64;
    tokio_stream::iter((0..n).map(move |_| {
        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok(chunk.clone())
    }))
}

/// `prefix`, then one space a second for at most `limit`: a body that
/// trickles.
pub fn trickle(status: u16, prefix: &str, limit: Duration) -> Response {
    let first = Bytes::from(prefix.to_string());
    let ticks = limit.as_secs();
    let rest = tokio_stream::StreamExt::throttle(
        tokio_stream::iter(
            (0..ticks).map(|_| Ok::<Bytes, std::io::Error>(Bytes::from_static(b" "))),
        ),
        Duration::from_secs(1),
    );
    let stream = tokio_stream::StreamExt::chain(
        tokio_stream::once(Ok::<Bytes, std::io::Error>(first)),
        rest,
    );
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A redirect to `location`.
pub fn redirect(status: u16, location: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::LOCATION, location.to_string())],
        "",
    )
        .into_response()
}
