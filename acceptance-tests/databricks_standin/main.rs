//! A plan-only stand-in for the databricks/databricks provider, for making
//! real `terraform plan` output of the review corpus on a machine where the
//! official provider cannot be installed (see README.md beside this file).
//!
//! It serves the schema in `schema.json` (the official provider's argument and
//! attribute names, types, nesting and flags, for the resources the corpus
//! uses) over tfplugin6, validates nothing, and plans as a provider built on
//! the plugin SDK does: a create is the proposed new state with every computed
//! attribute the configuration leaves unset unknown (in nested blocks too) and
//! unset arguments with a default set to it; an update is the proposed new
//! state with those defaults, and asks for replacement when an argument the
//! official provider makes ForceNew (`x_force_new` in schema.json) changes; a
//! destroy is the proposed new state as it is. Applying, importing and reading
//! data sources are refused: it never creates anything.
//!
//! Build: `cargo build --release --example databricks_standin`. Terraform finds
//! it as registry.terraform.io/databricks/databricks through a filesystem
//! mirror made at run time (acceptance-tests/real_plans.rs).

use cmk::tfplugin::proto::tfplugin6 as pb;
use cmk::tfplugin::serve::{serve_service, ServeOptions};
use cmk::tfplugin::value::{self, Type, Value};
use serde_json::Value as J;
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

const SCHEMA_JSON: &str = include_str!("schema.json");
const ADDRESS: &str = "registry.terraform.io/databricks/databricks";

/// One block of the schema, as `terraform providers schema -json` writes it.
#[derive(Debug, Clone)]
struct Block {
    attributes: BTreeMap<String, Attr>,
    blocks: BTreeMap<String, NestedBlock>,
}

#[derive(Debug, Clone)]
struct Attr {
    ty: Type,
    ty_json: J,
    required: bool,
    optional: bool,
    computed: bool,
    sensitive: bool,
    deprecated: bool,
    /// The value the real provider plans when the argument is unset.
    default: Option<Value>,
    /// The official provider's schema has ForceNew on it: a change replaces
    /// the object (top-level arguments only, as the SDK's diff reports them).
    force_new: bool,
}

#[derive(Debug, Clone)]
struct NestedBlock {
    nesting: Nesting,
    block: Block,
    min_items: i64,
    max_items: i64,
    force_new: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nesting {
    Single,
    List,
    Set,
    Map,
}

#[derive(Debug, Clone)]
struct Schema {
    version: i64,
    block: Block,
    ty: Type,
}

fn field<'a>(j: &'a J, name: &str, at: &str) -> Result<&'a J, String> {
    j.get(name)
        .ok_or_else(|| format!("schema.json: {at} has no \"{name}\""))
}

fn flag(j: &J, name: &str) -> bool {
    j.get(name).and_then(J::as_bool).unwrap_or(false)
}

impl Block {
    fn from_json(j: &J, at: &str) -> Result<Block, String> {
        let mut attributes = BTreeMap::new();
        if let Some(attrs) = j.get("attributes").and_then(J::as_object) {
            for (name, a) in attrs {
                let at = format!("{at}.{name}");
                let ty_json = field(a, "type", &at)?.clone();
                let ty =
                    Type::from_json(&ty_json).map_err(|e| format!("schema.json: {at}: {e}"))?;
                let default = match a.get("x_default") {
                    Some(d) => Some(
                        value::from_json_value(d, &ty)
                            .map_err(|e| format!("schema.json: {at}.x_default: {e}"))?,
                    ),
                    None => None,
                };
                attributes.insert(
                    name.clone(),
                    Attr {
                        ty,
                        ty_json,
                        required: flag(a, "required"),
                        optional: flag(a, "optional"),
                        computed: flag(a, "computed"),
                        sensitive: flag(a, "sensitive"),
                        deprecated: flag(a, "deprecated"),
                        default,
                        force_new: flag(a, "x_force_new"),
                    },
                );
            }
        }
        let mut blocks = BTreeMap::new();
        if let Some(bs) = j.get("block_types").and_then(J::as_object) {
            for (name, b) in bs {
                let at = format!("{at}.{name}");
                let nesting = match field(b, "nesting_mode", &at)?.as_str() {
                    Some("single") => Nesting::Single,
                    Some("list") => Nesting::List,
                    Some("set") => Nesting::Set,
                    Some("map") => Nesting::Map,
                    other => return Err(format!("schema.json: {at}: nesting_mode {other:?}")),
                };
                blocks.insert(
                    name.clone(),
                    NestedBlock {
                        nesting,
                        block: Block::from_json(field(b, "block", &at)?, &at)?,
                        min_items: b.get("min_items").and_then(J::as_i64).unwrap_or(0),
                        max_items: b.get("max_items").and_then(J::as_i64).unwrap_or(0),
                        force_new: flag(b, "x_force_new"),
                    },
                );
            }
        }
        Ok(Block { attributes, blocks })
    }

