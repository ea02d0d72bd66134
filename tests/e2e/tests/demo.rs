//! The demo as the README and docs/getting-started.md run it: the `demo` binary next to the others
//! (as `cargo run -p e2e --bin demo` runs it, not from deps/), which must find and start the whole
//! stack, print the status page and the CLI command it promises, and reach an applied scale-up. It is
//! stopped there; the scale-up and -down themselves are asserted in detail by `loop.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::process::{Process, binaries_dir};

/// Stops the demo with Ctrl-C when dropped, also when the test fails: killed outright, it would leave
/// its stack's processes running.
struct Demo(Process);

impl Demo {
    /// Ctrl-C, as a person stops it, and its exit within a minute.
    fn interrupt(&mut self) -> bool {
        let Ok(pid) = i32::try_from(self.0.pid()) else {
            return false;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        );
        let end = Instant::now() + Duration::from_secs(60);
        while self.0.is_running() {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.is_running() {
            self.interrupt();
        }
    }
}

/// The demo's first minute is a warm-up at low load; the scale-up follows within a few minutes.
const DEADLINE: Duration = Duration::from_secs(600);

/// Runs the demo binary with `args` until it prints an applied scale-up; its lines so far, and the
/// demo (to stop).
fn run_until_applied_scale_up(args: &[&str]) -> (Demo, Vec<String>) {
    let dir = binaries_dir().expect("the stack's binaries");
    test_support::binaries::build(dir, &[("e2e", "demo")]).expect("the demo builds");
    let mut command = Command::new(dir.join("demo"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut demo = Demo(Process::spawn_with("demo", command).expect("the demo starts"));
    let stdout = demo.0.child_mut().stdout.take().expect("stdout piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("demo: {line}");
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let end = Instant::now() + DEADLINE;
    let mut seen: Vec<String> = Vec::new();
    while !seen.iter().any(|l| applied_up(l)) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no applied scale-up within {DEADLINE:?}:\n{}",
            seen.join("\n")
        );
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the demo ended early:\n{}", seen.join("\n"))
            }
        }
    }
    for promised in [
        "status page: http://127.0.0.1:",
        "/ui/clusters/logs",
        "CLI: AUTOSCALER_SERVER=",
    ] {
        assert!(
            seen.iter().any(|l| l.contains(promised)),
            "{promised:?} not printed:\n{}",
            seen.join("\n")
        );
    }
    (demo, seen)
}

fn applied_up(line: &str) -> bool {
    line.contains(" → ") && line.contains("applied")
}

#[test]
fn the_demo_runs_from_its_own_binary_and_reaches_an_applied_scale_up() {
    let (mut demo, seen) = run_until_applied_scale_up(&[]);
    let up = seen.iter().find(|l| applied_up(l)).expect("seen");
    assert!(
        up.contains("commit "),
        "the applied decision names its commit: {up}"
    );
    // Ctrl-C, as a person stops it: the demo stops its stack on the way out (SIGTERM would orphan it).
    assert!(
        demo.interrupt(),
        "the demo did not stop within 60 s of Ctrl-C"
    );
}

/// The getting-started guide's first pull request: with `--pull-request` the scale-up waits in a pull
/// request until it is merged, and is applied as the merge commit.
#[test]
fn the_demo_with_pull_requests_applies_a_scale_up_only_after_its_pull_request_is_merged() {
    let (mut demo, seen) = run_until_applied_scale_up(&["--pull-request"]);
    let position = |wanted: &dyn Fn(&str) -> bool| seen.iter().position(|l| wanted(l));
    let opened = position(&|l| l.contains("pull request #1 opened on branch autoscaler/logs"))
        .unwrap_or_else(|| panic!("no pull request shown:\n{}", seen.join("\n")));
    let waiting = position(&|l| l.contains(" → ") && l.contains("pr_open")).unwrap_or_else(|| {
        panic!(
            "no decision waited in its pull request:\n{}",
            seen.join("\n")
        )
    });
    let merged = position(&|l| l.contains("merged pull request #1 as"))
        .unwrap_or_else(|| panic!("the pull request was not merged:\n{}", seen.join("\n")));
    let applied = position(&applied_up).expect("seen");
    assert!(
        waiting < merged && opened < merged && merged < applied,
        "opened {opened}, waiting {waiting}, merged {merged}, applied {applied}:\n{}",
        seen.join("\n")
    );
    let up = &seen[applied];
    assert!(
        up.contains("pull request #1") && up.contains("commit "),
        "the applied decision names its pull request and merge commit: {up}"
    );
    assert!(
        demo.interrupt(),
        "the demo did not stop within 60 s of Ctrl-C"
    );
}
