#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::time::Duration;

/// Where the jitter comes from: a number in `[0, 1)` per delay.
pub type JitterSource = Box<dyn FnMut() -> f64 + Send + Sync>;

/// Exponential backoff with jitter: each delay lies between half and all of the current step;
/// the step doubles after each delay, up to `max`; [`Backoff::reset`] after a success.
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
    jitter: JitterSource,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("initial", &self.initial)
            .field("max", &self.max)
            .field("step", &self.step)
            .finish()
    }
}

impl Backoff {
    /// From `initial` up to `max`, with jitter from the thread's random numbers.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff::with_jitter(initial, max, Box::new(rand::random::<f64>))
    }

    /// The same with the jitter from `source` (tests pass a fixed sequence).
    pub fn with_jitter(initial: Duration, max: Duration, source: JitterSource) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            step: initial,
            jitter: source,
        }
    }

    /// The delay before the next attempt; the step doubles (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let j = (self.jitter)().clamp(0.0, 1.0);
        let delay = self.step.mul_f64(0.5 + 0.5 * j);
        self.step = (self.step * 2).min(self.max);
        delay
    }

    /// The current step (the longest the next delay can be).
    pub fn step(&self) -> Duration {
        self.step
    }

    /// After a success: the next delay starts from `initial` again.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(values: Vec<f64>) -> JitterSource {
        let mut it = values.into_iter().cycle();
        Box::new(move || it.next().unwrap_or(0.0))
    }

    #[test]
    fn doubles_up_to_the_cap_with_jitter_between_half_and_whole() {
        let ms = Duration::from_millis;
        let mut b = Backoff::with_jitter(ms(100), ms(500), fixed(vec![1.0, 0.0, 0.5]));
        assert_eq!(b.next_delay(), ms(100), "jitter 1.0: the whole step");
        assert_eq!(b.next_delay(), ms(100), "jitter 0.0: half of 200");
        assert_eq!(b.next_delay(), ms(300), "jitter 0.5: three quarters of 400");
        assert_eq!(b.step(), ms(500), "capped");
        assert_eq!(b.next_delay(), ms(500));
        b.reset();
        assert_eq!(b.step(), ms(100));
    }

    #[test]
    fn random_jitter_stays_in_bounds() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(1000));
        for _ in 0..100 {
            let step = b.step();
            let d = b.next_delay();
            assert!(d >= step / 2 && d <= step, "{d:?} of {step:?}");
        }
    }
}
