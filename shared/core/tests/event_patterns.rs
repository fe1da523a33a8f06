//! EventBridge event patterns: every operator matching and not matching, every malformed
//! form refused with its place and value, input templates and run keys, and `validate`
//! reporting a bad pattern at its line and column.

use serde_json::{Value, json};

use aloft_core::events::{
    EventError, EventPattern, MAX_ALTERNATIVES, check_input, first_match, map_input, read_document,
    run_key,
};
use aloft_core::source::load_str;

fn matches(pattern: Value, event: Value) -> bool {
    let compiled = EventPattern::compile(&pattern)
        .unwrap_or_else(|e| panic!("{pattern} should compile: {e} at {}", e.path));
    compiled.matches(&event).expect("an event object")
}

/// The error for a pattern that must be refused: `(place in the pattern, message)`.
fn refused(pattern: Value) -> (String, String) {
    let error = EventPattern::compile(&pattern).expect_err("an invalid pattern");
    (error.path.to_string(), error.message)
}

/// An EventBridge event with this detail.
fn event(detail: Value) -> Value {
    json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Order Placed", "source": "shop.orders",
        "account": "123456789012", "time": "2026-12-04T09:41:57Z", "region": "eu-west-1",
        "resources": ["arn:aws:s3:::orders", "arn:aws:s3:::archive"],
        "detail": detail
    })
}

// Exact values ----------------------------------------------------------------------

#[test]
fn exact_text_matches_only_the_same_text() {
    let pattern = json!({"source": ["shop.orders", "shop.returns"]});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern, json!({"source": "shop.Orders"})));
    assert!(!matches(json!({"source": ["shop"]}), event(json!({}))));
}

#[test]
fn exact_numbers_compare_by_value_and_never_match_text() {
    let pattern = json!({"detail": {"count": [300]}});
    assert!(matches(pattern.clone(), event(json!({"count": 300}))));
    assert!(matches(pattern.clone(), event(json!({"count": 300.0}))));
    assert!(!matches(pattern.clone(), event(json!({"count": "300"}))));
    assert!(!matches(pattern, event(json!({"count": 301}))));
    assert!(!matches(
        json!({"detail": {"count": ["300"]}}),
        event(json!({"count": 300}))
    ));
}

#[test]
fn null_matches_null_but_not_a_missing_field_or_the_text_null() {
    let pattern = json!({"detail": {"coupon": [null]}});
    assert!(matches(pattern.clone(), event(json!({"coupon": null}))));
    assert!(!matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern, event(json!({"coupon": "null"}))));
}

#[test]
fn booleans_and_the_empty_text_match_exactly() {
    assert!(matches(
        json!({"detail": {"gift": [true]}}),
        event(json!({"gift": true}))
    ));
    assert!(!matches(
        json!({"detail": {"gift": [true]}}),
        event(json!({"gift": "true"}))
    ));
    assert!(matches(
        json!({"detail": {"note": [""]}}),
        event(json!({"note": ""}))
    ));
    assert!(!matches(
        json!({"detail": {"note": [""]}}),
        event(json!({"note": " "}))
    ));
}

#[test]
fn every_field_must_match() {
    let pattern = json!({"source": ["shop.orders"], "detail": {"store": ["eu-7"]}});
    assert!(matches(pattern.clone(), event(json!({"store": "eu-7"}))));
    assert!(!matches(pattern, event(json!({"store": "us-1"}))));
}

// Arrays in events --------------------------------------------------------------------

#[test]
fn an_array_in_the_event_matches_if_any_element_matches() {
    assert!(matches(
        json!({"resources": ["arn:aws:s3:::archive"]}),
        event(json!({}))
    ));
    assert!(!matches(
        json!({"resources": ["arn:aws:s3:::other"]}),
        event(json!({}))
    ));
    let items = json!({"items": [{"sku": "a-1", "qty": 1}, {"sku": "b-2", "qty": 7}]});
    assert!(matches(
        json!({"detail": {"items": {"sku": ["b-2"]}}}),
        event(items.clone())
    ));
    assert!(matches(
        json!({"detail": {"items": {"qty": [{"numeric": [">", 5]}]}}}),
        event(items.clone())
    ));
    assert!(!matches(
        json!({"detail": {"items": {"sku": ["c-3"]}}}),
        event(items)
    ));
}

