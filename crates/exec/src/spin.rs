//! Waiting a little before sleeping.

/// The most rounds a spin takes: a few microseconds of spinning, then a few
/// yields of the core.
const MAX_ROUNDS: u32 = 16;

/// Checks `ready` for a short while and returns whether it became true.
/// Threads that hand work to each other at a high rate call this before
/// they block, so a hand-off rarely costs a futex sleep and wake-up.
pub fn spin_until(ready: impl FnMut() -> bool) -> bool {
    spin_rounds(MAX_ROUNDS, ready)
}

fn spin_rounds(rounds: u32, mut ready: impl FnMut() -> bool) -> bool {
    for round in 0..rounds {
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

/// A spinner that learns: each spin that ends without the condition
/// halves the next one's length, each that succeeds doubles it back. Where
/// work comes back within microseconds it spins; where it takes
/// milliseconds (each job starts a process) it stops wasting the core.
#[derive(Debug, Clone, Copy)]
pub struct Spinner {
    rounds: u32,
}

impl Default for Spinner {
    fn default() -> Spinner {
        Spinner { rounds: MAX_ROUNDS }
    }
}

impl Spinner {
    /// Spins while the budget lasts; returns whether `ready` became true.
    pub fn spin(&mut self, ready: impl FnMut() -> bool) -> bool {
        let ok = spin_rounds(self.rounds, ready);
        self.rounds = if ok {
            (self.rounds * 2).clamp(1, MAX_ROUNDS)
        } else {
            self.rounds / 2
        };
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_shrinks_on_failure_and_grows_back_on_success() {
        let mut s = Spinner::default();
        for _ in 0..10 {
            assert!(!s.spin(|| false));
        }
        assert_eq!(s.rounds, 0);
        assert!(s.spin(|| true));
        assert_eq!(s.rounds, 1);
        for _ in 0..10 {
            s.spin(|| true);
        }
        assert_eq!(s.rounds, MAX_ROUNDS);
    }
}
