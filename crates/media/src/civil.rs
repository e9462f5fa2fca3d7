//! Civil (calendar) time in UTC for the API and file names: Unix milliseconds to and from
//! RFC 3339 (`2026-12-02T03:04:05.678Z`), and the UTC date of a moment. The event API speaks
//! RFC 3339 with milliseconds; a date library would be a dependency for two functions. The
//! calendar arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days` (proleptic
//! Gregorian, exact for every day from year 0 to 9999, which is all RFC 3339 can write).

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12, `day` 1..=31).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The UTC date of a moment, as (year, month, day).
pub fn utc_date(unix_ms: i64) -> (i64, u32, u32) {
    civil_from_days(unix_ms.div_euclid(DAY_MS))
}

/// A moment as RFC 3339 in UTC with milliseconds: `2026-12-02T03:04:05.678Z`. Years outside
/// 0..=9999 are clamped to that range's ends (RFC 3339 has four year digits).
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let min = days_from_civil(0, 1, 1) * DAY_MS;
    let max = days_from_civil(10_000, 1, 1) * DAY_MS - 1;
    let ms = unix_ms.clamp(min, max);
    let (y, mo, d) = utc_date(ms);
    let of_day = ms.rem_euclid(DAY_MS);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

/// Parses an RFC 3339 date-time (`2026-12-02T03:04:05Z`, with optional fraction of a second and a
/// `Z` or `±hh:mm` offset; `t`/`z` and a space for the `T` accepted) to Unix milliseconds. Digits
/// of the fraction past milliseconds are dropped. None for anything else, out-of-range fields
/// included.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| c.contains(b.get(i).unwrap_or(&0));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let day = u32::try_from(day)
        .ok()
        .filter(|d| *d >= 1 && *d <= month_days[month as usize - 1])?;
    // 60 is a leap second: counted as the next second's start.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * DAY_MS + ((hour * 60 + minute - offset_min) * 60 + second) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_moments() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_180_645_678), "2026-12-02T03:04:05.678Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(utc_date(1_796_180_645_678), (2026, 12, 2));
    }

    #[test]
    fn parses_what_it_writes_and_offsets() {
        for ms in [0, 1, 999, 1_796_180_645_678, 951_782_400_000, -86_400_001] {
            assert_eq!(parse_rfc3339(&rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            parse_rfc3339("2026-12-02T04:04:05.678+01:00"),
            Some(1_796_180_645_678)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T22:04:05-05:00"),
            Some(1_796_180_645_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-02 03:04:05.6789Z"),
            Some(1_796_180_645_678)
        );
        assert_eq!(
            parse_rfc3339("2026-12-02T03:04:05.6Z"),
            Some(1_796_180_645_600)
        );
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-12-02",
            "2026-12-02T03:04:05",
            "2026-13-02T03:04:05Z",
            "2026-02-29T03:04:05Z",
            "2026-12-02T24:04:05Z",
            "2026-12-02T03:04:05.Z",
            "2026-12-02T03:04:05+1:00",
            "2026-12-02T03:04:05Zjunk",
            "2026-12-0२T03:04:05Z",
            "+026-12-02T03:04:05Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_round_trips() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
