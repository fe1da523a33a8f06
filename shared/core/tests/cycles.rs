//! S15: the cycle check accepts diamonds and finds every real cycle, naming its path.

use aloft_core::definition::{Definition, PassSpec, RunSpec, Task};
use aloft_core::source::load_str;
use aloft_core::validate::validate;
use indexmap::IndexMap;
use proptest::prelude::*;
use proptest::sample::Index;

/// The diagnostics of a file that must not load, as printed.
fn errors(text: &str) -> Vec<String> {
    match load_str("wf.yaml", text) {
        Ok(definition) => panic!("expected errors, loaded {definition:?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

const DIAMOND: &str = "\
name: diamond
tasks:
  a: {run: {pass: {}}}
  b: {depends_on: [a], run: {pass: {}}}
  c: {depends_on: [a], run: {pass: {}}}
  d: {depends_on: [b, c], run: {pass: {}}}
";

const CYCLE: &str = "  p: {depends_on: [r], run: {pass: {}}}
  q: {depends_on: [p], run: {pass: {}}}
  r: {depends_on: [q], run: {pass: {}}}
";

#[test]
fn diamond_is_valid() {
    let definition = load_str("wf.yaml", DIAMOND).expect("a diamond is not a cycle");
    assert_eq!(definition.tasks["d"].depends_on, ["b", "c"]);
}

#[test]
fn self_dependency_names_the_cycle_x_to_x() {
    let text = "name: selfish\ntasks:\n  x: {depends_on: [x], run: {pass: {}}}\n";
    assert_eq!(
        errors(text),
        ["wf.yaml:3:20: task `x` depends on itself: cycle x -> x"]
    );
}

#[test]
fn three_task_cycle_is_reported_with_its_path_at_a_depends_on_entry() {
    let text = format!("name: circle\ntasks:\n{CYCLE}");
    assert_eq!(
        errors(&text),
        ["wf.yaml:3:20: cycle in depends_on: p -> r -> q -> p"]
    );
}

#[test]
fn unknown_dependency_names_it_and_the_task() {
    let text = "name: unknown\ntasks:\n  d: {depends_on: [nope], run: {pass: {}}}\n";
    assert_eq!(
        errors(text),
        ["wf.yaml:3:20: task `d` depends on unknown task `nope`"]
    );
}

#[test]
fn diamond_plus_cycle_gives_one_error_naming_only_the_cycle() {
    let text = format!("{DIAMOND}{CYCLE}");
    assert_eq!(
        errors(&text),
        ["wf.yaml:7:20: cycle in depends_on: p -> r -> q -> p"]
    );
}

#[test]
fn separate_cycles_are_each_reported_once() {
    let text = "\
name: two-circles
tasks:
  a: {depends_on: [b], run: {pass: {}}}
  b: {depends_on: [a], run: {pass: {}}}
  c: {depends_on: [a, e], run: {pass: {}}}
  d: {depends_on: [c], run: {pass: {}}}
  e: {depends_on: [d], run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:20: cycle in depends_on: a -> b -> a",
            "wf.yaml:5:23: cycle in depends_on: c -> e -> d -> c",
        ]
    );
}

#[test]
fn intertwined_cycles_are_one_error_naming_the_other_tasks() {
    let text = "\
name: knot
tasks:
  a: {depends_on: [b, c], run: {pass: {}}}
  b: {depends_on: [a], run: {pass: {}}}
  c: {depends_on: [d], run: {pass: {}}}
  d: {depends_on: [a], run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        ["wf.yaml:3:20: cycle in depends_on: a -> b -> a (also on cycles with these tasks: c, d)"]
    );
}

#[test]
fn cycle_through_a_task_that_failed_to_parse_is_still_found() {
    let text = "\
name: hidden
tasks:
  a: {depends_on: [b], run: {pass: {}}}
  b: {depends_on: [a], run: {pass: {}}, timeout: soon}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:20: cycle in depends_on: a -> b -> a",
            "wf.yaml:4:50: invalid duration \"soon\": expected <number><unit> with unit ms, s, \
             m, h or d",
        ]
    );
}

fn pass_task(depends_on: Vec<String>) -> Task {
    Task {
        description: None,
        depends_on,
        trigger_rule: Default::default(),
        run: RunSpec::Pass(PassSpec::default()),
        timeout: None,
        retry: None,
        pool: None,
        for_each: None,
        max_concurrency: None,
    }
}

fn chain(length: usize) -> Definition {
    let mut tasks = IndexMap::new();
    for i in 0..length {
        let depends_on = if i == 0 {
            Vec::new()
        } else {
            vec![format!("t{}", i - 1)]
        };
        tasks.insert(format!("t{i}"), pass_task(depends_on));
    }
    Definition {
        name: "chain".into(),
        description: None,
        tags: Default::default(),
        deadline: None,
        on_deadline: Default::default(),
        concurrency: Default::default(),
        defaults: Default::default(),
        schedule: None,
        events: Vec::new(),
        pools: Default::default(),
        tasks,
    }
}

