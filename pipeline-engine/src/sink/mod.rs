//! Sink stage: the `_bulk` wire format (`bulk`), retry backoff (`retry`), the HTTP client (`client`),
//! the M sink tasks that batch, send and classify (`stage`), and dead-letter destinations
//! (`dead_letter`).

pub mod bulk;
pub mod client;
pub mod dead_letter;
pub mod retry;
pub mod stage;
