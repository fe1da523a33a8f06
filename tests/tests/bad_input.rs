//! Bad input of every kind ends with a clear message naming the thing at fault and a
//! non-zero exit, never a panic.

use serde_json::Value;

use aloft_tests::{Finished, Sandbox, sh_task, table, task, task_table};

/// The failure of the command names `needles` on stderr; it exits `code`; no panic.
fn assert_refused(done: &Finished, code: i32, needles: &[&str]) {
    done.assert_no_panic();
    done.assert_code(code);
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "stderr does not name {needle:?}:\n{}",
            done.stderr
        );
    }
}

/// Validate and run `file` with `contents`: both refuse it, naming `needles`.
fn assert_file_refused(name: &str, contents: &[u8], needles: &[&str]) {
    let sandbox = Sandbox::new();
    sandbox.write(name, contents);

    let validated = sandbox.aloft(&["validate", name]);
    assert_refused(&validated, 1, needles);
    let ran = sandbox.aloft(&["run", name]);
    assert_refused(&ran, 2, needles);
    assert!(sandbox.run_ids().is_empty(), "a refused file started a run");
}

#[test]
fn malformed_yaml_is_refused_with_its_position() {
    assert_file_refused(
        "broken.yaml",
        b"name: broken\ntasks:\n  a: {run: {pass: {result: {}}}\n  b: [\n",
        &["broken.yaml:4:3: ", "invalid yaml"],
    );
}

#[test]
fn malformed_json_workflow_is_refused_with_its_position() {
    assert_file_refused(
        "broken.json",
        b"{\"name\": \"broken\",\n \"tasks\": {\"a\": }\n}\n",
        &["broken.json:2:"],
    );
}

#[test]
fn unknown_field_is_refused_by_name() {
    assert_file_refused(
        "typo.yaml",
        b"name: typo\ntasks:\n  a: {run: {pass: {result: {}}}, retires: 3}\n",
        &["typo.yaml:3:", "unknown field `retires`"],
    );
}

#[test]
fn workflow_file_that_is_not_utf8_is_refused() {
    assert_file_refused(
        "latin1.yaml",
        b"name: latin\n# caf\xe9\ntasks:\n  a: {run: {pass: {result: {}}}}\n",
        &["latin1.yaml:2:", "utf-8"],
    );
}

#[test]
fn workflow_that_is_a_list_is_refused() {
    assert_file_refused("list.yaml", b"- name: x\n- tasks: {}\n", &["list.yaml:1:"]);
}

#[test]
fn empty_workflow_file_is_refused() {
    assert_file_refused("empty.yaml", b"", &["empty.yaml"]);
}

#[test]
fn missing_workflow_file_is_refused_by_name() {
    let sandbox = Sandbox::new();
    let validated = sandbox.aloft(&["validate", "absent.yaml"]);
    assert_refused(&validated, 1, &["absent.yaml", "cannot read"]);
    let ran = sandbox.aloft(&["run", "absent.yaml"]);
    assert_refused(&ran, 2, &["absent.yaml", "cannot read"]);
}

fn ok_workflow(sandbox: &Sandbox) {
    sandbox.write(
        "ok.yaml",
        "name: ok\ntasks:\n  a: {run: {pass: {result: {}}}}\n",
    );
}

#[test]
fn input_that_is_not_json_is_refused_naming_the_option() {
    let sandbox = Sandbox::new();
    ok_workflow(&sandbox);

    let ran = sandbox.aloft(&["run", "ok.yaml", "--input", "{nope"]);
    assert_refused(&ran, 1, &["--input", "not JSON"]);
    assert!(sandbox.run_ids().is_empty(), "bad input started a run");
}

