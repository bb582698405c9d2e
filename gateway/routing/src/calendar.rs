//! Business hours in Beijing time (a fixed UTC+8: no daylight saving, no tz database).

use std::collections::BTreeSet;

use super::config::{HoursConfig, parse_date, parse_range};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
const OFFSET_MS: i64 = 8 * 3_600_000;
/// Instants are clamped to ±10^15 ms (±31,000 years) so no arithmetic can overflow.
const LIMIT_MS: i64 = 1_000_000_000_000_000;
/// How far ahead an opening is searched for (holidays can close long stretches).
const SEARCH_DAYS: i64 = 800;

/// A compiled weekly calendar.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calendar {
    always: bool,
    /// Minutes-of-day ranges `[start, end)` per weekday, Monday first, sorted.
    week: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<i64>,
    extra_workdays: BTreeSet<i64>,
    extra_hours: Vec<(u16, u16)>,
}

/// Days since the epoch and milliseconds into that day, Beijing time.
fn local(now: i64) -> (i64, i64) {
    let l = now.clamp(-LIMIT_MS, LIMIT_MS) + OFFSET_MS;
    (l.div_euclid(DAY_MS), l.rem_euclid(DAY_MS))
}

/// The UTC instant of `minute` on Beijing day `day`.
fn instant(day: i64, minute: u16) -> i64 {
    day * DAY_MS + i64::from(minute) * MINUTE_MS - OFFSET_MS
}

fn compile_ranges(list: Option<&Vec<String>>) -> Vec<(u16, u16)> {
    let mut v: Vec<(u16, u16)> = list.into_iter().flatten().filter_map(|s| parse_range(s).ok()).collect();
    v.sort_unstable();
    v
}

impl Calendar {
    /// Open at all times.
    pub(crate) fn always() -> Self {
        Calendar { always: true, ..Calendar::default() }
    }

    /// Compiles validated hours; entries that do not parse are skipped (validation reports them).
    pub(crate) fn compile(h: Option<&HoursConfig>) -> Self {
        let Some(h) = h else { return Calendar::always() };
        let week = std::array::from_fn(|i| compile_ranges(h.day(i)));
        Calendar {
            always: false,
            week,
            holidays: h.holidays.iter().filter_map(|d| parse_date(d)).collect(),
            extra_workdays: h.extra_workdays.iter().filter_map(|d| parse_date(d)).collect(),
            extra_hours: match &h.extra_workday_hours {
                Some(list) => compile_ranges(Some(list)),
                None => compile_ranges(h.mon.as_ref().or(h.daily.as_ref())),
            },
        }
    }

    fn ranges(&self, day: i64) -> &[(u16, u16)] {
        if self.holidays.contains(&day) {
            &[]
        } else if self.extra_workdays.contains(&day) {
            &self.extra_hours
        } else {
            // 1970-01-01 was a Thursday (index 3 with Monday = 0).
            let weekday = (day + 3).rem_euclid(7) as usize;
            self.week.get(weekday).map(Vec::as_slice).unwrap_or(&[])
        }
    }

    /// Whether the calendar is open at `now`, and the next instant at which that may change
    /// (`i64::MAX`: never).
    pub(crate) fn state(&self, now: i64) -> (bool, i64) {
        if self.always {
            return (true, i64::MAX);
        }
        let (day, ms) = local(now);
        for &(start, end) in self.ranges(day) {
            let (s, e) = (i64::from(start) * MINUTE_MS, i64::from(end) * MINUTE_MS);
            if ms >= s && ms < e {
                return (true, instant(day, end));
            }
        }
        (false, self.next_open(now).unwrap_or(i64::MAX))
    }

    /// Whether the calendar is open at `now`.
    pub(crate) fn is_open(&self, now: i64) -> bool {
        self.state(now).0
    }

