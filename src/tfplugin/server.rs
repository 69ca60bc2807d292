//! The `tfplugin6.Provider` gRPC service over a [`Provider`].

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::Poll;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::diagnostics::Diagnostics;
use super::model::Model;
use super::path::AttributePath;
use super::proto::tfplugin6 as pb;
use super::provider::{
    decode, Ctx, DynDataSource, DynResource, Function, PlanChange, Provider, ReadBudget,
};
use super::schema::{AttrType, Schema};
use super::timeouts;
use super::value::{self, Type, Value};

type Reply<T> = Result<Response<T>, Status>;

pub struct ProviderServer<P: Provider> {
    provider: P,
    provider_schema: Schema,
    data_sources: BTreeMap<&'static str, Box<dyn DynDataSource<P::Client>>>,
    resources: BTreeMap<&'static str, Box<dyn DynResource<P::Client>>>,
    functions: BTreeMap<&'static str, Box<dyn Function>>,
    client: RwLock<Option<Arc<P::Client>>>,
    stop: Mutex<CancellationToken>,
}

impl<P: Provider> ProviderServer<P> {
    pub fn new(provider: P) -> Self {
        let provider_schema =
            Schema::of::<P::Config>(0).unwrap_or_else(|e| panic!("provider: {e}"));
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name(), d))
            .collect();
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let functions = provider
            .functions()
            .into_iter()
            .map(|f| (f.name(), f))
            .collect();
        ProviderServer {
            provider,
            provider_schema,
            data_sources,
            resources,
            functions,
            client: RwLock::new(None),
            stop: Mutex::new(CancellationToken::new()),
        }
    }

    /// The whole schema response (also used by the docs generator).
    pub fn schema_response(&self) -> pb::get_provider_schema::Response {
        pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, r)| (k.to_string(), r.schema().to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, d)| (k.to_string(), d.schema().to_proto()))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.to_string(), function_proto(f.as_ref())))
                .collect(),
            ephemeral_resource_schemas: Default::default(),
        }
    }

    pub fn provider_schema(&self) -> &Schema {
        &self.provider_schema
    }
    pub fn data_source_schemas(&self) -> impl Iterator<Item = (&'static str, &Schema)> {
        self.data_sources.iter().map(|(k, d)| (*k, d.schema()))
    }
    pub fn resource_schemas(&self) -> impl Iterator<Item = (&'static str, &Schema)> {
        self.resources.iter().map(|(k, d)| (*k, d.schema()))
    }
    /// Whether resource `name` upgrades state of schema `version`.
    pub fn resource_upgrades_from(&self, name: &str, version: i64) -> bool {
        self.resources
            .get(name)
            .is_some_and(|r| r.upgrades_from(version))
    }
    /// The state upgrade steps of resource `name`.
    pub fn resource_upgraders(&self, name: &str) -> Vec<super::provider::Upgrader> {
        self.resources
            .get(name)
            .map(|r| r.upgraders())
            .unwrap_or_default()
    }
    pub fn function_list(&self) -> impl Iterator<Item = &dyn Function> {
        self.functions.values().map(|f| f.as_ref())
    }

    /// The token that StopProvider cancels (fresh after each stop).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn ctx(&self, diags: &mut Diagnostics) -> Option<Ctx<P::Client>> {
        let client = self
            .client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match client {
            Some(client) => Some(Ctx {
                client,
                cancel: self.stop_token().child_token(),
            }),
            None => {
                diags.error(
                    "Provider not configured",
                    "Terraform called an operation before ConfigureProvider succeeded.",
                );
                None
            }
        }
    }

    /// The provider's read budget, with the configured client.
    fn read_budget(&self, ctx: &Ctx<P::Client>) -> Option<ReadBudget> {
        self.provider.read_budget(&ctx.client)
    }

    /// Resource diagnostics, with paths Terraform can show.
    fn res_diags(&self, type_name: &str, diags: &Diagnostics) -> Vec<pb::Diagnostic> {
        match self.resources.get(type_name) {
            Some(r) => diags.to_proto_for(&r.schema().block),
            None => diags.to_proto(),
        }
    }

    /// Data source diagnostics, with paths Terraform can show.
    fn ds_diags(&self, type_name: &str, diags: &Diagnostics) -> Vec<pb::Diagnostic> {
        match self.data_sources.get(type_name) {
            Some(d) => diags.to_proto_for(&d.schema().block),
            None => diags.to_proto(),
        }
    }

    fn resource(&self, name: &str, diags: &mut Diagnostics) -> Option<&dyn DynResource<P::Client>> {
        let r = self.resources.get(name).map(|r| r.as_ref());
        if r.is_none() {
            diags.error(
                "Unknown resource type",
                format!("This provider has no resource type {name:?}."),
            );
        }
        r
    }

    fn data_source(
        &self,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<&dyn DynDataSource<P::Client>> {
        let d = self.data_sources.get(name).map(|d| d.as_ref());
        if d.is_none() {
            diags.error(
                "Unknown data source",
                format!("This provider has no data source {name:?}."),
            );
        }
        d
    }
}

