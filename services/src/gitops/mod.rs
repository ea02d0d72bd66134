//! Writing a scale back to Git: the byte-preserving YAML edit, and commit and push to any Git remote.

mod repo;
mod yaml;

pub use repo::{Committed, GitError, GitWriter, ScaleChange};
pub use yaml::{YamlEditError, read_scale, set_scale};
