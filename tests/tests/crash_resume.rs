//! A runner killed with SIGKILL at any point loses nothing: `aloft resume` finishes the
//! run, no task that already ran runs again, and every output is there.
//!
//! Each task appends its name to `marks` (in the workflow's folder, the tasks' working
//! directory) when it starts, so a task that ran twice shows up twice.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use aloft_tests::{GUARD, Sandbox, sh_task, table, task, task_table, wait_for};

/// A task that marks its start, works a little and prints its name and attempt.
const STEP: &str = r#"echo "$ALOFT_TASK" >> marks
sleep 0.2
printf '{"task": "%s", "attempt": %s}' "$ALOFT_TASK" "$ALOFT_ATTEMPT""#;

/// The last task: marks its start and echoes its input, so its output shows what it
/// received from upstream.
const ECHO: &str = r#"echo "$ALOFT_TASK" >> marks
cat"#;

/// A task that marks its start and then waits for a `release` file (at most 60 s).
const HOLD: &str = r#"echo "$ALOFT_TASK" >> marks
i=0
while [ ! -e release ] && [ "$i" -lt 3000 ]; do sleep 0.02; i=$((i + 1)); done
printf '{"task": "%s", "held": true}' "$ALOFT_TASK""#;

const DAG: [(&str, &[&str]); 6] = [
    ("a", &[]),
    ("b", &["a"]),
    ("c", &["a"]),
    ("d", &["a"]),
    ("e", &["b", "c"]),
    ("f", &["d", "e"]),
];

fn workflow(name: &str, tasks: &[(&str, &[&str], &str)]) -> String {
    let mut yaml = format!(
        "name: {name}\nconcurrency: {{max_tasks: 2}}\n\
         defaults: {{timeout: 5m, retry: {{max_attempts: 1}}}}\ntasks:\n"
    );
    for (task, depends_on, script) in tasks {
        let settings = if depends_on.is_empty() {
            Vec::new()
        } else {
            vec![format!("depends_on: [{}]", depends_on.join(", "))]
        };
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        yaml += &sh_task(task, &settings, script);
    }
    yaml
}

fn dag_workflow() -> String {
    let tasks: Vec<(&str, &[&str], &str)> = DAG
        .iter()
        .map(|&(name, deps)| (name, deps, if name == "f" { ECHO } else { STEP }))
        .collect();
    workflow("crash-resume", &tasks)
}

