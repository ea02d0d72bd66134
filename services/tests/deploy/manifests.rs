//! Reading what is under `deploy/`: every manifest file as YAML documents, kustomizations resolved into the
//! objects an installation holds (resources of its bases, generated ConfigMaps and Secrets, patches), and
//! the small lookups the checks share (label selection, container ports, environment variables).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path, PathBuf},
};

use serde::Deserialize;
use serde_yaml::Value;

/// The repository root (the workspace).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("services/ sits in the repository root")
        .to_path_buf()
}

/// The text of a file named relative to the repository root.
pub fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", rel.display()))
}

/// `a/b/../c` as `a/c`, without touching the file system; `None` when it leaves the repository.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Every problem a check found, reported together so that one run names all of them.
#[derive(Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    pub fn assert_none(mut self, what: &str) {
        // A base is checked in each installation that includes it: name each problem once.
        let mut seen = BTreeSet::new();
        self.0.retain(|p| seen.insert(p.clone()));
        assert!(
            self.0.is_empty(),
            "{what}: {} problem(s)\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Relative to the repository root.
    pub file: PathBuf,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    /// `file (Kind name)`, for messages.
    pub fn at(&self) -> String {
        format!("{} ({} {})", self.file.display(), self.kind(), self.name())
    }
}

/// The documents of a YAML file (`---`-separated), empty documents left out.
pub fn parse_yaml_docs(rel: &Path, text: &str) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| format!("{}: document {}: {e}", rel.display(), i + 1))?;
        if !value.is_null() {
            docs.push(Doc {
                file: rel.to_path_buf(),
                value,
            });
        }
    }
    Ok(docs)
}

/// The documents of the file at `rel`.
pub fn load_docs(rel: &Path) -> Result<Vec<Doc>, String> {
    let text = std::fs::read_to_string(root().join(rel))
        .map_err(|e| format!("{}: cannot read: {e}", rel.display()))?;
    if rel.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", rel.display()))?;
        let value = serde_yaml::to_value(json).map_err(|e| format!("{}: {e}", rel.display()))?;
        return Ok(vec![Doc {
            file: rel.to_path_buf(),
            value,
        }]);
    }
    parse_yaml_docs(rel, &text)
}

/// Every manifest: `deploy/**/*.{yaml,yml,json}` and `docker-compose.yml`, relative to the root, sorted.
pub fn manifest_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            let rel = rel.join(entry.file_name());
            if path.is_dir() {
                walk(&path, &rel, out);
            } else if rel
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(rel);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("deploy"), Path::new("deploy"), &mut files);
    files.push(PathBuf::from("docker-compose.yml"));
    files.sort();
    files
}

/// Every document of every manifest; panics naming each file that does not parse.
pub fn all_docs() -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut problems = Problems::default();
    for file in manifest_files() {
        match load_docs(&file) {
            Ok(mut d) => docs.append(&mut d),
            Err(e) => problems.add(e),
        }
    }
    problems.assert_none("manifests that do not parse");
    docs
}

/// `KEY=value` lines, comments and blank lines skipped (kustomize's env files).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// A ConfigMap or Secret made by a kustomize generator.
#[derive(Debug, Clone)]
pub struct Generated {
    pub kind: &'static str,
    pub name: String,
    pub data: BTreeMap<String, String>,
    /// The kustomization that (last) generated it.
    pub source: PathBuf,
}

/// The objects one kustomization puts in a cluster, its bases included.
#[derive(Debug, Clone, Default)]
pub struct Installation {
    /// The kustomization's directory, relative to the root.
    pub dir: PathBuf,
    pub namespace: Option<String>,
    pub resources: Vec<Doc>,
    pub patches: Vec<Doc>,
    pub generated: Vec<Generated>,
    /// `images:` entries, bases first.
    pub images: Vec<Value>,
    /// Every file the kustomizations name, with the kustomization naming it.
    pub referenced: Vec<(PathBuf, PathBuf)>,
}

const KUSTOMIZATION: &str = "kustomization.yaml";

/// Directories holding a `kustomization.yaml` under `deploy/`.
pub fn kustomization_dirs() -> Vec<PathBuf> {
    manifest_files()
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == KUSTOMIZATION))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect()
}

/// The files of a generator entry (`files:` may be `key=path`), with the key each one gives.
fn generator_files(entry: &Value) -> Vec<(String, String)> {
    entry["files"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|f| match f.split_once('=') {
            Some((key, path)) => (key.to_owned(), path.to_owned()),
            None => (
                Path::new(f)
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                f.to_owned(),
            ),
        })
        .collect()
}

