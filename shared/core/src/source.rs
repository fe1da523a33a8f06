//! Loading workflow files: YAML 1.2 or JSON text into a [`Definition`], with every problem
//! reported at its file, line and column.
//!
//! The text goes through yaml-rust2's event parser (JSON is read by the same YAML 1.2 parser)
//! into a small tree that remembers the position of every node and map key. The tree becomes
//! a `serde_json::Value`, which deserializes into [`Definition`] through
//! `serde_path_to_error`; the path of a failure leads back to the node, hence to its position.
//! After a failure the offending field is set aside and deserialization goes on, so that one
//! load reports as many problems as it can. Semantic checks come from [`crate::validate`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::definition::Definition;
use crate::validate::{self, FieldPath, Segment, Target};

/// Deepest nesting of maps and sequences accepted, aliases included.
const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may add by expansion, against "billion laughs" documents.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Most type and field errors reported before giving up on a file.
const MAX_DESERIALIZE_ERRORS: usize = 100;

/// The YAML core schema's tag prefix, `!!` in short form.
const CORE_TAG: &str = "tag:yaml.org,2002:";

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
            let valid = String::from_utf8_lossy(&bytes[..offset]);
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let message = format!("invalid utf-8 at byte offset {offset}");
            let file = file.to_owned();
            Err(Diagnostics(vec![Diagnostic {
                file,
                line,
                column,
                message,
            }]))
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
    let definition =
        build_tree(text, &mut problems).and_then(|root| load_tree(&root, &mut problems));
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
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let message = format!(
        "character U+{:04X} is not allowed in a workflow file",
        u32::from(c)
    );
    Some(Located::new(Pos { line, column }, message))
}

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

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    const START: Pos = Pos { line: 1, column: 1 };

    fn of(mark: Marker) -> Self {
        Pos {
            line: mark.line().max(1),
            column: mark.col() + 1,
        }
    }
}

/// A message at a position, before it gets a file name.
#[derive(Debug)]
struct Located {
    pos: Pos,
    message: String,
}

impl Located {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located {
            pos,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The spanned tree

/// A parsed value with its position.
#[derive(Clone, Debug)]
struct Node {
    pos: Pos,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Entry>),
    /// A scalar already reported as wrong; it is set aside before deserializing.
    Invalid,
}

/// A map value with the position of its key.
#[derive(Clone, Debug)]
struct Entry {
    key_pos: Pos,
    value: Node,
}

impl Node {
    /// The JSON value of the tree. Invalid scalars are left out of maps and become null in
    /// sequences (so that indices stay true); their paths go to `invalid`.
    fn to_value(&self, path: &mut Vec<Segment>, invalid: &mut Vec<Vec<Segment>>) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Invalid => {
                invalid.push(path.clone());
                Value::Null
            }
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => {
                let mut array = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    path.push(Segment::Index(index));
                    array.push(item.to_value(path, invalid));
                    path.pop();
                }
                Value::Array(array)
            }
            Kind::Map(entries) => {
                let mut map = Map::new();
                for (key, entry) in entries {
                    path.push(Segment::Key(key.clone()));
                    let value = entry.value.to_value(path, invalid);
                    if !matches!(entry.value.kind, Kind::Invalid) {
                        map.insert(key.clone(), value);
                    }
                    path.pop();
                }
                Value::Object(map)
            }
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_owned(),
            Kind::Bool(b) => b.to_string(),
            Kind::Number(n) => n.to_string(),
            Kind::Str(s) => format!("`{s}`"),
            Kind::Seq(_) => "a sequence".to_owned(),
            Kind::Map(_) => "a map".to_owned(),
            Kind::Invalid => "an invalid value".to_owned(),
        }
    }
}

/// A finished node with what the builder needs to know about it.
#[derive(Clone, Debug)]
struct Built {
    node: Node,
    /// Character offset where the node starts, to tell block from flow collections.
    index: usize,
    /// Nodes in the subtree, itself included.
    count: usize,
    /// Levels in the subtree, itself included.
    height: usize,
}

/// A map or sequence still open while its events arrive.
#[derive(Debug)]
struct Frame {
    start: Marker,
    first_child: Option<(usize, Pos)>,
    anchor: usize,
    count: usize,
    height: usize,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Seq(Vec<Node>),
    Map {
        entries: IndexMap<String, Entry>,
        key: PendingKey,
    },
}

