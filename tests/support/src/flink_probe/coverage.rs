//! What the probe job's sink wrote: per split, which offsets arrived, how often, and the gaps.

use std::ops::Range;
use std::path::Path;

use anyhow::{Context, bail};

/// Offsets above this are refused as implausible for a test (and would cost memory to track).
const MAX_OFFSET: u64 = 100_000_000;

/// The records produced up to an instant, as the job's source computes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub total: u64,
    /// Records owned by each split: its offsets `0..per_split[i]` exist.
    pub per_split: Vec<u64>,
}

/// One split's offsets as seen in the sink's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitCoverage {
    /// Offsets seen at least once.
    pub distinct: u64,
    /// Lines beyond the first for an offset (at-least-once replays after a restore).
    pub duplicates: u64,
    pub highest: Option<u64>,
    /// Offsets below `highest` never seen.
    pub missing: u64,
    /// Those missing offsets, as ranges in increasing order.
    pub gaps: Vec<Range<u64>>,
}

impl SplitCoverage {
    /// Offsets in `0..owned` never seen.
    pub fn missing_below(&self, owned: u64) -> u64 {
        let in_gaps: u64 = self
            .gaps
            .iter()
            .map(|g| g.end.min(owned).saturating_sub(g.start))
            .sum();
        let above = self.highest.map_or(0, |h| h + 1);
        in_gaps + owned.saturating_sub(above)
    }

    /// Offsets at or above `owned` that were seen.
    pub fn extra_from(&self, owned: u64) -> u64 {
        let Some(highest) = self.highest else {
            return 0;
        };
        if highest < owned {
            return 0;
        }
        let in_gaps: u64 = self
            .gaps
            .iter()
            .map(|g| g.end.saturating_sub(g.start.max(owned)))
            .sum();
        highest + 1 - owned - in_gaps
    }
}

/// Every sink file of the job, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub files: usize,
    /// Complete lines read (a file being written may end in a partial line, which is skipped).
    pub lines: u64,
    pub per_split: Vec<SplitCoverage>,
}

impl Coverage {
    pub fn distinct(&self) -> u64 {
        self.per_split.iter().map(|s| s.distinct).sum()
    }

    pub fn duplicates(&self) -> u64 {
        self.per_split.iter().map(|s| s.duplicates).sum()
    }

    pub fn missing(&self) -> u64 {
        self.per_split.iter().map(|s| s.missing).sum()
    }

    /// `Ok` when every offset of every split in `produced` is in the sink; otherwise what is not.
    pub fn covers(&self, produced: &Produced) -> Result<(), String> {
        let mut problems = Vec::new();
        for (i, &owned) in produced.per_split.iter().enumerate() {
            let empty = SplitCoverage::default();
            let split = self.per_split.get(i).unwrap_or(&empty);
            let missing = split.missing_below(owned);
            if missing > 0 {
                let mut first: Vec<String> = split
                    .gaps
                    .iter()
                    .filter(|g| g.start < owned)
                    .take(3)
                    .map(|g| format!("{}..{}", g.start, g.end.min(owned)))
                    .collect();
                let above = split.highest.map_or(0, |h| h + 1);
                if above < owned && first.len() < 3 {
                    first.push(format!("{above}..{owned}"));
                }
                problems.push(format!(
                    "split {i}: {missing} of {owned} offsets missing ({})",
                    first.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the sink ({} files, {} lines) lacks records: {}",
                self.files,
                self.lines,
                problems.join("; ")
            ))
        }
    }

    /// Records in the sink at or beyond what `produced` says exists. Once the rate is 0 and
    /// `produced` is final, anything here means the job and this module disagree on the maths.
    pub fn extra(&self, produced: &Produced) -> u64 {
        self.per_split
            .iter()
            .enumerate()
            .map(|(i, s)| s.extra_from(produced.per_split.get(i).copied().unwrap_or(0)))
            .sum()
    }
}

/// Reads every `*.txt` file in `dir` (lines `<split> <offset>`) for a job with `splits` splits.
pub fn read_sink(dir: &Path, splits: u32) -> anyhow::Result<Coverage> {
    let mut counts: Vec<Vec<u32>> = vec![Vec::new(); splits as usize];
    let mut coverage = Coverage::default();
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        coverage.files += 1;
        // The writer flushes whole buffers, so the last line may be cut short: skip it.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for (n, line) in complete
            .split('\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let (split, offset) = parse_line(line, splits)
                .with_context(|| format!("{} line {}: `{line}`", path.display(), n + 1))?;
            let seen = &mut counts[split as usize];
            let index = offset as usize;
            if seen.len() <= index {
                seen.resize(index + 1, 0);
            }
            seen[index] = seen[index].saturating_add(1);
            coverage.lines += 1;
        }
    }
    coverage.per_split = counts.iter().map(|c| summarize(c)).collect();
    Ok(coverage)
}