#[test]
fn a_pattern_value_never_matches_an_object() {
    assert!(!matches(json!({"detail": ["x"]}), event(json!({"a": "x"}))));
    assert!(!matches(
        json!({"detail": [{"exists": true}]}),
        event(json!({"a": 1}))
    ));
}

// prefix, suffix, equals-ignore-case, wildcard -----------------------------------------

#[test]
fn prefix_matches_the_start_of_text_only() {
    let pattern = json!({"region": [{"prefix": "eu-"}]});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern, json!({"region": "us-east-1"})));
    assert!(!matches(
        json!({"n": [{"prefix": "12"}]}),
        json!({"n": 123})
    ));
}

#[test]
fn prefix_ignoring_case() {
    let pattern = json!({"source": [{"prefix": {"equals-ignore-case": "SHOP."}}]});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(matches(pattern.clone(), json!({"source": "Shop.Returns"})));
    assert!(!matches(pattern, json!({"source": "warehouse.shop."})));
}

#[test]
fn suffix_matches_the_end_of_text() {
    let pattern = json!({"detail": {"key": [{"suffix": ".csv"}]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"key": "eu-7/orders.csv"}))
    ));
    assert!(!matches(pattern, event(json!({"key": "eu-7/orders.CSV"}))));
}

#[test]
fn suffix_ignoring_case() {
    let pattern = json!({"detail": {"key": [{"suffix": {"equals-ignore-case": ".csv"}}]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"key": "eu-7/orders.CSV"}))
    ));
    assert!(!matches(
        pattern,
        event(json!({"key": "eu-7/orders.csv.gz"}))
    ));
}

#[test]
fn equals_ignore_case_matches_any_casing() {
    let pattern = json!({"detail-type": [{"equals-ignore-case": "order placed"}]});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern, json!({"detail-type": "Order Placed!"})));
}

#[test]
fn wildcard_matches_runs_of_characters_and_escaped_stars() {
    let pattern = json!({"detail": {"path": [{"wildcard": "*/lib/*.so"}]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"path": "/usr/lib/x.so"}))
    ));
    assert!(!matches(pattern, event(json!({"path": "/usr/bin/x.so"}))));
    let star = json!({"detail": {"path": [{"wildcard": "a\\*b"}]}});
    assert!(matches(star.clone(), event(json!({"path": "a*b"}))));
    assert!(!matches(star, event(json!({"path": "axb"}))));
}

// anything-but ------------------------------------------------------------------------------

#[test]
fn anything_but_a_value_or_a_list() {
    let one = json!({"detail": {"state": [{"anything-but": "cancelled"}]}});
    assert!(matches(one.clone(), event(json!({"state": "placed"}))));
    assert!(!matches(one.clone(), event(json!({"state": "cancelled"}))));
    assert!(
        !matches(one, event(json!({}))),
        "a missing field is no value"
    );
    let list = json!({"detail": {"state": [{"anything-but": ["cancelled", "refunded"]}]}});
    assert!(matches(list.clone(), event(json!({"state": "placed"}))));
    assert!(!matches(list, event(json!({"state": "refunded"}))));
    let numbers = json!({"detail": {"code": [{"anything-but": [400, 404]}]}});
    assert!(matches(numbers.clone(), event(json!({"code": 200}))));
    assert!(!matches(numbers, event(json!({"code": 404.0}))));
}

#[test]
fn anything_but_matches_an_array_with_one_other_element() {
    let pattern = json!({"detail": {"tags": [{"anything-but": "test"}]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"tags": ["test", "prod"]}))
    ));
    assert!(!matches(pattern, event(json!({"tags": ["test"]}))));
}

#[test]
fn anything_but_prefix() {
    let pattern = json!({"region": [{"anything-but": {"prefix": "us-"}}]});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern.clone(), json!({"region": "us-east-1"})));
    assert!(
        !matches(pattern, json!({"source": "x"})),
        "a missing field is no value"
    );
}

#[test]
fn anything_but_suffix() {
    let pattern = json!({"detail": {"key": [{"anything-but": {"suffix": ".png"}}]}});
    assert!(matches(pattern.clone(), event(json!({"key": "a.csv"}))));
    assert!(!matches(pattern, event(json!({"key": "a.png"}))));
}

