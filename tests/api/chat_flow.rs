//! The whole chat: customer → company → operator reply → read receipt, idempotent retries,
//! asking several companies at once, opting out, history pages.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::domain::InboxKey;

use crate::helpers::{error_code, spawn_app, TestBackend};

crate::on_both_backends!(
    customer_and_operator_chat_with_read_receipts,
    retried_send_returns_the_original_message,
    ask_several_companies_at_once,
    opted_out_company_refuses_new_conversations,
    history_pages_newest_first,
    reopening_a_chat_continues_the_same_conversation,
);

async fn customer_and_operator_chat_with_read_receipts(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app
        .create_company("Roastery", "Novosibirsk", "Asia/Novosibirsk")
        .await;
    let operator = app
        .create_operator(company, "anna@roastery.example", &[])
        .await;
    let customer = app.create_customer("Ivan", "Moscow", "Europe/Moscow").await;

    // The customer writes first.
    let response = app
        .post(
            &customer.token,
            "/v1/conversations",
            json!({"company_id": company, "text": "Do you have decaf?"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let opened: Value = response.json().await.unwrap();
    assert_eq!(opened["created"], true);
    let conversation_id = opened["conversation"]["id"].as_i64().unwrap();
    assert_eq!(opened["message"]["text"], "Do you have decaf?");
    assert_eq!(opened["message"]["sender"]["side"], "customer");
    // The customer sees the company's city and local time.
    assert_eq!(opened["conversation"]["other_side"]["city"], "Novosibirsk");
    assert_eq!(
        opened["conversation"]["other_side"]["utc_offset_minutes"],
        420
    );
    assert!(opened["conversation"]["other_side"]["local_time"]
        .as_str()
        .unwrap()
        .contains(':'));

    // The operator sees the chat, unread, with the client's city and local time.
    let list: Value = app.get_json(&operator.token, "/v1/conversations").await;
    let seen = &list["conversations"][0];
    assert_eq!(seen["id"], conversation_id);
    assert_eq!(seen["unread_count"], 1);
    assert_eq!(list["unread_total"], 1);
    assert_eq!(seen["other_side"]["name"], "Ivan");
    assert_eq!(seen["other_side"]["city"], "Moscow");
    assert_eq!(seen["other_side"]["timezone"], "Europe/Moscow");
    assert_eq!(seen["other_side"]["utc_offset_minutes"], 180);
    assert!(seen["awaiting_reply_since"].is_i64());

    // The operator replies; the chat is no longer waiting for a reply.
    let reply = app
        .post_message(&operator, conversation_id, "Yes, Colombian decaf.", None)
        .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply: Value = reply.json().await.unwrap();
    let reply_id = reply["message"]["id"].as_i64().unwrap();
    assert_eq!(reply["message"]["sender"]["side"], "company");
    assert_eq!(
        reply["message"]["sender"]["name"],
        "Operator anna@roastery.example"
    );
    let seen: Value = app
        .get_json(
            &operator.token,
            &format!("/v1/conversations/{conversation_id}"),
        )
        .await;
    assert!(seen["awaiting_reply_since"].is_null());

    // The customer has one unread message, reads it, and the count drops to zero.
    let mine: Value = app.get_json(&customer.token, "/v1/conversations").await;
    assert_eq!(mine["conversations"][0]["unread_count"], 1);
    let read = app.mark_read(&customer, conversation_id, reply_id).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let mine: Value = app.get_json(&customer.token, "/v1/conversations").await;
    assert_eq!(mine["conversations"][0]["unread_count"], 0);

    // The operator's view shows the customer has read the reply ("read" ticks).
    let seen: Value = app
        .get_json(
            &operator.token,
            &format!("/v1/conversations/{conversation_id}"),
        )
        .await;
    assert_eq!(seen["read_up_to"]["customer"], reply_id);

    // The operator reads the customer's message too.
    let first_id = opened["message"]["id"].as_i64().unwrap();
    let read = app.mark_read(&operator, conversation_id, first_id).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let list: Value = app.get_json(&operator.token, "/v1/conversations").await;
    assert_eq!(list["unread_total"], 0);

    // Both inboxes hold the same story, in order, numbered 1..n without gaps.
    let types = |events: &[switchboard::store::StoredEvent]| {
        events
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>()
    };
    let customer_events = app.inbox_events(&InboxKey::customer(customer.id)).await;
    let operator_events = app.inbox_events(&InboxKey::operator(operator.id)).await;
    let expected = [
        "conversation.created",
        "message.created",
        "message.created",
        "conversation.read",
        "conversation.read",
    ];
    assert_eq!(types(&customer_events), expected);
    assert_eq!(types(&operator_events), expected);
    for events in [&customer_events, &operator_events] {
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }
    let message_event: Value = serde_json::from_str(customer_events[2].data.get()).unwrap();
    assert_eq!(message_event["message"]["id"], reply_id);

    // Reading again (or backwards) changes nothing and writes no event.
    let again = app.mark_read(&customer, conversation_id, first_id).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.inbox_events(&InboxKey::customer(customer.id))
            .await
            .len(),
        5
    );
}

async fn retried_send_returns_the_original_message(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Bakery", "Omsk", "Asia/Omsk").await;
    let operator = app.create_operator(company, "op@bakery.example", &[]).await;
    let customer = app.create_customer("Olga", "Omsk", "Asia/Omsk").await;
    let conversation = app.open_conversation(&customer, company, None, "Hi").await;

    let first = app
        .post_message(&customer, conversation, "Is bread ready?", Some("msg-42"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The network dropped the answer; the client retries (even with an edited text).
    for text in ["Is bread ready?", "Is bread ready??"] {
        let retry = app
            .post_message(&customer, conversation, text, Some("msg-42"))
            .await;
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        let retry: Value = retry.json().await.unwrap();
        assert_eq!(retry["message"], first["message"]);
    }

    // The same key from the other side is a different message.
    let operator_message = app
        .post_message(&operator, conversation, "Yes", Some("msg-42"))
        .await;
    assert_eq!(operator_message.status(), StatusCode::CREATED);
    assert!(operator_message
        .headers()
        .get("idempotent-replayed")
        .is_none());

    let history: Value = app
        .get_json(
            &customer.token,
            &format!("/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 3);
    let created = app
        .inbox_events(&InboxKey::operator(operator.id))
        .await
        .into_iter()
        .filter(|e| e.event_type == "message.created")
        .count();
    assert_eq!(created, 3, "a replayed send must not append an event");
}

async fn ask_several_companies_at_once(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = app
        .create_company("Tyres One", "Kazan", "Europe/Moscow")
        .await;
    let b = app
        .create_company("Tyres Two", "Perm", "Asia/Yekaterinburg")
        .await;
    let closed = app
        .create_company("Tyres Closed", "Ufa", "Asia/Yekaterinburg")
        .await;
    let patch = app
        .patch(
            crate::helpers::ADMIN_TOKEN,
            &format!("/v1/admin/companies/{closed}"),
            json!({"accepts_messages": false}),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::OK);
    let operator_b = app.create_operator(b, "op@two.example", &[]).await;
    let customer = app.create_customer("Pavel", "Kazan", "Europe/Moscow").await;

    // Operator B watches live; the batch must wake the stream, not only write the store.
    let mut live = crate::clients::open_sse(&app.address, &operator_b.token, None, "")
        .await
        .unwrap();
    let body = json!({"company_ids": [a, b, closed, 999_999, a], "text": "Winter tyres 205/55 R16?", "client_msg_id": "batch-1"});
    let response = app
        .post(&customer.token, "/v1/conversations/batch", body.clone())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let results: Value = response.json().await.unwrap();
    let results = results["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4, "duplicates are asked once");
    let by_company = |id: i64| {
        results
            .iter()
            .find(|r| r["company_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_company(a)["status"], 201);
    assert_eq!(by_company(b)["status"], 201);
    assert_eq!(by_company(closed)["status"], 409);
    assert_eq!(by_company(closed)["error"]["code"], "messaging_disabled");
    assert_eq!(by_company(999_999)["status"], 400);
    assert_eq!(by_company(999_999)["error"]["code"], "unknown_company");

    let seen = live
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("a live event");
    assert_eq!(seen.event_type, "conversation.created");
    let seen = live
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("a live event");
    assert_eq!(seen.data["message"]["text"], "Winter tyres 205/55 R16?");

    // The operator of company B got the question.
    let list: Value = app.get_json(&operator_b.token, "/v1/conversations").await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["conversations"][0]["last_message"]["excerpt"],
        "Winter tyres 205/55 R16?"
    );

    // Retrying the batch repeats nothing.
    let retry: Value = app
        .post(&customer.token, "/v1/conversations/batch", body)
        .await
        .json()
        .await
        .unwrap();
    let retry_b = retry["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["company_id"] == b)
        .unwrap()
        .clone();
    assert_eq!(retry_b["message"]["id"], by_company(b)["message"]["id"]);
    let mine: Value = app.get_json(&customer.token, "/v1/conversations").await;
    assert_eq!(mine["conversations"].as_array().unwrap().len(), 2);

    // Bad batches are refused whole.
    let empty = app
        .post(
            &customer.token,
            "/v1/conversations/batch",
            json!({"company_ids": [], "text": "x"}),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let too_many: Vec<i64> = (1..=21).collect();
    let response = app
        .post(
            &customer.token,
            "/v1/conversations/batch",
            json!({"company_ids": too_many, "text": "x"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "invalid_input");
}

async fn opted_out_company_refuses_new_conversations(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Quiet Ltd", "Tomsk", "Asia/Tomsk").await;
    let operator = app
        .create_operator(company, "boss@quiet.example", &[])
        .await;
    let customer = app.create_customer("Lena", "Tomsk", "Asia/Tomsk").await;

    // The company's own operator switches messaging off.
    let response = app
        .patch(
            &operator.token,
            "/v1/company",
            json!({"accepts_messages": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let directory: Value = app.public_json(&format!("/v1/companies/{company}")).await;
    assert_eq!(directory["accepts_messages"], false);

    let refused = app
        .post(
            &customer.token,
            "/v1/conversations",
            json!({"company_id": company, "text": "Hello?"}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(refused).await, "messaging_disabled");
    let mine: Value = app.get_json(&customer.token, "/v1/conversations").await;
    assert_eq!(
        mine["conversations"].as_array().unwrap().len(),
        0,
        "nothing half-written"
    );
    assert!(app
        .inbox_events(&InboxKey::operator(operator.id))
        .await
        .is_empty());

    // Switched back on, the same request works.
    let response = app
        .patch(
            &operator.token,
            "/v1/company",
            json!({"accepts_messages": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let accepted = app
        .post(
            &customer.token,
            "/v1/conversations",
            json!({"company_id": company, "text": "Hello?"}),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
}

async fn history_pages_newest_first(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Pager", "Moscow", "Europe/Moscow").await;
    let customer = app.create_customer("Max", "Moscow", "Europe/Moscow").await;
    let conversation = app.open_conversation(&customer, company, None, "m0").await;
    for i in 1..120 {
        assert_eq!(
            app.post_message(&customer, conversation, &format!("m{i}"), None)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let query = match before {
            Some(id) => format!("?limit=50&before={id}"),
            None => "?limit=50".to_owned(),
        };
        let page: Value = app
            .get_json(
                &customer.token,
                &format!("/v1/conversations/{conversation}/messages{query}"),
            )
            .await;
        pages += 1;
        let messages = page["messages"].as_array().unwrap();
        seen.extend(
            messages
                .iter()
                .map(|m| m["text"].as_str().unwrap().to_owned()),
        );
        before = messages.last().map(|m| m["id"].as_i64().unwrap());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
}

async fn reopening_a_chat_continues_the_same_conversation(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app
        .create_company("Florist", "Sochi", "Europe/Moscow")
        .await;
    let branch = app
        .create_branch(company, "Adler", "Adler", "Europe/Moscow")
        .await;
    let customer = app.create_customer("Nina", "Sochi", "Europe/Moscow").await;
    let first = app
        .open_conversation(&customer, company, None, "Roses?")
        .await;
    let response = app
        .post(
            &customer.token,
            "/v1/conversations",
            json!({"company_id": company, "text": "Tulips?"}),
        )
        .await;
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["conversation"]["id"], first);
    assert_eq!(again["created"], false);
    // A chat with a branch is a separate conversation, located at the branch.
    let response = app
        .post(
            &customer.token,
            "/v1/conversations",
            json!({"company_id": company, "branch_id": branch, "text": "Open today?"}),
        )
        .await;
    let with_branch: Value = response.json().await.unwrap();
    assert_ne!(with_branch["conversation"]["id"], first);
    assert_eq!(with_branch["conversation"]["branch"]["name"], "Adler");
    assert_eq!(with_branch["conversation"]["other_side"]["city"], "Adler");
}
