//! Events sent to the inbox start runs under `aloft serve`, in process on a paused tokio
//! clock: one run per matching workflow, keyed `event:<id>`, with the input its trigger
//! maps; an event sent twice is one run; an event matching nothing is handled all the
//! same.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::{Value, json};

use aloft_core::source::load_str;
use aloft_local::inbox::event_id;
use aloft_local::serve::{Daemon, Event, Scheduled};
use aloft_local::{Runner, TokioClock};

const NOW: &str = "2026-12-04T10:00:00Z";

fn ms(text: &str) -> u64 {
    let at: Timestamp = text.parse().expect("an instant");
    u64::try_from(at.as_millisecond()).expect("after 1970")
}

/// A workflow started by orders placed, with its run input built from the event.
fn orders(name: &str, extra_trigger: &str) -> String {
    format!(
        "name: {name}\n\
         events:\n\
         {extra_trigger}\
         \x20 - pattern: {{source: [shop.orders], detail-type: [Order Placed]}}\n\
         \x20   input: {{order: $.detail.order-id, via: {name}}}\n\
         tasks: {{t: {{run: {{pass: {{}}}}}}}}\n"
    )
}

fn served(yaml: &str) -> Scheduled {
    let definition = load_str("wf.yaml", yaml).unwrap_or_else(|p| panic!("bad workflow:\n{p}"));
    Scheduled::new(definition, None)
        .expect("valid")
        .expect("served for its events")
}

fn daemon(db: &Path, workflows: &[&str]) -> Daemon {
    let clock = Arc::new(TokioClock::starting_at(ms(NOW)));
    let runner = Runner::open(db, clock).expect("open the database");
    Daemon::new(runner, workflows.iter().map(|yaml| served(yaml)).collect())
}

fn order_placed(id: &str) -> Value {
    json!({
        "version": "0", "id": id, "source": "shop.orders", "detail-type": "Order Placed",
        "time": NOW, "detail": {"order-id": "o-42", "total": 12}
    })
}

/// Put an event into the inbox, as `aloft events send` does; whether it was stored.
fn send(daemon: &Daemon, event: &Value) -> bool {
    let id = event_id(event).expect("the event has an id");
    daemon.runner().db().put_event(id, event).expect("stored")
}

async fn serve_for(daemon: &mut Daemon, span: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    daemon
        .run(tokio::time::sleep(span), &mut |e| events.push(e.clone()))
        .await
        .expect("serve");
    assert!(daemon.driving().is_empty(), "pass tasks settle at once");
    events
}

/// Every run: (workflow, key, status, input), in creation order.
fn runs(db: &Path) -> Vec<(String, String, String, Value)> {
    let conn = Connection::open(db).expect("open");
    let mut select = conn
        .prepare("SELECT workflow, run_key, status, input FROM runs ORDER BY rowid")
        .expect("prepare");
    let rows = select
        .query_map([], |r| {
            let input: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&input).expect("json input"),
            ))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("read")
}

fn handled(daemon: &Daemon, id: &str) -> Option<bool> {
    daemon.runner().db().event_handled(id).expect("read")
}

#[tokio::test(start_paused = true)]
async fn a_matching_event_starts_one_run_with_the_mapped_input() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let other = "  - pattern: {source: [shop.returns]}\n    input: {wrong: trigger}\n";
    let mut daemon = daemon(&db, &[&orders("fulfil", other)]);
    assert!(send(&daemon, &order_placed("e-1")));

    let events = serve_for(&mut daemon, Duration::from_secs(5)).await;

    assert_eq!(
        runs(&db),
        [(
            "fulfil".to_owned(),
            "event:e-1".to_owned(),
            "succeeded".to_owned(),
            json!({"order": "o-42", "via": "fulfil"}),
        )]
    );
    assert_eq!(handled(&daemon, "e-1"), Some(true));
    let triggered = events
        .iter()
        .filter(|e| matches!(e, Event::Triggered { event_id, .. } if event_id == "e-1"))
        .count();
    assert_eq!(triggered, 1);
}

#[tokio::test(start_paused = true)]
async fn an_event_sent_twice_starts_one_run() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, &[&orders("fulfil", "")]);
    assert!(send(&daemon, &order_placed("e-2")));
    assert!(!send(&daemon, &order_placed("e-2")), "stored once");

    serve_for(&mut daemon, Duration::from_secs(5)).await;
    // Sent again after it was handled, and served again: still its one run.
    assert!(!send(&daemon, &order_placed("e-2")));
    serve_for(&mut daemon, Duration::from_secs(5)).await;

    let keys: Vec<String> = runs(&db).into_iter().map(|r| r.1).collect();
    assert_eq!(keys, ["event:e-2"]);
}

#[tokio::test(start_paused = true)]
async fn an_event_whose_handling_was_cut_short_starts_its_run_once() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, &[&orders("fulfil", "")]);
    send(&daemon, &order_placed("e-5"));
    serve_for(&mut daemon, Duration::from_secs(5)).await;

    // As if a crash had come between the run's start and the event's mark.
    let conn = Connection::open(&db).expect("open");
    conn.execute("UPDATE inbox SET handled_at = NULL", [])
        .expect("unmark");
    let events = serve_for(&mut daemon, Duration::from_secs(5)).await;

    let keys: Vec<String> = runs(&db).into_iter().map(|r| r.1).collect();
    assert_eq!(keys, ["event:e-5"]);
    assert_eq!(handled(&daemon, "e-5"), Some(true));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::AlreadyTriggered { event_id, .. } if event_id == "e-5"))
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_matching_nothing_starts_no_run_and_is_handled() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, &[&orders("fulfil", "")]);
    let refund = json!({"id": "e-3", "source": "shop.refunds", "detail-type": "Refund"});
    send(&daemon, &refund);

    let events = serve_for(&mut daemon, Duration::from_secs(5)).await;

    assert_eq!(runs(&db), []);
    assert_eq!(handled(&daemon, "e-3"), Some(true));
    assert!(events.contains(&Event::Unmatched {
        event_id: "e-3".into()
    }));
}

#[tokio::test(start_paused = true)]
async fn every_workflow_an_event_matches_gets_a_run() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let unrelated = "name: refunds\nevents:\n  - pattern: {source: [shop.refunds]}\n\
                     tasks: {t: {run: {pass: {}}}}\n";
    let mut daemon = daemon(
        &db,
        &[&orders("fulfil", ""), unrelated, &orders("bill", "")],
    );

    // Sent while serving: picked up within a poll.
    let store = daemon.runner().db().clone();
    let later = async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let event = order_placed("e-4");
        store.put_event("e-4", &event).expect("stored");
    };
    let (_, events) = tokio::join!(later, serve_for(&mut daemon, Duration::from_secs(10)));

    let mut got: Vec<(String, String, Value)> = runs(&db)
        .into_iter()
        .map(|(workflow, key, _, input)| (workflow, key, input))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            (
                "bill".to_owned(),
                "event:e-4".to_owned(),
                json!({"order": "o-42", "via": "bill"})
            ),
            (
                "fulfil".to_owned(),
                "event:e-4".to_owned(),
                json!({"order": "o-42", "via": "fulfil"})
            ),
        ]
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Error { .. })));
}