impl Installation {
    /// Resolves the kustomization in `dir` with its bases; every reference that does not resolve is a
    /// problem naming the kustomization file and the entry.
    pub fn load(dir: &Path, problems: &mut Problems) -> Self {
        let mut installation = Installation {
            dir: dir.to_path_buf(),
            ..Installation::default()
        };
        installation.add(dir, problems, 0);
        installation
    }

    fn add(&mut self, dir: &Path, problems: &mut Problems, depth: usize) {
        let kfile = dir.join(KUSTOMIZATION);
        if depth > 8 {
            problems.add(format!("{}: bases nest too deeply", kfile.display()));
            return;
        }
        let k = match load_docs(&kfile) {
            Ok(docs) if docs.len() == 1 => docs[0].value.clone(),
            Ok(_) => {
                problems.add(format!("{}: must hold one document", kfile.display()));
                return;
            }
            Err(e) => {
                problems.add(e);
                return;
            }
        };
        let entries = |key: &str| -> Vec<String> {
            k[key]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        for entry in entries("resources") {
            let Some(path) = self.resolve(&kfile, &entry, "resources entry", problems) else {
                continue;
            };
            if root().join(&path).is_dir() {
                if !root().join(&path).join(KUSTOMIZATION).is_file() {
                    problems.add(format!(
                        "{}: resources entry {entry:?} is a directory without a {KUSTOMIZATION}",
                        kfile.display()
                    ));
                    continue;
                }
                self.add(&path, problems, depth + 1);
            } else {
                match load_docs(&path) {
                    Ok(mut docs) => self.resources.append(&mut docs),
                    Err(e) => problems.add(e),
                }
            }
        }

        let mut patch_files: Vec<String> = entries("patchesStrategicMerge");
        for patch in k["patches"].as_sequence().into_iter().flatten() {
            if let Some(path) = patch["path"].as_str() {
                patch_files.push(path.to_owned());
            } else if let Some(inline) = patch["patch"].as_str() {
                match parse_yaml_docs(&kfile, inline) {
                    Ok(mut docs) => self.patches.append(&mut docs),
                    Err(e) => problems.add(e),
                }
            }
        }
        for entry in patch_files {
            if let Some(path) = self.resolve(&kfile, &entry, "patch", problems) {
                match load_docs(&path) {
                    Ok(mut docs) => self.patches.append(&mut docs),
                    Err(e) => problems.add(e),
                }
            }
        }

        for (key, kind) in [
            ("configMapGenerator", "ConfigMap"),
            ("secretGenerator", "Secret"),
        ] {
            for entry in k[key].as_sequence().into_iter().flatten() {
                let name = entry["name"].as_str().unwrap_or("").to_owned();
                let mut data = BTreeMap::new();
                for literal in entry["literals"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    match literal.split_once('=') {
                        Some((k, v)) => {
                            data.insert(k.to_owned(), v.to_owned());
                        }
                        None => problems.add(format!(
                            "{}: {key} {name}: literal {literal:?} is not KEY=value",
                            kfile.display()
                        )),
                    }
                }
                for env in entry["envs"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if let Some(path) =
                        self.resolve(&kfile, env, &format!("{key} {name} envs file"), problems)
                    {
                        data.extend(parse_env_file(&read(&path)));
                    }
                }
                for (file_key, file) in generator_files(entry) {
                    if let Some(path) =
                        self.resolve(&kfile, &file, &format!("{key} {name} file"), problems)
                    {
                        data.insert(file_key, read(&path));
                    }
                }
                let merge = entry["behavior"].as_str() == Some("merge");
                match self
                    .generated
                    .iter_mut()
                    .find(|g| g.kind == kind && g.name == name)
                {
                    Some(existing) if merge => {
                        existing.data.extend(data);
                        existing.source = kfile.clone();
                    }
                    Some(_) => problems.add(format!(
                        "{}: {key} {name} exists in a base; say `behavior: merge` or `replace`",
                        kfile.display()
                    )),
                    None if merge => problems.add(format!(
                        "{}: {key} {name} merges into a generator no base has",
                        kfile.display()
                    )),
                    None => self.generated.push(Generated {
                        kind,
                        name,
                        data,
                        source: kfile.clone(),
                    }),
                }
            }
        }

        self.images
            .extend(k["images"].as_sequence().into_iter().flatten().cloned());
        if let Some(ns) = k["namespace"].as_str() {
            self.namespace = Some(ns.to_owned());
        }
    }

    /// A pipeline's installation, with the Secrets it references (which live outside Git) made from its
    /// `secrets.env.example`.
    pub fn pipeline(dir: &Path, problems: &mut Problems) -> Self {
        let mut installation = Installation::load(dir, problems);
        // Secrets a pipeline references live outside Git; resolve them from its example file.
        let example = dir.join("secrets.env.example");
        if root().join(&example).is_file() {
            let data = parse_env_file(&read(&example));
            let names: BTreeSet<String> = installation
                .deployments()
                .flat_map(containers)
                .flat_map(|c| container_env(&installation, c))
                .filter_map(|(_, s)| match s {
                    EnvSource::Secret { name, .. } => Some(name),
                    _ => None,
                })
                .collect();
            for name in names {
                installation.generated.push(Generated {
                    kind: "Secret",
                    name,
                    data: data.clone(),
                    source: example.clone(),
                });
            }
        }
        installation
    }

    /// An entry of the kustomization `kfile`, relative to its directory; a problem when it is missing.
    fn resolve(
        &mut self,
        kfile: &Path,
        entry: &str,
        what: &str,
        problems: &mut Problems,
    ) -> Option<PathBuf> {
        let dir = kfile.parent().unwrap_or(Path::new(""));
        let Some(path) = normalize(&dir.join(entry)) else {
            problems.add(format!(
                "{}: {what} {entry:?} leaves the repository",
                kfile.display()
            ));
            return None;
        };
        if !root().join(&path).exists() {
            problems.add(format!(
                "{}: {what} {entry:?} does not exist",
                kfile.display()
            ));
            return None;
        }
        self.referenced.push((path.clone(), kfile.to_path_buf()));
        Some(path)
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.resources.iter().filter(move |d| d.kind() == kind)
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Doc> {
        self.of_kind("Deployment")
    }

    /// The data of a ConfigMap (generated or a resource).
    pub fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.object_data("ConfigMap", name)
    }

    /// The data of a Secret (generated, or a resource's `stringData`).
    pub fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.object_data("Secret", name)
    }

