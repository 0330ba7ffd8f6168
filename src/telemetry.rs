//! Logging and metrics set-up, done once per process.
//!
//! Tests spawn many apps in one process, so both the log subscriber and the Prometheus recorder
//! are installed at most once and shared.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt, EnvFilter, Registry};

/// Build a subscriber that writes to `sink` with the given default filter (overridden by
/// `RUST_LOG`). `json` selects machine-readable lines.
pub fn get_subscriber<Sink>(
    default_filter: &str,
    json: bool,
    sink: Sink,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = Registry::default().with(filter);
    if json {
        Box::new(registry.with(tracing_subscriber::fmt::layer().json().with_writer(sink)))
    } else {
        Box::new(registry.with(tracing_subscriber::fmt::layer().with_writer(sink)))
    }
}

/// Install `subscriber` as the global default. Only the first call in a process has an effect.
pub fn init_subscriber(subscriber: Box<dyn tracing::Subscriber + Send + Sync>) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The process-wide Prometheus recorder; installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0,
                ])
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness): then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Run blocking work (password hashing) on the blocking pool inside the caller's span.
pub async fn spawn_blocking_with_tracing<F, R>(f: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}
