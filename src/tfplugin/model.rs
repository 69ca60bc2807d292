//! The bridge between Terraform values and the Rust model structs that
//! resources, data sources and the provider declare.
//!
//! A model field of type [`Val<T>`] can be null, unknown ("known after
//! apply") or known; the layer deserializes a [`Value`] into a model with its
//! own serde `Deserializer`, and serializes a model back with its own
//! `Serializer`, so unknowns survive both ways.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

use super::value::{Number, Refinements, Value};

/// Everything a model struct must be.
pub trait Model: Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static {}
impl<T: Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static> Model for T {}

const VAL_TOKEN: &str = "$__tfplugin_val";
const UNKNOWN_TOKEN: &str = "$__tfplugin_unknown";
const NOT_NULL_FIELD: &str = "not_null";
const PREFIX_FIELD: &str = "string_prefix";

/// A Terraform attribute value: null, not known yet (with what Terraform
/// promises about it), or known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Val<T> {
    #[default]
    Null,
    Unknown(Refinements),
    Known(T),
}

impl<T> Val<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Val::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn into_known(self) -> Option<T> {
        match self {
            Val::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Val::Unknown(_))
    }
    /// A plain unknown ("known after apply", no promises).
    pub fn unknown() -> Val<T> {
        Val::Unknown(Refinements::default())
    }
    /// How an unknown string value will start, when Terraform promises it.
    pub fn prefix(&self) -> Option<&str> {
        self.refinements()
            .and_then(|r| r.string_prefix.as_deref())
            .filter(|p| !p.is_empty())
    }

    /// What Terraform promises about the value when it is unknown.
    pub fn refinements(&self) -> Option<&Refinements> {
        match self {
            Val::Unknown(r) => Some(r),
            _ => None,
        }
    }
    /// Whether the value is or will be non-null: known, or unknown with
    /// Terraform's promise that it will not be null.
    pub fn will_be_set(&self) -> Option<bool> {
        match self {
            Val::Null => Some(false),
            Val::Known(_) => Some(true),
            Val::Unknown(r) if r.not_null => Some(true),
            Val::Unknown(_) => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
    pub fn as_ref(&self) -> Val<&T> {
        match self {
            Val::Null => Val::Null,
            Val::Unknown(r) => Val::Unknown(r.clone()),
            Val::Known(v) => Val::Known(v),
        }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Val<U> {
        match self {
            Val::Null => Val::Null,
            Val::Unknown(r) => Val::Unknown(r),
            Val::Known(v) => Val::Known(f(v)),
        }
    }
}

impl<T> From<Option<T>> for Val<T> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Val::Null, Val::Known)
    }
}

/// A set attribute whose elements may each be unknown: Terraform's validate
/// walk makes `["STORAGE", var.x]` a known set with one unknown element.
/// The elements stay in a list, as Terraform sent them: two unknown
/// elements are two elements until they are known (a `BTreeSet` would fold
/// them into one, and the plan would no longer match the configuration).
pub type ValSet<T> = Val<Elements<T>>;

/// The elements of a set attribute, each possibly unknown, in the order
/// Terraform sent them. Its schema is a set (`uniqueItems`), as a
/// `BTreeSet<T>` would give.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Elements<T>(pub Vec<Val<T>>);

impl<T> std::ops::Deref for Elements<T> {
    type Target = Vec<Val<T>>;
    fn deref(&self) -> &Vec<Val<T>> {
        &self.0
    }
}

impl<'a, T> IntoIterator for &'a Elements<T> {
    type Item = &'a Val<T>;
    type IntoIter = std::slice::Iter<'a, Val<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> FromIterator<Val<T>> for Elements<T> {
    fn from_iter<I: IntoIterator<Item = Val<T>>>(i: I) -> Self {
        Elements(i.into_iter().collect())
    }
}

impl<T: Serialize> Serialize for Elements<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elements<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Val<T>>::deserialize(d).map(Elements)
    }
}

