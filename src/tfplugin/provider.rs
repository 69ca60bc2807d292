//! What a provider built on this layer implements: typed traits over model
//! structs. The layer erases them ([`DynDataSource`], [`DynResource`]) so the
//! server can hold every object of a provider in one table.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diagnostics::Diagnostics;
use super::model::{self, Model};
use super::path::AttributePath;
use super::schema::Schema;
use super::value::{Type, Value};

/// What an operation gets: the configured client, and the signal Terraform
/// raises with StopProvider (for example on Ctrl-C). Long operations must
/// watch `cancel` and return promptly, leaving nothing untracked.
pub struct Ctx<C> {
    pub client: Arc<C>,
    pub cancel: CancellationToken,
}

impl<C> Ctx<C> {
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// The time one read-only operation may take, and what to tell a person
/// when it runs out (which setting raises it).
#[derive(Debug, Clone)]
pub struct ReadBudget {
    pub limit: std::time::Duration,
    pub hint: String,
    /// The resource's own `timeouts.read`, when the budget is that: it then
    /// replaces the clients' budgets (see [`crate::budget::override_scope`]).
    pub setting: Option<&'static str>,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The `provider "..." {}` block.
    type Config: Model;
    /// What `configure` builds and every operation gets.
    type Client: Send + Sync + 'static;

    fn validate(&self, _config: &Self::Config, _diags: &mut Diagnostics) {}

    /// How long one read-only operation may take in all: a refresh, a
    /// plan, an import, a data source read. `None`: no bound. The layer runs
    /// the operation under [`crate::budget::scope`] (clients cut their own
    /// retries to it) and stops it a moment after the deadline; nothing was
    /// changed, and the error carries `hint`. Applies are not cut: they
    /// write, and their calls have budgets of their own.
    fn read_budget(&self, _client: &Self::Client) -> Option<ReadBudget> {
        None
    }

    async fn configure(
        &self,
        config: Self::Config,
        terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<Self::Client>;

    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Self::Client>>>;
    fn resources(&self) -> Vec<Box<dyn DynResource<Self::Client>>>;
    fn functions(&self) -> Vec<Box<dyn Function>>;
}

#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    type Model: Model;
    type Client: Send + Sync + 'static;
    /// The full type name, e.g. `cmk_kms_key_policy`.
    const TYPE_NAME: &'static str;

    /// Checks the configuration; values may be unknown here.
    fn validate(&self, _config: &Self::Model, _diags: &mut Diagnostics) {}

    /// Reads with a wholly known configuration (defaults filled).
    async fn read(
        &self,
        ctx: &Ctx<Self::Client>,
        config: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;
}

/// The plan of a create or an update, for a resource to adjust.
pub struct PlanChange<M> {
    /// The prior state; `None` on create.
    pub prior: Option<M>,
    pub config: M,
    /// What the layer proposes: config, defaults, prior values of computed
    /// attributes on update, unknown computed attributes on create.
    pub planned: M,
    /// Attributes whose change replaces the resource (flags already added).
    pub requires_replace: Vec<AttributePath>,
}

#[async_trait]
pub trait Resource: Send + Sync + 'static {
    type Model: Model;
    type Client: Send + Sync + 'static;
    const TYPE_NAME: &'static str;
    const SCHEMA_VERSION: i64 = 0;

    fn validate(&self, _config: &Self::Model, _diags: &mut Diagnostics) {}

    /// Adjusts a create or update plan; may read live facts (cheaply).
    async fn plan(
        &self,
        _ctx: &Ctx<Self::Client>,
        _change: &mut PlanChange<Self::Model>,
        _diags: &mut Diagnostics,
    ) {
    }

    /// Called when Terraform plans to destroy the object; an error refuses it.
    async fn plan_destroy(
        &self,
        _ctx: &Ctx<Self::Client>,
        _prior: &Self::Model,
        _diags: &mut Diagnostics,
    ) {
    }

