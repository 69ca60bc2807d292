//! Unknown values at any depth, for every object of the provider, driven by
//! their schemas: a new attribute is covered without editing this file.
//!
//! Terraform's validate walk (which `terraform plan` runs first) makes every
//! input variable, `count.index` and `each.key` unknown, wherever it stands:
//! a whole attribute, an element of a set, a map value, an attribute of a
//! nested object. For each settable attribute and each place inside it, a
//! configuration with an unknown there must validate without a decoding
//! error, and must come back from the model exactly as it went in (a plan
//! that changed the configuration's value is refused by Terraform).

use proptest::prelude::*;

use crate::provider::CmkProvider;
use crate::support::Clients;
use crate::tfplugin::provider::{DynDataSource, DynResource};
use crate::tfplugin::schema::{AttrType, Attribute, Block, Nesting};
use crate::tfplugin::value::{Number, Refinements, Type, Value};
use crate::tfplugin::{Diagnostics, Provider, Schema};

type ValidateFn = Box<dyn Fn(&Value, &mut Diagnostics)>;
type RoundTripFn = Box<dyn Fn(&Value, &mut Diagnostics) -> Option<Value>>;

/// One object of the provider, as the layer holds it.
struct Object {
    name: String,
    schema: Schema,
    validate: ValidateFn,
    round_trip: RoundTripFn,
}

fn objects() -> Vec<Object> {
    let p = CmkProvider;
    let mut out = vec![];
    for r in p.resources() {
        let r: std::sync::Arc<dyn DynResource<Clients>> = r.into();
        let (v, t) = (r.clone(), r.clone());
        out.push(Object {
            name: r.type_name().to_string(),
            schema: r.schema().clone(),
            validate: Box::new(move |c, d| v.validate(c, d)),
            round_trip: Box::new(move |c, d| t.round_trip(c, d)),
        });
    }
    for ds in p.data_sources() {
        let ds: std::sync::Arc<dyn DynDataSource<Clients>> = ds.into();
        let (v, t) = (ds.clone(), ds.clone());
        out.push(Object {
            name: format!("data.{}", ds.type_name()),
            schema: ds.schema().clone(),
            validate: Box::new(move |c, d| v.validate(c, d)),
            round_trip: Box::new(move |c, d| t.round_trip(c, d)),
        });
    }
    out
}

fn settable(a: &Attribute) -> bool {
    a.flags.required || a.flags.optional
}

fn nested_block(attributes: &[Attribute]) -> Block {
    Block {
        description: String::new(),
        attributes: attributes.to_vec(),
        blocks: vec![],
    }
}

/// A value of the type that passes the schema's own checks (an allowed
/// value where there is a list of them).
fn sample(ty: &Type, allowed: Option<&Vec<String>>) -> Value {
    match ty {
        Type::String => Value::string(allowed.and_then(|a| a.first()).map_or("x", |s| s)),
        Type::Number => Value::Number(Number::Int(1)),
        Type::Bool => Value::Bool(false),
        Type::List(t) | Type::Set(t) => Value::List(vec![sample(t, allowed)]),
        Type::Map(t) => Value::object([("k", sample(t, allowed))]),
        Type::Object(attrs) => Value::Map(
            attrs
                .iter()
                .map(|(k, t)| (k.clone(), sample(t, None)))
                .collect(),
        ),
        Type::Dynamic | Type::Tuple(_) => Value::Null,
    }
}

/// A sample of an attribute: only its settable inner attributes are set.
fn attribute_sample(a: &Attribute) -> Value {
    match &a.ty {
        AttrType::Primitive(t) => sample(t, a.allowed.as_ref()),
        AttrType::Nested {
            nesting,
            attributes,
        } => {
            let obj = block_sample(&nested_block(attributes));
            match nesting {
                Nesting::Single => obj,
                Nesting::List | Nesting::Set => Value::List(vec![obj]),
                Nesting::Map => Value::object([("k", obj)]),
            }
        }
    }
}

/// Every settable attribute set to its sample, the others null; each
/// nested block (`timeouts`) sampled the same way.
fn block_sample(b: &Block) -> Value {
    let mut m: std::collections::BTreeMap<String, Value> = b
        .attributes
        .iter()
        .map(|a| {
            let v = if settable(a) {
                attribute_sample(a)
            } else {
                Value::Null
            };
            (a.name.clone(), v)
        })
        .collect();
    for nb in &b.blocks {
        let inner = block_sample(&nb.block);
        let v = match nb.nesting {
            Nesting::Single => inner,
            Nesting::List | Nesting::Set => Value::List(vec![inner]),
            Nesting::Map => Value::object([("k", inner)]),
        };
        m.insert(nb.name.clone(), v);
    }
    Value::Map(m)
}

