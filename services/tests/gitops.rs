//! Git write-back against real repositories on disk: a bare repository as the GitOps remote.

#[path = "common/git.rs"]
mod git_cli;

use git_cli::git;

use autoscaler::gitops::{GitError, GitWriter, Remote as GitRemote, ScaleChange, WriteOutcome};

const VALUES: &str =
    "# pipelines\nlogs:\n  replicas: 2 # engine instances\nmetrics:\n  replicas: 3\n";

struct Remote {
    dir: std::path::PathBuf,
    url: String,
}

impl Remote {
    /// A bare repository whose `main` holds values.yaml.
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("autoscaler-git-{}", uuid::Uuid::new_v4().simple()));
        let bare = dir.join("remote.git");
        let seed = dir.join("seed");
        std::fs::create_dir_all(&seed).expect("dirs");
        git(
            &dir,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "remote.git",
            ],
        );
        git(&seed, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(seed.join("values.yaml"), VALUES).expect("write");
        git(&seed, &["add", "values.yaml"]);
        git(
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
        git(
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
        git(&self.dir.join("remote.git"), &["show", "main:values.yaml"])
    }

    fn at(&self) -> GitRemote<'_> {
        GitRemote {
            url: &self.url,
            branch: "main",
            credential: None,
        }
    }

    /// A person's commit setting `key`'s line to `line` on main.
    fn commit_by_hand(&self, from: &str, to: &str) {
        let hand = self
            .dir
            .join(format!("hand-{}", uuid::Uuid::new_v4().simple()));
        git(
            &self.dir,
            &["clone", "--quiet", &self.url, hand.to_str().expect("utf-8")],
        );
        let text = std::fs::read_to_string(hand.join("values.yaml")).expect("read");
        std::fs::write(hand.join("values.yaml"), text.replace(from, to)).expect("write");
        git(
            &hand,
            &[
                "-c",
                "user.name=Ada",
                "-c",
                "user.email=ada@example.com",
                "commit",
                "--quiet",
                "-am",
                "more replicas for the sale",
            ],
        );
        git(&hand, &["push", "--quiet", "origin", "main"]);
    }

    fn log(&self) -> Vec<String> {
        git(
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

fn change<'a>(key: &'a str, scale: u64, message: &'a str, decision_id: i64) -> ScaleChange<'a> {
    ScaleChange {
        path: "values.yaml",
        key,
        scale,
        message,
        decision_id,
    }
}

#[tokio::test]
async fn a_new_scale_is_committed_and_pushed_changing_only_that_value() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));

    let outcome = writer
        .write(
            remote.at(),
            &change(
                "logs.replicas",
                5,
                "Scale logs from 2 to 5: lag above 300 s",
                1,
            ),
        )
        .await
        .expect("written");

    let WriteOutcome::Committed { commit, previous } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(previous, 2);
    assert_eq!(
        remote.file(),
        VALUES.replace("replicas: 2 #", "replicas: 5 #")
    );
    assert_eq!(
        remote.log(),
        ["Scale logs from 2 to 5: lag above 300 s", "seed"]
    );
    let body = git(
        &remote.dir.join("remote.git"),
        &["log", "-1", "--format=%B", "main"],
    );
    assert!(body.contains("\n\nAutoscaler-Decision: 1\n"), "{body}");

    let state = writer
        .inspect(remote.at(), "values.yaml", "logs.replicas")
        .await
        .expect("read");
    assert_eq!(state.value, 5);
    let last = state.last_commit.expect("a commit");
    assert_eq!(
        (last.sha.as_str(), last.decision),
        (commit.as_str(), Some(1))
    );
    // Another decision asking for the same scale is not a new commit.
    assert_eq!(
        writer
            .write(remote.at(), &change("logs.replicas", 5, "again", 2))
            .await
            .expect("ok"),
        WriteOutcome::Unchanged
    );
    assert_eq!(remote.log().len(), 2);
}

#[tokio::test]
async fn the_same_decision_written_twice_makes_one_commit() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));
    let first = writer
        .write(remote.at(), &change("logs.replicas", 5, "scale logs", 7))
        .await
        .expect("written");
    let WriteOutcome::Committed { commit, .. } = first else {
        panic!("expected a commit, got {first:?}");
    };
    // Someone moves main on meanwhile; the retried decision still finds its commit.
    remote.commit_by_hand("replicas: 3", "replicas: 4");
    let again = GitWriter::new(remote.dir.join("other-host"))
        .write(remote.at(), &change("logs.replicas", 5, "scale logs", 7))
        .await
        .expect("written");
    assert_eq!(again, WriteOutcome::AlreadyCommitted { commit });
    assert_eq!(remote.log().len(), 3);
}

