//! No input makes loading panic: arbitrary text, YAML-shaped noise and arbitrary bytes.

use aloft_core::source::{load_bytes, load_str};
use proptest::prelude::*;

/// Pieces of YAML and JSON syntax and of the workflow vocabulary, to build noise that gets
/// past the tokenizer more often than random characters do.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    ",",
    " ",
    "  ",
    "\n",
    "\t",
    "\"",
    "'",
    "#",
    "?",
    "|",
    ">",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!!int ",
    "!x ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "name",
    "tasks",
    "a",
    "b",
    "run",
    "pass",
    "command",
    "lambda",
    "depends_on",
    "for_each",
    "$.a.x",
    "pools",
    "pool",
    "retry",
    "multiplier",
    "max_attempts",
    "timeout",
    "10s",
    "0s",
    "0",
    "-1",
    "1.5",
    ".inf",
    ".nan",
    "1e400",
    "0x",
    "0o9",
    "~",
    "null",
    "true",
    "result",
    "\\u00e9",
    "\\",
    "é",
    "\u{feff}",
];

fn noise() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..80).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = load_str("any.yaml", &text);
    }

    #[test]
    fn printable_text_never_panics(text in "[ -~\t\n]{0,300}") {
        let _ = load_str("printable.yaml", &text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(text in noise()) {
        if let Err(diagnostics) = load_str("noise.yaml", &text) {
            prop_assert!(!diagnostics.0.is_empty());
            for diagnostic in &diagnostics.0 {
                prop_assert!(diagnostic.line >= 1 && diagnostic.column >= 1);
                prop_assert!(!diagnostic.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = load_bytes("any.yaml", &bytes);
    }
}

#[test]
fn control_characters_are_refused_at_their_position() {
    let text = "name: a\ntasks: {a: {run: {pass: {}}}}\n  \u{0}";
    let err = load_str("wf.yaml", text).expect_err("NUL is not YAML");
    assert_eq!(
        err.to_string(),
        "wf.yaml:3:3: character U+0000 is not allowed in a workflow file"
    );
    let text = "name: a\ntasks: {a: {run: {pass: {result: \"\u{9f}\"}}}}\n";
    let err = load_str("wf.yaml", text).expect_err("C1 control is not YAML");
    assert_eq!(
        err.to_string(),
        "wf.yaml:2:35: character U+009F is not allowed in a workflow file"
    );
    assert!(load_str("wf.yaml", "name: a\r\ntasks:\t{a: {run: {pass: {}}}}\r\n").is_ok());
}
