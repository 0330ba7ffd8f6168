//! Operators: console login, and switching their company's messaging on or off.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ErrorBody,
    extractor::{ApiJson, Auth},
    ApiContext, Error, Result,
};
use crate::{
    auth,
    domain::{validate, Principal},
    store::CompanyPatch,
    telemetry::spawn_blocking_with_tracing,
    views::{CompanyAdminView, OperatorView},
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(update_own_company))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct LoggedIn {
    id: i64,
    token: String,
    operator: OperatorView,
}

/// Log an operator in with e-mail and password.
#[utoipa::path(post, path = "/v1/operators/login", tag = "operators", request_body = LoginBody,
    responses((status = 200, body = LoggedIn), (status = 401, body = ErrorBody)))]
async fn login(
    State(ctx): State<ApiContext>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoggedIn>> {
    let email = body.email.trim().to_lowercase();
    let credentials = ctx.store.operator_credentials(&email).await?;
    // Verify against a dummy hash when the e-mail is unknown, so both failures take as long.
    let (operator_id, hash) = match credentials {
        Some(c) => (Some(c.id), c.password_hash),
        None => (None, auth::dummy_hash().to_owned()),
    };
    let password = body.password;
    let valid = spawn_blocking_with_tracing(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("password check panicked: {e}")))?;
    let Some(id) = operator_id.filter(|_| valid) else {
        return Err(Error::InvalidCredentials);
    };
    let operator = ctx.store.operator(id).await?;
    let scope = ctx.store.operator_scope(id).await?;
    let token = ctx
        .tokens
        .issue(Principal::Operator { id }, chrono::Utc::now().timestamp());
    Ok(Json(LoggedIn {
        id,
        token,
        operator: OperatorView::new(&operator, scope.branch_ids),
    }))
}

#[derive(Deserialize, ToSchema)]
struct OwnCompanyPatch {
    /// `false` stops new conversations (customers get 409 `messaging_disabled`).
    accepts_messages: bool,
}

/// Let an operator switch their company's messaging on or off.
#[utoipa::path(patch, path = "/v1/company", tag = "operators", request_body = OwnCompanyPatch,
    responses((status = 200, body = CompanyAdminView), (status = 403, body = ErrorBody)))]
async fn update_own_company(
    State(ctx): State<ApiContext>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<OwnCompanyPatch>,
) -> Result<Json<CompanyAdminView>> {
    let Principal::Operator { id } = principal else {
        return Err(Error::Forbidden("only operators can change their company"));
    };
    let scope = ctx.store.operator_scope(id).await?;
    if !scope.branch_ids.is_empty() {
        return Err(Error::Forbidden(
            "branch operators cannot change company-wide settings",
        ));
    }
    let patch = CompanyPatch {
        accepts_messages: Some(body.accepts_messages),
        ..Default::default()
    };
    let company = ctx.store.update_company(scope.company_id, &patch).await?;
    Ok(Json(CompanyAdminView::from(&company)))
}

/// Validate an e-mail and password for a new operator (shared with the admin API and CLI).
pub(crate) fn check_new_credentials(email: &str, password: &str) -> Result<String> {
    validate::password(password)?;
    Ok(validate::email("email", email)?)
}
