//! Terraform schemas derived from model structs.
//!
//! A model is a Rust struct with serde + schemars derives. Its doc comments
//! become Terraform's markdown descriptions, and Terraform's flags sit beside
//! each field as a schemars extension:
//!
//! ```ignore
//! /// The key's ARN.
//! #[schemars(extend("x-tf" = ["computed", "requires_replace"]))]
//! pub arn: Val<String>,
//! ```
//!
//! Flags: `required`, `optional`, `computed`, `sensitive`, `write_only`,
//! `requires_replace`, `deprecated`, `block` (a nested block instead of a
//! nested attribute). Without `required`/`optional`/`computed`, a field is
//! required unless it has a serde default (then optional and computed, and the
//! layer fills the default) or is an `Option`. String enums and `minItems`
//! in the JSON schema are validated by the layer, on the attribute's path.

use std::collections::BTreeMap;

use serde_json::{Map, Value as J};

use super::diagnostics::Diagnostics;
use super::path::{AttributePath, Step};
use super::proto::tfplugin6 as pb;
use super::value::{self, Type, Value};

/// How a nested attribute or block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrType {
    Primitive(Type),
    Nested {
        nesting: Nesting,
        attributes: Vec<Attribute>,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flags {
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub requires_replace: bool,
    pub deprecated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub ty: AttrType,
    pub description: String,
    pub flags: Flags,
    /// Filled by the layer when the configuration leaves the attribute null.
    pub default: Option<Value>,
    /// Allowed string values (of the attribute, or of its elements).
    pub allowed: Option<Vec<String>>,
    pub min_items: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
    /// The value type, derived once (every RPC needs it).
    ty: Type,
}

#[derive(Debug, thiserror::Error)]
#[error("schema of {model}: {message}")]
pub struct SchemaError {
    pub model: String,
    pub message: String,
}

impl Schema {
    /// Derives the schema of a model struct.
    pub fn of<T: schemars::JsonSchema>(version: i64) -> Result<Schema, SchemaError> {
        let root = schemars::schema_for!(T);
        let root = root.as_value().clone();
        let model = T::schema_name().to_string();
        let ctx = Ctx {
            root: &root,
            model: &model,
        };
        let block = ctx.block(&root)?;
        let ty = block.value_type();
        Ok(Schema { version, block, ty })
    }

    /// The value type of objects conforming to this schema.
    pub fn value_type(&self) -> &Type {
        &self.ty
    }

    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto()),
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.block.attributes.iter().find(|a| a.name == name)
    }
}

