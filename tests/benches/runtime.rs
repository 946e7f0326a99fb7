//! Which tokio runtime a Lambda function should run on: Lambda hands an instance one request at
//! a time, so the choice is between the multi-thread runtime (`#[tokio::main]`, a worker per
//! core plus the blocking pool) and the current-thread one. `cargo bench -p latchkey-tests
//! --bench runtime`: one Server API track after another (rules, sealed fields, the audited
//! write, the token) through the local gateway's router on the embedded store in a file, on each
//! runtime; criterion reports wall time per track, and the process's CPU time per track (user +
//! system from `/proc/self/stat`) is printed after each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_tests::{World, example_settings};
use std::time::{Duration, Instant};

/// User + system CPU of this process so far (Linux).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    match name {
        "current-thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

fn tracks(c: &mut Criterion) {
    let mut group = c.benchmark_group("sequential tracks");
    for name in ["current-thread", "multi-thread"] {
        let rt = runtime(name);
        let w = rt.block_on(
            World::setup()
                .tenant("t-rt", example_settings("Example"))
                .on_disk()
                .build(),
        );
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        n += 1;
                        w.track(&format!("u{}", n % 1000), "signIn").await;
                    }
                    start.elapsed()
                })
            })
        });
        let (runs, before) = (2_000u32, cpu());
        rt.block_on(async {
            for i in 0..runs {
                w.track(&format!("cpu{}", i % 1000), "signIn").await;
            }
        });
        println!(
            "{name}: {:.0} µs of process CPU per track ({runs} tracks)",
            (cpu() - before).as_secs_f64() * 1e6 / f64::from(runs)
        );
        drop(w);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = tracks
}
criterion_main!(benches);
