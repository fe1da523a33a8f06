//! The run watchdog: one delayed message per run that times out its attempts, instead of
//! one timeout check per attempt (see [`crate::Config::run_watchdog`]).
//!
//! Each leg is one message, named by a random number, that the run records with its due
//! time. The leg that arrives while the run records it scans the run's running
//! attempts, sends a timeout check for each one past its limit together with the next
//! leg, and moves the run's record to that leg. The send comes
//! before the move: a handler that stops between the two is delivered again and finds the leg still
//! current, so the watchdog is never lost; the leg it sent and did not record is an
//! orphan. So is the leg sent by a duplicate delivery that lost the race to move the
//! record. An orphan, a duplicate of a leg already moved on, or a leg of a start that
//! did not apply finds the run recording another leg, and ends there. Each delivery of
//! the current leg makes at most one orphan, so duplicates never multiply the watchdog.

use aloft_core::definition::RunSpec;
use aloft_core::{TaskState, Workflow};
use tracing::debug;

use crate::engine::{Engine, EngineError, WATCH_MARGIN_MS};
use crate::message::{Message, Outgoing};
use crate::ports::{Clock, Events, Invoker, Queue, Store};
use crate::record::{RunRecord, WatchLeg};

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// The first watchdog leg of a run starting at `now`: due after its shortest timeout
    /// of a task that runs outside the store, at most one queue delay away. `None` when
    /// the engine keeps no watchdog or every task is `pass`.
    pub(crate) fn first_watch(&self, workflow: &Workflow, now: u64) -> Option<WatchLeg> {
        if !self.config.run_watchdog {
            return None;
        }
        let shortest = workflow
            .tasks
            .iter()
            .filter(|t| !matches!(t.run, RunSpec::Pass(_)))
            .map(|t| t.timeout.as_millis())
            .min()?;
        Some(self.new_leg(now + shortest.clamp(1, self.config.max_queue_delay_ms)))
    }

    fn new_leg(&self, at: u64) -> WatchLeg {
        // 53 bits, so that the name survives any JSON reader as a number.
        let leg = self.clock.random() >> 11;
        WatchLeg { at, leg }
    }

    /// The message of leg `leg`, sent at `now`.
    pub(crate) fn watch_message(&self, run_id: &str, leg: WatchLeg, now: u64) -> Outgoing {
        let message = Message::Watch {
            run_id: run_id.to_owned(),
            at: leg.at,
            leg: leg.leg,
        };
        Outgoing::after(message, leg.at.saturating_sub(now))
    }

    /// True when the run's watchdog will time an attempt due at `due_at` (decided at
    /// `now`, before the attempt is marked running): its current leg comes no later than
    /// that, and late enough for the attempt to be marked running before its scan.
    pub(crate) fn watched(run: &RunRecord, due_at: u64, now: u64) -> bool {
        run.watch
            .is_some_and(|w| w.at <= due_at && w.at > now.saturating_add(WATCH_MARGIN_MS))
    }

    /// Handle a watchdog leg.
    pub(crate) async fn watch(&self, run_id: &str, leg: WatchLeg) -> Result<(), EngineError> {
        let Some(run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        if run.status.is_settled() {
            return Ok(());
        }
        if run.watch.is_some_and(|current| current.leg != leg.leg) {
            debug!(run_id, leg = leg.leg, current = ?run.watch, "watchdog leg not current ignored");
            return Ok(());
        }
        // Current, or the run has none (its start's write was not made yet, or came from
        // an earlier version): this leg keeps it going.
        let workflow = self.workflow(&run).await?;
        let now = self.clock.now();
        let mut next = now.saturating_add(self.config.max_queue_delay_ms);
        let mut outgoing = Vec::new();
        for record in self.store.all_tasks(run_id).await? {
            if record.state != TaskState::Running || record.items.is_some() {
                continue;
            }
            let Some(task) = workflow.task(&record.key.task) else {
                continue;
            };
            let Some(started) = record.started_at else {
                continue;
            };
            if matches!(task.run, RunSpec::Pass(_)) {
                continue;
            }
            let due_at = started.saturating_add(task.timeout.as_millis());
            if due_at > now {
                next = next.min(due_at);
                continue;
            }
            // Past its limit: a timeout check of its own, due now, sent with the next
            // leg. A handler that stops after the send is delivered again, finds the leg
            // still current and sends them again; a check delivered twice, or once its
            // attempt ended, changes nothing more.
            let check = Message::TimeoutCheck {
                run_id: run_id.to_owned(),
                key: record.key,
                attempt: record.attempt,
                due_at,
            };
            outgoing.push(Outgoing::now(check));
        }
        let next = self.new_leg(next);
        outgoing.push(self.watch_message(run_id, next, now));
        self.send(outgoing).await?;
        self.forget_run();
        let current = run.watch.map(|w| w.leg);
        if !self.store.move_watch(run_id, current, next).await? {
            debug!(
                run_id,
                leg = leg.leg,
                "watchdog moved on by another delivery"
            );
        }
        Ok(())
    }
}
