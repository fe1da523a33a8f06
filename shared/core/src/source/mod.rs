//! Loading workflow files: YAML 1.2 or JSON text into a [`Definition`], with every problem
//! reported at its file, line and column.
//!
//! The text goes through yaml-rust2's event parser (JSON is read by the same YAML 1.2 parser)
//! into a small tree that remembers the position of every node and map key. The tree becomes
//! a `serde_json::Value`, which deserializes into [`Definition`] through
//! `serde_path_to_error`; the path of a failure leads back to the node, hence to its position.
//! After a failure the offending field is set aside and deserialization goes on, so that one
//! load reports as many problems as it can. Semantic checks come from [`crate::validate`].
//!
//! The steps live apart: `build` turns parser events into the spanned tree of `tree`, with
//! scalars resolved by `scalar`; `deserialize` drives serde and validation over that tree,
//! `failure` and `explain` place and word each serde error, and `recover` sets aside what
//! failed so the next pass can go on.

mod build;
mod deserialize;
mod explain;
mod failure;
mod located;
mod recover;
mod scalar;
mod tree;

use std::path::Path;

use crate::definition::Definition;
use located::{Located, Pos};

/// One problem in a workflow file, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct Diagnostic {
    /// The file as the caller named it.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// What is wrong, naming the offending value.
    pub message: String,
}

/// Every problem found in one workflow file, in order of position, one per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn lines(diagnostics: &[Diagnostic]) -> String {
    let shown: Vec<String> = diagnostics.iter().map(Diagnostic::to_string).collect();
    shown.join("\n")
}

/// Reads, parses and validates the workflow file at `path`.
pub fn load_path(path: &Path) -> Result<Definition, Diagnostics> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => load_bytes(&file, &bytes),
        Err(err) => {
            let message = format!("cannot read {file}: {err}");
            Err(Diagnostics(vec![Diagnostic {
                file,
                line: 1,
                column: 1,
                message,
            }]))
        }
    }
}

/// Parses and validates workflow bytes, which must be UTF-8; `file` names them in messages.
pub fn load_bytes(file: &str, bytes: &[u8]) -> Result<Definition, Diagnostics> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(file, text),
        Err(err) => {
            let offset = err.valid_up_to();
            let pos = Pos::after(&String::from_utf8_lossy(&bytes[..offset]));
            let message = format!("invalid utf-8 at byte offset {offset}");
            Err(to_diagnostics(file, vec![Located::new(pos, message)]))
        }
    }
}

/// Parses and validates workflow text, reporting every problem found at once.
pub fn load_str(file: &str, text: &str) -> Result<Definition, Diagnostics> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(problem) = unprintable(text) {
        return Err(to_diagnostics(file, vec![problem]));
    }

    let mut problems = Vec::new();
    let definition = build::build_tree(text, &mut problems)
        .and_then(|root| deserialize::load_tree(&root, &mut problems));
    match definition {
        Some(definition) if problems.is_empty() => Ok(definition),
        _ => Err(to_diagnostics(file, problems)),
    }
}

/// The first character YAML does not allow in a stream (controls other than tab, line
/// feed and carriage return, DEL, C1 controls but NEL, U+FFFE and U+FFFF), if any.
fn unprintable(text: &str) -> Option<Located> {
    let allowed = |c: char| match c {
        '\t' | '\n' | '\r' | '\u{85}' => true,
        '\u{fffe}' | '\u{ffff}' => false,
        c => !c.is_control(),
    };
    let (offset, c) = text.char_indices().find(|&(_, c)| !allowed(c))?;
    let message = format!(
        "character U+{:04X} is not allowed in a workflow file",
        u32::from(c)
    );
    Some(Located::new(Pos::after(&text[..offset]), message))
}

/// Names the file in every problem and puts them in order of position.
fn to_diagnostics(file: &str, mut problems: Vec<Located>) -> Diagnostics {
    problems.sort_by_key(|p| (p.pos.line, p.pos.column));
    let diagnostics = problems.into_iter().map(|p| Diagnostic {
        file: file.to_owned(),
        line: p.pos.line,
        column: p.pos.column,
        message: one_line(&p.message),
    });
    Diagnostics(diagnostics.collect())
}

/// Keeps a message on one line, whatever names from the file it quotes.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