/// Races a read-only operation against StopProvider; `None` when cancelled.
/// Why a read-only operation stopped before its end.
#[derive(Debug)]
enum Stopped {
    Cancelled,
    OutOfTime(ReadBudget),
}

/// How long past its deadline a read-only operation may run before it is
/// stopped: clients end their own calls at the deadline, with an error
/// naming the call; this catches whatever does not.
const BUDGET_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a read-only operation under Terraform's stop signal and the
/// provider's read budget (see [`Provider::read_budget`]).
async fn read_only<T>(
    token: &CancellationToken,
    budget: Option<ReadBudget>,
    f: impl Future<Output = T>,
) -> Result<T, Stopped> {
    let bounded = budget.and_then(|b| Some((std::time::Instant::now().checked_add(b.limit)?, b)));
    let Some((deadline, b)) = bounded else {
        return cancellable(token, f).await.ok_or(Stopped::Cancelled);
    };
    let stop_at = deadline.checked_add(BUDGET_GRACE).unwrap_or(deadline);
    let scoped = async {
        match b.setting {
            Some(setting) => {
                let o = crate::budget::Override {
                    at: deadline,
                    setting,
                };
                crate::budget::override_scope(o, f).await
            }
            None => crate::budget::scope(deadline, f).await,
        }
    };
    tokio::select! {
        r = scoped => Ok(r),
        _ = token.cancelled() => Err(Stopped::Cancelled),
        _ = tokio::time::sleep_until(stop_at.into()) => Err(Stopped::OutOfTime(b)),
    }
}

/// Runs an apply step under the resource's `timeouts` duration: its clients
/// take the deadline as their budget ([`crate::budget::override_scope`]),
/// and a moment after it the operation's cancel token fires, so waits that
/// do not watch the deadline stop where the resource stops on Ctrl-C
/// (nothing left untracked). Returns whether the time ran out.
async fn under_timeout<T>(
    limit: std::time::Duration,
    op: timeouts::Op,
    cancel: &CancellationToken,
    f: impl Future<Output = T>,
) -> (T, bool) {
    let start = std::time::Instant::now();
    let Some(at) = start.checked_add(limit) else {
        return (f.await, false);
    };
    let o = crate::budget::Override {
        at,
        setting: op.setting(),
    };
    let stop_at = at.checked_add(BUDGET_GRACE).unwrap_or(at);
    let token = cancel.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(stop_at.into()).await;
        token.cancel();
    });
    let out = crate::budget::override_scope(o, f).await;
    timer.abort();
    (out, std::time::Instant::now() >= at)
}

/// The diagnostic of an operation stopped by `why`; `doing` says what it
/// was ("Refreshing cmk_workspace_binding").
fn stopped(diags: &mut Diagnostics, why: Stopped, doing: &str) {
    match why {
        Stopped::Cancelled => cancelled(diags),
        Stopped::OutOfTime(b) => diags.error(
            "Operation took too long",
            match b.setting {
                Some(setting) => format!(
                    "{doing} did not finish within {}, the resource's {setting} (every call and retry in it); it was stopped and nothing was changed. {}",
                    super::timeouts::show(b.limit),
                    b.hint
                ),
                None => format!(
                    "{doing} did not finish within {} seconds, the time one refresh, plan, import or data source read may take in all (every call and retry in it); it was stopped and nothing was changed. {}",
                    b.limit.as_secs_f64(),
                    b.hint
                ),
            },
        ),
    }
}

async fn cancellable<T>(token: &CancellationToken, f: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        r = f => Some(r),
        _ = token.cancelled() => None,
    }
}

