//! Log lines Terraform understands: hclog's JSON line format on stderr.
//!
//! go-plugin (Terraform's plugin host) reads the provider's stderr line by
//! line. A line that is a JSON object with `@level`, `@message` and
//! `@timestamp` (`2006-01-02T15:04:05.000000Z07:00`, microseconds) is logged
//! at that level, with its other keys as fields, so `TF_LOG_PROVIDER=info`
//! filters it; any other line lands at DEBUG whatever it says. Every line
//! written here passes through [`redact`]: a secret that reaches a field or a
//! message by mistake is replaced before it is written.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// What replaces a secret in a log line.
pub const REDACTED: &str = "[REDACTED]";

/// The level asked for by the environment, as Terraform reads it: the
/// provider's own variable first, then `TF_LOG_PROVIDER`, then `TF_LOG`.
pub fn level_from_env(var: impl Fn(&str) -> Option<String>) -> &'static str {
    ["TF_LOG_PROVIDER_CMK", "TF_LOG_PROVIDER", "TF_LOG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.trim().is_empty()))
        .map(|v| match v.trim().to_ascii_lowercase().as_str() {
            // Terraform's TF_LOG=json means trace, in JSON.
            "trace" | "json" => "trace",
            "debug" => "debug",
            "info" => "info",
            "error" => "error",
            "off" => "off",
            _ => "warn",
        })
        .unwrap_or("warn")
}

/// The filter for a level: this crate at `level`, libraries at warn.
pub fn filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!("cmk={level},terraform_provider_cmk={level},warn"))
}

/// Installs the hclog JSON writer on stderr as the process's subscriber.
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt;
    let level = level_from_env(|k| std::env::var(k).ok());
    let sub = tracing_subscriber::registry()
        .with(filter(level))
        .with(HclogLayer::new(std::io::stderr));
    let _ = tracing::subscriber::set_global_default(sub);
}

/// A tracing layer that writes each event as one hclog JSON line.
pub struct HclogLayer<W> {
    make_writer: W,
}

impl<W> HclogLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    pub fn new(make_writer: W) -> Self {
        HclogLayer { make_writer }
    }
}

impl<S, W> Layer<S> for HclogLayer<W>
where
    S: Subscriber,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = hclog_line(
            *meta.level(),
            meta.target(),
            &fields.message,
            fields.values,
            &timestamp(time::OffsetDateTime::now_utc()),
        );
        let mut w = self.make_writer.make_writer();
        // One write per line, so lines of concurrent events never interleave.
        let _ = w.write_all(line.as_bytes());
    }
}

/// One JSON line (with its newline) in hclog's format.
pub fn hclog_line(
    level: Level,
    target: &str,
    message: &str,
    fields: Map<String, Value>,
    timestamp: &str,
) -> String {
    let mut obj = Map::new();
    obj.insert("@level".into(), Value::from(level_name(level)));
    obj.insert("@message".into(), Value::from(redact(message)));
    obj.insert("@module".into(), Value::from(module(target)));
    obj.insert("@timestamp".into(), Value::from(timestamp));
    for (k, v) in fields {
        let v = if secret_field(&k) {
            Value::from(REDACTED)
        } else {
            match v {
                Value::String(s) => Value::from(redact(&s)),
                other => other,
            }
        };
        obj.insert(k, v);
    }
    let mut s = Value::Object(obj).to_string();
    s.push('\n');
    s
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `cmk::cloud::databricks::client` -> `cmk.cloud.databricks.client`.
fn module(target: &str) -> String {
    target.replace("::", ".")
}

/// hclog's timestamp layout, `2006-01-02T15:04:05.000000Z07:00`, in UTC.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Field names whose values are secrets whatever they hold.
fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "token" | "access_token" | "refresh_token" | "id_token" | "bearer" | "authorization"
    ) || n.contains("secret")
        || n.contains("password")
}

