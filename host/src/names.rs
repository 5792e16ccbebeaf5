//! Validation of names that come from guests (artifact, checkpoint, model,
//! dataset, eval, metric names). A valid name is a single, visible path
//! component, so it can be used as a file name without any escaping.

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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

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
}