/// A place inside a value: map keys and list indexes from the top.
type Place = Vec<String>;

/// Every place inside a value, the value itself first. Inside an object
/// only the keys the schema lets a user set are places.
fn places(v: &Value, out: &mut Vec<Place>, at: Place) {
    out.push(at.clone());
    match v {
        Value::List(items) => {
            for (i, x) in items.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                places(x, out, p);
            }
        }
        Value::Map(m) => {
            for (k, x) in m {
                if x.is_null() {
                    continue;
                }
                let mut p = at.clone();
                p.push(k.clone());
                places(x, out, p);
            }
        }
        _ => {}
    }
}

fn replace(v: &mut Value, place: &[String], with: Value) {
    match place.split_first() {
        None => *v = with,
        Some((step, rest)) => match v {
            Value::List(items) => replace(&mut items[step.parse::<usize>().unwrap()], rest, with),
            Value::Map(m) => replace(m.get_mut(step).unwrap(), rest, with),
            _ => unreachable!("a place inside a scalar"),
        },
    }
}

/// Set elements in a stable order, so that two sets compare as sets.
fn canonical(ty: &Type, v: &Value) -> Value {
    match (ty, v) {
        (Type::Set(t), Value::List(items)) => {
            let mut items: Vec<Value> = items.iter().map(|x| canonical(t, x)).collect();
            items.sort_by_key(|x| format!("{x:?}"));
            Value::List(items)
        }
        (Type::List(t), Value::List(items)) => {
            Value::List(items.iter().map(|x| canonical(t, x)).collect())
        }
        (Type::Map(t), Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), canonical(t, x)))
                .collect(),
        ),
        (Type::Object(attrs), Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, x)| {
                    let t = attrs.get(k).unwrap_or(&Type::Dynamic);
                    (k.clone(), canonical(t, x))
                })
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// What must never come out of a configuration because a value is unknown.
fn unknown_was_refused(d: &Diagnostics) -> Option<String> {
    d.0.iter()
        .find(|x| {
            x.summary == "Invalid value"
                || x.summary.starts_with("Provider bug")
                || x.detail
                    .contains("not known until apply, but this provider needs it")
                || x.detail.contains("Refinements")
                || x.detail.contains("Unknown(")
        })
        .map(|x| format!("{}: {}", x.summary, x.detail))
}

/// Checks one configuration: it validates without refusing an unknown, and
/// the model gives it back unchanged.
fn check(o: &Object, config: &Value) -> Result<(), String> {
    let mut d = Diagnostics::default();
    (o.validate)(config, &mut d);
    if let Some(e) = unknown_was_refused(&d) {
        return Err(format!("{}: validate refused an unknown: {e}", o.name));
    }
    let mut d = Diagnostics::default();
    let back = (o.round_trip)(config, &mut d)
        .ok_or_else(|| format!("{}: the model does not take the value: {d:?}", o.name))?;
    let ty = o.schema.value_type();
    if canonical(ty, &back) != canonical(ty, config) {
        return Err(format!(
            "{}: the model changed the value\n  in:  {config:?}\n  out: {back:?}",
            o.name
        ));
    }
    Ok(())
}