#[test]
fn anything_but_ignoring_case_takes_a_value_or_a_list() {
    let one = json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": "STOPPED"}}]}});
    assert!(matches(one.clone(), event(json!({"state": "running"}))));
    assert!(!matches(one, event(json!({"state": "Stopped"}))));
    let list = json!({"detail": {"state":
        [{"anything-but": {"equals-ignore-case": ["stopped", "overloaded"]}}]}});
    assert!(!matches(
        list.clone(),
        event(json!({"state": "OverLoaded"}))
    ));
    assert!(matches(list, event(json!({"state": "idle"}))));
}

#[test]
fn anything_but_wildcard_takes_a_value_or_a_list() {
    let one = json!({"detail": {"path": [{"anything-but": {"wildcard": "*/lib/*"}}]}});
    assert!(matches(one.clone(), event(json!({"path": "/usr/bin/x"}))));
    assert!(!matches(one, event(json!({"path": "/usr/lib/x"}))));
    let list = json!({"detail": {"path":
        [{"anything-but": {"wildcard": ["*/lib/*", "*/tmp/*"]}}]}});
    assert!(!matches(list.clone(), event(json!({"path": "/var/tmp/x"}))));
    assert!(matches(list, event(json!({"path": "/srv/x"}))));
}

#[test]
fn anything_but_an_operator_passes_values_that_are_not_text() {
    let pattern = json!({"detail": {"code": [{"anything-but": {"prefix": "4"}}]}});
    assert!(matches(pattern.clone(), event(json!({"code": 404}))));
    assert!(!matches(pattern, event(json!({"code": "404"}))));
}

// numeric ----------------------------------------------------------------------------

#[test]
fn numeric_one_sided_comparisons() {
    let amount = |n: Value| event(json!({"amount": n}));
    let above = json!({"detail": {"amount": [{"numeric": [">", 100]}]}});
    assert!(matches(above.clone(), amount(json!(100.5))));
    assert!(!matches(above, amount(json!(100))));
    let at_least = json!({"detail": {"amount": [{"numeric": [">=", 100]}]}});
    assert!(matches(at_least, amount(json!(100))));
    let below = json!({"detail": {"amount": [{"numeric": ["<", -1]}]}});
    assert!(matches(below.clone(), amount(json!(-2))));
    assert!(!matches(below, amount(json!(-0.5))));
    let equal = json!({"detail": {"amount": [{"numeric": ["=", 3.0e2]}]}});
    assert!(matches(equal.clone(), amount(json!(300))));
    assert!(!matches(equal, amount(json!(300.01))));
}

#[test]
fn numeric_ranges_keep_exclusive_ends_exclusive() {
    let amount = |n: Value| event(json!({"amount": n}));
    let range = json!({"detail": {"amount": [{"numeric": [">", 0, "<=", 5]}]}});
    assert!(!matches(range.clone(), amount(json!(0))));
    assert!(matches(range.clone(), amount(json!(0.000001))));
    assert!(matches(range.clone(), amount(json!(5))));
    assert!(!matches(range.clone(), amount(json!(5.000001))));
    let reversed = json!({"detail": {"amount": [{"numeric": ["<", 5, ">=", 0]}]}});
    assert!(matches(reversed.clone(), amount(json!(0))));
    assert!(!matches(reversed, amount(json!(5))));
}

#[test]
fn numeric_compares_numbers_only() {
    let pattern = json!({"detail": {"amount": [{"numeric": [">", 0]}]}});
    assert!(!matches(pattern.clone(), event(json!({"amount": "5"}))));
    assert!(!matches(pattern.clone(), event(json!({"amount": true}))));
    assert!(!matches(pattern.clone(), event(json!({"amount": null}))));
    assert!(matches(pattern, event(json!({"amount": [0, "9", 7]}))));
}

// exists ----------------------------------------------------------------------------

#[test]
fn exists_true_needs_a_value() {
    let pattern = json!({"detail": {"coupon": [{"exists": true}]}});
    assert!(matches(pattern.clone(), event(json!({"coupon": "X"}))));
    assert!(matches(pattern.clone(), event(json!({"coupon": null}))));
    assert!(!matches(pattern.clone(), event(json!({}))));
    assert!(!matches(pattern.clone(), event(json!({"coupon": []}))));
    assert!(!matches(pattern, event(json!({"coupon": {"code": "X"}}))));
}

#[test]
fn exists_false_matches_a_missing_field() {
    let pattern = json!({"detail": {"coupon": [{"exists": false}]}});
    assert!(matches(pattern.clone(), event(json!({}))));
    assert!(matches(pattern.clone(), event(json!({"coupon": []}))));
    assert!(!matches(pattern.clone(), event(json!({"coupon": null}))));
    assert!(!matches(pattern, event(json!({"coupon": "X"}))));
}

