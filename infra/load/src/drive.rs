//! The load loop: a scenario's requests sent `--concurrency` at a time by as many workers,
//! each request timed from sending to the last byte of the response body; a warmup phase
//! (unmeasured) and then the measured phase.
use crate::client::{HttpClient, send};
use crate::{LoadError, Options, ScenarioReport};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many failures per scenario are kept to show.
pub(crate) const ERROR_SAMPLES: usize = 5;

/// What a successful response body told us.
pub(crate) enum Extract {
    Token(String),
    IsValid(bool),
    Missing,
}

/// A request shape, indexed so requests are spread deterministically.
pub(crate) trait Scenario: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn request(&self, index: usize) -> Request<Full<Bytes>>;
    fn extract(&self, body: &[u8]) -> Extract;
}

/// The results of one batch of requests.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    error_samples: Vec<String>,
    extracts: Vec<Extract>,
}

/// Sends requests `offset..offset + count` of `scenario`, `concurrency` at a time, and waits
/// for all of them.
async fn drive<S: Scenario>(
    client: &HttpClient,
    scenario: &Arc<S>,
    offset: usize,
    count: usize,
    concurrency: usize,
    timeout: Duration,
) -> Result<Phase, LoadError> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let (client, scenario, next) = (client.clone(), Arc::clone(scenario), Arc::clone(&next));
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break results;
                }
                let req = scenario.request(offset + i);
                let sent = Instant::now();
                let outcome = tokio::time::timeout(timeout, send(&client, req)).await;
                let latency = sent.elapsed();
                let outcome = match outcome {
                    Ok(Ok(body)) => Ok(scenario.extract(&body)),
                    Ok(Err(failure)) => Err(failure),
                    Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
                };
                results.push((latency, outcome));
            }
        });
    }
    let mut phase = Phase {
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        errors: 0,
        error_samples: Vec::new(),
        extracts: Vec::with_capacity(count),
    };
    while let Some(joined) = workers.join_next().await {
        let results = joined.map_err(|e| LoadError(format!("a load worker stopped: {e}")))?;
        for (latency, outcome) in results {
            phase.latencies.push(latency);
            match outcome {
                Ok(extract) => phase.extracts.push(extract),
                Err(failure) => {
                    phase.errors += 1;
                    if phase.error_samples.len() < ERROR_SAMPLES {
                        phase.error_samples.push(failure);
                    }
                }
            }
        }
    }
    phase.wall = started.elapsed();
    Ok(phase)
}

/// A scenario's report and what its successful responses held, warmup and measured apart.
pub(crate) struct ScenarioRun {
    pub(crate) report: ScenarioReport,
    pub(crate) warmup: Vec<Extract>,
    pub(crate) measured: Vec<Extract>,
}

/// Runs the warmup (unmeasured) and then the measured phase of `scenario`. Requests are
/// indexed warmup first, so each request in the run gets its own user id / token slot.
pub(crate) async fn scenario<S: Scenario>(
    client: &HttpClient,
    scenario: S,
    opts: &Options,
) -> Result<ScenarioRun, LoadError> {
    let scenario = Arc::new(scenario);
    let name = scenario.name();
    let mut warmup = Vec::new();
    if opts.warmup > 0 {
        progress!("{name}: warming up with {} requests", opts.warmup);
        let warm = drive(
            client,
            &scenario,
            0,
            opts.warmup,
            opts.concurrency,
            opts.timeout,
        )
        .await?;
        if warm.errors == opts.warmup {
            return Err(LoadError(format!(
                "every {name} warmup request to {} failed; is latchkey-local running there \
                 and is the secret key right? first failure: {}",
                opts.base_url,
                warm.error_samples.first().map_or("?", String::as_str)
            )));
        }
        warmup = warm.extracts;
    }
    progress!(
        "{name}: {} requests, {} at a time",
        opts.requests,
        opts.concurrency
    );
    let run = drive(
        client,
        &scenario,
        opts.warmup,
        opts.requests,
        opts.concurrency,
        opts.timeout,
    )
    .await?;
    let report = ScenarioReport::new(
        name,
        opts.concurrency,
        run.wall,
        run.latencies,
        run.errors,
        run.error_samples,
    );
    Ok(ScenarioRun {
        report,
        warmup,
        measured: run.extracts,
    })
}
