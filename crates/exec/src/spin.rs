//! Waiting a little before sleeping.

/// Checks `ready` for a short while (a few microseconds of spinning, then a
/// few yields of the core) and returns whether it became true. Threads
/// that hand work to each other at a high rate call this before they block,
/// so a hand-off rarely costs a futex sleep and wake-up.
pub fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    for round in 0..16u32 {
        if ready() {
            return true;
        }
        if round < 8 {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    ready()
}
