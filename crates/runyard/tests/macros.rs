//! What the macros refuse, and how they say it.

#[test]
fn macro_errors_point_at_the_mistake() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
