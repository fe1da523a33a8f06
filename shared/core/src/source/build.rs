//! Building the spanned tree from yaml-rust2's parser events: anchors and aliases, map keys,
//! and the limits that keep hostile documents small.

use std::collections::HashMap;

use indexmap::IndexMap;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::located::{Located, Pos};
use super::scalar::{CORE_TAG, resolve_scalar, show_tag};
use super::tree::{Entry, Kind, Node};

/// Deepest nesting of maps and sequences accepted, aliases included.
const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may add by expansion, against "billion laughs" documents.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Parses `text` into a tree; problems go to `problems`. `None` when nothing usable came out.
pub(super) fn build_tree(text: &str, problems: &mut Vec<Located>) -> Option<Node> {
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

/// The children an open collection has so far.
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

impl Body {
    /// An open collection with no children yet.
    fn empty(map: bool) -> Self {
        if map {
            Body::Map {
                entries: IndexMap::new(),
                key: PendingKey::None,
            }
        } else {
            Body::Seq(Vec::new())
        }
    }

    /// Takes a finished child: an item, a map key, or the value of the pending key.
    fn push(&mut self, node: Node, problems: &mut Vec<Located>) {
        match self {
            Body::Seq(items) => items.push(node),
            Body::Map { entries, key } => match std::mem::replace(key, PendingKey::None) {
                PendingKey::None => *key = take_key(entries, node, problems),
                PendingKey::Key(name, key_pos) => {
                    let value = node;
                    entries.insert(name, Entry { key_pos, value });
                }
                PendingKey::Skip => {}
            },
        }
    }

    /// What the collection holds once closed.
    fn into_kind(self) -> Kind {
        match self {
            Body::Seq(items) => Kind::Seq(items),
            Body::Map { entries, .. } => Kind::Map(entries),
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

/// Builds the tree from parser events, collecting the problems it can go on after.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Built>,
    root: Option<Node>,
    expanded: usize,
    problems: Vec<Located>,
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

    /// A scalar's node; one that does not resolve is reported and kept as invalid.
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

    /// Opens a map or sequence, refusing it past [`MAX_DEPTH`].
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

        self.stack.push(Frame {
            start,
            first_child: None,
            anchor,
            count: 1,
            height: 1,
            body: Body::empty(map),
        });
        Ok(())
    }

    /// Closes the innermost map or sequence and hands it to its parent.
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

        let node = Node {
            pos,
            kind: frame.body.into_kind(),
        };
        let built = Built {
            node,
            index: frame.start.index(),
            count: frame.count,
            height: frame.height,
        };
        self.finish(built, frame.anchor);
    }

    /// Copies the anchored node in place of the alias, within the size and depth limits.
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
        frame.body.push(built.node, &mut self.problems);
    }
}
