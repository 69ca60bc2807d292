//! The sandbox's HTTP routes: account API, OAuth, discovery, workspace
//! dashboards, and the `/_sandbox/...` admin calls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::adapter::{self, KeyUpdate, Slot};
use super::{
    dashboard_view, key_view, new_uuid, now_ms, now_rfc3339, persist, Faults, SandboxAccount,
    SeedDashboard, SeedKey, World,
};
use crate::cloud::databricks::{AwsKeyInfo, WorkspaceStatus};
use crate::rules::catalog::KeyFeature;
use crate::rules::ids::is_composite_key_id;
use crate::rules::RuleId;

pub(crate) struct IssuedToken {
    account_id: String,
    expires_at: Instant,
}

pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub faults: Mutex<Faults>,
    pub rng: Mutex<fastrand::Rng>,
    /// Start of the current one-second window and calls seen in it.
    pub window: Mutex<(Instant, u32)>,
    pub state_path: Option<PathBuf>,
    pub provisioning_delay: Duration,
    pub token_lifetime: Duration,
    pub stats: Mutex<Stats>,
}

/// Counters for tests (`GET /_sandbox/stats`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Stats {
    /// API calls that reached the fault layer (account, OAuth, dashboards).
    pub api_requests: u64,
    /// Every HTTP request of any path (admin calls and unknown paths too),
    /// except `GET /_sandbox/stats` itself: proves that nothing was sent.
    pub all_requests: u64,
    pub tokens_issued: u64,
    pub creates_committed: u64,
}

type S = State<Arc<Shared>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An API error answer `{error_code, message}`.
fn err(status: u16, code: &str, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

fn bad(message: impl Into<String>) -> Response {
    err(400, "INVALID_PARAMETER_VALUE", message)
}

impl Shared {
    fn save(&self, world: &World) {
        if let Some(p) = &self.state_path {
            if let Err(e) = persist(p, world) {
                tracing::error!(error = %e, "cannot persist sandbox state");
            }
        }
    }

    /// The account a bearer token belongs to, or the refusal.
    fn account_of(&self, headers: &HeaderMap) -> Result<String, Response> {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(err(
                401,
                "UNAUTHENTICATED",
                "Missing credentials: send Authorization: Bearer <token>",
            ));
        };
        if let Some(t) = lock(&self.tokens).get(token) {
            if t.expires_at <= Instant::now() {
                return Err(err(401, "UNAUTHENTICATED", "Token expired"));
            }
            return Ok(t.account_id.clone());
        }
        let world = lock(&self.world);
        world
            .accounts
            .iter()
            .find(|a| a.tokens.iter().any(|t| t == token))
            .map(|a| a.account_id.clone())
            .ok_or_else(|| err(401, "UNAUTHENTICATED", "Invalid access token"))
    }

    /// Checks the token is valid for `account_id`.
    fn authorize(&self, headers: &HeaderMap, account_id: &str) -> Result<(), Response> {
        let owner = self.account_of(headers)?;
        if owner != account_id {
            return Err(err(
                403,
                "PERMISSION_DENIED",
                format!("This credential is not allowed to access account {account_id}"),
            ));
        }
        if !lock(&self.world)
            .accounts
            .iter()
            .any(|a| a.account_id == account_id)
        {
            return Err(err(
                403,
                "PERMISSION_DENIED",
                format!("Account {account_id} is not accessible"),
            ));
        }
        Ok(())
    }

    fn admin(&self, headers: &HeaderMap) -> Result<(), Response> {
        let want = lock(&self.world).admin_token.clone();
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (want, got) {
            (Some(w), Some(g)) if w == g => Ok(()),
            (None, _) => Err(err(
                403,
                "PERMISSION_DENIED",
                "admin calls are disabled: start the sandbox with --admin-token or an admin_token in the seed",
            )),
            _ => Err(err(401, "UNAUTHENTICATED", "admin token required")),
        }
    }
}

fn account_mut<'a>(world: &'a mut World, account_id: &str) -> Option<&'a mut SandboxAccount> {
    world
        .accounts
        .iter_mut()
        .find(|a| a.account_id == account_id)
}

