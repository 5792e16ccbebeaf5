//! Validation of names that come from guests (artifact, checkpoint, model,
//! dataset, eval, metric names). A valid name is a single, visible path
//! component, so it can be used as a file name without any escaping, and
//! what is shown is what is stored: no control characters, no invisible
//! format characters (bidi overrides, zero-width characters), no leading or
//! trailing whitespace. Free text (descriptions) is checked by
//! [`check_text`], environment variables by [`check_env`].

use crate::text::is_invisible_format;

/// Longest accepted name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Check `name`; the error is a one-line explanation for an `invalid-argument`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let shown: String = name
        .chars()
        .take(40)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let fail = |why: &str| Err(format!("invalid {what} name \"{shown}\": {why}"));
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return fail(&format!(
            "longer than {MAX_NAME_BYTES} bytes ({} bytes)",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return fail("`.` and `..` are not names");
    }
    if name.starts_with('.') {
        return fail("must not start with `.` (reserved for the host)");
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
    {
        return fail(&format!("must not contain {:?}", c));
    }
    if let Some(c) = name.chars().find(|&c| is_invisible_format(c)) {
        return fail(&format!(
            "must not contain the invisible format character U+{:04X}",
            c as u32
        ));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return fail("must not start or end with whitespace");
    }
    Ok(())
}

/// Check free text such as a dataset description: at most `max_bytes`
/// bytes, no control characters other than `\n` and `\t` (no NUL, ESC,
/// CR...). The error is one line.
pub fn check_text(what: &str, text: &str, max_bytes: usize) -> Result<(), String> {
    if text.len() > max_bytes {
        return Err(format!(
            "invalid {what}: longer than {max_bytes} bytes ({} bytes)",
            text.len()
        ));
    }
    if let Some((at, c)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!(
            "invalid {what}: must not contain the control character {c:?} (at byte {at})"
        ));
    }
    Ok(())
}

