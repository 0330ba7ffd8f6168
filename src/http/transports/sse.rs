//! Server-Sent Events: `GET /v1/events/stream`. One long response, framed by hand:
//! `id:` = seq on every stored event (so the browser's automatic reconnect sends
//! `Last-Event-ID` and resumes exactly), `event:` = type, `data:` = the event JSON on one line,
//! `retry:` for the reconnect delay, a comment heartbeat every 15 s to keep proxies from timing
//! out, and an optional 2 KiB comment preamble (`?preamble=1`) that IE8–10 EventSource
//! polyfills need before they see the first event. Never compressed; `X-Accel-Buffering: no`
//! keeps nginx from buffering it.

use std::{fmt::Write as _, io::Write as _, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{open_reader, MAX_BATCH};
use crate::{
    events::feed::FeedItem,
    http::{
        error::ErrorBody,
        extractor::{ApiQuery, Auth},
        ApiContext, Error,
    },
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(stream))
}

const HEARTBEAT: Duration = Duration::from_secs(15);
/// Presence outlives one heartbeat period comfortably.
const PRESENCE_TTL: Duration = Duration::from_secs(40);
const RETRY_MILLIS: u32 = 3000;
const PREAMBLE_BYTES: usize = 2048;

#[derive(Deserialize, IntoParams)]
struct StreamQuery {
    /// Resume after this seq (the `Last-Event-ID` header wins when both are sent).
    cursor: Option<String>,
    /// The same, under the name some EventSource polyfills use.
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
    /// `1`: send a 2 KiB comment first (for IE8–10 polyfills).
    preamble: Option<String>,
}

/// The caller's inbox as a Server-Sent Events stream.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamQuery),
    responses((status = 200, content_type = "text/event-stream"), (status = 400, body = ErrorBody), (status = 410, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn stream(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, Error> {
    let header_cursor = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let raw_cursor = header_cursor
        .or(query.cursor.as_deref())
        .or(query.last_event_id.as_deref());
    let permit = ctx.limits.acquire(principal, "sse")?;
    let mut reader = open_reader(&ctx, principal, raw_cursor).await?;
    let preamble = query.preamble.as_deref() == Some("1");
    let inbox = principal.inbox();
    let mut shutdown = ctx.shutdown.clone();

    let body = async_stream::stream! {
        // Held by the stream: the slot frees when the client goes away.
        let _permit = permit;
        let mut head = String::new();
        if preamble {
            head.push(':');
            head.push_str(&" ".repeat(PREAMBLE_BYTES));
            head.push('\n');
        }
        let _ = write!(head, "retry: {RETRY_MILLIS}\n\n");
        yield Ok::<_, std::io::Error>(Bytes::from(head));
        ctx.presence.touch(&inbox, PRESENCE_TTL).await;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                items = reader.next(MAX_BATCH) => match items {
                    Ok(items) => {
                        metrics::counter!("events_delivered_total", "transport" => "sse").increment(items.len() as u64);
                        yield Ok(frame(&items));
                    }
                    Err(error) => {
                        // The client reconnects with Last-Event-ID and loses nothing.
                        tracing::warn!(%error, "ending an event stream after a store error");
                        break;
                    }
                },
                _ = heartbeat.tick() => {
                    ctx.presence.touch(&inbox, PRESENCE_TTL).await;
                    yield Ok(Bytes::from_static(b": ping\n\n"));
                }
                _ = shutdown.recv() => break,
            }
        }
    };

    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// SSE frames for a batch. Stored events bring their frame already encoded (shared by every
/// subscriber of the inbox on this node); only ephemeral ones are framed here.
fn frame(items: &[FeedItem]) -> Bytes {
    if let [FeedItem::Stored(shared)] = items {
        return shared.sse_frame().clone();
    }
    let mut out = Vec::with_capacity(items.len() * 256);
    for item in items {
        match item {
            FeedItem::Stored(shared) => out.extend_from_slice(shared.sse_frame()),
            FeedItem::Ephemeral(_) => {
                // Event names are ours ("typing"), never user input: no line breaks; and
                // serde_json never writes a raw line break, so the JSON is one `data:` line.
                let _ = write!(
                    out,
                    "event: {}\ndata: {}\n\n",
                    item.event_type(),
                    item.json()
                );
            }
        }
    }
    Bytes::from(out)
}