#[test]
fn exists_false_works_beside_another_and_in_a_list() {
    let two = json!({"detail": {"a": [{"exists": false}], "b": [{"exists": false}]}});
    assert!(matches(two.clone(), event(json!({"c": 1}))));
    assert!(!matches(two, event(json!({"b": 1}))));
    let either = json!({"detail": {"a": [{"exists": false}, "x"]}});
    assert!(matches(either.clone(), event(json!({}))));
    assert!(matches(either.clone(), event(json!({"a": "x"}))));
    assert!(!matches(either, event(json!({"a": "y"}))));
    let always = json!({"detail": {"a": [{"exists": true}, {"exists": false}]}});
    assert!(matches(always.clone(), event(json!({}))));
    assert!(matches(always, event(json!({"a": 1}))));
}

#[test]
fn exists_true_works_beside_other_fields() {
    let pattern = json!({"detail": {"a": [{"exists": true}], "b": [{"exists": true}], "c": ["x"]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"a": 1, "b": null, "c": "x"}))
    ));
    assert!(!matches(pattern.clone(), event(json!({"a": 1, "c": "x"}))));
    assert!(!matches(pattern, event(json!({"a": 1, "b": 2, "c": "y"}))));
}

#[test]
fn a_field_may_mix_exact_values_with_operators_aloft_runs() {
    let pattern =
        json!({"detail": {"amount": [5, {"numeric": [">", 100]}, {"cidr": "10.0.0.0/8"}]}});
    assert!(matches(pattern.clone(), event(json!({"amount": 5}))));
    assert!(matches(pattern.clone(), event(json!({"amount": 101}))));
    assert!(matches(
        pattern.clone(),
        event(json!({"amount": "10.1.1.1"}))
    ));
    assert!(!matches(pattern, event(json!({"amount": 50}))));
}

// cidr ------------------------------------------------------------------------------

#[test]
fn cidr_matches_ipv4_addresses_in_the_block() {
    let pattern = json!({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}});
    assert!(matches(pattern.clone(), event(json!({"ip": "10.0.0.255"}))));
    assert!(!matches(pattern.clone(), event(json!({"ip": "10.0.1.0"}))));
    assert!(!matches(
        pattern.clone(),
        event(json!({"ip": "not an address"}))
    ));
    assert!(!matches(pattern, event(json!({"ip": "::ffff:10.0.0.1"}))));
    let host_bits = json!({"detail": {"ip": [{"cidr": "10.1.2.3/8"}]}});
    assert!(matches(host_bits, event(json!({"ip": "10.200.0.1"}))));
}

#[test]
fn cidr_matches_ipv6_addresses_in_any_textual_form() {
    let pattern = json!({"detail": {"ip": [{"cidr": "2001:db8::/32"}]}});
    assert!(matches(
        pattern.clone(),
        event(json!({"ip": "2001:db8::1"}))
    ));
    assert!(matches(
        pattern.clone(),
        event(json!({"ip": "2001:DB8:0:0:0:0:0:1"}))
    ));
    assert!(!matches(
        pattern.clone(),
        event(json!({"ip": "2001:db9::1"}))
    ));
    assert!(!matches(pattern, event(json!({"ip": "10.0.0.1"}))));
}

// $or ----------------------------------------------------------------------------------

#[test]
fn or_matches_when_any_alternative_does() {
    let pattern = json!({
        "source": ["shop.orders"],
        "$or": [
            {"detail": {"amount": [{"numeric": [">", 1000]}]}},
            {"detail": {"priority": [true]}}
        ]
    });
    assert!(matches(pattern.clone(), event(json!({"amount": 5000}))));
    assert!(matches(
        pattern.clone(),
        event(json!({"amount": 5, "priority": true}))
    ));
    assert!(!matches(pattern.clone(), event(json!({"amount": 5}))));
    assert!(!matches(
        pattern,
        json!({"source": "x", "detail": {"amount": 5000}})
    ));
}

