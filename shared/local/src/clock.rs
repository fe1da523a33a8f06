//! Clocks: the system clock, and a manual one that tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aloft_engine::ports::Clock;

/// The system's wall clock, with a thread-local random source for jitter.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn random(&self) -> u64 {
        rand::random()
    }
}

/// A clock that only moves when told to; its randomness is a fixed-seed sequence.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    seed: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now` ms since the epoch.
    pub fn at(now: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now)),
            seed: Arc::new(AtomicU64::new(0x9e37_79b9)),
        }
    }

    /// Set the time; it never goes backwards.
    pub fn set(&self, now: u64) {
        self.now.fetch_max(now, Ordering::SeqCst);
    }

    /// Move the time forward.
    pub fn advance(&self, millis: u64) {
        self.now.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn random(&self) -> u64 {
        // splitmix64: deterministic, well spread.
        let mut z = self.seed.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::SeqCst);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Wall time that follows tokio's clock from a fixed start. Under a paused runtime
/// (`#[tokio::test(start_paused = true)]`) it moves only as the runtime's timers fire,
/// so a loop that sleeps with tokio and reads this clock sees exactly the time it slept:
/// tests of schedules run hours of fake time in milliseconds, without real sleeps.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start_ms: u64,
    origin: tokio::time::Instant,
    random: ManualClock,
}

impl TokioClock {
    /// A clock reading `start_ms` now, moving with tokio's time.
    pub fn starting_at(start_ms: u64) -> Self {
        Self {
            start_ms,
            origin: tokio::time::Instant::now(),
            random: ManualClock::at(0),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_ms.saturating_add(elapsed)
    }

    fn random(&self) -> u64 {
        self.random.random()
    }
}
