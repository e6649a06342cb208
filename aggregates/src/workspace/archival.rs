//! The purge schedule: dates only. Deciding to purge and purging belong to the services that
//! hold conversation data; they read this schedule and acknowledge what they did.

use chrono::{DateTime, Duration, NaiveTime, Utc};

/// What a purge covers.
pub const CATEGORIES: [&str; 5] = [
    "messages",
    "conversation_variables",
    "user_contents",
    "user_variables",
    "attachments_and_media",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Purges run at midnight UTC; this is the next one due.
    pub next_purge_at: DateTime<Utc>,
    /// That run removes everything older than this.
    pub cutoff: DateTime<Utc>,
    /// Due more than a day ago and not acknowledged since.
    pub overdue: bool,
}

/// The next purge for a retention of `days`, counted from the last acknowledged purge (or, before
/// the first, from when the retention was set). A new retention applies at the next run; the run
/// itself stays where it was.
pub fn schedule(
    days: u32,
    since: DateTime<Utc>,
    last_purge_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Schedule {
    let anchor = last_purge_at.unwrap_or(since);
    let next_purge_at = next_midnight(anchor);
    Schedule {
        next_purge_at,
        cutoff: next_purge_at - Duration::days(i64::from(days)),
        overdue: now > next_purge_at + Duration::days(1),
    }
}

fn next_midnight(after: DateTime<Utc>) -> DateTime<Utc> {
    let day = after.date_naive() + Duration::days(1);
    day.and_time(NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn the_first_purge_is_the_midnight_after_the_retention_was_set() {
        let s = schedule(30, t(10, 15), None, t(10, 16));
        assert_eq!(s.next_purge_at, t(11, 0));
        assert_eq!(s.cutoff, t(11, 0) - Duration::days(30));
        assert!(!s.overdue);
    }

    #[test]
    fn an_acknowledged_purge_moves_the_next_one_a_day_on() {
        let s = schedule(30, t(1, 9), Some(t(11, 0) + Duration::minutes(5)), t(11, 1));
        assert_eq!(s.next_purge_at, t(12, 0));
    }

    #[test]
    fn a_shorter_retention_mid_cycle_applies_at_the_next_run() {
        let before = schedule(30, t(1, 9), Some(t(11, 0)), t(11, 12));
        let after = schedule(7, t(11, 12), Some(t(11, 0)), t(11, 13));
        assert_eq!(before.next_purge_at, after.next_purge_at);
        assert_eq!(after.cutoff, t(12, 0) - Duration::days(7));
    }

    #[test]
    fn a_purge_not_acknowledged_a_day_after_it_was_due_is_overdue() {
        assert!(!schedule(30, t(10, 15), None, t(12, 0)).overdue);
        assert!(schedule(30, t(10, 15), None, t(12, 1)).overdue);
    }
}
