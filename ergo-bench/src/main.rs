//! Benchmarks of ergo (see README).

fn main() {}
