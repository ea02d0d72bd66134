//! Source stage: the consumer thread, the per-partition offset tracker, and completion (the only way
//! records are marked done and offsets advance).

pub mod completion;
pub mod consume;
pub mod offsets;
