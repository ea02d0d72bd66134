//! The documentation, checked as a reader uses it: every link in the repository's Markdown leads to a file
//! (and heading) inside the repository, and every `autoscaler cluster ...` and `curl` example in the API
//! guide and the getting-started guide runs, as written, against `autoscaler run` on the real Postgres;
//! the refusal the API guide shows is the one printed.

#[path = "common/database.rs"]
mod database;
#[path = "common/service.rs"]
#[expect(dead_code, reason = "the docs tests never stop the service gracefully")]
mod service;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use database::TestDatabase;
use service::Service;

const TOKEN: &str = "change-me-to-a-long-random-token";
const CLUSTER: &str = "logs-ingest";

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// A Markdown file read the way the checks need it: its headings' anchors, its links, and its fenced
/// blocks with their language.
struct Markdown {
    anchors: BTreeSet<String>,
    /// (line number, target) of every link outside code.
    links: Vec<(usize, String)>,
    /// (language, lines) of every fenced block.
    blocks: Vec<(String, Vec<String>)>,
}

impl Markdown {
    fn read(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut markdown = Markdown {
            anchors: BTreeSet::new(),
            links: Vec::new(),
            blocks: Vec::new(),
        };
        let mut seen_slugs: HashMap<String, usize> = HashMap::new();
        let mut block: Option<(String, Vec<String>)> = None;
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                match block.take() {
                    Some(done) => markdown.blocks.push(done),
                    None => block = Some((trimmed[3..].trim().to_owned(), Vec::new())),
                }
                continue;
            }
            if let Some((_, lines)) = &mut block {
                lines.push(line.to_owned());
                continue;
            }
            if let Some(heading) = line.strip_prefix('#') {
                let slug = slug(heading.trim_start_matches('#'));
                // GitHub numbers repeated headings: `name`, `name-1`, `name-2`.
                let count = seen_slugs.entry(slug.clone()).or_insert(0);
                let anchor = if *count == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{count}")
                };
                *count += 1;
                markdown.anchors.insert(anchor);
            }
            for target in link_targets(&without_code_spans(line)) {
                markdown.links.push((number + 1, target));
            }
        }
        markdown
    }

    /// The commands of the `sh` blocks, with backslash continuations joined.
    fn shell_commands(&self) -> Vec<String> {
        let mut commands = Vec::new();
        for (language, lines) in &self.blocks {
            if language != "sh" {
                continue;
            }
            let mut pending = String::new();
            for line in lines {
                let line = line.trim();
                if let Some(continued) = line.strip_suffix('\\') {
                    pending.push_str(continued);
                    continue;
                }
                pending.push_str(line);
                if !pending.trim().is_empty() {
                    commands.push(std::mem::take(&mut pending));
                }
                pending.clear();
            }
        }
        commands
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn without_code_spans(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect()
}

/// The targets of `[text](target)` links on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    targets
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*.md",
        ])
        .current_dir(root)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|name| root.join(name))
        .filter(|path| path.exists())
        .collect()
}

