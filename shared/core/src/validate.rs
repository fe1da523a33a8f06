//! Semantic checks of a [`Definition`]: names, references, cycles and limits.
//!
//! Each problem names the field it is about as a [`FieldPath`], so that a loader that kept
//! positions (see [`crate::source`]) can report it at its line and column, and a caller
//! without a file can still say where it is. Every problem is reported, not just the first.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use crate::definition::{Definition, EventTrigger, RetrySpec, RunSpec, Schedule, Task};
use crate::events::{self, EventPattern};
use crate::schedule;

/// One step of a [`FieldPath`]: a map key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A field or map key.
    Key(String),
    /// A position in a sequence, from 0.
    Index(usize),
}

/// The place of a value in a workflow file, such as `tasks.load.depends_on[1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The path of a top-level field.
    pub fn field(name: &str) -> Self {
        FieldPath(vec![Segment::Key(name.to_owned())])
    }

    /// The path of a task's entry in `tasks`, or of one of its fields when `field` is given.
    pub fn task(task: &str, field: Option<&str>) -> Self {
        let path = FieldPath::field("tasks").key(task);
        match field {
            Some(field) => path.key(field),
            None => path,
        }
    }

    /// This path extended by a map key.
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    /// This path extended by a sequence index.
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }

    /// This path extended by another, relative to it.
    pub fn join(mut self, rest: &FieldPath) -> Self {
        self.0.extend(rest.0.iter().cloned());
        self
    }

    /// True if `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether a problem is shown at a map entry's key or at its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// At the key, as for a badly named task.
    Key,
    /// At the value.
    Value,
}

/// One semantic problem of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The offending value.
    pub path: FieldPath,
    /// Show it at the key or at the value.
    pub target: Target,
    /// Other fields the verdict rests on; if one of them could not be read, a loader drops
    /// the problem rather than report a consequence of an earlier error.
    pub reads: Vec<FieldPath>,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Checks a definition; returns every problem found, in a stable order.
pub fn validate(definition: &Definition) -> Vec<Problem> {
    let mut checks = Checks::default();
    checks.workflow(definition);
    for (name, task) in &definition.tasks {
        checks.task(definition, name, task);
    }
    checks.problems.extend(cycles(definition));
    checks.problems
}

#[derive(Debug, Default)]
struct Checks {
    problems: Vec<Problem>,
}

impl Checks {
    fn at(&mut self, path: FieldPath, message: String) {
        self.problems.push(Problem {
            path,
            target: Target::Value,
            reads: Vec::new(),
            message,
        });
    }

    fn at_reading(&mut self, path: FieldPath, reads: FieldPath, message: String) {
        self.problems.push(Problem {
            path,
            target: Target::Value,
            reads: vec![reads],
            message,
        });
    }

    fn workflow(&mut self, definition: &Definition) {
        if !is_workflow_name(&definition.name) {
            let message = format!(
                "workflow name {} is invalid: it must match [a-z0-9][a-z0-9-]{{0,63}} \
                 (lowercase letters, digits and '-', at most 64, not starting with '-')",
                show(&definition.name)
            );
            self.at(FieldPath::field("name"), message);
        }
        if definition.tasks.is_empty() {
            let message = "a workflow needs at least one task; `tasks` is empty".to_owned();
            self.at(FieldPath::field("tasks"), message);
        }
        if definition.deadline.is_some_and(|d| d.is_zero()) {
            self.at(
                FieldPath::field("deadline"),
                "deadline must be longer than zero".into(),
            );
        }
        self.concurrency(definition);
        self.defaults(definition);
        if let Some(schedule) = &definition.schedule {
            self.schedule(schedule);
        }
        for (index, trigger) in definition.events.iter().enumerate() {
            self.event_trigger(index, trigger);
        }
        for (pool, capacity) in &definition.pools {
            if *capacity == 0 {
                let message = format!(
                    "pool {} has capacity 0: its tasks can never run",
                    show(pool)
                );
                self.at(FieldPath::field("pools").key(pool), message);
            }
        }
    }

    fn concurrency(&mut self, definition: &Definition) {
        let limits = [
            (
                "max_runs",
                definition.concurrency.max_runs,
                "no run could ever start",
            ),
            (
                "max_tasks",
                definition.concurrency.max_tasks,
                "no task could ever start",
            ),
        ];
        for (field, limit, consequence) in limits {
            if limit == Some(0) {
                let message = format!("concurrency {field} is 0: {consequence}");
                self.at(FieldPath::field("concurrency").key(field), message);
            }
        }
    }

