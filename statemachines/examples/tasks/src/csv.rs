//! A small CSV reader and writer: comma separated, `"` quoting with `""` escapes, one
//! record per line. Quoted fields may hold commas and quotes but not line breaks, which
//! is all the shipped tables need; a line break inside quotes is reported as an error.

use std::fs;
use std::path::Path;

use crate::error::{Context, Error, Result};

/// One data row of a CSV file with the line it came from (1-based, header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line number in the file.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// Read `path`, check that its header is exactly `header`, and return the data rows, each
/// with exactly as many fields as the header.
pub fn read_table(path: &Path, header: &[&str]) -> Result<Vec<Record>> {
    let text = fs::read_to_string(path).context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let (_, first) = lines
        .next()
        .ok_or_else(|| Error::new(format!("{}: empty file, expected a header", path.display())))?;
    let found = parse_line(first.trim_start_matches('\u{feff}'))
        .map_err(|err| Error::new(format!("{}:1: {err}", path.display())))?;
    if found != header {
        return Err(Error::new(format!(
            "{}:1: header is {found:?}, expected {header:?}",
            path.display()
        )));
    }

    let mut records = Vec::new();
    for (line, content) in lines {
        let fields = parse_line(content)
            .map_err(|err| Error::new(format!("{}:{line}: {err}", path.display())))?;
        if fields.len() != header.len() {
            return Err(Error::new(format!(
                "{}:{line}: {} fields, expected {} ({content:?})",
                path.display(),
                fields.len(),
                header.len()
            )));
        }
        records.push(Record { line, fields });
    }
    Ok(records)
}

/// Split one CSV line into its fields.
pub fn parse_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let (field, after) = match rest.strip_prefix('"') {
            Some(quoted) => parse_quoted(quoted)?,
            None => parse_plain(rest)?,
        };
        fields.push(field);
        match after {
            Some(next) => rest = next,
            None => return Ok(fields),
        }
    }
}

/// A quoted field without its opening quote; returns the field and what follows the comma.
fn parse_quoted(text: &str) -> std::result::Result<(String, Option<&str>), String> {
    let mut field = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c != '"' {
            field.push(c);
            continue;
        }
        if chars.peek().is_some_and(|&(_, next)| next == '"') {
            field.push('"');
            chars.next();
            continue;
        }
        let after = &text[index + 1..];
        return match after.strip_prefix(',') {
            Some(next) => Ok((field, Some(next))),
            None if after.is_empty() => Ok((field, None)),
            None => Err(format!("unexpected {after:?} after closing quote")),
        };
    }
    Err(format!("unterminated quoted field {text:?}"))
}

/// An unquoted field; returns the field and what follows the comma.
fn parse_plain(text: &str) -> std::result::Result<(String, Option<&str>), String> {
    let (field, after) = match text.split_once(',') {
        Some((field, next)) => (field, Some(next)),
        None => (text, None),
    };
    if field.contains('"') {
        return Err(format!("quote inside unquoted field {field:?}"));
    }
    Ok((field.to_owned(), after))
}

/// Format one record as a CSV line (without the line break), quoting where needed.
pub fn format_line<S: AsRef<str>>(fields: &[S]) -> String {
    let quoted: Vec<String> = fields.iter().map(|field| quote(field.as_ref())).collect();
    quoted.join(",")
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_split_on_commas() {
        assert_eq!(
            parse_line("AD,+4230+00131,Europe/Andorra,"),
            Ok(vec![
                "AD".to_owned(),
                "+4230+00131".to_owned(),
                "Europe/Andorra".to_owned(),
                String::new(),
            ])
        );
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        let fields = parse_line(r#""AE,OM",x,"say ""hi""""#).expect("valid line");
        assert_eq!(fields, vec!["AE,OM", "x", r#"say "hi""#]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(parse_line(r#"a,"open"#).is_err());
        assert!(parse_line(r#""closed"junk,b"#).is_err());
        assert!(parse_line(r#"in"side"#).is_err());
    }

    #[test]
    fn format_then_parse_round_trips() {
        let fields = ["AE,OM,RE", "Côte d'Ivoire", "a \"quoted\" word", ""];
        let line = format_line(&fields);
        assert_eq!(line, r#""AE,OM,RE",Côte d'Ivoire,"a ""quoted"" word","#);
        assert_eq!(parse_line(&line).expect("valid line"), fields);
    }
}