/// Where a map stands between a key and its value.
#[derive(Debug)]
enum PendingKey {
    None,
    Key(String, Pos),
    /// The key was refused; its value is read and dropped.
    Skip,
}

/// Builds the tree from parser events, collecting the problems it can go on after.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Built>,
    root: Option<Node>,
    expanded: usize,
    problems: Vec<Located>,
}

/// Parses `text` into a tree; problems go to `problems`. `None` when nothing usable came out.
fn build_tree(text: &str, problems: &mut Vec<Located>) -> Option<Node> {
    let mut builder = Builder::default();
    let outcome = run_parser(text, &mut builder);
    problems.append(&mut builder.problems);
    if let Err(fatal) = outcome {
        problems.push(fatal);
        return None;
    }
    if builder.root.is_none() {
        let message = "the file is empty: expected `name` and `tasks`";
        problems.push(Located::new(Pos::START, message));
    }
    builder.root
}

/// Feeds every parser event to `builder`; `Err` on the problem that stopped it.
fn run_parser(text: &str, builder: &mut Builder) -> Result<(), Located> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|err| {
            let message = format!("invalid yaml: {}", err.info());
            Located::new(Pos::of(*err.marker()), message)
        })?;
        if event == Event::DocumentStart {
            documents += 1;
            if documents > 1 {
                let message = "a workflow file holds one document; found a second";
                return Err(Located::new(Pos::of(mark), message));
            }
        }
        if !builder.event(event, mark)? {
            return Ok(());
        }
    }
}

impl Builder {
    /// Takes one event; `Ok(false)` at the end of the stream, `Err` on a problem that stops.
    fn event(&mut self, event: Event, mark: Marker) -> Result<bool, Located> {
        match event {
            Event::StreamEnd => return Ok(false),
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(text, style, tag.as_ref(), mark);
                let built = Built {
                    node,
                    index: mark.index(),
                    count: 1,
                    height: 1,
                };
                self.finish(built, anchor);
            }
            Event::Alias(id) => self.alias(id, mark)?,
            Event::SequenceStart(anchor, tag) => self.open(mark, anchor, tag, false)?,
            Event::MappingStart(anchor, tag) => self.open(mark, anchor, tag, true)?,
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
        }
        Ok(true)
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        tag: Option<&Tag>,
        mark: Marker,
    ) -> Node {
        let pos = Pos::of(mark);
        let kind = match resolve_scalar(text, style, tag) {
            Ok(kind) => kind,
            Err(message) => {
                self.problems.push(Located::new(pos, message));
                Kind::Invalid
            }
        };
        Node { pos, kind }
    }

    fn open(
        &mut self,
        start: Marker,
        anchor: usize,
        tag: Option<Tag>,
        map: bool,
    ) -> Result<(), Located> {
        if self.stack.len() >= MAX_DEPTH {
            let message = format!("nesting deeper than {MAX_DEPTH} levels");
            return Err(Located::new(Pos::of(start), message));
        }
        let expected = if map { "map" } else { "seq" };
        if let Some(tag) = tag.filter(|t| !(t.handle == CORE_TAG && t.suffix == expected)) {
            let message = format!("unsupported tag `{}`", show_tag(&tag));
            self.problems.push(Located::new(Pos::of(start), message));
        }
        let body = if map {
            Body::Map {
                entries: IndexMap::new(),
                key: PendingKey::None,
            }
        } else {
            Body::Seq(Vec::new())
        };
        let frame = Frame {
            start,
            first_child: None,
            anchor,
            count: 1,
            height: 1,
            body,
        };
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        // A block collection's start mark lies inside its first entry; the entry is the
        // better position. A flow collection starts at its bracket, before any entry.
        let start_pos = Pos::of(frame.start);
        let pos = match frame.first_child {
            Some((index, pos)) if index < frame.start.index() => pos,
            _ => start_pos,
        };
        let kind = match frame.body {
            Body::Seq(items) => Kind::Seq(items),
            Body::Map { entries, .. } => Kind::Map(entries),
        };
        let node = Node { pos, kind };
        let built = Built {
            node,
            index: frame.start.index(),
            count: frame.count,
            height: frame.height,
        };
        self.finish(built, frame.anchor);
    }

    fn alias(&mut self, id: usize, mark: Marker) -> Result<(), Located> {
        let pos = Pos::of(mark);
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(Located::new(pos, "alias refers to a node that contains it"));
        };
        self.expanded = self.expanded.saturating_add(anchored.count);
        if self.expanded > MAX_ALIAS_NODES {
            let message = format!("aliases expand to more than {MAX_ALIAS_NODES} nodes");
            return Err(Located::new(pos, message));
        }
        if self.stack.len() + anchored.height > MAX_DEPTH {
            let message = format!("nesting deeper than {MAX_DEPTH} levels through an alias");
            return Err(Located::new(pos, message));
        }
        let mut built = anchored.clone();
        built.node.pos = pos;
        built.index = mark.index();
        self.finish(built, 0);
        Ok(())
    }

    /// Registers a finished node under its anchor and hands it to its parent.
    fn finish(&mut self, built: Built, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, built.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(built.node);
            return;
        };
        frame
            .first_child
            .get_or_insert((built.index, built.node.pos));
        frame.count = frame.count.saturating_add(built.count);
        frame.height = frame.height.max(built.height + 1);
        match &mut frame.body {
            Body::Seq(items) => items.push(built.node),
            Body::Map { entries, key } => match std::mem::replace(key, PendingKey::None) {
                PendingKey::None => *key = take_key(entries, built.node, &mut self.problems),
                PendingKey::Key(name, key_pos) => {
                    entries.insert(
                        name,
                        Entry {
                            key_pos,
                            value: built.node,
                        },
                    );
                }
                PendingKey::Skip => {}
            },
        }
    }
}

