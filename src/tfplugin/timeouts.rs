//! Per-resource `timeouts {}` blocks, in the shape HashiCorp's providers use
//! (terraform-plugin-framework-timeouts): optional durations `create`,
//! `read`, `update` and `delete`, written as Go durations (`"30m"`, `"90s"`,
//! `"1h30m"`). A resource adds the block to its model as
//!
//! ```ignore
//! #[serde(default)] // decodes when absent, as null
//! #[schemars(extend("x-tf" = ["block"]))]
//! pub timeouts: Val<Timeouts>,
//! ```
//!
//! and the layer does the rest: it checks the durations at validate and
//! plan (an error names `timeouts.create`), and runs the operation under the
//! duration (see [`crate::budget::override_scope`]). Durations are parsed
//! here and nowhere else. Knows nothing of any cloud.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diagnostics::Diagnostics;
use super::model::Val;
use super::path::AttributePath;
use super::schema::Schema;
use super::value::Value;

/// The name of the block in every resource that has one.
pub const BLOCK: &str = "timeouts";

/// The forms a duration takes, for messages.
pub const FORMS: &str = "a number and a unit, repeated: \"90s\", \"30m\", \"1h30m\", \"1.5h\", \"500ms\" (units h, m, s, ms)";

/// How long each operation on this resource may take, overriding the
/// provider-level settings for this resource only. Each is a duration such as
/// `"30m"`, `"90s"` or `"1h30m"` (units `h`, `m`, `s`, `ms`). Unset: the
/// provider's setting applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timeouts {
    /// How long creating the object may take, its waits and retries included.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub create: Val<String>,
    /// How long a refresh of the object may take, every call and retry in it.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub read: Val<String>,
    /// How long an in-place update may take, its waits and retries included.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub update: Val<String>,
    /// How long destroying the object may take, its waits and retries included.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub delete: Val<String>,
}

/// The operations a `timeouts` block bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Update,
    Delete,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Create, Op::Read, Op::Update, Op::Delete];

    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Read => "read",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    /// The argument as users write it: `timeouts.create`.
    pub fn setting(self) -> &'static str {
        match self {
            Op::Create => "timeouts.create",
            Op::Read => "timeouts.read",
            Op::Update => "timeouts.update",
            Op::Delete => "timeouts.delete",
        }
    }
}

/// Parses a Go-style duration: one or more `<number><unit>` with units
/// `h`, `m`, `s`, `ms` (`"1h30m"`, `"90s"`, `"1.5h"`). It must be positive
/// and at most 30 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{text:?} is not a duration ({why}): use {FORMS}");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a number without a unit"))?;
        if num_len == 0 {
            return Err(bad("a unit without a number"));
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| bad("not a number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad("an unknown unit")),
        };
        total += num * secs;
        rest = &rest[unit_len..];
    }
    if total <= 0.0 {
        return Err(bad("it must be more than zero"));
    }
    if total > 30.0 * 86400.0 {
        return Err(bad("it must be at most 30 days, 720h"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// The duration set for `op` in an object's `timeouts` block; `None` when
/// the schema has no such block, the block or the duration is null or
/// unknown, or it does not parse (validate reports that).
pub fn of(schema: &Schema, object: &Value, op: Op) -> Option<Duration> {
    if !has_block(schema) {
        return None;
    }
    let Value::Map(m) = object else { return None };
    let Some(Value::Map(t)) = m.get(BLOCK) else {
        return None;
    };
    match t.get(op.name()) {
        Some(Value::String(s)) => parse_duration(s).ok(),
        _ => None,
    }
}

/// Whether objects of this schema have a `timeouts` block.
pub fn has_block(schema: &Schema) -> bool {
    schema.block.blocks.iter().any(|b| b.name == BLOCK)
}

/// Checks every duration of the `timeouts` block (unknown values pass);
/// errors land on `timeouts.<op>`.
pub fn validate(schema: &Schema, config: &Value, diags: &mut Diagnostics) {
    if !has_block(schema) {
        return;
    }
    let Value::Map(m) = config else { return };
    let Some(Value::Map(t)) = m.get(BLOCK) else {
        return;
    };
    for op in Op::ALL {
        if let Some(Value::String(s)) = t.get(op.name()) {
            if let Err(e) = parse_duration(s) {
                diags.error_at(
                    AttributePath::new([BLOCK, op.name()]),
                    format!("Invalid duration for {}", op.setting()),
                    format!("`{}`: {e}.", op.setting()),
                );
            }
        }
    }
}

/// The state upgrade of a resource that gains the block: its stored state
/// (JSON) gets `"timeouts": null`, as Terraform stores an absent block.
pub fn add_to_state(mut state: serde_json::Value) -> Result<serde_json::Value, String> {
    let o = state
        .as_object_mut()
        .ok_or("the stored state is not a JSON object")?;
    o.entry(BLOCK).or_insert(serde_json::Value::Null);
    Ok(state)
}

/// Says how long `d` is as users write it: `3s`, `1h30m`, `0.5s`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_others_are_refused_with_the_forms() {
        let ok = [
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("2h0m5s", 7_205_000),
            (" 3s ", 3_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text).map(|d| d.as_millis()),
                Ok(ms),
                "{text}"
            );
        }
        for bad in [
            "", "30", "m", "3 s", "1d", "-5s", "0s", "abc", "1..5s", "800h",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.contains("\"1h30m\"") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_are_shown_as_written() {
        for (text, shown) in [
            ("3s", "3s"),
            ("90s", "1m30s"),
            ("1h30m", "1h30m"),
            ("500ms", "0.5s"),
        ] {
            assert_eq!(show(parse_duration(text).unwrap()), shown);
        }
    }
}
