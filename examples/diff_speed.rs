//! Throughput of the comparison engine (`shadowtap::diff::compare`) on large
//! JSON bodies.
//!
//! ```sh
//! cargo run --release --example diff_speed                 # 1 MB and 8 MB bodies
//! cargo run --release --example diff_speed -- 1 8 32 --runs 9
//! ```
//!
//! For each size, builds a deterministic document (an array of "user"
//! records: nested objects, integers, decimals, RFC 3339 timestamps, strings,
//! booleans, nulls, arrays of orders with items) and times `compare` on:
//!
//! - `identical`: the same bytes on both sides (the byte-equality fast path);
//! - `reformatted`: the same document, candidate pretty-printed (equal
//!   content, so both bodies are parsed and walked; no equivalence applies);
//! - `equivalent`: the candidate has every object's keys in reverse order,
//!   numbers written another way (`42` as `42.0` or `42e0`, `12.34` as `1234e-2`) and
//!   timestamps in `+02:00` instead of `Z`: equal by the rules, with
//!   `key_order`, `number_format` and `timestamp_instant` counted;
//! - `5 leaf diffs`: same form as recorded, 5 leaves changed (a number, a
//!   string, a boolean, a timestamp, a nested decimal).
//!
//! Prints MB/s = (recorded + candidate bytes) / time, best of N runs (and the
//! median), and checks each case gives the expected outcome.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use shadowtap::diff::{Answer, CompareRules, compare};

