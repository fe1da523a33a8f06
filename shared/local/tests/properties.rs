//! Property tests over random DAGs: every run settles, each attempt starts at most once,
//! a task starts only after all its upstreams settled, and every final state is what the
//! trigger rules decide from the final upstream states, with or without duplicated
//! delivery.

mod sim;

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use aloft_core::definition::TriggerRule;
use aloft_core::rules::{Decision, decide};
use aloft_core::{RunStatus, TaskState};
use sim::{Duplicates, Report, S, Sim};

const RULES: [(&str, TriggerRule); 7] = [
    ("all_success", TriggerRule::AllSuccess),
    ("all_done", TriggerRule::AllDone),
    ("all_failed", TriggerRule::AllFailed),
    ("one_success", TriggerRule::OneSuccess),
    ("one_failed", TriggerRule::OneFailed),
    ("none_failed", TriggerRule::NoneFailed),
    ("always", TriggerRule::Always),
];

/// What a task does when it runs.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Succeed,
    SleepThenSucceed(u8),
    Fail,
    FailOnceThenRetry,
    SleepPastTimeout,
    /// Succeeds with `{"xs": [0, 1, ...]}` of this many items, for `for_each` tasks.
    EmitList(u8),
}

impl Behaviour {
    fn run(self) -> String {
        match self {
            Self::Succeed => r#"{command: ["true"]}"#.into(),
            Self::SleepThenSucceed(s) => format!(r#"{{command: [sleep, "{s}"]}}"#),
            Self::Fail => r#"{command: ["false"]}"#.into(),
            Self::FailOnceThenRetry => "{command: [fail-once]}".into(),
            Self::SleepPastTimeout => r#"{command: [sleep, "100"]}"#.into(),
            Self::EmitList(n) => {
                let xs: Vec<u8> = (0..n).collect();
                format!("{{command: [emit, '{}']}}", serde_json::json!({ "xs": xs }))
            }
        }
    }

    fn extra(self) -> &'static str {
        match self {
            Self::FailOnceThenRetry => {
                ", retry: {max_attempts: 2, backoff: fixed, initial_delay: 7s}"
            }
            Self::SleepPastTimeout => ", timeout: 20s",
            _ => "",
        }
    }

    /// The final (state, attempts) of a task that runs.
    fn end(self) -> (TaskState, u32) {
        match self {
            Self::Succeed | Self::SleepThenSucceed(_) | Self::EmitList(_) => {
                (TaskState::Succeeded, 1)
            }
            Self::Fail => (TaskState::Failed, 1),
            Self::FailOnceThenRetry => (TaskState::Succeeded, 2),
            Self::SleepPastTimeout => (TaskState::TimedOut, 1),
        }
    }
}

#[derive(Clone, Debug)]
struct Task {
    upstream: Vec<usize>,
    rule: usize,
    behaviour: Behaviour,
    /// Map over the first upstream's list, when that upstream emits one.
    fan_out: bool,
}

/// The `for_each` source of task `i`, if it fans out: its first upstream, with the
/// length of the list it emits, or `None` when that upstream fans out itself and task
/// `i` maps over its items' outputs.
fn source(tasks: &[Task], i: usize) -> Option<(usize, Option<u8>)> {
    let first = *tasks[i].upstream.first()?;
    if !tasks[i].fan_out {
        return None;
    }
    if source(tasks, first).is_some() {
        return Some((first, None));
    }
    match tasks[first].behaviour {
        Behaviour::EmitList(n) => Some((first, Some(n))),
        _ => None,
    }
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Succeed),
        2 => (1u8..30).prop_map(Behaviour::SleepThenSucceed),
        2 => Just(Behaviour::Fail),
        1 => Just(Behaviour::FailOnceThenRetry),
        1 => Just(Behaviour::SleepPastTimeout),
        2 => (0u8..4).prop_map(Behaviour::EmitList),
    ]
}

/// A random DAG: task i depends on up to three tasks before it.
fn dag() -> impl Strategy<Value = Vec<Task>> {
    (1usize..=60).prop_flat_map(|n| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let upstream = if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    prop::collection::btree_set(0..i, 0..=3.min(i))
                        .prop_map(|s| s.into_iter().collect())
                        .boxed()
                };
                (upstream, 0..RULES.len(), behaviour(), any::<bool>()).prop_map(
                    |(upstream, rule, behaviour, fan_out)| Task {
                        upstream,
                        rule,
                        behaviour,
                        fan_out,
                    },
                )
            })
            .collect();
        tasks
    })
}

fn yaml(tasks: &[Task], max_tasks: Option<u32>) -> String {
    let mut out = String::from("name: random-dag\n");
    if let Some(max) = max_tasks {
        out.push_str(&format!("concurrency: {{max_tasks: {max}}}\n"));
    }
    out.push_str("tasks:\n");
    for (i, task) in tasks.iter().enumerate() {
        let deps: Vec<String> = task.upstream.iter().map(|u| format!("t{u}")).collect();
        let for_each = match source(tasks, i) {
            Some((u, Some(_))) => format!(", for_each: $.t{u}.xs"),
            Some((u, None)) => format!(", for_each: $.t{u}"),
            None => String::new(),
        };
        out.push_str(&format!(
            "  t{i}: {{depends_on: [{}], trigger_rule: {}, run: {}{}{for_each}}}\n",
            deps.join(", "),
            RULES[task.rule].0,
            task.behaviour.run(),
            task.behaviour.extra(),
        ));
    }
    out
}