fn parse_line(line: &str, splits: u32) -> anyhow::Result<(u32, u64)> {
    let mut parts = line.split(' ');
    let (Some(split), Some(offset), None) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected `<split> <offset>`");
    };
    let split: u32 = split.parse().context("split is not a number")?;
    let offset: u64 = offset.parse().context("offset is not a number")?;
    if split >= splits {
        bail!("split {split} is not below the job's {splits} splits");
    }
    if offset > MAX_OFFSET {
        bail!("offset {offset} is implausibly high (above {MAX_OFFSET})");
    }
    Ok((split, offset))
}

fn summarize(counts: &[u32]) -> SplitCoverage {
    let mut s = SplitCoverage::default();
    for (offset, &n) in (0u64..).zip(counts) {
        if n == 0 {
            s.missing += 1;
            match s.gaps.last_mut() {
                Some(gap) if gap.end == offset => gap.end += 1,
                _ => s.gaps.push(offset..offset + 1),
            }
        } else {
            s.distinct += 1;
            s.duplicates += u64::from(n - 1);
            s.highest = Some(offset);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (i, text) in files.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}-0-x.txt")), text).expect("write");
        }
        std::fs::write(dir.path().join("ignored.tmp"), "garbage").expect("write");
        dir
    }

    #[test]
    fn counts_distinct_duplicates_and_gaps_per_split() {
        let dir = sink(&["0 0\n0 1\n1 0\n0 4\n", "0 1\n0 2\n1 2\n1 3"]);
        let c = read_sink(dir.path(), 2).expect("readable");
        assert_eq!((c.files, c.lines), (2, 7), "the cut-short `1 3` is skipped");
        assert_eq!(c.per_split[0].distinct, 4);
        assert_eq!(c.per_split[0].duplicates, 1);
        assert_eq!(c.per_split[0].highest, Some(4));
        assert_eq!(c.per_split[0].gaps, vec![3..4]);
        assert_eq!(c.per_split[1].gaps, vec![1..2]);
        assert_eq!((c.distinct(), c.duplicates(), c.missing()), (6, 1, 2));
    }

    #[test]
    fn covers_names_the_missing_offsets_below_what_was_produced() {
        let dir = sink(&["0 0\n0 1\n0 2\n1 0\n1 2\n"]);
        let c = read_sink(dir.path(), 2).expect("readable");
        let produced = |a, b| Produced {
            total: a + b,
            per_split: vec![a, b],
        };
        assert_eq!(c.covers(&produced(3, 1)), Ok(()));
        assert_eq!(c.extra(&produced(3, 1)), 1, "offset 2 of split 1 is beyond");
        let err = c.covers(&produced(5, 3)).expect_err("gaps");
        assert!(
            err.contains("split 0: 2 of 5 offsets missing (3..5)"),
            "{err}"
        );
        assert!(
            err.contains("split 1: 1 of 3 offsets missing (1..2)"),
            "{err}"
        );
        assert_eq!(c.extra(&produced(5, 3)), 0);
    }

    #[test]
    fn an_empty_sink_covers_only_nothing() {
        let dir = sink(&[]);
        let c = read_sink(dir.path(), 3).expect("readable");
        assert_eq!(
            c.covers(&Produced {
                total: 0,
                per_split: vec![0; 3]
            }),
            Ok(())
        );
        let err = c
            .covers(&Produced {
                total: 1,
                per_split: vec![1, 0, 0],
            })
            .expect_err("offset 0 of split 0");
        assert!(
            err.contains("split 0: 1 of 1 offsets missing (0..1)"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_file_and_line() {
        for (text, why) in [
            ("0 1\nx 2\n", "split is not a number"),
            ("0 1\n7 2\n", "not below the job's 2 splits"),
            ("0 1 2\n", "expected `<split> <offset>`"),
            ("0 999999999999\n", "implausibly high"),
        ] {
            let dir = sink(&[text]);
            let err = format!("{:#}", read_sink(dir.path(), 2).expect_err(text));
            assert!(err.contains("0-0-x.txt line"), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }
}