fn cancelled(diags: &mut Diagnostics) {
    if diags.0.iter().any(|d| d.summary == "Operation cancelled") {
        return;
    }
    diags.error(
        "Operation cancelled",
        "Terraform asked the provider to stop (for example after Ctrl-C); nothing was changed by this operation.",
    );
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: true,
    }
}

fn function_proto(f: &dyn Function) -> pb::Function {
    let d = f.definition();
    pb::Function {
        parameters: d
            .params
            .iter()
            .map(|p| pb::function::Parameter {
                name: p.name.to_string(),
                r#type: p.ty.to_json_bytes(),
                allow_null_value: p.allow_null,
                allow_unknown_values: false,
                description: p.description.to_string(),
                description_kind: pb::StringKind::Markdown as i32,
            })
            .collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return {
            r#type: d.returns.to_json_bytes(),
        }),
        summary: d.summary.to_string(),
        description: d.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

/// Decodes a DynamicValue (msgpack, or JSON when msgpack is empty).
pub fn decode_dynamic(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
) -> Result<Value, value::CodecError> {
    match dv {
        None => Ok(Value::Null),
        Some(dv) if !dv.msgpack.is_empty() => value::from_msgpack(&dv.msgpack, ty),
        Some(dv) if !dv.json.is_empty() => value::from_json_bytes(&dv.json, ty),
        Some(_) => Ok(Value::Null),
    }
}

fn dynamic_in(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    match decode_dynamic(dv, ty) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error("Invalid value from Terraform", format!("{what}: {e}"));
            None
        }
    }
}