pub(crate) fn router(state: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/api/2.0/accounts/{account_id}/customer-managed-keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/api/2.0/accounts/{account_id}/customer-managed-keys/{*id}",
            get(get_key).delete(delete_key),
        )
        .route("/api/2.0/accounts/{account_id}/workspaces", get(list_ws))
        .route(
            "/api/2.0/accounts/{account_id}/workspaces/{workspace_id}",
            get(get_ws).patch(patch_ws),
        )
        .route("/oidc/accounts/{account_id}/v1/token", post(account_token))
        .route(
            "/_ws/{deployment}/api/2.0/lakeview/dashboards",
            get(list_dashboards),
        )
        .route("/_ws/{deployment}/oidc/v1/token", post(workspace_token))
        .route_layer(middleware::from_fn_with_state(state.clone(), faults_layer));
    let open = Router::new()
        .route("/.well-known/databricks-config", get(databricks_config))
        .route(
            "/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
            get(oauth_metadata),
        );
    let admin = Router::new()
        .route("/_sandbox/faults", get(get_faults).put(put_faults))
        .route("/_sandbox/state", get(dump_state))
        .route("/_sandbox/stats", get(get_stats))
        .route(
            "/_sandbox/customer-managed-keys/{id}",
            axum::routing::delete(admin_delete_key),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/classic-compute",
            post(admin_compute),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/dashboards",
            post(admin_add_dashboard),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/status",
            post(admin_status),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/revert-next-update",
            post(admin_revert_next),
        );
    api.merge(open)
        .merge(admin)
        .fallback(|| async { err(404, "ENDPOINT_NOT_FOUND", "No API found for this path") })
        .layer(middleware::from_fn_with_state(state.clone(), count_all))
        .with_state(state)
}

async fn count_all(State(s): S, req: Request, next: Next) -> Response {
    if !(req.method() == axum::http::Method::GET && req.uri().path() == "/_sandbox/stats") {
        lock(&s.stats).all_requests += 1;
        tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    }
    next.run(req).await
}

// ---- faults ----

