//! JSON logs through tracing-subscriber, one line per event, with the request id of the span
//! they happen in.
//!
//! What is logged is chosen field by field: method, route template (`/v1/users/{user_id}`, never
//! the concrete path, which can hold an email), status, latency, request id, error kinds. No
//! header, query string or body is ever logged, so secrets and personal data cannot reach the
//! logs by way of a request; `tests/tests/api/http.rs` checks it.
//!
//! The filter is a [`Targets`]: `level` or `target=level`, comma-separated (`info`,
//! `latchkey=debug,warn`), as `Config` checks it. Not `EnvFilter`, whose span and field filters
//! would put a regex engine in every Lambda binary, for directives these logs have no use for.
use tracing_subscriber::filter::{LevelFilter, Targets};
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
        .with(
            filter
                .parse::<Targets>()
                .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO)),
        )
        .with(layer)
}

/// Installs the JSON subscriber on standard output for the whole process.
pub fn init(filter: &str) {
    // A second call (tests) keeps the first subscriber.
    let _ = subscriber(filter, std::io::stdout).try_init();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use tracing::Level;
    use tracing_subscriber::filter::{LevelFilter, Targets};

    #[test]
    fn plain_directives_filter_by_target_prefix_and_default() {
        let info: Targets = "info".parse().unwrap();
        assert!(info.would_enable("latchkey::http", &Level::INFO));
        assert!(!info.would_enable("latchkey::http", &Level::DEBUG));
        let mixed: Targets = "latchkey=debug,warn".parse().unwrap();
        assert!(mixed.would_enable("latchkey::domain", &Level::DEBUG));
        assert!(!mixed.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(mixed.would_enable("aws_smithy_runtime", &Level::WARN));
        let off: Targets = "off".parse().unwrap();
        assert_eq!(off.default_level(), Some(LevelFilter::OFF));
    }
}
