//! The probe job (`tests/flink-probe/`), a small Flink streaming job of ours, from the test's side:
//! building its jar, its program arguments, the rate schedule the test writes, and the ground
//! truth it gives: how many records the source has produced at any instant (the same integer
//! maths as the job's source) and which of them the sink wrote.

mod coverage;
mod schedule;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};

use crate::flink_cluster::Program;

pub use coverage::{Coverage, Produced, SplitCoverage, read_sink};
pub use schedule::{Schedule, ScheduleError, Segment, epoch_ms, from_epoch_ms, owned};

/// The job's main class.
pub const ENTRY_CLASS: &str = "autoscaler.probe.ProbeJob";

/// How far ahead of now `set_rate` schedules a change. The job re-reads the rate file at least
/// every 200 ms while it reads, so with this lead it always knows of a change before the change
/// takes effect, and never reads records that the final schedule does not produce.
pub const RATE_LEAD: Duration = Duration::from_millis(500);

/// The probe job's jar, built by `tests/flink-probe/build.sh` into
/// `<workspace>/target/flink-probe/probe-job.jar` the first time a process asks (the script skips
/// the build when the jar is newer than its sources, and renames the jar into place, so concurrent
/// test processes are safe).
pub fn jar() -> anyhow::Result<PathBuf> {
    static JAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    JAR.get_or_init(|| build_jar().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build_jar() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/flink-probe/build.sh");
    let out = root.join("target/flink-probe/probe-job.jar");
    let run = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !run.status.success() {
        bail!(
            "{} failed ({}): {}",
            script.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
    Ok(out)
}

/// One probe job: its program arguments and the files it shares with the test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeJob {
    /// The Flink job name.
    pub name: String,
    /// Partitions of the simulated topic; the source's useful parallelism is at most this.
    pub splits: u32,
    pub rate_file: PathBuf,
    pub sink_dir: PathBuf,
    /// `None`: Flink calls the sink `Sink: Writer`; `Some(x)`: `x: Writer`.
    pub sink_name: Option<String>,
    /// The source operator is `Source: <source_name>`.
    pub source_name: String,
    /// CPU burnt per record by `burn` (busy spin).
    pub cpu_us: u64,
    /// Time parked per record by `burn`: caps a subtask's throughput without using CPU.
    pub sleep_us: u64,
    pub checkpoint_ms: u64,
}

impl ProbeJob {
    /// A job named `name` with the job's defaults, its rate file `dir/rate` (created empty: no
    /// records yet) and its sink directory `dir/sink`.
    pub fn new(name: impl Into<String>, dir: &Path) -> anyhow::Result<ProbeJob> {
        let sink_dir = dir.join("sink");
        std::fs::create_dir_all(&sink_dir)
            .with_context(|| format!("creating {}", sink_dir.display()))?;
        let rate_file = dir.join("rate");
        if !rate_file.exists() {
            std::fs::write(&rate_file, "")
                .with_context(|| format!("creating {}", rate_file.display()))?;
        }
        Ok(ProbeJob {
            name: name.into(),
            splits: 8,
            rate_file,
            sink_dir,
            sink_name: None,
            source_name: "orders".into(),
            cpu_us: 0,
            sleep_us: 0,
            checkpoint_ms: 2000,
        })
    }

    /// The program arguments (`programArgsList` of `POST /jars/{id}/run`).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--name".into(),
            self.name.clone(),
            "--splits".into(),
            self.splits.to_string(),
            "--rate-file".into(),
            self.rate_file.display().to_string(),
            "--source-name".into(),
            self.source_name.clone(),
            "--sink-dir".into(),
            self.sink_dir.display().to_string(),
            "--cpu-us".into(),
            self.cpu_us.to_string(),
            "--sleep-us".into(),
            self.sleep_us.to_string(),
            "--checkpoint-ms".into(),
            self.checkpoint_ms.to_string(),
        ];
        if let Some(sink) = &self.sink_name {
            args.extend(["--sink-name".into(), sink.clone()]);
        }
        args
    }

    /// What to run: the main class and [`ProbeJob::args`].
    pub fn program(&self) -> Program {
        Program {
            entry_class: ENTRY_CLASS.to_owned(),
            args: self.args(),
        }
    }

    /// From [`RATE_LEAD`] after now on, the whole topic receives `per_second` records per second.
    /// Appends the line to the rate file atomically (write a copy, rename). Returns the instant
    /// the rate takes effect.
    pub fn set_rate(&self, per_second: u64) -> anyhow::Result<SystemTime> {
        // Two threads appending at once would each rename their own copy over the other's.
        static WRITING: Mutex<()> = Mutex::new(());
        let _guard = WRITING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = match std::fs::read_to_string(&self.rate_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).context(format!("reading {}", self.rate_file.display())),
        };
        let last = Schedule::parse(&text)
            .with_context(|| format!("the rate file {}", self.rate_file.display()))?
            .last_start();
        let start = (epoch_ms(SystemTime::now() + RATE_LEAD)).max(last.unwrap_or(0));
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{start} {per_second}\n"));
        let tmp = self
            .rate_file
            .with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.rate_file)
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        Ok(from_epoch_ms(start))
    }

    /// The schedule as the job reads it; a missing file is the empty schedule.
    pub fn schedule(&self) -> anyhow::Result<Schedule> {
        match std::fs::read_to_string(&self.rate_file) {
            Ok(text) => Schedule::parse(&text)
                .with_context(|| format!("the rate file {}", self.rate_file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Schedule::default()),
            Err(e) => Err(e).context(format!("reading {}", self.rate_file.display())),
        }
    }

    /// The records the source has produced before `at`, in all and per split.
    ///
    /// # Panics
    /// When the rate file cannot be read or parsed: only [`ProbeJob::set_rate`] writes it, so
    /// that is a bug in the test, not a condition to handle.
    pub fn produced(&self, at: SystemTime) -> Produced {
        let schedule = self
            .schedule()
            .unwrap_or_else(|e| panic!("the probe job's rate schedule: {e:#}"));
        let total = schedule.total(epoch_ms(at));
        Produced {
            total,
            per_split: (0..self.splits)
                .map(|i| owned(total, i, self.splits))
                .collect(),
        }
    }

    /// Reads every file the sink has written so far.
    pub fn sink_coverage(&self) -> anyhow::Result<Coverage> {
        read_sink(&self.sink_dir, self.splits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_every_option_and_the_sink_name_only_when_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut job = ProbeJob::new("probe-a", dir.path()).expect("new");
        let args = job.args();
        let value = |args: &[String], key: &str| {
            let at = args.iter().position(|a| a == key).expect(key);
            args[at + 1].clone()
        };
        assert_eq!(value(&args, "--name"), "probe-a");
        assert_eq!(value(&args, "--splits"), "8");
        assert_eq!(value(&args, "--source-name"), "orders");
        assert_eq!(
            PathBuf::from(value(&args, "--rate-file")),
            dir.path().join("rate")
        );
        assert_eq!(
            PathBuf::from(value(&args, "--sink-dir")),
            dir.path().join("sink")
        );
        assert!(!args.contains(&"--sink-name".to_string()));
        job.sink_name = Some("es-out".into());
        assert_eq!(value(&job.args(), "--sink-name"), "es-out");
        assert!(dir.path().join("sink").is_dir());
    }

    #[test]
    fn set_rate_appends_a_line_that_takes_effect_after_the_lead() {
        let dir = tempfile::tempdir().expect("temp dir");
        let job = ProbeJob::new("probe", dir.path()).expect("new");
        assert_eq!(
            job.produced(SystemTime::now() + Duration::from_secs(60))
                .total,
            0
        );
        let before = SystemTime::now();
        let from = job.set_rate(1000).expect("set");
        assert!(from >= before + RATE_LEAD - Duration::from_millis(1));
        let stop = job.set_rate(0).expect("set");
        assert!(stop >= from, "times never go backwards");
        let schedule = job.schedule().expect("parses");
        assert_eq!(schedule.segments.len(), 2);
        let p = job.produced(stop + Duration::from_secs(3600));
        let expected = schedule.total(epoch_ms(stop));
        assert_eq!(p.total, expected, "nothing after the rate fell to 0");
        assert_eq!(p.per_split.iter().sum::<u64>(), p.total);
        assert!(std::fs::read_dir(dir.path()).expect("ls").all(|e| {
            !e.expect("entry")
                .file_name()
                .to_string_lossy()
                .contains("tmp")
        }));
    }
}
