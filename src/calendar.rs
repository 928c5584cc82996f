//! Calendar arithmetic for printed times: capture nanoseconds in, RFC 3339
//! text out (every `ts` in `pairs` and `--out` lines).

use crate::exchange::Nanos;

/// RFC 3339 with microseconds, UTC, the form of every `ts` we print.
pub fn format_ts(ts: Nanos) -> String {
    let secs = ts.div_euclid(1_000_000_000);
    let micros = ts.rem_euclid(1_000_000_000) / 1_000;
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 27];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    // i64 nanoseconds span the years 1677 to 2262: always four digits.
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, second_of_day / 3600, 2);
    put(14, second_of_day / 60 % 60, 2);
    put(17, second_of_day % 60, 2);
    put(20, micros, 6);
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
        text[at] = sep;
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's civil_from_days). Called for every outcome line,
/// where chrono's general formatter showed in profiles.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_with_microseconds_in_utc() {
        assert_eq!(format_ts(1_705_314_600_123_456_789), "2024-01-15T10:30:00.123456Z");
        for ts in [0, 1, -1, 999, 1_000_000_000, -86_400_000_000_123, 1_705_314_600_000_000_000, i64::MAX, i64::MIN] {
            let by_strftime = chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(format_ts(ts), by_strftime, "{ts}");
        }
        // Every day of four centuries (leap years, century rules), at a
        // moving time of day.
        let mut ts = -4_102_444_800_000_000_000i64; // 1840-01-01
        while ts < 8_520_000_000_000_000_000 {
            let by_strftime = chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(format_ts(ts), by_strftime, "{ts}");
            ts += 86_400_000_000_000 + 1_234_567_891;
        }
    }
}
