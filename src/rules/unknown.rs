//! Values not known until apply, with their origin.
//!
//! Review's HCL mode evaluates a configuration without the cloud: an
//! attribute the provider computes (`aws_iam_role.x.arn`), a variable
//! without a value, `data.aws_caller_identity.current.account_id`. Such a
//! value is not "nothing": it has an origin (the reference it comes from)
//! and sometimes a kind (an `aws_iam_role`'s `arn` is a role of the
//! configuration's own account, never Databricks' principal). It stands in
//! a string as a marker, so that a policy built with `jsonencode(...)`
//! keeps every known statement and only that value unknown.
//!
//! A marker carries a nonce drawn once per process: a configuration cannot
//! write one in a literal (it would not know the nonce), so no source can
//! pass a known value off as an unknown one, or claim equality with one.
//! Two markers with the same origin stand for the same value.

use std::sync::OnceLock;

/// What is known of an unknown value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Nothing: any string.
    Any,
    /// The ARN of an IAM role of the configuration's own AWS account (never
    /// Databricks' principal, never an account root).
    OwnRoleArn,
    /// The configuration's own AWS account id (12 digits; never the account
    /// of Databricks' principal).
    OwnAccountId,
}

impl Kind {
    fn code(self) -> char {
        match self {
            Kind::Any => 'U',
            Kind::OwnRoleArn => 'R',
            Kind::OwnAccountId => 'A',
        }
    }

    fn of(c: char) -> Option<Kind> {
        match c {
            'U' => Some(Kind::Any),
            'R' => Some(Kind::OwnRoleArn),
            'A' => Some(Kind::OwnAccountId),
            _ => None,
        }
    }
}

/// One unknown value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unknown {
    /// The reference it comes from, e.g. `aws_iam_role.cross_account_role[0].arn`.
    pub origin: String,
    pub kind: Kind,
}

const MARK: char = '\u{1}';

fn nonce() -> &'static str {
    static NONCE: OnceLock<String> = OnceLock::new();
    NONCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        format!("{:016x}", h.finish())
    })
}

/// The marker standing for an unknown value in a string.
pub fn marker(origin: &str, kind: Kind) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let nonce = nonce();
    let mut out = String::with_capacity(nonce.len() + 2 * origin.len() + 8);
    out.push(MARK);
    out.push_str(nonce);
    out.push(kind.code());
    for b in origin.bytes() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out.push(MARK);
    out
}

/// One marker's body (between the two marks), decoded.
fn decode(body: &str) -> Option<Unknown> {
    let rest = body.strip_prefix(nonce())?;
    let mut chars = rest.chars();
    let kind = Kind::of(chars.next()?)?;
    let hex = chars.as_str();
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some(Unknown {
        origin: String::from_utf8(bytes?).ok()?,
        kind,
    })
}

/// A string cut into its known text and its unknowns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Unknown(Unknown),
}

