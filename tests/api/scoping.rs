//! Who sees what: branch operators see their branches only; nobody sees another tenant's chats
//! (404, never data); admin endpoints need the admin token.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::domain::InboxKey;

use crate::helpers::{error_code, spawn_app, TestBackend};

crate::on_both_backends!(
    branch_operators_see_only_their_branches,
    other_tenants_get_404,
    admin_needs_the_admin_token
);

async fn branch_operators_see_only_their_branches(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Chain", "Moscow", "Europe/Moscow").await;
    let north = app
        .create_branch(company, "North", "Murmansk", "Europe/Moscow")
        .await;
    let east = app
        .create_branch(company, "East", "Vladivostok", "Asia/Vladivostok")
        .await;
    let north_op = app
        .create_operator(company, "north@chain.example", &[north])
        .await;
    let east_op = app
        .create_operator(company, "east@chain.example", &[east])
        .await;
    let head_op = app
        .create_operator(company, "head@chain.example", &[])
        .await;
    let customer = app
        .create_customer("Egor", "Murmansk", "Europe/Moscow")
        .await;

    let conversation = app
        .open_conversation(&customer, company, Some(north), "Hello north")
        .await;
    let count = |list: Value| list["conversations"].as_array().unwrap().len();
    assert_eq!(
        count(app.get_json(&north_op.token, "/v1/conversations").await),
        1
    );
    assert_eq!(
        count(app.get_json(&head_op.token, "/v1/conversations").await),
        1
    );
    assert_eq!(
        count(app.get_json(&east_op.token, "/v1/conversations").await),
        0
    );
    // The head office can filter by branch.
    let filtered: Value = app
        .get_json(
            &head_op.token,
            &format!("/v1/conversations?branch_id={east}"),
        )
        .await;
    assert_eq!(count(filtered), 0);

    let path = format!("/v1/conversations/{conversation}");
    assert_eq!(
        app.get(&east_op.token, &path).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_message(&east_op, conversation, "not mine", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_message(&north_op, conversation, "mine", None)
            .await
            .status(),
        StatusCode::CREATED
    );

    assert!(app
        .inbox_events(&InboxKey::operator(east_op.id))
        .await
        .is_empty());
    assert_eq!(
        app.inbox_events(&InboxKey::operator(north_op.id))
            .await
            .len(),
        3
    );
    assert_eq!(
        app.inbox_events(&InboxKey::operator(head_op.id))
            .await
            .len(),
        3
    );

    // A branch operator cannot switch the whole company off.
    let response = app
        .patch(
            &north_op.token,
            "/v1/company",
            json!({"accepts_messages": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn other_tenants_get_404(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mine = app.create_company("Mine", "Moscow", "Europe/Moscow").await;
    let theirs = app
        .create_company("Theirs", "Moscow", "Europe/Moscow")
        .await;
    let their_op = app.create_operator(theirs, "op@theirs.example", &[]).await;
    let alice = app
        .create_customer("Alice", "Moscow", "Europe/Moscow")
        .await;
    let mallory = app
        .create_customer("Mallory", "Moscow", "Europe/Moscow")
        .await;
    let conversation = app.open_conversation(&alice, mine, None, "private").await;
    let message_id = {
        let page: Value = app
            .get_json(
                &alice.token,
                &format!("/v1/conversations/{conversation}/messages"),
            )
            .await;
        page["messages"][0]["id"].as_i64().unwrap()
    };

    for intruder in [&their_op, &mallory] {
        for path in [
            format!("/v1/conversations/{conversation}"),
            format!("/v1/conversations/{conversation}/messages"),
        ] {
            let response = app.get(&intruder.token, &path).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("private"), "no data leaks: {body}");
        }
        assert_eq!(
            app.post_message(intruder, conversation, "hi", None)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        let read = app.mark_read(intruder, conversation, message_id).await;
        assert_eq!(read.status(), StatusCode::NOT_FOUND);
        let list: Value = app.get_json(&intruder.token, "/v1/conversations").await;
        assert_eq!(list["conversations"].as_array().unwrap().len(), 0);
    }
    // A missing conversation answers exactly like a foreign one.
    assert_eq!(
        error_code(app.get(&mallory.token, "/v1/conversations/987654").await).await,
        "not_found"
    );
    // Nothing was written by the intruders.
    let page: Value = app
        .get_json(
            &alice.token,
            &format!("/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
}

async fn admin_needs_the_admin_token(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let customer = app.create_customer("Eve", "Moscow", "Europe/Moscow").await;
    let body = json!({"name": "Evil", "email": "evil@example.com"});
    for token in ["", "wrong-token", customer.token.as_str()] {
        let response = app.post(token, "/v1/admin/companies", body.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(error_code(response).await, "unauthorized");
    }
    let anonymous = app
        .client
        .post(app.url("/v1/admin/companies"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let companies: Value = app.public_json("/v1/companies?q=evil").await;
    assert_eq!(companies["companies"].as_array().unwrap().len(), 0);
}
