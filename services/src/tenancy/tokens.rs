//! The tokens the service accepts: the token file (`AUTOSCALER_API_TOKENS_FILE`), which holds each token's
//! SHA-256 digest with its name, team and role, plus plain tokens from the environment for local use.
//!
//! SHA-256 rather than a password hash (argon2, bcrypt): the tokens are long random strings, so a fast
//! hash leaves nothing to guess, and every request is checked against every digest, which a deliberately
//! slow hash would turn into a way to exhaust the CPU.
//!
//! The file is read again when it changes (its modification time, length or inode), at the next token
//! check: a rotation takes effect without a restart. A file that no longer parses keeps the tokens read
//! last and is logged, so a typo does not lock everyone out.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::SystemTime,
};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{DEFAULT_TEAM, Principal, Role, check_team_name};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token file {path} cannot be read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file is not valid YAML of the expected shape: {0}")]
    Parse(String),
    #[error("the token file's entry {entry}: {problem}")]
    Invalid { entry: usize, problem: String },
}

/// The token file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    team: String,
    role: Role,
    /// Hex SHA-256 of the token.
    sha256: String,
    /// Engine tokens only: the clusters it may announce for (default: all of its team's).
    #[serde(default)]
    clusters: Option<Vec<String>>,
}

#[derive(Clone)]
struct Entry {
    principal: Principal,
    digest: [u8; 32],
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

struct Loaded {
    stamp: Option<Stamp>,
    entries: Arc<[Entry]>,
}

pub struct TokenStore {
    plain: Vec<Entry>,
    file: Option<PathBuf>,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenStore({} plain, file {:?})",
            self.plain.len(),
            self.file
        )
    }
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex of a token's SHA-256, as the token file wants it.
pub fn sha256_hex(token: &str) -> String {
    digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl TokenStore {
    /// Plain API tokens are admins of the default team; plain engine tokens announce for the default
    /// team's clusters. The file, when given, must be readable and valid now.
    pub fn new(
        plain_api: &[String],
        plain_engine: &[String],
        file: Option<PathBuf>,
    ) -> Result<Self, TokenError> {
        let plain = plain_api
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t, Role::Admin, "AUTOSCALER_API_TOKENS"))
            .chain(
                plain_engine
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i, t, Role::Engine, "AUTOSCALER_ENGINE_TOKENS")),
            )
            .map(|(i, token, role, setting)| Entry {
                principal: Principal {
                    name: format!("{setting}[{}]", i + 1),
                    team: DEFAULT_TEAM.to_owned(),
                    role,
                    clusters: None,
                },
                digest: digest(token),
            })
            .collect();
        let loaded = match &file {
            Some(path) => {
                let (stamp, entries) = read_file(path)?;
                Loaded {
                    stamp: Some(stamp),
                    entries: entries.into(),
                }
            }
            None => Loaded {
                stamp: None,
                entries: Arc::new([]),
            },
        };
        Ok(Self {
            plain,
            file,
            loaded: RwLock::new(loaded),
        })
    }

    /// Whether any token can use the API.
    pub fn has_api_tokens(&self) -> bool {
        self.entries()
            .iter()
            .any(|e| e.principal.role != Role::Engine)
    }

    /// The principal of `presented`, and the digest the status page keys its sessions with. Every
    /// configured digest is compared, in constant time, so neither the position nor the length of a
    /// match leaks.
    pub fn authenticate(&self, presented: &str) -> Option<(Principal, [u8; 32])> {
        let presented = digest(presented);
        let mut found = None;
        for entry in self.entries().iter() {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some((entry.principal.clone(), entry.digest));
            }
        }
        found
    }

    /// Every token's principal and digest, for the status page's session check.
    pub fn keys(&self) -> Vec<(Principal, [u8; 32])> {
        self.entries()
            .iter()
            .map(|e| (e.principal.clone(), e.digest))
            .collect()
    }

    fn entries(&self) -> Vec<Entry> {
        self.refresh();
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        self.plain
            .iter()
            .chain(loaded.entries.iter())
            .cloned()
            .collect()
    }

    /// Reads the file again when it changed since the last read.
    fn refresh(&self) {
        let Some(path) = &self.file else { return };
        let current = stamp(path).ok();
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if current.is_some() && loaded.stamp == current {
                return;
            }
        }
        match read_file(path) {
            Ok((stamp, entries)) => {
                let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
                if loaded.stamp != Some(stamp) {
                    tracing::info!(tokens = entries.len(), "the token file was read again");
                }
                *loaded = Loaded {
                    stamp: Some(stamp),
                    entries: entries.into(),
                };
            }
            Err(e) => {
                tracing::error!(error = %e, "the token file is invalid; keeping the tokens read last");
                // A broken file is read again when it changes; a missing one at every check.
                self.loaded.write().unwrap_or_else(|e| e.into_inner()).stamp = current;
            }
        }
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