/// A JSON value before serialisation, so that one content can be written in
/// several forms.
enum V {
    Null,
    Bool(bool),
    Int(i64),
    /// `units × 10^-scale`.
    Dec(i64, u32),
    Str(String),
    /// Unix seconds and milliseconds.
    Time(i64, u32),
    Arr(Vec<V>),
    Obj(Vec<(&'static str, V)>),
}

#[derive(Clone, Copy)]
struct Form {
    /// Keys of every object in reverse order.
    reversed_keys: bool,
    /// Numbers in another notation with the same exact value.
    other_numbers: bool,
    /// Timestamps at offset +02:00 instead of `Z`.
    other_offset: bool,
    /// Indented with newlines.
    pretty: bool,
}

const COMPACT: Form = Form { reversed_keys: false, other_numbers: false, other_offset: false, pretty: false };
const PRETTY: Form = Form { pretty: true, ..COMPACT };
const EQUIVALENT: Form = Form { reversed_keys: true, other_numbers: true, other_offset: true, pretty: false };

fn write_json(v: &V, form: Form, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if form.pretty {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    };
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Int(n) => {
            if form.other_numbers {
                // 42 -> 42.0, every third one 42e0.
                if n.rem_euclid(3) == 0 {
                    let _ = write!(out, "{n}e0");
                } else {
                    let _ = write!(out, "{n}.0");
                }
            } else {
                let _ = write!(out, "{n}");
            }
        }
        V::Dec(units, scale) => {
            if form.other_numbers {
                let _ = write!(out, "{units}e-{scale}");
            } else {
                let p = 10i64.pow(*scale);
                let sign = if *units < 0 { "-" } else { "" };
                let a = units.unsigned_abs();
                let _ = write!(out, "{sign}{}.{:0width$}", a / p as u64, a % p as u64, width = *scale as usize);
            }
        }
        V::Str(s) => write_string(s, out),
        V::Time(secs, millis) => {
            let utc = DateTime::from_timestamp(*secs, millis * 1_000_000).expect("valid time");
            let text = if form.other_offset {
                let plus2 = FixedOffset::east_opt(2 * 3600).expect("valid offset");
                utc.with_timezone(&plus2).to_rfc3339_opts(SecondsFormat::Millis, false)
            } else {
                utc.to_rfc3339_opts(SecondsFormat::Millis, true)
            };
            write_string(&text, out);
        }
        V::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(item, form, depth + 1, out);
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        V::Obj(members) => {
            out.push('{');
            let mut first = true;
            let mut write_member = |(key, value): &(&str, V), out: &mut String| {
                if !first {
                    out.push(',');
                }
                first = false;
                newline(out, depth + 1);
                write_string(key, out);
                out.push(':');
                if form.pretty {
                    out.push(' ');
                }
                write_json(value, form, depth + 1, out);
            };
            if form.reversed_keys {
                members.iter().rev().for_each(|m| write_member(m, out));
            } else {
                members.iter().for_each(|m| write_member(m, out));
            }
            if !members.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Deterministic pseudo-random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CITIES: [&str; 6] = ["Lyon", "Oslo", "Quito", "Perth", "Dakar", "Ume\u{e5}"];
const WORDS: [&str; 8] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
const BASE_TIME: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

fn record(i: usize) -> V {
    let mut r = Rng(i as u64 * 7919 + 17);
    let id = i as i64 + 1;
    let orders = (0..2 + r.below(3))
        .map(|k| {
            let items = (0..1 + r.below(3))
                .map(|j| {
                    V::Obj(vec![
                        ("sku", V::Str(format!("SKU-{id}-{k}-{j}"))),
                        ("qty", V::Int(1 + r.below(9) as i64)),
                        ("unit_price", V::Dec(99 + r.below(100_000) as i64, 2)),
                    ])
                })
                .collect();
            V::Obj(vec![
                ("order_id", V::Int(id * 100 + k as i64)),
                ("placed_at", V::Time(BASE_TIME + r.below(30_000_000) as i64, r.below(1000) as u32)),
                ("status", V::Str(["paid", "shipped", "returned"][r.below(3) as usize].into())),
                ("total", V::Dec(r.below(10_000_000) as i64, 2)),
                ("items", V::Arr(items)),
            ])
        })
        .collect();
    let tags = (0..r.below(5)).map(|_| V::Str(WORDS[r.below(8) as usize].into())).collect();
    V::Obj(vec![
        ("id", V::Int(id)),
        ("login", V::Str(format!("user{id:07}"))),
        ("name", V::Str(format!("{} {}", WORDS[r.below(8) as usize], WORDS[r.below(8) as usize]))),
        ("email", V::Str(format!("user{id}@example.test"))),
        ("active", V::Bool(r.below(4) != 0)),
        ("manager_id", if r.below(3) == 0 { V::Null } else { V::Int(1 + r.below(i as u64 + 1) as i64) }),
        ("created_at", V::Time(BASE_TIME - r.below(100_000_000) as i64, r.below(1000) as u32)),
        ("last_seen", V::Time(BASE_TIME + r.below(10_000_000) as i64, r.below(1000) as u32)),
        ("score", V::Dec(r.below(1_000_000) as i64, 4)),
        ("balance", V::Dec(r.below(100_000_000) as i64 - 50_000_000, 2)),
        (
            "address",
            V::Obj(vec![
                ("street", V::Str(format!("{} Long Street", 1 + r.below(999)))),
                ("city", V::Str(CITIES[r.below(6) as usize].into())),
                ("zip", V::Str(format!("{:05}", r.below(100_000)))),
                (
                    "geo",
                    V::Obj(vec![
                        ("lat", V::Dec(r.below(180_000_000) as i64 - 90_000_000, 6)),
                        ("lon", V::Dec(r.below(360_000_000) as i64 - 180_000_000, 6)),
                    ]),
                ),
            ]),
        ),
        ("tags", V::Arr(tags)),
        ("note", V::Str(format!("Line one of user {id}.\nQuote: \"{}\"", WORDS[r.below(8) as usize]))),
        ("orders", V::Arr(orders)),
    ])
}

fn member<'a>(members: &'a mut [(&'static str, V)], name: &str) -> &'a mut V {
    &mut members.iter_mut().find(|(k, _)| *k == name).expect("field").1
}

/// Changes one leaf of a record (which one depends on `which`): exactly one
/// difference expected per call.
fn mutate(rec: &mut V, which: usize) {
    let V::Obj(members) = rec else { unreachable!() };
    let target = match which % 5 {
        0 => member(members, "score"),
        1 => member(members, "email"),
        2 => member(members, "active"),
        3 => member(members, "last_seen"),
        _ => {
            let V::Arr(orders) = member(members, "orders") else { unreachable!() };
            let V::Obj(order) = &mut orders[0] else { unreachable!() };
            member(order, "total")
        }
    };
    *target = match std::mem::replace(target, V::Null) {
        V::Dec(u, s) => V::Dec(u + 1, s),
        V::Str(s) => V::Str(s + ".changed"),
        V::Bool(b) => V::Bool(!b),
        V::Time(t, ms) => V::Time(t + 1, ms),
        other => other,
    };
}

struct Case {
    name: &'static str,
    recorded: Vec<u8>,
    candidate: Vec<u8>,
    expected_differences: usize,
    /// Equivalence rules that must have been counted.
    expected_rules: &'static [&'static str],
}

fn serialize(records: &[V], form: Form) -> Vec<u8> {
    let mut out = String::with_capacity(records.len() * 1200);
    out.push_str(if form.pretty { "{\n  \"users\": [" } else { "{\"users\":[" });
    for (i, rec) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if form.pretty {
            out.push_str("\n    ");
        }
        write_json(rec, form, 2, &mut out);
    }
    out.push_str(if form.pretty { "\n  ],\n  \"next\": null\n}\n" } else { "],\"next\":null}" });
    out.into_bytes()
}

fn build_cases(target_bytes: usize) -> Vec<Case> {
    // Grow the record list until the compact form reaches the target size.
    let mut records = Vec::new();
    let mut size = 0;
    while size < target_bytes {
        let rec = record(records.len());
        let mut one = String::new();
        write_json(&rec, COMPACT, 2, &mut one);
        size += one.len() + 1;
        records.push(rec);
    }
    let recorded = serialize(&records, COMPACT);

    const CHANGES: usize = 5;
    let mut changed: Vec<V> = (0..records.len()).map(record).collect();
    for k in 0..CHANGES {
        let at = (k * 2 + 1) * records.len() / (CHANGES * 2);
        mutate(&mut changed[at], k);
    }

    vec![
        Case {
            name: "identical",
            recorded: recorded.clone(),
            candidate: recorded.clone(),
            expected_differences: 0,
            expected_rules: &[],
        },
        Case {
            name: "reformatted",
            recorded: recorded.clone(),
            candidate: serialize(&records, PRETTY),
            expected_differences: 0,
            expected_rules: &[],
        },
        Case {
            name: "equivalent",
            recorded: recorded.clone(),
            candidate: serialize(&records, EQUIVALENT),
            expected_differences: 0,
            expected_rules: &["key_order", "number_format", "timestamp_instant"],
        },
        Case {
            name: "5 leaf diffs",
            recorded,
            candidate: serialize(&changed, COMPACT),
            expected_differences: CHANGES,
            expected_rules: &[],
        },
    ]
}

fn main() {
    let mut sizes_mb: Vec<f64> = Vec::new();
    let mut runs: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = Some(args.next().and_then(|n| n.parse().ok()).expect("--runs N")),
            "-h" | "--help" => {
                println!("usage: diff_speed [SIZE_MB...] [--runs N]   (default: 1 8)");
                return;
            }
            size => sizes_mb.push(size.parse().unwrap_or_else(|_| panic!("not a size in MB: {size}"))),
        }
    }
    if sizes_mb.is_empty() {
        sizes_mb = vec![1.0, 8.0];
    }
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let rules = CompareRules::default();
    println!(
        "{:>7}  {:<13} {:>8} {:>8} {:>9} {:>9} {:>10} {:>5} {:>5}  equivalences",
        "size", "case", "rec MB", "cand MB", "best ms", "MB/s", "median MB/s", "runs", "diffs"
    );
    let mut failed = false;
    for &mb in &sizes_mb {
        let target = (mb * 1e6) as usize;
        let cases = build_cases(target);
        let runs = runs.unwrap_or(if mb <= 2.0 { 15 } else { 7 });
        for case in &cases {
            let recorded = Answer { status: 200, headers: &headers, body: &case.recorded };
            let candidate = Answer { status: 200, headers: &headers, body: &case.candidate };
            // Warm-up run, also the one whose result is checked.
            let result = compare(&recorded, &candidate, &rules);
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    let comparison = compare(black_box(&recorded), black_box(&candidate), &rules);
                    let elapsed = start.elapsed();
                    drop(black_box(comparison));
                    elapsed
                })
                .collect();
            times.sort();
            let bytes = (case.recorded.len() + case.candidate.len()) as f64;
            let rate = |t: Duration| bytes / 1e6 / t.as_secs_f64().max(1e-9);
            let equivalences: Vec<String> = result.equivalences.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{:>5.1}MB  {:<13} {:>8.2} {:>8.2} {:>9.3} {:>9.0} {:>10.0} {:>5} {:>5}  {}",
                mb,
                case.name,
                case.recorded.len() as f64 / 1e6,
                case.candidate.len() as f64 / 1e6,
                times[0].as_secs_f64() * 1e3,
                rate(times[0]),
                rate(times[times.len() / 2]),
                runs,
                result.differences.len(),
                if equivalences.is_empty() { "-".to_string() } else { equivalences.join(" ") },
            );
            let rules_ok = case.expected_rules.iter().all(|r| result.equivalences.get(r).is_some_and(|&n| n > 0));
            if result.differences.len() != case.expected_differences || !rules_ok {
                failed = true;
                eprintln!(
                    "diff_speed: {} at {mb} MB: expected {} differences and rules {:?}, got {:?}",
                    case.name,
                    case.expected_differences,
                    case.expected_rules,
                    result.differences.iter().take(10).map(|d| &d.path).collect::<Vec<_>>()
                );
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
