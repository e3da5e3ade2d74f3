//! The scheduler on an injected clock: whole weeks and both clock changes in milliseconds,
//! no sleeping.

use std::sync::Mutex;

use chrono::{DateTime, TimeZone as _, Utc};
use earlystart::schedule::{BoxFuture, Clock, Fired, Runner, Schedule, serve};
use tokio::sync::watch;

/// A clock that jumps to whatever time is slept until; a run takes `run_minutes`.
struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    fn sleep_until(&self, when: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let mut now = self.now.lock().unwrap();
        if when > *now {
            *now = when;
        }
        Box::pin(async {})
    }
}

/// Records runs and advances the clock by how long each run takes.
struct FakeRunner<'a> {
    clock: &'a ManualClock,
    run_minutes: i64,
    ran: Mutex<Vec<String>>,
}

impl Runner for FakeRunner<'_> {
    fn run<'a>(&'a self, pipeline: &'a str) -> BoxFuture<'a, anyhow::Result<i32>> {
        Box::pin(async move {
            self.ran.lock().unwrap().push(pipeline.to_string());
            *self.clock.now.lock().unwrap() += chrono::Duration::minutes(self.run_minutes);
            Ok(0)
        })
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

async fn fire(
    schedules: &[Schedule],
    start: DateTime<Utc>,
    runs: usize,
    minutes: i64,
) -> Vec<Fired> {
    let clock = ManualClock {
        now: Mutex::new(start),
    };
    let runner = FakeRunner {
        clock: &clock,
        run_minutes: minutes,
        ran: Mutex::new(Vec::new()),
    };
    let (_tx, rx) = watch::channel(false);
    serve(schedules, &clock, &runner, rx, Some(runs))
        .await
        .unwrap()
}

fn dues(fired: &[Fired]) -> Vec<DateTime<Utc>> {
    fired.iter().map(|f| f.due).collect()
}

#[tokio::test]
async fn two_in_the_morning_london_time_across_the_spring_change() {
    let nightly = Schedule::new("nightly", "0 2 * * *", chrono_tz::Europe::London).unwrap();
    // Clocks go forward at 01:00 UTC on Sunday 29 March 2026.
    let fired = fire(&[nightly], utc(2026, 3, 27, 12, 0), 4, 20).await;
    assert_eq!(
        dues(&fired),
        vec![
            utc(2026, 3, 28, 2, 0), // GMT
            utc(2026, 3, 29, 1, 0), // 02:00 BST
            utc(2026, 3, 30, 1, 0),
            utc(2026, 3, 31, 1, 0),
        ]
    );
}

#[tokio::test]
async fn times_inside_the_gap_and_the_overlap_run_once() {
    let early = Schedule::new("nightly", "30 1 * * *", chrono_tz::Europe::London).unwrap();
    // 01:30 does not exist on 29 March 2026: it runs at the first time after the gap.
    let spring = fire(std::slice::from_ref(&early), utc(2026, 3, 28, 12, 0), 2, 5).await;
    assert_eq!(
        dues(&spring),
        vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    );
    // 01:30 happens twice on 25 October 2026 (BST then GMT): it runs once, the first time.
    let autumn = fire(&[early], utc(2026, 10, 24, 12, 0), 2, 5).await;
    assert_eq!(
        dues(&autumn),
        vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    );
}

#[tokio::test]
async fn an_overrunning_run_does_not_queue_the_slots_it_missed() {
    // Hourly, but each run takes 3 hours: the next run starts at once after, not 3 times.
    let hourly = Schedule::new("hourly", "0 * * * *", chrono_tz::Europe::London).unwrap();
    let fired = fire(&[hourly], utc(2026, 1, 5, 9, 30), 3, 180).await;
    assert_eq!(
        dues(&fired),
        vec![
            utc(2026, 1, 5, 10, 0),
            utc(2026, 1, 5, 14, 0),
            utc(2026, 1, 5, 18, 0)
        ]
    );
    assert_eq!(fired[1].started, utc(2026, 1, 5, 14, 0));
}

#[tokio::test]
async fn several_pipelines_interleave_and_shutdown_stops_the_loop() {
    let a = Schedule::new("nightly", "0 2 * * *", chrono_tz::Europe::London).unwrap();
    let b = Schedule::new("weekly", "0 6 * * 1", chrono_tz::Europe::London).unwrap();
    let fired = fire(&[a.clone(), b], utc(2026, 1, 3, 12, 0), 4, 10).await;
    let names: Vec<_> = fired.iter().map(|f| f.pipeline.as_str()).collect();
    // Sunday 4th 02:00, Monday 5th 02:00, Monday 5th 06:00, Tuesday 6th 02:00.
    assert_eq!(names, ["nightly", "nightly", "weekly", "nightly"]);

    // Shutdown while waiting for the next slot: serve returns without running anything.
    let clock = earlystart::schedule::SystemClock;
    let runner = FakeRunner {
        clock: &ManualClock {
            now: Mutex::new(Utc::now()),
        },
        run_minutes: 0,
        ran: Mutex::new(Vec::new()),
    };
    let (tx, rx) = watch::channel(false);
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send(true).unwrap();
    };
    let schedules = [a];
    let (served, ()) = tokio::join!(serve(&schedules, &clock, &runner, rx, None), stop);
    assert!(served.unwrap().is_empty());
    assert!(runner.ran.lock().unwrap().is_empty());
}

#[test]
fn the_shipped_nightly_schedule_loads() {
    let all = earlystart::schedule::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let nightly = all.iter().find(|s| s.pipeline == "nightly").unwrap();
    assert_eq!(nightly.expr, "0 2 * * *");
    assert_eq!(nightly.tz, chrono_tz::Europe::London);
}