fn check(tasks: &[Task], report: &Report) -> Result<(), TestCaseError> {
    let states = report.states();
    prop_assert!(report.status().is_settled());
    prop_assert!(states.values().all(|(s, _)| s.is_settled()), "{states:?}");

    let mut seen = HashMap::new();
    for start in &report.starts {
        let count = seen.entry((start.key.clone(), start.attempt)).or_insert(0);
        *count += 1;
        prop_assert_eq!(
            *count,
            1,
            "{} attempt {} started twice",
            start.key,
            start.attempt
        );
    }

    let name = |i: usize| format!("t{i}");
    for (i, task) in tasks.iter().enumerate() {
        let upstream_states: Vec<TaskState> =
            task.upstream.iter().map(|&u| states[&name(u)].0).collect();
        let decision = decide(RULES[task.rule].1, upstream_states.iter().copied());
        let actual = states[&name(i)];
        match (decision, source(tasks, i)) {
            (Decision::Run, None) => prop_assert_eq!(actual, task.behaviour.end(), "t{}", i),
            (Decision::Run, Some((u, emitted))) => {
                let items = report.items(&name(i));
                let n = emitted.map_or_else(|| report.items(&name(u)).len(), usize::from);
                let mapped = states[&name(u)].0 == TaskState::Succeeded && n > 0;
                let expected = match (mapped, task.behaviour.end().0) {
                    (false, _) => (TaskState::Skipped, 0),
                    (true, TaskState::Succeeded) => (TaskState::Succeeded, 1),
                    (true, _) => (TaskState::Failed, 1),
                };
                prop_assert_eq!(actual, expected, "t{} over t{}", i, u);
                let item_count = if mapped { n } else { 0 };
                prop_assert_eq!(items.len(), item_count, "items of t{}", i);
                let output = report.task(&name(i)).output.as_deref();
                if !mapped {
                    prop_assert_eq!(output, Some("[]"), "t{} maps over nothing", i);
                }
            }
            (other, _) => {
                let settled = other.settled_state().expect("not run");
                prop_assert_eq!(actual, (settled, 0), "t{}", i);
            }
        }
        check_starts_after_upstreams(report, i, &task.upstream)?;
    }

    let failed = states.values().any(|(s, _)| s.is_failure());
    let expected = if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    prop_assert_eq!(report.status(), expected);
    Ok(())
}

/// Each start of task `i` came after every upstream settled: in harness turns (a start
/// is made after its step commits, so an upstream settled in the same step counts) and
/// on the clock.
fn check_starts_after_upstreams(
    report: &Report,
    i: usize,
    upstream: &[usize],
) -> Result<(), TestCaseError> {
    for start in report.starts_of(&format!("t{i}")) {
        for &u in upstream {
            let up = format!("t{u}");
            let settled_turn = report.observed.settled_turn.get(&up).copied();
            prop_assert!(
                settled_turn.is_some_and(|t| t <= start.turn),
                "t{} started in turn {} before {} settled (turn {:?})",
                i,
                start.turn,
                up,
                settled_turn
            );
            let ended = report.task(&up).ended_at.map(|e| e - sim::T0);
            prop_assert!(ended.is_some_and(|e| e <= start.at), "t{i} vs {up}");
        }
    }
    Ok(())
}

async fn run(tasks: &[Task], max_tasks: Option<u32>, duplicates: bool) -> Report {
    let mut sim = Sim::new();
    sim.track_settles = true;
    if duplicates {
        sim.duplicates = Duplicates {
            after_ms: vec![0, 3 * S],
        };
    }
    sim.run_yaml(&yaml(tasks, max_tasks)).await
}

fn summary(report: &Report) -> (RunStatus, BTreeMap<String, (TaskState, u32)>) {
    (report.status(), report.states())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_dags_settle_as_the_trigger_rules_decide(tasks in dag()) {
        let report = sim::block_on(run(&tasks, None, false));
        check(&tasks, &report)?;
    }

    #[test]
    fn random_dags_under_a_task_limit_and_duplicated_delivery_end_the_same(
        tasks in dag(),
        max_tasks in 1u32..4,
    ) {
        let plain = sim::block_on(run(&tasks, None, false));
        let limited = sim::block_on(run(&tasks, Some(max_tasks), true));
        check(&tasks, &limited)?;
        prop_assert_eq!(summary(&limited), summary(&plain));
        let most = limited.observed.most_leases.values().copied().max().unwrap_or(0);
        prop_assert!(most <= max_tasks, "{} slots held, limit {}", most, max_tasks);
    }
}
