//! `cpu`: a hash chain, the benchmark's CPU-bound unit of work.

use runyard::{Context, Task, TaskError};
use serde::{Deserialize, Serialize};

/// One step of the splitmix64 generator.
#[inline(always)]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x = splitmix64(x)`, `rounds` times: each step depends on the last, so it
/// runs on one core and cannot be folded away (`black_box` on its inputs and
/// output). The same function as the benchmark peers' `hash_chain`.
#[inline(never)]
pub fn hash_chain(seed: u64, rounds: u64) -> u64 {
    let mut x = std::hint::black_box(seed);
    let rounds = std::hint::black_box(rounds);
    for _ in 0..rounds {
        x = splitmix64(x);
    }
    std::hint::black_box(x)
}

/// Parameters of `cpu`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields, default)]
pub struct CpuParams {
    /// Steps of the hash chain (10^7 take about 40 ms on one core).
    #[param(min = 1)]
    pub n: u64,
    /// The chain's starting value.
    pub seed: u64,
}

impl Default for CpuParams {
    fn default() -> CpuParams {
        CpuParams {
            n: 10_000_000,
            seed: 0,
        }
    }
}

/// `cpu`: runs a splitmix64 hash chain of `n` steps; the output is the final
/// value in decimal, as a JSON string: it is a 64-bit integer, and JSON
/// readers that hold numbers as doubles (JavaScript's) would round it past
/// 2^53.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu;

impl Task for Cpu {
    const NAME: &'static str = "cpu";
    const DESCRIPTION: &'static str =
        "Runs a splitmix64 hash chain of `n` steps (CPU-bound); outputs the final value as a decimal string";
    type Params = CpuParams;
    type Output = String;

    fn run(&self, p: CpuParams, ctx: &Context) -> Result<String, TaskError> {
        // Check for cancellation between slices, so a timeout stops it.
        const SLICE: u64 = 1 << 24;
        let mut x = p.seed;
        let mut left = p.n;
        while left > 0 {
            let step = left.min(SLICE);
            x = hash_chain(x, step);
            left -= step;
            if left > 0 {
                ctx.check()?;
            }
        }
        Ok(x.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_chain_across_slices() {
        // Slicing must not change the result.
        let n = (1 << 24) + 12_345;
        let mut x = 0u64;
        for _ in 0..n {
            x = splitmix64(x);
        }
        let ctx = Context::new(runyard::JobId(1), 1, runyard::CancelToken::new());
        assert_eq!(
            Cpu.run(CpuParams { n, seed: 0 }, &ctx).unwrap(),
            x.to_string()
        );
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }
}
