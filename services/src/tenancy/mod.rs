//! Teams and what a token may do. A token belongs to a team and has a role; a cluster belongs to the team
//! that subscribed it. The rules of who may see and change what are here, in one place; the API, the
//! status page and the engine webhook ask them.

pub mod secrets;
mod tokens;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use tokens::{TokenError, TokenStore, digest, sha256_hex};

/// The team that a plain `AUTOSCALER_API_TOKENS` token, and every cluster subscribed before teams
/// existed, belongs to. Its admins are the platform's operators: they see every team.
pub const DEFAULT_TEAM: &str = "default";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads its team's clusters, decisions and dry runs.
    Viewer,
    /// And subscribes, replaces, pauses, resumes and deletes them.
    Editor,
    /// And reads its team's audit log; an admin of the default team sees and changes every team's.
    Admin,
    /// Not an API token: a pipeline engine instance announcing itself for its team's clusters.
    Engine,
}

/// Who presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name from the token file (never the token).
    pub name: String,
    pub team: String,
    pub role: Role,
    /// For engine tokens: the clusters it may announce for; `None` is every cluster of its team.
    pub clusters: Option<Vec<String>>,
}

/// Why a principal may not do something; each maps to a refusal reason and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The role does not allow it (403: the token is known to be valid, nothing about the cluster leaks).
    Role,
    /// The cluster belongs to another team (404: its existence is not told).
    OtherTeam,
}

impl Denied {
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Role => "role",
            Denied::OtherTeam => "other_team",
        }
    }
}

impl Principal {
    /// Admins of the default team operate the whole service.
    pub fn sees_all_teams(&self) -> bool {
        self.role == Role::Admin && self.team == DEFAULT_TEAM
    }

    /// The team filter for reads and writes: `None` for every team.
    pub fn scope(&self) -> Option<&str> {
        (!self.sees_all_teams()).then_some(self.team.as_str())
    }

    /// May use the API at all (engine tokens may not).
    pub fn may_read(&self) -> Result<(), Denied> {
        match self.role {
            Role::Viewer | Role::Editor | Role::Admin => Ok(()),
            Role::Engine => Err(Denied::Role),
        }
    }

    pub fn may_write(&self) -> Result<(), Denied> {
        match self.role {
            Role::Editor | Role::Admin => Ok(()),
            Role::Viewer | Role::Engine => Err(Denied::Role),
        }
    }

    pub fn may_read_audit(&self) -> Result<(), Denied> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(Denied::Role),
        }
    }

    /// Whether a cluster of `team` is visible to this principal at all.
    pub fn may_see(&self, team: &str) -> Result<(), Denied> {
        if self.sees_all_teams() || self.team == team {
            Ok(())
        } else {
            Err(Denied::OtherTeam)
        }
    }

    /// Whether an engine token may announce an instance of `cluster`, which belongs to `team`.
    pub fn may_announce(&self, cluster: &str, team: &str) -> Result<(), Denied> {
        if self.role != Role::Engine {
            return Err(Denied::Role);
        }
        let listed = self
            .clusters
            .as_ref()
            .is_none_or(|clusters| clusters.iter().any(|c| c == cluster));
        if self.team == team && listed {
            Ok(())
        } else {
            Err(Denied::OtherTeam)
        }
    }
}

/// A team name: 1 to 63 lowercase letters, digits and dashes, starting with a letter, so that it is a
/// directory name and, with dashes as underscores, part of an environment variable name, both without
/// collisions.
pub fn check_team_name(team: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&team.len())
        && team.starts_with(|c: char| c.is_ascii_lowercase())
        && team
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{team:?} is not a team name: 1 to 63 lowercase letters, digits and dashes, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(team: &str, role: Role) -> Principal {
        Principal {
            name: "t".into(),
            team: team.into(),
            role,
            clusters: None,
        }
    }

    #[test]
    fn roles_and_teams_decide_what_a_token_may_do() {
        let viewer = principal("a", Role::Viewer);
        assert_eq!(viewer.may_write(), Err(Denied::Role));
        assert_eq!(viewer.may_see("a"), Ok(()));
        assert_eq!(viewer.may_see("b"), Err(Denied::OtherTeam));
        assert_eq!(viewer.may_read_audit(), Err(Denied::Role));
        let admin = principal("a", Role::Admin);
        assert_eq!(admin.may_see("b"), Err(Denied::OtherTeam));
        assert_eq!(admin.scope(), Some("a"));
        let operator = principal(DEFAULT_TEAM, Role::Admin);
        assert_eq!(operator.may_see("b"), Ok(()));
        assert_eq!(operator.scope(), None);
        let default_editor = principal(DEFAULT_TEAM, Role::Editor);
        assert_eq!(default_editor.may_see("b"), Err(Denied::OtherTeam));
        let engine = principal("a", Role::Engine);
        assert_eq!(engine.may_read(), Err(Denied::Role));
        assert_eq!(engine.may_announce("x", "a"), Ok(()));
        assert_eq!(engine.may_announce("x", "b"), Err(Denied::OtherTeam));
        let listed = Principal {
            clusters: Some(vec!["x".into()]),
            ..engine
        };
        assert_eq!(listed.may_announce("y", "a"), Err(Denied::OtherTeam));
        assert_eq!(viewer.may_announce("x", "a"), Err(Denied::Role));
    }

    #[test]
    fn team_names_are_safe_as_directories_and_variable_names() {
        for good in ["a", "team-a", "payments2"] {
            assert!(check_team_name(good).is_ok(), "{good}");
        }
        for bad in ["", "A", "a_b", "../x", "-a", "1a", "a/b", &"a".repeat(64)] {
            assert!(check_team_name(bad).is_err(), "{bad}");
        }
    }
}
