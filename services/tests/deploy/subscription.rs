//! What every pipeline's subscription must agree with, whatever runs the pipeline: the service's own
//! validation, the scale file the autoscaler edits (read and edited with the Git writer's code) and the
//! Argo CD Application that deploys the directory.

use std::path::Path;

use autoscaler::{
    cluster::{ClusterSpec, ValidationContext},
    gitops::{read_scale, set_scale},
};
use serde_yaml::Value;

use crate::{
    manifests::{Doc, Installation, Problems, load_docs, normalize, read, root},
    processes::subscriptions,
};

/// The value at a dotted key path in a YAML document, read with serde_yaml (a second reader beside the
/// autoscaler's line-based one).
pub fn yaml_at<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |v, k| v.get(k))
}

/// Sets the value at a dotted key path that exists.
fn yaml_set(value: &mut Value, key: &str, new: Value) {
    if let Some(slot) = key.split('.').try_fold(value, |v, k| v.get_mut(k)) {
        *slot = new;
    }
}

/// The subscription beside a pipeline's kustomization, as the service parses it, and its file for
/// messages; a problem when it is missing, does not parse or fails the service's validation (as
/// `POST /api/v1/clusters` runs it; the workers have a secrets directory, checked with the overlay).
pub fn pipeline_subscription(dir: &Path, problems: &mut Problems) -> Option<(String, ClusterSpec)> {
    let file = dir.join("subscription.json");
    let at = file.display().to_string();
    let Some((_, spec)) = subscriptions().into_iter().find(|(f, _)| *f == file) else {
        problems.add(format!("{}: no subscription.json beside it", dir.display()));
        return None;
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => {
            problems.add(e);
            return None;
        }
    };
    if let Err(fields) = spec.validate(&ValidationContext {
        secrets_dir_configured: true,
        ..ValidationContext::default()
    }) {
        for f in fields {
            problems.add(format!("{at}: {}: {}", f.field, f.problem));
        }
    }
    Some((at, spec))
}

/// The scale file against the subscription: `git.path` is a patch of this kustomization that patches
/// `target` (the object whose number it is) at `key`, the Git writer reads and edits the number there
/// and nothing else, and the number is within the policy. `target` itself must not hold the number.
/// Returns the number.
pub fn check_scale_file(
    at: &str,
    spec: &ClusterSpec,
    installation: &Installation,
    target: &Doc,
    key: &str,
    problems: &mut Problems,
) -> Option<u64> {
    let dir = &installation.dir;
    problems.check(spec.git.key == key, || {
        format!(
            "{at}: git.key {} is not {key}, the number of {} the patch sets",
            spec.git.key,
            target.at()
        )
    });
    problems.check(yaml_at(&target.value, key).is_none(), || {
        format!(
            "{}: sets {key}; the scale file the autoscaler writes must be its only source",
            target.at()
        )
    });
    let scale_path = Path::new(&spec.git.path).to_path_buf();
    if !root().join(&scale_path).is_file() {
        problems.add(format!(
            "{at}: git.path {} is no file of this repository",
            spec.git.path
        ));
        return None;
    }
    problems.check(
        normalize(&scale_path).as_deref().and_then(Path::parent) == Some(dir.as_path()),
        || {
            format!(
                "{at}: git.path {} is not in {}",
                spec.git.path,
                dir.display()
            )
        },
    );
    problems.check(
        installation
            .referenced
            .iter()
            .any(|(f, _)| *f == scale_path),
        || {
            format!(
                "{at}: git.path {} is not listed by {}/kustomization.yaml",
                spec.git.path,
                dir.display()
            )
        },
    );
    let text = read(&scale_path);
    let scale = match read_scale(&text, &spec.git.key) {
        Ok(n) => n,
        Err(e) => {
            problems.add(format!(
                "{at}: the autoscaler cannot read git.key {} in {}: {e}",
                spec.git.key, spec.git.path
            ));
            return None;
        }
    };
    let scale_docs = load_docs(&scale_path).unwrap_or_default();
    let [scale_doc] = scale_docs.as_slice() else {
        problems.add(format!(
            "{}: must hold one document (the patch)",
            spec.git.path
        ));
        return None;
    };
    problems.check(
        scale_doc.kind() == target.kind() && scale_doc.name() == target.name(),
        || {
            format!(
                "{}: patches {} {}, not {}",
                spec.git.path,
                scale_doc.kind(),
                scale_doc.name(),
                target.at()
            )
        },
    );
    problems.check(
        yaml_at(&scale_doc.value, &spec.git.key).and_then(Value::as_u64) == Some(scale),
        || {
            format!(
                "{at}: the autoscaler reads {scale} at {}, a YAML parser reads {:?}",
                spec.git.key,
                yaml_at(&scale_doc.value, &spec.git.key)
            )
        },
    );
    problems.check(
        (spec.policy.min_scale..=spec.policy.max_scale)
            .contains(&u32::try_from(scale).unwrap_or(u32::MAX)),
        || {
            format!(
                "{at}: the scale in {} ({scale}) is outside policy.min_scale..=max_scale",
                spec.git.path
            )
        },
    );
    // The autoscaler's edit keeps a patch that still means the same, but for the number.
    match set_scale(&text, &spec.git.key, scale + 1) {
        Ok(edited) => {
            let mut after: Value =
                serde_yaml::from_str(&edited).expect("the edited scale file parses");
            problems.check(
                yaml_at(&after, &spec.git.key).and_then(Value::as_u64) == Some(scale + 1),
                || {
                    format!(
                        "{at}: after the autoscaler's edit, {} does not hold the new scale",
                        spec.git.path
                    )
                },
            );
            yaml_set(&mut after, &spec.git.key, Value::from(scale));
            problems.check(after == scale_doc.value, || {
                format!(
                    "{at}: the autoscaler's edit of {} changes more than the number",
                    spec.git.path
                )
            });
        }
        Err(e) => problems.add(format!(
            "{at}: the autoscaler cannot edit {}: {e}",
            spec.git.path
        )),
    }
    Some(scale)
}

