//! Time as a parameter. The wall clock (ticket windows, audit timestamps, token ages), the
//! monotonic clock (deadlines, elapsed times) and waiting (retry pauses, lock polling) are
//! all read through [`Clock`], so that tests can fix "now", move time on and see every
//! pause without sleeping.
//!
//! [`SystemClock`] is the only code that reads the system's clocks or sleeps: clippy.toml
//! disallows `Utc::now`, `SystemTime::now`, `Instant::now`, `Instant::elapsed` and
//! `thread::sleep` everywhere else. [`answer_within`] waits for a call that may hang
//! (the resolver, the name service) no longer than the time a deadline leaves.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The clocks and the pause the module uses.
pub trait Clock {
    /// The wall clock.
    fn now(&self) -> DateTime<Utc>;

    /// The monotonic clock, which never goes back: deadlines and elapsed times.
    fn monotonic(&self) -> Instant;

    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);

    /// The wall clock as Unix seconds (0 before 1970, which only a broken clock reports).
    fn unix_seconds(&self) -> u64 {
        u64::try_from(self.now().timestamp()).unwrap_or(0)
    }

    /// Time since `earlier`, a reading of [`Clock::monotonic`].
    fn since(&self, earlier: Instant) -> Duration {
        self.monotonic().saturating_duration_since(earlier)
    }
}

/// The system's clocks and `thread::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

// The one place that reads the system's clocks and sleeps (see the module comment).
#[allow(clippy::disallowed_methods)]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The point in time by which the whole check must be over, on the clock it was set on.
/// Every request of a check, the lock wait and the pauses between retries end by it.
#[derive(Clone, Copy)]
pub struct Deadline<'c> {
    end: Instant,
    clock: &'c dyn Clock,
}

impl<'c> Deadline<'c> {
    /// A new check that must be over within `budget` from now on `clock`.
    pub fn new(clock: &'c dyn Clock, budget: Duration) -> Deadline<'c> {
        let now = clock.monotonic();
        Deadline {
            // A budget too large for the clock leaves no time at all: it fails closed.
            end: now.checked_add(budget).unwrap_or(now),
            clock,
        }
    }

    /// The same check, ending `reserve` earlier (never before now): room kept back for a
    /// last request such as a log-off.
    pub fn keep_back(&self, reserve: Duration) -> Deadline<'c> {
        let earlier = self.end.checked_sub(reserve).unwrap_or(self.end);
        Deadline {
            end: earlier.max(self.clock.monotonic()),
            clock: self.clock,
        }
    }

    /// The same check, ending no later than `budget` from now: a bound for housekeeping
    /// (a log-off) that must not take the rest of the check's time.
    pub fn within(&self, budget: Duration) -> Deadline<'c> {
        let now = self.clock.monotonic();
        Deadline {
            end: self.end.min(now.checked_add(budget).unwrap_or(now)),
            clock: self.clock,
        }
    }

    /// Time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.end
            .checked_duration_since(self.clock.monotonic())
            .filter(|left| !left.is_zero())
    }

    /// The clock the deadline runs on, for the wall time and for pauses inside the check.
    pub fn clock(&self) -> &'c dyn Clock {
        self.clock
    }
}

impl fmt::Debug for Deadline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Why [`answer_within`] has no answer.
#[derive(Debug)]
pub enum NoAnswer {
    /// No thread could be started for the call.
    NoThread(std::io::Error),
    /// The call did not answer within the time it was given.
    TimedOut,
}

/// Runs `call` in a thread named `name` and waits for its answer at most `time_left`: a
/// libc call that can hang (the resolver, the name service) then cannot hold up a login.
/// A thread the time runs out on is left to finish on its own; its answer is dropped with
/// the channel.
pub fn answer_within<T: Send + 'static>(
    name: &str,
    time_left: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NoAnswer> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = sender.send(call());
        })
        .map_err(NoAnswer::NoThread)?;
    receiver
        .recv_timeout(time_left)
        .map_err(|_| NoAnswer::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::ManualClock;

    #[test]
    fn a_deadline_runs_on_its_clock() {
        let clock = ManualClock::new();
        let deadline = Deadline::new(&clock, Duration::from_secs(10));
        assert_eq!(deadline.remaining(), Some(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(4));
        assert_eq!(deadline.remaining(), Some(Duration::from_secs(6)));
        assert_eq!(
            deadline.keep_back(Duration::from_secs(2)).remaining(),
            Some(Duration::from_secs(4))
        );
        // Never before now, however much is kept back.
        assert_eq!(
            deadline.keep_back(Duration::from_secs(60)).remaining(),
            None
        );
        assert_eq!(
            deadline.within(Duration::from_secs(2)).remaining(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            deadline.within(Duration::from_secs(60)).remaining(),
            Some(Duration::from_secs(6))
        );
        clock.advance(Duration::from_secs(6));
        assert_eq!(deadline.remaining(), None);
    }

    #[test]
    fn unix_seconds_follow_the_wall_clock() {
        let clock = ManualClock::new();
        let start = clock.unix_seconds();
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.unix_seconds(), start + 90);
    }
}
