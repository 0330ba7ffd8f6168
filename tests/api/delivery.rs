//! Delivery under stress: many writers, many subscribers per inbox on every transport, random
//! disconnects and reconnects; every subscriber must see exactly 1..N in order. And a graceful
//! shutdown answers parked polls and ends streams in bounded time.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use switchboard::domain::InboxKey;

use reqwest::StatusCode;

use crate::clients::{assert_exactly_once, collect, long_poll, open_sse, Transport};
use crate::helpers::{spawn_app_with, TestApp, TestBackend, User};

crate::on_both_backends!(
    every_subscriber_gets_every_event_once_in_order,
    graceful_shutdown_answers_parked_requests
);

/// Writers in two conversations of one company: both customers and the operator.
pub async fn write_traffic(apps: &[Arc<TestApp>], writers: Vec<(User, i64)>, per_writer: usize) {
    let mut tasks = Vec::new();
    for (w, (user, conversation)) in writers.into_iter().enumerate() {
        let apps: Vec<Arc<TestApp>> = apps.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let app = &apps[(w + i) % apps.len()];
                let response = app
                    .post_message(
                        &user,
                        conversation,
                        &format!("w{w} m{i}"),
                        Some(&format!("w{w}-{i}")),
                    )
                    .await;
                assert_eq!(response.status(), StatusCode::CREATED);
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// One subscriber task: what it is, its inbox, its target seq (set once writing is over).
pub struct Collector {
    pub what: String,
    pub inbox: InboxKey,
    target: Arc<AtomicI64>,
    handle: tokio::task::JoinHandle<Vec<i64>>,
}

/// Six subscribers (two per transport) for each user, on random nodes of `apps`.
pub fn start_collectors(apps: &[Arc<TestApp>], users: &[(&User, InboxKey)]) -> Vec<Collector> {
    let bases: Vec<String> = apps.iter().map(|a| a.address.clone()).collect();
    let transports = [Transport::LongPoll, Transport::Sse, Transport::Ws];
    let mut collectors = Vec::new();
    for (u, (user, inbox)) in users.iter().enumerate() {
        for t in 0..6 {
            let transport = transports[t % 3];
            let target = Arc::new(AtomicI64::new(0));
            let seed = (u * 100 + t) as u64;
            let handle = tokio::spawn(collect(
                transport,
                bases.clone(),
                user.token.clone(),
                target.clone(),
                seed,
            ));
            collectors.push(Collector {
                what: format!("{} over {transport:?} #{t}", inbox.as_str()),
                inbox: inbox.clone(),
                target,
                handle,
            });
        }
    }
    collectors
}

/// Tell every collector where its inbox ends, and check each got exactly 1..=head.
pub async fn finish_collectors(store: &switchboard::store::Store, collectors: Vec<Collector>) {
    for collector in collectors {
        let head = store.inbox_head(&collector.inbox).await.unwrap().last_seq;
        collector.target.store(head, Ordering::SeqCst);
        let seqs = collector.handle.await.unwrap();
        assert_exactly_once(&collector.what, &seqs, head);
    }
}

async fn every_subscriber_gets_every_event_once_in_order(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.max_connections_per_user = 50).await
    else {
        return;
    };
    let company = app
        .create_company("Stress", "Moscow", "Europe/Moscow")
        .await;
    let operator = app.create_operator(company, "op@stress.example", &[]).await;
    let c1 = app.create_customer("One", "Moscow", "Europe/Moscow").await;
    let c2 = app.create_customer("Two", "Omsk", "Asia/Omsk").await;
    let a = app.open_conversation(&c1, company, None, "a").await;
    let b = app.open_conversation(&c2, company, None, "b").await;
    let app = Arc::new(app);
    let apps = [app.clone()];

    let collectors = start_collectors(
        &apps,
        &[
            (&c1, InboxKey::customer(c1.id)),
            (&operator, InboxKey::operator(operator.id)),
        ],
    );
    let writers = vec![
        (c1.clone(), a),
        (c2.clone(), b),
        (operator.clone(), a),
        (operator.clone(), b),
    ];
    write_traffic(&apps, writers, 40).await;
    assert_eq!(
        app.store
            .inbox_head(&InboxKey::customer(c1.id))
            .await
            .unwrap()
            .last_seq,
        2 + 40 + 40,
        "c1 hears its own conversation"
    );
    assert_eq!(
        app.store
            .inbox_head(&InboxKey::operator(operator.id))
            .await
            .unwrap()
            .last_seq,
        4 + 4 * 40,
        "the operator hears both"
    );
    finish_collectors(&app.store, collectors).await;
}

async fn graceful_shutdown_answers_parked_requests(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.shutdown_drain = Duration::from_secs(5)
    })
    .await
    else {
        return;
    };
    let company = app
        .create_company("Closing", "Moscow", "Europe/Moscow")
        .await;
    let customer = app.create_customer("Last", "Moscow", "Europe/Moscow").await;
    app.open_conversation(&customer, company, None, "bye").await;
    let poll = {
        let (client, base, token) = (
            app.client.clone(),
            app.address.clone(),
            customer.token.clone(),
        );
        tokio::spawn(async move { long_poll(&client, &base, &token, Some(2), 50.0).await })
    };
    let mut stream = open_sse(&app.address, &customer.token, Some(2), "")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let took = app.stop().await;
    let (status, cursor, events) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the poll is answered")
        .unwrap();
    assert_eq!(
        (status, cursor, events.len()),
        (200, Some(2), 0),
        "answered with its cursor"
    );
    assert!(
        stream.next(Duration::from_secs(5)).await.is_none(),
        "the stream ends cleanly"
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