/// Replaces what looks like a credential inside free text: the value after
/// `Bearer ` / `Basic `, the value of a JSON or form `access_token`,
/// `client_secret` or `token` entry, and Databricks personal access tokens
/// (`dapi...`, `dose...`).
pub fn redact(s: &str) -> String {
    let mut out = s.to_string();
    for scheme in ["Bearer ", "bearer ", "Basic ", "basic "] {
        out = redact_after(&out, scheme, |c| c.is_whitespace() || c == '"' || c == ',');
    }
    for key in ["access_token", "client_secret", "refresh_token", "id_token"] {
        // "access_token":"..." and access_token=...
        out = redact_after(&out, &format!("\"{key}\":\""), |c| c == '"');
        out = redact_after(&out, &format!("\"{key}\": \""), |c| c == '"');
        out = redact_after(&out, &format!("{key}="), |c| c == '&' || c.is_whitespace());
    }
    for prefix in ["dapi", "dose"] {
        out = redact_word(&out, prefix);
    }
    out
}

/// Replaces the text after each `marker` up to `end` (exclusive) with [`REDACTED`].
fn redact_after(s: &str, marker: &str, end: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        let after = &rest[i + marker.len()..];
        let n = after.find(&end).unwrap_or(after.len());
        if n > 0 && &after[..n] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&after[..n]);
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// Replaces words that start with `prefix` and go on with at least 8 token
/// characters (letters, digits, `-`, `_`).
fn redact_word(s: &str, prefix: &str) -> String {
    let token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let starts_word = rest[..i].chars().next_back().is_none_or(|c| !token_char(c));
        let after = &rest[i + prefix.len()..];
        let n = after.find(|c| !token_char(c)).unwrap_or(after.len());
        out.push_str(&rest[..i]);
        if starts_word && n >= 8 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[i..i + prefix.len() + n]);
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

#[derive(Default)]
struct Fields {
    message: String,
    values: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let s = format!("{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.values.insert(field.name().to_string(), Value::from(s));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.values
                .insert(field.name().to_string(), Value::from(value));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values
            .insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values
            .insert(field.name().to_string(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_hclog_json_with_terraforms_timestamp_layout() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(timestamp(t), "2023-11-14T22:13:20.123456Z");
        let mut f = Map::new();
        f.insert("method".into(), Value::from("GET"));
        f.insert("status".into(), Value::from(200));
        let line = hclog_line(
            Level::INFO,
            "cmk::cloud::databricks::client",
            "created",
            f,
            "2023-11-14T22:13:20.123456Z",
        );
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "info");
        assert_eq!(v["@message"], "created");
        assert_eq!(v["@module"], "cmk.cloud.databricks.client");
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["status"], 200);
        assert_eq!(v["method"], "GET");
    }

    #[test]
    fn secrets_are_redacted_by_name_and_by_shape() {
        let mut f = Map::new();
        f.insert("client_secret".into(), Value::from("s3cr3t-value"));
        f.insert("token".into(), Value::from("anything"));
        f.insert("header".into(), Value::from("Bearer eyJhbGciOi.abc.def"));
        f.insert("token_url".into(), Value::from("http://h/oidc/v1/token"));
        f.insert("page_size".into(), Value::from(100));
        let line = hclog_line(
            Level::DEBUG,
            "cmk",
            r#"answer {"access_token":"eyJ0b2tlbi","expires_in":3600} with dapi0123456789abcdef and client_secret=abc&x=1"#,
            f,
            "2023-11-14T22:13:20.123456Z",
        );
        for leaked in [
            "s3cr3t",
            "anything",
            "eyJhbGciOi",
            "eyJ0b2tlbi",
            "dapi0123456789abcdef",
            "abc&",
        ] {
            assert!(!line.contains(leaked), "{leaked} in {line}");
        }
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["token_url"], "http://h/oidc/v1/token");
        assert_eq!(v["page_size"], 100);
        assert_eq!(v["header"], "Bearer [REDACTED]");
        assert!(v["@message"]
            .as_str()
            .unwrap()
            .contains("\"expires_in\":3600"));
        // Words that merely start like a token stay.
        assert_eq!(redact("dapper dose of dapi"), "dapper dose of dapi");
    }

    #[test]
    fn the_level_comes_from_terraforms_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(level_from_env(env(&[])), "warn");
        assert_eq!(level_from_env(env(&[("TF_LOG", "DEBUG")])), "debug");
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "trace"), ("TF_LOG_PROVIDER", "info")])),
            "info"
        );
        assert_eq!(
            level_from_env(env(&[
                ("TF_LOG_PROVIDER", "info"),
                ("TF_LOG_PROVIDER_CMK", "error")
            ])),
            "error"
        );
        assert_eq!(level_from_env(env(&[("TF_LOG", "json")])), "trace");
    }
}
