//! Several nodes as one service (same PostgreSQL database, same Redis): a message written on
//! node A reaches subscribers held by node B on every transport, and a Redis restart in the
//! middle of the traffic loses nothing.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use serde_json::json;
use switchboard::domain::InboxKey;

use crate::clients::{long_poll, open_sse, open_ws};
use crate::delivery::{finish_collectors, start_collectors, write_traffic};
use crate::helpers::{redis_url, spawn_app_with, use_redis, TestApp, TestBackend};

/// Two nodes on PostgreSQL and the Redis at `url`; `None` to skip.
async fn two_nodes(url: &str) -> Option<(Arc<TestApp>, Arc<TestApp>)> {
    let mut use_it = None;
    let a = spawn_app_with(TestBackend::Postgres, |config| {
        config.max_connections_per_user = 50;
        use_it = Some(config.clone());
    })
    .await?;
    let mut config = use_it.unwrap();
    if !use_redis(&mut config, url).await {
        return None;
    }
    // Restart node A on Redis (the first start only created the database).
    let a = a.restart_with(config).await;
    let b = a.spawn_node().await;
    Some((Arc::new(a), Arc::new(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_on_node_a_reaches_node_b_on_every_transport() {
    let Some((a, b)) = two_nodes(&redis_url()).await else {
        return;
    };
    let company = a.create_company("Cluster", "Moscow", "Europe/Moscow").await;
    let operator = a.create_operator(company, "op@cluster.example", &[]).await;
    let customer = a.create_customer("Across", "Kazan", "Europe/Moscow").await;
    let conversation = a.open_conversation(&customer, company, None, "hello").await;
    let wait = Duration::from_secs(10);

    // The customer listens on node B three ways; the operator writes on node A.
    let poll = {
        let (client, base, token) = (b.client.clone(), b.address.clone(), customer.token.clone());
        tokio::spawn(async move { long_poll(&client, &base, &token, Some(2), 20.0).await })
    };
    let mut sse = open_sse(&b.address, &customer.token, Some(2), "")
        .await
        .unwrap();
    let mut ws = open_ws(&b.address, &customer.token, Some(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.post_message(&operator, conversation, "from node A", None)
            .await
            .status(),
        StatusCode::CREATED
    );

    let (_, cursor, events) = poll.await.unwrap();
    assert_eq!(
        (cursor, events[0].data["message"]["text"].as_str()),
        (Some(3), Some("from node A"))
    );
    assert_eq!(sse.next(wait).await.unwrap().seq, Some(3));
    assert_eq!(ws.next(wait).await.unwrap().seq, Some(3));

    // Typing crosses nodes too, and presence is shared.
    let response = a
        .post(
            &operator.token,
            &format!("/v1/conversations/{conversation}/typing"),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let typing = sse.next(wait).await.unwrap();
    assert_eq!((typing.seq, typing.event_type.as_str()), (None, "typing"));
    assert!(
        a.ctx
            .presence
            .is_online(&InboxKey::customer(customer.id))
            .await,
        "node A sees the stream held by node B"
    );
}

/// A Redis server of the test's own, so it can be killed and restarted.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> std::io::Result<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(OwnRedis {
            port,
            child: Some(child),
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_in_the_middle_loses_nothing() {
    let port = free_port();
    let mut redis = match OwnRedis::start(port) {
        Ok(redis) => redis,
        Err(error) if std::env::var("SWITCHBOARD_REQUIRE_SERVICES").as_deref() != Ok("1") => {
            eprintln!("skipping: cannot start redis-server ({error})");
            return;
        }
        Err(error) => panic!("redis-server is required: {error}"),
    };
    let Some((a, b)) = two_nodes(&redis.url()).await else {
        return;
    };
    let company = a.create_company("Outage", "Moscow", "Europe/Moscow").await;
    let operator = a.create_operator(company, "op@outage.example", &[]).await;
    let c1 = a.create_customer("One", "Moscow", "Europe/Moscow").await;
    let c2 = a.create_customer("Two", "Omsk", "Asia/Omsk").await;
    let one = a.open_conversation(&c1, company, None, "one").await;
    let two = a.open_conversation(&c2, company, None, "two").await;
    let apps = [a.clone(), b.clone()];

    let collectors = start_collectors(
        &apps,
        &[
            (&c1, InboxKey::customer(c1.id)),
            (&operator, InboxKey::operator(operator.id)),
        ],
    );
    let writers = vec![
        (c1.clone(), one),
        (c2.clone(), two),
        (operator.clone(), one),
        (operator.clone(), two),
    ];
    let traffic = tokio::spawn({
        let apps = apps.clone();
        async move { write_traffic(&apps, writers, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _restarted = OwnRedis::start(port).expect("redis-server restarts");
    traffic.await.unwrap();
    finish_collectors(&a.store, collectors).await;
}
