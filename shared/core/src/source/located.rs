//! Positions in the text, and problems waiting at a position for their file name.

use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Pos {
    /// The start of the file.
    pub(super) const START: Pos = Pos { line: 1, column: 1 };

    /// Where the parser's mark points.
    pub(super) fn of(mark: Marker) -> Self {
        Pos {
            line: mark.line().max(1),
            column: mark.col() + 1,
        }
    }

    /// The position just past `before`, the text from the start of the file.
    pub(super) fn after(before: &str) -> Self {
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Pos { line, column }
    }
}

/// A message at a position, before it gets a file name.
#[derive(Debug)]
pub(super) struct Located {
    pub(super) pos: Pos,
    pub(super) message: String,
}

impl Located {
    /// A problem at `pos`.
    pub(super) fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located {
            pos,
            message: message.into(),
        }
    }
}
