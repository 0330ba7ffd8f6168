//! Operations endpoints answer, and the web client is served.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, TestBackend};

crate::on_both_backends!(
    health_readiness_metrics_and_openapi,
    web_client_is_served_gzipped_but_streams_are_not
);

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
        "/v1/jsonp",
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

async fn web_client_is_served_gzipped_but_streams_are_not(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let customer = app.create_customer("Vera", "Kazan", "Europe/Moscow").await;
    let get = |path: String| {
        app.client
            .get(app.url(&path))
            .header("accept-encoding", "gzip")
            .send()
    };
    for (path, kind, needle) in [
        ("/", "text/html", "widget.js"),
        ("/widget", "text/html", "widget.js"),
        ("/console", "text/html", "console.js"),
        ("/switchboard.js", "text/javascript", ""),
        ("/widget.js", "text/javascript", ""),
        ("/switchboard.css", "text/css", ""),
    ] {
        let response = get(path.to_owned()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(headers["content-encoding"], "gzip", "{path}");
        let mut text = String::new();
        let bytes = response.bytes().await.unwrap();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .unwrap();
        assert!(text.contains(needle), "{path}");
    }
    let missing = get("/no-such-file.js".to_owned()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Event streams and polls stay uncompressed, so no proxy or browser buffers them.
    for path in [
        format!("/v1/events?timeout=0&access_token={}", customer.token),
        format!(
            "/v1/events?timeout=0&callback=cb&access_token={}",
            customer.token
        ),
    ] {
        let response = get(path.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            !response.headers().contains_key("content-encoding"),
            "{path}"
        );
    }
    let mut stream = app
        .client
        .get(app.url(&format!(
            "/v1/events/stream?access_token={}",
            customer.token
        )))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(!stream.headers().contains_key("content-encoding"));
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
        .await
        .expect("the stream starts at once")
        .unwrap()
        .unwrap();
    assert!(
        std::str::from_utf8(&first).unwrap().starts_with("retry:") || first.starts_with(b":"),
        "{first:?}"
    );
}