    /// The next instant at or after `now` when the calendar is open.
    pub(crate) fn next_open(&self, now: i64) -> Option<i64> {
        if self.always {
            return Some(now);
        }
        let (day, ms) = local(now);
        for d in day..day + SEARCH_DAYS {
            for &(start, end) in self.ranges(d) {
                if d > day || i64::from(end) * MINUTE_MS > ms {
                    let at = instant(d, start);
                    return Some(at.max(now));
                }
            }
        }
        None
    }
}

/// An opening time for a buyer: `09:00` today, `明天 09:00`, else `10月8日 09:00`.
pub(crate) fn describe_open_time(now: i64, at: i64) -> String {
    let (day, _) = local(now);
    let (at_day, _) = local(at);
    let (_, mo, d, h, mi, _, _) = huiliu_sdk::time::beijing_parts(at);
    match at_day - day {
        0 => format!("{h:02}:{mi:02}"),
        1 => format!("明天 {h:02}:{mi:02}"),
        _ => format!("{mo}月{d}日 {h:02}:{mi:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huiliu_sdk::time::parse_beijing_datetime as bj;

    fn hours() -> HoursConfig {
        HoursConfig {
            daily: Some(vec!["09:00-12:00".into(), "13:00-18:00".into()]),
            sun: Some(vec![]),
            sat: Some(vec!["22:00-24:00".into()]),
            holidays: vec!["2025-10-01".into()],
            extra_workdays: vec!["2025-09-28".into()],
            ..HoursConfig::default()
        }
    }

    fn t(s: &str) -> i64 {
        bj(s).unwrap()
    }

    #[test]
    fn weekly_hours_holidays_and_extra_workdays() {
        let c = Calendar::compile(Some(&hours()));
        // 2025-06-18 is a Wednesday.
        assert!(c.is_open(t("2025-06-18 09:00:00")));
        assert!(!c.is_open(t("2025-06-18 08:59:59")));
        assert!(!c.is_open(t("2025-06-18 12:30:00")));
        assert_eq!(c.state(t("2025-06-18 10:00:00")), (true, t("2025-06-18 12:00:00")));
        assert_eq!(c.state(t("2025-06-18 12:00:00")), (false, t("2025-06-18 13:00:00")));
        assert_eq!(c.state(t("2025-06-18 18:00:00")), (false, t("2025-06-19 09:00:00")));
        // Saturday night only, Sunday closed, Monday morning.
        assert_eq!(c.next_open(t("2025-06-21 10:00:00")), Some(t("2025-06-21 22:00:00")));
        assert_eq!(c.next_open(t("2025-06-22 00:00:00")), Some(t("2025-06-23 09:00:00")));
        // 2025-10-01 (Wednesday) is a holiday; 2025-09-28 (Sunday) is a working day.
        assert!(!c.is_open(t("2025-10-01 10:00:00")));
        assert_eq!(c.next_open(t("2025-10-01 10:00:00")), Some(t("2025-10-02 09:00:00")));
        assert!(c.is_open(t("2025-09-28 10:00:00")));
    }

    #[test]
    fn always_open_and_never_open() {
        assert_eq!(Calendar::always().state(5), (true, i64::MAX));
        let never = Calendar::compile(Some(&HoursConfig::default()));
        assert_eq!(never.state(5), (false, i64::MAX));
        assert_eq!(never.next_open(5), None);
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let c = Calendar::compile(Some(&hours()));
        for now in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let _ = c.state(now);
            let _ = c.next_open(now);
            let _ = describe_open_time(now, now);
        }
    }

    #[test]
    fn open_time_for_buyers() {
        let now = t("2025-06-18 20:00:00");
        assert_eq!(describe_open_time(now, t("2025-06-18 21:00:00")), "21:00");
        assert_eq!(describe_open_time(now, t("2025-06-19 09:00:00")), "明天 09:00");
        assert_eq!(describe_open_time(now, t("2025-06-23 09:30:00")), "6月23日 09:30");
    }
}