/// Where the runner is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after `runs list` first shows the run.
    Elapsed(Duration),
    /// As soon as the task has marked its start (its process is running).
    Started(&'static str),
    /// As soon as the runner has committed the task's first attempt (its `.in` file is
    /// written just before), before or while it spawns the process.
    Launched(&'static str),
    /// As soon as the task's first attempt has written its exit status (the runner may
    /// not have recorded it yet).
    Exited(&'static str),
}

fn marks(sandbox: &Sandbox) -> Vec<String> {
    sandbox.read("marks").lines().map(str::to_owned).collect()
}

fn wait_for_mark(sandbox: &Sandbox, task: &str) {
    wait_for(&format!("task {task} to start"), GUARD, || {
        marks(sandbox).iter().any(|m| m == task).then_some(())
    });
}

/// Start `aloft run`, wait for the kill point, SIGKILL it. Returns the run id.
fn run_and_kill(sandbox: &Sandbox, file: &Path, at: KillAt) -> String {
    let file = file.to_str().expect("a UTF-8 path");
    let running = sandbox.start(&["run", file, "--output", "json"]);
    let run_id = sandbox.wait_for_run();
    match at {
        KillAt::Elapsed(delay) => std::thread::sleep(delay),
        KillAt::Started(task) => wait_for_mark(sandbox, task),
        KillAt::Launched(task) => {
            let started = sandbox.attempt_file(&run_id, task, 1, "in");
            let start = Instant::now();
            // Look often: the moment between launch and spawn is short.
            while !started.exists() {
                assert!(start.elapsed() < GUARD, "task {task} was never launched");
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        KillAt::Exited(task) => {
            let status = sandbox.attempt_file(&run_id, task, 1, "status");
            wait_for(&format!("task {task} to exit"), GUARD, || {
                status.exists().then_some(())
            });
        }
    }
    running.kill().assert_no_panic();
    run_id
}

/// Resume the run to its end and return what it printed.
fn resume(sandbox: &Sandbox, run_id: &str) -> Value {
    let done = sandbox.aloft(&["resume", run_id, "--output", "json"]);
    done.assert_no_panic();
    assert_eq!(
        done.code,
        Some(0),
        "resume failed\nstdout:\n{}\nstderr:\n{}\nmarks: {:?}\nattempt files: {:?}",
        done.stdout,
        done.stderr,
        marks(sandbox),
        attempt_files(sandbox, run_id)
    );
    done.json()
}

/// The names of a run's attempt files, to tell what a failed resume found.
fn attempt_files(sandbox: &Sandbox, run_id: &str) -> Vec<String> {
    let folder = sandbox.runs_folder().join(run_id).join("tasks");
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every task succeeded on attempt 1, ran exactly once, and its output is whole.
fn assert_dag_finished_once(sandbox: &Sandbox, run_id: &str, run: &Value) {
    assert_eq!(run["id"], run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let expected: Vec<(&str, &str, u64)> = DAG
        .iter()
        .map(|&(name, _)| (name, "succeeded", 1))
        .collect();
    assert_eq!(task_table(run), table(&expected), "{run}");

    let mut seen = marks(sandbox);
    seen.sort();
    let all: Vec<&str> = DAG.iter().map(|&(name, _)| name).collect();
    assert_eq!(seen, all, "each task must start exactly once");

    for &(name, _) in &DAG[..5] {
        assert_eq!(
            task(run, name)["output"],
            json!({"task": name, "attempt": 1}),
            "output of {name}"
        );
    }
    let echoed = &task(run, "f")["output"];
    assert_eq!(echoed["run"]["id"], run_id);
    assert_eq!(echoed["run"]["attempt"], 1);
    assert_eq!(
        echoed["upstream"],
        json!({"d": {"task": "d", "attempt": 1}, "e": {"task": "e", "attempt": 1}})
    );

    let shown = sandbox.aloft(&["runs", "show", run_id, "--output", "json"]);
    shown.assert_code(0);
    assert_eq!(&shown.json(), run, "runs show agrees with resume");
}

fn crash_and_resume(at: KillAt) {
    let sandbox = Sandbox::new();
    let file = sandbox.write("crash.yaml", dag_workflow());

    let run_id = run_and_kill(&sandbox, &file, at);
    let run = resume(&sandbox, &run_id);

    assert_dag_finished_once(&sandbox, &run_id, &run);
}

/// Ten kill times spread over the run, which takes about 0.65 s: three rounds of
/// 0.2 s tasks, two at a time.
const SPREAD_MS: [u64; 10] = [0, 40, 110, 180, 250, 320, 390, 460, 530, 600];

/// Run every kill point in its own sandbox at once; report each one that failed.
fn crash_and_resume_all(points: &[KillAt], scenario: fn(KillAt)) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = points
            .iter()
            .map(|&at| (at, scope.spawn(move || scenario(at))))
            .collect();
        handles
            .into_iter()
            .filter_map(|(at, handle)| handle.join().err().map(|e| panic_text(at, &*e)))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} kill points failed:\n\n{}",
        failures.len(),
        points.len(),
        failures.join("\n\n")
    );
}

fn panic_text(at: KillAt, payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    format!("killed at {at:?}: {text}")
}

#[test]
fn resume_after_kills_spread_over_the_run() {
    let points: Vec<KillAt> = SPREAD_MS
        .iter()
        .map(|&ms| KillAt::Elapsed(Duration::from_millis(ms)))
        .collect();
    crash_and_resume_all(&points, crash_and_resume);
}

#[test]
fn resume_after_kills_as_each_task_is_launched() {
    let points: Vec<KillAt> = DAG
        .iter()
        .map(|&(name, _)| KillAt::Launched(name))
        .collect();
    crash_and_resume_all(&points, crash_and_resume);
}

/// `list` outputs six ids; `each` maps over them, two at a time, marking `each[i]` and
/// echoing its input; `done` echoes what it received.
fn map_workflow() -> String {
    let mut yaml = "name: crash-map\ndefaults: {timeout: 5m, retry: {max_attempts: 1}}\n\
                    tasks:\n  list: {run: {pass: {result: {ids: [1, 2, 3, 4, 5, 6]}}}}\n"
        .to_owned();
    let each = [
        "depends_on: [list]",
        "for_each: $.list.ids",
        "max_concurrency: 2",
    ];
    yaml += &sh_task("each", &each, STEP_THEN_ECHO);
    yaml += &sh_task("done", &["depends_on: [each]"], ECHO);
    yaml
}

/// Marks its start, works a little, echoes its input.
const STEP_THEN_ECHO: &str = r#"echo "$ALOFT_TASK" >> marks
sleep 0.2
cat"#;

fn crash_and_resume_map(at: KillAt) {
    let sandbox = Sandbox::new();
    let file = sandbox.write("map.yaml", map_workflow());
    let run_id = run_and_kill(&sandbox, &file, at);

    let run = resume(&sandbox, &run_id);

    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        task_table(&run),
        table(&[
            ("list", "succeeded", 1),
            ("each", "succeeded", 1),
            ("done", "succeeded", 1)
        ])
    );
    assert_eq!(
        task(&run, "each")["items"],
        json!({"total": 6, "failed": 0})
    );
    let mut seen = marks(&sandbox);
    seen.sort();
    let expected = [
        "done", "each[0]", "each[1]", "each[2]", "each[3]", "each[4]", "each[5]",
    ];
    assert_eq!(seen, expected, "each item must start exactly once");
    let items: Vec<&Value> = task(&run, "done")["output"]["upstream"]["each"]
        .as_array()
        .expect("done received the list of item outputs")
        .iter()
        .map(|output| &output["item"])
        .collect();
    assert_eq!(items, [1, 2, 3, 4, 5, 6].map(|i| json!(i)).each_ref());
}

#[test]
fn resume_after_kills_during_a_fan_out() {
    let points = [
        KillAt::Started("each[0]"),
        KillAt::Started("each[2]"),
        KillAt::Started("each[3]"),
        KillAt::Started("each[5]"),
        KillAt::Started("done"),
    ];
    crash_and_resume_all(&points, crash_and_resume_map);
}

#[test]
fn resume_after_kill_while_the_first_task_runs() {
    crash_and_resume(KillAt::Started("a"));
}

#[test]
fn resume_after_kill_just_as_the_first_task_exits() {
    crash_and_resume(KillAt::Exited("a"));
}

#[test]
fn resume_after_kill_while_two_tasks_run() {
    crash_and_resume(KillAt::Started("c"));
}

#[test]
fn resume_after_kill_while_a_task_that_waited_for_a_slot_runs() {
    crash_and_resume(KillAt::Started("d"));
}

#[test]
fn resume_after_kill_just_as_the_fan_in_exits() {
    crash_and_resume(KillAt::Exited("e"));
}

#[test]
fn resume_after_kill_while_the_last_task_runs() {
    crash_and_resume(KillAt::Started("f"));
}

#[test]
fn resume_survives_being_killed_itself() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("crash.yaml", dag_workflow());
    let run_id = run_and_kill(&sandbox, &file, KillAt::Started("b"));

    let resuming = sandbox.start(&["resume", &run_id, "--output", "json"]);
    wait_for_mark(&sandbox, "e");
    resuming.kill().assert_no_panic();
    let run = resume(&sandbox, &run_id);

    assert_dag_finished_once(&sandbox, &run_id, &run);
}

#[test]
fn resume_of_a_settled_run_prints_it_and_runs_nothing() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("crash.yaml", dag_workflow());
    let (done, printed) = sandbox.run_json(&file);
    done.assert_code(0);
    let run_id = printed["id"].as_str().expect("a run id").to_owned();

    let run = resume(&sandbox, &run_id);

    assert_eq!(run, printed);
    assert_dag_finished_once(&sandbox, &run_id, &run);
}

