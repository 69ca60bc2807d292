//! Text from a service, made safe for a person's terminal. Knows nothing
//! of Terraform, Databricks or AWS: both clients (`cloud::databricks`,
//! `cloud::kms`) pass what a service says through [`printable`] before it
//! reaches a diagnostic.

/// Text from a service, made safe to print: control characters (ESC, BEL,
/// the C1 range that holds OSC and CSI) and the bidirectional overrides are
/// escaped as `\u{..}`, and text longer than `max_bytes` is cut at a
/// character boundary with a note of how many bytes were left out.
pub fn printable(s: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    for (i, c) in s.char_indices() {
        let piece: String = if c.is_control() || is_bidi_control(c) {
            match c {
                '\n' | '\r' | '\t' => " ".to_string(),
                c => format!("\\u{{{:x}}}", c as u32),
            }
        } else {
            c.to_string()
        };
        if used + piece.len() > max_bytes {
            let left = s.len() - i;
            out.push_str(&format!("... ({left} more bytes)"));
            return out;
        }
        used += piece.len();
        out.push_str(&piece);
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The longest service text a message quotes.
pub const MESSAGE_MAX_BYTES: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_text_is_printable_and_cut_with_a_note() {
        let hostile = "denied\u{1b}]8;;http://evil\u{7}click\u{1b}[2J\u{9b}31m";
        let p = printable(hostile, 1000);
        assert!(!p.chars().any(|c| c.is_control()), "{p}");
        assert!(p.contains("\\u{1b}]8;;http://evil\\u{7}click"), "{p}");
        assert!(p.contains("\\u{9b}31m"), "{p}");
        assert_eq!(printable("a\u{202e}b", 100), "a\\u{202e}b");
        let long = "x".repeat(2_000_000);
        let p = printable(&long, 1000);
        assert!(p.ends_with("... (1999000 more bytes)"), "{}", &p[990..]);
        assert_eq!(p.len(), 1000 + "... (1999000 more bytes)".len());
        // Cut at a character boundary, never inside one.
        let p = printable("ééé", 3);
        assert_eq!(p, "é... (4 more bytes)");
    }
}
