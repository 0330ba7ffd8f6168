//! The HTTP API: one router per resource, merged here with the shared layers (request ids,
//! tracing with redacted query strings, CORS, body limits, metrics) and one `ApiContext`.

/// The one error type and its JSON shape.
pub mod error;
/// Identity, JSON bodies, queries and paths with our errors.
mod extractor;
/// JSONP framing and the `/v1/jsonp` tunnel for script-tag clients.
mod jsonp;

mod admin;
mod companies;
pub(crate) mod conversations;
mod customers;
mod notifications;
mod operators;
mod ops;
/// Long-poll, JSONP, SSE and WebSocket over the inbox feed.
mod transports;

use std::{path::PathBuf, sync::Arc, time::Instant};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::{ServeDir, ServeFile},
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    auth::TokenSigner,
    config::{Config, Secret},
    events::hub::Hub,
    presence::Presence,
    shutdown::Shutdown,
    store::Store,
};

pub use transports::ConnectionLimits;

pub use error::{Error, Result};

/// Everything a handler needs, cloned cheaply into each request. One context instead of one
/// extractor per dependency keeps handler signatures short and the wiring in one place.
#[derive(Clone)]
pub struct ApiContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub tokens: TokenSigner,
    pub admin_token: Arc<Secret>,
    pub metrics: PrometheusHandle,
    /// Where the web client's files are served from.
    pub static_dir: Arc<PathBuf>,
    /// This node's waiters per inbox, fed by the bus.
    pub hub: Hub,
    pub presence: Presence,
    pub limits: Arc<ConnectionLimits>,
    /// Parked polls and open streams end when this fires.
    pub shutdown: Shutdown,
    /// Poked after a message commits, so the notification worker looks at once.
    pub notify_wake: Arc<tokio::sync::Notify>,
    /// Signs and sends Web Push; also knows the VAPID public key browsers subscribe with.
    pub push: crate::notify::push::PushSender,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Customer-to-company messaging API."),
    paths(jsonp::tunnel),
    tags(
        (name = "customers"), (name = "operators"), (name = "companies"),
        (name = "conversations"), (name = "events"), (name = "notifications"), (name = "admin"), (name = "ops")
    )
)]
struct ApiDoc;

/// The whole application as one `Router`, ready to serve.
pub fn api_router(ctx: ApiContext) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(customers::router())
        .merge(operators::router())
        .merge(companies::router())
        .merge(conversations::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(transports::router())
        .merge(notifications::router())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    // The web client's files, gzipped for slow links (a third of the bytes).
    // Only these: event streams must never be compressed (a proxy would buffer them).
    let static_dir = ctx.static_dir.as_path();
    let static_files = ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .service(
            ServeDir::new(static_dir)
                .append_index_html_on_directories(true)
                .not_found_service(axum::routing::any(not_found).with_state(ctx.clone())),
        );
    let page = |file: &str| {
        ServiceBuilder::new()
            .layer(CompressionLayer::new())
            .service(ServeFile::new(static_dir.join(file)))
    };
    let request_id = HeaderName::from_static("x-request-id");

    let api: Router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        // The two pages have short addresses (links in e-mails and pushes point at them).
        .route_service("/console", page("console.html"))
        .route_service("/widget", page("index.html"))
        .fallback_service(static_files)
        .with_state(ctx.clone());
    // The tunnel calls the API router itself, so it sits beside it rather than inside.
    let tunnel = Router::new()
        .route("/v1/jsonp", axum::routing::get(jsonp::tunnel))
        .with_state(api.clone());

    tunnel.merge(api).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .option_layer(cors_layer(&ctx.config.cors_origins))
            .layer(DefaultBodyLimit::max(ctx.config.max_body_bytes))
            .layer(middleware::from_fn(track_metrics)),
    )
}

/// The span every request is logged in. The query string is logged with `access_token`
/// redacted: tokens in URLs are unavoidable for EventSource and JSONP, logging them is not.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        query = %redact_query(request.uri().query()),
        request_id = %request_id,
    )
}

/// The query string with the value of every secret-bearing parameter replaced: tokens, and
/// the JSONP tunnel's `body` (a login's password, a message's text).
pub fn redact_query(query: Option<&str>) -> String {
    const SECRET: [&str; 4] = ["access_token", "token", "body", "sig"];
    let Some(query) = query else {
        return String::new();
    };
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET.iter().any(|s| key.eq_ignore_ascii_case(s)) => {
                format!("{key}=[redacted]")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id")])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// Count requests and time them per route (the matched pattern, so ids do not explode the
/// label set).
async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// JSON 404 for every path nothing else answers.
async fn not_found() -> impl IntoResponse {
    Error::NotFound
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn access_tokens_never_reach_the_log() {
        assert_eq!(
            redact_query(Some("cursor=5&access_token=c.1.2.secret&timeout=25")),
            "cursor=5&access_token=[redacted]&timeout=25"
        );
        assert_eq!(
            redact_query(Some("ACCESS_TOKEN=x")),
            "ACCESS_TOKEN=[redacted]"
        );
        assert_eq!(
            redact_query(Some(
                "callback=cb&method=POST&path=%2Fv1%2Foperators%2Flogin&body=%7B%22password%22%3A%22x%22%7D"
            )),
            "callback=cb&method=POST&path=%2Fv1%2Foperators%2Flogin&body=[redacted]"
        );
        assert_eq!(redact_query(None), "");
    }
}
