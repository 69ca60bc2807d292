//! Text from a service or from reviewed input, made safe for a person's
//! terminal and for the logs and reports of a CI system. Knows nothing of
//! Terraform, Databricks or AWS: both clients (`cloud::databricks`,
//! `cloud::kms`) pass what a service says through [`printable`] before it
//! reaches a diagnostic, and every output format of `review` passes what
//! came from the input through [`escape`] (and its whole output through
//! [`no_commands`]).
//!
//! What is escaped (as `\u{..}`): control characters (ESC, BEL, the C1
//! range that holds OSC and CSI, NEL), the Unicode format characters
//! (category Cf: bidirectional overrides and isolates, zero-width
//! characters, the BOM, tag characters), the line and paragraph
//! separators, and the noncharacters (U+FDD0..U+FDEF and the last two code
//! points of every plane, U+FFFE and U+FFFF among them), which XML cannot
//! hold. What is left is text a terminal shows as it is.

/// Whether a character is escaped: invisible, or able to change how the
/// text around it is shown or parsed (see the module's documentation).
pub fn is_hidden(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    let u = c as u32;
    c.is_control() || is_format(u) || is_noncharacter(u) || matches!(u, 0x2028 | 0x2029)
}

/// Unicode general category Cf (Unicode 15.1).
fn is_format(u: u32) -> bool {
    matches!(
        u,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
    )
}

fn is_noncharacter(u: u32) -> bool {
    (0xfdd0..=0xfdef).contains(&u) || (u & 0xfffe) == 0xfffe
}

/// Text from a service, made safe to print: the characters of
/// [`is_hidden`] escaped as `\u{..}` (a new line, carriage return or tab
/// becomes a space), and text longer than `max_bytes` cut at a character
/// boundary with a note of how many bytes were left out.
pub fn printable(s: &str, max_bytes: usize) -> String {
    escape_with(s, max_bytes, true).into_owned()
}

/// Text from reviewed input (a file name, an address, a key, a reason)
/// for one line of output: every character of [`is_hidden`] escaped as
/// `\u{..}`, new lines included, and cut to `max_bytes` with a note.
pub fn escape(s: &str, max_bytes: usize) -> String {
    escape_with(s, max_bytes, false).into_owned()
}

/// [`escape`], borrowing a text that needs nothing done.
pub fn escape_cow(s: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    escape_with(s, max_bytes, false)
}

fn escape_with(s: &str, max_bytes: usize, spaces: bool) -> std::borrow::Cow<'_, str> {
    if s.len() <= max_bytes && !s.chars().any(is_hidden) {
        return s.into();
    }
    let mut out = String::new();
    let mut used = 0usize;
    for (i, c) in s.char_indices() {
        let piece: String = if is_hidden(c) {
            match c {
                '\n' | '\r' | '\t' if spaces => " ".to_string(),
                c => format!("\\u{{{:x}}}", c as u32),
            }
        } else {
            c.to_string()
        };
        if used + piece.len() > max_bytes {
            let left = s.len() - i;
            out.push_str(&format!("... ({left} more bytes)"));
            return out.into();
        }
        used += piece.len();
        out.push_str(&piece);
    }
    out.into()
}

/// A short excerpt of one line of a file, around byte `column` (1-based),
/// escaped: at most [`EXCERPT_MAX_CHARS`] characters, with `...` where the
/// line goes on. Never the whole of a line of unknown length.
pub fn excerpt(line: &str, column: usize) -> String {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let at = chars
        .iter()
        .position(|(i, _)| *i + 1 >= column)
        .unwrap_or(chars.len());
    let start = at.saturating_sub(EXCERPT_MAX_CHARS / 2);
    let end = (start + EXCERPT_MAX_CHARS).min(chars.len());
    let text: String = chars[start..end].iter().map(|(_, c)| *c).collect();
    format!(
        "{}{}{}",
        if start > 0 { "..." } else { "" },
        escape(&text, EXCERPT_MAX_CHARS * 12),
        if end < chars.len() { "..." } else { "" }
    )
}

/// The longest excerpt of a line a message quotes, in characters.
pub const EXCERPT_MAX_CHARS: usize = 40;

