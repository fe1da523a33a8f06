//! The one error type of the task programs: a message that names what failed and where.

use std::fmt;

/// A task failure, printed to stderr before the program exits non-zero.
#[derive(Debug)]
pub struct Error {
    message: String,
}

/// Result of a task step.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Adds what was being done to an error from std or a library.
pub trait Context<T> {
    /// Prefix the error with `what()`, e.g. the file being read.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::new(format!("{}: {err}", what())))
    }
}
