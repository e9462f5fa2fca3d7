//! Durations as written in the config: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"7d"`, `"1m30s"`, or a
//! bare integer of seconds.

use std::time::Duration;

/// What every duration error tells the user to do.
pub(crate) const DURATION_FIX: &str = "use a duration like \"30s\", \"500ms\" or \"2m\"";

/// The units, largest first, with their size in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses `"1d2h3m4s5ms"`-style text: units `d`, `h`, `m`, `s`, `ms`, largest first, each at most
/// once, no spaces, no fractions. `None` for anything else (including overflow).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: units must come largest first, once each.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let i = UNITS.iter().position(|(name, _)| *name == unit)?;
        if i < next_unit {
            return None;
        }
        next_unit = i + 1;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
    }
    Some(Duration::from_millis(total))
}

/// Formats a duration the way it would be written in the config (`"90s"` → `1m30s`).
pub(crate) fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        let size = u128::from(size);
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_duration("500ms"), ms(500));
        assert_eq!(parse_duration("30s"), ms(30_000));
        assert_eq!(parse_duration("2m"), ms(120_000));
        assert_eq!(parse_duration("1h"), ms(3_600_000));
        assert_eq!(parse_duration("1m30s"), ms(90_000));
        assert_eq!(parse_duration("1h2m3s4ms"), ms(3_723_004));
        assert_eq!(parse_duration("0s"), ms(0));
        assert_eq!(parse_duration("90m"), ms(5_400_000));
        assert_eq!(parse_duration("7d"), ms(7 * 86_400_000));
        assert_eq!(parse_duration("1d12h"), ms(36 * 3_600_000));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "30",
            "30 s",
            "30 sex",
            "s",
            "1.5s",
            "-1s",
            "30S",
            "1s1m",
            "1s1s",
            "1m 30s",
            "ms",
            "10sec",
            "1h1d",
            "1D",
            "9999999999999s",
            "1h1h",
            " 30s",
            "30s ",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_values_neither_panic_nor_wrap() {
        assert_eq!(
            parse_duration("999999999999h"),
            ms(999_999_999_999 * 3_600_000)
        );
        assert_eq!(
            parse_duration("999999999999h999999999999m"),
            ms(999_999_999_999 * 3_660_000)
        );
        assert_eq!(parse_duration("1000000000000s"), None);
    }

    #[test]
    fn formatting_round_trips() {
        for text in [
            "500ms", "30s", "2m", "1h", "1m30s", "24h", "10m", "1h1ms", "7d", "1d1s",
        ] {
            let d = parse_duration(text).expect(text);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(86_400 + 1)), "1d1s");
    }
}
