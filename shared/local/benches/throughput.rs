//! Throughput and scheduling delay of the embedded backend on durable SQLite.
//!
//! `cargo bench -p aloft-local --no-default-features --bench throughput -- [SHAPE...]`
//! runs each shape as one workflow of no-op tasks and prints a Markdown row per shape:
//! tasks per second (wall time from start request to settled run) and the p50 / p99
//! delay between a task's last upstream settling and the task starting, read back from
//! the stored timestamps (millisecond resolution). Shapes: chain1000, fan10000,
//! lattice100 (10,000 pass tasks each), and the peer shapes chain50, fan500, lattice10
//! and fan100proc (100 `true` processes, two at a time). Run one shape per process for
//! a meaningful peak RSS column: `scripts/bench` does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use aloft_engine::StartRequest;
use aloft_engine::ports::Store;
use aloft_local::{Runner, SystemClock};

fn main() {
    let mut shapes: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if shapes.is_empty() {
        shapes = ["chain1000", "fan10000", "lattice100"]
            .map(String::from)
            .to_vec();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| shape | tasks | seconds | tasks/s | delay p50 ms | delay p99 ms | delay max ms | \
         peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for shape in shapes {
        let Some((graph, command)) = build(&shape) else {
            eprintln!("unknown shape {shape}");
            std::process::exit(2);
        };
        let row = runtime.block_on(measure(&shape, &graph, command));
        println!("{row}");
    }
}

/// Task name to upstream names, in topological order, and whether tasks run `true`.
type Graph = Vec<(String, Vec<String>)>;

fn build(shape: &str) -> Option<(Graph, bool)> {
    let graph = match shape {
        "chain50" => chain(50),
        "chain1000" => chain(1000),
        "fan500" => fan(500),
        "fan10000" => fan(9998),
        "lattice10" => lattice(10),
        "lattice100" => lattice(100),
        "fan100proc" => (0..100).map(|i| (format!("p{i:03}"), Vec::new())).collect(),
        _ => return None,
    };
    Some((graph, shape == "fan100proc"))
}

fn chain(n: usize) -> Graph {
    (0..n)
        .map(|i| {
            (
                format!("t{i:04}"),
                if i > 0 {
                    vec![format!("t{:04}", i - 1)]
                } else {
                    vec![]
                },
            )
        })
        .collect()
}

fn fan(n: usize) -> Graph {
    let mut graph = vec![("root".to_owned(), vec![])];
    graph.extend((0..n).map(|i| (format!("f{i:05}"), vec!["root".to_owned()])));
    graph.push((
        "sink".to_owned(),
        (0..n).map(|i| format!("f{i:05}")).collect(),
    ));
    graph
}

fn lattice(n: usize) -> Graph {
    let mut graph = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let mut deps = Vec::new();
            if i > 0 {
                deps.push(format!("n{}_{j}", i - 1));
            }
            if j > 0 {
                deps.push(format!("n{i}_{}", j - 1));
            }
            graph.push((format!("n{i}_{j}"), deps));
        }
    }
    graph
}

fn definition(shape: &str, graph: &Graph, command: bool) -> aloft_core::Definition {
    let mut tasks = Map::new();
    for (name, deps) in graph {
        let run = if command {
            json!({"command": ["true"]})
        } else {
            json!({"pass": {"result": null}})
        };
        tasks.insert(name.clone(), json!({"depends_on": deps, "run": run}));
    }
    let mut doc = json!({"name": format!("bench-{shape}"), "tasks": tasks});
    if command {
        doc["concurrency"] = json!({"max_tasks": 2});
    }
    aloft_core::source::load_str("bench.json", &doc.to_string()).expect("bench workflow is valid")
}

async fn measure(shape: &str, graph: &Graph, command: bool) -> String {
    let folder = tempfile::tempdir().expect("temp dir");
    let definition = definition(shape, graph, command);
    let mut runner =
        Runner::open(&folder.path().join("bench.db"), Arc::new(SystemClock)).expect("open");
    let request = StartRequest {
        definition,
        input: Value::Null,
        idempotency_key: None,
        scheduled_time: None,
        workdir: Some(folder.path().display().to_string()),
    };
    let clock = Instant::now();
    let started = runner.start(request).await.expect("start");
    let run = runner
        .drive(&started.run_id, &mut |_| {})
        .await
        .expect("drive");
    let seconds = clock.elapsed().as_secs_f64();
    assert_eq!(
        run.status,
        aloft_core::RunStatus::Succeeded,
        "{shape} did not succeed"
    );

    let tasks = runner.db().all_tasks(&started.run_id).await.expect("tasks");
    let ended: HashMap<&str, u64> = tasks
        .iter()
        .map(|t| (t.key.task.as_str(), t.ended_at.unwrap_or(0)))
        .collect();
    let run_start = run.started_at.unwrap_or(0);
    let mut delays: Vec<u64> = graph
        .iter()
        .zip(tasks.iter())
        .map(|((_, deps), task)| {
            let ready = deps
                .iter()
                .map(|d| ended[d.as_str()])
                .max()
                .unwrap_or(run_start);
            task.started_at.unwrap_or(0).saturating_sub(ready)
        })
        .collect();
    delays.sort_unstable();
    let pick = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    format!(
        "| {shape} | {} | {seconds:.3} | {:.0} | {} | {} | {} | {:.0} |",
        graph.len(),
        graph.len() as f64 / seconds,
        pick(0.5),
        pick(0.99),
        delays.last().copied().unwrap_or(0),
        peak_rss_kib() as f64 / 1024.0
    )
}

/// The process's peak resident set so far (Linux), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
