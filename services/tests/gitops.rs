//! Git write-back against real repositories on disk: a bare repository as the GitOps remote.

use std::{path::Path, process::Command};

use autoscaler::gitops::{GitError, GitWriter, ScaleChange};

const VALUES: &str =
    "# pipelines\nlogs:\n  replicas: 2 # engine instances\nmetrics:\n  replicas: 3\n";

struct Remote {
    dir: std::path::PathBuf,
    url: String,
}

fn run(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Remote {
    /// A bare repository whose `main` holds values.yaml.
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("autoscaler-git-{}", uuid::Uuid::new_v4().simple()));
        let bare = dir.join("remote.git");
        let seed = dir.join("seed");
        std::fs::create_dir_all(&seed).expect("dirs");
        run(
            &dir,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "remote.git",
            ],
        );
        run(&seed, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(seed.join("values.yaml"), VALUES).expect("write");
        run(&seed, &["add", "values.yaml"]);
        run(
            &seed,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "--quiet",
                "-m",
                "seed",
            ],
        );
        run(
            &seed,
            &[
                "push",
                "--quiet",
                bare.to_str().expect("utf-8 path"),
                "main",
            ],
        );
        let url = format!("file://{}", bare.display());
        Self { dir, url }
    }

    fn file(&self) -> String {
        run(&self.dir.join("remote.git"), &["show", "main:values.yaml"])
    }

    fn log(&self) -> Vec<String> {
        run(
            &self.dir.join("remote.git"),
            &["log", "--format=%s", "main"],
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn change<'a>(remote: &'a Remote, key: &'a str, scale: u64, message: &'a str) -> ScaleChange<'a> {
    ScaleChange {
        repository: &remote.url,
        branch: "main",
        path: "values.yaml",
        key,
        scale,
        message,
    }
}

#[tokio::test]
async fn a_new_scale_is_committed_and_pushed_changing_only_that_value() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));

    let committed = writer
        .write(&change(
            &remote,
            "logs.replicas",
            5,
            "Scale logs from 2 to 5: lag above 300 s",
        ))
        .await
        .expect("written")
        .expect("a commit");

    assert_eq!(committed.previous, 2);
    assert_eq!(
        remote.file(),
        VALUES.replace("replicas: 2 #", "replicas: 5 #")
    );
    assert_eq!(
        remote.log(),
        ["Scale logs from 2 to 5: lag above 300 s", "seed"]
    );
    assert_eq!(
        writer
            .read(&remote.url, "main", "values.yaml", "logs.replicas")
            .await
            .expect("read"),
        5
    );
    // The same scale again is not a new commit.
    assert!(
        writer
            .write(&change(&remote, "logs.replicas", 5, "again"))
            .await
            .expect("ok")
            .is_none()
    );
    assert_eq!(remote.log().len(), 2);
}

#[tokio::test]
async fn concurrent_writers_on_other_hosts_both_land() {
    let remote = Remote::new();
    // Two writers with their own clones stand for two worker hosts.
    let first = GitWriter::new(remote.dir.join("host-a"));
    let second = GitWriter::new(remote.dir.join("host-b"));
    // Both clone first, so that both push from the same, soon stale, base.
    first
        .read(&remote.url, "main", "values.yaml", "logs.replicas")
        .await
        .expect("clone a");
    second
        .read(&remote.url, "main", "values.yaml", "logs.replicas")
        .await
        .expect("clone b");

    let (logs, metrics) = (
        change(&remote, "logs.replicas", 4, "scale logs"),
        change(&remote, "metrics.replicas", 6, "scale metrics"),
    );
    let (a, b) = tokio::join!(first.write(&logs), second.write(&metrics));

    a.expect("first lands").expect("a commit");
    b.expect("second lands").expect("a commit");
    let file = remote.file();
    assert!(
        file.contains("logs:\n  replicas: 4 # engine instances\n"),
        "{file}"
    );
    assert!(file.contains("metrics:\n  replicas: 6\n"), "{file}");
    assert_eq!(remote.log().len(), 3);
}

#[tokio::test]
async fn a_missing_key_or_a_non_number_fails_and_writes_nothing() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));

    let missing = writer
        .write(&change(&remote, "logs.parallelism", 3, "x"))
        .await;
    assert!(matches!(missing, Err(GitError::File { .. })), "{missing:?}");
    let not_a_number = writer.write(&change(&remote, "logs", 3, "x")).await;
    assert!(
        matches!(not_a_number, Err(GitError::File { .. })),
        "{not_a_number:?}"
    );

    assert_eq!(remote.log(), ["seed"]);
    assert_eq!(remote.file(), VALUES);
}

#[tokio::test]
async fn an_unreachable_remote_is_a_clear_error() {
    let writer = GitWriter::new(
        std::env::temp_dir().join(format!("autoscaler-git-{}", uuid::Uuid::new_v4().simple())),
    );
    let result = writer
        .read("file:///nonexistent/remote.git", "main", "values.yaml", "a")
        .await;
    assert!(
        matches!(result, Err(GitError::Command { ref command, .. }) if command == "clone"),
        "{result:?}"
    );
}
