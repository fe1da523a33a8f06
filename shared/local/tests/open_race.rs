//! Opening one database from many processes at once (a fresh file, or one whose last
//! writer was killed) never fails with "database is locked".

use std::sync::{Arc, Barrier};

use aloft_local::{ManualClock, Sqlite};

#[test]
fn many_simultaneous_opens_of_a_fresh_database_all_succeed() {
    for round in 0..30 {
        let dir = tempfile::tempdir().expect("temp folder");
        let path = dir.path().join("aloft.db");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Sqlite::open(&path, Arc::new(ManualClock::at(0))).map(|_| ())
                })
            })
            .collect();
        for thread in threads {
            let opened = thread.join().expect("thread");
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}