/// The parts of a string (one `Text` part when it holds no marker).
pub fn parts(s: &str) -> Vec<Part> {
    let mut out = vec![];
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len_utf8()..];
        match after
            .find(MARK)
            .and_then(|end| Some((end, decode(&after[..end])?)))
        {
            Some((end, u)) => {
                text.push_str(&rest[..start]);
                if !text.is_empty() {
                    out.push(Part::Text(std::mem::take(&mut text)));
                }
                out.push(Part::Unknown(u));
                rest = &after[end + MARK.len_utf8()..];
            }
            None => {
                text.push_str(&rest[..start + MARK.len_utf8()]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() || out.is_empty() {
        out.push(Part::Text(text));
    }
    out
}

/// Whether a string holds an unknown value.
pub fn contains(s: &str) -> bool {
    s.contains(MARK) && parts(s).iter().any(|p| matches!(p, Part::Unknown(_)))
}

/// The unknown a string is, when it is exactly one.
pub fn exact(s: &str) -> Option<Unknown> {
    match parts(s).as_slice() {
        [Part::Unknown(u)] => Some(u.clone()),
        _ => None,
    }
}

/// The unknowns of a string.
pub fn unknowns(s: &str) -> Vec<Unknown> {
    parts(s)
        .into_iter()
        .filter_map(|p| match p {
            Part::Unknown(u) => Some(u),
            Part::Text(_) => None,
        })
        .collect()
}

/// The origins of a string's unknowns, for a message: `var.x`,
/// `aws_iam_role.r.arn`.
pub fn origins(s: &str) -> String {
    let mut names: Vec<String> = vec![];
    for u in unknowns(s) {
        if !names.contains(&u.origin) {
            names.push(u.origin);
        }
    }
    names.join(", ")
}

/// A string for a person: each unknown as `${origin}`, as Terraform writes
/// a reference in a string.
pub fn readable(s: &str) -> String {
    readable_cow(s).into_owned()
}

/// [`readable`], borrowing a text without unknowns.
pub fn readable_cow(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(MARK) {
        return s.into();
    }
    parts(s)
        .into_iter()
        .map(|p| match p {
            Part::Text(t) => t,
            Part::Unknown(u) => format!("${{{}}}", u.origin),
        })
        .collect::<String>()
        .into()
}

/// Whether a pattern text with unknowns (each any string, or what its kind
/// allows) could be `text`: `false` only when no value of the unknowns
/// makes them equal.
pub fn could_equal(pattern: &str, text: &str) -> bool {
    fn go(parts: &[Part], text: &str) -> bool {
        match parts.split_first() {
            None => text.is_empty(),
            Some((Part::Text(t), rest)) => {
                text.strip_prefix(t.as_str()).is_some_and(|r| go(rest, r))
            }
            Some((Part::Unknown(u), rest)) => (0..=text.len())
                .filter(|i| text.is_char_boundary(*i))
                .any(|i| fits(u.kind, &text[..i]) && go(rest, &text[i..])),
        }
    }
    go(&parts(pattern), text)
}

/// Whether a known string can be the value of an unknown of this kind.
fn fits(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::Any => true,
        Kind::OwnAccountId => s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
        Kind::OwnRoleArn => {
            let p: Vec<&str> = s.splitn(6, ':').collect();
            p.len() == 6 && p[0] == "arn" && p[2] == "iam" && p[5].starts_with("role/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_with_their_origin_and_kind() {
        let m = marker("aws_iam_role.cross_account_role[0].arn", Kind::OwnRoleArn);
        let u = exact(&m).unwrap();
        assert_eq!(u.origin, "aws_iam_role.cross_account_role[0].arn");
        assert_eq!(u.kind, Kind::OwnRoleArn);
        let s = format!("arn:aws:iam::{}:root", marker("var.acct", Kind::Any));
        assert!(contains(&s));
        assert_eq!(exact(&s), None);
        assert_eq!(readable(&s), "arn:aws:iam::${var.acct}:root");
        assert_eq!(origins(&s), "var.acct");
        assert_eq!(marker("a", Kind::Any), marker("a", Kind::Any));
        assert_ne!(marker("a", Kind::Any), marker("b", Kind::Any));
    }

    #[test]
    fn a_marker_without_the_nonce_is_text() {
        let forged = format!("{MARK}0000000000000000U61{MARK}");
        assert!(!contains(&forged));
        assert_eq!(parts(&forged), vec![Part::Text(forged.clone())]);
        assert_eq!(readable("no marker"), "no marker");
    }

    #[test]
    fn could_equal_respects_kinds() {
        let acct = marker(
            "data.aws_caller_identity.current.account_id",
            Kind::OwnAccountId,
        );
        let root = format!("arn:aws:iam::{acct}:root");
        assert!(could_equal(&root, "arn:aws:iam::123456789012:root"));
        assert!(!could_equal(&root, "arn:aws:iam::123456789012:role/x"));
        assert!(!could_equal(&root, "arn:aws:iam::12345:root"));
        let any = format!("arn:aws:iam::{}:root", marker("var.a", Kind::Any));
        assert!(could_equal(&any, "arn:aws:iam::x:y:root"));
        let role = marker("aws_iam_role.r.arn", Kind::OwnRoleArn);
        assert!(!could_equal(&role, "arn:aws:iam::414351767826:root"));
        assert!(could_equal(&role, "arn:aws:iam::1:role/r"));
    }
}
