//! Fuzz targets of the value decoders (`make fuzz` runs them with many
//! cases; `make test` with a few): the msgpack decoder with Terraform's
//! refined unknowns (extension 12), and the JSON decoder. Any bytes: no
//! panic, no unbounded recursion, and what decodes encodes back to itself.

use proptest::prelude::*;

use super::value::{from_json_bytes, from_json_value, from_msgpack, to_msgpack, Type, Value};

fn cases() -> u32 {
    crate::test_settings::fuzz_cases(256)
}

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::String),
        Just(Type::Number),
        Just(Type::Bool),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Type::List(Box::new(t))),
            inner.clone().prop_map(|t| Type::Set(Box::new(t))),
            inner.clone().prop_map(|t| Type::Map(Box::new(t))),
            prop::collection::btree_map("[a-z]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

/// A JSON value of type `ty` (dynamic parts are null).
fn arb_json(ty: Type) -> BoxedStrategy<serde_json::Value> {
    use serde_json::json;
    let null = Just(serde_json::Value::Null);
    let known: BoxedStrategy<serde_json::Value> = match ty {
        Type::String => any::<String>().prop_map(|s| json!(s)).boxed(),
        Type::Number => prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            (-1e12f64..1e12).prop_map(|f| json!(f)),
        ]
        .boxed(),
        Type::Bool => any::<bool>().prop_map(|b| json!(b)).boxed(),
        Type::Dynamic => null.clone().boxed(),
        Type::List(t) | Type::Set(t) => prop::collection::vec(arb_json(*t), 0..3)
            .prop_map(serde_json::Value::Array)
            .boxed(),
        Type::Map(t) => prop::collection::btree_map("[a-z]{0,4}", arb_json(*t), 0..3)
            .prop_map(|m| json!(m))
            .boxed(),
        Type::Object(attrs) => {
            let parts: Vec<_> = attrs
                .into_iter()
                .map(|(k, t)| arb_json(t).prop_map(move |v| (k.clone(), v)))
                .collect();
            parts
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect()))
                .boxed()
        }
        Type::Tuple(ts) => {
            let parts: Vec<_> = ts.into_iter().map(arb_json).collect();
            parts.prop_map(serde_json::Value::Array).boxed()
        }
    };
    prop_oneof![1 => null, 5 => known].boxed()
}

/// A valid msgpack encoding of some value of some type.
fn encoded() -> impl Strategy<Value = (Type, Vec<u8>)> {
    arb_type()
        .prop_flat_map(|t| (Just(t.clone()), arb_json(t)))
        .prop_filter_map("a value of the type", |(t, j)| {
            let v = from_json_value(&j, &t).ok()?;
            let b = to_msgpack(&v, &t).ok()?;
            Some((t, b))
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ];
    prop::collection::vec(m, 1..6)
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = b.len();
        match *m {
            Mutation::Flip(i, x) if n > 0 => b[i % n] ^= x | 1,
            Mutation::Insert(i, x) => b.insert(i % (n + 1), x),
            Mutation::Delete(i) if n > 0 => {
                b.remove(i % n);
            }
            Mutation::Truncate(i) => b.truncate(i % (n + 1)),
            _ => {}
        }
    }
    b
}

/// A refined unknown (extension 12) whose payload is `payload`.
fn ext12(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match payload.len() {
        n if n <= u8::MAX as usize => {
            out.extend([0xc7, n as u8, 12]);
        }
        n if n <= u16::MAX as usize => {
            out.push(0xc8);
            out.extend((n as u16).to_be_bytes());
            out.push(12);
        }
        n => {
            out.push(0xc9);
            out.extend((n as u32).to_be_bytes());
            out.push(12);
        }
    }
    out.extend_from_slice(payload);
    out
}

/// What decodes encodes back to the same value (or the encoder refuses it
/// with an error, never a panic).
fn stable(v: &Value, ty: &Type) -> Result<(), TestCaseError> {
    if let Ok(again) = to_msgpack(v, ty) {
        let back = from_msgpack(&again, ty)
            .map_err(|e| TestCaseError::fail(format!("re-encoded value does not decode: {e}")))?;
        prop_assert_eq!(&back, v);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_msgpack_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), ty in arb_type()) {
        if let Ok(v) = from_msgpack(&bytes, &ty) {
            stable(&v, &ty)?;
        }
    }

    #[test]
    fn fuzz_msgpack_mutated_encodings((ty, bytes) in encoded(), ms in mutations()) {
        let bytes = mutate(bytes, &ms);
        if let Ok(v) = from_msgpack(&bytes, &ty) {
            stable(&v, &ty)?;
        }
    }

    #[test]
    fn fuzz_refined_unknowns(
        entries in prop::collection::vec((any::<i8>(), prop_oneof![
            any::<bool>().prop_map(|b| vec![if b { 0xc3 } else { 0xc2 }]),
            "[ -~]{0,40}".prop_map(|s| { let mut v = vec![0xd9, s.len() as u8]; v.extend(s.bytes()); v }),
            prop::collection::vec(any::<u8>(), 0..8),
        ]), 0..5),
        junk in prop::collection::vec(any::<u8>(), 0..16),
        ty in arb_type(),
    ) {
        let mut payload = vec![0x80 | entries.len() as u8];
        for (k, v) in &entries {
            payload.push(*k as u8);
            payload.extend(v);
        }
        payload.extend(&junk);
        let bytes = ext12(&payload);
        let v = from_msgpack(&bytes, &ty);
        // One extension is one unknown value, whatever its payload.
        if let Ok(v) = &v {
            prop_assert!(v.is_unknown(), "{v:?}");
            stable(v, &ty)?;
        }
    }

    #[test]
    fn fuzz_json_decoder(text in prop_oneof![
        any::<String>(),
        "[\\[\\]{}\",:0-9a-z.eE+-]{0,200}",
    ], ty in arb_type()) {
        let _ = from_json_bytes(text.as_bytes(), &ty);
        let _ = Type::from_json_bytes(text.as_bytes());
    }
}

/// Refinements nested in refinements: each level is a new extension inside
/// the previous payload. The depth limit must hold across them, or a deep
/// enough input overflows the stack (an abort no panic guard can catch).
/// Decoded on a thread with a small stack, so that a missing limit shows
/// as a crash of this test, not of a later one.
#[test]
fn nested_refinements_are_depth_limited() {
    let mut bytes = vec![0xc0];
    for _ in 0..20_000 {
        let mut payload = vec![0x81, 0x05];
        payload.extend_from_slice(&bytes);
        bytes = ext12(&payload);
    }
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || from_msgpack(&bytes, &Type::String).map(|_| ()))
        .unwrap();
    // Either answer is fine (the outer value is an unknown); not crashing is the point.
    let _ = handle.join().expect("no panic");
}

/// Deep arrays and maps are refused by the depth limit, not by the stack.
#[test]
fn deep_msgpack_nesting_is_refused() {
    let ty = (0..100).fold(Type::String, |t, _| Type::List(Box::new(t)));
    let mut bytes = vec![0x91; 100_000];
    bytes.push(0xa0);
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || from_msgpack(&bytes, &ty).is_err())
        .unwrap();
    assert!(handle.join().unwrap(), "100 000 levels must be refused");
    // Objects whose attribute types nest, through JSON.
    let deep = "[".repeat(100_000);
    assert!(from_json_bytes(deep.as_bytes(), &Type::Dynamic).is_err());
}
