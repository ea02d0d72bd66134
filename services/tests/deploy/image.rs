//! `deploy/Dockerfile`: no container engine runs here, so its build steps are held to what CI runs
//! (`scripts/setup.sh`'s packages, cargo on the workspace's packages), and its runtime to what the
//! manifests expect of it (the binaries they run, the user they run as).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use serde_yaml::Value;

use crate::{
    manifests::{Doc, Problems, pod_spec, read, root, strings},
    processes::autoscaler_env_flags,
};

const DOCKERFILE: &str = "deploy/Dockerfile";

/// One instruction, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A stage: `FROM image [AS name]` and its instructions.
#[derive(Debug, Clone)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn stages() -> Vec<Stage> {
    let text = read(Path::new(DOCKERFILE));
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_owned();
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            stages.push(Stage {
                image: words.first().copied().unwrap_or("").to_owned(),
                name: (words.len() == 3 && words[1].eq_ignore_ascii_case("as"))
                    .then(|| words[2].to_owned()),
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction { keyword, args });
        }
    }
    stages
}

/// The packages of every `apt-get install` in a shell command.
fn apt_installs(command: &str) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for part in command.split("&&") {
        let words: Vec<&str> = part.split_whitespace().collect();
        if let Some(i) = words
            .windows(2)
            .position(|w| w[0] == "apt-get" && w[1] == "install")
        {
            packages.extend(
                words[i + 2..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| (*w).to_owned()),
            );
        }
    }
    packages
}

/// The packages `scripts/setup.sh` installs, by the comment on their line in its `packages=(...)` list.
fn setup_packages() -> Vec<(BTreeSet<String>, String)> {
    let text = read(Path::new("scripts/setup.sh"));
    let start = text
        .find("packages=(")
        .expect("scripts/setup.sh has a packages=( list");
    let body = &text[start + "packages=(".len()..];
    let end = body
        .find("\n)")
        .expect("the packages list ends with a line `)`");
    body[..end]
        .lines()
        .map(|line| {
            let (words, comment) = line.split_once('#').unwrap_or((line, ""));
            (
                words.split_whitespace().map(str::to_owned).collect(),
                comment.trim().to_owned(),
            )
        })
        .filter(|(words, _): &(BTreeSet<String>, String)| !words.is_empty())
        .collect()
}

/// Workspace packages and their binaries, from `cargo metadata`.
fn workspace_binaries() -> BTreeMap<String, BTreeSet<String>> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let bins = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            (p["name"].as_str().unwrap_or("").to_owned(), bins)
        })
        .collect()
}

/// Every Deployment the kustomizations install (patches left out), once.
fn deployments() -> Vec<Doc> {
    let mut problems = Problems::default();
    let mut seen = BTreeSet::new();
    crate::kubernetes::installations(&mut problems)
        .into_iter()
        .flat_map(|i| i.resources)
        .filter(|d| d.kind() == "Deployment")
        .filter(|d| seen.insert((d.file.clone(), d.name().to_owned())))
        .collect()
}

fn build_stage(stages: &[Stage]) -> &Stage {
    let runtime = stages.last().expect("a stage");
    let from = runtime
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY")
        .find_map(|i| {
            i.args
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--from=").map(str::to_owned))
        })
        .expect("the runtime stage copies from a build stage");
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(from.as_str()))
        .unwrap_or_else(|| panic!("{DOCKERFILE}: COPY --from={from} names no stage"))
}