/// Encodes an answer; always msgpack.
fn dynamic_out(v: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<pb::DynamicValue> {
    match value::to_msgpack(v, ty) {
        Ok(b) => Some(pb::DynamicValue {
            msgpack: b,
            json: vec![],
        }),
        Err(e) => {
            diags.error("Provider bug: value does not fit the schema", e.to_string());
            None
        }
    }
}

/// On create: computed attributes left null in the configuration become
/// unknown, in nested single attributes too.
fn mark_unknown_computed(schema: &Schema, config: &Value, planned: &mut Value) {
    mark_unknown_in(&schema.block.attributes, config, planned);
}

fn mark_unknown_in(
    attrs: &[crate::tfplugin::schema::Attribute],
    config: &Value,
    planned: &mut Value,
) {
    for a in attrs {
        let cfg = config.get(&a.name).unwrap_or(&Value::Null);
        let Some(slot) = planned.get_mut(&a.name) else {
            continue;
        };
        if a.flags.computed && cfg.is_null() && slot.is_null() {
            *slot = Value::unknown();
            continue;
        }
        if let AttrType::Nested {
            nesting: crate::tfplugin::schema::Nesting::Single,
            attributes,
        } = &a.ty
        {
            if !slot.is_null() && !slot.is_unknown() {
                mark_unknown_in(attributes, cfg, slot);
            }
        }
    }
}

fn null_write_only(schema: &Schema, v: &mut Value) {
    for a in schema
        .block
        .attributes
        .iter()
        .filter(|a| a.flags.write_only)
    {
        if let Some(slot) = v.get_mut(&a.name) {
            *slot = Value::Null;
        }
    }
}

fn replace_paths(schema: &Schema, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    schema
        .block
        .attributes
        .iter()
        .filter(|a| a.flags.requires_replace)
        .filter(|a| {
            let p = prior.get(&a.name).unwrap_or(&Value::Null);
            let n = planned.get(&a.name).unwrap_or(&Value::Null);
            p != n && !(matches!(a.ty, AttrType::Primitive(_)) && n.is_unknown() && p.is_null())
        })
        .map(|a| AttributePath::new([a.name.as_str()]))
        .collect()
}

/// The RPCs as plain methods; [`Guarded`] serves them over gRPC.
impl<P: Provider> ProviderServer<P> {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Reply<pb::get_metadata::Response> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|k| m::DataSourceMetadata {
                    type_name: k.to_string(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| m::ResourceMetadata {
                    type_name: k.to_string(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|k| m::FunctionMetadata {
                    name: k.to_string(),
                })
                .collect(),
            ephemeral_resources: vec![],
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Reply<pb::get_provider_schema::Response> {
        Ok(Response::new(self.schema_response()))
    }

    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Reply<pb::validate_provider_config::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let ty = self.provider_schema.value_type();
        if let Some(mut v) = dynamic_in(r.config.as_ref(), ty, "provider configuration", &mut diags)
        {
            self.provider_schema.block.apply_defaults(&mut v);
            self.provider_schema
                .block
                .validate(&v, &AttributePath::root(), &mut diags);
            if !diags.has_errors() {
                if let Some(c) = decode::<P::Config>("provider configuration", &v, &mut diags) {
                    self.provider.validate(&c, &mut diags);
                }
            }
        }
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags.to_proto_for(&self.provider_schema.block),
        }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Reply<pb::validate_resource_config::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(res) = self.resource(&r.type_name, &mut diags) {
            if let Some(v) = dynamic_in(
                r.config.as_ref(),
                res.schema().value_type(),
                "configuration",
                &mut diags,
            ) {
                res.validate(&v, &mut diags);
            }
        }
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: self.res_diags(&r.type_name, &diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Reply<pb::validate_data_resource_config::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(ds) = self.data_source(&r.type_name, &mut diags) {
            if let Some(v) = dynamic_in(
                r.config.as_ref(),
                ds.schema().value_type(),
                "configuration",
                &mut diags,
            ) {
                ds.validate(&v, &mut diags);
            }
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: self.ds_diags(&r.type_name, &diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Reply<pb::upgrade_resource_state::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut upgraded = None;
        if let Some(res) = self.resource(&r.type_name, &mut diags) {
            let json = r
                .raw_state
                .as_ref()
                .map(|s| s.json.as_slice())
                .unwrap_or_default();
            if json.is_empty() {
                diags.error(
                    "Unsupported state format",
                    "Only JSON state is supported (flatmap state predates this provider).",
                );
            } else {
                match serde_json::from_slice::<serde_json::Value>(json) {
                    Ok(j) => {
                        if let Some(v) = res.upgrade(r.version, j, &mut diags) {
                            upgraded = dynamic_out(&v, res.schema().value_type(), &mut diags);
                        }
                    }
                    Err(e) => diags.error("Stored state is not JSON", e.to_string()),
                }
            }
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: self.res_diags(&r.type_name, &diags),
        }))
    }

    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Reply<pb::configure_provider::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let ty = self.provider_schema.value_type();
        if let Some(mut v) = dynamic_in(r.config.as_ref(), ty, "provider configuration", &mut diags)
        {
            self.provider_schema.block.apply_defaults(&mut v);
            if let Some(c) = decode::<P::Config>("provider configuration", &v, &mut diags) {
                if let Some(client) = self
                    .provider
                    .configure(c, &r.terraform_version, &mut diags)
                    .await
                {
                    *self.client.write().unwrap_or_else(PoisonError::into_inner) =
                        Some(Arc::new(client));
                }
            }
        }
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags.to_proto_for(&self.provider_schema.block),
        }))
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Reply<pb::read_resource::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut new_state = None;
        if let (Some(res), Some(ctx)) = (
            self.resources.get(r.type_name.as_str()),
            self.ctx(&mut diags),
        ) {
            let ty = res.schema().value_type();
            if let Some(state) =
                dynamic_in(r.current_state.as_ref(), ty, "current state", &mut diags)
            {
                let keep = state.clone();
                let token = ctx.cancel.clone();
                let budget = match timeouts::of(res.schema(), &state, timeouts::Op::Read) {
                    Some(limit) => Some(ReadBudget {
                        limit,
                        hint: "Raise `read` in the resource's timeouts block, or remove it to use the provider's retry_timeout_seconds.".into(),
                        setting: Some(timeouts::Op::Read.setting()),
                    }),
                    None => self.read_budget(&ctx),
                };
                match read_only(&token, budget, res.read(&ctx, state, &mut diags)).await {
                    // gone: null removes it from state
                    Ok(out) => {
                        let out = match out {
                            Some(v) => v,
                            None if diags.has_errors() => keep,
                            None => Value::Null,
                        };
                        new_state = dynamic_out(&out, ty, &mut diags);
                    }
                    Err(why) => {
                        stopped(&mut diags, why, &format!("Refreshing {}", r.type_name));
                        new_state = dynamic_out(&keep, ty, &mut diags);
                    }
                }
            }
        } else if !self.resources.contains_key(r.type_name.as_str()) {
            self.resource(&r.type_name, &mut diags);
        }
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: self.res_diags(&r.type_name, &diags),
            private: r.private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Reply<pb::plan_resource_change::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut planned_state = None;
        let mut requires_replace = vec![];
        'plan: {
            let Some(res) = self.resource(&r.type_name, &mut diags) else {
                break 'plan;
            };
            let Some(ctx) = self.ctx(&mut diags) else {
                break 'plan;
            };
            let schema = res.schema();
            let ty = schema.value_type();
            let Some(prior) = dynamic_in(r.prior_state.as_ref(), ty, "prior state", &mut diags)
            else {
                break 'plan;
            };
            let Some(proposed) = dynamic_in(
                r.proposed_new_state.as_ref(),
                ty,
                "proposed state",
                &mut diags,
            ) else {
                break 'plan;
            };
            let Some(config) = dynamic_in(r.config.as_ref(), ty, "configuration", &mut diags)
            else {
                break 'plan;
            };
            if proposed.is_null() {
                // destroy
                if !prior.is_null() {
                    let token = ctx.cancel.clone();
                    let budget = self.read_budget(&ctx);
                    if let Err(why) =
                        read_only(&token, budget, res.plan_destroy(&ctx, &prior, &mut diags)).await
                    {
                        let doing = format!("Planning the destroy of {}", r.type_name);
                        stopped(&mut diags, why, &doing);
                    }
                }
                planned_state = dynamic_out(&Value::Null, ty, &mut diags);
                break 'plan;
            }
            let mut planned = proposed;
            let mut config_d = config.clone();
            schema.block.apply_defaults(&mut config_d);
            // An attribute left unset plans its default, not the prior value:
            // otherwise drift from the default would never show.
            for a in schema
                .block
                .attributes
                .iter()
                .filter(|a| a.default.is_some())
            {
                if config.get(&a.name).is_none_or(Value::is_null) {
                    if let (Some(slot), Some(d)) = (planned.get_mut(&a.name), &a.default) {
                        *slot = d.clone();
                    }
                }
            }
            schema
                .block
                .validate(&config_d, &AttributePath::root(), &mut diags);
            timeouts::validate(schema, &config, &mut diags);
            if diags.has_errors() {
                break 'plan;
            }
            let prior_opt = if prior.is_null() { None } else { Some(prior) };
            match &prior_opt {
                None => mark_unknown_computed(schema, &config, &mut planned),
                Some(p) => requires_replace = replace_paths(schema, p, &planned),
            }
            null_write_only(schema, &mut planned);
            let change = PlanChange {
                prior: prior_opt,
                config: config_d,
                planned,
                requires_replace: std::mem::take(&mut requires_replace),
            };
            let token = ctx.cancel.clone();
            let budget = self.read_budget(&ctx);
            let out = match read_only(&token, budget, res.plan(&ctx, change, &mut diags)).await {
                Ok(out) => out,
                Err(why) => {
                    stopped(&mut diags, why, &format!("Planning {}", r.type_name));
                    None
                }
            };
            if out.is_none() && token.is_cancelled() && !diags.has_errors() {
                cancelled(&mut diags);
            }
            if let Some((mut v, rr)) = out {
                null_write_only(schema, &mut v);
                requires_replace = rr;
                planned_state = dynamic_out(&v, ty, &mut diags);
            }
        }
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace: requires_replace
                .iter()
                .map(AttributePath::to_proto)
                .collect(),
            planned_private: r.prior_private,
            diagnostics: self.res_diags(&r.type_name, &diags),
            legacy_type_system: false,
            deferred: None,
        }))
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Reply<pb::apply_resource_change::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut new_state = None;
        'apply: {
            let Some(res) = self.resource(&r.type_name, &mut diags) else {
                break 'apply;
            };
            let Some(ctx) = self.ctx(&mut diags) else {
                break 'apply;
            };
            let schema = res.schema();
            let ty = schema.value_type();
            let Some(prior) = dynamic_in(r.prior_state.as_ref(), ty, "prior state", &mut diags)
            else {
                break 'apply;
            };
            let Some(planned) =
                dynamic_in(r.planned_state.as_ref(), ty, "planned state", &mut diags)
            else {
                break 'apply;
            };
            // Apply is not raced against StopProvider: the resource watches
            // ctx.cancel itself, at points where nothing is left untracked.
            let planned_was_null = planned.is_null();
            let op = if planned_was_null {
                timeouts::Op::Delete
            } else if prior.is_null() {
                timeouts::Op::Create
            } else {
                timeouts::Op::Update
            };
            let limit = timeouts::of(schema, if planned_was_null { &prior } else { &planned }, op);
            let run = async {
                if planned.is_null() {
                    res.delete(&ctx, prior.clone(), &mut diags).await;
                    if diags.has_errors() {
                        Some(prior)
                    } else {
                        Some(Value::Null)
                    }
                } else if prior.is_null() {
                    res.create(&ctx, planned, &mut diags).await
                } else {
                    let out = res.update(&ctx, prior.clone(), planned, &mut diags).await;
                    out.or(Some(prior))
                }
            };
            let (out, ran_out) = match limit {
                None => (run.await, None),
                Some(limit) => {
                    let (out, ran_out) = under_timeout(limit, op, &ctx.cancel, run).await;
                    (out, ran_out.then_some(limit))
                }
            };
            if let Some(limit) = ran_out {
                if diags.has_errors() || ctx.is_cancelled() {
                    diags.error(
                        format!("{} {} ran out of time", r.type_name, op.name()),
                        format!(
                            "The {} did not finish within {}, the resource's `{}`, which replaces the provider's timeout settings for it; it was stopped where nothing is left untracked. Raise `{}` in the resource's timeouts block (forms: {}), or remove it to use the provider's settings.",
                            op.name(),
                            timeouts::show(limit),
                            op.setting(),
                            op.name(),
                            timeouts::FORMS
                        ),
                    );
                }
            } else if ctx.is_cancelled()
                && !diags.has_errors()
                && out.as_ref().is_none_or(|v| v.is_null())
                && !planned_was_null
            {
                cancelled(&mut diags);
            }
            if let Some(mut v) = out {
                null_write_only(schema, &mut v);
                if !v.is_wholly_known() {
                    diags.error(
                        "Provider bug: unknown value after apply",
                        format!(
                            "{} returned a state with values still unknown.",
                            r.type_name
                        ),
                    );
                }
                new_state = dynamic_out(&v, ty, &mut diags);
            }
        }
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: r.planned_private,
            diagnostics: self.res_diags(&r.type_name, &diags),
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Reply<pb::import_resource_state::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut imported = vec![];
        if let (Some(res), Some(ctx)) = (
            self.resources.get(r.type_name.as_str()),
            self.ctx(&mut diags),
        ) {
            let token = ctx.cancel.clone();
            let budget = self.read_budget(&ctx);
            match read_only(&token, budget, res.import(&ctx, &r.id, &mut diags)).await {
                Ok(Some(v)) => {
                    if let Some(state) = dynamic_out(&v, res.schema().value_type(), &mut diags) {
                        imported.push(pb::import_resource_state::ImportedResource {
                            type_name: r.type_name.clone(),
                            state: Some(state),
                            private: vec![],
                        });
                    }
                }
                Ok(None) => {}
                Err(why) => stopped(&mut diags, why, &format!("Importing {}", r.type_name)),
            }
        } else if !self.resources.contains_key(r.type_name.as_str()) {
            self.resource(&r.type_name, &mut diags);
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: self.res_diags(&r.type_name, &diags),
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        r: Request<pb::move_resource_state::Request>,
    ) -> Reply<pb::move_resource_state::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut target = None;
        if let Some(res) = self.resource(&r.target_type_name, &mut diags) {
            let json = r
                .source_state
                .as_ref()
                .map(|s| s.json.as_slice())
                .unwrap_or_default();
            match serde_json::from_slice::<serde_json::Value>(json) {
                Ok(j) => {
                    if let Some(v) = res.move_from(
                        &r.source_provider_address,
                        &r.source_type_name,
                        r.source_schema_version,
                        &j,
                        &mut diags,
                    ) {
                        target = dynamic_out(&v, res.schema().value_type(), &mut diags);
                    }
                }
                Err(e) => diags.error("Source state is not JSON", e.to_string()),
            }
        }
        Ok(Response::new(pb::move_resource_state::Response {
            target_state: target,
            diagnostics: self.res_diags(&r.target_type_name, &diags),
            target_private: vec![],
        }))
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Reply<pb::read_data_source::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut state = None;
        'read: {
            let Some(ds) = self.data_source(&r.type_name, &mut diags) else {
                break 'read;
            };
            let Some(ctx) = self.ctx(&mut diags) else {
                break 'read;
            };
            let ty = ds.schema().value_type();
            let Some(config) = dynamic_in(r.config.as_ref(), ty, "configuration", &mut diags)
            else {
                break 'read;
            };
            let token = ctx.cancel.clone();
            let budget = self.read_budget(&ctx);
            let out = match read_only(&token, budget, ds.read(&ctx, config, &mut diags)).await {
                Ok(out) => out,
                Err(why) => {
                    stopped(
                        &mut diags,
                        why,
                        &format!("Reading data source {}", r.type_name),
                    );
                    None
                }
            };
            if out.is_none() && token.is_cancelled() && !diags.has_errors() {
                cancelled(&mut diags);
            }
            if let Some(v) = out {
                state = dynamic_out(&v, ty, &mut diags);
            }
        }
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: self.ds_diags(&r.type_name, &diags),
            deferred: None,
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Reply<pb::validate_ephemeral_resource_config::Response> {
        let mut diags = Diagnostics::default();
        diags.error(
            "Unknown ephemeral resource",
            format!(
                "This provider has no ephemeral resource {:?}.",
                r.get_ref().type_name
            ),
        );
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diags.to_proto(),
            },
        ))
    }
    async fn open_ephemeral_resource(
        &self,
        _r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Reply<pb::open_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this provider has no ephemeral resources",
        ))
    }
    async fn renew_ephemeral_resource(
        &self,
        _r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Reply<pb::renew_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this provider has no ephemeral resources",
        ))
    }
    async fn close_ephemeral_resource(
        &self,
        _r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Reply<pb::close_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this provider has no ephemeral resources",
        ))
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Reply<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.to_string(), function_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        r: Request<pb::call_function::Request>,
    ) -> Reply<pb::call_function::Response> {
        let r = r.into_inner();
        let fail = |text: String, arg: Option<i64>| {
            Ok(Response::new(pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text,
                    function_argument: arg,
                }),
            }))
        };
        let Some(f) = self.functions.get(r.name.as_str()) else {
            return fail(format!("This provider has no function {:?}.", r.name), None);
        };
        let def = f.definition();
        if r.arguments.len() != def.params.len() {
            return fail(
                format!(
                    "{} takes {} arguments, got {}.",
                    r.name,
                    def.params.len(),
                    r.arguments.len()
                ),
                None,
            );
        }
        let mut args = Vec::with_capacity(def.params.len());
        for (i, (a, p)) in r.arguments.iter().zip(&def.params).enumerate() {
            match decode_dynamic(Some(a), &p.ty) {
                Ok(v) => args.push(v),
                Err(e) => return fail(format!("argument {}: {e}", p.name), Some(i as i64)),
            }
        }
        match f.call(args) {
            Ok(v) => match value::to_msgpack(&v, &def.returns) {
                Ok(b) => Ok(Response::new(pb::call_function::Response {
                    result: Some(pb::DynamicValue {
                        msgpack: b,
                        json: vec![],
                    }),
                    error: None,
                })),
                Err(e) => fail(
                    format!("provider bug: result does not fit the return type: {e}"),
                    None,
                ),
            },
            Err(e) => fail(e.text, e.argument),
        }
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Reply<pb::stop_provider::Response> {
        // Cancel what runs now; later calls get a fresh token and the server keeps answering.
        let mut t = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        t.cancel();
        *t = CancellationToken::new();
        tracing::info!("StopProvider: in-flight operations cancelled");
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

/// Serves a [`ProviderServer`] over gRPC. A panic inside any RPC becomes an
/// error diagnostic in that RPC's answer and the plugin keeps serving:
/// otherwise the connection would drop and Terraform would show only
/// "Request cancelled" (and every later RPC would fail).
pub struct Guarded<P: Provider>(pub ProviderServer<P>);

/// An RPC answer that carries the panic of its handler.
trait PanicReply {
    fn panicked(summary: &str, detail: String) -> Self;
}

macro_rules! diagnostics_replies {
    ($($m:ident),* $(,)?) => {$(
        impl PanicReply for pb::$m::Response {
            // Some answers have no field but the diagnostics.
            #[allow(clippy::needless_update)]
            fn panicked(summary: &str, detail: String) -> Self {
                let mut d = Diagnostics::default();
                d.error(summary, detail);
                pb::$m::Response {
                    diagnostics: d.to_proto(),
                    ..Default::default()
                }
            }
        }
    )*};
}

impl PanicReply for pb::call_function::Response {
    fn panicked(summary: &str, detail: String) -> Self {
        pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("{summary}: {detail}"),
                function_argument: None,
            }),
        }
    }
}