async fn faults_layer(State(s): S, req: Request, next: Next) -> Response {
    lock(&s.stats).api_requests += 1;
    let (f, fail_now) = {
        let mut g = lock(&s.faults);
        let fail_now = g.fail_next > 0;
        if fail_now {
            g.fail_next -= 1;
        }
        (g.clone(), fail_now)
    };
    if let Some(limit) = f.rps_limit {
        let mut w = lock(&s.window);
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 += 1;
        if w.1 > limit {
            let mut r = err(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                format!("Too many requests: the limit is {limit} per second"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
    }
    let (throttle, fail) = {
        let mut rng = lock(&s.rng);
        (rng.f64() < f.throttle_rate, rng.f64() < f.error_rate)
    };
    // A real service finishes a request it received even when the client
    // goes away (issue 10: a create cancelled by Ctrl-C was committed
    // anyway): the rest runs in a task of its own, which a closed
    // connection does not abort.
    let handled = tokio::spawn(async move {
        if f.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
        }
        answer(f, throttle, fail || fail_now, req, next).await
    });
    match handled.await {
        Ok(r) => r,
        // drop_after_commit unwinds to close the connection: keep doing so.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => err(500, "INTERNAL_ERROR", format!("cmk-sandbox: {e}")),
    }
}

async fn answer(f: Faults, throttle: bool, fail: bool, req: Request, next: Next) -> Response {
    if throttle {
        let mut r = err(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests (injected by cmk-sandbox)",
        );
        if let Ok(v) = header::HeaderValue::from_str(&format!("{}", f.retry_after_seconds)) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    if fail {
        return err(
            f.error_status,
            "TEMPORARILY_UNAVAILABLE",
            "The service is temporarily unavailable (injected by cmk-sandbox)",
        );
    }
    next.run(req).await
}

// ---- discovery and OAuth ----

fn host_of(headers: &HeaderMap) -> String {
    let h = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{h}")
}

async fn databricks_config(headers: HeaderMap) -> Response {
    let host = host_of(&headers);
    Json(json!({
        "oidc_endpoint": format!("{host}/oidc/accounts/{{account_id}}"),
        "cloud": "aws",
    }))
    .into_response()
}

async fn oauth_metadata(headers: HeaderMap, Path(account_id): Path<String>) -> Response {
    let base = format!("{}/oidc/accounts/{account_id}", host_of(&headers));
    Json(json!({
        "issuer": format!("{base}"),
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
    }))
    .into_response()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Client credentials from Basic auth or the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(b) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (id, secret) = s.split_once(':')?;
        return Some((id.to_string(), secret.to_string()));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn issue_token(s: &Shared, headers: &HeaderMap, body: &Bytes, account_id: &str) -> Response {
    let form: HashMap<String, String> = serde_urlencoded_parse(body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    let Some((id, secret)) = client_credentials(headers, &form) else {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    };
    let ok = lock(&s.world)
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.oauth_clients.iter())
        .any(|c| c.client_id == id && c.client_secret == secret);
    if !ok {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    }
    let token = format!("sbx-oauth-{}", new_uuid());
    lock(&s.stats).tokens_issued += 1;
    lock(&s.tokens).insert(
        token.clone(),
        IssuedToken {
            account_id: account_id.to_string(),
            expires_at: Instant::now() + s.token_lifetime,
        },
    );
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": s.token_lifetime.as_secs().max(1),
        "scope": form.get("scope").cloned().unwrap_or_else(|| "all-apis".into()),
    }))
    .into_response()
}

fn serde_urlencoded_parse(body: &[u8]) -> HashMap<String, String> {
    url_decode_pairs(&String::from_utf8_lossy(body))
}

fn url_decode_pairs(s: &str) -> HashMap<String, String> {
    fn dec(x: &str) -> String {
        let x = x.replace('+', " ");
        let b = x.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

async fn account_token(
    State(s): S,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    issue_token(&s, &headers, &body, &account_id)
}

async fn workspace_token(
    State(s): S,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let owner = lock(&s.world)
        .accounts
        .iter()
        .find(|a| {
            a.workspaces
                .iter()
                .any(|w| w.workspace.deployment_name.as_deref() == Some(&deployment))
        })
        .map(|a| a.account_id.clone());
    match owner {
        Some(a) => issue_token(&s, &headers, &body, &a),
        None => oauth_error(404, "invalid_request", "no such workspace"),
    }
}

// ---- key configurations ----

async fn list_keys(State(s): S, Path(account_id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let world = lock(&s.world);
    let keys: Vec<_> = world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| {
            a.customer_managed_keys
                .iter()
                .map(|k| key_view(&a.account_id, k))
        })
        .collect();
    Json(keys).into_response()
}

fn check_key_id(id: &str) -> Result<(), Response> {
    if is_composite_key_id(id) {
        return Err(bad(format!("Invalid customerManagedKeyId: {id}")));
    }
    Ok(())
}

async fn get_key(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    if let Err(r) = check_key_id(&id) {
        return r;
    }
    let world = lock(&s.world);
    world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| {
            a.customer_managed_keys
                .iter()
                .map(|k| key_view(&a.account_id, k))
        })
        .find(|k| k.customer_managed_key_id == id)
        .map(|k| Json(k).into_response())
        .unwrap_or_else(|| not_found_key(&id))
}

fn not_found_key(id: &str) -> Response {
    err(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Customer managed key configuration {id} does not exist"),
    )
}

async fn delete_key(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    if let Err(r) = check_key_id(&id) {
        return r;
    }
    let mut world = lock(&s.world);
    let Some(acct) = account_mut(&mut world, &account_id) else {
        return not_found_key(&id);
    };
    let Some(pos) = acct
        .customer_managed_keys
        .iter()
        .position(|k| k.customer_managed_key_id.as_deref() == Some(&id))
    else {
        return not_found_key(&id);
    };
    if let Some(w) = acct.workspaces.iter().find(|w| {
        w.workspace
            .managed_services_customer_managed_key_id
            .as_deref()
            == Some(&id)
            || w.workspace.storage_customer_managed_key_id.as_deref() == Some(&id)
    }) {
        return bad(format!(
            "You cannot delete a configuration that is associated with a running workspace (workspace {})",
            w.workspace.workspace_id
        ));
    }
    let removed = acct.customer_managed_keys.remove(pos);
    let view = key_view(&account_id, &removed);
    s.save(&world);
    Json(view).into_response()
}

async fn create_key(
    State(s): S,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Could not parse request body as JSON",
        );
    };
    let use_cases = match v.get("use_cases") {
        None | Some(Value::Null) => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: use_cases",
            )
        }
        Some(Value::Array(a)) => a,
        Some(_) => return err(400, "MALFORMED_REQUEST", "use_cases must be a list"),
    };
    // The use cases as written; a non-string is kept as its JSON text so
    // that the rules name it.
    let written: Vec<String> = use_cases
        .iter()
        .map(|u| {
            u.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| u.to_string())
        })
        .collect();
    let Some(info) = v.get("aws_key_info").filter(|i| !i.is_null()) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Missing required parameters: aws_key_info",
        );
    };
    let mut info: AwsKeyInfo = match serde_json::from_value(info.clone()) {
        Ok(i) => i,
        Err(_) => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: aws_key_info.key_arn",
            )
        }
    };
    let facts = adapter::key_config_facts(None, written.clone(), &info);
    match adapter::create_refusal(&facts) {
        // The API answers an empty list as a missing parameter.
        Some((RuleId::UseCasesValid, _)) if written.is_empty() => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: use_cases",
            )
        }
        Some((_, m)) => return bad(m),
        None => {}
    }
    let mut cases = Vec::new();
    for f in written.iter().filter_map(|u| KeyFeature::parse(u)) {
        if !cases.contains(&f) {
            cases.push(f);
        }
    }
    // Databricks fills key_region from the ARN when it is not given.
    info.key_region = facts.effective_key_region().known().cloned();
    let key = SeedKey {
        customer_managed_key_id: Some(new_uuid()),
        creation_time: Some(now_ms()),
        use_cases: cases,
        aws_key_info: info,
    };
    let view = key_view(&account_id, &key);
    let drop_it = {
        let mut world = lock(&s.world);
        let Some(acct) = account_mut(&mut world, &account_id) else {
            return err(403, "PERMISSION_DENIED", "no such account");
        };
        acct.customer_managed_keys.push(key);
        s.save(&world);
        lock(&s.stats).creates_committed += 1;
        let mut f = lock(&s.faults);
        if f.drop_after_commit > 0 {
            f.drop_after_commit -= 1;
            true
        } else {
            false
        }
    };
    if drop_it {
        tracing::info!(id = %view.customer_managed_key_id, "committed the create; dropping the connection without answering (fault injection)");
        // Unwinding the connection's task closes the socket before any
        // byte of the answer is written.
        std::panic::resume_unwind(Box::new("cmk-sandbox: drop after commit"));
    }
    (StatusCode::CREATED, Json(view)).into_response()
}

