//! The rate schedule's maths, the same integer arithmetic as the job's `Schedule.java`, so that a
//! test knows exactly which records the source has produced at any instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A rate file that does not parse. The job reads such a file as "nothing produced yet".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("line {line}: expected `<epoch ms> <records per second>`, got `{text}`")]
    Malformed { line: usize, text: String },
    #[error("line {line}: time goes backwards: `{text}`")]
    Backwards { line: usize, text: String },
}

/// From `start` (epoch ms) on, the whole topic receives `rate` records per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub segments: Vec<Segment>,
}

impl Schedule {
    /// Lines `<epoch ms> <records per second>`, times non-decreasing; blank lines are ignored.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let mut segments: Vec<Segment> = Vec::new();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let malformed = || ScheduleError::Malformed {
                line: n + 1,
                text: line.to_owned(),
            };
            let mut parts = line.split_whitespace();
            let (Some(start), Some(rate), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(malformed());
            };
            let start: i64 = start.parse().map_err(|_| malformed())?;
            let rate: u64 = rate.parse().map_err(|_| malformed())?;
            if start < 0 {
                return Err(malformed());
            }
            if segments.last().is_some_and(|last| start < last.start) {
                return Err(ScheduleError::Backwards {
                    line: n + 1,
                    text: line.to_owned(),
                });
            }
            segments.push(Segment { start, rate });
        }
        Ok(Schedule { segments })
    }

    /// Records produced into the whole topic before instant `t` (epoch ms):
    /// Σ rate × (min(t, next start) − start) over segments starting before `t`, in records·ms, / 1000.
    pub fn total(&self, t: i64) -> u64 {
        let mut milli: i128 = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            if seg.start >= t {
                break;
            }
            let end = self.segments.get(i + 1).map_or(t, |next| next.start.min(t));
            milli += i128::from(seg.rate) * i128::from(end - seg.start);
        }
        u64::try_from(milli / 1000).unwrap_or(u64::MAX)
    }

    /// The first instant (epoch ms) at which `offset` of `split` (of `splits`) exists, `None` if the
    /// schedule never gets there. The job stamps each record with this as its event time.
    pub fn available_at(&self, offset: u64, split: u32, splits: u32) -> Option<i64> {
        // Offset o of split i is the topic's record number o × splits + i (0-based).
        let need = (i128::from(offset) * i128::from(splits) + i128::from(split) + 1) * 1000;
        let mut milli: i128 = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            let next = self.segments.get(i + 1);
            let rate = i128::from(seg.rate);
            if rate > 0 {
                // Smallest t in this segment with milli + rate × (t − start) ≥ need.
                let t = i128::from(seg.start) + (need - milli + rate - 1) / rate;
                if next.is_none_or(|n| t <= i128::from(n.start)) {
                    return i64::try_from(t).ok();
                }
            }
            if let Some(n) = next {
                milli += rate * i128::from(n.start - seg.start);
            }
        }
        None
    }

    /// The start of the last segment, if any.
    pub fn last_start(&self) -> Option<i64> {
        self.segments.last().map(|s| s.start)
    }
}

/// Records split `split` of `splits` owns when the topic holds `total`: an even share, the first
/// `total % splits` splits one more.
pub fn owned(total: u64, split: u32, splits: u32) -> u64 {
    let splits = u64::from(splits);
    total / splits + u64::from(u64::from(split) < total % splits)
}

/// `at` as epoch milliseconds, floored (the job uses `System.currentTimeMillis()`).
pub fn epoch_ms(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Epoch milliseconds as a `SystemTime`.
pub fn from_epoch_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rows: &[(i64, u64)]) -> Schedule {
        Schedule {
            segments: rows
                .iter()
                .map(|&(start, rate)| Segment { start, rate })
                .collect(),
        }
    }

    #[test]
    fn total_sums_each_segment_up_to_the_instant() {
        let s = schedule(&[(1_000, 200), (6_000, 0), (8_000, 1_000)]);
        assert_eq!(s.total(1_000), 0, "nothing before the first segment starts");
        assert_eq!(s.total(1_005), 1, "200/s for 5 ms is 1 record");
        assert_eq!(s.total(1_004), 0, "200/s for 4 ms is 0.8 record, floored");
        assert_eq!(s.total(6_000), 1_000);
        assert_eq!(s.total(7_999), 1_000, "rate 0 adds nothing");
        assert_eq!(s.total(8_500), 1_500);
        assert_eq!(Schedule::default().total(i64::MAX), 0);
    }

    #[test]
    fn fractions_carry_across_segments() {
        // 3/s for 500 ms is 1.5 records, then 1/s for 500 ms adds 0.5: 2 in all, not 1 + 0.
        let s = schedule(&[(0, 3), (500, 1)]);
        assert_eq!(s.total(500), 1);
        assert_eq!(s.total(1_000), 2);
    }

    #[test]
    fn owned_shares_the_total_evenly_first_splits_first() {
        let shares: Vec<u64> = (0..4).map(|i| owned(10, i, 4)).collect();
        assert_eq!(shares, vec![3, 3, 2, 2]);
        for total in 0..50 {
            let sum: u64 = (0..8).map(|i| owned(total, i, 8)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn available_at_inverts_total_to_the_millisecond() {
        let s = schedule(&[(10_000, 7), (12_345, 0), (15_000, 1_234), (16_000, 3)]);
        let splits = 3;
        let end = s.total(20_000);
        for record in 0..end {
            let (offset, split) = (record / 3, u32::try_from(record % 3).expect("small"));
            let t = s
                .available_at(offset, split, splits)
                .expect("within the schedule");
            assert!(
                owned(s.total(t), split, splits) > offset,
                "record {record} exists at {t}"
            );
            assert!(
                owned(s.total(t - 1), split, splits) <= offset,
                "record {record} does not exist at {}",
                t - 1
            );
        }
    }

    #[test]
    fn available_at_is_none_when_the_rate_stops_short() {
        let s = schedule(&[(0, 1_000), (1_000, 0)]);
        assert_eq!(s.available_at(999, 0, 1), Some(1_000));
        assert_eq!(s.available_at(1_000, 0, 1), None);
        assert_eq!(Schedule::default().available_at(0, 0, 1), None);
    }

    #[test]
    fn parse_reads_lines_and_refuses_what_the_job_would_not_read() {
        let s = Schedule::parse("100 5\n\n  200   0 \n200 7\n").expect("valid");
        assert_eq!(s, schedule(&[(100, 5), (200, 0), (200, 7)]));
        assert_eq!(s.last_start(), Some(200));
        assert_eq!(
            Schedule::parse("").expect("empty is valid"),
            Schedule::default()
        );
        assert_eq!(
            Schedule::parse("100 5\n50 1\n"),
            Err(ScheduleError::Backwards {
                line: 2,
                text: "50 1".into()
            })
        );
        for bad in ["100", "100 5 6", "x 5", "100 -5", "-1 5", "100 5.5"] {
            assert!(
                matches!(
                    Schedule::parse(bad),
                    Err(ScheduleError::Malformed { line: 1, .. })
                ),
                "{bad:?} is malformed"
            );
        }
    }
}
