//! Showing untrusted text (anything a guest chose: log lines, messages,
//! names, descriptions, metadata, `describe()` strings) on a terminal.
//!
//! A terminal interprets control characters: ESC starts sequences that can
//! write the clipboard (OSC 52), set the window title (OSC 0) or clear the
//! screen; CR and backspace overwrite what was printed (a forged "job ended
//! COMPLETE"); BEL rings. Bidi overrides and zero-width characters make the
//! text shown differ from the text stored. [`for_terminal`] shows every such
//! character as a visible escape (`\x1b`, `\r`, `\u{202e}`) instead.
//!
//! Backslashes are left alone, so a guest that writes the two characters
//! `\r` looks like one that wrote a CR; that is only text, never an effect.

use std::borrow::Cow;

/// An error and its causes on one line, `: `-joined, each cause said once
/// (a cause whose text an earlier one already quotes is dropped). The one
/// form every front end (CLI, REST, Python) reports an error in.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// `s` with every control character except `\t` and `\n`, and every
/// invisible format or bidi character, escaped visibly. Borrows `s` when
/// nothing needs escaping. For text shown as several lines (a log).
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Like [`for_terminal`], but `\n` is escaped too: the text stays on one
/// line (table cells, one-line messages).
pub fn for_terminal_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Bytes that may not be UTF-8 (a log file read back): valid text as by
/// [`for_terminal`], every invalid byte as `\xNN`.
pub fn bytes_for_terminal(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return for_terminal(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&for_terminal(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is an invisible format character (Unicode general category
/// Cf: bidi embeddings, overrides and isolates, zero-width characters, the
/// BOM, tags...) or a line/paragraph separator (U+2028, U+2029).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

fn needs_escape(c: char, keep_newline: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newline,
        // C0, DEL and C1 controls.
        c if c.is_control() => true,
        c => is_invisible_format(c),
    }
}

fn escape(s: &str, keep_newline: bool) -> Cow<'_, str> {
    // Fast path: printable ASCII and common text need no copy.
    let Some(first) = s.find(|c| needs_escape(c, keep_newline)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !needs_escape(c, keep_newline) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// `s` cut to at most `max_chars` characters (at a char boundary), with
/// `…` at the cut; borrowed when it is short enough.
pub fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}…", &s[..end])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! owned {
        ($c:expr) => {
            matches!($c, Cow::Owned(_))
        };
    }

    #[test]
    fn attack_sequences_are_shown_not_executed() {
        for (input, shown) in [
            // OSC 52: write the clipboard.
            (
                "\x1b]52;c;ZWNobyBwd25lZA==\x07",
                "\\x1b]52;c;ZWNobyBwd25lZA==\\x07",
            ),
            // OSC 0: window title, ST-terminated.
            ("\x1b]0;owned\x1b\\", "\\x1b]0;owned\\x1b\\"),
            ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
            ("ding\x07", "ding\\x07"),
            ("50%\rjob ended COMPLETE", "50%\\rjob ended COMPLETE"),
            (
                "FAILED\x08\x08\x08\x08\x08\x08OK",
                "FAILED\\x08\\x08\\x08\\x08\\x08\\x08OK",
            ),
            ("nul\0", "nul\\x00"),
            ("del\x7f", "del\\x7f"),
            // C1 CSI (U+009B) and NEL (U+0085).
            ("\u{9b}2J\u{85}", "\\u{9b}2J\\u{85}"),
            // Trojan-source bidi: override, embeddings, isolates.
            ("a\u{202e}txt.exe", "a\\u{202e}txt.exe"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{2066}\\u{2067}\\u{2068}\\u{2069}",
            ),
            // Zero-width and other invisible format characters.
            (
                "a\u{200b}\u{200c}\u{200d}\u{200e}\u{200f}b\u{feff}",
                "a\\u{200b}\\u{200c}\\u{200d}\\u{200e}\\u{200f}b\\u{feff}",
            ),
            (
                "x\u{ad}\u{2060}\u{e0041}\u{2028}",
                "x\\u{ad}\\u{2060}\\u{e0041}\\u{2028}",
            ),
        ] {
            let got = for_terminal(input);
            assert_eq!(got, shown, "{input:?}");
            assert!(owned!(&got));
            assert_eq!(for_terminal_line(input), shown, "{input:?}");
        }
    }

    #[test]
    fn newline_and_tab() {
        assert_eq!(for_terminal("a\n\tb\r\n"), "a\n\tb\\r\n");
        assert_eq!(for_terminal_line("a\n\tb\r\n"), "a\\n\tb\\r\\n");
        assert!(!owned!(&for_terminal("two\nlines\tand a tab")));
        assert!(owned!(&for_terminal_line("two\nlines")));
    }

    #[test]
    fn fast_path_borrows_and_utf8_is_kept() {
        for s in [
            "",
            "plain ascii: loss=0.25 (epoch 3/8) \\x1b literal",
            "ü-ñ 日本語 😀 עברית العربية",
            "tab\tseparated",
        ] {
            let got = for_terminal_line(s);
            assert!(!owned!(&got), "{s:?} was copied");
            assert_eq!(got, s);
        }
        assert_eq!(for_terminal("日本\x1b[31m語😀"), "日本\\x1b[31m語😀");
    }

    #[test]
    fn invalid_bytes_are_shown_as_hex() {
        assert!(!owned!(&bytes_for_terminal(b"ok\n")));
        assert_eq!(
            bytes_for_terminal(b"a\xff\x1b[2J\xe6\x97\n\xe6\x97\xa5"),
            "a\\xff\\x1b[2J\\xe6\\x97\n日"
        );
    }

    #[test]
    fn clip_at_a_char_boundary() {
        assert!(!owned!(&clip("short", 5)));
        assert_eq!(clip("ééééé", 3), "ééé…");
        assert_eq!(clip(&"😀".repeat(100_000), 2), "😀😀…");
    }
}