// ---- workspaces ----

fn ws_json(w: &super::SandboxWorkspace) -> Value {
    serde_json::to_value(&w.workspace).unwrap_or_default()
}

async fn list_ws(State(s): S, Path(account_id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let world = lock(&s.world);
    let all: Vec<Value> = world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.workspaces.iter().map(ws_json))
        .collect();
    Json(all).into_response()
}

fn parse_ws_id(id: &str) -> Result<i64, Response> {
    id.parse()
        .map_err(|_| bad(format!("Invalid workspace_id: {id} is not an integer")))
}

fn ws_not_found(id: i64) -> Response {
    err(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Workspace {id} does not exist"),
    )
}

async fn get_ws(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let id = match parse_ws_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let world = lock(&s.world);
    world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.workspaces.iter())
        .find(|w| w.workspace.workspace_id == id)
        .map(|w| Json(ws_json(w)).into_response())
        .unwrap_or_else(|| ws_not_found(id))
}

async fn patch_ws(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let id = match parse_ws_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Could not parse request body as a JSON object",
        );
    };
    let slots = [Slot::ManagedServices, Slot::Storage];
    let mask: Vec<String> = match q.get("update_mask") {
        Some(m) if m.trim() == "*" => slots.iter().map(|s| s.field().to_string()).collect(),
        Some(m) => m
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        None => body
            .keys()
            .filter(|k| slots.iter().any(|s| s.field() == k.as_str()))
            .cloned()
            .collect(),
    };
    for f in &mask {
        if !slots.iter().any(|s| s.field() == f) && f != "workspace_name" {
            return bad(format!("Field {f} cannot be updated in cmk-sandbox"));
        }
    }
    let mut world = lock(&s.world);
    let Some(acct) = account_mut(&mut world, &account_id) else {
        return ws_not_found(id);
    };
    let keys: Vec<SeedKey> = acct.customer_managed_keys.clone();
    let Some(w) = acct
        .workspaces
        .iter_mut()
        .find(|w| w.workspace.workspace_id == id)
    else {
        return ws_not_found(id);
    };
    let mut changes: Vec<(Slot, String)> = Vec::new();
    for slot in slots {
        if !mask.iter().any(|f| f == slot.field()) {
            continue;
        }
        let Some(new) = body
            .get(slot.field())
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        else {
            return bad(format!(
                "{} cannot be removed from a workspace; give a key configuration id",
                slot.field()
            ));
        };
        if slot.current(&w.workspace) != Some(new) {
            changes.push((slot, new.to_string()));
        }
    }
    let rename = if mask.iter().any(|f| f == "workspace_name") {
        body.get("workspace_name")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };
    if !changes.is_empty() {
        // The Databricks rules come from the engine; the sandbox answers the
        // failed ones the Account API enforces, in the order it checks them.
        let update = KeyUpdate {
            workspace: w,
            changes: &changes,
            keys: &keys,
        };
        let outcomes = update.check();
        if let Some(m) =
            update.refusal(&outcomes, &[RuleId::CompositeKeyId, RuleId::EnterpriseTier])
        {
            return bad(m);
        }
        for (_, new) in &changes {
            if !keys
                .iter()
                .any(|k| k.customer_managed_key_id.as_deref() == Some(new.as_str()))
            {
                return bad(format!(
                    "Customer managed key configuration {new} does not exist in account {account_id}"
                ));
            }
        }
        if let Some(m) = update.refusal(
            &outcomes,
            &[
                RuleId::SlotUseCase,
                RuleId::KeyRegion,
                RuleId::StorageKeyReplacement,
            ],
        ) {
            return bad(m);
        }
        if w.workspace.workspace_status != Some(WorkspaceStatus::Running) {
            return bad(format!(
                "Workspace {id} is {}; keys can only be updated on a RUNNING workspace",
                w.workspace
                    .workspace_status
                    .map(|s| s.as_str())
                    .unwrap_or("in an unknown state")
            ));
        }
        if let Some(m) = update.refusal(&outcomes, &[RuleId::ClassicComputeRunning]) {
            return bad(m);
        }
    }
    if let Some(n) = rename {
        w.workspace.workspace_name = n;
    }
    if !changes.is_empty() {
        let before = (
            w.workspace.managed_services_customer_managed_key_id.clone(),
            w.workspace.storage_customer_managed_key_id.clone(),
        );
        for (slot, new) in &changes {
            match slot {
                Slot::ManagedServices => {
                    w.workspace.managed_services_customer_managed_key_id = Some(new.clone())
                }
                Slot::Storage => w.workspace.storage_customer_managed_key_id = Some(new.clone()),
            }
        }
        w.workspace.workspace_status = Some(WorkspaceStatus::Provisioning);
        w.workspace.workspace_status_message = Some("Updating the workspace's keys".into());
        let revert = std::mem::take(&mut w.revert_next_update);
        let s2 = s.clone();
        let aid = account_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(s2.provisioning_delay).await;
            let mut world = lock(&s2.world);
            if let Some(w) = account_mut(&mut world, &aid).and_then(|a| {
                a.workspaces
                    .iter_mut()
                    .find(|w| w.workspace.workspace_id == id)
            }) {
                if w.workspace.workspace_status == Some(WorkspaceStatus::Provisioning) {
                    w.workspace.workspace_status = Some(WorkspaceStatus::Running);
                    w.workspace.workspace_status_message = Some("Workspace is running.".into());
                    if revert {
                        w.workspace.managed_services_customer_managed_key_id = before.0;
                        w.workspace.storage_customer_managed_key_id = before.1;
                        w.workspace.workspace_status_message = Some(
                            "Workspace is running. The key update could not be applied and was rolled back.".into(),
                        );
                    }
                }
            }
            s2.save(&world);
        });
    }
    let answer = ws_json(w);
    s.save(&world);
    Json(answer).into_response()
}

