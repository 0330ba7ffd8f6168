//! Concurrent writers never break an inbox: every inbox's seq is exactly 1..N, and every
//! message appears exactly once in every inbox that should hear of it.

use std::collections::{HashMap, HashSet};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::domain::InboxKey;

use crate::helpers::{spawn_app, TestBackend};

crate::on_both_backends!(
    concurrent_senders_get_gap_free_sequences,
    concurrent_first_contact_makes_one_conversation
);

const TASKS: usize = 8;
const MESSAGES_PER_TASK: usize = 200;

async fn concurrent_senders_get_gap_free_sequences(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Busy", "Moscow", "Europe/Moscow").await;
    let op1 = app.create_operator(company, "one@busy.example", &[]).await;
    let op2 = app.create_operator(company, "two@busy.example", &[]).await;
    let c1 = app.create_customer("C1", "Moscow", "Europe/Moscow").await;
    let c2 = app.create_customer("C2", "Kazan", "Europe/Moscow").await;
    let a = app.open_conversation(&c1, company, None, "start a").await;
    let b = app.open_conversation(&c2, company, None, "start b").await;

    // Eight senders at once: both customers and both operators, into two conversations.
    let senders = [
        (&c1, a),
        (&c1, a),
        (&c2, b),
        (&c2, b),
        (&op1, a),
        (&op1, b),
        (&op2, a),
        (&op2, b),
    ];
    assert_eq!(senders.len(), TASKS);
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (task, (user, conversation)) in senders.into_iter().enumerate() {
        let (app, user) = (app.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..MESSAGES_PER_TASK {
                let response = app
                    .post_message(
                        &user,
                        conversation,
                        &format!("t{task} m{i}"),
                        Some(&format!("t{task}-{i}")),
                    )
                    .await;
                assert_eq!(response.status(), StatusCode::CREATED);
                let body: Value = response.json().await.unwrap();
                ids.push(body["message"]["id"].as_i64().unwrap());
            }
            (conversation, ids)
        }));
    }
    let mut sent_to: HashMap<i64, HashSet<i64>> = HashMap::new();
    for task in tasks {
        let (conversation, ids) = task.await.unwrap();
        sent_to.entry(conversation).or_default().extend(ids);
    }

    let inboxes = [
        (InboxKey::customer(c1.id), vec![a]),
        (InboxKey::customer(c2.id), vec![b]),
        (InboxKey::operator(op1.id), vec![a, b]),
        (InboxKey::operator(op2.id), vec![a, b]),
    ];
    for (inbox, conversations) in inboxes {
        let events = app.inbox_events(&inbox).await;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let expected: Vec<i64> = (1..=events.len() as i64).collect();
        assert_eq!(seqs, expected, "{inbox:?}: seq must be exactly 1..N");
        assert_eq!(
            app.store.inbox_head(&inbox).await.unwrap().last_seq,
            events.len() as i64
        );

        let mut delivered = HashSet::new();
        for event in events.iter().filter(|e| e.event_type == "message.created") {
            let data: Value = serde_json::from_str(event.data.get()).unwrap();
            let id = data["message"]["id"].as_i64().unwrap();
            assert!(
                delivered.insert(id),
                "{inbox:?}: message {id} delivered twice"
            );
        }
        let wanted: HashSet<i64> = conversations
            .iter()
            .flat_map(|c| sent_to[c].iter().copied())
            .collect();
        assert!(wanted.is_subset(&delivered), "{inbox:?}: messages missing");
        // Plus the opening message of each conversation.
        assert_eq!(delivered.len(), wanted.len() + conversations.len());
    }
}

async fn concurrent_first_contact_makes_one_conversation(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let company = app.create_company("Race", "Moscow", "Europe/Moscow").await;
    let customer = app
        .create_customer("Quick", "Moscow", "Europe/Moscow")
        .await;
    let app = std::sync::Arc::new(app);
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let (app, token) = (app.clone(), customer.token.clone());
            tokio::spawn(async move {
                let response = app
                    .post(
                        &token,
                        "/v1/conversations",
                        json!({"company_id": company, "text": format!("hello {i}")}),
                    )
                    .await;
                assert_eq!(response.status(), StatusCode::CREATED);
                response.json::<Value>().await.unwrap()["conversation"]["id"]
                    .as_i64()
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for attempt in attempts {
        ids.insert(attempt.await.unwrap());
    }
    assert_eq!(
        ids.len(),
        1,
        "one customer and one company share one conversation"
    );
    let events = app.inbox_events(&InboxKey::customer(customer.id)).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "conversation.created")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "message.created")
            .count(),
        6
    );
}