#[test]
fn every_link_in_the_markdown_leads_inside_the_repository_to_a_file_and_heading_that_exist() {
    let root = repository_root();
    let files = markdown_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("docs/getting-started.md")),
        "the docs are found: {files:?}"
    );
    let mut parsed: HashMap<PathBuf, Markdown> = HashMap::new();
    let mut broken = Vec::new();
    for file in &files {
        let links = Markdown::read(file).links;
        for (line, target) in links {
            if target.starts_with("https://") || target.starts_with("http://") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let at = format!(
                "{}:{line}: {target}",
                file.strip_prefix(&root).unwrap_or(file).display()
            );
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a directory").join(path)
            };
            let Ok(resolved) = resolved.canonicalize() else {
                broken.push(format!("{at}: no such file"));
                continue;
            };
            if !resolved.starts_with(&root) {
                broken.push(format!("{at}: leaves the repository"));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_doc = parsed
                    .entry(resolved.clone())
                    .or_insert_with(|| Markdown::read(&resolved));
                if !target_doc.anchors.contains(anchor) {
                    broken.push(format!("{at}: no heading with this anchor"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The service the examples run against, and a working directory holding what they name: the
/// getting-started guide's `logs-ingest.yaml`, and `deploy/` for `-d @deploy/...`.
struct Examples {
    service: Service,
    dir: tempfile::TempDir,
    database: TestDatabase,
}

impl Examples {
    fn start(spec_yaml: &str) -> Self {
        let database = TestDatabase::new();
        let service = Service::start(&database.url, TOKEN);
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::write(dir.path().join("logs-ingest.yaml"), spec_yaml).expect("the spec");
        std::os::unix::fs::symlink(repository_root().join("deploy"), dir.path().join("deploy"))
            .expect("deploy/ linked");
        Self {
            service,
            dir,
            database,
        }
    }

    fn subscribed(&self) -> bool {
        self.shell(&format!("autoscaler cluster get {CLUSTER}"))
            .status
            .success()
    }

    /// The state a command expects: creating needs the cluster absent, everything else present.
    fn prepare_for(&self, command: &str) {
        let creates = command.contains("-X POST \"$AUTOSCALER_SERVER/api/v1/clusters\"");
        match (creates, self.subscribed()) {
            (true, true) => {
                let output = self.shell(&format!("autoscaler cluster delete {CLUSTER}"));
                assert!(output.status.success(), "{}", describe(&output));
            }
            (false, false) => {
                let output = self.shell("autoscaler cluster apply -f logs-ingest.yaml");
                assert!(output.status.success(), "{}", describe(&output));
            }
            _ => {}
        }
    }

    /// Runs a line as the docs' reader runs it: in bash, with the variables the guides export and
    /// `autoscaler` the binary. curl is told to fail on an HTTP error (the examples show no error).
    fn shell(&self, command: &str) -> Output {
        let command = command.replacen("curl ", "curl --fail-with-body ", 1);
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -euo pipefail\n\
                 autoscaler() {{ \"$AUTOSCALER_BIN\" \"$@\"; }}\n\
                 H=\"Authorization: Bearer $AUTOSCALER_TOKEN\"\n\
                 {command}"
            ))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AUTOSCALER_BIN", env!("CARGO_BIN_EXE_autoscaler"))
            .env("AUTOSCALER_SERVER", &self.service.address)
            .env("AUTOSCALER_TOKEN", TOKEN)
            .output()
            .expect("bash runs")
    }

    /// Decision 17 of the examples: an ended one, so that `--wait` returns at once.
    fn seed_decision_17(&self) {
        let url = self.database.url.clone();
        tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(async move {
                let pool = sqlx::PgPool::connect(&url).await.expect("connect");
                sqlx::query(
                    "insert into decisions (id, cluster_id, cluster_name, status, rule, inputs, reason, finished_at) overriding system value \
                     select 17, id, name, 'skipped', 'lag_above_threshold', '{}'::jsonb, \
                            'the docs test seeds it', now() from clusters where name = $1",
                )
                .bind(CLUSTER)
                .execute(&pool)
                .await
                .expect("decision 17");
            });
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The getting-started guide's `logs-ingest.yaml`: the spec its examples, and the API guide's, apply.
fn getting_started_spec(guide: &Markdown) -> String {
    guide
        .blocks
        .iter()
        .find(|(language, lines)| {
            language == "yaml"
                && lines
                    .first()
                    .is_some_and(|l| l.contains("logs-ingest.yaml"))
        })
        .map(|(_, lines)| lines.join("\n"))
        .expect("the getting-started guide's spec")
}

/// What a guide's example runs: the CLI and curl lines. Setup (`scripts/setup.sh`, `cargo run`,
/// `export`, `alias`) is what the tests and CI themselves do.
fn is_example(command: &str) -> bool {
    command.starts_with("autoscaler cluster ") || command.starts_with("curl ")
}

#[test]
fn the_cli_and_curl_examples_of_the_guides_run_as_written() {
    let root = repository_root();
    let getting_started = Markdown::read(&root.join("docs/getting-started.md"));
    let api = Markdown::read(&root.join("docs/api.md"));
    let spec_yaml = getting_started_spec(&getting_started);
    let examples = Examples::start(&spec_yaml);

    let mut commands: Vec<String> = getting_started
        .shell_commands()
        .into_iter()
        .chain(api.shell_commands())
        .filter(|c| is_example(c))
        .collect();
    commands.dedup();
    assert!(
        commands.len() >= 20,
        "the guides' examples are found: {commands:#?}"
    );
    let mut failed = Vec::new();
    let mut seeded = false;
    for command in &commands {
        examples.prepare_for(command);
        if (command.contains("decision 17") || command.contains("/decisions/17")) && !seeded {
            examples.seed_decision_17();
            seeded = true;
        }
        let output = examples.shell(command);
        if !output.status.success() {
            failed.push(format!("{command}\n{}", describe(&output)));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failed.len(),
        commands.len(),
        failed.join("\n\n")
    );
}

/// The refusal `docs/api.md` shows for a spec with `reactive: false` and no control URL, and
/// `max_scale: 0`, is what the CLI prints, with exit code 1.
#[test]
fn the_refusal_the_api_guide_shows_is_the_one_printed() {
    let root = repository_root();
    let api = Markdown::read(&root.join("docs/api.md"));
    let (_, shown) = api
        .blocks
        .iter()
        .find(|(language, lines)| {
            language == "console"
                && lines
                    .first()
                    .is_some_and(|l| l.starts_with("$ autoscaler cluster apply -f bad.yaml"))
        })
        .expect("the refusal example");
    let getting_started = Markdown::read(&root.join("docs/getting-started.md"));
    let spec_yaml = getting_started_spec(&getting_started);
    let mut bad: serde_yaml::Value = serde_yaml::from_str(&spec_yaml).expect("YAML");
    bad["target"]["reactive"] = false.into();
    bad["policy"]["max_scale"] = 0.into();
    // The guide's bad.yaml leaves min_scale at its default, 1.
    bad["policy"]
        .as_mapping_mut()
        .expect("a policy")
        .remove("min_scale");
    let examples = Examples::start(&spec_yaml);
    std::fs::write(
        examples.dir.path().join("bad.yaml"),
        serde_yaml::to_string(&bad).expect("YAML"),
    )
    .expect("bad.yaml");

    let output = examples.shell("autoscaler cluster apply -f bad.yaml");

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let printed: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    let expected: Vec<String> = shown[1..].iter().map(|l| l.trim_end().to_owned()).collect();
    assert_eq!(printed, expected, "{}", describe(&output));
    assert!(!examples.subscribed(), "nothing is stored");
}