// ---- workspace level ----

async fn list_dashboards(
    State(s): S,
    Path(deployment): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let owner = match s.account_of(&headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let world = lock(&s.world);
    let Some((acct, w)) = world.accounts.iter().find_map(|a| {
        a.workspaces
            .iter()
            .find(|w| w.workspace.deployment_name.as_deref() == Some(&deployment))
            .map(|w| (a, w))
    }) else {
        return err(
            404,
            "ENDPOINT_NOT_FOUND",
            format!("No workspace {deployment}"),
        );
    };
    if acct.account_id != owner {
        return err(
            403,
            "PERMISSION_DENIED",
            "This credential is not allowed in this workspace",
        );
    }
    let size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .unwrap_or(100);
    let start: usize = q
        .get("page_token")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let all: Vec<_> = w.dashboards.iter().map(dashboard_view).collect();
    let page: Vec<_> = all.iter().skip(start).take(size).cloned().collect();
    let mut answer = json!({ "dashboards": page });
    if start + size < all.len() {
        answer["next_page_token"] = json!((start + size).to_string());
    }
    Json(answer).into_response()
}

// ---- admin ----

async fn get_faults(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.faults).clone()).into_response()
}

async fn put_faults(State(s): S, headers: HeaderMap, Json(patch): Json<Value>) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let mut f = lock(&s.faults);
    let mut cur = serde_json::to_value(&*f).unwrap_or_default();
    if let (Value::Object(c), Value::Object(p)) = (&mut cur, patch) {
        for (k, v) in p {
            c.insert(k, v);
        }
    }
    match serde_json::from_value::<Faults>(cur) {
        Ok(mut new) => {
            if let Some(seed) = new.seed.take() {
                *lock(&s.rng) = fastrand::Rng::with_seed(seed);
            }
            *f = new;
            Json(f.clone()).into_response()
        }
        Err(e) => bad(format!("invalid faults: {e}")),
    }
}

