//! Trigger rules: whether a task runs, judged on its direct upstreams' final states only.

use crate::definition::TriggerRule;
use crate::state::TaskState;

/// What the planner does with a task whose upstreams have all settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Make it ready to run.
    Run,
    /// Settle it as `skipped`.
    Skip,
    /// Settle it as `upstream_failed`.
    UpstreamFailed,
}

impl Decision {
    /// The settled state of a decision that does not run the task.
    pub const fn settled_state(self) -> Option<TaskState> {
        match self {
            Self::Run => None,
            Self::Skip => Some(TaskState::Skipped),
            Self::UpstreamFailed => Some(TaskState::UpstreamFailed),
        }
    }
}

/// Decide a task's fate from its rule and its direct upstreams' settled states. A task
/// without upstreams always runs.
pub fn decide(rule: TriggerRule, upstreams: impl IntoIterator<Item = TaskState>) -> Decision {
    let (mut total, mut succeeded, mut failed) = (0usize, 0usize, 0usize);
    for state in upstreams {
        total += 1;
        succeeded += usize::from(state == TaskState::Succeeded);
        failed += usize::from(state.is_failure());
    }
    if total == 0 {
        return Decision::Run;
    }
    let run_if = |holds: bool, otherwise: Decision| if holds { Decision::Run } else { otherwise };
    match rule {
        TriggerRule::AllSuccess if failed > 0 => Decision::UpstreamFailed,
        TriggerRule::AllSuccess => run_if(succeeded == total, Decision::Skip),
        TriggerRule::AllDone | TriggerRule::Always => Decision::Run,
        TriggerRule::AllFailed => run_if(failed == total, Decision::Skip),
        TriggerRule::OneSuccess if succeeded == 0 && failed == total => Decision::UpstreamFailed,
        TriggerRule::OneSuccess => run_if(succeeded > 0, Decision::Skip),
        TriggerRule::OneFailed => run_if(failed > 0, Decision::Skip),
        TriggerRule::NoneFailed => run_if(failed == 0, Decision::UpstreamFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Run, Skip};
    use TaskState::{Failed, Skipped, Succeeded, TimedOut};
    const UF: Decision = Decision::UpstreamFailed;

    const RULES: [TriggerRule; 7] = [
        TriggerRule::AllSuccess,
        TriggerRule::AllDone,
        TriggerRule::AllFailed,
        TriggerRule::OneSuccess,
        TriggerRule::OneFailed,
        TriggerRule::NoneFailed,
        TriggerRule::Always,
    ];

    fn table(upstreams: &[TaskState]) -> Vec<Decision> {
        RULES
            .iter()
            .map(|rule| decide(*rule, upstreams.iter().copied()))
            .collect()
    }

    #[test]
    fn succeeded_and_skipped_upstreams_run_only_the_permissive_rules() {
        // Order: all_success, all_done, all_failed, one_success, one_failed, none_failed,
        // always.
        assert_eq!(
            table(&[Succeeded, Skipped]),
            [Skip, Run, Skip, Run, Skip, Run, Run]
        );
    }

    #[test]
    fn a_failed_upstream_marks_success_rules_upstream_failed() {
        assert_eq!(
            table(&[Succeeded, Failed]),
            [UF, Run, Skip, Run, Run, UF, Run]
        );
        assert_eq!(
            table(&[TimedOut, TaskState::UpstreamFailed]),
            [UF, Run, Run, UF, Run, UF, Run]
        );
    }

    #[test]
    fn only_skipped_upstreams_skip_instead_of_failing() {
        assert_eq!(
            table(&[Skipped, Skipped]),
            [Skip, Run, Skip, Skip, Skip, Run, Run]
        );
    }

    #[test]
    fn all_succeeded_upstreams_run_all_but_the_failure_rules() {
        assert_eq!(
            table(&[Succeeded, Succeeded]),
            [Run, Run, Skip, Run, Skip, Run, Run]
        );
    }

    #[test]
    fn a_root_task_always_runs() {
        assert_eq!(table(&[]), [Run; 7]);
    }
}
