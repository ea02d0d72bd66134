//! Per-partition offset tracking: the commit point never passes the lowest record not yet done.
//!
//! A record is *done* once Elasticsearch acknowledged it or it was written to the dead-letter
//! destination. Sink tasks finish batches out of order, so the committable offset is the lowest pending
//! offset (or one past the highest seen when nothing is pending), never the highest acknowledged one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

#[derive(Debug, Default)]
struct PartitionState {
    generation: u64,
    /// Offsets handed to the pipeline, ascending, with their done flag and Kafka timestamp.
    pending: VecDeque<Entry>,
    /// One past the highest offset seen under this generation.
    next: Option<i64>,
    /// Last offset committed (or known committed) to Kafka.
    committed: Option<i64>,
    /// Timestamp of the most recently consumed record (for lag in seconds when nothing is pending).
    last_timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: i64,
    done: bool,
    timestamp_ms: Option<i64>,
}

impl PartitionState {
    fn pop_done_prefix(&mut self) {
        while self.pending.front().is_some_and(|e| e.done) {
            self.pending.pop_front();
        }
    }

    fn committable(&self) -> Option<i64> {
        self.pending.front().map(|e| e.offset).or(self.next)
    }
}

/// Outcome of acknowledging a record, so callers can count stale acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Applied,
    /// The partition was revoked or re-assigned since the record was consumed.
    Stale,
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<TopicPartition, PartitionState>,
    next_generation: u64,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or restarts) tracking a partition; returns its new generation.
    pub fn assign(&mut self, tp: TopicPartition) -> u64 {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.partitions.insert(
            tp,
            PartitionState {
                generation,
                ..Default::default()
            },
        );
        generation
    }

    /// Stops tracking a partition; late acknowledgements for it become stale.
    pub fn revoke(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    /// The partition's state, if it is still assigned in `generation`.
    fn current(&mut self, tp: &TopicPartition, generation: u64) -> Option<&mut PartitionState> {
        self.partitions
            .get_mut(tp)
            .filter(|p| p.generation == generation)
    }

    pub fn generation(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions.get(tp).map(|p| p.generation)
    }

    pub fn assigned(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions.keys()
    }

    /// Records that `offset` entered the pipeline. Offsets of one partition arrive in ascending order;
    /// an offset at or below one already seen (a seek backwards) restarts the partition's window.
    pub fn track(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        offset: i64,
        timestamp_ms: Option<i64>,
    ) -> Ack {
        let Some(p) = self.current(tp, generation) else {
            return Ack::Stale;
        };
        if p.next.is_some_and(|n| offset < n) {
            p.pending.retain(|e| e.offset < offset);
        }
        p.pending.push_back(Entry {
            offset,
            done: false,
            timestamp_ms,
        });
        p.next = Some(offset + 1);
        p.last_timestamp_ms = timestamp_ms.or(p.last_timestamp_ms);
        Ack::Applied
    }

    /// Marks a record done (acknowledged by Elasticsearch or dead-lettered).
    pub fn done(&mut self, tp: &TopicPartition, generation: u64, offset: i64) -> Ack {
        let Some(p) = self.current(tp, generation) else {
            return Ack::Stale;
        };
        // Pending offsets are ascending, so a binary search finds the entry.
        match p.pending.binary_search_by_key(&offset, |e| e.offset) {
            Ok(i) => {
                p.pending[i].done = true;
                p.pop_done_prefix();
                Ack::Applied
            }
            Err(_) => Ack::Stale,
        }
    }

    /// Forgets records from `offset` upwards that never reached the stages (the consumer dropped them
    /// and will fetch them again), so they do not hold the commit point back.
    pub fn forget_from(&mut self, tp: &TopicPartition, generation: u64, offset: i64) {
        if let Some(p) = self.current(tp, generation) {
            p.pending.retain(|e| e.offset < offset);
            if p.next.is_some_and(|n| n > offset) {
                p.next = Some(offset);
            }
            p.pop_done_prefix();
        }
    }

    /// Offsets to commit: per partition, the lowest not-done offset, where it moved past the last commit.
    pub fn to_commit(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| {
                let c = p.committable()?;
                (p.committed.is_none_or(|done| c > done)).then(|| (tp.clone(), c))
            })
            .collect()
    }

    /// Offsets to commit for the given partitions regardless of whether they moved.
    pub fn committable(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions
            .get(tp)
            .and_then(PartitionState::committable)
    }

    pub fn mark_committed(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
        }
    }

    /// Number of records in the pipeline (not done) for a partition.
    pub fn pending(&self, tp: &TopicPartition) -> usize {
        self.partitions
            .get(tp)
            .map_or(0, |p| p.pending.iter().filter(|e| !e.done).count())
    }

    pub fn total_pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// Partitions with unfinished work and the offset to rewind each to.
    pub fn unfinished(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| p.pending.front().map(|e| (tp.clone(), e.offset)))
            .collect()
    }

    /// Event time of the oldest record not yet done, else of the last record consumed.
    pub fn oldest_timestamp_ms(&self, tp: &TopicPartition) -> Option<i64> {
        let p = self.partitions.get(tp)?;
        p.pending
            .front()
            .and_then(|e| e.timestamp_ms)
            .or(p.last_timestamp_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn tracker_with(offsets: std::ops::Range<i64>) -> (OffsetTracker, u64) {
        let mut t = OffsetTracker::new();
        let g = t.assign(tp());
        for o in offsets {
            assert_eq!(t.track(&tp(), g, o, Some(o * 10)), Ack::Applied);
        }
        (t, g)
    }

    #[test]
    fn commit_point_stays_below_lowest_unacknowledged() {
        let (mut t, g) = tracker_with(10..15);
        assert_eq!(t.committable(&tp()), Some(10));
        // Later offsets finish first: the commit point must not move.
        t.done(&tp(), g, 12);
        t.done(&tp(), g, 14);
        assert_eq!(t.committable(&tp()), Some(10));
        t.done(&tp(), g, 10);
        assert_eq!(t.committable(&tp()), Some(11));
        t.done(&tp(), g, 11);
        assert_eq!(t.committable(&tp()), Some(13));
        t.done(&tp(), g, 13);
        assert_eq!(
            t.committable(&tp()),
            Some(15),
            "all done: one past the last"
        );
        assert_eq!(t.pending(&tp()), 0);
    }

    #[test]
    fn to_commit_reports_only_moved_partitions() {
        let (mut t, g) = tracker_with(0..3);
        assert_eq!(t.to_commit(), vec![(tp(), 0)]);
        t.mark_committed(&tp(), 0);
        assert!(t.to_commit().is_empty());
        t.done(&tp(), g, 0);
        assert_eq!(t.to_commit(), vec![(tp(), 1)]);
    }

    #[test]
    fn acknowledgements_from_an_earlier_assignment_are_stale() {
        let (mut t, old) = tracker_with(0..3);
        t.revoke(&tp());
        assert_eq!(t.done(&tp(), old, 0), Ack::Stale);
        let new = t.assign(tp());
        assert_ne!(old, new);
        t.track(&tp(), new, 0, None);
        assert_eq!(t.done(&tp(), old, 0), Ack::Stale);
        assert_eq!(t.committable(&tp()), Some(0));
        assert_eq!(t.done(&tp(), new, 0), Ack::Applied);
        assert_eq!(t.committable(&tp()), Some(1));
    }

    #[test]
    fn unknown_offset_or_partition_is_stale() {
        let (mut t, g) = tracker_with(5..6);
        assert_eq!(t.done(&tp(), g, 4), Ack::Stale);
        assert_eq!(t.done(&TopicPartition::new("other", 0), g, 5), Ack::Stale);
        assert_eq!(
            t.track(&TopicPartition::new("other", 0), g, 5, None),
            Ack::Stale
        );
    }

    #[test]
    fn forgetting_undelivered_tail_lets_the_commit_point_reach_done_work() {
        let (mut t, g) = tracker_with(0..6);
        for o in 0..3 {
            t.done(&tp(), g, o);
        }
        // Records 3.. were held by the consumer and dropped on revoke: they will be fetched again.
        t.forget_from(&tp(), g, 3);
        assert_eq!(t.committable(&tp()), Some(3));
        assert_eq!(t.total_pending(), 0);
    }

    #[test]
    fn seek_backwards_restarts_the_window() {
        let (mut t, g) = tracker_with(0..5);
        t.done(&tp(), g, 0);
        t.track(&tp(), g, 2, None);
        assert_eq!(t.unfinished(), vec![(tp(), 1)]);
        assert_eq!(t.pending(&tp()), 2, "1 and the re-fetched 2");
    }

    #[test]
    fn unfinished_lists_rewind_points() {
        let (mut t, g) = tracker_with(3..6);
        t.done(&tp(), g, 3);
        assert_eq!(t.unfinished(), vec![(tp(), 4)]);
        t.done(&tp(), g, 4);
        t.done(&tp(), g, 5);
        assert!(t.unfinished().is_empty());
    }

    #[test]
    fn lag_time_uses_oldest_pending_then_last_seen() {
        let (mut t, g) = tracker_with(1..4);
        assert_eq!(t.oldest_timestamp_ms(&tp()), Some(10));
        for o in 1..4 {
            t.done(&tp(), g, o);
        }
        assert_eq!(t.oldest_timestamp_ms(&tp()), Some(30));
    }

    #[test]
    fn random_completion_order_never_commits_past_a_pending_record() {
        use rand::seq::SliceRandom;
        let mut rng = rand::rng();
        for _ in 0..50 {
            let (mut t, g) = tracker_with(0..200);
            let mut order: Vec<i64> = (0..200).collect();
            order.shuffle(&mut rng);
            let mut done = std::collections::BTreeSet::new();
            for o in order {
                t.done(&tp(), g, o);
                done.insert(o);
                let c = t.committable(&tp()).expect("tracked");
                assert!(
                    (0..c).all(|x| done.contains(&x)),
                    "commit {c} passes a pending record"
                );
                assert!(!done.contains(&c) || c == 200);
            }
            assert_eq!(t.committable(&tp()), Some(200));
        }
    }
}