#[test]
fn the_image_build_stage_installs_what_setup_sh_installs_for_the_build() {
    let stages = stages();
    let build = build_stage(&stages);
    let in_dockerfile: BTreeSet<String> = build
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
        .flat_map(|i| apt_installs(&i.args))
        .collect();
    let for_build: Vec<_> = setup_packages()
        .into_iter()
        .filter(|(_, comment)| comment.contains("build"))
        .collect();
    assert_eq!(
        for_build.len(),
        1,
        "scripts/setup.sh: expected one line of the packages list commented as being for the build, found {for_build:?}"
    );
    let (in_setup, _) = &for_build[0];
    assert_eq!(
        &in_dockerfile,
        in_setup,
        "{DOCKERFILE}: the build stage's apt-get install list differs from what scripts/setup.sh installs for the build (Dockerfile only: {:?}; setup.sh only: {:?})",
        in_dockerfile.difference(in_setup).collect::<Vec<_>>(),
        in_setup.difference(&in_dockerfile).collect::<Vec<_>>()
    );

    // The toolchain and the Debian release: the workspace's rust-version, and the runtime's Debian,
    // since the binaries link against its C libraries.
    let manifest = read(Path::new("Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml names a rust-version");
    assert_eq!(
        build
            .image
            .strip_prefix("rust:")
            .and_then(|t| t.split('-').next()),
        Some(rust_version),
        "{DOCKERFILE}: the build stage {} is not rust:{rust_version}, the workspace's rust-version",
        build.image
    );
    let runtime = stages.last().expect("a runtime stage");
    let release = |image: &str| {
        ["bookworm", "bullseye", "trixie"]
            .into_iter()
            .find(|r| image.contains(r))
    };
    assert!(
        release(&build.image).is_some() && release(&build.image) == release(&runtime.image),
        "{DOCKERFILE}: the build stage ({}) and the runtime ({}) are not on the same Debian release",
        build.image,
        runtime.image
    );
}

#[test]
fn the_image_builds_and_ships_every_binary_the_manifests_run() {
    let stages = stages();
    let build = build_stage(&stages);
    let runtime = stages.last().expect("a runtime stage");
    let workspace = workspace_binaries();
    let mut problems = Problems::default();

    let cargo = build
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
        .find(|i| i.args.contains("cargo build"))
        .expect("the build stage runs cargo build");
    let words: Vec<&str> = cargo.args.split_whitespace().collect();
    for flag in ["--release", "--locked"] {
        problems.check(words.contains(&flag), || {
            format!("{DOCKERFILE}: `{}` lacks {flag}", cargo.args)
        });
    }
    let packages: Vec<&str> = words
        .windows(2)
        .filter(|w| w[0] == "-p" || w[0] == "--package")
        .map(|w| w[1])
        .collect();
    let mut built = BTreeSet::new();
    for package in &packages {
        match workspace.get(*package) {
            Some(bins) if !bins.is_empty() => built.extend(bins.iter().cloned()),
            Some(_) => problems.add(format!(
                "{DOCKERFILE}: builds package {package}, which has no binary"
            )),
            None => problems.add(format!(
                "{DOCKERFILE}: builds package {package}, which is not in the workspace"
            )),
        }
    }
    for wanted in ["autoscaler", "pipeline-engine", "load-generator"] {
        problems.check(packages.contains(&wanted), || {
            format!("{DOCKERFILE}: does not build package {wanted}")
        });
    }

    // What the runtime stage copies out of target/release, and where it puts it.
    let copied: BTreeSet<String> = runtime
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY" && i.args.contains("--from="))
        .flat_map(|i| {
            let words: Vec<&str> = i
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let sources = &words[..words.len().saturating_sub(1)];
            sources
                .iter()
                .filter(|s| s.contains("/target/release/"))
                .filter_map(|s| s.rsplit('/').next().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    for bin in &built {
        problems.check(copied.contains(bin), || {
            format!("{DOCKERFILE}: builds binary {bin} but the runtime stage does not copy it")
        });
    }
    for bin in &copied {
        problems.check(built.contains(bin), || {
            format!("{DOCKERFILE}: copies {bin}, which the cargo build does not produce")
        });
    }
    // The entrypoint and every command the manifests run are binaries of the image.
    let entrypoint = runtime
        .instructions
        .iter()
        .rfind(|i| i.keyword == "ENTRYPOINT")
        .map(|i| i.args.clone())
        .unwrap_or_default();
    let entry: Vec<String> = serde_json::from_str(&entrypoint).unwrap_or_default();
    let entry_bin = entry
        .first()
        .and_then(|e| e.rsplit('/').next())
        .unwrap_or("")
        .to_owned();
    problems.check(copied.contains(&entry_bin), || {
        format!("{DOCKERFILE}: ENTRYPOINT {entrypoint} is not a binary of the image")
    });
    for doc in deployments() {
        for container in pod_spec(&doc)["containers"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            if let Some(command) = container["command"][0].as_str() {
                problems.check(copied.contains(command), || {
                    format!(
                        "{}: command {command} is not a binary of the image",
                        doc.at()
                    )
                });
            }
        }
    }
    let compose: Value = serde_yaml::from_str(&read(Path::new("docker-compose.yml")))
        .expect("docker-compose.yml parses");
    for (name, service) in compose["services"].as_mapping().into_iter().flatten() {
        let Some(entry) = strings(&service["entrypoint"]).first().cloned() else {
            continue;
        };
        let ours =
            service["image"].as_str() == Some("autoscaler:local") || !service["build"].is_null();
        if ours {
            problems.check(copied.contains(&entry), || {
                format!("docker-compose.yml: service {} runs {entry}, which is not a binary of the image", name.as_str().unwrap_or(""))
            });
        }
    }
    // ENV settings of the runtime are ones the autoscaler reads.
    let flags = autoscaler_env_flags();
    for env in runtime.instructions.iter().filter(|i| i.keyword == "ENV") {
        let name = env.args.split(['=', ' ']).next().unwrap_or("");
        problems.check(flags.contains_key(name), || {
            format!("{DOCKERFILE}: ENV {name} is not a setting the autoscaler reads")
        });
    }
    // The build context leaves out build output and Git metadata.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap_or_default();
    for pattern in [".git", "/target"] {
        problems.check(ignore.lines().any(|l| l.trim() == pattern), || {
            format!(".dockerignore does not exclude {pattern}")
        });
    }
    problems.assert_none("the image's build");
}

#[test]
fn the_image_runs_as_the_non_root_user_the_pods_expect() {
    let stages = stages();
    let runtime = stages.last().expect("a runtime stage");
    let user = runtime
        .instructions
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .unwrap_or_default();
    let uid = user.split(':').next().and_then(|u| u.parse::<u64>().ok());
    assert!(
        uid.is_some_and(|u| u != 0),
        "{DOCKERFILE}: the runtime's USER {user:?} is not a numeric non-root uid (Kubernetes' runAsNonRoot needs a number)"
    );
    let mut problems = Problems::default();
    for doc in deployments() {
        let run_as = pod_spec(&doc)["securityContext"]["runAsUser"].as_u64();
        problems.check(run_as == uid, || {
            format!(
                "{}: securityContext.runAsUser {run_as:?} is not the image's user {uid:?}",
                doc.at()
            )
        });
    }
    problems.assert_none("the image's user");
}
