//! Beijing time (UTC+8), the clock every platform signs with, without a time-zone database.
//!
//! Connectors never read the clock; these only convert the `now` they are given.

use crate::model::Millis;

const BEIJING_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Beijing wall-clock parts of `ms`: (year, month, day, hour, minute, second, millis).
///
/// Instants beyond ±10^15 ms (about ±31,000 years) are clamped, so no input can overflow.
pub fn beijing_parts(ms: Millis) -> (i64, u32, u32, u32, u32, u32, u32) {
    const LIMIT: i64 = 1_000_000_000_000_000;
    let local = ms.clamp(-LIMIT, LIMIT) + BEIJING_OFFSET_MS;
    let days = local.div_euclid(86_400_000);
    let rem = local.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let secs = (rem / 1000) as u32;
    (y, mo, d, secs / 3600, secs / 60 % 60, secs % 60, (rem % 1000) as u32)
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn beijing_datetime(ms: Millis) -> String {
    let (y, mo, d, h, mi, s, _) = beijing_parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `yyyy-MM-dd HH:mm:ss.SSS+0800` in Beijing time (JD's long form).
pub fn beijing_datetime_millis(ms: Millis) -> String {
    let (y, mo, d, h, mi, s, milli) = beijing_parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}+0800")
}

/// Parses `yyyy-MM-dd HH:mm:ss` (Beijing time, optional `.SSS` and `+0800`) to epoch millis.
pub fn parse_beijing_datetime(s: &str) -> Option<Millis> {
    let s = s.trim();
    let s = s.strip_suffix("+0800").unwrap_or(s);
    let (date, time) = s.split_once(' ')?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    // Platforms send four-digit years; anything else is garbage (and could overflow below).
    if !(1..=9999).contains(&y) {
        return None;
    }
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut tp = hms.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: i64 = tp.next()?.parse().ok()?;
    if tp.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let milli: i64 = match frac {
        Some(f) if f.len() == 3 => f.parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    let days = days_from_civil(y, mo, d);
    Some(days * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000 + milli - BEIJING_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_instants() {
        // 2016-01-01 12:00:00 +08:00 == 1451620800000 ms.
        assert_eq!(beijing_datetime(1_451_620_800_000), "2016-01-01 12:00:00");
        assert_eq!(parse_beijing_datetime("2016-01-01 12:00:00"), Some(1_451_620_800_000));
        assert_eq!(beijing_datetime_millis(1_620_350_439_683), "2021-05-07 09:20:39.683+0800");
        assert_eq!(parse_beijing_datetime("2021-05-07 09:20:39.683+0800"), Some(1_620_350_439_683));
        assert_eq!(beijing_datetime(0), "1970-01-01 08:00:00");
        assert_eq!(beijing_datetime(951_782_400_000), "2000-02-29 08:00:00");
    }

    #[test]
    fn extreme_clocks_do_not_panic() {
        for ms in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
            let _ = beijing_datetime(ms);
            let _ = beijing_datetime_millis(ms);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in
            ["", "2016-01-01", "2016-13-01 00:00:00", "2016-01-01 24:00:00", "x-y-z a:b:c", "2016-01-01 12:00:00.5"]
        {
            assert_eq!(parse_beijing_datetime(s), None, "{s}");
        }
    }
}
