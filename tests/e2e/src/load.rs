//! The load generator process, steered over its stdin (`rate N`, `stop`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::process::{Process, binary};

/// The generator's final line: `acked` records are on the broker.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Totals {
    pub produced: u64,
    pub acked: u64,
    pub failed: u64,
}

pub struct LoadGenerator {
    stdin: ChildStdin,
    done: Receiver<Totals>,
    _process: Process,
}

impl LoadGenerator {
    /// Starts producing `rate` records per second to `topic`.
    pub fn start(dir: &Path, brokers: &str, topic: &str, rate: u32) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join("load-generator.log"))?;
        let mut command = Command::new(binary("load-generator")?);
        command
            .args(["--brokers", brokers, "--topic", topic])
            .args(["--rate", &rate.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut process = Process::spawn_with("load-generator", command)?;
        let child = process.child_mut();
        let stdin = child.stdin.take().context("no stdin pipe")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (done_tx, done) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"done\"")
                    && let Ok(totals) = serde_json::from_str::<Totals>(&line)
                {
                    let _ = done_tx.send(totals);
                }
            }
        });
        Ok(Self {
            stdin,
            done,
            _process: process,
        })
    }

    pub fn set_rate(&mut self, rate: u32) -> anyhow::Result<()> {
        writeln!(self.stdin, "rate {rate}").context("steering the load generator")
    }

    /// Stops producing and returns what the broker acknowledged.
    pub fn stop(mut self) -> anyhow::Result<Totals> {
        writeln!(self.stdin, "stop").context("stopping the load generator")?;
        self.done
            .recv_timeout(Duration::from_secs(90))
            .context("the load generator did not report its totals")
    }
}