/// Accepts a map key if it is a string not seen before in this map.
fn take_key(
    entries: &IndexMap<String, Entry>,
    key: Node,
    problems: &mut Vec<Located>,
) -> PendingKey {
    match key.kind {
        Kind::Str(name) if entries.contains_key(&name) => {
            let message = format!("duplicate key `{name}`");
            problems.push(Located::new(key.pos, message));
            PendingKey::Skip
        }
        Kind::Str(name) => PendingKey::Key(name, key.pos),
        _ => {
            let message = format!("map key {} is not a string; quote it", key.describe());
            problems.push(Located::new(key.pos, message));
            PendingKey::Skip
        }
    }
}

fn show_tag(tag: &Tag) -> String {
    if tag.handle == CORE_TAG {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

// ---------------------------------------------------------------------------------------
// Scalars, resolved the YAML 1.2 core schema way

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Result<Kind, String> {
    let Some(tag) = tag else {
        return Ok(match style {
            TScalarStyle::Plain => resolve_plain(text)?,
            _ => Kind::Str(text),
        });
    };
    if tag.handle.is_empty() && tag.suffix == "!" {
        return Ok(Kind::Str(text));
    }
    let wrong = |what: &str| format!("`{text}` is not {what} as its tag `{}` says", show_tag(tag));
    let suffix = if tag.handle == CORE_TAG {
        tag.suffix.as_str()
    } else {
        ""
    };
    match suffix {
        "str" => Ok(Kind::Str(text)),
        "null" if is_null(&text) => Ok(Kind::Null),
        "null" => Err(wrong("null")),
        "bool" => bool_value(&text)
            .map(Kind::Bool)
            .ok_or_else(|| wrong("a boolean")),
        "int" => match int_value(&text) {
            Some(kind) => kind,
            None => Err(wrong("an integer")),
        },
        "float" => match float_value(&text) {
            Some(kind) => kind,
            None => Err(wrong("a number")),
        },
        _ => Err(format!("unsupported tag `{}`", show_tag(tag))),
    }
}

fn resolve_plain(text: String) -> Result<Kind, String> {
    if is_null(&text) {
        return Ok(Kind::Null);
    }
    if let Some(b) = bool_value(&text) {
        return Ok(Kind::Bool(b));
    }
    if let Some(number) = int_value(&text).or_else(|| float_value(&text)) {
        return number;
    }
    Ok(Kind::Str(text))
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn bool_value(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`; `None` if `text` is none of those.
fn int_value(text: &str) -> Option<Result<Kind, String>> {
    let radix = |digits: &str, radix: u32| {
        let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        valid.then(|| {
            u64::from_str_radix(digits, radix)
                .map(|n| Kind::Number(n.into()))
                .map_err(|_| format!("integer `{text}` is too large"))
        })
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return radix(octal, 8);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = match (text.parse::<i64>(), text.parse::<u64>()) {
        (Ok(n), _) => Number::from(n),
        (_, Ok(n)) => Number::from(n),
        // Like JSON readers, integers beyond 64 bits become the nearest float.
        _ => return float_value(text),
    };
    Some(Ok(Kind::Number(number)))
}

/// The core schema's floats, `.inf` and `.nan` included; non-finite values are refused
/// because JSON cannot hold them.
fn float_value(text: &str) -> Option<Result<Kind, String>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let special =
        matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN");
    if !special && !is_float_syntax(unsigned) {
        return None;
    }
    let not_finite = || format!("number `{text}` is not finite");
    let value: f64 = if special {
        f64::INFINITY
    } else {
        text.parse().ok()?
    };
    Some(
        Number::from_f64(value)
            .map(Kind::Number)
            .ok_or_else(not_finite),
    )
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float_syntax(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

// ---------------------------------------------------------------------------------------
// From the tree to a Definition

/// Deserializes the tree, then validates; `None` if no definition came out at all.
fn load_tree(root: &Node, problems: &mut Vec<Located>) -> Option<Definition> {
    if !matches!(root.kind, Kind::Map(_)) {
        let message = format!(
            "a workflow is a map with `name` and `tasks`, not {}",
            root.describe()
        );
        problems.push(Located::new(root.pos, message));
        return None;
    }
    let (definition, pruned) = deserialize(root, problems);
    let definition = definition?;
    for problem in validate::validate(&definition) {
        // A problem about a value set aside, or resting on one, would only echo an error
        // already reported.
        let overlaps = |read: &FieldPath, p: &FieldPath| read.starts_with(p) || p.starts_with(read);
        let echo = pruned.iter().any(|p| {
            problem.path.starts_with(p) || problem.reads.iter().any(|read| overlaps(read, p))
        });
        if !echo {
            let pos = locate(root, &problem.path.0, problem.target);
            problems.push(Located::new(pos, problem.message));
        }
    }
    Some(definition)
}

/// Where a serde failure points, as a path through the tree.
#[derive(Debug)]
struct Failure {
    path: Vec<Segment>,
    /// Length of the longest prefix of `path` that ends at a map entry which may be
    /// removed; the key of an enum's variant may not.
    removable: usize,
    kind: FailureKind,
    message: String,
}

#[derive(Debug, PartialEq)]
enum FailureKind {
    UnknownField,
    UnknownVariant,
    MissingField(String),
    Other,
}

/// Deserializes, setting aside each failing field and retrying, so one pass reports
/// several problems. Returns the definition and the paths that were set aside.
fn deserialize(root: &Node, problems: &mut Vec<Located>) -> (Option<Definition>, Vec<FieldPath>) {
    let mut invalid = Vec::new();
    let mut value = root.to_value(&mut Vec::new(), &mut invalid);
    let mut pruned: Vec<FieldPath> = invalid.iter().cloned().map(FieldPath).collect();
    let mut removed: HashSet<Vec<Segment>> = invalid.iter().cloned().collect();
    for _ in 0..MAX_DESERIALIZE_ERRORS {
        let err = match serde_path_to_error::deserialize::<_, Definition>(&value) {
            Ok(definition) => return (Some(definition), pruned),
            Err(err) => err,
        };
        let failure = failure_of(root, &err);
        let reported = invalid.iter().any(|path| failure.path.starts_with(path));
        if !reported && !caused_by_removal(&failure, &removed) {
            problems.push(Located::new(
                failure_pos(root, &failure),
                failure.message.clone(),
            ));
        }
        let (aside, removal) = set_aside(&mut value, &failure);
        removed.extend(removal);
        match aside {
            Some(paths) => pruned.extend(paths),
            None => return (None, pruned),
        }
    }
    (None, pruned)
}

/// True for a "missing field" that only exists because this loader removed that field.
fn caused_by_removal(failure: &Failure, removed: &HashSet<Vec<Segment>>) -> bool {
    let FailureKind::MissingField(field) = &failure.kind else {
        return false;
    };
    let mut path = failure.path.clone();
    path.push(Segment::Key(field.clone()));
    removed.contains(&path)
}

/// Turns a serde failure into a path through the tree and a message for people.
fn failure_of(root: &Node, err: &serde_path_to_error::Error<serde_json::Error>) -> Failure {
    let mut node = Some(root);
    let mut path = Vec::new();
    let mut removable = 0;
    for segment in err.path() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                node = node.and_then(|n| child(n, &Segment::Index(*index)).map(|(_, c)| c));
                path.push(Segment::Index(*index));
            }
            serde_path_to_error::Segment::Map { key } => {
                let segment = Segment::Key(key.clone());
                node = node.and_then(|n| child(n, &segment).map(|(_, c)| c));
                path.push(segment);
                removable = path.len();
            }
            serde_path_to_error::Segment::Enum { variant } => {
                let segment = Segment::Key(variant.clone());
                if let Some((_, inner)) = node.and_then(|n| child(n, &segment)) {
                    node = Some(inner);
                    path.push(segment);
                }
            }
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    let raw = err.inner().to_string();
    let kind = classify(&raw);
    let message = explain(&raw, &kind, &path, node);
    Failure {
        path,
        removable,
        kind,
        message,
    }
}

fn classify(message: &str) -> FailureKind {
    let quoted = || message.split('`').nth(1).unwrap_or_default().to_owned();
    if message.starts_with("unknown field `") {
        FailureKind::UnknownField
    } else if message.starts_with("unknown variant `") {
        FailureKind::UnknownVariant
    } else if message.starts_with("missing field `") {
        FailureKind::MissingField(quoted())
    } else {
        FailureKind::Other
    }
}

/// Rewords serde's message in the file's terms rather than Rust's.
fn explain(raw: &str, kind: &FailureKind, path: &[Segment], node: Option<&Node>) -> String {
    let is_map = node.is_some_and(|n| matches!(n.kind, Kind::Map(_)));
    let at_run = matches!(path, [.., Segment::Key(run)] if run == "run");
    let run_shape = raw.contains("map with a single key")
        || raw.contains("expected enum RunSpec")
        || raw.contains("expected string or map")
        || raw.contains("unit variant");
    if at_run && run_shape {
        return "`run` must be a map with exactly one key: `command`, `lambda` or `pass`"
            .to_owned();
    }
    match kind {
        FailureKind::UnknownField => unknown_name(raw, "field"),
        FailureKind::UnknownVariant if is_map => unknown_name(raw, "key"),
        FailureKind::UnknownVariant => unknown_name(raw, "value"),
        _ => plain_types(raw),
    }
}

/// "unknown field `x`", with the closest expected name when one is close enough.
fn unknown_name(raw: &str, what: &str) -> String {
    let mut quoted = raw.split('`').skip(1).step_by(2);
    let name = quoted.next().unwrap_or_default();
    let closest = quoted
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, candidate)) => format!("unknown {what} `{name}`, did you mean `{candidate}`?"),
        None => {
            let rest = raw.split_once(", ").map_or("", |(_, rest)| rest);
            format!("unknown {what} `{name}`, {rest}")
                .trim_end_matches(", ")
                .to_owned()
        }
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

fn plain_types(raw: &str) -> String {
    let message = match raw.find(", expected struct ") {
        Some(at) => format!("{}, expected a map", &raw[..at]),
        None => raw.to_owned(),
    };
    message
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected f64", "expected a number")
        .replace("floating point", "number")
}

fn failure_pos(root: &Node, failure: &Failure) -> Pos {
    let target = match failure.kind {
        FailureKind::UnknownField | FailureKind::MissingField(_) => Target::Key,
        FailureKind::UnknownVariant | FailureKind::Other => Target::Value,
    };
    let pos = locate(root, &failure.path, target);
    if failure.kind != FailureKind::UnknownVariant {
        return pos;
    }
    // An unknown variant written as a one-key map is best shown at that key.
    match find(root, &failure.path).map(|n| &n.kind) {
        Some(Kind::Map(entries)) => entries.values().next().map_or(pos, |e| e.key_pos),
        _ => pos,
    }
}

fn child<'a>(node: &'a Node, segment: &Segment) -> Option<(Option<Pos>, &'a Node)> {
    match (segment, &node.kind) {
        (Segment::Key(key), Kind::Map(entries)) => {
            entries.get(key).map(|e| (Some(e.key_pos), &e.value))
        }
        (Segment::Index(index), Kind::Seq(items)) => items.get(*index).map(|n| (None, n)),
        _ => None,
    }
}

fn find<'a>(root: &'a Node, path: &[Segment]) -> Option<&'a Node> {
    path.iter()
        .try_fold(root, |node, segment| child(node, segment).map(|(_, c)| c))
}

