//! Child processes of the stack: the workspace binaries, located next to the running executable.
//! Starting and stopping them is test-support's [`Process`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use test_support::binaries;

pub use test_support::process::{Process, free_port};

/// The workspace binaries the stack runs, by package.
const BINARIES: [(&str, &str); 4] = [
    ("autoscaler", "autoscaler"),
    ("pipeline-engine", "pipeline-engine"),
    ("load-generator", "load-generator"),
    ("test-support", "kafka-mock-broker"),
];

/// The directory holding this build's binaries (`target/<profile>/`), after making sure every binary
/// the stack runs is built and up to date: a test run of one package does not build the others. Works
/// from a test executable and from the demo run by `cargo run`.
pub fn binaries_dir() -> anyhow::Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let dir = binaries::profile_dir()?;
    binaries::build(&dir, &BINARIES)?;
    Ok(DIR.get_or_init(|| dir))
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
