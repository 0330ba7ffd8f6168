//! Notifications seen from outside: the trail of what the worker did for a conversation
//! (admins), and the unsubscribe link in every e-mail.

use axum::{
    extract::State,
    response::{Html, IntoResponse},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ErrorBody,
    extractor::{AdminAuth, ApiPath, ApiQuery},
    ApiContext, Error, Result,
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(trail))
        .routes(routes!(unsubscribe))
}

#[derive(Serialize, ToSchema)]
struct Step {
    message_id: i64,
    /// `customer` or `company`.
    recipient_kind: String,
    recipient_id: i64,
    /// `first` or `escalation`.
    stage: String,
    /// `browser`, `push`, `email`, or `none` when suppressed.
    channel: String,
    /// `sent`, `suppressed` or `failed`.
    status: String,
    /// The address, or why it was suppressed or failed.
    detail: String,
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
struct Trail {
    steps: Vec<Step>,
}

/// What the notification worker did for a conversation (admin).
#[utoipa::path(get, path = "/v1/conversations/{id}/notifications", tag = "notifications",
    responses((status = 200, body = Trail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn trail(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Trail>> {
    ctx.store.conversation(id).await?;
    let steps = ctx
        .store
        .notification_log(id)
        .await?
        .into_iter()
        .map(|row| Step {
            message_id: row.message_id,
            recipient_kind: row.recipient_kind,
            recipient_id: row.recipient_id,
            stage: row.stage,
            channel: row.channel,
            status: row.status,
            detail: row.detail,
            created_at: row.created_at,
        })
        .collect();
    Ok(Json(Trail { steps }))
}

#[derive(Deserialize, IntoParams)]
struct UnsubscribeQuery {
    /// `customer.<id>` or `company.<id>`, as in the link.
    recipient: String,
    sig: String,
}

/// Stop notification e-mails for the recipient named by a signed link.
#[utoipa::path(get, path = "/v1/notifications/unsubscribe", tag = "notifications", params(UnsubscribeQuery),
    responses((status = 200, content_type = "text/html"), (status = 400, body = ErrorBody)))]
async fn unsubscribe(
    State(ctx): State<ApiContext>,
    ApiQuery(query): ApiQuery<UnsubscribeQuery>,
) -> Result<impl IntoResponse> {
    let invalid = || Error::bad_request("bad_link", "this unsubscribe link is not valid");
    if !ctx
        .tokens
        .verify_signature(&format!("unsubscribe:{}", query.recipient), &query.sig)
    {
        return Err(invalid());
    }
    let (kind, id) = query.recipient.split_once('.').ok_or_else(invalid)?;
    let id: i64 = id.parse().map_err(|_| invalid())?;
    if kind != "customer" && kind != "company" {
        return Err(invalid());
    }
    ctx.store.unsubscribe_email(kind, id).await?;
    Ok(Html(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
         <body style=\"font-family:Arial,sans-serif\"><p>You will get no more notification e-mails.</p></body></html>",
    ))
}
