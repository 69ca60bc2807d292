//! Attribute paths: where in an object a value sits, so Terraform underlines
//! the argument at fault. Diagnostics and schemas both use them; this module
//! uses neither.

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
