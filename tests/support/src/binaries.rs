//! Locating the workspace's binaries from a running executable, wherever cargo put it: a test in
//! `target/<profile>/deps/`, an example in `target/<profile>/examples/`, or a binary run by `cargo run`
//! (such as the demo) in `target/<profile>/` itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The directory cargo puts a profile's binaries in, given one executable cargo built for that profile.
pub fn profile_dir_of(exe: &Path) -> anyhow::Result<PathBuf> {
    let dir = exe
        .parent()
        .with_context(|| format!("{} has no directory", exe.display()))?;
    // Tests and examples are one level below the profile's binaries.
    if dir.ends_with("deps") || dir.ends_with("examples") {
        return Ok(dir
            .parent()
            .with_context(|| format!("{} has no parent", dir.display()))?
            .to_path_buf());
    }
    Ok(dir.to_path_buf())
}

/// The profile directory of the running executable.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    profile_dir_of(&std::env::current_exe().context("locating the running executable")?)
}

/// Builds the named `(package, binary)` pairs for the profile `dir` holds (release or debug): a build or
/// a test run of one package does not build the others' binaries.
pub fn build(dir: &Path, binaries: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    build.arg("build").arg("--quiet");
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(set_by_cargo_for_the_running_crate)
        {
            build.env_remove(name);
        }
    }
    if dir.ends_with("release") {
        build.arg("--release");
    }
    for (package, bin) in binaries {
        build.args(["-p", package, "--bin", bin]);
    }
    let status = build
        .status()
        .context("running cargo build for the workspace's binaries")?;
    if !status.success() {
        bail!("building {binaries:?} failed ({status})");
    }
    Ok(())
}

/// Whether `name` is one of the variables cargo (`cargo run`, `cargo test`) or nextest sets for the crate
/// it runs. A build started from that crate must not inherit them: build scripts that watch one (ring
/// watches `CARGO_MANIFEST_DIR`) would see it change, and every build after would rebuild half the
/// dependency tree, this one and the user's next plain `cargo build` alike.
pub fn set_by_cargo_for_the_running_crate(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
        )
}

/// A binary of `package` next to the running executable, built first if it is not there yet.
pub fn binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    let dir = profile_dir()?;
    let path = dir.join(name);
    if !path.exists() {
        build(&dir, &[(package, name)])?;
    }
    anyhow::ensure!(
        path.exists(),
        "{} is missing after building it",
        path.display()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_executable_finds_binaries_one_level_up() {
        let dir = profile_dir_of(Path::new("/w/target/debug/deps/loop-0123abcd"))
            .expect("a profile directory");
        assert_eq!(dir, Path::new("/w/target/debug"));
    }

    #[test]
    fn an_example_finds_binaries_one_level_up() {
        let dir = profile_dir_of(Path::new("/w/target/release/examples/bench"))
            .expect("a profile directory");
        assert_eq!(dir, Path::new("/w/target/release"));
    }

    #[test]
    fn a_binary_run_by_cargo_run_finds_its_siblings() {
        // The demo's case: `cargo run -p e2e --bin demo` runs target/debug/demo.
        let dir = profile_dir_of(Path::new("/w/target/debug/demo")).expect("a profile directory");
        assert_eq!(dir, Path::new("/w/target/debug"));
        let dir = profile_dir_of(Path::new("/w/target/x86_64-unknown-linux-gnu/debug/demo"))
            .expect("a profile directory");
        assert_eq!(dir, Path::new("/w/target/x86_64-unknown-linux-gnu/debug"));
    }

    #[test]
    fn the_running_crates_variables_are_not_passed_to_a_build() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_CRATE_NAME",
        ] {
            assert!(set_by_cargo_for_the_running_crate(name), "{name}");
        }
        // Those that say which cargo and where everything is stay.
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTUP_TOOLCHAIN",
            "PATH",
        ] {
            assert!(!set_by_cargo_for_the_running_crate(name), "{name}");
        }
    }

    #[test]
    fn this_test_locates_a_real_sibling_binary() {
        // A test runs from deps/; the broker binary is built next to the profile's other binaries.
        let path = binary("test-support", "kafka-mock-broker").expect("the broker binary");
        assert_eq!(
            path.parent(),
            Some(profile_dir().expect("this test's profile").as_path())
        );
        assert!(path.is_file(), "{}", path.display());
    }
}
