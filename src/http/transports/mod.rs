//! Real-time transports. Each one only adapts `events::feed::Reader` to a wire format:
//! `longpoll` (XHR and JSONP), `sse` (Server-Sent Events) and `ws` (WebSocket). Shared here:
//! opening a reader with the cursor rules, and the connection caps.

mod longpoll;
mod sse;
#[cfg(feature = "websocket")]
mod ws;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use utoipa_axum::router::OpenApiRouter;

use super::{ApiContext, Error};
use crate::{
    domain::{InboxKey, Principal},
    events::{
        cursor::{CursorError, CursorParam},
        feed::{FeedError, Reader},
    },
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    let router = OpenApiRouter::new()
        .merge(longpoll::router())
        .merge(sse::router());
    #[cfg(feature = "websocket")]
    let router = router.merge(ws::router());
    router
}

/// Most events in one answer or write.
const MAX_BATCH: usize = 500;

/// Open a reader of `principal`'s inbox at the client's cursor, with the cursor errors.
async fn open_reader(
    ctx: &ApiContext,
    principal: Principal,
    raw_cursor: Option<&str>,
) -> Result<Reader, Error> {
    let cursor = CursorParam::parse(raw_cursor).map_err(cursor_error)?;
    Reader::open(&ctx.store, &ctx.hub, &principal.inbox(), cursor)
        .await
        .map_err(|error| match error {
            FeedError::Cursor(e) => cursor_error(e),
            FeedError::Store(e) => e.into(),
        })
}

fn cursor_error(error: CursorError) -> Error {
    match error {
        CursorError::Bad => Error::bad_request(
            "bad_cursor",
            "cursor must be a seq this inbox has reached (a whole number ≥ 0)",
        ),
        CursorError::Expired => Error::Gone {
            code: "cursor_expired",
            message: "events after this cursor are no longer kept; reload the conversations and start from the head",
        },
    }
}

/// Caps on live connections per principal. A permit is held for the life of a stream or a
/// parked poll and frees its slot on drop, whatever way the connection ends.
pub struct ConnectionLimits {
    per_principal: usize,
    open: Mutex<HashMap<InboxKey, usize>>,
}

pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    inbox: InboxKey,
    transport: &'static str,
}

impl ConnectionLimits {
    pub fn new(per_principal: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            per_principal,
            open: Mutex::default(),
        })
    }

    /// A slot for one more connection of `principal` over `transport`, or 429.
    pub fn acquire(
        self: &Arc<Self>,
        principal: Principal,
        transport: &'static str,
    ) -> Result<ConnectionPermit, Error> {
        let inbox = principal.inbox();
        {
            let mut open = self.open.lock().expect("limits lock poisoned");
            let count = open.entry(inbox.clone()).or_insert(0);
            if *count >= self.per_principal {
                return Err(Error::TooManyConnections {
                    limit: self.per_principal,
                });
            }
            *count += 1;
        }
        metrics::gauge!("live_connections", "transport" => transport).increment(1.0);
        Ok(ConnectionPermit {
            limits: self.clone(),
            inbox,
            transport,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        metrics::gauge!("live_connections", "transport" => self.transport).decrement(1.0);
        let mut open = self.limits.open.lock().expect("limits lock poisoned");
        if let Some(count) = open.get_mut(&self.inbox) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.inbox);
            }
        }
    }
}
