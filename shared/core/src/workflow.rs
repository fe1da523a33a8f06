//! A validated definition compiled for the engine: tasks by index, edges both ways,
//! resolved retry policies and timeouts.

use std::collections::HashMap;

use crate::definition::{Definition, RunSpec, TriggerRule};
use crate::duration::Duration;
use crate::retry::RetryPolicy;

/// Time limit of an attempt when neither the task nor the defaults set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A compiled workflow. Build it only from a definition that passed validation.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// The definition it was compiled from.
    pub definition: Definition,
    /// Tasks in file order.
    pub tasks: Vec<TaskPlan>,
    by_name: HashMap<String, usize>,
}

/// Everything the engine needs to know about one task.
#[derive(Clone, Debug)]
pub struct TaskPlan {
    /// Task name.
    pub name: String,
    /// Direct upstreams, by index.
    pub upstream: Vec<usize>,
    /// Direct downstreams, by index.
    pub downstream: Vec<usize>,
    /// Trigger rule.
    pub rule: TriggerRule,
    /// What it runs.
    pub run: RunSpec,
    /// Resolved retry policy.
    pub retry: RetryPolicy,
    /// Resolved time limit of one attempt.
    pub timeout: Duration,
    /// Slot pool and its capacity.
    pub pool: Option<(String, u32)>,
    /// Dynamic fan-out source.
    pub for_each: Option<ForEach>,
}

/// Where a `for_each` task finds its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForEach {
    /// The upstream task whose output holds the list.
    pub source: usize,
    /// Field names from the output's root to the list.
    pub path: Vec<String>,
    /// Most items running at once.
    pub max_concurrency: Option<u32>,
}

impl ForEach {
    /// Parse `$.<task>(.<field>)*` into the task name and the field path.
    pub fn parse_path(text: &str) -> Option<(&str, Vec<String>)> {
        let rest = text.strip_prefix("$.")?;
        let mut parts = rest.split('.');
        let task = parts.next().filter(|t| !t.is_empty())?;
        let path: Vec<String> = parts.map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return None;
        }
        Some((task, path))
    }
}

impl Workflow {
    /// Compile a validated definition. References that validation would have refused
    /// are dropped rather than panicking.
    pub fn compile(definition: Definition) -> Self {
        let by_name: HashMap<String, usize> = definition
            .tasks
            .keys()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        let mut tasks: Vec<TaskPlan> = definition
            .tasks
            .iter()
            .map(|(name, task)| compile_task(&definition, &by_name, name, task))
            .collect();
        for index in 0..tasks.len() {
            for upstream in tasks[index].upstream.clone() {
                tasks[upstream].downstream.push(index);
            }
        }
        Self {
            definition,
            tasks,
            by_name,
        }
    }

    /// The index of the task called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&TaskPlan> {
        self.index(name).map(|i| &self.tasks[i])
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }
}

fn compile_task(
    definition: &Definition,
    by_name: &HashMap<String, usize>,
    name: &str,
    task: &crate::definition::Task,
) -> TaskPlan {
    let upstream = task
        .depends_on
        .iter()
        .filter_map(|d| by_name.get(d).copied())
        .collect();
    let for_each = task
        .for_each
        .as_deref()
        .and_then(ForEach::parse_path)
        .and_then(|(t, path)| {
            let source = by_name.get(t).copied()?;
            Some(ForEach {
                source,
                path,
                max_concurrency: task.max_concurrency,
            })
        });
    let defaults = &definition.defaults;
    TaskPlan {
        name: name.to_owned(),
        upstream,
        downstream: Vec::new(),
        rule: task.trigger_rule,
        run: task.run.clone(),
        retry: RetryPolicy::resolve(task.retry.as_ref(), defaults.retry.as_ref()),
        timeout: task.timeout.or(defaults.timeout).unwrap_or(DEFAULT_TIMEOUT),
        pool: task
            .pool
            .as_ref()
            .map(|p| (p.clone(), definition.pools.get(p).copied().unwrap_or(0))),
        for_each,
    }
}
