//! Positional arguments of a subcommand.

use crate::error::{Error, Result};

/// Exactly `N` positional arguments, or a usage error naming `usage`.
pub fn positional<'a, const N: usize>(args: &'a [String], usage: &str) -> Result<[&'a str; N]> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    <[&str; N]>::try_from(refs).map_err(|refs| {
        Error::new(format!(
            "expected {N} arguments, got {}: usage: aloft-example {usage}",
            refs.len()
        ))
    })
}