    fn value_type(&self) -> Type {
        let mut m: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|(n, a)| (n.clone(), a.ty.clone()))
            .collect();
        for (n, b) in &self.blocks {
            let inner = b.block.value_type();
            m.insert(
                n.clone(),
                match b.nesting {
                    Nesting::Single => inner,
                    Nesting::List => Type::list(inner),
                    Nesting::Set => Type::set(inner),
                    Nesting::Map => Type::map(inner),
                },
            );
        }
        Type::Object(m)
    }

    fn to_proto(&self) -> pb::schema::Block {
        use pb::schema::nested_block::NestingMode;
        pb::schema::Block {
            version: 0,
            attributes: self
                .attributes
                .iter()
                .map(|(n, a)| pb::schema::Attribute {
                    name: n.clone(),
                    r#type: serde_json::to_vec(&a.ty_json).expect("JSON serializes"),
                    nested_type: None,
                    description: String::new(),
                    required: a.required,
                    optional: a.optional,
                    computed: a.computed,
                    sensitive: a.sensitive,
                    description_kind: pb::StringKind::Plain as i32,
                    deprecated: a.deprecated,
                    write_only: false,
                })
                .collect(),
            block_types: self
                .blocks
                .iter()
                .map(|(n, b)| pb::schema::NestedBlock {
                    type_name: n.clone(),
                    block: Some(b.block.to_proto()),
                    nesting: match b.nesting {
                        Nesting::Single => NestingMode::Single,
                        Nesting::List => NestingMode::List,
                        Nesting::Set => NestingMode::Set,
                        Nesting::Map => NestingMode::Map,
                    } as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: String::new(),
            description_kind: pb::StringKind::Plain as i32,
            deprecated: false,
        }
    }

    /// A create's plan: in `planned` (the proposed new state), every
    /// computed attribute the configuration leaves null becomes unknown and
    /// every unset argument with a default takes it, in nested blocks too.
    fn plan_create(&self, config: &Value, planned: &mut Value) {
        self.plan_unset(config, planned, true)
    }

    /// An update's plan: every unset argument with a default takes it (the
    /// SDK reads an unset argument as its default), in nested blocks too;
    /// computed attributes keep what the proposed new state carries (the
    /// prior state's).
    fn plan_update(&self, config: &Value, planned: &mut Value) {
        self.plan_unset(config, planned, false)
    }

    fn plan_unset(&self, config: &Value, planned: &mut Value, create: bool) {
        let Value::Map(out) = planned else { return };
        for (name, a) in &self.attributes {
            let unset = config.get(name).is_none_or(Value::is_null);
            if !unset {
                continue;
            }
            if let Some(d) = &a.default {
                out.insert(name.clone(), d.clone());
            } else if a.computed && create {
                out.insert(name.clone(), Value::unknown());
            }
        }
        for (name, b) in &self.blocks {
            let (Some(cfg), Some(slot)) = (config.get(name), out.get_mut(name)) else {
                continue;
            };
            match (b.nesting, cfg, slot) {
                (Nesting::Single, c @ Value::Map(_), p @ Value::Map(_)) => {
                    b.block.plan_unset(c, p, create)
                }
                (Nesting::List | Nesting::Set, Value::List(cs), Value::List(ps))
                    if cs.len() == ps.len() =>
                {
                    for (c, p) in cs.iter().zip(ps.iter_mut()) {
                        b.block.plan_unset(c, p, create);
                    }
                }
                (Nesting::Map, Value::Map(cs), Value::Map(ps)) => {
                    for (k, p) in ps.iter_mut() {
                        if let Some(c) = cs.get(k) {
                            b.block.plan_unset(c, p, create);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The ForceNew arguments and blocks whose planned value differs from
    /// the prior state's (an unknown planned value differs too, as in the
    /// SDK): Terraform then plans a replacement.
    fn requires_replace(&self, prior: &Value, planned: &Value) -> Vec<pb::AttributePath> {
        let forced = self
            .attributes
            .iter()
            .filter(|(_, a)| a.force_new)
            .map(|(n, _)| n)
            .chain(
                self.blocks
                    .iter()
                    .filter(|(_, b)| b.force_new)
                    .map(|(n, _)| n),
            );
        let null = Value::Null;
        forced
            .filter(|name| {
                let before = prior.get(name.as_str()).unwrap_or(&null);
                let after = planned.get(name.as_str()).unwrap_or(&null);
                before != after
            })
            .map(|name| cmk::tfplugin::AttributePath::new([name.as_str()]).to_proto())
            .collect()
    }
}

impl Schema {
    fn from_json(j: &J, at: &str) -> Result<Schema, String> {
        let block = Block::from_json(field(j, "block", at)?, at)?;
        let ty = block.value_type();
        Ok(Schema {
            version: j.get("version").and_then(J::as_i64).unwrap_or(0),
            block,
            ty,
        })
    }

    fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto()),
        }
    }
}

struct StandIn {
    provider: Schema,
    resources: BTreeMap<String, Schema>,
}

impl StandIn {
    fn load() -> Result<StandIn, String> {
        let j: J = serde_json::from_str(SCHEMA_JSON).map_err(|e| format!("schema.json: {e}"))?;
        let provider = Schema::from_json(field(&j, "provider", "schema")?, "provider")?;
        let mut resources = BTreeMap::new();
        if let Some(rs) = j.get("resource_schemas").and_then(J::as_object) {
            for (name, r) in rs {
                resources.insert(name.clone(), Schema::from_json(r, name)?);
            }
        }
        Ok(StandIn {
            provider,
            resources,
        })
    }

    fn resource(&self, type_name: &str) -> Result<&Schema, Vec<pb::Diagnostic>> {
        self.resources.get(type_name).ok_or_else(|| {
            error(
                "Unknown resource type",
                format!(
                    "{type_name} is not in this stand-in's schema (acceptance-tests/databricks_standin/schema.json); it serves {}",
                    self.resources.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

fn error(summary: &str, detail: impl Into<String>) -> Vec<pb::Diagnostic> {
    vec![pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary: summary.to_string(),
        detail: detail.into(),
        attribute: None,
    }]
}

fn plan_only(what: &str) -> Vec<pb::Diagnostic> {
    error(
        "Plan-only stand-in",
        format!(
            "This is not the databricks/databricks provider but a plan-only stand-in serving its schema, for making review fixtures: it cannot {what}. Use the official provider to apply."
        ),
    )
}

fn decode(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Vec<pb::Diagnostic>> {
    let r = match dv {
        None => Ok(Value::Null),
        Some(d) if !d.msgpack.is_empty() => value::from_msgpack(&d.msgpack, ty),
        Some(d) if !d.json.is_empty() => value::from_json_bytes(&d.json, ty),
        Some(_) => Ok(Value::Null),
    };
    r.map_err(|e| error("Invalid value from Terraform", e.to_string()))
}

fn encode(v: &Value, ty: &Type) -> Result<pb::DynamicValue, Vec<pb::Diagnostic>> {
    value::to_msgpack(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: vec![],
        })
        .map_err(|e| error("Stand-in bug: value does not fit the schema", e.to_string()))
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::provider_server::Provider for StandIn {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Reply<pb::get_metadata::Response> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: vec![],
            resources: self
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: vec![],
            ephemeral_resources: vec![],
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Reply<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(self.provider.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, s)| (k.clone(), s.to_proto()))
                .collect(),
            data_source_schemas: Default::default(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: Default::default(),
            ephemeral_resource_schemas: Default::default(),
        }))
    }

    async fn validate_provider_config(
        &self,
        _r: Request<pb::validate_provider_config::Request>,
    ) -> Reply<pb::validate_provider_config::Response> {
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: vec![],
        }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Reply<pb::validate_resource_config::Response> {
        let diagnostics = self
            .resource(&r.into_inner().type_name)
            .err()
            .unwrap_or_default();
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Reply<pb::validate_data_resource_config::Response> {
        let name = r.into_inner().type_name;
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: error(
                "Unknown data source",
                format!(
                    "{name}: this stand-in serves no data sources (the review corpus uses none)"
                ),
            ),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Reply<pb::upgrade_resource_state::Response> {
        let r = r.into_inner();
        let out = self.resource(&r.type_name).and_then(|s| {
            let json = r.raw_state.map(|raw| raw.json).unwrap_or_default();
            let v = if json.is_empty() {
                Value::Null
            } else {
                value::from_json_bytes(&json, &s.ty)
                    .map_err(|e| error("Invalid prior state", e.to_string()))?
            };
            encode(&v, &s.ty)
        });
        let (upgraded_state, diagnostics) = match out {
            Ok(v) => (Some(v), vec![]),
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        _r: Request<pb::configure_provider::Request>,
    ) -> Reply<pb::configure_provider::Response> {
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: vec![],
        }))
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Reply<pb::read_resource::Response> {
        // Nothing was ever created: what Terraform recorded stands.
        let r = r.into_inner();
        Ok(Response::new(pb::read_resource::Response {
            new_state: r.current_state,
            diagnostics: vec![],
            private: r.private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Reply<pb::plan_resource_change::Response> {
        let r = r.into_inner();
        let mut requires_replace = vec![];
        let planned = self.resource(&r.type_name).and_then(|s| {
            let prior = decode(r.prior_state.as_ref(), &s.ty)?;
            let mut proposed = decode(r.proposed_new_state.as_ref(), &s.ty)?;
            let config = decode(r.config.as_ref(), &s.ty)?;
            if prior.is_null() && !proposed.is_null() {
                s.block.plan_create(&config, &mut proposed);
            } else if !prior.is_null() && !proposed.is_null() {
                s.block.plan_update(&config, &mut proposed);
                requires_replace = s.block.requires_replace(&prior, &proposed);
            }
            encode(&proposed, &s.ty)
        });
        let (planned_state, diagnostics) = match planned {
            Ok(v) => (Some(v), vec![]),
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace,
            planned_private: r.prior_private,
            diagnostics,
            // As the official provider's plugin-SDK resources do: Terraform
            // then accepts a default planned for an argument left unset.
            legacy_type_system: true,
            deferred: None,
        }))
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Reply<pb::apply_resource_change::Response> {
        let name = r.into_inner().type_name;
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: None,
            private: vec![],
            diagnostics: plan_only(&format!("apply changes to {name}")),
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Reply<pb::import_resource_state::Response> {
        let name = r.into_inner().type_name;
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: vec![],
            diagnostics: plan_only(&format!("import {name}")),
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        _r: Request<pb::move_resource_state::Request>,
    ) -> Reply<pb::move_resource_state::Response> {
        Ok(Response::new(pb::move_resource_state::Response {
            target_state: None,
            diagnostics: plan_only("move resource state"),
            target_private: vec![],
        }))
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Reply<pb::read_data_source::Response> {
        let name = r.into_inner().type_name;
        Ok(Response::new(pb::read_data_source::Response {
            state: None,
            diagnostics: error(
                "Unknown data source",
                format!(
                    "{name}: this stand-in serves no data sources (the review corpus uses none)"
                ),
            ),
            deferred: None,
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Reply<pb::validate_ephemeral_resource_config::Response> {
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: error("Unknown ephemeral resource", "this stand-in serves none"),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        _r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Reply<pb::open_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this stand-in serves no ephemeral resources",
        ))
    }

    async fn renew_ephemeral_resource(
        &self,
        _r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Reply<pb::renew_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this stand-in serves no ephemeral resources",
        ))
    }

    async fn close_ephemeral_resource(
        &self,
        _r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Reply<pb::close_ephemeral_resource::Response> {
        Err(Status::unimplemented(
            "this stand-in serves no ephemeral resources",
        ))
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Reply<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            functions: Default::default(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        _r: Request<pb::call_function::Request>,
    ) -> Reply<pb::call_function::Response> {
        Err(Status::unimplemented("this stand-in serves no functions"))
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Reply<pb::stop_provider::Response> {
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

#[tokio::main]
async fn main() {
    let standin = match StandIn::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("databricks stand-in: {e}");
            std::process::exit(1);
        }
    };
    let debug = std::env::args().any(|a| a == "--debug");
    let opts = ServeOptions {
        debug,
        address: ADDRESS.to_string(),
    };
    if let Err(e) = serve_service(standin, opts).await {
        eprintln!("databricks stand-in: {e}");
        std::process::exit(1);
    }
}
