//! Operations endpoints: liveness, readiness (the database answers) and Prometheus metrics.

use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{error::ErrorBody, ApiContext, Error, Result};

pub(crate) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
struct Status {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The process can serve: its database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
async fn readyz(State(ctx): State<ApiContext>) -> Result<Json<Status>> {
    match ctx.store.ping().await {
        Ok(()) => Ok(Json(Status { status: "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(Error::Unavailable)
        }
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(ctx): State<ApiContext>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
}
