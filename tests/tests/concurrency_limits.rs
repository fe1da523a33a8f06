//! Concurrency limits hold for real processes: tasks record when they start and end, and
//! the recorded intervals never overlap more than the limit allows.

use std::collections::BTreeMap;

use aloft_tests::{Sandbox, max_overlap, sh_task, table, task_table};

/// Records `start`, waits until two tasks are running together (or this is the last of
/// six), records `end`. With a limit of two the overlap is then exactly two without
/// relying on timing; a limit of one would make every task wait out its 10 s guard.
const MEET_ANOTHER: &str = r#"echo "start $ALOFT_RUN_ID $ALOFT_TASK $(date +%s%N)" >> times
i=0
while [ "$i" -lt 500 ]; do
  s=$(grep -c '^start' times); e=$(grep -c '^end' times)
  [ $((s - e)) -ge 2 ] && break
  [ "$e" -ge 5 ] && break
  sleep 0.02; i=$((i + 1))
done
echo "end $ALOFT_RUN_ID $ALOFT_TASK $(date +%s%N)" >> times
echo '{}'"#;

/// Records `start`, works briefly, records `end`.
const BRIEF: &str = r#"echo "start $ALOFT_RUN_ID $ALOFT_TASK $(date +%s%N)" >> times
sleep 0.15
echo "end $ALOFT_RUN_ID $ALOFT_TASK $(date +%s%N)" >> times
echo '{}'"#;

const SIX: [&str; 6] = ["t1", "t2", "t3", "t4", "t5", "t6"];

fn workflow(head: &str, tasks: &[&str], settings: &[&str], script: &str) -> String {
    let mut yaml =
        format!("{head}\ndefaults: {{timeout: 5m, retry: {{max_attempts: 1}}}}\ntasks:\n");
    for task in tasks {
        yaml += &sh_task(task, settings, script);
    }
    yaml
}

/// `(run, task) -> (start ns, end ns)` from the `times` file.
fn intervals(times: &str) -> BTreeMap<(String, String), (u128, u128)> {
    let mut found: BTreeMap<(String, String), (Option<u128>, Option<u128>)> = BTreeMap::new();
    for line in times.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, run, task, ns] = fields[..] else {
            panic!("malformed times line {line:?}");
        };
        let ns: u128 = ns
            .parse()
            .unwrap_or_else(|_| panic!("bad time in {line:?}"));
        let entry = found.entry((run.to_owned(), task.to_owned())).or_default();
        let slot = if kind == "start" {
            &mut entry.0
        } else {
            &mut entry.1
        };
        assert!(slot.is_none(), "{kind} recorded twice for {run} {task}");
        *slot = Some(ns);
    }
    found
        .into_iter()
        .map(|(key, (start, end))| {
            let start = start.unwrap_or_else(|| panic!("{key:?} never started"));
            let end = end.unwrap_or_else(|| panic!("{key:?} never ended"));
            assert!(start <= end, "{key:?} ended before it started");
            (key, (start, end))
        })
        .collect()
}

fn run_all_succeeding(sandbox: &Sandbox, yaml: String, tasks: &[&str]) {
    let file = sandbox.write("workflow.yaml", yaml);
    let (done, run) = sandbox.run_json(&file);
    done.assert_code(0);
    let expected: Vec<(&str, &str, u64)> = tasks.iter().map(|&t| (t, "succeeded", 1)).collect();
    assert_eq!(task_table(&run), table(&expected));
}

fn overlap_of_tasks(sandbox: &Sandbox) -> usize {
    let spans: Vec<(u128, u128)> = intervals(&sandbox.read("times")).into_values().collect();
    assert_eq!(
        spans.len(),
        6,
        "six tasks recorded:\n{}",
        sandbox.read("times")
    );
    max_overlap(&spans)
}

#[test]
fn max_tasks_two_runs_exactly_two_tasks_at_once() {
    let sandbox = Sandbox::new();
    let yaml = workflow(
        "name: two-at-once\nconcurrency: {max_tasks: 2}",
        &SIX,
        &[],
        MEET_ANOTHER,
    );

    run_all_succeeding(&sandbox, yaml, &SIX);

    assert_eq!(overlap_of_tasks(&sandbox), 2, "{}", sandbox.read("times"));
}

#[test]
fn pool_of_one_runs_one_task_at_a_time() {
    let sandbox = Sandbox::new();
    let yaml = workflow(
        "name: gate-of-one\npools: {gate: 1}",
        &SIX,
        &["pool: gate"],
        BRIEF,
    );

    run_all_succeeding(&sandbox, yaml, &SIX);

    assert_eq!(overlap_of_tasks(&sandbox), 1, "{}", sandbox.read("times"));
}

#[test]
fn max_tasks_one_runs_one_task_at_a_time() {
    let sandbox = Sandbox::new();
    let yaml = workflow(
        "name: one-at-once\nconcurrency: {max_tasks: 1}",
        &SIX,
        &[],
        BRIEF,
    );

    run_all_succeeding(&sandbox, yaml, &SIX);

    assert_eq!(overlap_of_tasks(&sandbox), 1, "{}", sandbox.read("times"));
}

#[test]
fn max_runs_one_serialises_runs_of_separate_processes() {
    let sandbox = Sandbox::new();
    let yaml = format!(
        "{}{}",
        workflow(
            "name: one-run-at-once\nconcurrency: {max_runs: 1}",
            &["a"],
            &[],
            BRIEF
        ),
        sh_task("b", &["depends_on: [a]"], BRIEF)
    );
    sandbox.write("workflow.yaml", yaml);
    // The database exists before the three start, as it would on a developer's machine.
    sandbox.aloft(&["runs", "list"]).assert_code(0);

    let running: Vec<_> = (0..3)
        .map(|_| sandbox.start(&["run", "workflow.yaml", "--output", "json"]))
        .collect();
    let runs: Vec<_> = running.into_iter().map(|r| r.wait()).collect();

    for done in &runs {
        done.assert_no_panic();
        done.assert_code(0);
        assert_eq!(done.json()["status"], "succeeded");
    }
    let mut spans: BTreeMap<String, (u128, u128)> = BTreeMap::new();
    for ((run, _task), (start, end)) in intervals(&sandbox.read("times")) {
        let span = spans.entry(run).or_insert((start, end));
        span.0 = span.0.min(start);
        span.1 = span.1.max(end);
    }
    assert_eq!(
        spans.len(),
        3,
        "three runs recorded:\n{}",
        sandbox.read("times")
    );
    let spans: Vec<(u128, u128)> = spans.into_values().collect();
    assert_eq!(max_overlap(&spans), 1, "{}", sandbox.read("times"));
}

#[test]
fn max_runs_one_serialises_runs_started_on_a_fresh_database() {
    let sandbox = Sandbox::new();
    let yaml = workflow(
        "name: fresh-db\nconcurrency: {max_runs: 1}",
        &["a"],
        &[],
        BRIEF,
    );
    sandbox.write("workflow.yaml", yaml);

    let running: Vec<_> = (0..3)
        .map(|_| sandbox.start(&["run", "workflow.yaml", "--output", "json"]))
        .collect();
    let runs: Vec<_> = running.into_iter().map(|r| r.wait()).collect();

    for done in &runs {
        done.assert_no_panic();
        done.assert_code(0);
    }
    let spans: Vec<(u128, u128)> = intervals(&sandbox.read("times")).into_values().collect();
    assert_eq!(spans.len(), 3);
    assert_eq!(max_overlap(&spans), 1, "{}", sandbox.read("times"));
}
