//! UI tests of every diagnostic `#[retry]` emits, and of shapes that must compile.
//! Pinned to the stable toolchain; regenerate with `TRYBUILD=overwrite cargo test --test ui`
//! and read every regenerated `.stderr` before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
