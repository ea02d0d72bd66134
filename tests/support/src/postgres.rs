//! A Postgres server of the test's own: `initdb` into a temporary directory, on a free loopback port,
//! trust authentication for the `postgres` user. A test can restart it (or crash it) without disturbing
//! the machine's shared server and every other test on it. Uses the machine's PostgreSQL binaries
//! (`/usr/lib/postgresql/<version>/bin`); when run as root, runs them as the `postgres` user, since
//! Postgres refuses to run as root.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// Initialises a cluster and starts it; waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new().prefix("own-postgres-").tempdir()?;
        let port = crate::process::free_port()?;
        let postgres = Self { dir, bin, port };
        if as_root() {
            run(Command::new("chown").args([
                "-R",
                "postgres:postgres",
                &postgres.dir.path().display().to_string(),
            ]))?;
        }
        let data = postgres.data().display().to_string();
        postgres.pg(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        )?;
        postgres.up()?;
        Ok(postgres)
    }

    /// The URL of the `postgres` database on it: for creating and dropping databases.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it as a crash would (`immediate`: no checkpoint, every connection cut, recovery from the
    /// WAL on the next start), then starts it again.
    pub fn crash_and_restart(&self) -> anyhow::Result<()> {
        self.down("immediate")?;
        self.up()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn up(&self) -> anyhow::Result<()> {
        let data = self.data().display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        )
    }

    fn down(&self, mode: &str) -> anyhow::Result<()> {
        let data = self.data().display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", mode, "-w", "stop"])
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path());
        run(&mut command).with_context(|| format!("{}", program.display()))
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.down("immediate");
    }
}

fn as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().context("starting it")?;
    if !output.status.success() {
        bail!(
            "exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The newest installed PostgreSQL's binaries.
fn binaries() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("{} (PostgreSQL's server binaries)", root.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .with_context(|| format!("no initdb under {}", root.display()))
}
