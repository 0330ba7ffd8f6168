//! WebSocket: `GET /v1/ws?cursor=N` (cargo feature `websocket`). Server → client: every event
//! as a JSON text frame, the same objects the long-poll answer lists. Client → server:
//! `{"type":"send","conversation_id":…,"text":…,"client_msg_id":…}` answered by
//! `{"type":"ack",…,"message":…}` or `{"type":"error",…}`, and
//! `{"type":"typing","conversation_id":…}`. The server pings every 15 s; a client that stops
//! answering is dropped and resumes from its cursor on reconnect.

use std::time::Duration;

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{open_reader, ConnectionPermit, MAX_BATCH};
use crate::{
    domain::Principal,
    events::feed::Reader,
    http::{
        conversations::{send_message, send_typing},
        error::ErrorBody,
        extractor::{ApiQuery, Auth},
        ApiContext, Error,
    },
    views::MessageView,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

const PING_EVERY: Duration = Duration::from_secs(15);
const PRESENCE_TTL: Duration = Duration::from_secs(40);
/// Frames the client may leave unread before it counts as gone.
const OUTBOX: usize = 64;

#[derive(Deserialize, IntoParams)]
struct WsQuery {
    /// Resume after this seq; absent = the head.
    cursor: Option<String>,
}

/// Upgrade to a WebSocket carrying the caller's inbox both ways.
#[utoipa::path(get, path = "/v1/ws", tag = "events", params(WsQuery),
    responses((status = 101), (status = 400, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn upgrade(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, Error> {
    // Cursor and cap are checked before the upgrade, so the client gets a real HTTP error.
    let permit = ctx.limits.acquire(principal, "ws")?;
    let reader = open_reader(&ctx, principal, query.cursor.as_deref()).await?;
    Ok(ws.on_upgrade(move |socket| session(ctx, principal, reader, permit, socket)))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Send {
        conversation_id: i64,
        text: String,
        client_msg_id: Option<String>,
    },
    Typing {
        conversation_id: i64,
    },
}

async fn session(
    ctx: ApiContext,
    principal: Principal,
    mut reader: Reader,
    _permit: ConnectionPermit,
    socket: WebSocket,
) {
    let (mut sink, mut stream) = socket.split();
    // Replies from the receive side go through the send side, so frames never interleave.
    let (replies, mut outbox) = tokio::sync::mpsc::channel::<String>(OUTBOX);
    let inbox = principal.inbox();
    let mut shutdown = ctx.shutdown.clone();

    let receive_ctx = ctx.clone();
    let mut receive = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => break,
                _ => continue,
            };
            let reply = handle_frame(&receive_ctx, principal, text.as_str()).await;
            if let Some(reply) = reply {
                if replies.send(reply).await.is_err() {
                    break;
                }
            }
        }
    });

    ctx.presence.touch(&inbox, PRESENCE_TTL).await;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            items = reader.next(MAX_BATCH) => {
                let Ok(items) = items else { break };
                metrics::counter!("events_delivered_total", "transport" => "ws").increment(items.len() as u64);
                let mut failed = false;
                for item in &items {
                    if sink.send(Message::Text(item.json().into())).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    break;
                }
            }
            Some(reply) = outbox.recv() => {
                if sink.send(Message::Text(reply.into())).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                ctx.presence.touch(&inbox, PRESENCE_TTL).await;
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            _ = &mut receive => break,
            _ = shutdown.recv() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    receive.abort();
}

/// Act on one client frame; the reply to send back, if any.
async fn handle_frame(ctx: &ApiContext, principal: Principal, text: &str) -> Option<String> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            return Some(json!({"type": "error", "error": {"code": "invalid_frame", "message": error.to_string()}}).to_string())
        }
    };
    match frame {
        ClientFrame::Send {
            conversation_id,
            text,
            client_msg_id,
        } => {
            let reply = match send_message(
                ctx,
                principal,
                conversation_id,
                &text,
                client_msg_id.as_deref(),
            )
            .await
            {
                Ok(posted) => json!({
                    "type": "ack",
                    "client_msg_id": client_msg_id,
                    "replayed": posted.replayed,
                    "message": MessageView::from(&posted.message),
                }),
                Err(error) => error_frame(client_msg_id, error),
            };
            Some(reply.to_string())
        }
        ClientFrame::Typing { conversation_id } => {
            match send_typing(ctx, principal, conversation_id).await {
                Ok(()) => None,
                Err(error) => Some(error_frame(None, error).to_string()),
            }
        }
    }
}

fn error_frame(client_msg_id: Option<String>, error: Error) -> serde_json::Value {
    if let Error::Internal(e) = &error {
        tracing::error!(error = format!("{e:#}"), "websocket request failed");
    }
    let message = if matches!(error, Error::Internal(_)) {
        "something went wrong on our side; please retry".to_owned()
    } else {
        error.to_string()
    };
    json!({"type": "error", "client_msg_id": client_msg_id, "error": {"code": error.code(), "message": message}})
}