impl PanicReply for pb::stop_provider::Response {
    fn panicked(summary: &str, detail: String) -> Self {
        pb::stop_provider::Response {
            error: format!("{summary}: {detail}"),
        }
    }
}

/// The text of a panic, cut to a readable length.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    if text.chars().count() > 500 {
        text.chars().take(500).collect::<String>() + "..."
    } else {
        text
    }
}

/// Runs an RPC; a panic while it is polled becomes its error answer. A
/// panicked future is never polled again.
async fn guarded<T: PanicReply>(rpc: &str, f: impl Future<Output = Reply<T>>) -> Reply<T> {
    let mut f = std::pin::pin!(f);
    let caught = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await;
    match caught {
        Ok(r) => r,
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            tracing::error!(rpc, panic = %text, "the provider panicked; answering with an error");
            Ok(Response::new(T::panicked(
                "Provider bug: internal error",
                format!(
                    "The provider panicked while handling {rpc}: {text}\n\nThis is a bug in the provider; please report it with the Terraform log (TF_LOG=debug). The provider keeps serving other operations."
                ),
            )))
        }
    }
}

/// Every RPC, guarded; those whose answer carries diagnostics get their
/// [`PanicReply`] here too, so the RPCs are listed once.
macro_rules! guarded_rpcs {
    (diagnostics: [$($d:ident),* $(,)?], others: [$($o:ident),* $(,)?] $(,)?) => {
        diagnostics_replies!($($d),*);
        guarded_rpcs!($($d,)* $($o),*);
    };
    ($($m:ident),* $(,)?) => {
        #[tonic::async_trait]
        impl<P: Provider> pb::provider_server::Provider for Guarded<P> {
            $(
                async fn $m(&self, r: Request<pb::$m::Request>) -> Reply<pb::$m::Response> {
                    guarded(stringify!($m), self.0.$m(r)).await
                }
            )*
        }
    };
}