async fn get_stats(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.stats).clone()).into_response()
}

async fn dump_state(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.world).clone()).into_response()
}

async fn admin_delete_key(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let mut world = lock(&s.world);
    let mut found = false;
    for a in &mut world.accounts {
        let n = a.customer_managed_keys.len();
        a.customer_managed_keys
            .retain(|k| k.customer_managed_key_id.as_deref() != Some(&id));
        found |= a.customer_managed_keys.len() != n;
    }
    if !found {
        return not_found_key(&id);
    }
    s.save(&world);
    StatusCode::NO_CONTENT.into_response()
}

fn with_ws<F>(s: &Shared, id: &str, f: F) -> Response
where
    F: FnOnce(&mut super::SandboxWorkspace) -> Result<Value, Response>,
{
    let id = match parse_ws_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut world = lock(&s.world);
    let Some(w) = world
        .accounts
        .iter_mut()
        .flat_map(|a| a.workspaces.iter_mut())
        .find(|w| w.workspace.workspace_id == id)
    else {
        return ws_not_found(id);
    };
    match f(w) {
        Ok(v) => {
            s.save(&world);
            Json(v).into_response()
        }
        Err(r) => r,
    }
}

async fn admin_compute(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let Some(running) = b.get("running").and_then(Value::as_bool) else {
        return bad("body must be {\"running\": true|false}");
    };
    with_ws(&s, &id, |w| {
        w.classic_compute_running = running;
        Ok(json!({"classic_compute_running": running}))
    })
}

async fn admin_add_dashboard(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(d): Json<SeedDashboard>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    with_ws(&s, &id, |w| {
        let mut d = d;
        d.dashboard_id
            .get_or_insert_with(|| new_uuid().replace('-', ""));
        d.create_time.get_or_insert_with(now_rfc3339);
        let view = dashboard_view(&d);
        w.dashboards.push(d);
        Ok(serde_json::to_value(view).unwrap_or_default())
    })
}

async fn admin_status(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let Some(status) = b
        .get("workspace_status")
        .cloned()
        .and_then(|v| serde_json::from_value::<WorkspaceStatus>(v).ok())
    else {
        return bad("body must be {\"workspace_status\": \"RUNNING\"|\"PROVISIONING\"|\"FAILED\"|..., \"workspace_status_message\"?: \"...\"}");
    };
    let msg = b
        .get("workspace_status_message")
        .and_then(Value::as_str)
        .map(str::to_string);
    with_ws(&s, &id, |w| {
        w.workspace.workspace_status = Some(status);
        if msg.is_some() {
            w.workspace.workspace_status_message = msg;
        }
        Ok(ws_json(w))
    })
}

async fn admin_revert_next(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    with_ws(&s, &id, |w| {
        w.revert_next_update = true;
        Ok(json!({"revert_next_update": true}))
    })
}
