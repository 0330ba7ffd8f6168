//! Shutdown signalling shared by the server, parked requests and background tasks.
//!
//! One `watch` channel flips to `true` once; every holder can poll `is_shutdown()` or await
//! `recv()`, which is idempotent, so a task that checks twice never blocks forever.

use tokio::sync::watch;

/// The sending half: owned by whoever decides the process is stopping.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A cheap-clone listener for the shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// A new trigger and its first listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    /// Tell every listener to stop. Calling it again does nothing.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Wait until shutdown is triggered (returns at once if it already was). A dropped trigger
    /// counts as shutdown: nobody is left to keep the process alive.
    pub async fn recv(&mut self) {
        let _ = self.receiver.wait_for(|stopping| *stopping).await;
    }
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recv_is_idempotent_and_sees_an_earlier_trigger() {
        let (trigger, mut shutdown) = channel();
        assert!(!shutdown.is_shutdown());
        trigger.trigger();
        shutdown.recv().await;
        shutdown.recv().await;
        let mut late = trigger.subscribe();
        late.recv().await;
        assert!(late.is_shutdown());
    }
}