    fn object_data(&self, kind: &str, name: &str) -> Option<BTreeMap<String, String>> {
        if let Some(g) = self
            .generated
            .iter()
            .find(|g| g.kind == kind && g.name == name)
        {
            return Some(g.data.clone());
        }
        let doc = self.of_kind(kind).find(|d| d.name() == name)?;
        let field = if kind == "Secret" {
            "stringData"
        } else {
            "data"
        };
        Some(
            doc.value[field]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?)))
                .collect(),
        )
    }

    /// The image a container's `image` becomes after the `images:` transforms (the last entry wins).
    pub fn image_of(&self, image: &str) -> String {
        let (name, tag) = split_image(image);
        let mut name = name.to_owned();
        let mut tag = tag.map(str::to_owned);
        for entry in self.images.iter() {
            if entry["name"].as_str() == Some(name.as_str()) {
                if let Some(new) = entry["newName"].as_str() {
                    name = new.to_owned();
                }
                if let Some(new) = entry["newTag"].as_str() {
                    tag = Some(new.to_owned());
                }
            }
        }
        match tag {
            Some(tag) => format!("{name}:{tag}"),
            None => name,
        }
    }
}

/// `registry/name:tag` as (`registry/name`, `tag`); a port in the registry is not a tag.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (image, None),
    }
}

/// A YAML scalar as text (numbers and booleans as written).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether every label of a non-empty `selector` mapping is on `labels`.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(selector) = selector.as_mapping() else {
        return false;
    };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn pod_spec(deployment: &Doc) -> &Value {
    &deployment.value["spec"]["template"]["spec"]
}

pub fn pod_labels(deployment: &Doc) -> &Value {
    &deployment.value["spec"]["template"]["metadata"]["labels"]
}