#[test]
fn long_chain_validates_without_recursion() {
    let mut definition = chain(100_000);
    assert_eq!(validate(&definition), []);
    definition.tasks["t0"].depends_on.push("t99999".into());
    let problems = validate(&definition);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path.to_string(), "tasks.t0.depends_on[0]");
    assert!(
        problems[0]
            .message
            .starts_with("cycle in depends_on: t0 -> t99999 -> t99998 -> ")
    );
    assert!(problems[0].message.ends_with(" -> t1 -> t0"));
}

#[test]
fn long_chain_file_loads() {
    let mut text = String::from("name: chain\ntasks:\n  t0: {run: {pass: {}}}\n");
    for i in 1..100_000 {
        text.push_str(&format!(
            "  t{i}: {{depends_on: [t{}], run: {{pass: {{}}}}}}\n",
            i - 1
        ));
    }
    assert_eq!(
        load_str("chain.yaml", &text).expect("valid").tasks.len(),
        100_000
    );
}

/// A random DAG: tasks listed in a shuffled file order, each depending only on tasks
/// earlier in a hidden topological order.
#[derive(Clone, Debug)]
struct Dag {
    /// Per topological position: the name number of the task there.
    names: Vec<usize>,
    /// Per topological position: the positions it depends on, all lower.
    depends_on: Vec<Vec<usize>>,
}

fn dag() -> impl Strategy<Value = Dag> {
    (1..=200usize).prop_flat_map(|count| {
        let names = Just((0..count).collect::<Vec<_>>()).prop_shuffle();
        let picks = prop::collection::vec(prop::collection::vec(any::<Index>(), 0..4), count);
        (names, picks).prop_map(|(names, picks)| {
            let depends_on = picks
                .into_iter()
                .enumerate()
                .map(|(position, picks)| {
                    let mut upstream: Vec<usize> = if position == 0 {
                        Vec::new()
                    } else {
                        picks.iter().map(|pick| pick.index(position)).collect()
                    };
                    upstream.sort_unstable();
                    upstream.dedup();
                    upstream
                })
                .collect();
            Dag { names, depends_on }
        })
    })
}

impl Dag {
    /// The workflow file, tasks in name order (so file order is not topological order).
    fn yaml(&self) -> String {
        let mut by_name: Vec<usize> = (0..self.names.len()).collect();
        by_name.sort_by_key(|&position| self.names[position]);
        let mut text = String::from("name: random\ntasks:\n");
        for position in by_name {
            let upstream: Vec<String> = self.depends_on[position]
                .iter()
                .map(|&u| self.name(u))
                .collect();
            text.push_str(&format!(
                "  {}: {{depends_on: [{}], run: {{pass: {{}}}}}}\n",
                self.name(position),
                upstream.join(", ")
            ));
        }
        text
    }

    fn name(&self, position: usize) -> String {
        format!("t{}", self.names[position])
    }

    /// Follows dependencies from `start` for up to `steps` steps; returns the last position.
    fn walk(&self, start: usize, steps: &[Index]) -> usize {
        let mut position = start;
        for step in steps {
            let upstream = &self.depends_on[position];
            if upstream.is_empty() {
                break;
            }
            position = upstream[step.index(upstream.len())];
        }
        position
    }
}

/// The task names of the cycle a message reports: "cycle in depends_on: a -> b -> a
/// (also on ...)" or "task `a` depends on itself: cycle a -> a".
fn cycle_path(message: &str) -> Vec<&str> {
    let cycle = message
        .split_once("cycle in depends_on: ")
        .or_else(|| message.split_once("cycle "))
        .map_or("", |(_, cycle)| cycle);
    cycle
        .split(" (")
        .next()
        .unwrap_or_default()
        .split(" -> ")
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_dags_always_validate(dag in dag()) {
        let loaded = load_str("dag.yaml", &dag.yaml());
        prop_assert!(loaded.is_ok(), "{}", loaded.err().map(|e| e.to_string()).unwrap_or_default());
    }

    #[test]
    fn an_edge_closing_a_path_is_a_cycle_containing_that_edge(
        dag in dag(),
        start in any::<Index>(),
        steps in prop::collection::vec(any::<Index>(), 0..20),
    ) {
        // `from` reaches `to` along depends_on; `to` depending on `from` closes the cycle.
        let from = start.index(dag.names.len());
        let to = dag.walk(from, &steps);
        let mut closed = dag.clone();
        closed.depends_on[to].push(from);
        let text = closed.yaml();
        let diagnostics = load_str("dag.yaml", &text).expect_err("a cycle must be refused").0;
        prop_assert_eq!(diagnostics.len(), 1);
        let message = &diagnostics[0].message;
        let path = cycle_path(message);
        let edge = [dag.name(to), dag.name(from)];
        let has_edge = path.windows(2).any(|pair| pair[0] == edge[0] && pair[1] == edge[1]);
        prop_assert!(has_edge, "{} lacks {} -> {}", message, edge[0], edge[1]);
        // The position is an entry of the first task's depends_on naming the second task.
        let line = text.lines().nth(diagnostics[0].line - 1).unwrap_or_default();
        let at: String = line.chars().skip(diagnostics[0].column - 1).collect();
        prop_assert!(line.starts_with(&format!("  {}: {{depends_on: [", path[0])), "{}", line);
        let named = at.strip_prefix(path[1]).is_some_and(|rest| rest.starts_with([',', ']']));
        prop_assert!(named, "{} at column {}", line, diagnostics[0].column);
    }
}
