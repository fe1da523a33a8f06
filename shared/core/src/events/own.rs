//! The tests this module runs itself, beside quamina: those quamina 0.6 lacks or gets
//! wrong (see the module docs of [`super`] for which and why).

use std::net::IpAddr;

use serde_json::Value;

/// A test of one field's values, run by this module.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Own {
    /// `{"exists": false}`: the field has no value.
    Absent,
    /// `{"numeric": [...]}`: a number in the range.
    Numeric(Range),
    /// `{"cidr": "..."}`: an IP address, as text, in the block.
    Cidr(Cidr),
    /// A text value that passes the test.
    Text(TextTest),
    /// `anything-but` with an operator: a value that is not a text passing the test.
    NotText(TextTest),
}

impl Own {
    /// Whether the field's values (`values`, every value at its path) pass.
    pub(crate) fn holds(&self, values: &[&Value]) -> bool {
        match self {
            Own::Absent => values.is_empty(),
            Own::Numeric(range) => values
                .iter()
                .filter_map(|value| value.as_f64())
                .any(|number| range.contains(number)),
            Own::Cidr(cidr) => values
                .iter()
                .filter_map(|value| value.as_str()?.parse::<IpAddr>().ok())
                .any(|address| cidr.contains(address)),
            Own::Text(test) => values
                .iter()
                .any(|value| value.as_str().is_some_and(|text| test.passes(text))),
            Own::NotText(test) => values
                .iter()
                .any(|value| !value.as_str().is_some_and(|text| test.passes(text))),
        }
    }
}

/// Every value of the event at `path`: arrays along the way, and at the end, stand for
/// each of their elements; objects are not values (tests apply to leaves only).
pub(crate) fn values_at<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                values_at(item, path, out);
            }
        }
        Value::Object(map) => {
            if let Some((first, rest)) = path.split_first()
                && let Some(child) = map.get(first)
            {
                values_at(child, rest, out);
            }
        }
        leaf if path.is_empty() => out.push(leaf),
        _ => {}
    }
}

/// A test of a text value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TextTest {
    /// Starts with this.
    Prefix(String),
    /// Ends with this.
    Suffix(String),
    /// Starts with this, ignoring case (held lowercased).
    PrefixFold(String),
    /// Ends with this, ignoring case (held lowercased).
    SuffixFold(String),
    /// Equals one of these, ignoring case (held lowercased).
    FoldAny(Vec<String>),
    /// Matches one of these wildcards.
    WildcardAny(Vec<Wildcard>),
}

impl TextTest {
    /// The test, with the texts compared ignoring case lowercased once.
    pub(crate) fn folded(self) -> Self {
        match self {
            TextTest::PrefixFold(text) => TextTest::PrefixFold(fold(&text)),
            TextTest::SuffixFold(text) => TextTest::SuffixFold(fold(&text)),
            TextTest::FoldAny(texts) => TextTest::FoldAny(texts.iter().map(|t| fold(t)).collect()),
            other => other,
        }
    }

    fn passes(&self, text: &str) -> bool {
        match self {
            TextTest::Prefix(prefix) => text.starts_with(prefix.as_str()),
            TextTest::Suffix(suffix) => text.ends_with(suffix.as_str()),
            TextTest::PrefixFold(prefix) => fold(text).starts_with(prefix.as_str()),
            TextTest::SuffixFold(suffix) => fold(text).ends_with(suffix.as_str()),
            TextTest::FoldAny(texts) => texts.contains(&fold(text)),
            TextTest::WildcardAny(patterns) => patterns.iter().any(|p| p.matches(text)),
        }
    }
}

/// Case folding for the ignore-case tests: Unicode lowercase.
fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A numeric range; either end may be open.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Range {
    /// Lower bound and whether it is included.
    lower: Option<(f64, bool)>,
    /// Upper bound and whether it is included.
    upper: Option<(f64, bool)>,
}

impl Range {
    /// `[op, n]` or `[lower-op, n, upper-op, m]`, ops `>`, `>=`, `<`, `<=` and `=` (alone).
    pub(crate) fn parse(items: &[Value]) -> Result<Self, String> {
        if !matches!(items.len(), 2 | 4) {
            return Err(format!(
                "it takes one or two comparisons, each an operator and a number, such as \
                 [\">\", 0, \"<=\", 5]; found {} items",
                items.len()
            ));
        }
        let mut range = Range {
            lower: None,
            upper: None,
        };
        for pair in items.chunks_exact(2) {
            range.add(&pair[0], &pair[1], items.len() == 2)?;
        }
        if range.is_empty() {
            return Err("no number lies in that range".into());
        }
        Ok(range)
    }

    fn add(&mut self, operator: &Value, bound: &Value, alone: bool) -> Result<(), String> {
        let number = bound
            .as_f64()
            .filter(|_| bound.is_number())
            .ok_or_else(|| format!("{bound} is not a number"))?;
        let slot = match operator.as_str() {
            Some("=") if alone => {
                self.lower = Some((number, true));
                self.upper = Some((number, true));
                return Ok(());
            }
            Some("=") => return Err("`=` stands alone: [\"=\", n]".into()),
            Some(">") => (&mut self.lower, false),
            Some(">=") => (&mut self.lower, true),
            Some("<") => (&mut self.upper, false),
            Some("<=") => (&mut self.upper, true),
            _ => {
                return Err(format!(
                    "{operator} is not one of \"<\", \"<=\", \"=\", \">=\", \">\""
                ));
            }
        };
        if slot.0.is_some() {
            return Err(
                "two bounds on the same side: give one lower (> or >=) and one upper \
                        (< or <=)"
                    .into(),
            );
        }
        *slot.0 = Some((number, slot.1));
        Ok(())
    }

