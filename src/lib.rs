//! Examples and integration tests of ergo.
//!
//! The library part holds what an example and a test share: [`pipeline`], the self-healing
//! worker pipeline of `examples/pipeline.rs` and `tests/pipeline_heals.rs`.

pub mod broker_free;
pub mod chat;
pub mod cluster;
pub mod http_counter;
pub mod multiprocess;
pub mod pipeline;