/// Check an environment variable given to a plugin: a non-empty name
/// without `=` or NUL, a value without NUL. The error is one line.
pub fn check_env(name: &str, value: &str) -> Result<(), String> {
    let shown = crate::text::for_terminal_line(name);
    if name.is_empty() {
        return Err("invalid environment variable: the name is empty".into());
    }
    if name.contains('=') {
        return Err(format!(
            "invalid environment variable name `{shown}`: must not contain `=`"
        ));
    }
    if name.contains('\0') {
        return Err(format!(
            "invalid environment variable name `{shown}`: must not contain NUL"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "invalid value of environment variable `{shown}`: must not contain NUL"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_env, check_name, check_text, MAX_NAME_BYTES};

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["model", "epoch-3", "eval_results.csv", "ü-ñ", "a b"] {
            assert!(check_name("artifact", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_path_tricks() {
        let long = "x".repeat(10_000);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/etc",
            "a\\b",
            "a\0b",
            ".hidden",
            "c:x",
            "a\nb",
            long.as_str(),
        ] {
            let err = check_name("artifact", bad).unwrap_err();
            assert!(err.starts_with("invalid artifact name"), "{err}");
        }
        assert_eq!(
            check_name("model", "a/b").unwrap_err(),
            "invalid model name \"a/b\": must not contain '/'"
        );
    }

    #[test]
    fn rejects_invisible_and_padded_names() {
        for (bad, why) in [
            (
                "evil\u{202e}vnc.exe",
                "must not contain the invisible format character U+202E",
            ),
            (
                "\u{202a}x",
                "must not contain the invisible format character U+202A",
            ),
            (
                "x\u{2066}y\u{2069}",
                "must not contain the invisible format character U+2066",
            ),
            (
                "zero\u{200b}width",
                "must not contain the invisible format character U+200B",
            ),
            (
                "a\u{200d}b",
                "must not contain the invisible format character U+200D",
            ),
            (
                "rtl\u{200f}",
                "must not contain the invisible format character U+200F",
            ),
            (
                "\u{feff}bom",
                "must not contain the invisible format character U+FEFF",
            ),
            (
                "soft\u{ad}hyphen",
                "must not contain the invisible format character U+00AD",
            ),
            (
                "a\u{61c}b",
                "must not contain the invisible format character U+061C",
            ),
            (
                "a\u{180e}b",
                "must not contain the invisible format character U+180E",
            ),
            (
                "word\u{2060}joiner",
                "must not contain the invisible format character U+2060",
            ),
            (
                "a\u{206f}b",
                "must not contain the invisible format character U+206F",
            ),
            (
                "a\u{fff9}b",
                "must not contain the invisible format character U+FFF9",
            ),
            (
                "tag\u{e0041}",
                "must not contain the invisible format character U+E0041",
            ),
            (
                "tag\u{e007f}",
                "must not contain the invisible format character U+E007F",
            ),
            (" lead", "must not start or end with whitespace"),
            ("trail ", "must not start or end with whitespace"),
            ("nbsp\u{a0}", "must not start or end with whitespace"),
            (
                "\u{3000}ideographic",
                "must not start or end with whitespace",
            ),
            ("a\u{9b}b", "must not contain '\\u{9b}'"),
            ("a\x1b[2Jb", "must not contain '\\u{1b}'"),
            ("a\rb", "must not contain '\\r'"),
        ] {
            let err = check_name("dataset", bad).unwrap_err();
            assert!(
                err.starts_with("invalid dataset name \"") && err.ends_with(why),
                "{bad:?}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        assert_eq!(
            check_name("model", "a\u{202e}b").unwrap_err(),
            "invalid model name \"a\\u{202e}b\": must not contain the invisible format character U+202E"
        );
        // Ordinary Unicode, inner spaces and non-format marks stay valid.
        for ok in [
            "ü-ñ",
            "a b",
            "日本語",
            "עברית",
            "emoji-😀",
            "a\u{a0}b",
            "e\u{301}",
        ] {
            assert_eq!(check_name("model", ok), Ok(()), "{ok:?}");
        }
    }

    /// The length limit is in bytes, inclusive; the reasons are exact and
    /// the name shown in them is cut at 40 characters.
    #[test]
    fn length_limit_reasons_and_shown_name() {
        assert_eq!(check_name("artifact", &"x".repeat(MAX_NAME_BYTES)), Ok(()));
        assert_eq!(
            check_name("artifact", &"x".repeat(MAX_NAME_BYTES + 1)).unwrap_err(),
            format!(
                "invalid artifact name \"{}\": longer than 128 bytes (129 bytes)",
                "x".repeat(40)
            )
        );
        // "ü" is two bytes: 64 fit, 65 do not.
        assert_eq!(check_name("eval", &"ü".repeat(64)), Ok(()));
        assert!(check_name("eval", &"ü".repeat(65))
            .unwrap_err()
            .ends_with("longer than 128 bytes (130 bytes)"));
        for (bad, why) in [
            ("", "must not be empty"),
            (".", "`.` and `..` are not names"),
            ("..", "`.` and `..` are not names"),
            ("...", "must not start with `.` (reserved for the host)"),
            (".tmp-x", "must not start with `.` (reserved for the host)"),
            ("a\\b", "must not contain '\\\\'"),
            ("c:", "must not contain ':'"),
            ("tab\tin", "must not contain '\\t'"),
        ] {
            assert_eq!(
                check_name("checkpoint", bad).unwrap_err(),
                format!("invalid checkpoint name \"{}\": {why}", bad.escape_debug()),
                "{bad:?}"
            );
        }
        // Dots and spaces inside or at the end are fine.
        for ok in ["a.", "a..b", "v1.2.3", "x y z", "-", "_"] {
            assert_eq!(check_name("metric", ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn free_text() {
        assert_eq!(
            check_text("description", "two\nlines\tand ü 😀", 100),
            Ok(())
        );
        assert_eq!(check_text("description", "", 100), Ok(()));
        // Format characters are text here; the CLI escapes them when shown.
        assert_eq!(check_text("description", "a\u{202e}b", 100), Ok(()));
        for (bad, c, at) in [
            ("nul\0", "'\\0'", 3),
            ("\x1b]52;c;eA==\x07", "'\\u{1b}'", 0),
            ("over\rwrite", "'\\r'", 4),
            ("bell\x07", "'\\u{7}'", 4),
            ("bs\x08", "'\\u{8}'", 2),
            ("del\x7f", "'\\u{7f}'", 3),
            ("c1\u{9b}", "'\\u{9b}'", 2),
        ] {
            assert_eq!(
                check_text("description", bad, 100).unwrap_err(),
                format!("invalid description: must not contain the control character {c} (at byte {at})"),
                "{bad:?}"
            );
        }
        assert_eq!(check_text("description", "ab", 2), Ok(()));
        assert_eq!(
            check_text("description", "abc", 2).unwrap_err(),
            "invalid description: longer than 2 bytes (3 bytes)"
        );
        // Bytes, not chars: "ü" is two bytes.
        assert!(check_text("description", "ü", 1).is_err());
    }

    #[test]
    fn environment_variables() {
        assert_eq!(check_env("PATH", "/bin:/usr/bin"), Ok(()));
        assert_eq!(check_env("K", ""), Ok(()));
        assert_eq!(check_env("K", "a=b=c ü"), Ok(()));
        assert_eq!(
            check_env("", "v").unwrap_err(),
            "invalid environment variable: the name is empty"
        );
        assert_eq!(
            check_env("A=B", "v").unwrap_err(),
            "invalid environment variable name `A=B`: must not contain `=`"
        );
        assert_eq!(
            check_env("A\0B", "v").unwrap_err(),
            "invalid environment variable name `A\\x00B`: must not contain NUL"
        );
        assert_eq!(
            check_env("K", "v\0w").unwrap_err(),
            "invalid value of environment variable `K`: must not contain NUL"
        );
    }
}