fn hold_workflow() -> String {
    workflow(
        "crash-hold",
        &[
            ("a", &[], STEP),
            ("hold", &["a"], HOLD),
            ("z", &["hold"], STEP),
        ],
    )
}

/// True while the process named in `pid_file` exists and is not a zombie.
fn pid_is_alive(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Kill the runner while `hold` runs; check that its process outlived the runner.
fn kill_while_held(sandbox: &Sandbox) -> String {
    let file = sandbox.write("hold.yaml", hold_workflow());
    let run_id = run_and_kill(sandbox, &file, KillAt::Started("hold"));
    let pid_file = sandbox.attempt_file(&run_id, "hold", 1, "claim");
    wait_for("hold's wrapper to record its pid", GUARD, || {
        pid_file.exists().then_some(())
    });
    assert!(
        pid_is_alive(&pid_file),
        "hold's process died with the runner"
    );
    let status = sandbox.attempt_file(&run_id, "hold", 1, "status");
    assert!(!status.exists(), "hold ended early");
    run_id
}

fn assert_hold_finished_once(sandbox: &Sandbox, run: &Value) {
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        task_table(run),
        table(&[
            ("a", "succeeded", 1),
            ("hold", "succeeded", 1),
            ("z", "succeeded", 1)
        ])
    );
    assert_eq!(
        task(run, "hold")["output"],
        json!({"task": "hold", "held": true})
    );
    assert_eq!(marks(sandbox), ["a", "hold", "z"]);
}

