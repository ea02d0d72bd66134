//! Child processes of the stack: located next to the running executable, logging into the stack's
//! directory, stopped with SIGTERM (gracefully) or SIGKILL (when the stack is dropped).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The workspace binaries the stack runs, by package.
const BINARIES: [(&str, &str); 4] = [
    ("autoscaler", "autoscaler"),
    ("pipeline-engine", "pipeline-engine"),
    ("load-generator", "load-generator"),
    ("test-support", "kafka-mock-broker"),
];

/// The directory holding this build's binaries (`target/<profile>/`), after making sure every binary
/// the stack runs is built and up to date: a test run of one package does not build the others.
pub fn binaries_dir() -> anyhow::Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut dir = exe.parent().context("the executable has no directory")?;
    // Test executables live in target/<profile>/deps, binaries in target/<profile>.
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    build.arg("build").arg("--quiet");
    if dir.ends_with("release") {
        build.arg("--release");
    }
    for (package, bin) in BINARIES {
        build.args(["-p", package, "--bin", bin]);
    }
    let status = build
        .status()
        .context("running cargo build for the stack's binaries")?;
    if !status.success() {
        bail!("building the stack's binaries failed ({status})");
    }
    Ok(DIR.get_or_init(|| dir.to_path_buf()))
}

/// A workspace binary by name.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = binaries_dir()?.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing after the build",
        path.display()
    );
    Ok(path)
}

/// A running child, killed when dropped unless it was stopped before.
pub struct Process {
    pub name: String,
    child: Child,
}

impl Process {
    /// Starts `command` with stderr (and stdout, unless the caller piped it) appended to
    /// `<logs>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, logs: &Path) -> anyhow::Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))
            .with_context(|| format!("opening the log of {name}"))?;
        command
            .stdin(Stdio::null())
            .stderr(log.try_clone().context("duplicating a log handle")?);
        command.stdout(log);
        Self::spawn_with(name, command)
    }

    /// Starts `command` as configured by the caller (pipes and all).
    pub fn spawn_with(name: &str, mut command: Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits up to `grace` for the exit, then SIGKILL.
    pub fn terminate(mut self, grace: Duration) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).context("pid out of range")?);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if self
                .child
                .try_wait()
                .context("waiting for a child")?
                .is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{} did not exit within {grace:?} of SIGTERM", self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, read back, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
