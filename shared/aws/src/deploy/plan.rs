//! The changes that make AWS match the files: what they ask for compared with what
//! exists, field by field. Pure: [`super::Clients::apply`] carries a plan out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use aloft_core::Definition;

use super::{
    Current, DeployError, Desired, DesiredFunction, DesiredWorkflow, InvokeConfigSpec, RuleSpec,
    ScheduleSpec,
};

/// What a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A workflow's LATEST definition version in the table.
    Workflow,
    /// A task function's event-invoke config (never deleted: the function is the user's).
    EventInvokeConfig,
    /// The Scheduler schedule group.
    ScheduleGroup,
    /// A Scheduler schedule.
    Schedule,
    /// An EventBridge rule and its target.
    Rule,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Kind::Workflow => "workflow",
            Kind::EventInvokeConfig => "event-invoke config",
            Kind::ScheduleGroup => "schedule group",
            Kind::Schedule => "schedule",
            Kind::Rule => "rule",
        })
    }
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It does not exist yet.
    Create,
    /// It exists with other values.
    Update,
    /// It exists and should not.
    Delete,
    /// It exists as asked.
    Unchanged,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        })
    }
}

/// One field of a change: its old value (absent for a creation) and its new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field's name.
    pub field: &'static str,
    /// What it is now.
    pub old: Option<String>,
    /// What it will be.
    pub new: Option<String>,
}

/// One resource and what deploy does to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// What it is.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its schedule group (schedules) or bus (rules); none for a workflow or an
    /// event-invoke config.
    pub place: Option<String>,
    /// The workflow it belongs to.
    pub workflow: Option<String>,
    /// The file of that workflow, when it was given.
    pub file: Option<String>,
    /// What deploy does.
    pub action: Action,
    /// The fields created or changed (none for a deletion or an unchanged resource).
    pub fields: Vec<FieldChange>,
    #[serde(skip)]
    pub(crate) op: Op,
}

/// The request a change makes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Nothing,
    PutWorkflow(Box<Definition>),
    PutInvokeConfig(Box<InvokeConfigSpec>),
    CreateGroup,
    CreateSchedule(Box<ScheduleSpec>),
    UpdateSchedule(Box<ScheduleSpec>),
    DeleteSchedule,
    PutRule(Box<RuleSpec>),
    DeleteRule,
}

/// Every change, in the order a person reads them: per workflow its definition, the
/// event-invoke configs of the functions it is the first to name, its schedule, its
/// rules; then what `--prune` removes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The changes, unchanged resources included.
    pub changes: Vec<Change>,
}

impl Plan {
    /// How many changes do `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// True when applying it changes something.
    pub fn changes_anything(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }
}

/// The plan that makes what exists (`current`) what the files ask for. With `prune`,
/// the schedules and rules deploy manages for workflows not given are deleted too.
pub fn plan(desired: &Desired, current: &Current, prune: bool) -> Result<Plan, DeployError> {
    let settings = &desired.settings;
    let mut changes = Vec::new();
    if !current.group_exists && desired.workflows.iter().any(|w| w.schedule.is_some()) {
        changes.push(Change {
            kind: Kind::ScheduleGroup,
            name: settings.schedule_group.clone(),
            place: None,
            workflow: None,
            file: None,
            action: Action::Create,
            fields: Vec::new(),
            op: Op::CreateGroup,
        });
    }
    let schedules: BTreeMap<&str, &ScheduleSpec> = current
        .schedules
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let rules: BTreeMap<&str, &RuleSpec> =
        current.rules.iter().map(|r| (r.name.as_str(), r)).collect();
    for workflow in &desired.workflows {
        changes.push(workflow_change(workflow, current));
        let functions = desired
            .functions
            .iter()
            .filter(|f| f.workflow == workflow.definition.name);
        changes.extend(functions.map(|f| invoke_config_change(f, current)));
        if let Some(schedule) = &workflow.schedule {
            let existing = schedules.get(schedule.name.as_str()).copied();
            changes.push(schedule_change(workflow, schedule, existing, settings)?);
        }
        for rule in &workflow.rules {
            let existing = rules.get(rule.name.as_str()).copied();
            changes.push(rule_change(workflow, rule, existing, settings)?);
        }
        changes.extend(leftovers(workflow, current, settings));
    }
    if prune {
        let given: BTreeSet<&str> = desired
            .workflows
            .iter()
            .map(|w| w.definition.name.as_str())
            .collect();
        changes.extend(orphans(&given, current, settings));
    }
    Ok(Plan { changes })
}

