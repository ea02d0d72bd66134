//! The git CLI, for the test servers that read and move branches in bare repositories on disk, plus
//! helpers tests use to create those repositories.
//!
//! The servers shell out to `git` instead of linking a git library so that what they see is exactly
//! what the worker's own `git push` produced.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Identity for commits made by the test servers and helpers (merges, seed commits).
const COMMITTER: [&str; 4] = [
    "-c",
    "user.name=test-support",
    "-c",
    "user.email=test-support@example.invalid",
];

/// Runs `git <args>` in `dir` and returns its trimmed stdout; a non-zero exit is an error carrying stderr.
pub fn run(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(COMMITTER)
        .args(args)
        .current_dir(dir)
        // Tests may run inside a git hook or worktree; never let the caller's repository leak in.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .with_context(|| format!("running git {args:?} in {}", dir.display()))?;
    if !out.status.success() {
        bail!(
            "git {args:?} in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Resolves a branch, tag or (possibly abbreviated) SHA to a full commit SHA, or `None` if it names
/// no commit. `--end-of-options` keeps a revision taken from a request from being read as an option.
pub fn rev_parse(repo: &Path, rev: &str) -> Option<String> {
    let spec = format!("{rev}^{{commit}}");
    run(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .ok()
    .filter(|sha| !sha.is_empty())
}

/// Whether `branch` exists as `refs/heads/<branch>` in `repo`.
pub fn branch_exists(repo: &Path, branch: &str) -> bool {
    let full = format!("refs/heads/{branch}");
    run(repo, &["show-ref", "--verify", "--quiet", &full]).is_ok()
}

/// Whether `ancestor` is reachable from `descendant` (true when they are equal).
pub fn is_ancestor(repo: &Path, ancestor: &str, descendant: &str) -> bool {
    run(repo, &["merge-base", "--is-ancestor", ancestor, descendant]).is_ok()
}

/// Creates a bare repository at `bare` whose `branch` has one commit holding `files`
/// (path, content), and returns that commit's SHA. Parent directories of `bare` are created.
pub fn init_bare_repo(bare: &Path, branch: &str, files: &[(&str, &str)]) -> anyhow::Result<String> {
    std::fs::create_dir_all(bare).with_context(|| format!("creating {}", bare.display()))?;
    let initial_branch = format!("--initial-branch={branch}");
    run(bare, &["init", "--quiet", "--bare", &initial_branch])?;
    let scratch = scratch_dir()?;
    let work = scratch.path();
    run(work, &["init", "--quiet", &initial_branch])?;
    write_files(work, files)?;
    run(work, &["add", "--all"])?;
    run(
        work,
        &["commit", "--quiet", "--allow-empty", "-m", "initial commit"],
    )?;
    let bare_str = bare.to_string_lossy();
    let refspec = format!("HEAD:refs/heads/{branch}");
    run(work, &["push", "--quiet", &bare_str, &refspec])?;
    run(work, &["rev-parse", "HEAD"])
}

/// Commits `files` on `branch` of the bare repository `bare` (creating the branch from `from` if it
/// does not exist yet) and pushes it, the way the worker's git CLI path does. Returns the new SHA.
pub fn commit_files(
    bare: &Path,
    branch: &str,
    from: &str,
    files: &[(&str, &str)],
    message: &str,
) -> anyhow::Result<String> {
    let scratch = scratch_dir()?;
    let work = scratch.path();
    let bare_str = bare.to_string_lossy();
    run(work, &["clone", "--quiet", &bare_str, "."])?;
    let start = if branch_exists(bare, branch) {
        branch
    } else {
        from
    };
    let start_ref = format!("origin/{start}");
    run(work, &["checkout", "--quiet", "-B", branch, &start_ref])?;
    write_files(work, files)?;
    run(work, &["add", "--all"])?;
    run(work, &["commit", "--quiet", "--allow-empty", "-m", message])?;
    let refspec = format!("HEAD:refs/heads/{branch}");
    run(work, &["push", "--quiet", "origin", &refspec])?;
    run(work, &["rev-parse", "HEAD"])
}

/// Merges `head` into `base` in the bare repository with a merge commit (`--no-ff`, as GitHub's
/// "Create a merge commit" does) through a temporary clone, pushes `base`, and returns the merge SHA.
pub fn merge_no_ff(bare: &Path, base: &str, head: &str, message: &str) -> anyhow::Result<String> {
    let scratch = scratch_dir()?;
    let work = scratch.path();
    let bare_str = bare.to_string_lossy();
    run(work, &["clone", "--quiet", &bare_str, "."])?;
    let base_ref = format!("origin/{base}");
    let head_ref = format!("origin/{head}");
    run(work, &["checkout", "--quiet", "-B", base, &base_ref])?;
    run(
        work,
        &["merge", "--quiet", "--no-ff", "-m", message, &head_ref],
    )?;
    let refspec = format!("HEAD:refs/heads/{base}");
    run(work, &["push", "--quiet", "origin", &refspec])?;
    run(work, &["rev-parse", "HEAD"])
}

fn write_files(work: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (path, content) in files {
        let full = work.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, content).with_context(|| format!("writing {}", full.display()))?;
    }
    Ok(())
}

/// A scratch clone directory, removed on drop.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("test-support-git-")
        .tempdir()
        .context("creating a scratch directory")
}
