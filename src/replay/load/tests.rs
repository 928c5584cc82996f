//! Unit tests of `load.rs`.

use super::*;
use crate::exchange::{Request, Response};

fn exchange(start_ms: i64, end_ms: Option<i64>) -> Exchange {
    let ms = |t: i64| t * 1_000_000;
    Exchange {
        client: "127.0.0.1:1".parse().unwrap(),
        server: "127.0.0.1:2".parse().unwrap(),
        request: Request {
            ts: ms(start_ms),
            method: "GET".into(),
            uri: "/".into(),
            version: "HTTP/1.1".into(),
            payload: Default::default(),
        },
        response: end_ms.map(|e| Response {
            ts: ms(e),
            status: 200,
            reason: "OK".into(),
            version: "HTTP/1.1".into(),
            payload: Default::default(),
            malformed: None,
        }),
        gap: false,
        http2: None,
    }
}

#[test]
fn recorded_in_flight_counts_the_requests_open_at_each_start() {
    let mut load = RecordedLoad::ordered();
    // Sequential: one at a time, even back to back.
    assert_eq!(load.in_flight_at(&exchange(0, Some(10))), 1);
    assert_eq!(load.in_flight_at(&exchange(10, Some(20))), 1);
    // Three overlapping, then one after the first two ended.
    assert_eq!(load.in_flight_at(&exchange(30, Some(60))), 1);
    assert_eq!(load.in_flight_at(&exchange(31, Some(40))), 2);
    assert_eq!(load.in_flight_at(&exchange(32, Some(100))), 3);
    assert_eq!(load.in_flight_at(&exchange(50, Some(55))), 3);
    assert_eq!(load.in_flight_at(&exchange(70, None)), 2);
    assert_eq!(load.in_flight_at(&exchange(71, Some(72))), 2, "an unanswered request is not kept open");
}

#[test]
fn live_arrival_order_never_counts_a_later_request_as_open_before_it() {
    let mut live = RecordedLoad::unordered();
    // Sequential requests arriving out of order (two shards).
    assert_eq!(live.in_flight_at(&exchange(10, Some(20))), 1);
    assert_eq!(live.in_flight_at(&exchange(0, Some(10))), 1);
    assert_eq!(live.in_flight_at(&exchange(20, Some(30))), 1);
    // Overlapping ones, completed in any order.
    assert_eq!(live.in_flight_at(&exchange(40, Some(45))), 1);
    assert_eq!(live.in_flight_at(&exchange(35, Some(50))), 1);
    assert_eq!(live.in_flight_at(&exchange(41, Some(42))), 3);
}

fn sample(recorded: u32, replay: u32) -> Sample {
    let now = Instant::now();
    Sample { recorded_in_flight: recorded, replay_in_flight: replay, recorded_ts: 0, sent: now, done: now, late: false }
}

#[test]
fn latency_is_judged_only_at_a_load_like_the_recorded_one() {
    let v = VerdictConfig::default();
    let mut load = Load::default();
    for _ in 0..10 {
        load.add("GET /a", &sample(2, 2));
        load.add("GET /b", &sample(1, 32));
    }
    let (a, _) = load.endpoint("GET /a", &v);
    assert!(a.latency_judged && a.ratio == 1.0, "{a:?}");
    let (b, health) = load.endpoint("GET /b", &v);
    assert!(!b.latency_judged && b.ratio == 32.0, "{b:?}");
    let why = blockers(&b, &health, 10, &v).join("; ");
    assert!(why.contains("latency not judged") && why.contains("--pace 1"), "{why}");
    // The peak alone (one burst) is enough to stop judging.
    let mut burst = Load::default();
    burst.add("GET /c", &sample(1, 3));
    (0..99).for_each(|_| burst.add("GET /c", &sample(1, 1)));
    assert!(!burst.endpoint("GET /c", &v).0.latency_judged);
}

#[test]
fn thin_evidence_blocks_readiness_beyond_the_thresholds() {
    let v = VerdictConfig::default();
    let mut load = Load::default();
    for _ in 0..200 {
        load.add("GET /a", &sample(1, 1));
    }
    load.add_queue_drop("GET /a");
    let (l, h) = load.endpoint("GET /a", &v);
    assert!(blockers(&l, &h, 200, &v).is_empty(), "one drop in 201 is within 1%");
    for _ in 0..5 {
        load.add_capture_gap("GET /a");
    }
    let (l, h) = load.endpoint("GET /a", &v);
    let why = blockers(&l, &h, 205, &v).join("; ");
    assert!(why.contains("1 queue drops and 5 capture gaps"), "{why}");
}
