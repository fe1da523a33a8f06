//! `aloft events test PATTERN EVENT`: try an EventBridge event pattern, and an event
//! trigger's input template, on an event. `aloft events send EVENT`: put an event into
//! the local database's inbox, for `aloft serve` to start the runs it triggers.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use aloft_core::events::{EventPattern, SpecError, check_input, map_input, read_document};
use aloft_local::inbox::event_id;

use crate::out::{errln, outln};
use crate::run::open;
use crate::{DbArgs, Output};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Match an event against an EventBridge event pattern: prints `match` (exit 0) or
    /// `no match` (exit 1); an invalid pattern, template or event exits 2.
    Test(TestArgs),
    /// Put an event into the inbox of the local database: `aloft serve` starts a run of
    /// every served workflow whose `events` triggers match it. Kept once per `id`:
    /// prints the id (exit 0); an event without `id` exits 2.
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The event: JSON text, or @FILE holding JSON. It needs a text field `id`.
    event: String,
    /// Print `{"id", "stored"}` as JSON on stdout (`stored` is false when the inbox
    /// already held an event with that id).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The event pattern: JSON text, or @FILE holding JSON or YAML.
    pattern: String,
    /// The event: JSON text, or @FILE holding JSON.
    event: String,
    /// An event trigger's input template, to preview the run input of a matched event:
    /// JSON text, or @FILE holding JSON or YAML.
    #[arg(long)]
    input: Option<String>,
    /// Print `{"matched", "input"}` as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn events(command: EventsCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Test(args) => Ok(test(&args)),
        EventsCommand::Send(args) => send(&args),
    }
}

fn send(args: &SendArgs) -> anyhow::Result<ExitCode> {
    let event = match argument("EVENT", &args.event, false) {
        Ok(event) if event.is_object() => event,
        Ok(event) => {
            errln!("error: EVENT: an event is a JSON object, not {event}");
            return Ok(ExitCode::from(2));
        }
        Err(message) => {
            errln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(id) = event_id(&event) else {
        errln!(
            "error: EVENT has no text field `id`: a run started by an event is keyed by it \
             (event:<id>), so that an event sent twice starts one run"
        );
        return Ok(ExitCode::from(2));
    };
    let runner = open(&args.db)?;
    let stored = runner.db().put_event(id, &event)?;
    match args.output {
        Output::Json => outln!("{}", json!({"id": id, "stored": stored})),
        Output::Text => outln!("{id}"),
    }
    if !stored {
        errln!("the inbox already holds an event with this id: not stored again");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the arguments hold, checked.
struct Read {
    pattern: EventPattern,
    event: Value,
    template: Option<Value>,
}

fn test(args: &TestArgs) -> ExitCode {
    let read = match read(args) {
        Ok(read) => read,
        Err(message) => {
            errln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let matched = match read.pattern.matches(&read.event) {
        Ok(matched) => matched,
        Err(error) => {
            errln!("error: EVENT: {error}");
            return ExitCode::from(2);
        }
    };
    let input = matched.then(|| map_input(read.template.as_ref(), &read.event));
    match args.output {
        Output::Json => outln!("{}", json!({"matched": matched, "input": input})),
        Output::Text => {
            outln!("{}", if matched { "match" } else { "no match" });
            if let Some(input) = input.filter(|_| read.template.is_some()) {
                let shown = serde_json::to_string_pretty(&input).unwrap_or_default();
                outln!("{shown}");
            }
        }
    }
    if matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read(args: &TestArgs) -> Result<Read, String> {
    let pattern = argument("PATTERN", &args.pattern, true)?;
    let pattern = EventPattern::compile(&pattern).map_err(|error| placed("PATTERN", &error))?;
    let template = match &args.input {
        Some(text) => {
            let template = argument("--input", text, true)?;
            let problems: Vec<String> = check_input(&template)
                .iter()
                .map(|problem| placed("--input", problem))
                .collect();
            if !problems.is_empty() {
                return Err(problems.join("\nerror: "));
            }
            Some(template)
        }
        None => None,
    };
    let event = argument("EVENT", &args.event, false)?;
    if !event.is_object() {
        return Err(format!("EVENT: an event is a JSON object, not {event}"));
    }
    Ok(Read {
        pattern,
        event,
        template,
    })
}

/// A problem of the pattern or template, named by its argument and place.
fn placed(argument: &str, error: &SpecError) -> String {
    if error.path.0.is_empty() {
        format!("{argument}: {error}")
    } else {
        format!("{argument} at {}: {error}", error.path)
    }
}

/// An argument's JSON value: inline JSON text, or `@FILE` (JSON, or YAML where allowed).
fn argument(name: &str, text: &str, yaml: bool) -> Result<Value, String> {
    let Some(file) = text.strip_prefix('@') else {
        return serde_json::from_str(text).map_err(|error| {
            format!("{name} is not JSON: {error}: {text:?} (or give @FILE to read a file)")
        });
    };
    let content = std::fs::read_to_string(file)
        .map_err(|error| format!("{name}: cannot read {file}: {error}"))?;
    if yaml {
        read_document(&content).map_err(|error| format!("{name}: {file}: {error}"))
    } else {
        serde_json::from_str(&content).map_err(|error| format!("{name}: {file}: not JSON: {error}"))
    }
}