    /// The expression parses, the zone exists, and the expression fires in that zone.
    fn schedule(&mut self, schedule: &Schedule) {
        let expression_path = FieldPath::field("schedule").key("expression");
        let zone_path = FieldPath::field("schedule").key("timezone");
        let parsed = schedule::Schedule::parse(&schedule.expression);
        if let Err(error) = &parsed {
            self.at(expression_path.clone(), error.to_string());
        }
        let zone_name = schedule.timezone.as_deref().unwrap_or("UTC");
        let zone = match schedule::time_zone(zone_name) {
            Ok(zone) => zone,
            Err(error) => {
                self.at(zone_path, error.to_string());
                return;
            }
        };
        if let Ok(parsed) = parsed
            && let Err(error) = parsed.check_fires_in(&zone, zone_name)
        {
            self.at_reading(expression_path, zone_path, error.to_string());
        }
    }

    /// The pattern compiles, and every path of the input template is well formed.
    fn event_trigger(&mut self, index: usize, trigger: &EventTrigger) {
        let at = FieldPath::field("events").index(index);
        if let Err(error) = EventPattern::compile(&trigger.pattern) {
            self.at(at.clone().key("pattern").join(&error.path), error.message);
        }
        for error in trigger.input.iter().flat_map(events::check_input) {
            self.at(at.clone().key("input").join(&error.path), error.message);
        }
    }

    fn defaults(&mut self, definition: &Definition) {
        let defaults = &definition.defaults;
        if defaults.timeout.is_some_and(|t| t.is_zero()) {
            let message = "default timeout must be longer than zero".to_owned();
            self.at(FieldPath::field("defaults").key("timeout"), message);
        }
        if let Some(retry) = &defaults.retry {
            self.retry(
                FieldPath::field("defaults").key("retry"),
                retry,
                "the defaults",
            );
        }
    }

    fn retry(&mut self, path: FieldPath, retry: &RetrySpec, owner: &str) {
        if retry.max_attempts == Some(0) {
            let message = format!(
                "max_attempts of {owner} is 0: it counts the first attempt, so it must be at \
                 least 1"
            );
            self.at(path.clone().key("max_attempts"), message);
        }
        if let Some(multiplier) = retry.multiplier.filter(|m| !m.is_finite() || *m < 1.0) {
            let message = format!(
                "multiplier {multiplier} of {owner} must be a finite number of at least 1.0"
            );
            self.at(path.clone().key("multiplier"), message);
        }
        let kinds = retry.on.iter().flatten().enumerate();
        for (index, _) in kinds.filter(|(_, kind)| kind.trim().is_empty()) {
            let message = format!("retry `on` of {owner} has an empty entry; name a failure kind");
            self.at(path.clone().key("on").index(index), message);
        }
    }

    fn task(&mut self, definition: &Definition, name: &str, task: &Task) {
        if !is_task_name(name) {
            let message = format!(
                "task name {} is invalid: it must match [A-Za-z0-9_][A-Za-z0-9_-]{{0,63}} \
                 (letters, digits, '_' and '-', at most 64, not starting with '-')",
                show(name)
            );
            let path = FieldPath::task(name, None);
            self.problems.push(Problem {
                path,
                target: Target::Key,
                reads: Vec::new(),
                message,
            });
        }
        self.depends_on(definition, name, task);
        let owner = format!("task {}", show(name));
        if task.timeout.is_some_and(|t| t.is_zero()) {
            let message = format!("timeout of {owner} must be longer than zero");
            self.at(FieldPath::task(name, Some("timeout")), message);
        }
        if let Some(retry) = &task.retry {
            self.retry(FieldPath::task(name, Some("retry")), retry, &owner);
        }
        if let Some(pool) = task
            .pool
            .as_deref()
            .filter(|p| !definition.pools.contains_key(*p))
        {
            let message = format!("pool {} of {owner} is not declared in `pools`", show(pool));
            let declared = FieldPath::field("pools").key(pool);
            self.at_reading(FieldPath::task(name, Some("pool")), declared, message);
        }
        self.fan_out(name, task, &owner);
        self.run(name, &task.run, &owner);
    }

    fn depends_on(&mut self, definition: &Definition, name: &str, task: &Task) {
        let mut seen = HashSet::new();
        for (index, upstream) in task.depends_on.iter().enumerate() {
            let path = FieldPath::task(name, Some("depends_on")).index(index);
            let message = if upstream == name {
                format!(
                    "task {} depends on itself: cycle {name} -> {name}",
                    show(name)
                )
            } else if !seen.insert(upstream.as_str()) {
                format!(
                    "task {} lists {} twice in depends_on",
                    show(name),
                    show(upstream)
                )
            } else if !definition.tasks.contains_key(upstream) {
                format!(
                    "task {} depends on unknown task {}",
                    show(name),
                    show(upstream)
                )
            } else {
                continue;
            };
            self.at(path, message);
        }
    }

