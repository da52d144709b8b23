//! Comparing secrets (the token, a session, a CSRF token) without telling,
//! by the time taken, where a guess went wrong.

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only, not on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}