#[test]
fn or_nests_inside_fields_and_inside_itself() {
    let pattern = json!({"detail": {"$or": [
        {"state": ["placed"]},
        {"$or": [{"state": ["paid"]}, {"total": [{"numeric": ["=", 0]}]}]}
    ]}});
    assert!(matches(pattern.clone(), event(json!({"state": "paid"}))));
    assert!(matches(
        pattern.clone(),
        event(json!({"state": "x", "total": 0}))
    ));
    assert!(!matches(pattern, event(json!({"state": "x", "total": 1}))));
}

#[test]
fn or_may_test_a_field_tested_outside_it_too() {
    let pattern = json!({
        "detail": {"state": [{"prefix": "p"}]},
        "$or": [{"detail": {"state": ["placed"]}}, {"detail": {"state": ["paid"]}}]
    });
    assert!(matches(pattern.clone(), event(json!({"state": "paid"}))));
    assert!(!matches(pattern, event(json!({"state": "pending"}))));
}

// Field names -------------------------------------------------------------------------------

#[test]
fn field_names_with_dots_line_feeds_and_percent_signs_match() {
    assert!(matches(json!({"a.b": ["x"]}), json!({"a.b": "x"})));
    assert!(!matches(json!({"a.b": ["x"]}), json!({"a": {"b": "x"}})));
    assert!(!matches(json!({"a": {"b": ["x"]}}), json!({"a.b": "x"})));
    assert!(matches(json!({"a\nb": ["x"]}), json!({"a\nb": "x"})));
    assert!(!matches(json!({"a%2Eb": ["x"]}), json!({"a.b": "x"})));
    assert!(matches(json!({"a\"b": ["x"]}), json!({"a\"b": "x"})));
}

// Refused patterns ---------------------------------------------------------------------

#[test]
fn a_pattern_must_be_a_non_empty_object() {
    let (at, message) = refused(json!({}));
    assert_eq!(at, ".");
    assert!(message.contains("at least one field"), "{message}");
    let (_, message) = refused(json!(["source"]));
    assert!(message.contains("not [\"source\"]"), "{message}");
}

#[test]
fn a_field_value_that_is_not_a_list_is_refused_naming_it() {
    let (at, message) = refused(json!({"detail": {"state": "placed"}}));
    assert_eq!(at, "detail.state");
    assert_eq!(
        message,
        "field `detail.state` must be a list of values to match, or an object of nested \
         fields, not \"placed\": write [\"placed\"]"
    );
    let (at, _) = refused(json!({"source": 5}));
    assert_eq!(at, "source");
}

#[test]
fn empty_lists_and_objects_are_refused() {
    let (at, message) = refused(json!({"source": []}));
    assert_eq!(at, "source");
    assert!(message.contains("empty list"), "{message}");
    let (at, message) = refused(json!({"detail": {}}));
    assert_eq!(at, "detail");
    assert!(message.contains("empty object"), "{message}");
}

#[test]
fn a_list_inside_a_list_is_refused() {
    let (at, message) = refused(json!({"source": [["a"]]}));
    assert_eq!(at, "source[0]");
    assert!(message.contains("not the list [\"a\"]"), "{message}");
}

#[test]
fn operator_objects_have_one_known_key() {
    let (at, message) = refused(json!({"a": [{"prefix": "x", "suffix": "y"}]}));
    assert_eq!(at, "a[0]");
    assert!(message.contains("exactly one key") && message.contains("prefix, suffix"));
    let (at, message) = refused(json!({"a": [{}]}));
    assert_eq!(at, "a[0]");
    assert!(message.contains("found 0"), "{message}");
    let (at, message) = refused(json!({"a": [{"contains": "x"}]}));
    assert_eq!(at, "a[0].contains");
    assert!(message.contains("unknown operator `contains`"), "{message}");
}

#[test]
fn malformed_prefix_and_suffix_are_refused() {
    let (at, message) = refused(json!({"a": [{"prefix": 5}]}));
    assert_eq!(at, "a[0].prefix");
    assert_eq!(
        message,
        "prefix in `a` takes text, or {\"equals-ignore-case\": text} to ignore case, not 5"
    );
    let (_, message) = refused(json!({"a": [{"suffix": {"equals-ignore-case": 1}}]}));
    assert!(message.starts_with("suffix in `a` takes text"), "{message}");
    let (_, message) = refused(json!({"a": [{"prefix": {"ignore-case": "x"}}]}));
    assert!(message.contains("{\"ignore-case\":\"x\"}"), "{message}");
}

