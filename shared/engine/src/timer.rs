//! Wake-ups that travel as delayed messages: re-armed legs towards a due time longer
//! than one queue delay, and re-checks of parked messages.
//!
//! A message that arrives early sends its next leg. Under at-least-once delivery each
//! duplicate of a leg would send one more, and the chain would double at every leg (a
//! 6 h wait is 24 legs). So legs lie on a grid fixed by the due time (or by the start of
//! the wait), every duplicate of one leg asks for the same next leg, and the store's
//! `arm` lets only the first send it.

use tracing::debug;

use crate::engine::{Engine, EngineError};
use crate::message::{Message, Outgoing};
use crate::ports::{Clock, Events, Invoker, Queue, Store};

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Send `message` on its next leg towards `due_at`, unless a duplicate already did.
    pub(crate) async fn rearm(
        &self,
        run_id: &str,
        timer: &str,
        message: Message,
        due_at: u64,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let at = next_leg(now, due_at, self.config.max_queue_delay_ms);
        self.send_once(run_id, timer, message, at).await
    }

    /// Send the next re-check of a message parked since `since`: re-checks back off
    /// from `park_recheck_ms`, doubling, to one per queue delay, so a long wait costs a
    /// few messages rather than one per poll interval.
    pub(crate) async fn recheck(
        &self,
        run_id: &str,
        timer: &str,
        message: Message,
        since: u64,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let config = &self.config;
        let at = next_recheck(
            since,
            now,
            config.park_recheck_ms,
            config.max_queue_delay_ms,
        );
        self.send_once(run_id, timer, message, at).await
    }

    async fn send_once(
        &self,
        run_id: &str,
        timer: &str,
        message: Message,
        at: u64,
    ) -> Result<(), EngineError> {
        if !self.store.arm(run_id, timer, at).await? {
            debug!(run_id, timer, at, "wake-up already armed by a duplicate");
            return Ok(());
        }
        let delay = at.saturating_sub(self.clock.now());
        Ok(self.send(vec![Outgoing::after(message, delay)]).await?)
    }
}

/// When the next leg towards `due_at` arrives: `due_at` itself once it is within one
/// queue delay `cap`, else the grid point `due_at - k * cap` that is.
pub(crate) fn next_leg(now: u64, due_at: u64, cap: u64) -> u64 {
    let cap = cap.max(1);
    let remaining = due_at.saturating_sub(now);
    due_at - remaining.saturating_sub(1) / cap * cap
}

/// When the next re-check of a wait that began at `since` arrives: `first`, `2 first`,
/// `4 first`, ... after `since` while that is below `cap`, then every `cap` after `since`.
pub(crate) fn next_recheck(since: u64, now: u64, first: u64, cap: u64) -> u64 {
    let (first, cap) = (first.max(1), cap.max(1));
    let waited = now.saturating_sub(since);
    let mut offset = first;
    while offset <= waited && offset < cap {
        offset = offset.saturating_mul(2);
    }
    if offset > waited && offset <= cap {
        return since.saturating_add(offset);
    }
    since.saturating_add((waited / cap + 1).saturating_mul(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 900;

    #[test]
    fn legs_are_at_most_one_queue_delay_and_end_exactly_at_the_due_time() {
        assert_eq!(next_leg(0, 500, CAP), 500);
        assert_eq!(next_leg(0, 900, CAP), 900);
        assert_eq!(next_leg(0, 901, CAP), 1);
        assert_eq!(next_leg(1, 901, CAP), 901);
        assert_eq!(next_leg(0, 7200, CAP), 900);
        let mut now = 17;
        let mut legs = 0;
        while now < 7200 {
            let at = next_leg(now, 7200, CAP);
            assert!(at > now && at - now <= CAP, "{now} -> {at}");
            now = at;
            legs += 1;
        }
        assert_eq!((now, legs), (7200, 8));
    }

    #[test]
    fn duplicates_of_one_leg_ask_for_the_same_next_leg() {
        // Handled at any time within one grid interval: the same answer.
        for now in [901, 1000, 1500, 1799] {
            assert_eq!(next_leg(now, 7200, CAP), 1800, "now {now}");
        }
    }

    #[test]
    fn rechecks_double_then_settle_at_one_per_queue_delay() {
        let mut now = 1000;
        let mut arrivals = Vec::new();
        while now < 1000 + 3000 {
            now = next_recheck(1000, now, 30, CAP);
            arrivals.push(now - 1000);
        }
        assert_eq!(arrivals, [30, 60, 120, 240, 480, 900, 1800, 2700, 3600]);
        assert_eq!(next_recheck(1000, 1100, 30, CAP), 1120);
        assert_eq!(next_recheck(5, 0, 30, CAP), 35, "a wait that starts later");
    }

    #[test]
    fn far_times_saturate_instead_of_overflowing() {
        assert_eq!(next_leg(0, u64::MAX, CAP) % CAP, u64::MAX % CAP);
        assert!(next_recheck(u64::MAX - 10, u64::MAX, 30, CAP) == u64::MAX);
    }
}
