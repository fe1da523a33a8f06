//! `aloft dev` as a process: what it does with command tasks when it stops, and when one
//! of them outlives its timeout. Against moto's server on 127.0.0.1.

use std::time::Duration;

use serde_json::Value;

use aloft_tests::aws::{LocalAws, Resources};
use aloft_tests::{GUARD, Running, Sandbox, processes_with_arg, task_table, wait_for};

fn dev(sandbox: &Sandbox, resources: &Resources) -> Running {
    let mut command = sandbox.bare_command(&["dev", "--wait-seconds", "1"]);
    resources.apply(&mut command);
    sandbox.spawn(command, "dev".into())
}

fn aloft(sandbox: &Sandbox, resources: &Resources, args: &[&str]) -> aloft_tests::Finished {
    let mut command = sandbox.bare_command(args);
    resources.apply(&mut command);
    sandbox.spawn(command, args.join(" ")).wait()
}

fn show(sandbox: &Sandbox, resources: &Resources, run_id: &str) -> Value {
    let shown = aloft(
        sandbox,
        resources,
        &[
            "runs",
            "show",
            run_id,
            "--backend",
            "aws",
            "--output",
            "json",
        ],
    );
    shown.assert_code(0);
    shown.json()
}

fn start(sandbox: &Sandbox, resources: &Resources, yaml: &str) -> String {
    let file = sandbox.write("workflow.yaml", yaml);
    aloft(
        sandbox,
        resources,
        &["workflows", "put", file.to_str().expect("path")],
    )
    .assert_code(0);
    let name = yaml
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .expect("a name");
    let workdir = sandbox.path().to_str().expect("path").to_owned();
    let started = aloft(sandbox, resources, &["start", name, "--workdir", &workdir]);
    started.assert_code(0);
    started.stdout.trim().to_owned()
}

fn signal(process: &Running, signal: rustix::process::Signal) {
    let pid =
        rustix::process::Pid::from_raw(i32::try_from(process.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, signal).expect("signal aloft dev");
}

#[test]
fn a_stopped_dev_lets_its_running_commands_finish_and_report() {
    let stack = LocalAws::start();
    let resources = stack.create("stop", 5, 60);
    let sandbox = Sandbox::new();
    let first = dev(&sandbox, &resources);
    let run_id = start(
        &sandbox,
        &resources,
        "name: slow-one
tasks:
  slow:
    run: {command: [sh, -c, 'touch started; sleep 2; echo \"{\\\"done\\\": true}\"']}
    timeout: 10m
",
    );
    wait_for("the command to start", GUARD, || {
        sandbox.path().join("started").exists().then_some(())
    });
    signal(&first, rustix::process::Signal::TERM);
    let stopped = first.wait();
    stopped.assert_code(0);
    assert!(
        stopped
            .stderr
            .contains("waiting for 1 running command task(s)"),
        "{}",
        stopped.stderr
    );

    // The next dev finds the result on the complete queue: one attempt, no timeout.
    let second = dev(&sandbox, &resources);
    let run = wait_for("the run to settle", GUARD, || {
        let run = show(&sandbox, &resources, &run_id);
        (run["status"] != "running" && run["status"] != "queued").then_some(run)
    });
    second.kill();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["tasks"]["slow"]["attempts"], 1);
    assert_eq!(
        run["tasks"]["slow"]["output"],
        serde_json::json!({"done": true})
    );
}

#[test]
fn a_timed_out_command_takes_its_background_processes_with_it() {
    let stack = LocalAws::start();
    let resources = stack.create("hang", 5, 2);
    let sandbox = Sandbox::new();
    let marker = format!("3{:07}", std::process::id());
    let dev = dev(&sandbox, &resources);
    let run_id = start(
        &sandbox,
        &resources,
        &format!(
            "name: hangs
tasks:
  hang:
    run: {{command: [sh, -c, 'sleep {marker} & wait']}}
    timeout: 2s
"
        ),
    );
    wait_for("the command to start", GUARD, || {
        (!processes_with_arg(&marker).is_empty()).then_some(())
    });
    let run = wait_for("the run to settle", GUARD, || {
        let run = show(&sandbox, &resources, &run_id);
        (run["status"] != "running" && run["status"] != "queued").then_some(run)
    });
    dev.kill();
    assert_eq!(run["status"], "failed");
    assert_eq!(
        task_table(&run),
        aloft_tests::table(&[("hang", "timed_out", 1)])
    );
    wait_for(
        "the background sleep to end with its attempt",
        Duration::from_secs(10),
        || processes_with_arg(&marker).is_empty().then_some(()),
    );
}