impl Block {
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            let inner = b.block.value_type();
            attrs.insert(
                b.name.clone(),
                match b.nesting {
                    Nesting::Single => inner,
                    Nesting::List => Type::list(inner),
                    Nesting::Set => Type::set(inner),
                    Nesting::Map => Type::map(inner),
                },
            );
        }
        Type::Object(attrs)
    }

    fn to_proto(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_proto()),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                        Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                        Nesting::Map => pb::schema::nested_block::NestingMode::Map,
                    } as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }
    }

    /// Fills defaults of null attributes, recursively, in place.
    pub fn apply_defaults(&self, v: &mut Value) {
        let Value::Map(m) = v else { return };
        for a in &self.attributes {
            let slot = m.entry(a.name.clone()).or_insert(Value::Null);
            if slot.is_null() {
                if let Some(d) = &a.default {
                    *slot = d.clone();
                }
            }
            if let AttrType::Nested {
                nesting,
                attributes,
            } = &a.ty
            {
                let inner = Block {
                    description: String::new(),
                    attributes: attributes.clone(),
                    blocks: vec![],
                };
                for_each_nested(slot, *nesting, |x| inner.apply_defaults(x));
            }
        }
        for b in &self.blocks {
            if let Some(slot) = m.get_mut(&b.name) {
                for_each_nested(slot, b.nesting, |x| b.block.apply_defaults(x));
            }
        }
    }

    /// Checks allowed values and minimum sizes; unknown values pass.
    pub fn validate(&self, v: &Value, at: &AttributePath, diags: &mut Diagnostics) {
        let Value::Map(m) = v else { return };
        for a in &self.attributes {
            let path = at.attr(&a.name);
            let val = m.get(&a.name).unwrap_or(&Value::Null);
            a.validate(val, &path, diags);
        }
        for b in &self.blocks {
            if let Some(val) = m.get(&b.name) {
                let path = at.attr(&b.name);
                match (b.nesting, val) {
                    (Nesting::Single, v) => b.block.validate(v, &path, diags),
                    (_, Value::List(items)) => {
                        for (i, it) in items.iter().enumerate() {
                            b.block.validate(it, &path.index(i as i64), diags)
                        }
                    }
                    (_, Value::Map(items)) => {
                        for (k, it) in items {
                            b.block.validate(it, &path.key(k), diags)
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The part of a path Terraform can show in the configuration. Terraform
    /// (1.11) follows nested blocks but not the inside of an attribute's value
    /// (a nested attribute's object, a map, a list): a deeper path makes it
    /// fall back to the whole block. So a path is cut after its first
    /// attribute step; the message still names the inner value.
    pub fn displayable_path(&self, p: &AttributePath) -> AttributePath {
        let mut out = Vec::new();
        let mut block = self;
        let mut steps = p.0.iter().peekable();
        while let Some(step) = steps.next() {
            out.push(step.clone());
            let Step::Attr(name) = step else { break };
            let Some(b) = block.blocks.iter().find(|b| &b.name == name) else {
                break;
            };
            // a block: keep its element step, then continue inside it
            if b.nesting != Nesting::Single {
                match steps.next() {
                    Some(s @ (Step::Index(_) | Step::Key(_))) => out.push(s.clone()),
                    _ => break,
                }
            }
            block = &b.block;
        }
        AttributePath(out)
    }

    /// Names of the attributes that are computed (for plans).
    pub fn computed_attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| a.flags.computed)
    }
}

fn for_each_nested(v: &mut Value, nesting: Nesting, mut f: impl FnMut(&mut Value)) {
    match (nesting, v) {
        (Nesting::Single, v @ Value::Map(_)) => f(v),
        (Nesting::List | Nesting::Set, Value::List(items)) => items.iter_mut().for_each(f),
        (Nesting::Map, Value::Map(items)) => items.values_mut().for_each(f),
        _ => {}
    }
}

impl Attribute {
    pub fn value_type(&self) -> Type {
        match &self.ty {
            AttrType::Primitive(t) => t.clone(),
            AttrType::Nested {
                nesting,
                attributes,
            } => {
                let obj = Type::Object(
                    attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                );
                match nesting {
                    Nesting::Single => obj,
                    Nesting::List => Type::list(obj),
                    Nesting::Set => Type::set(obj),
                    Nesting::Map => Type::map(obj),
                }
            }
        }
    }

    fn validate(&self, v: &Value, path: &AttributePath, diags: &mut Diagnostics) {
        if let (Some(min), Value::List(items)) = (self.min_items, v) {
            if (items.len() as u64) < min {
                diags.error_at(
                    path.clone(),
                    format!("Too few values for {}", self.name),
                    format!(
                        "`{}` needs at least {min} value{}; it has {}.",
                        self.name,
                        if min == 1 { "" } else { "s" },
                        items.len()
                    ),
                );
            }
        }
        if let Some(allowed) = &self.allowed {
            let check = |s: &Value, p: AttributePath, diags: &mut Diagnostics| {
                if let Value::String(s) = s {
                    if !allowed.iter().any(|a| a == s) {
                        diags.error_at(
                            p,
                            format!("Invalid value for {}", self.name),
                            format!(
                                "{s:?} is not a valid value for `{}`. Valid values: {}.",
                                self.name,
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            };
            match v {
                Value::List(items) => {
                    let set = matches!(self.value_type(), Type::Set(_));
                    for (i, it) in items.iter().enumerate() {
                        let p = if set {
                            path.set_element(it)
                        } else {
                            path.index(i as i64)
                        };
                        check(it, p, diags);
                    }
                }
                Value::Map(items) => {
                    for (k, it) in items {
                        check(it, path.key(k), diags);
                    }
                }
                other => check(other, path.clone(), diags),
            }
        }
        if let AttrType::Nested {
            nesting,
            attributes,
        } = &self.ty
        {
            let inner = Block {
                description: String::new(),
                attributes: attributes.clone(),
                blocks: vec![],
            };
            match (nesting, v) {
                (Nesting::Single, v) => inner.validate(v, path, diags),
                (Nesting::List | Nesting::Set, Value::List(items)) => {
                    for (i, it) in items.iter().enumerate() {
                        inner.validate(it, &path.index(i as i64), diags)
                    }
                }
                (Nesting::Map, Value::Map(items)) => {
                    for (k, it) in items {
                        inner.validate(it, &path.key(k), diags)
                    }
                }
                _ => {}
            }
        }
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested_type) = match &self.ty {
            AttrType::Primitive(t) => (t.to_json_bytes(), None),
            AttrType::Nested {
                nesting,
                attributes,
            } => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: attributes.iter().map(Attribute::to_proto).collect(),
                    nesting: match nesting {
                        Nesting::Single => pb::schema::object::NestingMode::Single,
                        Nesting::List => pb::schema::object::NestingMode::List,
                        Nesting::Set => pb::schema::object::NestingMode::Set,
                        Nesting::Map => pb::schema::object::NestingMode::Map,
                    } as i32,
                    #[allow(deprecated)]
                    min_items: 0,
                    #[allow(deprecated)]
                    max_items: 0,
                }),
            ),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: ty,
            nested_type,
            description: self.description_with_default(),
            required: self.flags.required,
            optional: self.flags.optional,
            computed: self.flags.computed,
            sensitive: self.flags.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.flags.deprecated,
            write_only: self.flags.write_only,
        }
    }

    /// The description as shown to users: with the valid values and the default.
    pub fn description_with_default(&self) -> String {
        let mut d = self.description.clone();
        if let Some(allowed) = &self.allowed {
            let list = allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            d.push_str(&format!(" Valid values: {list}."));
        }
        if let Some(def) = &self.default {
            d.push_str(&format!(" Defaults to `{}`.", value::to_json_value(def)));
        }
        if self.flags.requires_replace {
            d.push_str(" Changing it replaces the resource.");
        }
        d
    }
}

struct Ctx<'a> {
    root: &'a J,
    model: &'a str,
}

const FLAG_KEY: &str = "x-tf";

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> SchemaError {
        SchemaError {
            model: self.model.to_string(),
            message: message.into(),
        }
    }

    /// Follows `$ref` to `$defs`, and strips `anyOf [T, null]` (Option).
    fn resolve<'b>(&'b self, s: &'b J) -> Result<&'b J, SchemaError> {
        if let Some(r) = s.get("$ref").and_then(J::as_str) {
            let name = r
                .strip_prefix("#/$defs/")
                .ok_or_else(|| self.err(format!("unsupported $ref {r}")))?;
            let def = self
                .root
                .get("$defs")
                .and_then(|d| d.get(name))
                .ok_or_else(|| self.err(format!("missing definition {name}")))?;
            return self.resolve(def);
        }
        if let Some(any) = s.get("anyOf").and_then(J::as_array) {
            let non_null: Vec<&J> = any
                .iter()
                .filter(|x| x.get("type") != Some(&J::from("null")))
                .collect();
            if non_null.len() == 1 {
                return self.resolve(non_null[0]);
            }
        }
        Ok(s)
    }

    /// The JSON schema "type" without "null".
    fn kind(&self, s: &J) -> Option<String> {
        match s.get("type") {
            Some(J::String(t)) => Some(t.clone()),
            Some(J::Array(ts)) => ts
                .iter()
                .filter_map(J::as_str)
                .find(|t| *t != "null")
                .map(str::to_string),
            _ => {
                if s.get("enum").is_some() || s.get("oneOf").is_some() || s.get("const").is_some() {
                    Some("string".into())
                } else {
                    None
                }
            }
        }
    }

    fn block(&self, s: &J) -> Result<Block, SchemaError> {
        let s = self.resolve(s)?;
        let empty = Map::new();
        let props = match s.get("properties").and_then(J::as_object) {
            Some(p) => p,
            None if self.kind(s).as_deref() == Some("object") => &empty,
            None => return Err(self.err("a model must be a struct with named fields")),
        };
        let required: Vec<&str> = s
            .get("required")
            .and_then(J::as_array)
            .map(|r| r.iter().filter_map(J::as_str).collect())
            .unwrap_or_default();
        let mut block = Block {
            description: s
                .get("description")
                .and_then(J::as_str)
                .unwrap_or_default()
                .to_string(),
            ..Block::default()
        };
        for (name, prop) in props {
            let flags = self.flags(prop)?;
            if flags.iter().any(|f| f == "block") {
                block.blocks.push(self.nested_block(name, prop)?);
            } else {
                block.attributes.push(self.attribute(
                    name,
                    prop,
                    required.contains(&name.as_str()),
                    &flags,
                )?);
            }
        }
        Ok(block)
    }

    fn flags(&self, prop: &J) -> Result<Vec<String>, SchemaError> {
        let Some(f) = prop.get(FLAG_KEY) else {
            return Ok(vec![]);
        };
        let list = f
            .as_array()
            .ok_or_else(|| self.err("x-tf must be a list of flags"))?;
        let mut out = Vec::new();
        for x in list {
            let x = x
                .as_str()
                .ok_or_else(|| self.err("x-tf flags are strings"))?;
            const KNOWN: [&str; 8] = [
                "required",
                "optional",
                "computed",
                "sensitive",
                "write_only",
                "requires_replace",
                "deprecated",
                "block",
            ];
            if !KNOWN.contains(&x) {
                return Err(self.err(format!(
                    "unknown flag {x:?}; known flags: {}",
                    KNOWN.join(", ")
                )));
            }
            out.push(x.to_string());
        }
        Ok(out)
    }

    fn attribute(
        &self,
        name: &str,
        prop: &J,
        in_required: bool,
        flags: &[String],
    ) -> Result<Attribute, SchemaError> {
        let has = |f: &str| flags.iter().any(|x| x == f);
        let description = prop
            .get("description")
            .and_then(J::as_str)
            .or_else(|| {
                self.resolve(prop)
                    .ok()
                    .and_then(|r| r.get("description"))
                    .and_then(J::as_str)
            })
            .unwrap_or_default()
            .trim()
            .to_string();
        let resolved = self.resolve(prop)?;
        let nullable = prop.get("anyOf").is_some()
            || matches!(prop.get("type"), Some(J::Array(ts)) if ts.iter().any(|t| t == "null"));
        let (ty, allowed, min_items) = self.attr_type(name, resolved)?;
        let default_json = prop.get("default").filter(|d| !d.is_null());
        let default = match default_json {
            Some(d) => Some(
                value::from_json_value(
                    d,
                    &match &ty {
                        AttrType::Primitive(t) => t.clone(),
                        AttrType::Nested { .. } => {
                            return Err(self.err(format!(
                                "{name}: defaults of nested attributes are not supported"
                            )))
                        }
                    },
                )
                .map_err(|e| self.err(format!("{name}: default does not fit the type: {e}")))?,
            ),
            None => None,
        };
        let mut f = Flags {
            required: has("required"),
            optional: has("optional"),
            computed: has("computed"),
            sensitive: has("sensitive"),
            write_only: has("write_only"),
            requires_replace: has("requires_replace"),
            deprecated: has("deprecated"),
        };
        if !f.required && !f.optional && !f.computed {
            if default.is_some() {
                f.optional = true;
                f.computed = true;
            } else if in_required && !nullable {
                f.required = true;
            } else {
                f.optional = true;
            }
        }
        if default.is_some() && !f.computed {
            f.computed = true;
        }
        if f.required && (f.optional || f.computed) {
            return Err(self.err(format!("{name}: required excludes optional and computed")));
        }
        if description.is_empty() {
            return Err(self.err(format!(
                "{name}: every attribute needs a doc comment (its description)"
            )));
        }
        Ok(Attribute {
            name: name.to_string(),
            ty,
            description,
            flags: f,
            default,
            allowed,
            min_items,
        })
    }

    fn enum_values(&self, s: &J) -> Option<Vec<String>> {
        if let Some(e) = s.get("enum").and_then(J::as_array) {
            return Some(e.iter().filter_map(J::as_str).map(str::to_string).collect());
        }
        if let Some(one) = s.get("oneOf").and_then(J::as_array) {
            let consts: Vec<String> = one
                .iter()
                .filter_map(|o| {
                    o.get("const")
                        .or_else(|| o.get("enum").and_then(|e| e.get(0)))
                })
                .filter_map(J::as_str)
                .map(str::to_string)
                .collect();
            if consts.len() == one.len() {
                return Some(consts);
            }
        }
        None
    }

    #[allow(clippy::type_complexity)]
    fn attr_type(
        &self,
        name: &str,
        s: &J,
    ) -> Result<(AttrType, Option<Vec<String>>, Option<u64>), SchemaError> {
        let kind = self
            .kind(s)
            .ok_or_else(|| self.err(format!("{name}: cannot tell the type of {s}")))?;
        let min_items = s.get("minItems").and_then(J::as_u64).filter(|m| *m > 0);
        Ok(match kind.as_str() {
            "string" => (AttrType::Primitive(Type::String), self.enum_values(s), None),
            "integer" | "number" => (AttrType::Primitive(Type::Number), None, None),
            "boolean" => (AttrType::Primitive(Type::Bool), None, None),
            "array" => {
                let items = s
                    .get("items")
                    .ok_or_else(|| self.err(format!("{name}: array without items")))?;
                let items = self.resolve(items)?;
                let set = s.get("uniqueItems") == Some(&J::Bool(true));
                if self.kind(items).as_deref() == Some("object")
                    && items.get("properties").is_some()
                {
                    let nested = self.block(items)?;
                    if !nested.blocks.is_empty() {
                        return Err(
                            self.err(format!("{name}: nested attributes cannot hold blocks"))
                        );
                    }
                    let nesting = if set { Nesting::Set } else { Nesting::List };
                    (
                        AttrType::Nested {
                            nesting,
                            attributes: nested.attributes,
                        },
                        None,
                        min_items,
                    )
                } else {
                    let (inner, allowed, _) = self.attr_type(name, items)?;
                    let AttrType::Primitive(t) = inner else {
                        return Err(self.err(format!(
                            "{name}: collections of collections of objects are not supported"
                        )));
                    };
                    (
                        AttrType::Primitive(if set { Type::set(t) } else { Type::list(t) }),
                        allowed,
                        min_items,
                    )
                }
            }
            "object" => {
                if s.get("properties").is_some() {
                    let nested = self.block(s)?;
                    (
                        AttrType::Nested {
                            nesting: Nesting::Single,
                            attributes: nested.attributes,
                        },
                        None,
                        None,
                    )
                } else {
                    let empty = J::Object(Map::new());
                    let add = match s.get("additionalProperties") {
                        Some(J::Bool(true)) | None => &empty,
                        Some(other) => other,
                    };
                    if add.as_object().is_some_and(Map::is_empty) {
                        (AttrType::Primitive(Type::map(Type::String)), None, None)
                    } else {
                        let add = self.resolve(add)?;
                        if add.get("properties").is_some() {
                            let nested = self.block(add)?;
                            (
                                AttrType::Nested {
                                    nesting: Nesting::Map,
                                    attributes: nested.attributes,
                                },
                                None,
                                None,
                            )
                        } else {
                            let (inner, allowed, _) = self.attr_type(name, add)?;
                            let AttrType::Primitive(t) = inner else {
                                unreachable!("primitive checked")
                            };
                            (AttrType::Primitive(Type::map(t)), allowed, None)
                        }
                    }
                }
            }
            other => return Err(self.err(format!("{name}: unsupported JSON schema type {other}"))),
        })
    }

    fn nested_block(&self, name: &str, prop: &J) -> Result<NestedBlock, SchemaError> {
        let s = self.resolve(prop)?;
        let kind = self.kind(s);
        let (nesting, inner) = match kind.as_deref() {
            Some("array") => {
                let set = s.get("uniqueItems") == Some(&J::Bool(true));
                let items = s
                    .get("items")
                    .ok_or_else(|| self.err(format!("{name}: array without items")))?;
                (if set { Nesting::Set } else { Nesting::List }, items)
            }
            Some("object") => (Nesting::Single, s),
            _ => {
                return Err(self.err(format!(
                    "{name}: a block must be a struct or a list/set of structs"
                )))
            }
        };
        let mut block = self.block(inner)?;
        if let Some(d) = prop.get("description").and_then(J::as_str) {
            block.description = d.trim().to_string();
        }
        Ok(NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            min_items: s.get("minItems").and_then(J::as_i64).unwrap_or(0),
            max_items: s.get("maxItems").and_then(J::as_i64).unwrap_or(0),
        })
    }
}

