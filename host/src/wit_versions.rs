//! The released versions of the lab API, frozen. `host/wit-versions/<v>/`
//! holds the WIT of every released `lab:api` version exactly as released;
//! the test below fails if one of them changes, or if the live WIT
//! (`host/wit/`) declares a released version but differs from its frozen
//! copy: a released version is never edited, a change is a new version.
//! (Loading several versions side by side, old ones delegating to the
//! newest, comes with the first version after 0.1.0.)

/// Every released version and the blake3 of its frozen `lab.wit`.
pub const RELEASED: &[(&str, &str)] = &[(
    "0.1.0",
    "ca11a0b2349de2545fe207f9fda0f944081a1c6b0795a3ea36850f90c9f0ced8",
)];

/// The WIT text of a frozen version.
pub fn frozen(version: &str) -> Option<&'static str> {
    match version {
        "0.1.0" => Some(include_str!("../wit-versions/0.1.0/lab.wit")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_lab_api_versions_are_frozen() {
        for (version, digest) in RELEASED {
            let text = frozen(version).expect("every released version is embedded");
            assert_eq!(
                blake3::hash(text.as_bytes()).to_hex().as_str(),
                *digest,
                "the frozen WIT of lab:api@{version} changed: released versions are never edited"
            );
        }
        let live = include_str!("../wit/lab.wit");
        let declared = live
            .lines()
            .find_map(|l| l.trim().strip_prefix("package lab:api@"))
            .and_then(|v| v.strip_suffix(';'))
            .expect("the live WIT declares its package");
        if let Some(text) = frozen(declared) {
            assert!(
                live == text,
                "host/wit/lab.wit declares the released lab:api@{declared} but differs from its frozen copy: give it a new version"
            );
        }
    }
}
