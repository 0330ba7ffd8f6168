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
    extractor::{AdminAuth, ApiJson, ApiPath, ApiQuery, Auth},
    ApiContext, Error, Result,
};
use crate::{domain::Principal, notify::policy, store::SettingsRow};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(trail))
        .routes(routes!(unsubscribe))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe, unsubscribe_device))
}

#[derive(Serialize, ToSchema)]
struct Step {
    message_id: i64,
    /// `customer` or `company`.
    recipient_kind: String,
    recipient_id: i64,
    /// `first` or `escalation`.
    stage: String,
    /// `browser`, `push`, `email`; `none` when suppressed; `deferred` for quiet hours.
    channel: String,
    /// `sent`, `suppressed`, `failed` or `deferred`.
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

/// Hours `[start, end)` in the recipient's own time zone in which push and e-mail wait.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
struct QuietHours {
    start: u32,
    end: u32,
}

#[derive(Serialize, Deserialize, ToSchema)]
struct NotificationSettings {
    /// E-mail when away.
    email: bool,
    /// Web Push to bound devices when away.
    push: bool,
    /// `null`: no quiet hours.
    quiet_hours: Option<QuietHours>,
}

/// Whose settings the caller manages: a customer their own, a company-wide operator the
/// company's (company notifications go to the company).
async fn recipient(ctx: &ApiContext, principal: Principal) -> Result<(&'static str, i64)> {
    match principal {
        Principal::Customer { id } => Ok(("customer", id)),
        Principal::Operator { id } => {
            let scope = ctx.store.operator_scope(id).await?;
            if !scope.branch_ids.is_empty() {
                return Err(Error::Forbidden(
                    "branch operators cannot change company-wide settings",
                ));
            }
            Ok(("company", scope.company_id))
        }
    }
}

/// The caller's notification settings (the defaults until changed).
#[utoipa::path(get, path = "/v1/notification-settings", tag = "notifications",
    responses((status = 200, body = NotificationSettings), (status = 401, body = ErrorBody)))]
async fn get_settings(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
) -> Result<Json<NotificationSettings>> {
    let (kind, id) = recipient(&ctx, principal).await?;
    let defaults = policy::Settings::default();
    let settings = match ctx.store.notification_settings(kind, id).await? {
        Some(row) => NotificationSettings {
            email: row.email != 0,
            push: row.push != 0,
            quiet_hours: row
                .quiet_start
                .zip(row.quiet_end)
                .map(|(start, end)| QuietHours {
                    start: start as u32,
                    end: end as u32,
                }),
        },
        None => NotificationSettings {
            email: defaults.email,
            push: defaults.push,
            quiet_hours: defaults
                .quiet_hours
                .map(|(start, end)| QuietHours { start, end }),
        },
    };
    Ok(Json(settings))
}

/// Replace the caller's notification settings.
#[utoipa::path(put, path = "/v1/notification-settings", tag = "notifications", request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), (status = 400, body = ErrorBody)))]
async fn put_settings(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<NotificationSettings>,
) -> Result<Json<NotificationSettings>> {
    if let Some(quiet) = body.quiet_hours {
        if quiet.start > 23 || quiet.end > 23 || quiet.start == quiet.end {
            return Err(Error::bad_request(
                "invalid_input",
                "quiet_hours: start and end are different hours from 0 to 23",
            ));
        }
    }
    let (kind, id) = recipient(&ctx, principal).await?;
    let row = SettingsRow {
        email: i64::from(body.email),
        push: i64::from(body.push),
        quiet_start: body.quiet_hours.map(|q| i64::from(q.start)),
        quiet_end: body.quiet_hours.map(|q| i64::from(q.end)),
    };
    ctx.store.save_notification_settings(kind, id, &row).await?;
    Ok(Json(body))
}

#[derive(Serialize, ToSchema)]
struct VapidKey {
    /// Pass as `applicationServerKey` to `pushManager.subscribe` (base64url).
    public_key: String,
}

/// The server's VAPID public key for Web Push subscriptions.
#[utoipa::path(get, path = "/v1/push/vapid-public-key", tag = "notifications", responses((status = 200, body = VapidKey)))]
async fn vapid_public_key(State(ctx): State<ApiContext>) -> Json<VapidKey> {
    Json(VapidKey {
        public_key: ctx.push.public_key(),
    })
}

#[derive(Deserialize, ToSchema)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

/// A `PushSubscription` as the browser serializes it (`subscription.toJSON()`).
#[derive(Deserialize, ToSchema)]
struct PushSubscriptionBody {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Deserialize, ToSchema)]
struct EndpointBody {
    endpoint: String,
}

fn principal_kind(principal: Principal) -> &'static str {
    match principal {
        Principal::Customer { .. } => "customer",
        Principal::Operator { .. } => "operator",
    }
}

/// Bind this browser or device to the caller for Web Push.
#[utoipa::path(post, path = "/v1/push-subscriptions", tag = "notifications", request_body = PushSubscriptionBody,
    responses((status = 201), (status = 400, body = ErrorBody)))]
async fn subscribe(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<PushSubscriptionBody>,
) -> Result<axum::http::StatusCode> {
    let endpoint = url::Url::parse(&body.endpoint)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.host().is_some()
                && body.endpoint.len() <= 2048
        })
        .ok_or_else(|| {
            Error::bad_request(
                "invalid_input",
                "endpoint: must be the push service's https URL",
            )
        })?;
    crate::notify::push::check_subscription_keys(&body.keys.p256dh, &body.keys.auth)
        .map_err(|reason| Error::bad_request("invalid_input", reason))?;
    let row = crate::store::PushSubscriptionRow {
        principal_kind: principal_kind(principal).to_owned(),
        principal_id: principal.id(),
        endpoint: endpoint.to_string(),
        p256dh: body.keys.p256dh.trim_end_matches('=').to_owned(),
        auth: body.keys.auth.trim_end_matches('=').to_owned(),
    };
    ctx.store.add_push_subscription(&row).await?;
    Ok(axum::http::StatusCode::CREATED)
}

/// Unbind a browser or device.
#[utoipa::path(delete, path = "/v1/push-subscriptions", tag = "notifications", request_body = EndpointBody,
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn unsubscribe_device(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<EndpointBody>,
) -> Result<axum::http::StatusCode> {
    let endpoint = url::Url::parse(&body.endpoint)
        .map(|u| u.to_string())
        .unwrap_or(body.endpoint);
    if ctx
        .store
        .remove_push_subscription(&endpoint, Some((principal_kind(principal), principal.id())))
        .await?
    {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound)
    }
}