/// The Argo CD Application the subscription names: it deploys this directory from the subscription's
/// repository and branch into the installation's namespace, in its project, with the sync mode the
/// subscription expects, and does not ignore the number the autoscaler writes.
pub fn check_application(
    at: &str,
    spec: &ClusterSpec,
    installation: &Installation,
    applications: &[&Doc],
    problems: &mut Problems,
) {
    let dir = &installation.dir;
    let Some(app) = applications
        .iter()
        .find(|a| a.name() == spec.argocd.application)
    else {
        problems.add(format!(
            "{at}: argocd.application {} is no Application under deploy/",
            spec.argocd.application
        ));
        return;
    };
    let source = &app.value["spec"]["source"];
    problems.check(source["path"].as_str() == dir.to_str(), || {
        format!(
            "{}: source.path {:?} is not {}, the directory holding the scale file",
            app.at(),
            source["path"],
            dir.display()
        )
    });
    problems.check(
        source["repoURL"].as_str() == Some(spec.git.repository.as_str()),
        || {
            format!(
                "{}: source.repoURL {:?} is not {at}'s git.repository {}",
                app.at(),
                source["repoURL"],
                spec.git.repository
            )
        },
    );
    problems.check(
        source["targetRevision"].as_str() == Some(spec.git.branch.as_str()),
        || {
            format!(
                "{}: source.targetRevision {:?} is not {at}'s git.branch {}",
                app.at(),
                source["targetRevision"],
                spec.git.branch
            )
        },
    );
    if let Some(project) = &spec.argocd.project {
        problems.check(
            app.value["spec"]["project"].as_str() == Some(project.as_str()),
            || {
                format!(
                    "{}: spec.project {:?} is not {at}'s argocd.project {project}",
                    app.at(),
                    app.value["spec"]["project"]
                )
            },
        );
    }
    let automated = !app.value["spec"]["syncPolicy"]["automated"].is_null();
    problems.check(automated == spec.argocd.auto_sync, || {
        format!(
            "{}: automated sync is {automated} but {at}'s argocd.auto_sync is {}",
            app.at(),
            spec.argocd.auto_sync
        )
    });
    problems.check(
        app.value["spec"]["destination"]["namespace"].as_str() == installation.namespace.as_deref(),
        || {
            format!(
                "{}: destination.namespace is not {}'s namespace {:?}",
                app.at(),
                dir.display(),
                installation.namespace
            )
        },
    );
    let field = spec.git.key.rsplit('.').next().unwrap_or_default();
    let ignores =
        serde_yaml::to_string(&app.value["spec"]["ignoreDifferences"]).unwrap_or_default();
    problems.check(!ignores.contains(field), || {
        format!(
            "{}: ignores differences in {field}, which come from Git",
            app.at()
        )
    });
}