fn workflow_change(workflow: &DesiredWorkflow, current: &Current) -> Change {
    let name = &workflow.definition.name;
    let old = current.versions.get(name);
    let action = match old {
        None => Action::Create,
        Some(old) if *old == workflow.version => Action::Unchanged,
        Some(_) => Action::Update,
    };
    let fields = match action {
        Action::Unchanged => Vec::new(),
        _ => vec![FieldChange {
            field: "version",
            old: old.cloned(),
            new: Some(workflow.version.clone()),
        }],
    };
    let op = match action {
        Action::Unchanged => Op::Nothing,
        _ => Op::PutWorkflow(Box::new(workflow.definition.clone())),
    };
    Change {
        kind: Kind::Workflow,
        name: name.clone(),
        place: None,
        workflow: Some(name.clone()),
        file: Some(workflow.file.clone()),
        action,
        fields,
        op,
    }
}

/// Create the config when the function has none, else update the fields that differ.
/// Never a deletion: a function no task names any more keeps its config.
fn invoke_config_change(function: &DesiredFunction, current: &Current) -> Change {
    let wanted = &function.config;
    let name = wanted.name();
    let existing = current.invoke_configs.get(&name);
    let (action, fields) = compare(existing.map(InvokeConfigSpec::fields), wanted.fields());
    let op = match action {
        Action::Create | Action::Update => Op::PutInvokeConfig(Box::new(wanted.clone())),
        _ => Op::Nothing,
    };
    Change {
        kind: Kind::EventInvokeConfig,
        name,
        place: None,
        workflow: Some(function.workflow.clone()),
        file: Some(function.file.clone()),
        action,
        fields,
        op,
    }
}

fn schedule_change(
    workflow: &DesiredWorkflow,
    wanted: &ScheduleSpec,
    existing: Option<&ScheduleSpec>,
    settings: &super::DeploySettings,
) -> Result<Change, DeployError> {
    let place = &settings.schedule_group;
    if let Some(existing) = existing {
        check_owner(
            workflow,
            Kind::Schedule,
            &wanted.name,
            place,
            &existing.description,
        )?;
    }
    let (action, fields) = compare(existing.map(ScheduleSpec::fields), wanted.fields());
    let op = match action {
        Action::Create => Op::CreateSchedule(Box::new(wanted.clone())),
        Action::Update => Op::UpdateSchedule(Box::new(wanted.clone())),
        _ => Op::Nothing,
    };
    Ok(change(
        workflow,
        Kind::Schedule,
        &wanted.name,
        place,
        action,
        fields,
        op,
    ))
}

fn rule_change(
    workflow: &DesiredWorkflow,
    wanted: &RuleSpec,
    existing: Option<&RuleSpec>,
    settings: &super::DeploySettings,
) -> Result<Change, DeployError> {
    let place = &settings.event_bus;
    if let Some(existing) = existing {
        check_owner(
            workflow,
            Kind::Rule,
            &wanted.name,
            place,
            &existing.description,
        )?;
    }
    let (action, fields) = compare(existing.map(RuleSpec::fields), wanted.fields());
    let op = match action {
        Action::Create | Action::Update => Op::PutRule(Box::new(wanted.clone())),
        _ => Op::Nothing,
    };
    Ok(change(
        workflow,
        Kind::Rule,
        &wanted.name,
        place,
        action,
        fields,
        op,
    ))
}

fn change(
    workflow: &DesiredWorkflow,
    kind: Kind,
    name: &str,
    place: &str,
    action: Action,
    fields: Vec<FieldChange>,
    op: Op,
) -> Change {
    Change {
        kind,
        name: name.to_owned(),
        place: Some(place.to_owned()),
        workflow: Some(workflow.definition.name.clone()),
        file: Some(workflow.file.clone()),
        action,
        fields,
        op,
    }
}

/// A resource deploy would write must be the workflow's own.
fn check_owner(
    workflow: &DesiredWorkflow,
    kind: Kind,
    name: &str,
    place: &str,
    description: &str,
) -> Result<(), DeployError> {
    let this = workflow.definition.name.as_str();
    match super::owner(description) {
        Some(owner) if owner == this => Ok(()),
        Some(other) => Err(DeployError::file(
            &workflow.file,
            format!(
                "{kind} {name:?} in {place}, which workflow {this:?} needs, belongs to workflow \
                 {other:?}: rename one of the workflows"
            ),
        )),
        None => Err(DeployError::NotManaged {
            kind,
            name: name.to_owned(),
            place: place.to_owned(),
            description: description.to_owned(),
        }),
    }
}