    /// Creates the object. On failure after the object exists, return its
    /// state with the error, so Terraform tracks it (as tainted).
    async fn create(
        &self,
        ctx: &Ctx<Self::Client>,
        planned: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;

    /// Refreshes; `None` when the object is gone.
    async fn read(
        &self,
        ctx: &Ctx<Self::Client>,
        state: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;

    async fn update(
        &self,
        ctx: &Ctx<Self::Client>,
        prior: Self::Model,
        planned: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;

    async fn delete(&self, ctx: &Ctx<Self::Client>, prior: Self::Model, diags: &mut Diagnostics);

    /// `terraform import` / `import {}` blocks. The default refuses.
    async fn import(
        &self,
        _ctx: &Ctx<Self::Client>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model> {
        diags.error(
            "Import not supported",
            format!("{} cannot be imported (id {id:?}).", Self::TYPE_NAME),
        );
        None
    }

    /// The steps that bring a stored state from an earlier schema version to
    /// [`Self::SCHEMA_VERSION`]: one [`Upgrader`] per earlier version, each
    /// taking the JSON of its version `from` to `from + 1`. The layer runs
    /// them in a chain (see [`upgrade_chain`]). The default has none: state
    /// of another version than the current one is refused.
    fn upgraders(&self) -> Vec<Upgrader> {
        vec![]
    }

    /// `moved {}` from another resource type (possibly of another provider).
    /// The default refuses.
    fn move_from(
        &self,
        source_provider: &str,
        source_type: &str,
        _source_version: i64,
        _state: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model> {
        diags.error(
            "Move not supported",
            format!(
                "{} cannot take state moved from {source_type} of {source_provider}.",
                Self::TYPE_NAME
            ),
        );
        None
    }
}

/// One step of a state upgrade: stored state JSON of schema version `from`
/// into the JSON of version `from + 1`.
#[derive(Clone, Copy)]
pub struct Upgrader {
    pub from: i64,
    /// What changed in `from + 1` (for messages and the upgrade notes).
    pub change: &'static str,
    pub step: fn(serde_json::Value) -> Result<serde_json::Value, String>,
}

/// The version `from` an upgrade chain can start at: every version from it
/// up to `current` has its step.
pub fn chain_complete(upgraders: &[Upgrader], from: i64, current: i64) -> bool {
    (from..current).all(|v| upgraders.iter().any(|u| u.from == v))
}

/// Brings `state` (JSON of schema `version`) to `current` through the steps
/// of `upgraders`; the state of the current version passes through. A state
/// of a newer version was written by a newer provider: refused, saying so.
pub fn upgrade_chain(
    type_name: &str,
    current: i64,
    version: i64,
    mut state: serde_json::Value,
    upgraders: &[Upgrader],
    diags: &mut Diagnostics,
) -> Option<serde_json::Value> {
    if version > current {
        diags.error(
            "State written by a newer provider",
            format!(
                "The state of this {type_name} has schema version {version}, written by a newer version of this provider; this version knows schema versions up to {current}. Upgrade the provider (its version constraint in required_providers) to the version that wrote the state or later, then run terraform init -upgrade."
            ),
        );
        return None;
    }
    if version < 0 {
        diags.error(
            "Invalid state version",
            format!(
                "The state of this {type_name} has schema version {version}; versions start at 0."
            ),
        );
        return None;
    }
    for v in version..current {
        let Some(u) = upgraders.iter().find(|u| u.from == v) else {
            diags.error(
                "Unsupported state version",
                format!(
                    "The state of this {type_name} has schema version {version}, and this provider cannot upgrade state from version {v} to {} (it knows schema version {current}). Use a provider version between the one that wrote the state and this one first.",
                    v + 1
                ),
            );
            return None;
        };
        match (u.step)(state) {
            Ok(next) => state = next,
            Err(e) => {
                diags.error(
                    "State upgrade failed",
                    format!(
                        "Upgrading the state of this {type_name} from schema version {v} to {} ({}) failed: {e}",
                        v + 1,
                        u.change
                    ),
                );
                return None;
            }
        }
    }
    Some(state)
}

/// A provider function: pure, synchronous.
pub trait Function: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn definition(&self) -> FunctionDef;
    fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError>;
}

pub struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
    pub allow_null: bool,
}

pub struct FunctionDef {
    pub summary: &'static str,
    pub description: &'static str,
    pub params: Vec<Param>,
    pub returns: Type,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub text: String,
    /// The index of the argument at fault.
    pub argument: Option<i64>,
}

impl FunctionError {
    pub fn at(argument: usize, text: impl Into<String>) -> Self {
        FunctionError {
            text: text.into(),
            argument: Some(argument as i64),
        }
    }
}

// ---------------------------------------------------------------- erasure

/// A data source as the server holds it.
#[async_trait]
pub trait DynDataSource<C>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> &Schema;
    fn validate(&self, config: &Value, diags: &mut Diagnostics);
    async fn read(&self, ctx: &Ctx<C>, config: Value, diags: &mut Diagnostics) -> Option<Value>;
    /// The value decoded into the model and encoded back: what a plan
    /// returns for it (tests of the layer).
    #[cfg(test)]
    fn round_trip(&self, v: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// A resource as the server holds it.
#[async_trait]
pub trait DynResource<C>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> &Schema;
    fn validate(&self, config: &Value, diags: &mut Diagnostics);
    /// The value decoded into the model and encoded back: what a plan
    /// returns for it (tests of the layer).
    #[cfg(test)]
    fn round_trip(&self, v: &Value, diags: &mut Diagnostics) -> Option<Value>;
    async fn plan(
        &self,
        ctx: &Ctx<C>,
        change: PlanChange<Value>,
        diags: &mut Diagnostics,
    ) -> Option<(Value, Vec<AttributePath>)>;
    async fn plan_destroy(&self, ctx: &Ctx<C>, prior: &Value, diags: &mut Diagnostics);
    async fn create(&self, ctx: &Ctx<C>, planned: Value, diags: &mut Diagnostics) -> Option<Value>;
    async fn read(&self, ctx: &Ctx<C>, state: Value, diags: &mut Diagnostics) -> Option<Value>;
    async fn update(
        &self,
        ctx: &Ctx<C>,
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    async fn delete(&self, ctx: &Ctx<C>, prior: Value, diags: &mut Diagnostics);
    async fn import(&self, ctx: &Ctx<C>, id: &str, diags: &mut Diagnostics) -> Option<Value>;
    /// Upgrades stored state JSON of schema `version` to the current
    /// schema's value: the resource's upgraders in a chain, then attributes
    /// the schema no longer has dropped and missing ones null.
    fn upgrade(
        &self,
        version: i64,
        state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    /// Whether state of schema `version` (at most the current one) upgrades.
    fn upgrades_from(&self, version: i64) -> bool;
    /// The steps of its state upgrades.
    fn upgraders(&self) -> Vec<Upgrader>;
    fn move_from(
        &self,
        provider: &str,
        ty: &str,
        version: i64,
        state: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
}

/// Decodes a value into a model, or explains on the diagnostics what did not fit.
pub fn decode<M: Model>(what: &str, v: &Value, diags: &mut Diagnostics) -> Option<M> {
    match model::from_value(v) {
        Ok(m) => Some(m),
        Err(e) => {
            diags.error("Invalid value", format!("{what}: {e}"));
            None
        }
    }
}

/// Encodes a model, normalized to its schema's type (every attribute present).
pub fn encode<M: Model>(schema: &Schema, m: &M, diags: &mut Diagnostics) -> Option<Value> {
    match model::to_value(m) {
        Ok(mut v) => {
            normalize(schema.value_type(), &mut v);
            Some(v)
        }
        Err(e) => {
            diags.error("Provider bug: model does not encode", e.to_string());
            None
        }
    }
}

/// Adds missing object attributes as null so values conform to the type.
pub fn normalize(ty: &Type, v: &mut Value) {
    match (ty, v) {
        (Type::Object(attrs), Value::Map(m)) => {
            for (k, t) in attrs {
                normalize(t, m.entry(k.clone()).or_insert(Value::Null));
            }
        }
        (Type::List(t) | Type::Set(t), Value::List(items)) => {
            items.iter_mut().for_each(|x| normalize(t, x))
        }
        (Type::Map(t), Value::Map(m)) => m.values_mut().for_each(|x| normalize(t, x)),
        _ => {}
    }
}

/// A configuration with defaults filled, checked against its schema (allowed
/// values, sizes), then decoded; `None` when that already failed.
fn checked_config<M: Model>(
    schema: &Schema,
    what: &str,
    config: &Value,
    diags: &mut Diagnostics,
) -> Option<M> {
    let mut config = config.clone();
    schema.block.apply_defaults(&mut config);
    schema
        .block
        .validate(&config, &AttributePath::root(), diags);
    if diags.has_errors() {
        return None;
    }
    decode::<M>(what, &config, diags)
}

struct DataSourceAdapter<D: DataSource> {
    inner: D,
    schema: Schema,
}

/// Registers a data source; its schema is derived from its model once, here.
pub fn data_source<D: DataSource>(d: D) -> Box<dyn DynDataSource<D::Client>> {
    let schema = Schema::of::<D::Model>(0).unwrap_or_else(|e| panic!("{}: {e}", D::TYPE_NAME));
    Box::new(DataSourceAdapter { inner: d, schema })
}

#[async_trait]
impl<D: DataSource> DynDataSource<D::Client> for DataSourceAdapter<D> {
    fn type_name(&self) -> &'static str {
        D::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(m) = checked_config::<D::Model>(&self.schema, D::TYPE_NAME, config, diags) {
            self.inner.validate(&m, diags);
        }
    }
    #[cfg(test)]
    fn round_trip(&self, v: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let m = decode::<D::Model>(D::TYPE_NAME, v, diags)?;
        encode(&self.schema, &m, diags)
    }
    async fn read(
        &self,
        ctx: &Ctx<D::Client>,
        mut config: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        self.schema.block.apply_defaults(&mut config);
        self.schema
            .block
            .validate(&config, &AttributePath::root(), diags);
        if diags.has_errors() {
            return None;
        }
        let m = decode::<D::Model>(D::TYPE_NAME, &config, diags)?;
        self.inner.validate(&m, diags);
        if diags.has_errors() {
            return None;
        }
        let out = self.inner.read(ctx, m, diags).await?;
        encode(&self.schema, &out, diags)
    }
}

struct ResourceAdapter<R: Resource> {
    inner: R,
    schema: Schema,
}

/// Registers a resource; its schema is derived from its model once, here.
pub fn resource<R: Resource>(r: R) -> Box<dyn DynResource<R::Client>> {
    let schema = Schema::of::<R::Model>(R::SCHEMA_VERSION)
        .unwrap_or_else(|e| panic!("{}: {e}", R::TYPE_NAME));
    Box::new(ResourceAdapter { inner: r, schema })
}

#[async_trait]
impl<R: Resource> DynResource<R::Client> for ResourceAdapter<R> {
    fn type_name(&self) -> &'static str {
        R::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::timeouts::validate(&self.schema, config, diags);
        if let Some(m) = checked_config::<R::Model>(&self.schema, R::TYPE_NAME, config, diags) {
            self.inner.validate(&m, diags);
        }
    }
    #[cfg(test)]
    fn round_trip(&self, v: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let m = decode::<R::Model>(R::TYPE_NAME, v, diags)?;
        encode(&self.schema, &m, diags)
    }
    async fn plan(
        &self,
        ctx: &Ctx<R::Client>,
        change: PlanChange<Value>,
        diags: &mut Diagnostics,
    ) -> Option<(Value, Vec<AttributePath>)> {
        let what = R::TYPE_NAME;
        let mut typed = PlanChange {
            prior: match &change.prior {
                Some(p) => Some(decode::<R::Model>(what, p, diags)?),
                None => None,
            },
            config: decode::<R::Model>(what, &change.config, diags)?,
            planned: decode::<R::Model>(what, &change.planned, diags)?,
            requires_replace: change.requires_replace,
        };
        self.inner.validate(&typed.config, diags);
        if diags.has_errors() {
            return None;
        }
        self.inner.plan(ctx, &mut typed, diags).await;
        let planned = encode(&self.schema, &typed.planned, diags)?;
        Some((planned, typed.requires_replace))
    }
    async fn plan_destroy(&self, ctx: &Ctx<R::Client>, prior: &Value, diags: &mut Diagnostics) {
        if let Some(p) = decode::<R::Model>(R::TYPE_NAME, prior, diags) {
            self.inner.plan_destroy(ctx, &p, diags).await;
        }
    }
    async fn create(
        &self,
        ctx: &Ctx<R::Client>,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let p = decode::<R::Model>(R::TYPE_NAME, &planned, diags)?;
        let out = self.inner.create(ctx, p, diags).await?;
        encode(&self.schema, &out, diags)
    }
    async fn read(
        &self,
        ctx: &Ctx<R::Client>,
        state: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let s = decode::<R::Model>(R::TYPE_NAME, &state, diags)?;
        let out = self.inner.read(ctx, s, diags).await?;
        encode(&self.schema, &out, diags)
    }
    async fn update(
        &self,
        ctx: &Ctx<R::Client>,
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let pr = decode::<R::Model>(R::TYPE_NAME, &prior, diags)?;
        let pl = decode::<R::Model>(R::TYPE_NAME, &planned, diags)?;
        let out = self.inner.update(ctx, pr, pl, diags).await?;
        encode(&self.schema, &out, diags)
    }
    async fn delete(&self, ctx: &Ctx<R::Client>, prior: Value, diags: &mut Diagnostics) {
        if let Some(p) = decode::<R::Model>(R::TYPE_NAME, &prior, diags) {
            self.inner.delete(ctx, p, diags).await;
        }
    }
    async fn import(
        &self,
        ctx: &Ctx<R::Client>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let out = self.inner.import(ctx, id, diags).await?;
        encode(&self.schema, &out, diags)
    }
    fn upgrade(
        &self,
        version: i64,
        state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let j = upgrade_chain(
            R::TYPE_NAME,
            R::SCHEMA_VERSION,
            version,
            state,
            &self.inner.upgraders(),
            diags,
        )?;
        let v = match super::value::from_json_value(&j, self.schema.value_type()) {
            Ok(v) => v,
            Err(e) => {
                diags.error(
                    "Stored state does not fit the schema",
                    format!(
                        "{} (schema version {}): {e}",
                        R::TYPE_NAME,
                        R::SCHEMA_VERSION
                    ),
                );
                return None;
            }
        };
        // What the operations will decode must decode.
        decode::<R::Model>(R::TYPE_NAME, &v, diags)?;
        Some(v)
    }
    fn upgrades_from(&self, version: i64) -> bool {
        version <= R::SCHEMA_VERSION
            && chain_complete(&self.inner.upgraders(), version, R::SCHEMA_VERSION)
    }
    fn upgraders(&self) -> Vec<Upgrader> {
        self.inner.upgraders()
    }
    fn move_from(
        &self,
        provider: &str,
        ty: &str,
        version: i64,
        state: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let m = self.inner.move_from(provider, ty, version, state, diags)?;
        encode(&self.schema, &m, diags)
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;
    use serde_json::json;

    fn steps() -> Vec<Upgrader> {
        vec![
            Upgrader {
                from: 0,
                change: "adds b",
                step: |mut s| {
                    s["b"] = json!(1);
                    Ok(s)
                },
            },
            Upgrader {
                from: 1,
                change: "b doubled into c",
                step: |mut s| {
                    let b = s["b"].as_i64().ok_or("b is not a number")?;
                    s["c"] = json!(b * 2);
                    Ok(s)
                },
            },
        ]
    }

    #[test]
    fn steps_run_in_order_from_the_stored_version_and_the_current_passes() {
        let mut d = Diagnostics::default();
        let out = upgrade_chain("t", 2, 0, json!({"a": 0}), &steps(), &mut d);
        assert_eq!(out, Some(json!({"a": 0, "b": 1, "c": 2})));
        let out = upgrade_chain("t", 2, 1, json!({"b": 5}), &steps(), &mut d);
        assert_eq!(out, Some(json!({"b": 5, "c": 10})));
        let out = upgrade_chain("t", 2, 2, json!({"z": 1}), &steps(), &mut d);
        assert_eq!(out, Some(json!({"z": 1})));
        assert!(!d.has_errors());
        assert!(chain_complete(&steps(), 0, 2));
    }

    #[test]
    fn a_missing_step_or_a_newer_version_is_refused() {
        let only_second = &steps()[1..];
        assert!(!chain_complete(only_second, 0, 2));
        assert!(chain_complete(only_second, 1, 2));
        let mut d = Diagnostics::default();
        assert_eq!(
            upgrade_chain("t", 2, 0, json!({}), only_second, &mut d),
            None
        );
        assert!(
            d.0[0]
                .detail
                .contains("cannot upgrade state from version 0 to 1"),
            "{}",
            d.0[0].detail
        );
        let mut d = Diagnostics::default();
        assert_eq!(upgrade_chain("t", 2, 3, json!({}), &steps(), &mut d), None);
        assert_eq!(d.0[0].summary, "State written by a newer provider");
    }
}