impl<T: schemars::JsonSchema + Ord> schemars::JsonSchema for Elements<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::collections::BTreeSet::<T>::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        std::collections::BTreeSet::<T>::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        std::collections::BTreeSet::<T>::json_schema(g)
    }
    fn inline_schema() -> bool {
        std::collections::BTreeSet::<T>::inline_schema()
    }
}
/// A map attribute whose values may each be unknown (`{ n = count.index }`);
/// Terraform's map keys are always known.
pub type ValMap<T> = Val<BTreeMap<String, Val<T>>>;

impl<T: Ord + Clone> Val<Elements<T>> {
    /// The set, when it and every element are known (null elements, which
    /// Terraform refuses in sets, are left out).
    pub fn wholly_known(&self) -> Option<std::collections::BTreeSet<T>> {
        let set = self.known()?;
        let mut out = std::collections::BTreeSet::new();
        for e in set.iter() {
            match e {
                Val::Known(x) => {
                    out.insert(x.clone());
                }
                Val::Null => {}
                Val::Unknown(_) => return None,
            }
        }
        Some(out)
    }

    /// A known set of known elements, in order, each once.
    pub fn set_of(items: impl IntoIterator<Item = T>) -> Self {
        let set: std::collections::BTreeSet<T> = items.into_iter().collect();
        Val::Known(set.into_iter().map(Val::Known).collect())
    }

    /// The elements known now (a set whose other elements are not known
    /// until apply still holds these).
    pub fn known_elements(&self) -> impl Iterator<Item = &T> {
        self.known().into_iter().flatten().filter_map(Val::known)
    }

    /// Whether the set, or any element of it, is not known until apply.
    pub fn has_unknown(&self) -> bool {
        match self {
            Val::Unknown(_) => true,
            Val::Known(v) => v.iter().any(Val::is_unknown),
            Val::Null => false,
        }
    }
}

impl<T: Clone> Val<BTreeMap<String, Val<T>>> {
    /// The map, when it and every value are known (null values are left out).
    pub fn wholly_known(&self) -> Option<BTreeMap<String, T>> {
        let map = self.known()?;
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match v {
                Val::Known(x) => {
                    out.insert(k.clone(), x.clone());
                }
                Val::Null => {}
                Val::Unknown(_) => return None,
            }
        }
        Some(out)
    }

    /// A known map of known values.
    pub fn map_of(items: impl IntoIterator<Item = (String, T)>) -> Self {
        Val::Known(items.into_iter().map(|(k, v)| (k, Val::Known(v))).collect())
    }
}

impl<T: Serialize> Serialize for Val<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_none(),
            Val::Unknown(r) if r.is_empty() => s.serialize_unit_struct(UNKNOWN_TOKEN),
            Val::Unknown(r) => {
                use serde::ser::SerializeStruct;
                let mut st = s.serialize_struct(UNKNOWN_TOKEN, 2)?;
                st.serialize_field(NOT_NULL_FIELD, &r.not_null)?;
                st.serialize_field(PREFIX_FIELD, &r.string_prefix)?;
                st.end()
            }
            Val::Known(v) => s.serialize_some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Val<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Val<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Terraform value")
            }
            fn visit_none<E>(self) -> Result<Val<T>, E> {
                Ok(Val::Null)
            }
            fn visit_unit<E>(self) -> Result<Val<T>, E> {
                Ok(Val::unknown())
            }
            // A refined unknown, as `ValueDe` presents it.
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Val<T>, A::Error> {
                let mut r = Refinements::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        NOT_NULL_FIELD => r.not_null = m.next_value::<String>()? == "true",
                        PREFIX_FIELD => r.string_prefix = Some(m.next_value::<String>()?),
                        _ => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Val::Unknown(r))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val<T>, D::Error> {
                T::deserialize(d).map(Val::Known)
            }
            // Other deserializers (JSON in tests and defaults): null or a value.
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Val<T>, D::Error> {
                Option::<T>::deserialize(d).map(Val::from)
            }
        }
        d.deserialize_newtype_struct(VAL_TOKEN, V(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Val<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// Errors of the bridge; a decoding error names the attribute path where
/// it happened (`tags["n"]`, `storage_key.use_cases[1]`).
#[derive(Debug)]
pub struct ModelError {
    message: String,
    /// Steps from the root, innermost last; filled in as the error bubbles up.
    path: Vec<String>,
}

impl ModelError {
    fn new(message: impl Into<String>) -> ModelError {
        ModelError {
            message: message.into(),
            path: vec![],
        }
    }

    /// Prefixes a step (an attribute name, `[i]` or `["key"]`).
    fn within(mut self, step: String) -> ModelError {
        self.path.insert(0, step);
        self
    }

    /// Where the error is, as Terraform writes a path (empty at the root).
    pub fn path(&self) -> String {
        let mut out = String::new();
        for s in &self.path {
            if !s.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
        out
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            p if p.is_empty() => f.write_str(&self.message),
            p => write!(f, "{p}: {}", self.message),
        }
    }
}

impl std::error::Error for ModelError {}

impl de::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ModelError::new(msg.to_string())
    }
}
impl ser::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ModelError::new(msg.to_string())
    }
}

