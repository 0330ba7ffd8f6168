//! The notification queue on RabbitMQ: jobs relayed from the outbox, delays through the TTL
//! delay queue (a company's escalation), and a dropped broker connection loses nothing.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, TestApp, TestBackend};
use crate::notifications::{customer_with_email, daytime_timezone, emails, trail, wait_for_steps};

fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A test app on RabbitMQ with a queue prefix of its own (and e-mail to `smtp_url` when
/// given); `None` to skip.
async fn app_on_rabbitmq(
    backend: TestBackend,
    escalation: Duration,
    smtp_url: Option<String>,
) -> Option<TestApp> {
    let url = amqp_url();
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !reachable {
        assert!(
            std::env::var("SWITCHBOARD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "RabbitMQ is required at {url}"
        );
        eprintln!("skipping: RabbitMQ at {url} is not available");
        return None;
    }
    spawn_app_with(backend, |config| {
        config.worker = true;
        config.amqp_url = Some(url);
        config.amqp_prefix = format!("sbtest-{}", uuid::Uuid::new_v4().simple());
        config.company_email_after = escalation;
        config.smtp_url = smtp_url;
    })
    .await
}

crate::on_both_backends!(
    jobs_and_delays_flow_through_rabbitmq,
    a_dropped_connection_loses_nothing
);

async fn jobs_and_delays_flow_through_rabbitmq(backend: TestBackend) {
    let sink = crate::smtp_sink::start().await;
    let Some(app) = app_on_rabbitmq(backend, Duration::from_secs(1), Some(sink.url.clone())).await
    else {
        return;
    };
    let company = app
        .create_company("Rabbit Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@rabbit.example", &[]).await;
    // The operator is online: a popup first, then the escalation e-mail after the delay.
    let _online = crate::clients::open_sse(&app.address, &operator.token, None, "")
        .await
        .unwrap();
    let customer = customer_with_email(&app, "rabbit-reader@example.com").await;
    let conversation = app
        .open_conversation(&customer, company, None, "Carrots?")
        .await;

    let steps = wait_for_steps(&app, conversation, 2).await;
    assert_eq!(
        (steps[0]["channel"].as_str(), steps[0]["stage"].as_str()),
        (Some("browser"), Some("first")),
        "{steps:#?}"
    );
    assert_eq!(
        (steps[1]["channel"].as_str(), steps[1]["stage"].as_str()),
        (Some("email"), Some("escalation")),
        "{steps:#?}"
    );
    let to = |address: &str| {
        sink.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to == [address])
            .count()
    };
    for _ in 0..50 {
        if to("rabbit-co@example.com") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        to("rabbit-co@example.com"),
        1,
        "one escalation e-mail over SMTP"
    );

    // The operator answers: the customer (offline) gets exactly one e-mail.
    assert_eq!(
        app.post_message(&operator, conversation, "Plenty", None)
            .await
            .status(),
        StatusCode::CREATED
    );
    // (Another test may drop every broker connection meanwhile; a redelivered job can then
    // add a "suppressed" line to the trail, but never a second e-mail.)
    let mut steps = Vec::new();
    for _ in 0..100 {
        steps = trail(&app, conversation).await;
        if steps.iter().any(|s| s["recipient_kind"] == "customer") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        steps.iter().any(|s| s["recipient_kind"] == "customer"
            && s["channel"] == "email"
            && s["status"] == "sent"),
        "{steps:#?}"
    );
    for _ in 0..50 {
        if to("rabbit-reader@example.com") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        to("rabbit-reader@example.com"),
        1,
        "exactly one e-mail to the offline customer, over SMTP"
    );
    assert!(emails(&app).is_empty(), "nothing went to the file outbox");
}

async fn a_dropped_connection_loses_nothing(backend: TestBackend) {
    let Some(app) = app_on_rabbitmq(backend, Duration::from_secs(3600), None).await else {
        return;
    };
    let company = app
        .create_company("Drop Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@drop.example", &[]).await;
    const CHATS: usize = 12;
    let mut conversations = Vec::new();
    for i in 0..CHATS {
        let customer = customer_with_email(&app, &format!("drop{i}@example.com")).await;
        conversations.push(
            app.open_conversation(&customer, company, None, "Hello")
                .await,
        );
    }
    let writer = {
        let (client, base, token) = (
            app.client.clone(),
            app.address.clone(),
            operator.token.clone(),
        );
        let conversations = conversations.clone();
        tokio::spawn(async move {
            for conversation in conversations {
                let response = client
                    .post(format!("{base}/v1/conversations/{conversation}/messages"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"text": "Reply"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Close every connection the broker has (ours among them) while jobs flow.
    let closed = std::process::Command::new("rabbitmqctl")
        .args([
            "close_all_connections",
            "switchboard test: dropping connections",
        ])
        .output();
    match closed {
        Ok(output) => assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) if std::env::var("SWITCHBOARD_REQUIRE_SERVICES").as_deref() != Ok("1") => {
            eprintln!("skipping the drop: no rabbitmqctl ({error})");
        }
        Err(error) => panic!("rabbitmqctl is required: {error}"),
    }
    writer.await.unwrap();

    // Every customer gets exactly one e-mail, and the company one per conversation.
    let mut mails = Vec::new();
    for _ in 0..150 {
        mails = emails(&app);
        if mails.len() >= 2 * CHATS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..CHATS {
        let address = format!("drop{i}@example.com");
        assert_eq!(
            mails.iter().filter(|m| m.contains(&address)).count(),
            1,
            "{address}"
        );
    }
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.contains("drop-co@example.com"))
            .count(),
        CHATS
    );
    // A job the broker redelivers after the drop is decided again and finds the e-mail already
    // sent (it may log that as suppressed): one sent step per message, never two.
    for conversation in conversations {
        let steps = trail(&app, conversation).await;
        let sent: Vec<_> = steps.iter().filter(|s| s["status"] == "sent").collect();
        assert_eq!(sent.len(), 2, "{steps:#?}");
    }
}
