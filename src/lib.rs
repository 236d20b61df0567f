//! Integration tests, examples and benchmarks of `#[retry]`; nothing to use here.
