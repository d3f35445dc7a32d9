//! Examples and integration tests of ergo.