/// What kind of value a person sees in a message (never Rust's debug form).
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown(_) => "a value not known until apply",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "an object or map",
    }
}

/// A sequence whose element errors name their index.
struct Seq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de, 'a: 'de> de::SeqAccess<'de> for Seq<'a> {
    type Error = ModelError;
    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, ModelError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, v)) => seed
                .deserialize(ValueDe(v))
                .map(Some)
                .map_err(|e| e.within(format!("[{i}]"))),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A map or object whose value errors name their key.
struct Map<'a> {
    entries: std::collections::btree_map::Iter<'a, String, Value>,
    value: Option<(&'a String, &'a Value)>,
}

impl<'de, 'a: 'de> de::MapAccess<'de> for Map<'a> {
    type Error = ModelError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ModelError> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(de::value::BorrowedStrDeserializer::<ModelError>::new(
                    k.as_str(),
                ))
                .map(Some)
            }
        }
    }
    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, ModelError> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| ModelError::new("a map value without its key"))?;
        seed.deserialize(ValueDe(v)).map_err(|e| {
            let step = if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                k.clone()
            } else {
                format!("[{k:?}]")
            };
            e.within(step)
        })
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Deserializes a model from a value.
pub fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, ModelError> {
    T::deserialize(ValueDe(v))
}

/// Serializes a model into a value.
pub fn to_value<T: Serialize + ?Sized>(t: &T) -> Result<Value, ModelError> {
    t.serialize(ValueSer)
}

struct ValueDe<'a>(&'a Value);