pub fn containers(deployment: &Doc) -> Vec<&Value> {
    pod_spec(deployment)["containers"]
        .as_sequence()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// The container port a probe, Service or monitor names, by name or by number.
pub fn container_port(container: &Value, port: &Value) -> Option<u16> {
    let ports = container["ports"].as_sequence()?;
    let number = |p: &Value| {
        p["containerPort"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
    };
    match port {
        Value::String(name) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name.as_str()))
            .and_then(number),
        Value::Number(n) => ports
            .iter()
            .filter_map(number)
            .find(|p| Some(u64::from(*p)) == n.as_u64()),
        _ => None,
    }
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSource {
    Value(String),
    Secret { name: String, key: String },
    ConfigMap { name: String, key: String },
    Field(String),
    Unknown,
}

/// A container's environment: `env` entries, and the keys of `envFrom` ConfigMaps and Secrets (those the
/// installation holds).
pub fn container_env(installation: &Installation, container: &Value) -> Vec<(String, EnvSource)> {
    let mut env = Vec::new();
    for from in container["envFrom"].as_sequence().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            for key in installation.config_map(name).unwrap_or_default().keys() {
                env.push((
                    format!("{prefix}{key}"),
                    EnvSource::ConfigMap {
                        name: name.to_owned(),
                        key: key.clone(),
                    },
                ));
            }
        }
        if let Some(name) = from["secretRef"]["name"].as_str() {
            for key in installation.secret(name).unwrap_or_default().keys() {
                env.push((
                    format!("{prefix}{key}"),
                    EnvSource::Secret {
                        name: name.to_owned(),
                        key: key.clone(),
                    },
                ));
            }
        }
    }
    for entry in container["env"].as_sequence().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or("").to_owned();
        let from = &entry["valueFrom"];
        let source = if let Some(v) = entry.get("value") {
            EnvSource::Value(scalar(v).unwrap_or_default())
        } else if let (Some(n), Some(k)) = (
            from["secretKeyRef"]["name"].as_str(),
            from["secretKeyRef"]["key"].as_str(),
        ) {
            EnvSource::Secret {
                name: n.to_owned(),
                key: k.to_owned(),
            }
        } else if let (Some(n), Some(k)) = (
            from["configMapKeyRef"]["name"].as_str(),
            from["configMapKeyRef"]["key"].as_str(),
        ) {
            EnvSource::ConfigMap {
                name: n.to_owned(),
                key: k.to_owned(),
            }
        } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            EnvSource::Field(path.to_owned())
        } else {
            EnvSource::Unknown
        };
        env.retain(|(n, _)| *n != name);
        env.push((name, source));
    }
    env
}

/// What a pod sees for an environment variable; a field reference becomes a stand-in value of the
/// shape Kubernetes gives it.
pub fn resolve_env(installation: &Installation, source: &EnvSource) -> Result<String, String> {
    match source {
        EnvSource::Value(v) => Ok(v.clone()),
        EnvSource::Secret { name, key } => installation
            .secret(name)
            .ok_or_else(|| format!("no Secret {name} in the installation"))?
            .get(key)
            .cloned()
            .ok_or_else(|| format!("Secret {name} has no key {key}")),
        EnvSource::ConfigMap { name, key } => installation
            .config_map(name)
            .ok_or_else(|| format!("no ConfigMap {name} in the installation"))?
            .get(key)
            .cloned()
            .ok_or_else(|| format!("ConfigMap {name} has no key {key}")),
        EnvSource::Field(path) if path == "metadata.name" => {
            Ok("logs-ingest-engine-6d9c7b8f5-x2x9q".to_owned())
        }
        EnvSource::Field(path) if path == "status.podIP" => Ok("10.244.1.23".to_owned()),
        EnvSource::Field(path) => Ok(format!("field-{path}")),
        EnvSource::Unknown => Err("an env entry with neither a value nor a known source".into()),
    }
}

/// The autoscaler installations: every overlay under `deploy/kubernetes/overlays/`.
pub fn autoscaler_overlays() -> Vec<PathBuf> {
    kustomization_dirs()
        .into_iter()
        .filter(|d| d.starts_with("deploy/kubernetes/overlays"))
        .collect()
}

/// The pipelines' installations: every kustomization under `deploy/pipelines/`.
pub fn pipeline_dirs() -> Vec<PathBuf> {
    kustomization_dirs()
        .into_iter()
        .filter(|d| d.starts_with("deploy/pipelines"))
        .collect()
}

/// Whether a pipeline's installation runs Flink jobs through the Flink Kubernetes operator (it holds a
/// FlinkDeployment) rather than the engine.
fn runs_flink(dir: &Path) -> bool {
    Installation::load(dir, &mut Problems::default())
        .of_kind("FlinkDeployment")
        .next()
        .is_some()
}

/// The pipelines the engine runs.
pub fn engine_pipeline_dirs() -> Vec<PathBuf> {
    pipeline_dirs()
        .into_iter()
        .filter(|d| !runs_flink(d))
        .collect()
}

/// The pipelines of Flink jobs.
pub fn flink_pipeline_dirs() -> Vec<PathBuf> {
    pipeline_dirs()
        .into_iter()
        .filter(|d| runs_flink(d))
        .collect()
}

/// Whether a container runs the engine (`command: [pipeline-engine]`); every other container of the
/// image runs the image's entrypoint, the autoscaler.
pub fn runs_engine(container: &Value) -> bool {
    container["command"][0].as_str() == Some("pipeline-engine")
}

/// The strings of a YAML sequence.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(scalar)
        .collect()
}
