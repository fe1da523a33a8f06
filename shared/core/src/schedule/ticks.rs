//! Which ticks of a schedule a scheduler fires: the tick that is due now, the missed
//! ticks it makes up after downtime (catch-up), and the ticks of a backfill range.
//!
//! Everything here is a function of explicit instants: the scheduler passes the last
//! tick it decided and the time its clock reads, so every rule is tested without a clock.
//!
//! The rules:
//! - a tick at most [`ON_TIME_MS`] late is on time and fires whatever the catch-up
//!   setting (a busy loop or a short restart is not downtime);
//! - without `catchup`, older ticks are passed over: none is made up;
//! - with `catchup: {window, max_runs}`, the ticks not older than `window` are eligible,
//!   and the most recent `max_runs` of them fire, oldest first; older ones are passed
//!   over. A long outage therefore never makes a burst nor a backlog: the answer is found
//!   by searching back from now, without listing the missed ticks.

use std::collections::VecDeque;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::Schedule;
use crate::RunStatus;

/// A tick this late (in ms) or less is on time, not missed.
pub const ON_TIME_MS: u64 = 60_000;

/// The run key of the schedule tick at `tick`: `schedule:` and the tick in RFC 3339
/// UTC, whole seconds, such as `schedule:2025-06-10T10:21:00Z`. The AWS trigger keys an
/// EventBridge Scheduler invocation the same way, so one tick is one run on either
/// backend.
pub fn tick_key(tick: Timestamp) -> String {
    format!(
        "schedule:{}",
        Timestamp::from_second(tick.as_second()).unwrap_or(tick)
    )
}

/// Making up missed ticks: the eligible age and the most to fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Catchup {
    /// Ticks at most this old (ms) are made up.
    pub window_ms: u64,
    /// At most this many ticks fire at one time, the most recent ones.
    pub max_runs: u32,
}

impl From<&crate::definition::Catchup> for Catchup {
    fn from(spec: &crate::definition::Catchup) -> Self {
        Self {
            window_ms: spec.window.as_millis(),
            max_runs: spec.max_runs,
        }
    }
}

/// What a scheduler does at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The ticks to fire now, oldest first.
    pub fire: Vec<Timestamp>,
    /// The first tick passed over (missed and not made up), if any.
    pub passed_over: Option<Timestamp>,
    /// The latest tick decided now (fired or passed over): the new "last tick", or the
    /// old one when no tick came due.
    pub last: Timestamp,
}

/// The ticks of `schedule` (read in `zone`) to fire at `now`, given that every tick up
/// to `last` was decided before. See the module notes for the rules.
pub fn due(
    schedule: &Schedule,
    zone: &TimeZone,
    catchup: Option<Catchup>,
    last: Timestamp,
    now: Timestamp,
) -> Due {
    let nothing = Due {
        fire: Vec::new(),
        passed_over: None,
        last,
    };
    let Some(first) = schedule.next_after(last, zone).filter(|t| *t <= now) else {
        return nothing;
    };
    let (window_ms, count) = match catchup {
        Some(rule) if rule.max_runs > 0 => (rule.window_ms.max(ON_TIME_MS), rule.max_runs),
        _ => (ON_TIME_MS, 1),
    };
    // Eligible: after `last`, not older than the window, not in the future.
    let oldest = now.checked_sub(millis(window_ms)).unwrap_or(Timestamp::MIN);
    let floor = oldest
        .checked_sub(SignedDuration::from_nanos(1))
        .map_or(last, |before| before.max(last));
    let fire = latest(schedule, zone, floor, now, count as usize);
    let decided = match fire.last() {
        Some(newest) => *newest,
        None => latest(schedule, zone, last, now, 1).pop().unwrap_or(first),
    };
    Due {
        passed_over: (fire.first() != Some(&first)).then_some(first),
        fire,
        last: decided,
    }
}

/// The most recent `count` ticks after `after` and at or before `until`, oldest first.
/// Searches back from `until` over a span that doubles until it holds `count` ticks or
/// reaches `after`, so the work grows with `count`, not with the length of the outage.
fn latest(
    schedule: &Schedule,
    zone: &TimeZone,
    after: Timestamp,
    until: Timestamp,
    count: usize,
) -> Vec<Timestamp> {
    if count == 0 {
        return Vec::new();
    }
    let mut span = SignedDuration::from_mins(1);
    loop {
        let from = until
            .checked_sub(span)
            .map_or(after, |from| from.max(after));
        let mut kept = VecDeque::with_capacity(count.min(1024));
        let mut seen = 0usize;
        for tick in schedule.fires_after(from, zone) {
            if tick > until {
                break;
            }
            seen += 1;
            if kept.len() == count {
                kept.pop_front();
            }
            kept.push_back(tick);
        }
        if seen >= count || from == after {
            return kept.into();
        }
        span = span.checked_mul(2).unwrap_or(SignedDuration::MAX);
    }
}

/// Why a range of ticks was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The range is empty or reversed.
    #[error("the range is empty: --from {from} is not before --to {to}")]
    Empty {
        /// Its start.
        from: Timestamp,
        /// Its end.
        to: Timestamp,
    },
    /// More ticks than the limit.
    #[error(
        "the range holds more than {limit} ticks (the {limit}th is {at}): backfill a \
         shorter range at a time"
    )]
    TooMany {
        /// The limit.
        limit: usize,
        /// The tick that reached it.
        at: Timestamp,
    },
}

/// What became of one tick of a backfill, on either backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// The tick, ms since the epoch.
    pub tick: u64,
    /// Its run.
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// False when the tick's run existed before this backfill.
    pub created: bool,
}

/// The ticks in `[from, to)`, oldest first; refused when there are more than `limit`.
pub fn between(
    schedule: &Schedule,
    zone: &TimeZone,
    from: Timestamp,
    to: Timestamp,
    limit: usize,
) -> Result<Vec<Timestamp>, RangeError> {
    if from >= to {
        return Err(RangeError::Empty { from, to });
    }
    let after = from
        .checked_sub(SignedDuration::from_nanos(1))
        .unwrap_or(Timestamp::MIN);
    let mut ticks = Vec::new();
    for tick in schedule.fires_after(after, zone) {
        if tick >= to {
            break;
        }
        if ticks.len() == limit {
            return Err(RangeError::TooMany { limit, at: tick });
        }
        ticks.push(tick);
    }
    Ok(ticks)
}

fn millis(ms: u64) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}