#[test]
fn input_file_that_is_missing_or_not_json_is_refused_naming_the_file() {
    let sandbox = Sandbox::new();
    ok_workflow(&sandbox);
    sandbox.write("input.txt", "not json at all");

    let missing = sandbox.aloft(&["run", "ok.yaml", "--input", "@absent.json"]);
    assert_refused(&missing, 1, &["absent.json"]);
    let bad = sandbox.aloft(&["run", "ok.yaml", "--input", "@input.txt"]);
    assert_refused(&bad, 1, &["input.txt", "not JSON"]);
    assert!(sandbox.run_ids().is_empty(), "bad input started a run");
}

#[test]
fn unknown_run_id_is_refused_by_every_command() {
    let sandbox = Sandbox::new();
    ok_workflow(&sandbox);
    let (done, _) = sandbox.run_json(&sandbox.path().join("ok.yaml"));
    done.assert_code(0);

    for args in [
        &["runs", "show", "no-such-run"][..],
        &["runs", "show", "no-such-run", "--output", "json"],
        &["resume", "no-such-run"],
        &["logs", "no-such-run", "a"],
    ] {
        let refused = sandbox.aloft(args);
        assert_refused(&refused, 1, &["no run \"no-such-run\""]);
        assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    }
}

#[test]
fn logs_of_an_unknown_task_is_refused_by_name() {
    let sandbox = Sandbox::new();
    ok_workflow(&sandbox);
    let (_, run) = sandbox.run_json(&sandbox.path().join("ok.yaml"));
    let run_id = run["id"].as_str().expect("a run id");

    let refused = sandbox.aloft(&["logs", run_id, "zz"]);
    assert_refused(&refused, 1, &["zz"]);
    let refused = sandbox.aloft(&["logs", run_id, "a", "--attempt", "7"]);
    assert_refused(&refused, 1, &["attempts 1 to 1"]);
}

/// Runs one workflow of misbehaving tasks; each fails alone (one attempt each).
fn run_tasks(sandbox: &Sandbox, tasks: &[String]) -> Value {
    let yaml = format!(
        "name: misbehaving\ndefaults: {{retry: {{max_attempts: 1}}}}\ntasks:\n{}",
        tasks.concat()
    );
    let file = sandbox.write("workflow.yaml", yaml);
    let (done, run) = sandbox.run_json(&file);
    done.assert_no_panic();
    done.assert_code(1);
    assert_eq!(run["status"], "failed");
    run
}

fn error_of<'a>(run: &'a Value, name: &str) -> (&'a str, &'a str) {
    let error = &task(run, name)["error"];
    (
        error["kind"].as_str().unwrap_or("<none>"),
        error["message"].as_str().unwrap_or("<none>"),
    )
}

#[test]
fn missing_executable_fails_the_task_naming_it() {
    let sandbox = Sandbox::new();
    let run = run_tasks(
        &sandbox,
        &["  missing: {run: {command: [no-such-program-4711, --flag]}}\n".to_owned()],
    );

    assert_eq!(task_table(&run), table(&[("missing", "failed", 1)]));
    let (kind, message) = error_of(&run, "missing");
    assert_eq!(kind, "error");
    assert!(
        message.contains("executable not found: no-such-program-4711"),
        "{message}"
    );
}

#[test]
fn missing_relative_executable_fails_the_task_naming_it() {
    let sandbox = Sandbox::new();
    let run = run_tasks(
        &sandbox,
        &["  missing: {run: {command: [./bin/absent-tool]}}\n".to_owned()],
    );

    let (_, message) = error_of(&run, "missing");
    assert!(
        message.contains("executable not found: ./bin/absent-tool"),
        "{message}"
    );
}

#[test]
fn output_that_is_not_json_fails_as_bad_output() {
    let sandbox = Sandbox::new();
    let run = run_tasks(&sandbox, &[sh_task("chatty", &[], "echo hello world")]);

    assert_eq!(task_table(&run), table(&[("chatty", "failed", 1)]));
    let (kind, message) = error_of(&run, "chatty");
    assert_eq!(kind, "bad_output");
    assert!(
        message.contains("not JSON") && message.contains("hello world"),
        "{message}"
    );
}