#[test]
fn malformed_equals_ignore_case_is_refused() {
    let (at, message) = refused(json!({"a": [{"equals-ignore-case": ["x"]}]}));
    assert_eq!(at, "a[0].equals-ignore-case");
    assert_eq!(message, "equals-ignore-case in `a` takes text, not [\"x\"]");
}

#[test]
fn malformed_wildcards_are_refused() {
    let (at, message) = refused(json!({"a": [{"wildcard": "x**y"}]}));
    assert_eq!(at, "a[0].wildcard");
    assert_eq!(
        message,
        "wildcard \"x**y\" in `a` is invalid: two stars in a row"
    );
    let (_, message) = refused(json!({"a": [{"wildcard": "x\\y"}]}));
    assert!(message.contains("not an escape"), "{message}");
    let (_, message) = refused(json!({"a": [{"wildcard": 3}]}));
    assert_eq!(message, "wildcard in `a` takes text, not 3");
}

#[test]
fn malformed_anything_but_is_refused() {
    let cases = [
        (
            json!({"anything-but": []}),
            "a[0].anything-but",
            "empty list",
        ),
        (
            json!({"anything-but": ["x", 1]}),
            "a[0].anything-but",
            "list of texts or a list of numbers",
        ),
        (
            json!({"anything-but": true}),
            "a[0].anything-but",
            "not true",
        ),
        (
            json!({"anything-but": null}),
            "a[0].anything-but",
            "not null",
        ),
        (
            json!({"anything-but": {"prefix": ["x"]}}),
            "a[0].anything-but.prefix",
            "takes text",
        ),
        (
            json!({"anything-but": {"suffix": 1}}),
            "a[0].anything-but.suffix",
            "takes text",
        ),
        (
            json!({"anything-but": {"equals-ignore-case": []}}),
            "a[0].anything-but.equals-ignore-case",
            "non-empty list",
        ),
        (
            json!({"anything-but": {"wildcard": "a**"}}),
            "a[0].anything-but.wildcard",
            "two stars",
        ),
        (
            json!({"anything-but": {"numeric": [">", 1]}}),
            "a[0].anything-but.numeric",
            "cannot hold `numeric`",
        ),
        (
            json!({"anything-but": {"prefix": "a", "suffix": "b"}}),
            "a[0].anything-but",
            "exactly one operator",
        ),
    ];
    for (operator, place, words) in cases {
        let (at, message) = refused(json!({"a": [operator]}));
        assert_eq!(at, place, "{operator}");
        assert!(message.contains(words), "{operator}: {message}");
    }
}

#[test]
fn malformed_numeric_comparisons_are_refused() {
    let cases = [
        (json!(">"), "takes a list"),
        (json!([">"]), "found 1 items"),
        (json!([">", "5"]), "\"5\" is not a number"),
        (json!(["~", 5]), "\"~\" is not one of"),
        (json!([">", 1, ">=", 2]), "two bounds on the same side"),
        (json!(["=", 1, "<", 2]), "`=` stands alone"),
        (json!([">", 5, "<", 5]), "no number lies in that range"),
        (json!([">=", 6, "<=", 5]), "no number lies in that range"),
        (json!([">", 1, "<", 2, "<", 3]), "found 6 items"),
    ];
    for (argument, words) in cases {
        let (at, message) = refused(json!({"a": [{"numeric": argument}]}));
        assert_eq!(at, "a[0].numeric", "{argument}");
        assert!(message.contains(words), "{argument}: {message}");
    }
}

#[test]
fn malformed_exists_is_refused() {
    let (at, message) = refused(json!({"a": [{"exists": "true"}]}));
    assert_eq!(at, "a[0].exists");
    assert_eq!(message, "exists in `a` takes true or false, not \"true\"");
}

#[test]
fn malformed_cidr_blocks_are_refused() {
    let cases = [
        (json!("10.0.0.0"), "needs a prefix length"),
        (
            json!("10.0.0/8"),
            "\"10.0.0\" is not an IPv4 or IPv6 address",
        ),
        (
            json!("10.0.0.0/33"),
            "prefix length \"33\" is not a number from 0 to 32",
        ),
        (json!("2001:db8::/129"), "from 0 to 128"),
        (json!("10.0.0.0/+8"), "prefix length \"+8\""),
        (json!(24), "takes text such as"),
    ];
    for (argument, words) in cases {
        let (at, message) = refused(json!({"a": [{"cidr": argument}]}));
        assert_eq!(at, "a[0].cidr", "{argument}");
        assert!(message.contains(words), "{argument}: {message}");
    }
}

