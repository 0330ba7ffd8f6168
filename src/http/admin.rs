//! Administration behind the admin token: companies, branches, operators.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ErrorBody,
    extractor::{AdminAuth, ApiJson, ApiPath},
    operators::check_new_credentials,
    ApiContext, Error, Result,
};
use crate::{
    auth,
    domain::validate,
    store::{CompanyPatch, NewBranch, NewCompany, NewOperator},
    telemetry::spawn_blocking_with_tracing,
    views::{BranchView, CompanyAdminView, OperatorView},
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create_company))
        .routes(routes!(update_company))
        .routes(routes!(create_branch))
        .routes(routes!(create_operator, list_operators))
}

#[derive(Deserialize, ToSchema)]
struct NewCompanyBody {
    name: String,
    /// Where escalation e-mails go.
    email: String,
    city: Option<String>,
    /// IANA time zone; default UTC.
    timezone: Option<String>,
    /// Default true.
    accepts_messages: Option<bool>,
}

#[derive(Serialize, ToSchema)]
struct CreatedCompany {
    id: i64,
    company: CompanyAdminView,
}

/// Create a company.
#[utoipa::path(post, path = "/v1/admin/companies", tag = "admin", request_body = NewCompanyBody,
    responses((status = 201, body = CreatedCompany), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_company(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiJson(body): ApiJson<NewCompanyBody>,
) -> Result<(StatusCode, Json<CreatedCompany>)> {
    let new = NewCompany {
        name: validate::required_text("name", &body.name, validate::MAX_NAME_CHARS)?,
        email: validate::email("email", &body.email)?,
        city: validate::optional_text("city", body.city.as_deref(), validate::MAX_CITY_CHARS)?,
        timezone: validate::optional_timezone("timezone", body.timezone.as_deref())?
            .unwrap_or_else(|| "UTC".into()),
        accepts_messages: body.accepts_messages.unwrap_or(true),
    };
    let row = ctx.store.create_company(&new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCompany {
            id: row.id,
            company: CompanyAdminView::from(&row),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct CompanyPatchBody {
    name: Option<String>,
    email: Option<String>,
    city: Option<String>,
    timezone: Option<String>,
    accepts_messages: Option<bool>,
}

/// Change a company; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/admin/companies/{id}", tag = "admin", request_body = CompanyPatchBody,
    responses((status = 200, body = CompanyAdminView), (status = 404, body = ErrorBody)))]
async fn update_company(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CompanyPatchBody>,
) -> Result<Json<CompanyAdminView>> {
    let patch = CompanyPatch {
        name: body
            .name
            .as_deref()
            .map(|n| validate::required_text("name", n, validate::MAX_NAME_CHARS))
            .transpose()?,
        email: body
            .email
            .as_deref()
            .map(|e| validate::email("email", e))
            .transpose()?,
        city: validate::optional_text("city", body.city.as_deref(), validate::MAX_CITY_CHARS)?,
        timezone: validate::optional_timezone("timezone", body.timezone.as_deref())?,
        accepts_messages: body.accepts_messages,
    };
    let row = ctx.store.update_company(id, &patch).await?;
    Ok(Json(CompanyAdminView::from(&row)))
}

#[derive(Deserialize, ToSchema)]
struct NewBranchBody {
    name: String,
    city: String,
    timezone: String,
}

#[derive(Serialize, ToSchema)]
struct CreatedBranch {
    id: i64,
    branch: BranchView,
}

/// Add a branch (its own city, time zone and operators) to a company.
#[utoipa::path(post, path = "/v1/admin/companies/{id}/branches", tag = "admin", request_body = NewBranchBody,
    responses((status = 201, body = CreatedBranch), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_branch(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiPath(company_id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewBranchBody>,
) -> Result<(StatusCode, Json<CreatedBranch>)> {
    let new = NewBranch {
        name: validate::required_text("name", &body.name, validate::MAX_NAME_CHARS)?,
        city: validate::required_text("city", &body.city, validate::MAX_CITY_CHARS)?,
        timezone: validate::timezone("timezone", &body.timezone)?,
    };
    let row = ctx.store.create_branch(company_id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedBranch {
            id: row.id,
            branch: BranchView::new(&row, chrono::Utc::now()),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct NewOperatorBody {
    name: String,
    email: String,
    password: String,
    /// Branches the operator handles; empty or absent = the whole company.
    #[serde(default)]
    branch_ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
struct CreatedOperator {
    id: i64,
    operator: OperatorView,
}

/// Create an operator account for a company.
#[utoipa::path(post, path = "/v1/admin/companies/{id}/operators", tag = "admin", request_body = NewOperatorBody,
    responses((status = 201, body = CreatedOperator), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_operator(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiPath(company_id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewOperatorBody>,
) -> Result<(StatusCode, Json<CreatedOperator>)> {
    let name = validate::required_text("name", &body.name, validate::MAX_NAME_CHARS)?;
    let email = check_new_credentials(&body.email, &body.password)?;
    let password = body.password;
    let password_hash = spawn_blocking_with_tracing(move || auth::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("password hashing panicked: {e}")))??;
    let mut branch_ids = body.branch_ids;
    branch_ids.sort_unstable();
    branch_ids.dedup();
    let new = NewOperator {
        name,
        email,
        password_hash,
        branch_ids: branch_ids.clone(),
    };
    let row = ctx.store.create_operator(company_id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOperator {
            id: row.id,
            operator: OperatorView::new(&row, branch_ids),
        }),
    ))
}

#[derive(Serialize, ToSchema)]
struct OperatorList {
    operators: Vec<OperatorView>,
}

/// A company's operators.
#[utoipa::path(get, path = "/v1/admin/companies/{id}/operators", tag = "admin",
    responses((status = 200, body = OperatorList), (status = 404, body = ErrorBody)))]
async fn list_operators(
    State(ctx): State<ApiContext>,
    _: AdminAuth,
    ApiPath(company_id): ApiPath<i64>,
) -> Result<Json<OperatorList>> {
    ctx.store.company(company_id).await?;
    let mut operators = Vec::new();
    for row in ctx.store.operators_of(company_id).await? {
        let scope = ctx.store.operator_scope(row.id).await?;
        operators.push(OperatorView::new(&row, scope.branch_ids));
    }
    Ok(Json(OperatorList { operators }))
}
