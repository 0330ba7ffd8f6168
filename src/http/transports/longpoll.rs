//! Long-polling, for every browser: `GET /v1/events?cursor=N&timeout=S` answers at once when
//! the inbox has events after the cursor, otherwise holds the request until one arrives or the
//! timeout passes (default 25 s, at most 55 s: below common proxy cut-offs). The answer always
//! carries the cursor to send next. With `callback=` the same answer is JSONP for IE6/7 and
//! cross-origin pages: `/**/callback({...});`, `application/javascript`, `nosniff`. A JSONP
//! script cannot see HTTP statuses, so errors then come as `callback({"error":…,"status":N})`
//! with status 200; a callback that is not a plain JavaScript name gets a JSON 400 and is never
//! echoed.

use std::time::Duration;

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{open_reader, MAX_BATCH};
use crate::{
    events::feed::FeedItem,
    http::{
        error::ErrorBody,
        extractor::{ApiQuery, Auth},
        jsonp, ApiContext, Error,
    },
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(poll))
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);
const MAX_TIMEOUT: Duration = Duration::from_secs(55);
/// How long past a poll's timeout its principal still counts as online (the next poll is
/// usually on its way).
const PRESENCE_GRACE: Duration = Duration::from_secs(15);

#[derive(Deserialize, IntoParams)]
struct PollQuery {
    /// The last seq seen; absent = start at the head, 0 = everything retained.
    cursor: Option<String>,
    /// Seconds to hold the request when there is nothing new (0–55, default 25).
    timeout: Option<String>,
    /// Most events in the answer (1–500, default 100).
    limit: Option<usize>,
    /// JSONP: the name of the function to call with the answer.
    callback: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct PollAnswer {
    /// Send this as `cursor` next time.
    cursor: i64,
    /// Stored events (with `seq`) in order, and ephemeral ones (typing, no `seq`).
    #[schema(value_type = Vec<Object>)]
    events: Vec<FeedItem>,
}

/// Long-poll the caller's inbox (XHR, or JSONP with `callback`).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(PollQuery),
    responses((status = 200, body = PollAnswer), (status = 400, body = ErrorBody), (status = 410, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn poll(
    State(ctx): State<ApiContext>,
    auth: Result<Auth, Error>,
    query: Result<ApiQuery<PollQuery>, Error>,
) -> Response {
    let query = match query {
        Ok(ApiQuery(query)) => query,
        Err(error) => return error.into_response(),
    };
    let callback = match query.callback.as_deref().map(jsonp::valid_callback) {
        Some(Some(name)) => Some(name.to_owned()),
        Some(None) => return jsonp::bad_callback().into_response(),
        None => None,
    };
    let answer = answer(&ctx, auth, &query).await;
    match callback {
        None => match answer {
            Ok(answer) => ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response(),
            Err(error) => error.into_response(),
        },
        Some(callback) => jsonp(&callback, answer),
    }
}

async fn answer(
    ctx: &ApiContext,
    auth: Result<Auth, Error>,
    query: &PollQuery,
) -> Result<PollAnswer, Error> {
    let Auth(principal) = auth?;
    let timeout = match query.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s).min(MAX_TIMEOUT))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    "timeout must be a number of seconds from 0 to 55",
                )
            })?,
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_BATCH);
    let _permit = ctx.limits.acquire(principal, "longpoll")?;
    let mut reader = open_reader(ctx, principal, query.cursor.as_deref()).await?;
    ctx.presence
        .touch(&principal.inbox(), timeout + PRESENCE_GRACE)
        .await;

    // What is already there is answered at once, whatever the timeout; only then park.
    let mut events = reader.available(limit).await?;
    if events.is_empty() {
        let mut shutdown = ctx.shutdown.clone();
        events = tokio::select! {
            events = reader.next(limit) => events?,
            _ = tokio::time::sleep(timeout) => Vec::new(),
            _ = shutdown.recv() => Vec::new(),
        };
    }
    metrics::counter!("events_delivered_total", "transport" => "longpoll")
        .increment(events.len() as u64);
    Ok(PollAnswer {
        cursor: reader.cursor(),
        events,
    })
}

fn jsonp(callback: &str, answer: Result<PollAnswer, Error>) -> Response {
    let json = match answer {
        Ok(answer) => serde_json::to_string(&answer).unwrap_or_else(|_| "null".to_owned()),
        Err(error) => jsonp::error_json(&error),
    };
    jsonp::script(callback, &json)
}
