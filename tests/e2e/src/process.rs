//! Child processes of the stack: the workspace binaries, located next to the running executable.
//! Starting and stopping them is test-support's [`Process`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

pub use test_support::process::{Process, free_port};

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