    fn is_empty(&self) -> bool {
        match (self.lower, self.upper) {
            (Some((low, low_in)), Some((high, high_in))) => {
                low > high || (low == high && !(low_in && high_in))
            }
            _ => false,
        }
    }

    fn contains(&self, number: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|(bound, inclusive)| number > bound || (inclusive && number == bound));
        let below = self
            .upper
            .is_none_or(|(bound, inclusive)| number < bound || (inclusive && number == bound));
        above && below
    }
}

/// An IPv4 or IPv6 address block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cidr {
    /// Network bits and prefix length.
    V4(u32, u8),
    /// Network bits and prefix length.
    V6(u128, u8),
}

impl Cidr {
    /// `address/length`, IPv4 (length up to 32) or IPv6 (up to 128) in any textual form.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (address, length) = text
            .split_once('/')
            .ok_or("it needs a prefix length, such as 10.0.0.0/24")?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IPv4 or IPv6 address"))?;
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let length: u8 = length
            .parse()
            .ok()
            .filter(|n| *n <= bits && length.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("prefix length {length:?} is not a number from 0 to {bits}"))?;
        Ok(match address {
            IpAddr::V4(v4) => Cidr::V4(u32::from(v4) & mask32(length), length),
            IpAddr::V6(v6) => Cidr::V6(u128::from(v6) & mask128(length), length),
        })
    }

    fn contains(&self, address: IpAddr) -> bool {
        match (self, address) {
            (Cidr::V4(network, length), IpAddr::V4(v4)) => {
                u32::from(v4) & mask32(*length) == *network
            }
            (Cidr::V6(network, length), IpAddr::V6(v6)) => {
                u128::from(v6) & mask128(*length) == *network
            }
            _ => false,
        }
    }
}

fn mask32(length: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0)
}

fn mask128(length: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0)
}

/// An EventBridge wildcard: `*` stands for any run of characters, `\*` for a star and `\\`
/// for a backslash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// The literal texts between the stars, in order; one more than the stars.
    pieces: Vec<String>,
}

impl Wildcard {
    /// Reads a wildcard; two stars in a row and other escapes are refused, as EventBridge
    /// does.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = vec![String::new()];
        let mut chars = text.chars();
        let mut after_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => push(&mut pieces, escaped),
                    Some(other) => {
                        return Err(format!(
                            "`\\{other}` is not an escape: only \\* and \\\\ are"
                        ));
                    }
                    None => return Err("it ends with a lone backslash".into()),
                },
                '*' if after_star => return Err("two stars in a row".into()),
                '*' => pieces.push(String::new()),
                other => push(&mut pieces, other),
            }
            after_star = c == '*';
        }
        Ok(Wildcard { pieces })
    }

    fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some((first, rest)) if !rest.is_empty() => (first, rest),
            _ => return self.pieces.first().is_some_and(|only| only == text),
        };
        let Some(mut left) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let (last, middle) = rest.split_last().unwrap_or((first, &[]));
        if left.len() < last.len() || !left.ends_with(last.as_str()) {
            return false;
        }
        left = &left[..left.len() - last.len()];
        for piece in middle {
            match left.find(piece.as_str()) {
                Some(at) => left = &left[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

fn push(pieces: &mut [String], c: char) {
    if let Some(last) = pieces.last_mut() {
        last.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_escapes() {
        let w = |t: &str| Wildcard::parse(t).expect("a wildcard");
        assert!(w("*/lib/*").matches("/usr/lib/x"));
        assert!(!w("*/lib/*").matches("/usr/bin/x"));
        assert!(w("a*").matches("a"));
        assert!(w("*a").matches("ba"));
        assert!(!w("ab*ba").matches("aba"), "pieces must not overlap");
        assert!(w("ab*ba").matches("abba"));
        assert!(w("a\\*b").matches("a*b"));
        assert!(!w("a\\*b").matches("axb"));
        assert!(w("a\\\\b").matches("a\\b"));
        assert!(w("exact").matches("exact"));
        assert!(!w("exact").matches("exactly"));
        assert!(w("*").matches(""));
        assert!(w("x*y*z").matches("x1y2z"));
        assert!(!w("x*y*z").matches("x1z2y"));
    }

    #[test]
    fn wildcards_refuse_double_stars_and_stray_escapes() {
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse("a\\b").is_err());
        assert!(Wildcard::parse("a\\").is_err());
        assert!(
            Wildcard::parse("\\**").is_ok(),
            "an escaped star then a star"
        );
    }

    #[test]
    fn masks_cover_zero_and_full_lengths() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask128(0), 0);
        assert_eq!(mask128(128), u128::MAX);
        assert_eq!(mask32(8), 0xff00_0000);
    }
}
