//! Transform stage: the units that flow between stages (`record`), the JSON parser (`parse`), the
//! configured transform (`apply`), index routing (`route`) and the N process tasks (`process`).

pub mod apply;
pub mod parse;
pub mod process;
pub mod record;
pub mod route;

pub use apply::Transform;