/// Kill the process group of `hold`'s wrapper (the test's own grandchild) and wait
/// until it is gone.
fn kill_hold_process(pid_file: &Path) {
    let text = std::fs::read_to_string(pid_file).expect("hold's pid file");
    let raw: i32 = text.trim().parse().expect("a pid");
    let pid = rustix::process::Pid::from_raw(raw).expect("a positive pid");
    rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
        .expect("kill hold's process group");
    wait_for("hold's process to die", GUARD, || {
        (!pid_is_alive(pid_file)).then_some(())
    });
}

/// The runner writes an attempt's `.in` file, commits, and then spawns its wrapper,
/// which claims the attempt (`.claim`, holding its pid) before it runs the command. A
/// runner killed between the two leaves a running attempt with `.in` and nothing else,
/// and no process: the command never ran. `resume_after_kills_as_each_task_is_launched` reaches that
/// moment by chance; this test builds the same files on purpose (stop `hold` before
/// its command did anything visible, remove what its wrapper wrote), so that the
/// outcome does not depend on when the kill lands.
#[test]
fn resume_starts_an_attempt_whose_runner_died_before_spawning_it() {
    let sandbox = Sandbox::new();
    let run_id = kill_while_held(&sandbox);
    let pid_file = sandbox.attempt_file(&run_id, "hold", 1, "claim");
    kill_hold_process(&pid_file);
    for ext in ["claim", "out", "log"] {
        let file = sandbox.attempt_file(&run_id, "hold", 1, ext);
        std::fs::remove_file(&file).expect("remove what the wrapper wrote");
    }
    sandbox.write("marks", "a\n");
    sandbox.write("release", "");
    let left: Vec<String> = attempt_files(&sandbox, &run_id)
        .into_iter()
        .filter(|f| f.starts_with("hold."))
        .collect();
    assert_eq!(left, ["hold.1.in"]);

    let run = resume(&sandbox, &run_id);

    assert_hold_finished_once(&sandbox, &run);
}

#[test]
fn resume_picks_up_a_task_that_finished_while_no_runner_was_alive() {
    let sandbox = Sandbox::new();
    let run_id = kill_while_held(&sandbox);
    let status = sandbox.attempt_file(&run_id, "hold", 1, "status");

    sandbox.write("release", "");
    wait_for("hold to write its exit status", GUARD, || {
        status.exists().then_some(())
    });
    let run = resume(&sandbox, &run_id);

    assert_hold_finished_once(&sandbox, &run);
}

