//! The plain-Rust fallback kernels (what runs on a CPU without AVX-512): the same checks as
//! `tests/teacher.rs` against candle and for batching. A separate test binary, because the
//! switch is process-wide and the two kernel paths differ in the last bits of `exp`.

mod teacher_fixture;
use teacher_fixture::*;

#[test]
fn fallback_kernels_match_candle_and_keep_batching_exact() {
    synthlm::generate::kernels::use_fallback_kernels();
    assert!(!synthlm::generate::kernels::has_avx512());
    check_against_candle(SPEC64);
    check_against_candle(SPEC16);
    check_batching_equals_alone(SPEC64);
}
