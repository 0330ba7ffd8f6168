//! Conversations and messages: open a chat (or several at once), list chats with unread
//! counts and local times, page through history, post, and mark as read.

use std::collections::BTreeSet;

use axum::{
    extract::State,
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ErrorBody, ErrorDetail},
    extractor::{ApiJson, ApiPath, ApiQuery, Auth},
    ApiContext, Error, Result,
};
use crate::{
    bus::EphemeralEvent,
    domain::{can_access, validate, OperatorScope, Principal},
    store::{
        ConversationFilter, ConversationRow, NewMessage, OpenConversation, Opened, Parties,
        ReadReceipt,
    },
    views::{ConversationView, MessageView},
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(open_conversation, list_conversations))
        .routes(routes!(open_many))
        .routes(routes!(get_conversation))
        .routes(routes!(history, post_message))
        .routes(routes!(mark_read))
        .routes(routes!(typing))
}

/// Marks an answer that repeats an earlier one because the `client_msg_id` was seen before.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Deserialize, ToSchema)]
struct OpenBody {
    company_id: i64,
    branch_id: Option<i64>,
    text: String,
    /// Makes the send safe to retry: the same id returns the original message.
    client_msg_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct OpenedView {
    conversation: ConversationView,
    message: MessageView,
    /// False when the customer already had a conversation with this company.
    created: bool,
}

fn opened_view(opened: &Opened) -> OpenedView {
    OpenedView {
        conversation: ConversationView::for_side(
            &opened.conversation,
            crate::domain::Side::Customer,
            chrono::Utc::now(),
        ),
        message: MessageView::from(&opened.posted.message),
        created: opened.created,
    }
}

fn customer_id(principal: Principal) -> Result<i64> {
    match principal {
        Principal::Customer { id } => Ok(id),
        Principal::Operator { .. } => {
            Err(Error::Forbidden("only customers can start conversations"))
        }
    }
}

/// Start a chat with a company (or continue the existing one) with a first message.
#[utoipa::path(post, path = "/v1/conversations", tag = "conversations", request_body = OpenBody,
    responses((status = 201, body = OpenedView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn open_conversation(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<OpenBody>,
) -> Result<Response> {
    let customer_id = customer_id(principal)?;
    let open = OpenConversation {
        customer_id,
        company_id: body.company_id,
        branch_id: body.branch_id,
        text: validate::message_text(&body.text, ctx.config.max_message_chars)?,
        client_msg_id: validate::client_msg_id(body.client_msg_id.as_deref())?,
    };
    let mut opened = ctx.store.open_conversation(&open).await?;
    after_write(&ctx, std::mem::take(&mut opened.posted.events)).await;
    let mut response = (StatusCode::CREATED, Json(opened_view(&opened))).into_response();
    if opened.posted.replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
struct OpenManyBody {
    company_ids: Vec<i64>,
    text: String,
    /// Makes the whole batch safe to retry.
    client_msg_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct OpenManyResult {
    company_id: i64,
    /// The HTTP status this company's part would have had on its own.
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<ConversationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<MessageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize, ToSchema)]
struct OpenManyView {
    results: Vec<OpenManyResult>,
}

/// "Ask several companies at once": the same first message to each company, each in its own
/// conversation. One company refusing does not stop the others; each result says how it went.
#[utoipa::path(post, path = "/v1/conversations/batch", tag = "conversations", request_body = OpenManyBody,
    responses((status = 200, body = OpenManyView), (status = 400, body = ErrorBody)))]
async fn open_many(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<OpenManyBody>,
) -> Result<Json<OpenManyView>> {
    let customer_id = customer_id(principal)?;
    let text = validate::message_text(&body.text, ctx.config.max_message_chars)?;
    let client_msg_id = validate::client_msg_id(body.client_msg_id.as_deref())?;
    let company_ids: BTreeSet<i64> = body.company_ids.iter().copied().collect();
    let max = ctx.config.max_batch_companies;
    if company_ids.is_empty() || company_ids.len() > max {
        return Err(Error::bad_request(
            "invalid_input",
            format!("company_ids: name 1 to {max} different companies"),
        ));
    }
    let mut results = Vec::with_capacity(company_ids.len());
    for company_id in company_ids {
        let open = OpenConversation {
            customer_id,
            company_id,
            branch_id: None,
            text: text.clone(),
            // One key per company, so a retried batch repeats nothing anywhere.
            client_msg_id: client_msg_id
                .as_ref()
                .map(|id| format!("{id}@{company_id}")),
        };
        let result = match ctx
            .store
            .open_conversation(&open)
            .await
            .map_err(Error::from)
        {
            Ok(mut opened) => {
                after_write(&ctx, std::mem::take(&mut opened.posted.events)).await;
                let view = opened_view(&opened);
                OpenManyResult {
                    company_id,
                    status: StatusCode::CREATED.as_u16(),
                    conversation: Some(view.conversation),
                    message: Some(view.message),
                    error: None,
                }
            }
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(error) => OpenManyResult {
                company_id,
                status: error.status_code().as_u16(),
                conversation: None,
                message: None,
                error: Some(ErrorDetail {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                }),
            },
        };
        results.push(result);
    }
    Ok(Json(OpenManyView { results }))
}

#[derive(Deserialize, IntoParams)]
struct ListQuery {
    /// Operators only: just this branch's conversations.
    branch_id: Option<i64>,
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct ConversationList {
    conversations: Vec<ConversationView>,
    /// Unread messages across the listed conversations.
    unread_total: i64,
}

/// The caller's conversations. Customers: newest first. Operators: the longest-waiting
/// unanswered first, each showing the client's city and local time.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", params(ListQuery),
    responses((status = 200, body = ConversationList), (status = 401, body = ErrorBody)))]
async fn list_conversations(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ConversationList>> {
    let scope = operator_scope(&ctx, principal).await?;
    let filter = ConversationFilter {
        branch_id: query.branch_id,
        limit: query.limit.unwrap_or(100).clamp(1, 500),
    };
    let rows = ctx
        .store
        .conversations_for(principal, scope.as_ref(), &filter)
        .await?;
    let now = chrono::Utc::now();
    let conversations: Vec<ConversationView> = rows
        .iter()
        .map(|row| ConversationView::for_side(row, principal.side(), now))
        .collect();
    let unread_total = conversations.iter().filter_map(|c| c.unread_count).sum();
    Ok(Json(ConversationList {
        conversations,
        unread_total,
    }))
}

async fn operator_scope(ctx: &ApiContext, principal: Principal) -> Result<Option<OperatorScope>> {
    match principal {
        Principal::Customer { .. } => Ok(None),
        Principal::Operator { id } => Ok(Some(ctx.store.operator_scope(id).await.map_err(
            |e| match e {
                crate::store::StoreError::NotFound => Error::Unauthorized,
                other => other.into(),
            },
        )?)),
    }
}

/// The conversation, if the caller may see it; otherwise 404, exactly like a missing one.
async fn visible_conversation(
    ctx: &ApiContext,
    principal: Principal,
    id: i64,
) -> Result<ConversationRow> {
    let scope = operator_scope(ctx, principal).await?;
    let row = ctx.store.conversation(id).await?;
    if can_access(
        principal,
        scope.as_ref(),
        row.customer_id,
        row.company_id,
        row.branch_id,
    ) {
        Ok(row)
    } else {
        Err(Error::NotFound)
    }
}

/// One conversation as the caller sees it.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ConversationView>> {
    let row = visible_conversation(&ctx, principal, id).await?;
    Ok(Json(ConversationView::for_side(
        &row,
        principal.side(),
        chrono::Utc::now(),
    )))
}

#[derive(Deserialize, IntoParams)]
struct HistoryQuery {
    /// Only messages older than this message id (the last page's oldest).
    before: Option<i64>,
    /// Page size (1–100, default 50).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct MessagePage {
    /// Newest first.
    messages: Vec<MessageView>,
    /// More older messages exist; ask again with `before` = the last id here.
    has_more: bool,
}

/// Message history, newest first, in pages.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations", params(HistoryQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = ErrorBody)))]
async fn history(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<MessagePage>> {
    visible_conversation(&ctx, principal, id).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let mut rows = ctx.store.history(id, query.before, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(Json(MessagePage {
        messages: rows.iter().map(MessageView::from).collect(),
        has_more,
    }))
}

#[derive(Deserialize, ToSchema)]
struct PostBody {
    text: String,
    /// Makes the send safe to retry: the same id returns the original message.
    client_msg_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct PostedView {
    message: MessageView,
}

/// Send a message. Idempotent on `client_msg_id`: a retry answers with the original message
/// and the `Idempotent-Replayed: true` header.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "conversations", request_body = PostBody,
    responses((status = 201, body = PostedView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn post_message(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PostBody>,
) -> Result<Response> {
    let posted = send_message(
        &ctx,
        principal,
        id,
        &body.text,
        body.client_msg_id.as_deref(),
    )
    .await?;
    metrics::counter!("messages_posted_total", "side" => principal.side().as_str()).increment(1);
    let mut response = (
        StatusCode::CREATED,
        Json(PostedView {
            message: MessageView::from(&posted.message),
        }),
    )
        .into_response();
    if posted.replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// After a message committed: wake its recipients on every node, and the notification worker.
async fn after_write(
    ctx: &ApiContext,
    events: Vec<(crate::domain::InboxKey, crate::store::StoredEvent)>,
) {
    ctx.hub.publish_events(events).await;
    ctx.notify_wake.notify_one();
}

/// Validate, authorize and store a message, then wake its recipients on every node. Shared by
/// the REST endpoint and the WebSocket transport.
pub(crate) async fn send_message(
    ctx: &ApiContext,
    principal: Principal,
    conversation_id: i64,
    text: &str,
    client_msg_id: Option<&str>,
) -> Result<crate::store::Posted> {
    let new = NewMessage {
        conversation_id,
        sender_side: principal.side(),
        sender_id: principal.id(),
        text: validate::message_text(text, ctx.config.max_message_chars)?,
        client_msg_id: validate::client_msg_id(client_msg_id)?,
    };
    let scope = operator_scope(ctx, principal).await?;
    let may_post = |(customer_id, company_id, branch_id): Parties| {
        can_access(
            principal,
            scope.as_ref(),
            customer_id,
            company_id,
            branch_id,
        )
    };
    let mut posted = ctx.store.post_message(&new, &may_post).await?;
    after_write(ctx, std::mem::take(&mut posted.events)).await;
    Ok(posted)
}

/// Tell the other side (and the sender's other tabs) that someone is typing. Not stored.
pub(crate) async fn send_typing(
    ctx: &ApiContext,
    principal: Principal,
    conversation_id: i64,
) -> Result<()> {
    let row = visible_conversation(ctx, principal, conversation_id).await?;
    let inboxes = ctx.store.participant_inboxes(row.parties()).await?;
    let event = EphemeralEvent {
        event_type: "typing".to_owned(),
        data: serde_json::json!({
            "conversation_id": conversation_id,
            "side": principal.side(),
            "id": principal.id(),
        }),
    };
    ctx.hub.publish_ephemeral(&inboxes, event).await;
    Ok(())
}

/// "I am typing": an ephemeral `typing` event for the conversation's participants.
#[utoipa::path(post, path = "/v1/conversations/{id}/typing", tag = "conversations",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn typing(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode> {
    send_typing(&ctx, principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct ReadBody {
    up_to_message_id: i64,
}

/// Read receipt: the caller's side has read everything up to this message.
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "conversations", request_body = ReadBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<StatusCode> {
    visible_conversation(&ctx, principal, id).await?;
    let receipt = ReadReceipt {
        conversation_id: id,
        side: principal.side(),
        reader_id: principal.id(),
        up_to_message_id: body.up_to_message_id,
    };
    let events = ctx.store.mark_read(&receipt).await?;
    ctx.hub.publish_events(events).await;
    Ok(StatusCode::NO_CONTENT)
}
