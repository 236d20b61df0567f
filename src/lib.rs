//! Integration tests of `#[retry]`; nothing to use here. The README's Rust example is
//! compiled and run as a doc test of this crate, so it cannot go stale.
#![doc = include_str!("../README.md")]