/// The position of `path`'s value or key; as deep as the path resolves.
fn locate(root: &Node, path: &[Segment], target: Target) -> Pos {
    let mut node = root;
    let mut key_pos = None;
    for segment in path {
        match child(node, segment) {
            Some((key, next)) => {
                key_pos = key;
                node = next;
            }
            None => return node.pos,
        }
    }
    match target {
        Target::Key => key_pos.unwrap_or(node.pos),
        Target::Value => node.pos,
    }
}

/// Sets aside what failed so that deserialization can go on: removes the field, or fills a
/// required one with a placeholder. Returns the paths set aside (`None` if nothing could
/// be done) and the path removed, if one was.
fn set_aside(
    value: &mut Value,
    failure: &Failure,
) -> (Option<Vec<FieldPath>>, Option<Vec<Segment>>) {
    if let FailureKind::MissingField(field) = &failure.kind
        && let Some(paths) = fill_required(value, &failure.path, field)
    {
        return (Some(paths), None);
    }
    let target = match &failure.kind {
        FailureKind::UnknownField => failure.path.clone(),
        _ => failure.path[..failure.removable].to_vec(),
    };
    match target.as_slice() {
        [] => (None, None),
        [Segment::Key(tasks), Segment::Key(task)] if tasks == "tasks" => {
            (Some(set_task_placeholder(value, task)), None)
        }
        _ if remove_at(value, &target) => (Some(vec![FieldPath(target.clone())]), Some(target)),
        _ => (None, None),
    }
}

