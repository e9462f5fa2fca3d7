//! Timestamps on the 90 kHz clock that every packet of the packet tap uses (RTP's video clock, and
//! MPEG's), converted exactly from any other time base.

/// Ticks per second of the packet clock.
pub const CLOCK_HZ: i64 = 90_000;

/// Converts `ts` ticks of `num/den` seconds each to 90 kHz ticks (exact integer arithmetic,
/// saturating). A zero `den` returns `ts` unchanged.
///
/// ```
/// use camhub_media::timestamp::to_90khz;
/// assert_eq!(to_90khz(1, 1, 25), 3600); // one frame at 25 fps
/// assert_eq!(to_90khz(48_000, 1, 48_000), 90_000);
/// ```
pub fn to_90khz(ts: i64, num: i64, den: i64) -> i64 {
    if den == 0 {
        return ts;
    }
    (i128::from(ts) * i128::from(num) * i128::from(CLOCK_HZ) / i128::from(den))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(to_90khz(1000, 1, 1000), 90_000);
        assert_eq!(to_90khz(5, 1, 0), 5);
        assert_eq!(to_90khz(i64::MAX, 2, 1), i64::MAX);
        assert_eq!(to_90khz(-1, 1, 90_000), -1);
    }
}
