//! A small benchmark harness that compares a subject with a baseline measured in the
//! same process, interleaved round by round so that machine noise hits both alike.
//!
//! Each round times `per_round` calls of one side, then of the other (alternating which
//! goes first); the figure per side is the median over rounds of the mean time per call.

#![allow(dead_code)]

use std::time::{Duration, Instant};

pub struct Comparison {
    pub baseline: Duration,
    pub subject: Duration,
}

impl Comparison {
    pub fn ratio(&self) -> f64 {
        self.subject.as_secs_f64() / self.baseline.as_secs_f64()
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn time_calls(per_round: usize, f: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..per_round {
        f();
    }
    start.elapsed() / u32::try_from(per_round).unwrap_or(u32::MAX)
}

pub fn compare(rounds: usize, per_round: usize, mut baseline: impl FnMut(), mut subject: impl FnMut()) -> Comparison {
    // Warm caches and statement caches on both sides first.
    time_calls(per_round, &mut baseline);
    time_calls(per_round, &mut subject);
    let mut baseline_times = Vec::with_capacity(rounds);
    let mut subject_times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        if round % 2 == 0 {
            baseline_times.push(time_calls(per_round, &mut baseline));
            subject_times.push(time_calls(per_round, &mut subject));
        } else {
            subject_times.push(time_calls(per_round, &mut subject));
            baseline_times.push(time_calls(per_round, &mut baseline));
        }
    }
    Comparison { baseline: median(baseline_times), subject: median(subject_times) }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

/// Prints one line: the name, both figures, the ratio and the target it is held to.
pub fn report(name: &str, baseline_name: &str, comparison: &Comparison, target: &str) {
    println!(
        "{name:<34} {:>11} vs {baseline_name} {:>11}  ratio {:>6.2}x  ({target})",
        ms(comparison.subject),
        ms(comparison.baseline),
        comparison.ratio(),
    );
}