fn read_file(path: &Path) -> Result<(Stamp, Vec<Entry>), TokenError> {
    let read = |source| TokenError::Read {
        path: path.to_owned(),
        source,
    };
    let stamp = stamp(path).map_err(read)?;
    let text = std::fs::read_to_string(path).map_err(read)?;
    Ok((stamp, parse(&text)?))
}

fn parse(text: &str) -> Result<Vec<Entry>, TokenError> {
    let file: TokenFile =
        serde_yaml::from_str(text).map_err(|e| TokenError::Parse(e.to_string()))?;
    let mut entries: Vec<Entry> = Vec::with_capacity(file.tokens.len());
    for (i, entry) in file.tokens.into_iter().enumerate() {
        let invalid = |problem: String| TokenError::Invalid {
            entry: i + 1,
            problem,
        };
        if entry.name.trim().is_empty() || entry.name.len() > 64 {
            return Err(invalid("name must be 1 to 64 characters".into()));
        }
        if entries.iter().any(|e| e.principal.name == entry.name) {
            return Err(invalid(format!("the name {:?} is used twice", entry.name)));
        }
        check_team_name(&entry.team).map_err(|p| invalid(format!("team: {p}")))?;
        let digest = unhex(&entry.sha256.to_ascii_lowercase()).ok_or_else(|| {
            invalid("sha256 must be the 64 hex digits of the token's SHA-256".into())
        })?;
        if entry.clusters.is_some() && entry.role != Role::Engine {
            return Err(invalid("clusters is for engine tokens only".into()));
        }
        entries.push(Entry {
            principal: Principal {
                name: entry.name,
                team: entry.team,
                role: entry.role,
                clusters: entry.clusters,
            },
            digest,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "team-a-token-0123456789abcdef";
    const B: &str = "team-b-token-0123456789abcdef";

    fn file_with(entries: &[(&str, &str, &str, &str)]) -> String {
        let mut text = String::from("tokens:\n");
        for (name, team, role, token) in entries {
            text.push_str(&format!(
                "  - name: {name}\n    team: {team}\n    role: {role}\n    sha256: {}\n",
                sha256_hex(token)
            ));
        }
        text
    }

    #[test]
    fn plain_tokens_are_admins_of_the_default_team() {
        let store = TokenStore::new(&[A.to_owned()], &[B.to_owned()], None).expect("store");
        let (admin, _) = store.authenticate(A).expect("known");
        assert_eq!(
            (admin.team.as_str(), admin.role),
            (DEFAULT_TEAM, Role::Admin)
        );
        let (engine, _) = store.authenticate(B).expect("known");
        assert_eq!(engine.role, Role::Engine);
        assert!(store.authenticate("team-a-token-0123456789abcde").is_none());
        assert!(store.has_api_tokens());
    }

    #[test]
    fn the_file_names_teams_and_roles_and_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tokens.yaml");
        std::fs::write(&path, file_with(&[("ci-a", "team-a", "editor", A)])).expect("write");
        let store = TokenStore::new(&[], &[], Some(path.clone())).expect("store");
        let (a, _) = store.authenticate(A).expect("known");
        assert_eq!(
            (a.name.as_str(), a.team.as_str(), a.role),
            ("ci-a", "team-a", Role::Editor)
        );
        assert!(store.authenticate(B).is_none());

        // Rotation: A out, B in, no restart.
        std::fs::write(
            &path,
            file_with(&[
                ("ci-b", "team-b", "viewer", B),
                ("x", "team-b", "admin", "another-token-0123456789"),
            ]),
        )
        .expect("rewrite");
        assert!(store.authenticate(A).is_none());
        assert_eq!(
            store.authenticate(B).expect("rotated in").0.role,
            Role::Viewer
        );

        // A broken file keeps what was read last.
        std::fs::write(&path, "tokens: [ {name: broken").expect("break");
        assert!(store.authenticate(B).is_some());
    }

    #[test]
    fn a_file_with_a_plain_token_or_a_bad_entry_is_refused() {
        for (text, expected) in [
            (
                "tokens:\n  - {name: a, team: t, role: admin, token: plain-text-token-0123}\n",
                "unknown field `token`",
            ),
            (
                "tokens:\n  - {name: a, team: T, role: admin, sha256: 00}\n",
                "team",
            ),
            (
                &format!(
                    "tokens:\n  - {{name: a, team: t, role: admin, sha256: {}}}\n",
                    "0".repeat(63)
                ),
                "sha256",
            ),
            (
                &format!(
                    "tokens:\n  - {{name: a, team: t, role: root, sha256: {}}}\n",
                    "0".repeat(64)
                ),
                "unknown variant",
            ),
            (
                &format!(
                    "tokens:\n  - {{name: a, team: t, role: viewer, sha256: {}, clusters: [x]}}\n",
                    "0".repeat(64)
                ),
                "engine tokens only",
            ),
        ] {
            let error = match parse(text) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted {text}"),
            };
            assert!(error.contains(expected), "{error} for {text}");
        }
    }
}
