//! Presence: is a principal online right now? A principal is online while it holds a live
//! connection (an open stream, or a long-poll within its timeout plus a grace period). Each
//! connection keeps its inbox marked with an expiry it refreshes; nothing has to be cleaned up
//! when a node dies, the marks just expire.
//!
//! Node-local in embedded mode; shared through Redis keys with a TTL in a cluster, so the
//! notification worker on any node sees connections held by every node.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, AsyncCommands};

use crate::domain::InboxKey;

/// Presence is advisory: a slow Redis must not hold up a stream or a poll.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Above this many marks the memory store drops expired ones on the next write.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Clone)]
pub enum Presence {
    Memory(Arc<Mutex<HashMap<InboxKey, Instant>>>),
    Redis {
        connection: ConnectionManager,
        prefix: String,
    },
}

impl Presence {
    pub fn memory() -> Presence {
        Presence::Memory(Arc::default())
    }

    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Presence> {
        let client = redis::Client::open(url)?;
        let connection =
            tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
                .await
                .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
        Ok(Presence::Redis {
            connection,
            prefix: format!("{prefix}:presence:"),
        })
    }

    /// Mark `inbox` online for at least `ttl` from now.
    pub async fn touch(&self, inbox: &InboxKey, ttl: Duration) {
        match self {
            Presence::Memory(marks) => {
                let until = Instant::now() + ttl;
                let mut marks = marks.lock().expect("presence lock poisoned");
                if marks.len() > PRUNE_ABOVE {
                    let now = Instant::now();
                    marks.retain(|_, expiry| *expiry > now);
                }
                let expiry = marks.entry(inbox.clone()).or_insert(until);
                *expiry = (*expiry).max(until);
            }
            Presence::Redis { connection, prefix } => {
                let mut connection = connection.clone();
                let key = format!("{prefix}{}", inbox.as_str());
                let millis = ttl.as_millis() as u64;
                // GT keeps a longer expiry set by another connection of the same principal.
                let result = tokio::time::timeout(REDIS_TIMEOUT, async {
                    let _: () = connection.set_nx(&key, 1).await?;
                    let _: () = redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(millis)
                        .arg("GT")
                        .query_async(&mut connection)
                        .await?;
                    let _: () = redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(millis)
                        .arg("NX")
                        .query_async(&mut connection)
                        .await?;
                    redis::RedisResult::Ok(())
                })
                .await;
                if !matches!(result, Ok(Ok(()))) {
                    tracing::warn!("cannot record presence in Redis");
                }
            }
        }
    }

    /// Does `inbox` have a live connection anywhere?
    pub async fn is_online(&self, inbox: &InboxKey) -> bool {
        match self {
            Presence::Memory(marks) => {
                let marks = marks.lock().expect("presence lock poisoned");
                marks
                    .get(inbox)
                    .is_some_and(|expiry| *expiry > Instant::now())
            }
            Presence::Redis { connection, prefix } => {
                let mut connection = connection.clone();
                let key = format!("{prefix}{}", inbox.as_str());
                let exists =
                    tokio::time::timeout(REDIS_TIMEOUT, connection.exists::<_, bool>(&key)).await;
                matches!(exists, Ok(Ok(true)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn marks_expire() {
        let presence = Presence::memory();
        let inbox = InboxKey::customer(1);
        assert!(!presence.is_online(&inbox).await);
        presence.touch(&inbox, Duration::from_millis(60)).await;
        presence.touch(&inbox, Duration::from_millis(1)).await;
        assert!(
            presence.is_online(&inbox).await,
            "a shorter touch does not cut a longer one"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!presence.is_online(&inbox).await);
    }
}
