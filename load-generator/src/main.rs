//! `load-generator --brokers HOST:PORT --topic TOPIC [--rate N | --schedule 2m=200,1m=2000 [--repeat]]`
//!
//! Prints one JSON progress line a second and a final `{"done": true, ...}` line on stdout. Reads
//! `rate N` and `stop` commands on stdin, one per line.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use load_generator::{Command, Plan, Target, run, schedule};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "load-generator",
    about = "Produces JSON log records to Kafka at a controlled rate"
)]
struct Args {
    /// Bootstrap servers.
    #[arg(long, env = "LOAD_BROKERS")]
    brokers: String,
    #[arg(long, env = "LOAD_TOPIC")]
    topic: String,
    /// Records per second, constant (used when no schedule is given).
    #[arg(long, env = "LOAD_RATE", default_value = "100", value_parser = schedule::parse_rate)]
    rate: f64,
    /// Phases of `DURATION=RATE`, run in order, such as `2m=200,1m=2000`.
    #[arg(long, env = "LOAD_SCHEDULE")]
    schedule: Option<String>,
    /// Run the schedule again and again instead of stopping after it.
    #[arg(long, env = "LOAD_REPEAT")]
    repeat: bool,
    /// The `service` field of every record (the engine can route by it).
    #[arg(long, env = "LOAD_SERVICE", default_value = "checkout")]
    service: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = match args.schedule.as_deref().map(schedule::parse).transpose() {
        Err(error) => Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("--schedule: {error}"),
            )
            .exit(),
        Ok(Some(phases)) => Plan {
            phases,
            repeat: args.repeat,
        },
        // A constant rate is a schedule of one endless phase.
        Ok(None) => Plan {
            phases: vec![schedule::Phase {
                duration: Duration::from_secs(3600),
                rate: args.rate,
            }],
            repeat: true,
        },
    };
    let target = Target {
        brokers: args.brokers,
        topic: args.topic,
        service: args.service,
    };
    let (commands, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            match line.parse::<Command>() {
                Ok(command) => {
                    if commands.send(command).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let _ = writeln!(std::io::stderr().lock(), "load-generator: {error}");
                }
            }
        }
    });
    let emit = |line: serde_json::Value| {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    };
    let totals = run(&target, &plan, &received, |rate, totals| {
        emit(
            json!({"rate": rate, "produced": totals.produced, "acked": totals.acked, "failed": totals.failed}),
        );
    })?;
    emit(
        json!({"done": true, "produced": totals.produced, "acked": totals.acked, "failed": totals.failed}),
    );
    Ok(())
}