#[test]
fn resume_follows_a_task_still_running_from_the_killed_runner() {
    let sandbox = Sandbox::new();
    let run_id = kill_while_held(&sandbox);

    let mut resuming = sandbox.start(&["resume", &run_id, "--output", "json"]);
    // Give the resume time to look at the attempt while it still runs; a resume that
    // wrongly gives it up fails the run (one attempt allowed) and exits here.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(700) {
        assert!(!resuming.has_exited(), "resume ended while hold still ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    sandbox.write("release", "");
    let done = resuming.wait();
    done.assert_no_panic();
    done.assert_code(0);

    assert_hold_finished_once(&sandbox, &done.json());
}

#[test]
fn interrupt_saves_the_run_and_resume_finishes_it() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("hold.yaml", hold_workflow());
    let running = sandbox.start(&["run", "hold.yaml", "--output", "json"]);
    let run_id = sandbox.wait_for_run();
    wait_for_mark(&sandbox, "hold");

    let pid = rustix::process::Pid::from_raw(running.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("send SIGINT");
    let interrupted = running.wait();
    interrupted.assert_no_panic();
    interrupted.assert_code(130);
    assert!(
        interrupted
            .stderr
            .contains(&format!("`aloft resume {run_id}` continues it")),
        "{}",
        interrupted.stderr
    );
    assert!(file.exists());

    sandbox.write("release", "");
    let run = resume(&sandbox, &run_id);
    assert_hold_finished_once(&sandbox, &run);
}

/// One process drives a run at a time: a resume while its runner is alive is refused,
/// naming that process, and a start with the run's idempotency key follows the run to
/// its end instead of driving it a second time.
#[test]
fn a_run_with_a_live_runner_is_followed_not_driven_twice() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("hold.yaml", hold_workflow());
    let path = file.display().to_string();
    let first = sandbox.start(&["run", &path, "--idempotency-key", "k1", "--output", "json"]);
    let run_id = sandbox.wait_for_run();
    wait_for("hold to start", GUARD, || {
        marks(&sandbox).contains(&"hold".to_owned()).then_some(())
    });

    let refused = sandbox.aloft(&["resume", &run_id]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "run {run_id} is being driven by process {}",
            first.id()
        )),
        "{}",
        refused.stderr
    );
    let joined = sandbox.start(&["run", &path, "--idempotency-key", "k1", "--output", "json"]);
    sandbox.write("release", "");
    let (first, joined) = (first.wait(), joined.wait());

    first.assert_code(0);
    joined.assert_code(0);
    assert!(
        joined.stderr.contains("following it to its end"),
        "{}",
        joined.stderr
    );
    assert_eq!(joined.json()["id"], json!(run_id));
    assert_hold_finished_once(&sandbox, &joined.json());
}

/// A start that follows a run another process drives takes the run over when that
/// process is killed, and finishes it with every task run once.
#[test]
fn a_follower_picks_the_run_up_when_its_runner_is_killed() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("hold.yaml", hold_workflow());
    let path = file.display().to_string();
    let first = sandbox.start(&["run", &path, "--idempotency-key", "k2", "--output", "json"]);
    let run_id = sandbox.wait_for_run();
    wait_for("hold to start", GUARD, || {
        marks(&sandbox).contains(&"hold".to_owned()).then_some(())
    });
    let follower = sandbox.start(&["run", &path, "--idempotency-key", "k2", "--output", "json"]);
    wait_for("the follower to join", GUARD, || {
        let said = sandbox.stderr_so_far();
        said.iter()
            .any(|line| line.contains("following it to its end"))
            .then_some(())
    });

    first.kill();
    sandbox.write("release", "");
    let done = follower.wait();

    done.assert_code(0);
    assert!(
        done.stderr.contains("picking the run up"),
        "{}",
        done.stderr
    );
    assert_eq!(done.json()["id"], json!(run_id));
    assert_hold_finished_once(&sandbox, &done.json());
}
