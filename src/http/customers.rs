//! Customers: guests who write to companies, and `GET /v1/me` for whoever is calling.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ErrorBody,
    extractor::{ApiJson, Auth},
    ApiContext, Result,
};
use crate::{
    domain::{validate, Principal},
    store::NewCustomer,
    views::{CustomerView, OperatorView},
};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create_customer))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
struct NewCustomerBody {
    name: String,
    city: Option<String>,
    /// IANA time zone of the customer's browser, e.g. `Europe/Moscow`.
    timezone: Option<String>,
    /// Where notifications go when the customer is away.
    email: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct CreatedCustomer {
    id: i64,
    /// The customer's access token; keep it, it is the only way back into the conversations.
    token: String,
    customer: CustomerView,
}

/// Register a guest customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = NewCustomerBody,
    responses((status = 201, body = CreatedCustomer), (status = 400, body = ErrorBody)))]
async fn create_customer(
    State(ctx): State<ApiContext>,
    ApiJson(body): ApiJson<NewCustomerBody>,
) -> Result<(StatusCode, Json<CreatedCustomer>)> {
    let new = NewCustomer {
        name: validate::required_text("name", &body.name, validate::MAX_NAME_CHARS)?,
        city: validate::optional_text("city", body.city.as_deref(), validate::MAX_CITY_CHARS)?,
        timezone: validate::optional_timezone("timezone", body.timezone.as_deref())?,
        email: body
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(|e| validate::email("email", e))
            .transpose()?,
    };
    let row = ctx.store.create_customer(&new).await?;
    let now = chrono::Utc::now();
    let token = ctx
        .tokens
        .issue(Principal::Customer { id: row.id }, now.timestamp());
    Ok((
        StatusCode::CREATED,
        Json(CreatedCustomer {
            id: row.id,
            token,
            customer: CustomerView::new(&row, now),
        }),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Me {
    Customer(CustomerView),
    Operator(OperatorView),
}

/// Who the access token belongs to.
#[utoipa::path(get, path = "/v1/me", tag = "customers",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(ctx): State<ApiContext>, Auth(principal): Auth) -> Result<Json<Me>> {
    Ok(Json(match principal {
        Principal::Customer { id } => Me::Customer(CustomerView::new(
            &ctx.store.customer(id).await?,
            chrono::Utc::now(),
        )),
        Principal::Operator { id } => {
            let operator = ctx.store.operator(id).await?;
            let scope = ctx.store.operator_scope(id).await?;
            Me::Operator(OperatorView::new(&operator, scope.branch_ids))
        }
    }))
}
