//! Writing a scale back to Git: the byte-preserving YAML edit, and commit and push to any Git remote.

mod git;
mod repo;
mod yaml;

pub use git::Credential;
pub use repo::{FileCommit, FileState, GitError, GitWriter, Remote, ScaleChange, WriteOutcome};
pub use yaml::{YamlEditError, read_scale, set_scale};
