//! Each team's secret store: files under `<secrets dir>/<team>/`, and environment variables under the
//! team's prefix (by default `AUTOSCALER_TEAM_<TEAM>_SECRET_`, the team in capitals with dashes as
//! underscores). A spec's reference resolves only inside its team's store, and never to one of the
//! service's own settings, whatever the prefix.

use std::path::{Component, Path, PathBuf};

use clap::CommandFactory;

use crate::cluster::SecretRef;

/// The default template of a team's environment prefix; `{team}` is replaced by the team's name in
/// capitals, dashes as underscores.
pub const DEFAULT_ENV_PREFIX: &str = "AUTOSCALER_TEAM_{team}_SECRET_";

/// Said by every refusal of a reference outside the team's store (the API counts those refusals).
pub const OUTSIDE_STORE: &str = "outside the team's secret store";

/// The environment prefix of `team` under `template`.
pub fn env_prefix(template: &str, team: &str) -> String {
    template.replace("{team}", &team.to_ascii_uppercase().replace('-', "_"))
}

/// The service's own settings: every environment variable of its configuration, and the ones the
/// processes it runs read. None is ever a team's secret.
fn is_service_setting(name: &str) -> bool {
    const OTHERS: [&str; 6] = [
        "DATABASE_URL",
        "RUST_LOG",
        "HOME",
        "PATH",
        "GIT_ASKPASS",
        "SSH_AUTH_SOCK",
    ];
    OTHERS.contains(&name)
        || crate::config::Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .any(|env| env == name)
}

/// Whether `secret` lies inside `team`'s store; the problem, naming the store, when not.
pub fn check(
    secret: &SecretRef,
    team: &str,
    env_template: &str,
    dir_configured: bool,
) -> Result<(), String> {
    match secret {
        SecretRef::Env(name) => {
            let prefix = env_prefix(env_template, team);
            let inside = name.len() > prefix.len() && name.starts_with(&prefix);
            if inside && !is_service_setting(name) {
                Ok(())
            } else {
                Err(format!(
                    "env {name:?} is {OUTSIDE_STORE}: team {team:?} may name only variables that start with {prefix:?}"
                ))
            }
        }
        SecretRef::File(path) => {
            if !stays_inside(Path::new(path)) {
                return Err(format!(
                    "file {path:?} is {OUTSIDE_STORE}: a relative path without `..`, resolved under <secrets dir>/{team}/"
                ));
            }
            if dir_configured {
                Ok(())
            } else {
                Err("file secrets need the service's secrets directory (AUTOSCALER_SECRETS_DIR), which is not configured".to_owned())
            }
        }
    }
}

/// The file of a reference inside `team`'s directory under `dir`; `None` for a path that would leave it.
pub fn file_path(dir: &Path, team: &str, path: &str) -> Option<PathBuf> {
    stays_inside(Path::new(path)).then(|| dir.join(team).join(path))
}

fn stays_inside(path: &Path) -> bool {
    path.components().count() > 0 && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_stay_in_the_team_store_and_never_name_the_services_settings() {
        let ok = |s: SecretRef| check(&s, "team-a", DEFAULT_ENV_PREFIX, true);
        assert_eq!(
            env_prefix(DEFAULT_ENV_PREFIX, "team-a"),
            "AUTOSCALER_TEAM_TEAM_A_SECRET_"
        );
        assert!(ok(SecretRef::Env("AUTOSCALER_TEAM_TEAM_A_SECRET_GIT".into())).is_ok());
        for outside in [
            "AUTOSCALER_TEAM_TEAM_B_SECRET_GIT",
            "AUTOSCALER_TEAM_TEAM_A_SECRET_",
            "AUTOSCALER_API_TOKENS",
            "DATABASE_URL",
            "GITHUB_TOKEN",
        ] {
            let problem = ok(SecretRef::Env(outside.into())).expect_err(outside);
            assert!(problem.contains(OUTSIDE_STORE), "{problem}");
        }
        // Even a careless prefix does not reach the service's settings.
        assert!(
            check(
                &SecretRef::Env("AUTOSCALER_API_TOKENS".into()),
                "api",
                "AUTOSCALER_{team}_",
                true
            )
            .is_err()
        );
        assert!(
            check(
                &SecretRef::Env("AUTOSCALER_API_X".into()),
                "api",
                "AUTOSCALER_{team}_",
                true
            )
            .is_ok()
        );
        assert!(ok(SecretRef::File("git/token".into())).is_ok());
        for outside in ["../team-b/git", "/etc/passwd", "a/../../b", ""] {
            assert!(ok(SecretRef::File(outside.into())).is_err(), "{outside}");
        }
        assert_eq!(
            file_path(Path::new("/s"), "team-a", "git"),
            Some(PathBuf::from("/s/team-a/git"))
        );
        assert_eq!(file_path(Path::new("/s"), "team-a", "../team-b/git"), None);
    }
}