#[test]
fn malformed_or_is_refused() {
    let (at, message) = refused(json!({"$or": [{"a": [1]}]}));
    assert_eq!(at, "$or");
    assert!(message.contains("at least two"), "{message}");
    let (at, message) = refused(json!({"$or": [{"a": [1]}, {}]}));
    assert_eq!(at, "$or[1]");
    assert!(message.contains("non-empty pattern object"), "{message}");
    let (at, _) = refused(json!({"$or": [{"a": [1]}, {"b": "x"}]}));
    assert_eq!(at, "$or[1].b");
    let (at, _) = refused(json!({"$or": {"a": [1]}}));
    assert_eq!(at, "$or");
}

#[test]
fn a_pattern_with_too_many_alternatives_is_refused() {
    // Nine fields of two alternatives each: 512 alternatives.
    let fields: serde_json::Map<String, Value> = (0..9)
        .map(|i| (format!("f{i}"), json!({"$or": [{"a": [1]}, {"b": [2]}]})))
        .collect();
    let error = EventPattern::compile(&Value::Object(fields.clone())).expect_err("too many");
    assert!(
        error
            .message
            .contains(&format!("more than {MAX_ALTERNATIVES} alternatives")),
        "{error}"
    );
    // Eight are 256: allowed.
    let eight: serde_json::Map<String, Value> = fields.into_iter().take(8).collect();
    assert!(EventPattern::compile(&Value::Object(eight)).is_ok());
}

// Events ------------------------------------------------------------------------------

#[test]
fn an_event_must_be_an_object() {
    let pattern = EventPattern::compile(&json!({"a": [1]})).expect("valid");
    assert_eq!(
        pattern.matches(&json!([1])),
        Err(EventError::NotAnObject("[1]".into()))
    );
}

#[test]
fn the_first_matching_trigger_is_chosen() {
    let definition = load_str(
        "wf.yaml",
        "name: orders\nevents:\n  - pattern: {source: [shop.returns]}\n  \
         - pattern: {source: [shop.orders]}\n    input: {order: $.detail.order}\n  \
         - pattern: {source: [{prefix: shop.}]}\ntasks:\n  a: {run: {pass: {}}}\n",
    )
    .expect("a valid workflow");
    let matched = first_match(&definition.events, &event(json!({"order": 7})));
    let (index, trigger) = matched.expect("compiles").expect("a match");
    assert_eq!(index, 1);
    assert_eq!(
        map_input(trigger.input.as_ref(), &event(json!({"order": 7}))),
        json!({"order": 7})
    );
    let none = first_match(&definition.events, &json!({"source": "other"}));
    assert_eq!(none, Ok(None));
}

// Input templates and run keys --------------------------------------------------------------

#[test]
fn an_input_template_takes_paths_from_the_event_and_the_rest_as_written() {
    let template = json!({
        "order": "$.detail.order.id",
        "store": "$.detail.store",
        "missing": "$.detail.nowhere.deeper",
        "through_array": "$.resources.0",
        "source": "$.source",
        "fixed": {"full": false, "note": "$ not a path", "list": ["$.id", 3]},
        "dollar": "$"
    });
    let event = event(json!({"order": {"id": "o-1", "total": 5}, "store": "eu-7"}));
    assert_eq!(
        map_input(Some(&template), &event),
        json!({
            "order": "o-1",
            "store": "eu-7",
            "missing": null,
            "through_array": null,
            "source": "shop.orders",
            "fixed": {"full": false, "note": "$ not a path",
                      "list": ["7bf73129-1428-4cd3-a780-95db273d1602", 3]},
            "dollar": "$"
        })
    );
    assert!(check_input(&template).is_empty());
}

#[test]
fn without_a_template_the_event_is_the_input() {
    let event = event(json!({"order": 1}));
    assert_eq!(map_input(None, &event), event);
}

#[test]
fn malformed_paths_in_a_template_are_refused_at_their_place() {
    let template = json!({"a": "$.detail..id", "b": ["ok", "$.x y"], "c": "$."});
    let problems: Vec<(String, String)> = check_input(&template)
        .into_iter()
        .map(|p| (p.path.to_string(), p.message))
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0].0, "a");
    assert!(
        problems[0]
            .1
            .starts_with("input value \"$.detail..id\" is not a path")
    );
    assert_eq!(problems[1].0, "b[1]");
    assert_eq!(problems[2].0, "c");
}