/// Fills a missing required field with a placeholder, for the fields that have one:
/// `name` and `tasks` of the workflow, and `run` of a task.
fn fill_required(value: &mut Value, path: &[Segment], field: &str) -> Option<Vec<FieldPath>> {
    let placeholder = match (path, field) {
        ([], "name") => Value::String(String::new()),
        ([], "tasks") => Value::Object(Map::new()),
        ([Segment::Key(tasks), Segment::Key(_)], "run") if tasks == "tasks" => {
            serde_json::json!({"pass": {}})
        }
        _ => return None,
    };
    let object = find_value(value, path)?.as_object_mut()?;
    object.insert(field.to_owned(), placeholder);
    let mut filled = path.to_vec();
    filled.push(Segment::Key(field.to_owned()));
    Some(vec![FieldPath(filled)])
}

fn find_value<'a>(value: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Key(k) => v.get_mut(k.as_str()),
        Segment::Index(i) => v.get_mut(*i),
    })
}

/// Replaces a broken task by a pass task with the same dependencies, if those are readable,
/// so that references to it and cycles through it are still checked. Returns the fields
/// set aside.
fn set_task_placeholder(value: &mut Value, task: &str) -> Vec<FieldPath> {
    let Some(slot) = value.get_mut("tasks").and_then(|tasks| tasks.get_mut(task)) else {
        return Vec::new();
    };
    let depends_on = slot.get("depends_on").filter(|deps| {
        deps.as_array()
            .is_some_and(|items| items.iter().all(Value::is_string))
    });
    let mut placeholder = Map::new();
    if let Some(depends_on) = depends_on {
        placeholder.insert("depends_on".to_owned(), depends_on.clone());
    }
    let field = |name: &str| {
        FieldPath(vec![
            Segment::Key("tasks".into()),
            Segment::Key(task.into()),
            Segment::Key(name.into()),
        ])
    };
    let mut pruned = vec![field("run")];
    if depends_on.is_none() {
        pruned.push(field("depends_on"));
    }
    if let Some(object) = slot.as_object() {
        let kept = |k: &&String| !placeholder.contains_key(k.as_str());
        pruned.extend(object.keys().filter(kept).map(|k| field(k)));
    }
    placeholder.insert("run".to_owned(), serde_json::json!({"pass": {}}));
    *slot = Value::Object(placeholder);
    pruned
}

fn remove_at(value: &mut Value, path: &[Segment]) -> bool {
    let Some((Segment::Key(key), parent)) = path.split_last() else {
        return false;
    };
    find_value(value, parent)
        .and_then(Value::as_object_mut)
        .is_some_and(|object| object.shift_remove(key.as_str()).is_some())
}
