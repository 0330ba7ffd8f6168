//! The public company directory: what a customer searches before opening a chat.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ErrorBody,
    extractor::{ApiPath, ApiQuery},
    ApiContext, Result,
};
use crate::views::CompanyView;

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(get_company))
}

#[derive(Deserialize, IntoParams)]
struct SearchQuery {
    /// Part of the company name; empty lists every company.
    #[serde(default)]
    q: String,
    /// At most this many companies (1–100, default 20).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct CompanyList {
    companies: Vec<CompanyView>,
}

/// Search companies by name.
#[utoipa::path(get, path = "/v1/companies", tag = "companies", params(SearchQuery),
    responses((status = 200, body = CompanyList), (status = 400, body = ErrorBody)))]
async fn search(
    State(ctx): State<ApiContext>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<CompanyList>> {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let rows = ctx.store.search_companies(query.q.trim(), limit).await?;
    let now = chrono::Utc::now();
    let mut companies = Vec::with_capacity(rows.len());
    for row in &rows {
        let branches = ctx.store.branches_of(row.id).await?;
        companies.push(CompanyView::new(row, &branches, now));
    }
    Ok(Json(CompanyList { companies }))
}

/// One company with its branches and their local times.
#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies",
    responses((status = 200, body = CompanyView), (status = 404, body = ErrorBody)))]
async fn get_company(
    State(ctx): State<ApiContext>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CompanyView>> {
    let row = ctx.store.company(id).await?;
    let branches = ctx.store.branches_of(id).await?;
    Ok(Json(CompanyView::new(&row, &branches, chrono::Utc::now())))
}