/// Output in which no line can be taken for a CI system's command: a line
/// that starts (after blanks) with `::` (GitHub Actions' workflow
/// commands) or `##[` / `##vso[` (older runners, Azure Pipelines) gets a
/// `\` in front. `keep` says which lines are the caller's own commands,
/// written with escaped properties and data (`review --format github`).
pub fn no_commands(out: String, keep: impl Fn(&str) -> bool) -> String {
    let taken = |line: &str| {
        let t = line.trim_start();
        (t.starts_with("::") || t.starts_with("##")) && !keep(line)
    };
    // Most outputs have no such line: kept as they are, not copied. A line
    // is looked at closely only when its first byte after ASCII blanks
    // could start one (':', '#', or a byte of a wider blank). Line starts
    // come from one pass of `memchr` over the whole output.
    let b = out.as_bytes();
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', b).map(|p| p + 1));
    let start = starts
        .filter(|&start| start < b.len())
        .find(|&start| {
            // The ASCII characters `trim_start` takes for blanks, but the
            // line's own end (a blank line starts nothing).
            let first = b[start..]
                .iter()
                .find(|c| !matches!(c, b' ' | b'\t' | 0x0b..=0x0d));
            matches!(first, Some(c) if *c == b':' || *c == b'#' || !c.is_ascii()) && {
                let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |p| start + p + 1);
                taken(&out[start..end])
            }
        })
        .unwrap_or(b.len());
    if start == b.len() {
        return out;
    }
    // From the first line taken on, line by line.
    let mut s = String::with_capacity(out.len() + 64);
    s.push_str(&out[..start]);
    for line in out[start..].split_inclusive('\n') {
        if taken(line) {
            s.push('\\');
        }
        s.push_str(line);
    }
    s
}

/// A file path as a relative URI reference (SARIF's `artifactLocation.uri`):
/// every byte other than the unreserved characters of RFC 3986 and `/`
/// percent-encoded, so no character of a file name can end the path, start
/// a scheme (`a:b`), a query or a fragment, or be invisible.
pub fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

    #[test]
    fn invisible_and_xml_invalid_characters_are_escaped() {
        for (c, esc) in [
            ('\u{202e}', "\\u{202e}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{ffff}', "\\u{ffff}"),
            ('\u{fffe}', "\\u{fffe}"),
            ('\u{1fffe}', "\\u{1fffe}"),
            ('\u{e0041}', "\\u{e0041}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{85}', "\\u{85}"),
            ('\n', "\\u{a}"),
        ] {
            assert_eq!(escape(&format!("a{c}b"), 100), format!("a{esc}b"));
        }
        // Letters, accents and emoji stay as they are.
        assert_eq!(escape("prod-é-日本-🔑", 100), "prod-é-日本-🔑");
        assert_eq!(printable("a\nb", 100), "a b");
    }

    #[test]
    fn an_excerpt_is_short_and_escaped() {
        let line = format!("{}\u{1b}[2J{}", "A".repeat(5000), "B".repeat(5000));
        let e = excerpt(&line, 5001);
        assert!(e.starts_with("...") && e.ends_with("..."), "{e}");
        assert!(e.contains("\\u{1b}[2J"), "{e}");
        assert!(e.chars().count() < 80, "{e}");
        assert_eq!(excerpt("short", 1), "short");
    }

    #[test]
    fn a_uri_is_percent_encoded() {
        assert_eq!(uri_path("./main.tf"), "./main.tf");
        assert_eq!(
            uri_path("./a b\u{202e}:c#?%.tf"),
            "./a%20b%E2%80%AE%3Ac%23%3F%25.tf"
        );
    }

    #[test]
    fn no_line_is_a_workflow_command() {
        let out = "ok\n::add-mask::x\n  ::stop-commands::t\n##[set-env]\n::error file=a::b\n";
        let s = no_commands(out.to_string(), |l| l.starts_with("::error "));
        assert_eq!(
            s,
            "ok\n\\::add-mask::x\n\\  ::stop-commands::t\n\\##[set-env]\n::error file=a::b\n"
        );
        // Nothing to escape: the output as it was.
        let plain = "ok\n  # a comment\nx :: y\n".to_string();
        assert_eq!(no_commands(plain.clone(), |_| false), plain);
        // Whatever `trim_start` takes for a blank (a vertical tab, an em
        // space) does not hide a command.
        let hidden = "ok\n\u{b}::add-mask::x\n\u{2003}##[set-env]\n".to_string();
        assert_eq!(
            no_commands(hidden, |_| false),
            "ok\n\\\u{b}::add-mask::x\n\\\u{2003}##[set-env]\n"
        );
    }

    proptest::proptest! {
        /// The scan for the first line to escape (line starts from one
        /// `memchr` pass, blanks skipped within the line) gives what
        /// escaping every line, one by one, gives.
        #[test]
        fn no_commands_is_the_line_by_line_escape(
            out in "[ \t\n\r\u{b}\u{c}\u{2003}\u{85}:#ax]{0,60}"
        ) {
            let keep = |l: &str| l.starts_with("::a");
            let mut plain = String::new();
            for line in out.split_inclusive('\n') {
                let t = line.trim_start();
                if (t.starts_with("::") || t.starts_with("##")) && !keep(line) {
                    plain.push('\\');
                }
                plain.push_str(line);
            }
            proptest::prop_assert_eq!(no_commands(out, keep), plain);
        }
    }
}
