//! Port contracts. Each function takes a fresh adapter and asserts what every adapter of that
//! port must do; `tests/tests/embedded.rs` and `tests/tests/aws.rs` run them all.
pub mod audit;
pub mod keys;
pub mod store;