guarded_rpcs!(
    diagnostics: [
        get_metadata,
        get_provider_schema,
        validate_provider_config,
        validate_resource_config,
        validate_data_resource_config,
        upgrade_resource_state,
        configure_provider,
        read_resource,
        plan_resource_change,
        apply_resource_change,
        import_resource_state,
        move_resource_state,
        read_data_source,
        validate_ephemeral_resource_config,
        open_ephemeral_resource,
        renew_ephemeral_resource,
        close_ephemeral_resource,
        get_functions,
    ],
    others: [call_function, stop_provider],
);

/// Decodes a model from a wholly known JSON value of its schema (for tests and tools).
pub fn model_from_json<M: Model>(schema: &Schema, j: &serde_json::Value) -> Result<M, String> {
    let v = value::from_json_value(j, schema.value_type()).map_err(|e| e.to_string())?;
    super::model::from_value(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod read_only_tests {
    use super::*;
    use std::time::Duration;

    fn budget(ms: u64) -> Option<ReadBudget> {
        Some(ReadBudget {
            limit: Duration::from_millis(ms),
            hint: "Set the budget higher.".into(),
            setting: None,
        })
    }

    #[tokio::test]
    async fn an_operation_that_outlives_its_budget_is_stopped_and_says_why() {
        let token = CancellationToken::new();
        let start = std::time::Instant::now();
        let r = read_only(&token, budget(100), async {
            // the clients see the deadline
            assert!(crate::budget::current().is_some());
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        assert!(start.elapsed() < Duration::from_secs(10));
        let Err(why) = r else { panic!("not stopped") };
        let mut diags = Diagnostics::default();
        stopped(&mut diags, why, "Planning x_thing");
        let d = &diags.0[0];
        assert_eq!(d.summary, "Operation took too long");
        assert!(d
            .detail
            .contains("Planning x_thing did not finish within 0.1 seconds"));
        assert!(d.detail.ends_with("Set the budget higher."), "{}", d.detail);
    }

    #[tokio::test]
    async fn within_budget_or_without_one_the_result_comes_back_and_cancel_still_stops() {
        let token = CancellationToken::new();
        assert!(matches!(
            read_only(&token, budget(60_000), async { 7 }).await,
            Ok(7)
        ));
        assert!(matches!(read_only(&token, None, async { 8 }).await, Ok(8)));
        assert!(read_only(&token, None, async { crate::budget::current() })
            .await
            .unwrap()
            .is_none());
        token.cancel();
        let r = read_only(&token, budget(60_000), std::future::pending::<()>()).await;
        assert!(matches!(r, Err(Stopped::Cancelled)));
    }
}
