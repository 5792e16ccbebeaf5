//! Sizes and durations: parsing them, and the one way each is shown.
//!
//! [`human_bytes`] is the size every message and view shows (`1.5 KiB`);
//! [`exact_bytes`] is the form that reads back exactly (`512MiB`: settings,
//! records, limits). [`human_duration`] is both for durations (`90s`,
//! `250ms`): [`parse_duration`] reads it back.

use std::time::Duration;

use anyhow::bail;

/// `1073741824` → `1 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() == 0.0 {
        format!("{} {}", v as u64, UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Elapsed time and ETAs as status views show them: `12.3s`, `4m05s`,
/// `2h07m` (for reading, not for reading back: see [`human_duration`]).
pub fn human_elapsed(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, secs as u64 % 60)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            (secs as u64 % 3600) / 60
        )
    }
}

/// A duration as [`parse_duration`] reads it back: `90s`, `10m`, `2h`,
/// `1.5s`, `250ms` — the one duration format of records, settings, limits
/// and job messages.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms.is_multiple_of(100) && Duration::from_millis(ms as u64) == d {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else if Duration::from_millis(ms as u64) == d {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// A size as [`parse_bytes`] reads it back: `512MiB`, `1GiB`, `1000`.
pub fn exact_bytes(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// Parse `90`, `90s`, `15m`, `2h`, `500ms`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration `{s}`: expected e.g. 90s, 15m, 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration `{s}`: unknown unit `{unit}` (use ms, s, m or h)"),
    };
    if secs.is_nan() || secs <= 0.0 {
        bail!("invalid duration `{s}`: must be positive");
    }
    Duration::try_from_secs_f64(secs).map_err(|_| anyhow::anyhow!("invalid duration `{s}`"))
}

/// Parse `512MiB`, `2GiB`, `100KB`, `1048576`.
pub fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size `{s}`: expected e.g. 512MiB, 2GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => bail!("invalid size `{s}`: unknown unit `{u}`"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow::anyhow!("invalid size `{s}`: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_times_read_at_a_glance() {
        assert_eq!(human_elapsed(12.34), "12.3s");
        assert_eq!(human_elapsed(245.0), "4m05s");
        assert_eq!(human_elapsed(7620.0), "2h07m");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2g").unwrap(), 2 << 30);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0").is_err());
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        for d in ["90s", "10m", "2h", "250ms", "1.5s", "0.3s"] {
            assert_eq!(human_duration(parse_duration(d).unwrap()), d);
        }
        for b in ["512MiB", "1GiB", "1000", "3KiB"] {
            assert_eq!(exact_bytes(parse_bytes(b).unwrap()), b);
        }
    }
}