    fn fan_out(&mut self, name: &str, task: &Task, owner: &str) {
        if let Some(for_each) = &task.for_each {
            let path = FieldPath::task(name, Some("for_each"));
            match for_each_source(for_each) {
                None => {
                    let message = format!(
                        "for_each {} of {owner} must have the form $.<task>(.<field>)*",
                        show(for_each)
                    );
                    self.at(path, message);
                }
                Some(source) if !task.depends_on.iter().any(|d| d == source) => {
                    let message = format!(
                        "for_each of {owner} reads task {}, which is not in its depends_on",
                        show(source)
                    );
                    self.at_reading(path, FieldPath::task(name, Some("depends_on")), message);
                }
                Some(_) => {}
            }
        }
        let path = FieldPath::task(name, Some("max_concurrency"));
        match task.max_concurrency {
            Some(_) if task.for_each.is_none() => {
                let message = format!("max_concurrency is set on {owner}, which has no for_each");
                self.at_reading(path, FieldPath::task(name, Some("for_each")), message);
            }
            Some(0) => {
                let message = format!("max_concurrency of {owner} is 0: no item could ever run");
                self.at(path, message);
            }
            _ => {}
        }
    }

    fn run(&mut self, name: &str, run: &RunSpec, owner: &str) {
        let path = FieldPath::task(name, Some("run"));
        match run {
            RunSpec::Command(argv) => match argv.first() {
                None => {
                    let message = format!("command of {owner} is empty: name a program");
                    self.at(path.key("command"), message);
                }
                Some(program) if program.trim().is_empty() => {
                    let message = format!("command of {owner} has an empty program name");
                    self.at(path.key("command").index(0), message);
                }
                Some(_) => {}
            },
            RunSpec::Lambda(function) if function.trim().is_empty() => {
                let message = format!("lambda of {owner} is empty: name a function or its ARN");
                self.at(path.key("lambda"), message);
            }
            RunSpec::Pass(pass) => {
                let size = pass.result.to_string().len();
                if size > crate::OUTPUT_LIMIT {
                    let message = format!(
                        "pass result of {owner} is {size} bytes, over the output limit of {} \
                         bytes: it could never be stored",
                        crate::OUTPUT_LIMIT
                    );
                    self.at(path.key("pass").key("result"), message);
                }
            }
            RunSpec::Lambda(_) => {}
        }
    }
}

/// `[a-z0-9][a-z0-9-]{0,63}`
fn is_workflow_name(name: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    (1..=64).contains(&name.len()) && !name.starts_with('-') && name.bytes().all(allowed)
}

/// `[A-Za-z0-9_][A-Za-z0-9_-]{0,63}`
fn is_task_name(name: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    (1..=64).contains(&name.len()) && !name.starts_with('-') && name.bytes().all(allowed)
}