#[test]
fn the_run_key_is_the_event_id() {
    assert_eq!(
        run_key(&event(json!({}))).as_deref(),
        Ok("event:7bf73129-1428-4cd3-a780-95db273d1602")
    );
    assert_eq!(run_key(&json!({"source": "x"})), Err(EventError::NoId));
    assert_eq!(run_key(&json!({"id": 5})), Err(EventError::NoId));
    assert_eq!(run_key(&json!({"id": ""})), Err(EventError::NoId));
    assert!(EventError::NoId.to_string().contains("event:<id>"));
}

// Documents ---------------------------------------------------------------------------------

#[test]
fn patterns_are_read_from_json_or_yaml() {
    let yaml =
        "source: [shop.orders]\ndetail:\n  amount: [{numeric: ['>', 10]}]\n  gift: [true, null]\n";
    assert_eq!(
        read_document(yaml),
        Ok(json!({"source": ["shop.orders"],
                  "detail": {"amount": [{"numeric": [">", 10]}], "gift": [true, null]}}))
    );
    assert_eq!(read_document("{\"a\": [1.5]}"), Ok(json!({"a": [1.5]})));
    assert!(read_document("a: [1\n").is_err());
    assert!(read_document("").is_err());
    assert!(
        read_document("a: 1\n---\nb: 2\n")
            .expect_err("two")
            .contains("2 YAML documents")
    );
    assert!(
        read_document("1: x\n")
            .expect_err("a number key")
            .contains("not text")
    );
    assert!(
        read_document("a: .inf\n")
            .expect_err("infinite")
            .contains("finite")
    );
}

// Validation ----------------------------------------------------------------------------------

fn workflow(events: &str) -> String {
    format!("name: orders\nevents:\n{events}tasks:\n  a: {{run: {{pass: {{}}}}}}\n")
}

#[test]
fn validate_reports_a_bad_pattern_at_its_value() {
    let text = workflow(
        "  - pattern:\n      source: [shop.orders]\n      detail:\n        amount: [{numeric: ['>', 'ten']}]\n",
    );
    let problems = load_str("wf.yaml", &text).expect_err("an invalid pattern");
    let shown = problems.to_string();
    assert_eq!(
        shown,
        "wf.yaml:6:28: numeric [\">\",\"ten\"] in `detail.amount` is not a comparison: \
         \"ten\" is not a number"
    );
}

#[test]
fn validate_reports_a_field_that_is_not_a_list() {
    let text = workflow("  - pattern: {source: shop.orders}\n");
    let problems = load_str("wf.yaml", &text).expect_err("an invalid pattern");
    assert_eq!(problems.0.len(), 1, "{problems}");
    let problem = &problems.0[0];
    assert_eq!((problem.line, problem.column), (3, 23));
    assert!(problem.message.contains("not \"shop.orders\""), "{problem}");
}

#[test]
fn validate_reports_an_empty_pattern_and_a_bad_template_path() {
    let text =
        workflow("  - pattern: {}\n  - pattern: {source: [a]}\n    input: {id: $.detail..id}\n");
    let problems = load_str("wf.yaml", &text).expect_err("two problems");
    let places: Vec<(usize, usize)> = problems.0.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(places, vec![(3, 14), (5, 17)], "{problems}");
    assert!(problems.0[0].message.contains("at least one field"));
    assert!(problems.0[1].message.contains("\"$.detail..id\""));
}

#[test]
fn validate_accepts_every_operator() {
    let text = workflow(
        "  - pattern:\n      source: [shop.orders, {prefix: shop.}, {suffix: .orders}]\n      \
         detail-type: [{equals-ignore-case: order placed}, {wildcard: 'Order *'}]\n      \
         region: [{anything-but: [us-east-1]}, {anything-but: {prefix: cn-}}]\n      \
         detail:\n        amount: [{numeric: ['>', 0, '<=', 1000]}, 5, null]\n        \
         coupon: [{exists: false}]\n        ip: [{cidr: 10.0.0.0/8}, {cidr: '2001:db8::/32'}]\n        \
         $or:\n          - gift: [true]\n          - note: [{exists: true}]\n    \
         input: {order: $.detail.id, fixed: 1}\n",
    );
    let definition = load_str("wf.yaml", &text).expect("valid");
    assert_eq!(definition.events.len(), 1);
}
