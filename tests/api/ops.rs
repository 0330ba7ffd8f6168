//! Operations endpoints answer, and the web client is served.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, TestBackend};

crate::on_both_backends!(health_readiness_metrics_and_openapi);

async fn health_readiness_metrics_and_openapi(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let get = |path: &str| app.client.get(app.url(path)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    assert_eq!(
        get("/readyz").await.unwrap().json::<Value>().await.unwrap()["status"],
        "ready"
    );

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/readyz\""), "{metrics}");

    let openapi: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    for path in [
        "/v1/conversations",
        "/v1/conversations/{id}/messages",
        "/v1/conversations/batch",
        "/v1/admin/companies",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }

    let index = get("/").await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}