/// Lives beside the schemas, not in `diagnostics`, so that diagnostics
/// depend on no schema.
impl Diagnostics {
    /// Diagnostics for an object of this schema, with paths Terraform can show.
    pub fn to_proto_for(&self, block: &Block) -> Vec<pb::Diagnostic> {
        self.0
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.path = d.path.map(|p| block.displayable_path(&p));
                d.to_proto()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplugin::model::Val;
    use std::collections::{BTreeMap, BTreeSet};

    fn yes() -> Val<bool> {
        Val::Known(true)
    }

    /// A test model.
    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct M {
        /// The name.
        name: Val<String>,
        /// Optional note.
        note: Option<String>,
        /// Kinds.
        #[schemars(length(min = 1))]
        kinds: Val<BTreeSet<Kind>>,
        /// A flag with a default.
        #[serde(default = "yes")]
        flag: Val<bool>,
        /// Computed id.
        #[schemars(extend("x-tf" = ["computed"]))]
        id: Val<String>,
        /// A secret.
        #[schemars(extend("x-tf" = ["optional", "sensitive", "requires_replace"]))]
        secret: Val<String>,
        /// Tags.
        tags: Option<BTreeMap<String, String>>,
        /// Nested info.
        info: Val<Info>,
        /// Rules as blocks.
        #[schemars(extend("x-tf" = ["block"]))]
        rule: Vec<Info>,
    }

    /// Info.
    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Info {
        /// The ARN.
        arn: Val<String>,
    }

    #[derive(
        serde::Serialize, serde::Deserialize, schemars::JsonSchema, PartialEq, Eq, PartialOrd, Ord,
    )]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Kind {
        ManagedServices,
        Storage,
    }

    #[test]
    fn flags_types_defaults_and_descriptions_come_from_the_model() {
        let s = Schema::of::<M>(0).unwrap();
        let a = |n: &str| s.attribute(n).unwrap_or_else(|| panic!("no {n}"));
        assert!(a("name").flags.required);
        assert!(a("note").flags.optional && !a("note").flags.required);
        assert_eq!(a("kinds").value_type(), Type::set(Type::String));
        assert_eq!(
            a("kinds").allowed.as_deref(),
            Some(&["MANAGED_SERVICES".to_string(), "STORAGE".to_string()][..])
        );
        assert_eq!(a("kinds").min_items, Some(1));
        assert!(a("flag").flags.optional && a("flag").flags.computed);
        assert_eq!(a("flag").default, Some(Value::Bool(true)));
        assert!(a("id").flags.computed && !a("id").flags.optional);
        assert!(a("secret").flags.sensitive && a("secret").flags.requires_replace);
        assert_eq!(a("tags").value_type(), Type::map(Type::String));
        assert!(matches!(
            a("info").ty,
            AttrType::Nested {
                nesting: Nesting::Single,
                ..
            }
        ));
        assert_eq!(a("name").description, "The name.");
        assert_eq!(s.block.blocks.len(), 1);
        assert_eq!(s.block.blocks[0].nesting, Nesting::List);
        assert_eq!(s.block.description, "A test model.");
        let proto = s.to_proto();
        assert!(proto
            .block
            .unwrap()
            .attributes
            .iter()
            .all(|a| !a.description.is_empty()));
    }

    #[test]
    fn enum_and_size_checks_land_on_the_attribute_path() {
        let s = Schema::of::<M>(0).unwrap();
        let mut v = Value::object([(
            "kinds",
            Value::List(vec![Value::string("STORAGE"), Value::string("BOGUS")]),
        )]);
        let mut d = Diagnostics::default();
        s.block.validate(&v, &AttributePath::root(), &mut d);
        assert_eq!(d.errors().count(), 1);
        let e = d.errors().next().unwrap();
        assert!(
            e.detail
                .contains("\"BOGUS\" is not a valid value for `kinds`"),
            "{}",
            e.detail
        );
        // a set element has no path step in the protocol: the path stops at the set
        assert_eq!(e.path.as_ref().unwrap().to_string(), "kinds");

        v = Value::object([("kinds", Value::List(vec![]))]);
        let mut d = Diagnostics::default();
        s.block.validate(&v, &AttributePath::root(), &mut d);
        assert!(d
            .errors()
            .next()
            .unwrap()
            .detail
            .contains("at least 1 value"));

        let mut d = Diagnostics::default();
        s.block.validate(
            &Value::object([("kinds", Value::unknown())]),
            &AttributePath::root(),
            &mut d,
        );
        assert!(d.is_empty());
    }

    #[test]
    fn defaults_fill_nulls_only() {
        let s = Schema::of::<M>(0).unwrap();
        let mut v = Value::object([("flag", Value::Null)]);
        s.block.apply_defaults(&mut v);
        assert_eq!(v.get("flag"), Some(&Value::Bool(true)));
        let mut v = Value::object([("flag", Value::Bool(false))]);
        s.block.apply_defaults(&mut v);
        assert_eq!(v.get("flag"), Some(&Value::Bool(false)));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn paths_are_cut_after_the_first_attribute_but_follow_blocks() {
        let inner = Block {
            description: String::new(),
            attributes: vec![],
            blocks: vec![],
        };
        let block = Block {
            description: String::new(),
            attributes: vec![],
            blocks: vec![NestedBlock {
                name: "rule".into(),
                nesting: Nesting::List,
                block: inner,
                min_items: 0,
                max_items: 0,
            }],
        };
        let p = AttributePath::new(["aws_key_info", "key_arn"]);
        assert_eq!(block.displayable_path(&p).to_string(), "aws_key_info");
        let q = AttributePath::new(["rule"])
            .index(2)
            .attr("id")
            .attr("deeper");
        assert_eq!(block.displayable_path(&q).to_string(), "rule[2].id");
    }
}
