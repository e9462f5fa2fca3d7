//! Sizes as written in the config: `"2GB"`, `"500MB"`, `"1.5GiB"`, `"800 MiB"`, or a bare integer
//! of bytes.

/// What every size error tells the user to do.
pub(crate) const SIZE_FIX: &str = "use a size like \"2GB\", \"500MB\" or \"1.5GiB\" (kB, MB, GB, \
     TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024), or a whole number of bytes without \
     quotes";

/// The units, with their size in bytes. Matched without regard to case (`gb`, `GB`, `Gb` are all
/// 10⁹ bytes: a `b` is always a byte, never a bit).
const UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Parses `"2GB"`-style text: a number (digits, at most one `.` with digits on both sides), an
/// optional space, and a unit (`B`, `kB`, `MB`, `GB`, `TB`, `KiB`, `MiB`, `GiB`, `TiB`, any case).
/// A fraction of a byte is rounded down. `None` for anything else: no unit, a negative number, a
/// bare `G` (decimal or binary?), more than 18 digits, or more bytes than a `u64` holds.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let number_len = text
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = text.split_at(number_len);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (_, size) = UNITS.iter().find(|(name, _)| *name == unit)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let fraction_written = number.contains('.');
    let digits_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(whole) || (fraction_written && !digits_ok(fraction)) {
        return None;
    }
    if whole.len() + fraction.len() > 18 {
        return None;
    }
    // All digits as one integer, scaled back by the fraction's length: exact, no float rounding.
    let mantissa: u128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let bytes = mantissa.checked_mul(u128::from(*size))? / scale;
    u64::try_from(bytes).ok()
}

/// Formats a size the way it would be written in the config: the largest decimal unit it is a
/// whole number of (`10MB`, `2GB`), or bytes (`1536B`).
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, size) in [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("kB", 1_000),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("1.5GiB"), Some(1_610_612_736));
        assert_eq!(parse_size("800 MiB"), Some(800 * 1_048_576));
        assert_eq!(parse_size("10mb"), Some(10_000_000));
        assert_eq!(parse_size("10Mb"), Some(10_000_000));
        assert_eq!(parse_size("1kB"), Some(1_000));
        assert_eq!(parse_size("1KB"), Some(1_000));
        assert_eq!(parse_size("1KiB"), Some(1_024));
        assert_eq!(parse_size("2TiB"), Some(2 << 40));
        assert_eq!(parse_size("1TB"), Some(1_000_000_000_000));
        assert_eq!(parse_size("123B"), Some(123));
        assert_eq!(parse_size("0.5kB"), Some(500));
        assert_eq!(parse_size("1.0005kB"), Some(1_000));
        assert_eq!(parse_size("0GB"), Some(0));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "2",
            "2G",
            "2 G",
            "GB",
            ".5GB",
            "5.GB",
            "1.2.3GB",
            "-1GB",
            "2  GB",
            " 2GB",
            "2GB ",
            "2 gigs",
            "2Gbit",
            "2e3MB",
            "1_000MB",
            "2GBs",
            "2iB",
            "2 GiB ",
            "1,5GB",
            "9999999999999999999GB",
            "99999999TiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(10_000_000), "10MB");
        assert_eq!(format_size(2_000_000_000), "2GB");
        assert_eq!(format_size(1_500_000), "1500kB");
        assert_eq!(format_size(1_536), "1536B");
        assert_eq!(format_size(0), "0B");
        for n in [10_000_000, 2_000_000_000, 1_536, 7_000_000_000_000] {
            assert_eq!(parse_size(&format_size(n)), Some(n));
        }
    }
}
