//! Diagnostics with attribute paths, so Terraform underlines the argument at fault.

use std::fmt;

use super::proto::tfplugin6 as pb;
use super::value::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attr(String),
    Key(String),
    Index(i64),
}

/// A path to an attribute: `aws_key_info.key_arn`, `tags["env"]`, `rule[0].id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributePath(pub Vec<Step>);

impl AttributePath {
    pub fn root() -> Self {
        AttributePath(Vec::new())
    }

    /// A path of attribute names: `AttributePath::new(["aws_key_info", "key_arn"])`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        AttributePath(
            names
                .into_iter()
                .map(|n| Step::Attr(n.to_string()))
                .collect(),
        )
    }

    pub fn attr(&self, name: &str) -> Self {
        self.with(Step::Attr(name.to_string()))
    }
    pub fn key(&self, k: &str) -> Self {
        self.with(Step::Key(k.to_string()))
    }
    pub fn index(&self, i: i64) -> Self {
        self.with(Step::Index(i))
    }
    /// Set elements have no step in the protocol: the path stops at the set.
    pub fn set_element(&self, _element: &Value) -> Self {
        self.clone()
    }

    fn with(&self, s: Step) -> Self {
        let mut v = self.0.clone();
        v.push(s);
        AttributePath(v)
    }

    pub fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        Step::Attr(n) => Selector::AttributeName(n.clone()),
                        Step::Key(k) => Selector::ElementKeyString(k.clone()),
                        Step::Index(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }

    pub fn from_proto(p: &pb::AttributePath) -> Self {
        use pb::attribute_path::step::Selector;
        AttributePath(
            p.steps
                .iter()
                .filter_map(|s| {
                    Some(match s.selector.as_ref()? {
                        Selector::AttributeName(n) => Step::Attr(n.clone()),
                        Selector::ElementKeyString(k) => Step::Key(k.clone()),
                        Selector::ElementKeyInt(i) => Step::Index(*i),
                    })
                })
                .collect(),
        )
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(n) if i == 0 => write!(f, "{n}")?,
                Step::Attr(n) => write!(f, ".{n}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(x) => write!(f, "[{x}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttributePath>,
}

impl Diagnostic {
    pub fn to_proto(&self) -> pb::Diagnostic {
        pb::Diagnostic {
            severity: match self.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: self.summary.clone(),
            detail: self.detail.clone(),
            attribute: self.path.as_ref().map(AttributePath::to_proto),
        }
    }
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.add(Severity::Error, None, summary, detail);
    }
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.add(Severity::Warning, None, summary, detail);
    }
    pub fn error_at(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.add(Severity::Error, Some(path), summary, detail);
    }
    pub fn warning_at(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.add(Severity::Warning, Some(path), summary, detail);
    }
    fn add(
        &mut self,
        severity: Severity,
        path: Option<AttributePath>,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic {
            severity,
            summary: summary.into(),
            detail: detail.into(),
            path,
        });
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn to_proto(&self) -> Vec<pb::Diagnostic> {
        self.0.iter().map(Diagnostic::to_proto).collect()
    }

    /// Diagnostics for an object of this schema, with paths Terraform can show.
    pub fn to_proto_for(&self, block: &super::schema::Block) -> Vec<pb::Diagnostic> {
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

    #[test]
    fn paths_print_and_round_trip_through_the_protocol() {
        let p = AttributePath::new(["aws_key_info"]).attr("key_arn");
        assert_eq!(p.to_string(), "aws_key_info.key_arn");
        let q = AttributePath::root()
            .attr("tags")
            .key("env")
            .attr("x")
            .index(2);
        assert_eq!(q.to_string(), "tags[\"env\"].x[2]");
        assert_eq!(AttributePath::from_proto(&q.to_proto()), q);
    }
}