/// The upstream task a `for_each` reads: `$.<task>(.<field>)*`, `None` if malformed.
fn for_each_source(expression: &str) -> Option<&str> {
    let mut parts = expression.strip_prefix("$.")?.split('.');
    let task = parts.next().filter(|t| is_task_name(t))?;
    let field_ok = |f: &str| {
        !f.is_empty()
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    parts.all(field_ok).then_some(task)
}

/// A name from the file, quoted, with control characters escaped.
pub(crate) fn show(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

// ---------------------------------------------------------------------------------------
// Cycles

/// The dependency graph: task indices in file order, edges along `depends_on`.
#[derive(Debug)]
struct Graph<'a> {
    names: Vec<&'a str>,
    /// Per task: (upstream task, index of that entry in its depends_on).
    edges: Vec<Vec<(usize, usize)>>,
}

impl<'a> Graph<'a> {
    /// Known, distinct, non-self edges; the other entries are reported elsewhere.
    fn new(definition: &'a Definition) -> Self {
        let index: HashMap<&str, usize> = definition
            .tasks
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let edges = definition
            .tasks
            .iter()
            .enumerate()
            .map(|(from, (_, task))| {
                let mut seen = HashSet::new();
                let known = task
                    .depends_on
                    .iter()
                    .enumerate()
                    .filter_map(|(entry, upstream)| {
                        let to = *index.get(upstream.as_str())?;
                        (to != from && seen.insert(to)).then_some((to, entry))
                    });
                known.collect()
            })
            .collect();
        Graph {
            names: definition.tasks.keys().map(String::as_str).collect(),
            edges,
        }
    }
}

/// One problem per group of tasks that depend on one another in a circle, naming one cycle
/// of that group. Linear time; no recursion, so chains of any length are fine.
fn cycles(definition: &Definition) -> Vec<Problem> {
    let graph = Graph::new(definition);
    let mut tarjan = Tarjan::new(graph.names.len());
    for root in 0..graph.names.len() {
        tarjan.visit(&graph, root);
    }
    let mut groups = tarjan.groups;
    groups.sort_by_key(|group| group.first().copied());
    groups
        .iter()
        .map(|members| cycle_problem(&graph, &tarjan.component, members))
        .collect()
}

/// Most tasks named besides the reported cycle when its group holds more.
const MAX_OTHERS_NAMED: usize = 10;

/// The shortest cycle through the group's first task, and the group's other tasks.
fn cycle_problem(graph: &Graph<'_>, component: &[usize], members: &[usize]) -> Problem {
    let start = members.first().copied().unwrap_or_default();
    let path = shortest_cycle(graph, component, start);
    let entry = graph.edges[start]
        .iter()
        .find(|(upstream, _)| path.get(1) == Some(upstream));
    let names: Vec<&str> = path.iter().map(|&task| graph.names[task]).collect();
    let mut message = format!("cycle in depends_on: {}", names.join(" -> "));
    let on_path: HashSet<usize> = path.iter().copied().collect();
    let others: Vec<&str> = members
        .iter()
        .filter(|task| !on_path.contains(task))
        .map(|&task| graph.names[task])
        .collect();
    if !others.is_empty() {
        let shown = others[..others.len().min(MAX_OTHERS_NAMED)].join(", ");
        let more = others.len().saturating_sub(MAX_OTHERS_NAMED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        message.push_str(&format!(
            " (also on cycles with these tasks: {shown}{more})"
        ));
    }
    let depends_on = FieldPath::task(graph.names[start], Some("depends_on"));
    Problem {
        path: depends_on.index(entry.map_or(0, |&(_, index)| index)),
        target: Target::Value,
        reads: Vec::new(),
        message,
    }
}

/// The shortest cycle through `start` inside its component, found breadth first: the
/// tasks from `start` back to `start`, along depends_on.
fn shortest_cycle(graph: &Graph<'_>, component: &[usize], start: usize) -> Vec<usize> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut last = start;
    'search: while let Some(task) = queue.pop_front() {
        for &(upstream, _) in &graph.edges[task] {
            if upstream == start {
                last = task;
                break 'search;
            }
            if component[upstream] == component[start] && !parent.contains_key(&upstream) {
                parent.insert(upstream, task);
                queue.push_back(upstream);
            }
        }
    }
    let mut path = vec![last];
    while let Some(&previous) = path.last().and_then(|task| parent.get(task)) {
        path.push(previous);
    }
    path.reverse();
    path.push(start);
    path
}

/// Tarjan's strongly connected components, with an explicit stack instead of recursion.
#[derive(Debug)]
struct Tarjan {
    order: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next_order: usize,
    /// Each task's component id.
    component: Vec<usize>,
    next_component: usize,
    /// Components of two or more tasks, their members in file order.
    groups: Vec<Vec<usize>>,
}

impl Tarjan {
    const UNSEEN: usize = usize::MAX;

    fn new(count: usize) -> Self {
        Tarjan {
            order: vec![Self::UNSEEN; count],
            low: vec![0; count],
            on_stack: vec![false; count],
            stack: Vec::new(),
            next_order: 0,
            component: vec![Self::UNSEEN; count],
            next_component: 0,
            groups: Vec::new(),
        }
    }

    /// Depth first from `root`; `calls` holds (task, next edge to follow).
    fn visit(&mut self, graph: &Graph<'_>, root: usize) {
        if self.order[root] != Self::UNSEEN {
            return;
        }
        self.enter(root);
        let mut calls = vec![(root, 0)];
        while let Some((task, edge)) = calls.last_mut() {
            let task = *task;
            if let Some(&(upstream, _)) = graph.edges[task].get(*edge) {
                *edge += 1;
                if self.order[upstream] == Self::UNSEEN {
                    self.enter(upstream);
                    calls.push((upstream, 0));
                } else if self.on_stack[upstream] {
                    self.low[task] = self.low[task].min(self.order[upstream]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                self.low[caller] = self.low[caller].min(self.low[task]);
            }
            if self.low[task] == self.order[task] {
                self.close_component(task);
            }
        }
    }

    fn enter(&mut self, task: usize) {
        self.order[task] = self.next_order;
        self.low[task] = self.next_order;
        self.next_order += 1;
        self.stack.push(task);
        self.on_stack[task] = true;
    }

    fn close_component(&mut self, root: usize) {
        let id = self.next_component;
        self.next_component += 1;
        let mut members = Vec::new();
        while let Some(member) = self.stack.pop() {
            self.on_stack[member] = false;
            self.component[member] = id;
            members.push(member);
            if member == root {
                break;
            }
        }
        if members.len() > 1 {
            members.sort_unstable();
            self.groups.push(members);
        }
    }
}
