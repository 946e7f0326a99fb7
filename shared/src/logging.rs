//! JSON logs through tracing-subscriber, one line per event, with the request id of the span
//! they happen in.
//!
//! What is logged is chosen field by field: method, route template (`/v1/users/{user_id}`, never
//! the concrete path, which can hold an email), status, latency, request id, error kinds. No
//! header, query string or body is ever logged, so secrets and personal data cannot reach the
//! logs by way of a request; `tests/tests/api/http.rs` checks it.
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The subscriber every function uses, writing to `writer`.
pub fn subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with(layer)
}

/// Installs the JSON subscriber on standard output for the whole process.
pub fn init(filter: &str) {
    // A second call (tests) keeps the first subscriber.
    let _ = subscriber(filter, std::io::stdout).try_init();
}