impl<'de, 'a: 'de> Deserializer<'de> for ValueDe<'a> {
    type Error = ModelError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Unknown(_) => Err(ModelError::new(
                "the value is not known until apply, but this provider needs it known here; this is a provider bug, please report it",
            )),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(Number::Int(i)) => v.visit_i64(*i),
            Value::Number(Number::Float(f)) => v.visit_f64(*f),
            Value::Number(Number::Big(s)) => match s.parse::<u64>() {
                Ok(u) => v.visit_u64(u),
                Err(_) => v.visit_borrowed_str(s),
            },
            Value::String(s) => v.visit_borrowed_str(s),
            Value::List(items) => v.visit_seq(Seq {
                items: items.iter().enumerate(),
            }),
            Value::Map(m) => v.visit_map(Map {
                entries: m.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, ModelError> {
        if name == VAL_TOKEN {
            match self.0 {
                Value::Null => v.visit_none(),
                Value::Unknown(r) if r.is_empty() => v.visit_unit(),
                Value::Unknown(r) => {
                    // The refinements as a map of strings, read back by `Val`'s visitor.
                    let mut fields = vec![(NOT_NULL_FIELD, r.not_null.to_string())];
                    if let Some(p) = &r.string_prefix {
                        fields.push((PREFIX_FIELD, p.clone()));
                    }
                    v.visit_map(de::value::MapDeserializer::new(fields.into_iter()))
                }
                _ => v.visit_some(self),
            }
        } else {
            v.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ModelError> {
        match self.0 {
            Value::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            other => Err(ModelError::new(format!(
                "expected one of a fixed set of strings, found {}",
                kind_of(other)
            ))),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.0 {
            Value::Number(Number::Float(f)) => Err(ModelError::new(format!(
                "must be a whole number, found {f}"
            ))),
            Value::Number(Number::Big(s)) => Err(ModelError::new(format!(
                "must be a whole number from {} to {}, found {s}",
                i64::MIN,
                i64::MAX
            ))),
            _ => self.deserialize_any(v),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de, 'a: 'de> IntoDeserializer<'de, ModelError> for ValueDe<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct ValueSer;

impl Serializer for ValueSer {
    type Ok = Value;
    type Error = ModelError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = ser::Impossible<Value, ModelError>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = ser::Impossible<Value, ModelError>;

    fn serialize_bool(self, b: bool) -> Result<Value, ModelError> {
        Ok(Value::Bool(b))
    }
    fn serialize_i8(self, i: i8) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_i16(self, i: i16) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_i32(self, i: i32) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_i64(self, i: i64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::Int(i)))
    }
    fn serialize_u8(self, i: u8) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_u16(self, i: u16) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_u32(self, i: u32) -> Result<Value, ModelError> {
        self.serialize_i64(i as i64)
    }
    fn serialize_u64(self, u: u64) -> Result<Value, ModelError> {
        Ok(Value::Number(match i64::try_from(u) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Big(u.to_string()),
        }))
    }
    fn serialize_f32(self, f: f32) -> Result<Value, ModelError> {
        self.serialize_f64(f as f64)
    }
    fn serialize_f64(self, f: f64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::from_f64(f)))
    }
    fn serialize_char(self, c: char) -> Result<Value, ModelError> {
        Ok(Value::String(c.to_string()))
    }
    fn serialize_str(self, s: &str) -> Result<Value, ModelError> {
        Ok(Value::String(s.to_string()))
    }
    fn serialize_bytes(self, _b: &[u8]) -> Result<Value, ModelError> {
        Err(ModelError::new("bytes have no Terraform type"))
    }
    fn serialize_none(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ModelError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Value, ModelError> {
        Ok(if name == UNKNOWN_TOKEN {
            Value::unknown()
        } else {
            Value::Null
        })
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
    ) -> Result<Value, ModelError> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<Value, ModelError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ModelError> {
        Ok(Value::Map(BTreeMap::from([(
            variant.to_string(),
            to_value(v)?,
        )])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, ModelError> {
        Ok(SeqSer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, ModelError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _n: &'static str, len: usize) -> Result<SeqSer, ModelError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, ModelError> {
        Err(ModelError::new("tuple variants have no Terraform type"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer, ModelError> {
        Ok(MapSer(BTreeMap::new(), None))
    }
    fn serialize_struct(self, n: &'static str, _len: usize) -> Result<MapSer, ModelError> {
        Ok(MapSer(
            BTreeMap::new(),
            (n == UNKNOWN_TOKEN).then(String::new),
        ))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, ModelError> {
        Err(ModelError::new("struct variants have no Terraform type"))
    }
}

struct SeqSer(Vec<Value>);

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        self.0.push(to_value(v)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::List(self.0))
    }
}
impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ModelError> {
        ser::SerializeSeq::end(self)
    }
}
impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ModelError> {
        ser::SerializeSeq::end(self)
    }
}

struct MapSer(BTreeMap<String, Value>, Option<String>);

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), ModelError> {
        match to_value(k)? {
            Value::String(s) => {
                self.1 = Some(s);
                Ok(())
            }
            other => Err(ModelError::new(format!(
                "map keys must be strings, found {}",
                kind_of(&other)
            ))),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        let k = self
            .1
            .take()
            .ok_or_else(|| ModelError::new("map value without key"))?;
        self.0.insert(k, to_value(v)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::Map(self.0))
    }
}
impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), ModelError> {
        self.0.insert(k.to_string(), to_value(v)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        // A refined unknown (`Val::Unknown` with refinements): the struct's
        // second slot is set only for it.
        if self.1.is_some() {
            return Ok(Value::Unknown(Refinements {
                not_null: matches!(self.0.get(NOT_NULL_FIELD), Some(Value::Bool(true))),
                string_prefix: self
                    .0
                    .get(PREFIX_FIELD)
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }));
        }
        Ok(Value::Map(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    struct M {
        name: Val<String>,
        ids: Val<BTreeSet<String>>,
        count: Val<i64>,
        flag: Option<bool>,
        #[serde(rename = "kind")]
        kind: Val<Kind>,
    }

    #[derive(
        Debug,
        PartialEq,
        Eq,
        PartialOrd,
        Ord,
        serde::Serialize,
        serde::Deserialize,
        schemars::JsonSchema,
    )]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Kind {
        ManagedServices,
    }

    #[test]
    fn a_fraction_where_a_whole_number_is_needed_says_so_in_words() {
        for (n, want) in [
            (Number::Float(74.5), "must be a whole number, found 74.5"),
            (
                Number::Big("99999999999999999999".into()),
                "must be a whole number from -9223372036854775808 to 9223372036854775807, found 99999999999999999999",
            ),
        ] {
            let v = Value::object([
                ("name", Value::Null),
                ("ids", Value::Null),
                ("count", Value::Number(n)),
                ("flag", Value::Null),
                ("kind", Value::Null),
            ]);
            let e = from_value::<M>(&v).unwrap_err().to_string();
            assert!(e.contains("count") && e.contains(want), "{e}");
            assert!(!e.contains("i64") && !e.contains("floating point"), "{e}");
        }
    }

    #[test]
    fn null_unknown_and_known_survive_both_ways() {
        let v = Value::object([
            ("name", Value::unknown()),
            (
                "ids",
                Value::List(vec![Value::string("a"), Value::string("b")]),
            ),
            ("count", Value::Null),
            ("flag", Value::Bool(true)),
            ("kind", Value::string("MANAGED_SERVICES")),
        ]);
        let m: M = from_value(&v).unwrap();
        assert_eq!(m.name, Val::unknown());
        assert_eq!(m.count, Val::Null);
        assert_eq!(m.kind, Val::Known(Kind::ManagedServices));
        assert_eq!(m.ids.known().unwrap().len(), 2);
        assert_eq!(to_value(&m).unwrap(), v);
    }

    #[test]
    fn refinements_of_an_unknown_survive_both_ways() {
        let refined = Refinements {
            not_null: true,
            string_prefix: Some("acct/".into()),
        };
        let v = Value::object([
            ("name", Value::Unknown(refined.clone())),
            (
                "ids",
                Value::Unknown(Refinements {
                    not_null: true,
                    string_prefix: None,
                }),
            ),
            ("count", Value::Null),
            ("flag", Value::Null),
            ("kind", Value::Null),
        ]);
        let m: M = from_value(&v).unwrap();
        assert_eq!(m.name, Val::Unknown(refined.clone()));
        assert_eq!(m.name.will_be_set(), Some(true));
        assert_eq!(m.name.refinements(), Some(&refined));
        assert_eq!(m.ids.will_be_set(), Some(true));
        assert_eq!(m.count.will_be_set(), Some(false));
        assert_eq!(to_value(&m).unwrap(), v);
    }

    #[test]
    fn an_unknown_where_a_plain_type_is_needed_is_an_error() {
        #[derive(Debug, serde::Deserialize)]
        struct Plain {
            #[allow(dead_code)]
            name: String,
        }
        let v = Value::object([("name", Value::unknown())]);
        assert!(from_value::<Plain>(&v).is_err());
    }
}