#[test]
fn an_unknown_at_any_depth_of_any_settable_attribute_validates_and_survives_the_model() {
    let mut checked = 0;
    let mut failures = vec![];
    for o in objects() {
        let base = block_sample(&o.schema.block);
        for a in o.schema.block.attributes.iter().filter(|a| settable(a)) {
            let mut inside = vec![];
            places(&attribute_sample(a), &mut inside, vec![]);
            for place in inside {
                for unknown in [
                    Value::unknown(),
                    Value::Unknown(Refinements {
                        not_null: true,
                        string_prefix: None,
                    }),
                ] {
                    let mut config = base.clone();
                    let mut full = vec![a.name.clone()];
                    full.extend(place.iter().cloned());
                    replace(&mut config, &full, unknown);
                    checked += 1;
                    if let Err(e) = check(&o, &config) {
                        failures.push(format!("{} at {}: {e}", o.name, full.join(".")));
                    }
                }
            }
        }
        // The settable attributes of single nested blocks (`timeouts`).
        for b in o
            .schema
            .block
            .blocks
            .iter()
            .filter(|b| b.nesting == Nesting::Single)
        {
            for a in b.block.attributes.iter().filter(|a| settable(a)) {
                let mut config = base.clone();
                let full = vec![b.name.clone(), a.name.clone()];
                replace(&mut config, &full, Value::unknown());
                checked += 1;
                if let Err(e) = check(&o, &config) {
                    failures.push(format!("{} at {}: {e}", o.name, full.join(".")));
                }
            }
        }
        // The whole configuration known, too: the baseline must hold.
        if let Err(e) = check(&o, &base) {
            failures.push(format!("{} fully known: {e}", o.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every object, and places inside collections and nested objects.
    assert!(checked > 60, "only {checked} configurations checked");
}

#[test]
fn two_unknown_elements_of_a_set_stay_two() {
    // `use_cases = [var.a, var.b]`: folding them into one element would plan
    // a value that differs from the configuration.
    for o in objects() {
        for a in o.schema.block.attributes.iter().filter(|a| settable(a)) {
            if !matches!(&a.ty, AttrType::Primitive(Type::Set(_))) {
                continue;
            }
            let mut config = block_sample(&o.schema.block);
            replace(
                &mut config,
                std::slice::from_ref(&a.name),
                Value::List(vec![Value::unknown(), Value::unknown()]),
            );
            check(&o, &config).unwrap();
        }
    }
}

// ------------------------------------------------------------------ fuzz

/// Random edits of a sample: unknowns (plain or refined) placed at random
/// depths, and other known values beside them.
fn scatter(v: &Value, picks: &mut impl Iterator<Item = u8>, depth: usize) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let pick = picks.next().unwrap_or(0);
    let refined = || {
        Value::Unknown(Refinements {
            not_null: pick.is_multiple_of(2),
            string_prefix: None,
        })
    };
    match pick % 7 {
        0 => return Value::unknown(),
        1 => return refined(),
        2 => {
            if let Some(other) = another_known(v, picks.next().unwrap_or(0)) {
                return other;
            }
        }
        _ => {}
    }
    if depth > 6 {
        return v.clone();
    }
    match v {
        Value::List(items) => {
            let mut items: Vec<Value> =
                items.iter().map(|x| scatter(x, picks, depth + 1)).collect();
            if pick.is_multiple_of(5) {
                items.push(Value::unknown());
            }
            Value::List(items)
        }
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), scatter(x, picks, depth + 1)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Another known value of a scalar's kind beside the unknowns: free-form
/// strings (the samples' "x") from a pool of empty, odd and long ones;
/// numbers across the range; bools flipped. Strings with a list of allowed
/// values stay as sampled (decoding an unlisted one is a different error).
/// `None` for a collection.
fn another_known(v: &Value, pick: u8) -> Option<Value> {
    const STRINGS: [&str; 5] = [
        "",
        "y",
        "\u{1b}]0;title\u{7}",
        "ü 東京 \"quoted\" ${not_a_template}",
        "0d26daa6-5e44-4c97-a497-ef015f91254a/../x",
    ];
    Some(match v {
        Value::String(s) if s == "x" => match pick as usize % (STRINGS.len() + 1) {
            i if i < STRINGS.len() => Value::string(STRINGS[i]),
            _ => Value::string("x".repeat(pick as usize * 40)),
        },
        Value::Number(_) => Value::Number(match pick % 4 {
            0 => Number::Int(i64::from(pick) - 128),
            1 => Number::Int(i64::MAX - i64::from(pick)),
            2 => Number::Int(i64::MIN + i64::from(pick)),
            _ => Number::Int(0),
        }),
        Value::Bool(b) => Value::Bool(!b),
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::test_settings::fuzz_cases(64)))]

    #[test]
    fn fuzz_unknowns_at_random_depths_decode_and_validate(
        which in 0usize..64,
        picks in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let all = objects();
        let o = &all[which % all.len()];
        let base = block_sample(&o.schema.block);
        // Only settable attributes may be unknown in a configuration.
        let Value::Map(m) = &base else { unreachable!() };
        let mut picks = picks.into_iter();
        let config = Value::Map(
            m.iter()
                .map(|(k, x)| {
                    let settable = o.schema.attribute(k).is_some_and(settable);
                    (k.clone(), if settable { scatter(x, &mut picks, 0) } else { x.clone() })
                })
                .collect(),
        );
        if let Err(e) = check(o, &config) {
            return Err(TestCaseError::fail(e));
        }
    }
}