/// Create, update with the fields that differ, or unchanged.
fn compare(
    existing: Option<Vec<(&'static str, String)>>,
    wanted: Vec<(&'static str, String)>,
) -> (Action, Vec<FieldChange>) {
    let Some(existing) = existing else {
        let fields = wanted
            .into_iter()
            .map(|(field, new)| FieldChange {
                field,
                old: None,
                new: Some(new),
            })
            .collect();
        return (Action::Create, fields);
    };
    let fields: Vec<FieldChange> = existing
        .into_iter()
        .zip(wanted)
        .filter(|((_, old), (_, new))| old != new)
        .map(|((_, old), (field, new))| FieldChange {
            field,
            old: Some(old),
            new: Some(new),
        })
        .collect();
    let action = if fields.is_empty() {
        Action::Unchanged
    } else {
        Action::Update
    };
    (action, fields)
}

/// The workflow's managed schedules and rules that its file no longer asks for.
fn leftovers(
    workflow: &DesiredWorkflow,
    current: &Current,
    settings: &super::DeploySettings,
) -> Vec<Change> {
    let name = workflow.definition.name.as_str();
    let schedules = current.schedules.iter().filter(|s| {
        s.owner() == Some(name) && workflow.schedule.as_ref().is_none_or(|w| w.name != s.name)
    });
    let rules = current
        .rules
        .iter()
        .filter(|r| r.owner() == Some(name) && !workflow.rules.iter().any(|w| w.name == r.name));
    let file = Some(workflow.file.as_str());
    schedules
        .map(|s| {
            deletion(
                Kind::Schedule,
                &s.name,
                &settings.schedule_group,
                name,
                file,
            )
        })
        .chain(rules.map(|r| deletion(Kind::Rule, &r.name, &settings.event_bus, name, file)))
        .collect()
}

/// Managed schedules and rules of workflows that were not given.
fn orphans(
    given: &BTreeSet<&str>,
    current: &Current,
    settings: &super::DeploySettings,
) -> Vec<Change> {
    let foreign = |owner: Option<&str>| owner.is_some_and(|o| !given.contains(o));
    let schedules = current.schedules.iter().filter(|s| foreign(s.owner()));
    let rules = current.rules.iter().filter(|r| foreign(r.owner()));
    schedules
        .map(|s| {
            let owner = s.owner().unwrap_or_default();
            deletion(
                Kind::Schedule,
                &s.name,
                &settings.schedule_group,
                owner,
                None,
            )
        })
        .chain(rules.map(|r| {
            let owner = r.owner().unwrap_or_default();
            deletion(Kind::Rule, &r.name, &settings.event_bus, owner, None)
        }))
        .collect()
}

fn deletion(kind: Kind, name: &str, place: &str, workflow: &str, file: Option<&str>) -> Change {
    Change {
        kind,
        name: name.to_owned(),
        place: Some(place.to_owned()),
        workflow: Some(workflow.to_owned()),
        file: file.map(str::to_owned),
        action: Action::Delete,
        fields: Vec::new(),
        op: match kind {
            Kind::Rule => Op::DeleteRule,
            _ => Op::DeleteSchedule,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CHARGE, COMPLETE, NIGHTLY, ORDERS, file, settings};
    use super::super::{RuleTarget, desired};
    use super::*;
    use serde_json::json;

    fn wanted(files: &[(&str, &str)]) -> Desired {
        let files: Vec<_> = files.iter().map(|(n, y)| file(n, y)).collect();
        desired(&files, &settings()).expect("desired")
    }

    /// What exists after `desired` was deployed as it is.
    fn deployed(desired: &Desired) -> Current {
        Current {
            versions: desired
                .workflows
                .iter()
                .map(|w| (w.definition.name.clone(), w.version.clone()))
                .collect(),
            invoke_configs: desired
                .functions
                .iter()
                .map(|f| (f.config.name(), f.config.clone()))
                .collect(),
            group_exists: true,
            schedules: desired
                .workflows
                .iter()
                .filter_map(|w| w.schedule.clone())
                .collect(),
            rules: desired
                .workflows
                .iter()
                .flat_map(|w| w.rules.clone())
                .collect(),
        }
    }

    fn actions(plan: &Plan) -> Vec<(Kind, &str, Action)> {
        plan.changes
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.action))
            .collect()
    }

    #[test]
    fn a_first_deploy_creates_everything_and_the_group() {
        let desired = wanted(&[("nightly", NIGHTLY), ("orders", ORDERS)]);
        let plan = plan(&desired, &Current::default(), false).expect("plan");
        assert_eq!(
            actions(&plan),
            [
                (Kind::ScheduleGroup, "aloft", Action::Create),
                (Kind::Workflow, "nightly", Action::Create),
                (Kind::Schedule, "nightly", Action::Create),
                (Kind::Workflow, "orders", Action::Create),
                (Kind::Rule, "aloft-orders-0", Action::Create),
                (Kind::Rule, "aloft-orders-1", Action::Create),
            ]
        );
        let schedule = &plan.changes[2];
        let expression = schedule.fields.iter().find(|f| f.field == "expression");
        assert_eq!(
            expression.and_then(|f| f.new.as_deref()),
            Some("cron(0 2 * * ? *)")
        );
        assert_eq!(plan.count(Action::Create), 6);
    }

    #[test]
    fn deploying_what_exists_changes_nothing() {
        let desired = wanted(&[("nightly", NIGHTLY), ("orders", ORDERS)]);
        let plan = plan(&desired, &deployed(&desired), false).expect("plan");
        assert!(!plan.changes_anything(), "{:?}", actions(&plan));
        assert_eq!(plan.count(Action::Unchanged), 5);
        assert!(plan.changes.iter().all(|c| c.op == Op::Nothing));
    }

    #[test]
    fn keys_in_another_order_are_the_same_pattern() {
        let desired = wanted(&[("orders", ORDERS)]);
        let mut current = deployed(&desired);
        current.rules[0].pattern = json!({"source": ["shop"]});
        current.rules[1].pattern =
            serde_json::from_str(r#"{"detail-type":["Order Placed"]}"#).expect("json");
        let plan = plan(&desired, &current, false).expect("plan");
        assert!(!plan.changes_anything(), "{:?}", plan.changes);
    }

    #[test]
    fn a_changed_expression_is_an_update_of_that_field_alone() {
        let before = wanted(&[("nightly", NIGHTLY)]);
        let after = wanted(&[("nightly", &NIGHTLY.replace("0 2", "30 3"))]);
        let plan = plan(&after, &deployed(&before), false).expect("plan");
        assert_eq!(
            actions(&plan),
            [
                (Kind::Workflow, "nightly", Action::Update),
                (Kind::Schedule, "nightly", Action::Update),
            ]
        );
        assert_eq!(
            plan.changes[1].fields,
            [FieldChange {
                field: "expression",
                old: Some("cron(0 2 * * ? *)".into()),
                new: Some("cron(30 3 * * ? *)".into()),
            }]
        );
        assert!(matches!(plan.changes[1].op, Op::UpdateSchedule(_)));
    }

    #[test]
    fn removed_triggers_delete_their_schedule_and_rules() {
        let before = wanted(&[("nightly", NIGHTLY), ("orders", ORDERS)]);
        let nightly = NIGHTLY.replace(
            "schedule:\n  expression: cron(0 2 * * ? *)\n  timezone: Europe/Berlin\n",
            "",
        );
        let orders = ORDERS.replace(
            "  - pattern: {detail-type: [Order Placed]}\n    input: {id: $.id}\n",
            "",
        );
        let after = wanted(&[("nightly", &nightly), ("orders", &orders)]);
        let plan = plan(&after, &deployed(&before), false).expect("plan");
        assert_eq!(
            actions(&plan),
            [
                (Kind::Workflow, "nightly", Action::Update),
                (Kind::Schedule, "nightly", Action::Delete),
                (Kind::Workflow, "orders", Action::Update),
                (Kind::Rule, "aloft-orders-0", Action::Unchanged),
                (Kind::Rule, "aloft-orders-1", Action::Delete),
            ]
        );
        assert_eq!(plan.changes[4].file.as_deref(), Some("orders.yaml"));
    }

    #[test]
    fn other_workflows_are_left_alone_unless_pruned() {
        let both = wanted(&[("nightly", NIGHTLY), ("orders", ORDERS)]);
        let current = deployed(&both);
        let only_orders = wanted(&[("orders", ORDERS)]);
        let kept = plan(&only_orders, &current, false).expect("plan");
        assert!(kept.changes.iter().all(|c| c.name != "nightly"));
        assert!(!kept.changes_anything());

        let pruned = plan(&only_orders, &current, true).expect("plan");
        let deleted: Vec<_> = pruned
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| (c.kind, c.name.as_str(), c.workflow.as_deref()))
            .collect();
        assert_eq!(deleted, [(Kind::Schedule, "nightly", Some("nightly"))]);
    }

    #[test]
    fn resources_deploy_does_not_manage_are_refused_and_never_pruned() {
        let desired = wanted(&[("orders", ORDERS)]);
        let mut current = deployed(&desired);
        current.rules[0].description = "hand made".into();
        let error = plan(&desired, &current, false)
            .expect_err("not ours")
            .to_string();
        assert!(
            error.starts_with("rule \"aloft-orders-0\" in default exists and is not managed"),
            "{error}"
        );

        let mut current = Current::default();
        current.rules.push(RuleSpec {
            name: "aloft-someone-0".into(),
            pattern: json!({"source": ["x"]}),
            state: "ENABLED".into(),
            description: "hand made".into(),
            target: None,
        });
        let pruned = plan(&desired, &current, true).expect("plan");
        assert!(pruned.changes.iter().all(|c| c.name != "aloft-someone-0"));
    }

    #[test]
    fn event_invoke_configs_follow_their_first_workflow_and_are_never_deleted() {
        let desired = wanted(&[("charge", CHARGE), ("nightly", NIGHTLY)]);
        let mailer = "arn:aws:lambda:eu-west-1:123456789012:function:mailer:live";
        let first = plan(&desired, &Current::default(), false).expect("plan");
        assert_eq!(
            actions(&first),
            [
                (Kind::ScheduleGroup, "aloft", Action::Create),
                (Kind::Workflow, "charge", Action::Create),
                (Kind::EventInvokeConfig, "payments", Action::Create),
                (Kind::EventInvokeConfig, mailer, Action::Create),
                (Kind::Workflow, "nightly", Action::Create),
                (Kind::Schedule, "nightly", Action::Create),
            ]
        );
        assert_eq!(first.changes[2].file.as_deref(), Some("charge.yaml"));
        assert_eq!(first.changes[2].place, None);
        let destination = first.changes[2]
            .fields
            .iter()
            .find(|f| f.field == "on_failure")
            .and_then(|f| f.new.as_deref());
        assert_eq!(destination, Some(COMPLETE));

        let current = deployed(&desired);
        assert!(
            !plan(&desired, &current, false)
                .expect("plan")
                .changes_anything()
        );
        // A workflow that no longer names a function leaves its config alone, pruned or not.
        let nightly_only = wanted(&[("nightly", NIGHTLY)]);
        let pruned = plan(&nightly_only, &current, true).expect("plan");
        assert!(
            pruned
                .changes
                .iter()
                .all(|c| c.kind != Kind::EventInvokeConfig),
            "{:?}",
            actions(&pruned)
        );
    }

    #[test]
    fn a_config_changed_by_hand_is_updated_field_by_field() {
        let desired = wanted(&[("charge", CHARGE)]);
        let mut current = deployed(&desired);
        let payments = current
            .invoke_configs
            .get_mut("payments")
            .expect("payments");
        payments.retry_attempts = 2;
        payments.on_success = None;
        let plan = plan(&desired, &current, false).expect("plan");
        assert_eq!(
            actions(&plan)[1],
            (Kind::EventInvokeConfig, "payments", Action::Update)
        );
        assert_eq!(
            plan.changes[1].fields,
            [
                FieldChange {
                    field: "maximum_retry_attempts",
                    old: Some("2".into()),
                    new: Some("0".into()),
                },
                FieldChange {
                    field: "on_success",
                    old: Some("(none)".into()),
                    new: Some(COMPLETE.into()),
                },
            ]
        );
        assert!(
            matches!(&plan.changes[1].op, Op::PutInvokeConfig(spec) if spec.retry_attempts == 0)
        );
        assert_eq!(plan.count(Action::Unchanged), 2);
    }

    #[test]
    fn a_changed_target_is_shown_old_and_new() {
        let desired = wanted(&[("orders", ORDERS)]);
        let mut current = deployed(&desired);
        current.rules[0].target = Some(RuleTarget {
            arn: "arn:aws:lambda:eu-west-1:123456789012:function:old".into(),
            ..current.rules[0].target.clone().expect("a target")
        });
        current.rules[1].target = None;
        let plan = plan(&desired, &current, false).expect("plan");
        let fields =
            |i: usize| -> Vec<&str> { plan.changes[i].fields.iter().map(|f| f.field).collect() };
        assert_eq!(fields(1), ["target"]);
        assert_eq!(
            plan.changes[1].fields[0].old.as_deref(),
            Some("arn:aws:lambda:eu-west-1:123456789012:function:old")
        );
        assert_eq!(fields(2), ["target", "input_template", "retry"]);
    }
}
