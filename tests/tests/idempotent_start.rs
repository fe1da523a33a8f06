//! `aloft run --idempotency-key`: one run per workflow and key, inputs compared as JSON.

use aloft_tests::{GUARD, Sandbox, sh_task, table, task_table, wait_for};

/// `a`, then `hold` (waits for a `release` file, at most 60 s), then `z`; each marks
/// its start in `marks`.
fn held_workflow() -> String {
    let mark = |rest: &str| format!("echo \"$ALOFT_TASK\" >> marks\n{rest}echo '{{}}'");
    let wait = "i=0\nwhile [ ! -e release ] && [ \"$i\" -lt 3000 ]; do sleep 0.02; \
                i=$((i + 1)); done\n";
    format!(
        "name: keyed\ndefaults: {{retry: {{max_attempts: 1}}}}\ntasks:\n{}{}{}",
        sh_task("a", &[], &mark("")),
        sh_task("hold", &["depends_on: [a]"], &mark(wait)),
        sh_task("z", &["depends_on: [hold]"], &mark("")),
    )
}

fn run_args<'a>(key: &'a str, input: &'a str) -> [&'a str; 8] {
    [
        "run",
        "keyed.yaml",
        "--idempotency-key",
        key,
        "--input",
        input,
        "--output",
        "json",
    ]
}

fn wait_for_mark(sandbox: &Sandbox, task: &str) {
    wait_for(&format!("task {task} to start"), GUARD, || {
        sandbox
            .read("marks")
            .lines()
            .any(|m| m == task)
            .then_some(())
    });
}

/// Wait until `n` commands have created the run or found it by its key (their log
/// lines say which), so that none of them can still be starting when the run ends.
fn wait_for_starts(sandbox: &Sandbox, n: usize) {
    wait_for(&format!("{n} starts to reach the run"), GUARD, || {
        let logs = sandbox.stderr_so_far();
        let reached = logs
            .iter()
            .filter(|log| {
                log.contains("run created")
                    || log.contains("duplicate start returned the existing run")
            })
            .count();
        (reached >= n).then_some(())
    });
}

fn all_succeeded_once() -> std::collections::BTreeMap<String, (String, u64)> {
    table(&[
        ("a", "succeeded", 1),
        ("hold", "succeeded", 1),
        ("z", "succeeded", 1),
    ])
}

#[test]
fn repeated_start_with_an_equal_input_joins_the_running_run() {
    let sandbox = Sandbox::new();
    sandbox.write("keyed.yaml", held_workflow());
    let first = sandbox.start(&run_args("k1", r#"{"a":1,"b":2}"#));
    wait_for_mark(&sandbox, "hold");

    let second = sandbox.start(&run_args("k1", r#"{ "b": 2, "a": 1 }"#));
    // The run cannot end before `release`, so the second start finds it running.
    wait_for_starts(&sandbox, 2);
    sandbox.write("release", "");
    let (first, second) = (first.wait(), second.wait());

    first.assert_code(0);
    second.assert_code(0);
    let (first, second) = (first.json(), second.json());
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["idempotency_key"], "k1");
    assert_eq!(task_table(&first), all_succeeded_once());
    assert_eq!(task_table(&second), all_succeeded_once());
    assert_eq!(sandbox.read("marks"), "a\nhold\nz\n");
    assert_eq!(sandbox.run_ids().len(), 1);
}

#[test]
fn repeated_start_with_another_input_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write("keyed.yaml", held_workflow());
    let first = sandbox.start(&run_args("k1", r#"{"a":1}"#));
    wait_for_mark(&sandbox, "hold");

    let refused = sandbox.aloft(&run_args("k1", r#"{"a":2}"#));
    sandbox.write("release", "");
    let first = first.wait();

    refused.assert_no_panic();
    refused.assert_failed();
    assert!(
        refused.stderr.contains("\"k1\"") && refused.stderr.contains("another input"),
        "{}",
        refused.stderr
    );
    first.assert_code(0);
    assert_eq!(sandbox.run_ids().len(), 1);
    assert_eq!(sandbox.read("marks"), "a\nhold\nz\n");
}

#[test]
fn key_of_a_settled_run_is_not_reused() {
    let sandbox = Sandbox::new();
    sandbox.write("keyed.yaml", held_workflow());
    sandbox.write("release", "");
    let first = sandbox.aloft(&run_args("k1", r#"{"a":1}"#));
    first.assert_code(0);
    let run_id = first.json()["id"].as_str().expect("a run id").to_owned();

    let again = sandbox.aloft(&run_args("k1", r#"{"a":1}"#));

    again.assert_no_panic();
    again.assert_failed();
    assert!(
        again.stderr.contains(&run_id) && again.stderr.contains("settled"),
        "{}",
        again.stderr
    );
    assert_eq!(sandbox.run_ids(), [run_id]);
    assert_eq!(sandbox.read("marks"), "a\nhold\nz\n");
}

#[test]
fn simultaneous_starts_with_one_key_make_one_run() {
    let sandbox = Sandbox::new();
    sandbox.write("keyed.yaml", held_workflow());
    sandbox.aloft(&["runs", "list"]).assert_code(0);

    let starts: Vec<_> = (0..3)
        .map(|_| sandbox.start(&run_args("k3", r#"{"same": true}"#)))
        .collect();
    wait_for_starts(&sandbox, 3);
    sandbox.write("release", "");
    let done: Vec<_> = starts.into_iter().map(|s| s.wait()).collect();

    let ids: Vec<_> = done
        .iter()
        .map(|d| {
            d.assert_no_panic();
            d.assert_code(0);
            d.json()["id"].clone()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(sandbox.run_ids().len(), 1);
    assert_eq!(sandbox.read("marks"), "a\nhold\nz\n");
}
