//! The derive's compile errors: each case in tests/ui is a program that must not compile, with the
//! exact message it must give next to it (`.stderr`). Regenerate after an intended change with
//! `TRYBUILD=overwrite cargo test -p flowodm --test derive_ui` and review the diff.

#[test]
fn model_derive_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/model/*.rs");
}
