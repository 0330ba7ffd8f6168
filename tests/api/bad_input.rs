//! Bad input gets a clear status, a JSON error with a stable code, and changes nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, spawn_app_with, TestBackend, ADMIN_TOKEN};

crate::on_both_backends!(
    bad_requests_are_refused_cleanly,
    oversized_bodies_get_413,
    login_failures_look_alike
);

async fn bad_requests_are_refused_cleanly(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app
        .create_company("Strict", "Moscow", "Europe/Moscow")
        .await;
    let other_company = app.create_company("Other", "Moscow", "Europe/Moscow").await;
    let operator = app.create_operator(company, "op@strict.example", &[]).await;
    let customer = app.create_customer("Ira", "Moscow", "Europe/Moscow").await;
    let conversation = app
        .open_conversation(&customer, company, None, "first")
        .await;
    let other_conversation = app
        .open_conversation(&customer, other_company, None, "elsewhere")
        .await;
    let other_message = {
        let page: Value = app
            .get_json(
                &customer.token,
                &format!("/v1/conversations/{other_conversation}/messages"),
            )
            .await;
        page["messages"][0]["id"].as_i64().unwrap()
    };
    let messages_path = format!("/v1/conversations/{conversation}/messages");
    let too_long = "x".repeat(app.config.max_message_chars + 1);

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        ("empty text", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).json(&json!({"text": "  "})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("text over the limit", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).json(&json!({"text": too_long})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("missing text", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).json(&json!({})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("text of the wrong type", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).json(&json!({"text": 5})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("malformed JSON", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).header("content-type", "application/json").body("{\"text\": "), StatusCode::BAD_REQUEST, "invalid_json"),
        ("wrong content type", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).header("content-type", "application/x-www-form-urlencoded").body("text=hi"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("no content type", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).body("{\"text\":\"hi\"}"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("bad client_msg_id", app.client.post(app.url(&messages_path)).bearer_auth(&customer.token).json(&json!({"text": "hi", "client_msg_id": "has spaces"})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("unknown company", app.client.post(app.url("/v1/conversations")).bearer_auth(&customer.token).json(&json!({"company_id": 424242, "text": "hi"})), StatusCode::BAD_REQUEST, "unknown_company"),
        ("branch of another company", app.client.post(app.url("/v1/conversations")).bearer_auth(&customer.token).json(&json!({"company_id": company, "branch_id": 424242, "text": "hi"})), StatusCode::BAD_REQUEST, "unknown_branch"),
        ("operator opening a chat", app.client.post(app.url("/v1/conversations")).bearer_auth(&operator.token).json(&json!({"company_id": company, "text": "hi"})), StatusCode::FORBIDDEN, "forbidden"),
        ("read of a foreign message", app.client.post(app.url(&format!("/v1/conversations/{conversation}/read"))).bearer_auth(&customer.token).json(&json!({"up_to_message_id": other_message})), StatusCode::BAD_REQUEST, "unknown_message"),
        ("no token", app.client.post(app.url(&messages_path)).json(&json!({"text": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        ("forged token", app.client.post(app.url(&messages_path)).bearer_auth(customer.token.replace("c.", "o.")).json(&json!({"text": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        ("non-numeric id", app.client.get(app.url("/v1/conversations/abc")).bearer_auth(&customer.token), StatusCode::NOT_FOUND, "not_found"),
        ("bad query", app.client.get(app.url(&format!("{messages_path}?limit=many"))).bearer_auth(&customer.token), StatusCode::BAD_REQUEST, "invalid_query"),
        ("unknown route", app.client.get(app.url("/v1/nothing-here")), StatusCode::NOT_FOUND, "not_found"),
        ("bad customer time zone", app.client.post(app.url("/v1/customers")).json(&json!({"name": "X", "timezone": "Mars/Base"})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("empty customer name", app.client.post(app.url("/v1/customers")).json(&json!({"name": ""})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("bad company e-mail", app.client.post(app.url("/v1/admin/companies")).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "X", "email": "nope"})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("short operator password", app.client.post(app.url(&format!("/v1/admin/companies/{company}/operators"))).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "X", "email": "x@strict.example", "password": "short"})), StatusCode::BAD_REQUEST, "invalid_input"),
        ("duplicate operator e-mail", app.client.post(app.url(&format!("/v1/admin/companies/{company}/operators"))).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "X", "email": "OP@strict.example", "password": "long-enough"})), StatusCode::CONFLICT, "email_taken"),
        ("operator in a foreign branch", app.client.post(app.url(&format!("/v1/admin/companies/{company}/operators"))).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "X", "email": "y@strict.example", "password": "long-enough", "branch_ids": [777]})), StatusCode::BAD_REQUEST, "unknown_branch"),
        ("branch of an unknown company", app.client.post(app.url("/v1/admin/companies/31337/branches")).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "B", "city": "C", "timezone": "UTC"})), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (what, request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{what}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}: errors are JSON"
        );
        assert_eq!(error_code(response).await, code, "{what}");
    }

    // None of it wrote anything.
    let page: Value = app.get_json(&customer.token, &messages_path).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    let operators: Value = app
        .get_json(
            ADMIN_TOKEN,
            &format!("/v1/admin/companies/{company}/operators"),
        )
        .await;
    assert_eq!(operators["operators"].as_array().unwrap().len(), 1);
}

async fn oversized_bodies_get_413(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.max_body_bytes = 1024).await else {
        return;
    };
    let company = app.create_company("Small", "Moscow", "Europe/Moscow").await;
    let customer = app.create_customer("Big", "Moscow", "Europe/Moscow").await;
    let conversation = app.open_conversation(&customer, company, None, "hi").await;
    let response = app
        .post_message(&customer, conversation, &"y".repeat(5000), None)
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "payload_too_large");
    // Chunked (no Content-Length) is cut off the same way.
    let stream = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512])));
    let response = app
        .client
        .post(app.url(&format!("/v1/conversations/{conversation}/messages")))
        .bearer_auth(&customer.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page: Value = app
        .get_json(
            &customer.token,
            &format!("/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
}

async fn login_failures_look_alike(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Locks", "Moscow", "Europe/Moscow").await;
    app.create_operator(company, "real@locks.example", &[])
        .await;
    for (email, password) in [
        ("real@locks.example", "wrong-password"),
        ("nobody@locks.example", "operator-password"),
    ] {
        let response = app
            .client
            .post(app.url("/v1/operators/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(response).await, "invalid_credentials");
    }
    // E-mail matching ignores case and surrounding spaces.
    let response = app
        .client
        .post(app.url("/v1/operators/login"))
        .json(&json!({"email": " REAL@locks.example ", "password": "operator-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
