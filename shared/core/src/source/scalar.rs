//! Scalars, resolved the YAML 1.2 core schema way: plain text may be null, a boolean or a
//! number; quoted text is a string; a core tag says which it must be.

use serde_json::Number;
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

use super::tree::Kind;

/// The YAML core schema's tag prefix, `!!` in short form.
pub(super) const CORE_TAG: &str = "tag:yaml.org,2002:";

/// A tag as the file would write it, core tags in their `!!` short form.
pub(super) fn show_tag(tag: &Tag) -> String {
    if tag.handle == CORE_TAG {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// The value of a scalar as written, or why it has none.
pub(super) fn resolve_scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
) -> Result<Kind, String> {
    match tag {
        None if style == TScalarStyle::Plain => resolve_plain(text),
        None => Ok(Kind::Str(text)),
        Some(tag) => resolve_tagged(text, tag),
    }
}

/// A tagged scalar, which must be what its tag says; `!` alone makes it a string.
fn resolve_tagged(text: String, tag: &Tag) -> Result<Kind, String> {
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

/// An untagged plain scalar: null, a boolean, a number, or else a string.
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

/// The core schema's nulls, the empty text included.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// The core schema's booleans, in three spellings each.
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
