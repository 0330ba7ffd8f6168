//! The accept loop: hyper connections with a header read timeout (slowloris), a global
//! connection cap taken before `accept`, and a graceful, bounded drain. Event streams skip
//! hyper (see `stream`) to keep long-lived connections small.
//!
//! `axum::serve` offers neither the header timeout nor the cap, so the loop is ours (in the
//! manner of mini-redis's `Listener`). On shutdown the listener closes first; parked requests
//! and streams see the same shutdown signal and end; then open connections get `drain` to
//! finish before the process goes on without them.

mod stream;

use std::{sync::Arc, time::Duration};

use axum::{extract::Request, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

use crate::shutdown::Shutdown;

/// Limits of the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Open connections at most; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Time open connections get to finish after shutdown starts.
    pub drain: Duration,
}

/// Serve `app` on `listener` until `shutdown`, then drain.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: Shutdown,
    limits: ServerLimits,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);

    loop {
        // Take the slot before accepting, so a full server stops accepting rather than
        // accepting and dropping.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.recv() => break,
        };
        let (stream, _remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
        let mut stopping = shutdown.clone();
        tokio::spawn(async move {
            // A client that connected but has not spoken yet must not hold up the drain.
            let is_stream = tokio::select! {
                is_stream = stream::is_event_stream(&stream, limits.header_read_timeout) => is_stream,
                _ = stopping.recv() => return,
            };
            if is_stream {
                let _ = stream::serve(stream, app, limits.header_read_timeout).await;
            } else {
                let service =
                    TowerToHyperService::new(app.map_request(|request: Request<Incoming>| {
                        request.map(axum::body::Body::new)
                    }));
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let _ = watcher.watch(connection.into_owned()).await;
            }
            drop(permit);
        });
    }
    drop(listener);
    // Done when hyper's connections closed and every connection (streams too) gave back its
    // slot, or when the drain time is over.
    let all_closed = async {
        graceful.shutdown().await;
        let _ = connections
            .acquire_many(limits.max_connections as u32)
            .await;
    };
    tokio::select! {
        _ = all_closed => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(limits.drain) => tracing::warn!("drain time over; closing the remaining connections"),
    }
}
