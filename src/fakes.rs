//! Test doubles for the unit tests: a clock that moves only when told to (or slept on).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use crate::clock::Clock;

/// A clock that stands still until [`ManualClock::advance`] or [`Clock::sleep`] moves it;
/// a sleep returns at once and is remembered.
pub struct ManualClock {
    wall_start: DateTime<Utc>,
    monotonic_start: Instant,
    elapsed: Cell<Duration>,
    slept: RefCell<Vec<Duration>>,
}

impl ManualClock {
    /// Starts at 2026-11-30 11:00 UTC.
    pub fn new() -> ManualClock {
        ManualClock::at(
            Utc.with_ymd_and_hms(2026, 11, 30, 11, 0, 0)
                .single()
                .expect("a valid time"),
        )
    }

    pub fn at(wall_start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            wall_start,
            // Any instant will do as the origin: only differences from it are used.
            #[allow(clippy::disallowed_methods)]
            monotonic_start: Instant::now(),
            elapsed: Cell::new(Duration::ZERO),
            slept: RefCell::new(Vec::new()),
        }
    }

    /// Moves both clocks on.
    pub fn advance(&self, by: Duration) {
        self.elapsed.set(self.elapsed.get() + by);
    }

    /// Every sleep so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.borrow().clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.wall_start
            + chrono::Duration::from_std(self.elapsed.get()).unwrap_or(chrono::Duration::MAX)
    }

    fn monotonic(&self) -> Instant {
        self.monotonic_start + self.elapsed.get()
    }

    fn sleep(&self, duration: Duration) {
        self.slept.borrow_mut().push(duration);
        self.advance(duration);
    }
}