#[tokio::test]
async fn a_persons_commit_is_recognised_with_author_and_time() {
    let remote = Remote::new();
    remote.commit_by_hand("replicas: 2 #", "replicas: 9 #");
    let state = GitWriter::new(remote.dir.join("work"))
        .inspect(remote.at(), "values.yaml", "logs.replicas")
        .await
        .expect("read");
    assert_eq!(state.value, 9);
    let last = state.last_commit.expect("a commit");
    assert_eq!(last.decision, None);
    assert_eq!(last.author, "Ada <ada@example.com>");
    assert!(
        (chrono::Utc::now() - last.at).num_seconds().abs() < 600,
        "{last:?}"
    );
}

#[tokio::test]
async fn a_branch_for_review_holds_one_commit_on_top_of_the_base() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));
    let bare = remote.dir.join("remote.git");

    let first = writer
        .write_branch(
            remote.at(),
            "autoscaler/logs",
            &change("logs.replicas", 4, "scale logs to 4", 1),
        )
        .await
        .expect("pushed");
    assert!(
        matches!(first, WriteOutcome::Committed { previous: 2, .. }),
        "{first:?}"
    );
    // A retry of the same decision changes nothing.
    let retried = writer
        .write_branch(
            remote.at(),
            "autoscaler/logs",
            &change("logs.replicas", 4, "scale logs to 4", 1),
        )
        .await
        .expect("pushed");
    assert!(
        matches!(retried, WriteOutcome::AlreadyCommitted { .. }),
        "{retried:?}"
    );
    // The next decision replaces the branch: still one commit on top of main, main untouched.
    remote.commit_by_hand("replicas: 3", "replicas: 4");
    writer
        .write_branch(
            remote.at(),
            "autoscaler/logs",
            &change("logs.replicas", 6, "scale logs to 6", 2),
        )
        .await
        .expect("pushed");
    let on_branch = git(&bare, &["log", "--format=%s", "main..autoscaler/logs"]);
    assert_eq!(on_branch.lines().collect::<Vec<_>>(), ["scale logs to 6"]);
    let file = git(&bare, &["show", "autoscaler/logs:values.yaml"]);
    assert!(
        file.contains("replicas: 6 #") && file.contains("metrics:\n  replicas: 4\n"),
        "{file}"
    );
    assert!(remote.file().contains("replicas: 2 #"));
}

#[tokio::test]
async fn containment_follows_the_history() {
    let remote = Remote::new();
    let writer = GitWriter::new(remote.dir.join("work"));
    let WriteOutcome::Committed { commit: ours, .. } = writer
        .write(remote.at(), &change("logs.replicas", 5, "scale", 1))
        .await
        .expect("written")
    else {
        panic!("expected a commit");
    };
    remote.commit_by_hand("replicas: 3", "replicas: 4");
    let newer = git(&remote.dir.join("remote.git"), &["rev-parse", "main"])
        .trim()
        .to_owned();
    assert!(
        writer
            .contains(remote.at(), &ours, &newer)
            .await
            .expect("git")
    );
    assert!(
        !writer
            .contains(remote.at(), &newer, &ours)
            .await
            .expect("git")
    );
    assert!(
        !writer
            .contains(
                remote.at(),
                &ours,
                "0123456789abcdef0123456789abcdef01234567"
            )
            .await
            .expect("git")
    );
}

#[tokio::test]
async fn concurrent_writers_on_other_hosts_both_land() {
    let remote = Remote::new();
    // Two writers with their own clones stand for two worker hosts.
    let first = GitWriter::new(remote.dir.join("host-a"));
    let second = GitWriter::new(remote.dir.join("host-b"));
    // Both clone first, so that both push from the same, soon stale, base.
    first
        .inspect(remote.at(), "values.yaml", "logs.replicas")
        .await
        .expect("clone a");
    second
        .inspect(remote.at(), "values.yaml", "logs.replicas")
        .await
        .expect("clone b");

    let (logs, metrics) = (
        change("logs.replicas", 4, "scale logs", 1),
        change("metrics.replicas", 6, "scale metrics", 2),
    );
    let (a, b) = tokio::join!(
        first.write(remote.at(), &logs),
        second.write(remote.at(), &metrics)
    );

    assert!(matches!(
        a.expect("first lands"),
        WriteOutcome::Committed { .. }
    ));
    assert!(matches!(
        b.expect("second lands"),
        WriteOutcome::Committed { .. }
    ));
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
        .write(remote.at(), &change("logs.parallelism", 3, "x", 1))
        .await;
    assert!(matches!(missing, Err(GitError::File { .. })), "{missing:?}");
    let not_a_number = writer.write(remote.at(), &change("logs", 3, "x", 2)).await;
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
    let remote = GitRemote {
        url: "file:///nonexistent/remote.git",
        branch: "main",
        credential: None,
    };
    let result = writer.inspect(remote, "values.yaml", "a").await;
    assert!(
        matches!(result, Err(GitError::Command { ref command, .. }) if command == "clone"),
        "{result:?}"
    );
}