#[test]
fn output_that_is_not_utf8_fails_as_bad_output() {
    let sandbox = Sandbox::new();
    let run = run_tasks(&sandbox, &[sh_task("latin", &[], r#"printf '"caf\351"'"#)]);

    assert_eq!(task_table(&run), table(&[("latin", "failed", 1)]));
    let (kind, message) = error_of(&run, "latin");
    assert_eq!(kind, "bad_output");
    assert!(message.contains("UTF-8"), "{message}");
}

/// A script printing a JSON string of `n` letters: its stored form is `n + 2` bytes.
fn string_of(n: usize) -> String {
    format!("printf '\"'; head -c {n} /dev/zero | tr '\\0' a; printf '\"'")
}

const LIMIT: usize = 262_144;

#[test]
fn output_over_the_limit_fails_as_payload_too_large_and_all_done_still_runs() {
    let sandbox = Sandbox::new();
    let run = run_tasks(
        &sandbox,
        &[
            sh_task("exact", &[], &string_of(LIMIT - 2)),
            sh_task("reader", &["depends_on: [exact]"], "wc -c"),
            sh_task("over", &[], &string_of(LIMIT - 1)),
            sh_task("strict", &["depends_on: [over]"], "echo '{}'"),
            sh_task(
                "tolerant",
                &["depends_on: [over]", "trigger_rule: all_done"],
                "echo '{}'",
            ),
        ],
    );

    assert_eq!(
        task_table(&run),
        table(&[
            ("exact", "succeeded", 1),
            ("reader", "succeeded", 1),
            ("over", "failed", 1),
            ("strict", "upstream_failed", 0),
            ("tolerant", "succeeded", 1),
        ])
    );
    let exact = task(&run, "exact")["output"]
        .as_str()
        .expect("a string output");
    assert_eq!(exact.len(), LIMIT - 2);
    // The reader got the whole upstream output in its input document.
    let read = task(&run, "reader")["output"]
        .as_u64()
        .expect("a byte count");
    assert!(read > LIMIT as u64, "reader's input was {read} bytes");
    let (kind, message) = error_of(&run, "over");
    assert_eq!(kind, "payload_too_large");
    assert!(
        message.contains(&format!("{} bytes", LIMIT + 1)) && message.contains("262144"),
        "{message}"
    );
}

#[test]
fn output_limit_counts_the_stored_form_not_the_whitespace_printed() {
    let sandbox = Sandbox::new();
    // Compact, this is {"k":"a…a"}: 8 + (LIMIT - 8) bytes, exactly the limit; as printed
    // it has 2000 more bytes of whitespace.
    let script = format!(
        "printf '{{ \"k\" : \"'; head -c {} /dev/zero | tr '\\0' a; printf '\"'; \
         head -c 2000 /dev/zero | tr '\\0' ' '; printf '}}'",
        LIMIT - 8
    );
    let yaml = format!("name: roomy\ntasks:\n{}", sh_task("roomy", &[], &script));
    let file = sandbox.write("workflow.yaml", yaml);

    let (done, run) = sandbox.run_json(&file);

    done.assert_code(0);
    assert_eq!(task_table(&run), table(&[("roomy", "succeeded", 1)]));
    let k = task(&run, "roomy")["output"]["k"]
        .as_str()
        .expect("a string");
    assert_eq!(k.len(), LIMIT - 8);
}

#[test]
fn huge_stdout_fails_as_payload_too_large_without_being_read() {
    let sandbox = Sandbox::new();
    let run = run_tasks(
        &sandbox,
        &[sh_task(
            "flood",
            &[],
            "head -c 17000000 /dev/zero | tr '\\0' 1",
        )],
    );

    assert_eq!(task_table(&run), table(&[("flood", "failed", 1)]));
    let (kind, message) = error_of(&run, "flood");
    assert_eq!(kind, "payload_too_large");
    assert!(message.contains("17000000 bytes"), "{message}");
}

#[test]
fn unknown_subcommand_and_missing_arguments_are_usage_errors() {
    let sandbox = Sandbox::new();
    let unknown = sandbox.aloft(&["frobnicate"]);
    assert_refused(&unknown, 2, &["frobnicate"]);
    let missing = sandbox.bare_command(&["run"]);
    let missing = sandbox.spawn(missing, "run (no file)".into()).wait();
    assert_refused(&missing, 2, &["FILE"]);
}

#[test]
fn reading_commands_never_create_a_database_where_db_points() {
    let sandbox = Sandbox::new();
    let typo = sandbox.path().join("typo").join("aloft.db");
    let typo_arg = typo.display().to_string();
    let mut listed = sandbox.bare_command(&["runs", "list", "--db", &typo_arg, "--output", "json"]);
    let listed = listed.output().expect("run aloft");
    assert_eq!(listed.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
    for args in [
        &["runs", "show", "some-run", "--db", &typo_arg][..],
        &["resume", "some-run", "--db", &typo_arg],
        &["logs", "some-run", "a", "--db", &typo_arg],
    ] {
        let refused = sandbox.bare_command(args).output().expect("run aloft");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no database at {typo_arg}")),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !sandbox.path().join("typo").exists(),
        "a reading command created the folder"
    );
}

#[test]
fn logs_of_a_for_each_task_ask_for_an_item() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "map.yaml",
        r#"
name: map
tasks:
  list: {run: {pass: {result: {xs: [1, 2, 3]}}}}
  each:
    depends_on: [list]
    for_each: $.list.xs
    run: {command: [sh, -c, "echo item >&2; echo '{}'"]}
"#,
    );
    let (done, run) = sandbox.run_json(&sandbox.path().join("map.yaml"));
    done.assert_code(0);
    let run_id = run["id"].as_str().expect("a run id");

    let refused = sandbox.aloft(&["logs", run_id, "each"]);
    assert_refused(
        &refused,
        1,
        &["for_each task with 3 items", "--item N (0 to 2)"],
    );
    let item = sandbox.aloft(&["logs", run_id, "each", "--item", "2"]);
    item.assert_code(0);
    assert_eq!(item.stdout, "== each[2] attempt 1 ==\nitem\n");
}

/// Someone who may read a database but not write it (another user's runs, a copy
/// on a read-only mount) can still list and show runs and read logs. As root the
/// commands run as `nobody` through setpriv; otherwise the files are made read-only.
#[test]
fn a_database_that_may_only_be_read_still_lists_and_shows_runs() {
    use std::os::unix::fs::PermissionsExt;

    let sandbox = Sandbox::new();
    ok_workflow(&sandbox);
    let (done, run) = sandbox.run_json(&sandbox.path().join("ok.yaml"));
    done.assert_code(0);
    let run_id = run["id"].as_str().expect("a run id").to_owned();

    let as_root = rustix::process::geteuid().is_root();
    let mut paths = vec![sandbox.path().to_path_buf()];
    for entry in walk(sandbox.path()) {
        paths.push(entry);
    }
    for path in &paths {
        let mode = if path.is_dir() { 0o555 } else { 0o444 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    // Every folder up to the sandbox must be enterable by the other user.
    let db = sandbox.db().display().to_string();
    for args in [
        vec!["runs", "list", "--db", &db, "--output", "json"],
        vec!["runs", "show", &run_id, "--db", &db, "--output", "json"],
        vec!["logs", &run_id, "a", "--db", &db],
    ] {
        let mut command = if as_root {
            let mut command = std::process::Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            command.arg(aloft_tests::binary("aloft"));
            command
        } else {
            std::process::Command::new(aloft_tests::binary("aloft"))
        };
        let out = command
            .args(&args)
            .current_dir("/")
            .output()
            .expect("run aloft");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&run_id) || args[0] == "logs",
            "{args:?}: {stdout}"
        );
    }
    for path in paths.iter().rev() {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

fn walk(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).expect("read folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
