//! Per-partition offset tracking: the commit point never passes the lowest record not yet done.
//!
//! A record is *done* once Elasticsearch acknowledged it or it was written to the dead-letter
//! destination. Sink tasks finish batches out of order, so the committable offset is the lowest pending
//! offset (or one past the highest seen when nothing is pending), never the highest acknowledged one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// Offsets at or above the commit point already written to the dead-letter destination (by
    /// this generation, or listed in the commit's metadata by an earlier owner): a replay marks
    /// them done instead of writing a second copy.
    dead_lettered: BTreeSet<i64>,
    /// Bumped when `dead_lettered` grows, so that the next commit carries it even if the commit
    /// point did not move.
    dead_lettered_version: u64,
    committed_version: u64,
}

/// An offset to commit with the commit's metadata (the dead-lettered offsets at or above it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPoint {
    pub tp: TopicPartition,
    pub offset: i64,
    pub metadata: String,
    version: u64,
}

/// Prefix of the commit metadata this engine writes; other metadata is ignored.
const METADATA_PREFIX: &str = "dead_lettered:";

/// Kafka brokers keep up to `offset.metadata.max.bytes` (4096 by default) of metadata per commit:
/// at most this many offsets are listed, the lowest first (a replay reaches them first).
const MAX_LISTED: usize = 256;

/// The dead-lettered offsets listed in commit metadata written by [`CommitPoint`].
pub fn parse_metadata(metadata: &str) -> BTreeSet<i64> {
    metadata
        .strip_prefix(METADATA_PREFIX)
        .map(|list| list.split(',').filter_map(|o| o.parse().ok()).collect())
        .unwrap_or_default()
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

    fn commit_point(&self, tp: &TopicPartition) -> Option<CommitPoint> {
        let offset = self.committable()?;
        let listed: Vec<String> = self
            .dead_lettered
            .range(offset..)
            .take(MAX_LISTED)
            .map(i64::to_string)
            .collect();
        let metadata = if listed.is_empty() {
            String::new()
        } else {
            format!("{METADATA_PREFIX}{}", listed.join(","))
        };
        Some(CommitPoint {
            tp: tp.clone(),
            offset,
            metadata,
            version: self.dead_lettered_version,
        })
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
        self.assign_with(tp, BTreeSet::new())
    }

    /// Starts tracking a partition whose committed metadata lists offsets already dead-lettered.
    pub fn assign_with(&mut self, tp: TopicPartition, dead_lettered: BTreeSet<i64>) -> u64 {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.partitions.insert(
            tp,
            PartitionState {
                generation,
                dead_lettered,
                ..Default::default()
            },
        );
        generation
    }

    /// Notes that a record was written to the dead-letter destination (before it is marked done).
    pub fn dead_lettered(&mut self, tp: &TopicPartition, generation: u64, offset: i64) {
        if let Some(p) = self.current(tp, generation)
            && p.dead_lettered.insert(offset)
        {
            p.dead_lettered_version += 1;
        }
    }

    /// Whether a record was already written to the dead-letter destination.
    pub fn was_dead_lettered(&self, tp: &TopicPartition, generation: u64, offset: i64) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|p| p.generation == generation && p.dead_lettered.contains(&offset))
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

    /// Offsets to commit: per partition, the lowest not-done offset, where it moved past the last
    /// commit or records were dead-lettered since.
    pub fn to_commit(&self) -> Vec<CommitPoint> {
        self.partitions
            .iter()
            .filter(|(_, p)| {
                p.committable()
                    .is_some_and(|c| p.committed.is_none_or(|done| c > done))
                    || p.dead_lettered_version > p.committed_version
            })
            .filter_map(|(tp, p)| p.commit_point(tp))
            .collect()
    }

    /// The commit point of a partition regardless of whether it moved.
    pub fn commit_point(&self, tp: &TopicPartition) -> Option<CommitPoint> {
        self.partitions.get(tp).and_then(|p| p.commit_point(tp))
    }

    /// Offset to commit for a partition regardless of whether it moved.
    pub fn committable(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions
            .get(tp)
            .and_then(PartitionState::committable)
    }

    pub fn mark_committed(&mut self, point: &CommitPoint) {
        if let Some(p) = self.partitions.get_mut(&point.tp) {
            let offset = point.offset;
            p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
            p.committed_version = p.committed_version.max(point.version);
            // Below the commit point nothing is read again by this generation's successors.
            let committed = p.committed.unwrap_or(offset);
            p.dead_lettered = p.dead_lettered.split_off(&committed);
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
        let offsets = |t: &OffsetTracker| -> Vec<(TopicPartition, i64)> {
            t.to_commit()
                .into_iter()
                .map(|c| (c.tp, c.offset))
                .collect()
        };
        assert_eq!(offsets(&t), vec![(tp(), 0)]);
        let c = t.to_commit().remove(0);
        t.mark_committed(&c);
        assert!(t.to_commit().is_empty());
        t.done(&tp(), g, 0);
        assert_eq!(offsets(&t), vec![(tp(), 1)]);
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
    fn dead_lettered_offsets_above_the_commit_point_travel_in_the_commit_metadata() {
        let (mut t, g) = tracker_with(0..10);
        t.done(&tp(), g, 0);
        // 3 and 7 dead-lettered while 1 is still in flight: the commit point stays at 1.
        for o in [7, 3] {
            t.dead_lettered(&tp(), g, o);
            t.done(&tp(), g, o);
        }
        let c = t.to_commit().remove(0);
        assert_eq!((c.offset, c.metadata.as_str()), (1, "dead_lettered:3,7"));
        t.mark_committed(&c);
        assert!(t.to_commit().is_empty(), "nothing new");
        t.dead_lettered(&tp(), g, 8);
        let c = t.to_commit().remove(0);
        assert_eq!(
            (c.offset, c.metadata.as_str()),
            (1, "dead_lettered:3,7,8"),
            "a new dead letter is committed although the commit point did not move"
        );
        t.mark_committed(&c);
        for o in 1..5 {
            t.done(&tp(), g, o);
        }
        let c = t.to_commit().remove(0);
        assert_eq!((c.offset, c.metadata.as_str()), (5, "dead_lettered:7,8"));
        t.mark_committed(&c);

        // The next owner reads the metadata back and does not write those again.
        let listed = parse_metadata(&c.metadata);
        let mut next = OffsetTracker::new();
        let g2 = next.assign_with(tp(), listed);
        assert!(next.was_dead_lettered(&tp(), g2, 7));
        assert!(!next.was_dead_lettered(&tp(), g2, 6));
        assert!(
            !next.was_dead_lettered(&tp(), g2 + 1, 7),
            "other generation"
        );
        assert!(parse_metadata("someone else's").is_empty());
        assert!(parse_metadata("").is_empty());
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
