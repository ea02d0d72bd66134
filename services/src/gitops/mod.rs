//! Writing a scale back to Git. So far: the surgical edit of one number in a YAML file.

mod yaml;

pub use yaml::{YamlEditError, read_scale, set_scale};
