//! Cascade notifications end to end on the database-backed queue: an offline customer gets one
//! e-mail however many messages arrive, an online one gets a browser notification and no
//! e-mail, a company is e-mailed after the escalation window only when nobody answered, the
//! unsubscribe link works, and a job run twice sends nothing twice.

use std::{path::PathBuf, time::Duration};

use chrono::Timelike;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::clients::open_sse;
use crate::helpers::{spawn_app_with, TestApp, TestBackend, User, ADMIN_TOKEN};

crate::on_both_backends!(
    quiet_hours_hold_email_back_and_say_so,
    settings_are_kept_and_respected,
    offline_customer_is_emailed_through_smtp,
    offline_customer_gets_one_email_for_several_messages,
    online_customer_gets_a_browser_notification_and_no_email,
    company_is_emailed_after_the_window_only_when_unanswered,
    a_job_run_twice_sends_once,
);

/// A fixed-offset time zone where it is midday now, so quiet hours never get in the way.
pub fn daytime_timezone() -> String {
    let hour = chrono::Utc::now().hour() as i32;
    let offset = (12 - hour + 24) % 24;
    let offset = if offset > 12 { offset - 24 } else { offset };
    // Etc/GMT-3 is UTC+3: the sign is reversed.
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

fn outbox(app: &TestApp) -> PathBuf {
    app.config.data_dir.join("outbox-mail")
}

pub fn emails(app: &TestApp) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(outbox(app)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

/// How many e-mails in the file outbox are addressed to `address`.
pub fn emails_to(app: &TestApp, address: &str) -> usize {
    emails(app).iter().filter(|m| m.contains(address)).count()
}

pub async fn trail(app: &TestApp, conversation: i64) -> Vec<Value> {
    let body = app
        .get_json(
            ADMIN_TOKEN,
            &format!("/v1/conversations/{conversation}/notifications"),
        )
        .await;
    body["steps"].as_array().unwrap().clone()
}

/// Wait until the trail has `n` steps (the worker runs in the background).
pub async fn wait_for_steps(app: &TestApp, conversation: i64, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let steps = trail(app, conversation).await;
        if steps.len() >= n {
            return steps;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trail(app, conversation).await
}

pub async fn customer_with_email(app: &TestApp, email: &str) -> User {
    let response = app
        .client
        .post(app.url("/v1/customers"))
        .json(&json!({"name": "Ivan", "city": "Tomsk", "timezone": daytime_timezone(), "email": email}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    User {
        id: body["id"].as_i64().unwrap(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

async fn offline_customer_gets_one_email_for_several_messages(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let company = app
        .create_company("Mailer Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@mailer.example", &[]).await;
    let customer = customer_with_email(&app, "ivan@example.com").await;
    let conversation = app
        .open_conversation(&customer, company, None, "Any news?")
        .await;
    for text in ["First <b>answer</b>", "Second", "Third"] {
        assert_eq!(
            app.post_message(&operator, conversation, text, None)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    // The customer's first message reaches the company too; wait for all four decisions.
    let steps = wait_for_steps(&app, conversation, 4).await;
    let for_customer: Vec<&Value> = steps
        .iter()
        .filter(|s| s["recipient_kind"] == "customer")
        .collect();
    assert_eq!(for_customer.len(), 3, "{steps:#?}");
    assert_eq!(
        (
            for_customer[0]["channel"].as_str(),
            for_customer[0]["status"].as_str()
        ),
        (Some("email"), Some("sent"))
    );
    for later in &for_customer[1..] {
        assert_eq!(later["status"], "suppressed", "{later}");
        assert_eq!(later["detail"], "Coalesced(Email)");
    }
    let mails = emails(&app);
    let to_customer: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("ivan@example.com"))
        .collect();
    assert_eq!(to_customer.len(), 1, "exactly one e-mail to the customer");
    let mail = to_customer[0];
    assert!(mail.contains("Mailer Co"), "{mail}");
    assert!(mail.contains("List-Unsubscribe"), "{mail}");

    // The unsubscribe link in the e-mail switches e-mail off.
    let start = mail
        .find("/v1/notifications/unsubscribe?")
        .expect("an unsubscribe link");
    let link: String = mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '"' && *c != '<')
        .collect();
    let link = link
        .replace("&amp;", "&")
        .replace("=\r\n", "")
        .replace("=3D", "=");
    let response = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{link}");
    let forged = app
        .client
        .get(app.url("/v1/notifications/unsubscribe?recipient=customer.1&sig=AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
}

async fn online_customer_gets_a_browser_notification_and_no_email(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let company = app
        .create_company("Popup Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@popup.example", &[]).await;
    let customer = customer_with_email(&app, "olga@example.com").await;
    let conversation = app.open_conversation(&customer, company, None, "Hi").await;
    let mut stream = open_sse(&app.address, &customer.token, None, "")
        .await
        .unwrap();
    app.post_message(&operator, conversation, "We are open till 9", None)
        .await;
    let mut saw_notification = false;
    while let Some(event) = stream.next(Duration::from_secs(10)).await {
        if event.event_type == "notification" {
            assert_eq!(event.data["conversation_id"], conversation);
            assert!(event.data["title"]
                .as_str()
                .unwrap()
                .contains("New message from"));
            assert_eq!(event.data["body"], "We are open till 9");
            saw_notification = true;
            break;
        }
    }
    assert!(
        saw_notification,
        "a browser notification arrives on the open stream"
    );
    let steps = wait_for_steps(&app, conversation, 2).await;
    let for_customer: Vec<&Value> = steps
        .iter()
        .filter(|s| s["recipient_kind"] == "customer")
        .collect();
    assert_eq!(for_customer.len(), 1);
    assert_eq!(for_customer[0]["channel"], "browser");
    assert!(
        emails(&app).iter().all(|m| !m.contains("olga@example.com")),
        "no e-mail to an online customer"
    );
}

async fn company_is_emailed_after_the_window_only_when_unanswered(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.worker = true;
        config.company_email_after = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let quiet = app
        .create_company("Quiet Co", "Omsk", &daytime_timezone())
        .await;
    let busy = app
        .create_company("Busy Co", "Omsk", &daytime_timezone())
        .await;
    let quiet_op = app.create_operator(quiet, "op@quiet.example", &[]).await;
    let busy_op = app.create_operator(busy, "op@busy.example", &[]).await;
    // Both operators are online, so the first step is a browser popup for each.
    let _quiet_stream = open_sse(&app.address, &quiet_op.token, None, "")
        .await
        .unwrap();
    let _busy_stream = open_sse(&app.address, &busy_op.token, None, "")
        .await
        .unwrap();
    let customer = app
        .create_customer("Asker", "Tomsk", &daytime_timezone())
        .await;
    let unanswered = app
        .open_conversation(&customer, quiet, None, "Anyone there?")
        .await;
    let answered = app
        .open_conversation(&customer, busy, None, "Anyone there?")
        .await;
    app.post_message(&busy_op, answered, "Yes, here!", None)
        .await;

    let steps = wait_for_steps(&app, unanswered, 2).await;
    assert_eq!(
        (steps[0]["channel"].as_str(), steps[0]["stage"].as_str()),
        (Some("browser"), Some("first"))
    );
    assert_eq!(
        (steps[1]["channel"].as_str(), steps[1]["stage"].as_str()),
        (Some("email"), Some("escalation")),
        "{steps:#?}"
    );
    let mails = emails(&app);
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.contains("quiet-co@example.com"))
            .count(),
        1
    );

    // The answered company: whether the worker saw the answer at the first step or at the
    // escalation check, it ends suppressed as answered and nobody e-mails it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let steps = trail(&app, answered).await;
    let company_steps: Vec<&Value> = steps
        .iter()
        .filter(|s| s["recipient_kind"] == "company")
        .collect();
    let last = company_steps.last().expect("the company was considered");
    assert_eq!(
        (last["status"].as_str(), last["detail"].as_str()),
        (Some("suppressed"), Some("Answered")),
        "{steps:#?}"
    );
    assert!(
        company_steps.iter().all(|s| s["channel"] != "email"),
        "{steps:#?}"
    );
    assert_eq!(
        emails_to(&app, "busy-co@example.com"),
        0,
        "an answered company is not e-mailed"
    );
}

async fn a_job_run_twice_sends_once(backend: TestBackend) {
    // The in-process worker is off: this test runs the worker by hand.
    let Some(app) = spawn_app_with(backend, |config| config.worker = false).await else {
        return;
    };
    let company = app
        .create_company("Once Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@once.example", &[]).await;
    let customer = customer_with_email(&app, "once@example.com").await;
    let conversation = app
        .open_conversation(&customer, company, None, "Hello")
        .await;
    app.post_message(&operator, conversation, "Reply", None)
        .await;
    let worker = switchboard::startup::notification_worker(&app.ctx).unwrap();
    use switchboard::notify::worker::ExecutionOutcome;
    while worker.run_once().await.unwrap() == ExecutionOutcome::TaskCompleted {}
    assert_eq!(emails_to(&app, "once@example.com"), 1);

    // A worker that crashed after sending but before finishing leaves the job behind: put
    // the same job back, as the lease expiry would, and run it again.
    let message_id = app
        .get_json(
            &customer.token,
            &format!("/v1/conversations/{conversation}/messages"),
        )
        .await["messages"][0]["id"]
        .as_i64()
        .unwrap();
    sqlx::query(
        "INSERT INTO notification_jobs (conversation_id, message_id, recipient_kind, recipient_id, stage, run_at, created_at)
         VALUES ($1, $2, 'customer', $3, 'first', 0, 0)",
    )
    .bind(conversation)
    .bind(message_id)
    .bind(customer.id)
    .execute(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        worker.run_once().await.unwrap(),
        ExecutionOutcome::TaskCompleted
    );
    assert_eq!(
        worker.run_once().await.unwrap(),
        ExecutionOutcome::EmptyQueue
    );
    assert_eq!(emails_to(&app, "once@example.com"), 1, "never twice");
}

async fn offline_customer_is_emailed_through_smtp(backend: TestBackend) {
    let sink = crate::smtp_sink::start().await;
    let url = sink.url.clone();
    let Some(app) = spawn_app_with(backend, |config| {
        config.worker = true;
        config.smtp_url = Some(url);
    })
    .await
    else {
        return;
    };
    let company = app
        .create_company("Smtp Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@smtp.example", &[]).await;
    let customer = customer_with_email(&app, "smtp-reader@example.com").await;
    let conversation = app
        .open_conversation(&customer, company, None, "Question")
        .await;
    app.post_message(&operator, conversation, "Answer by mail", None)
        .await;
    // The company's own e-mail may come first; wait for the customer's.
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = sink.received.lock().unwrap().clone();
        if delivered
            .iter()
            .any(|m| m.to == ["smtp-reader@example.com"])
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let to_customer: Vec<_> = delivered
        .iter()
        .filter(|m| m.to == ["smtp-reader@example.com"])
        .collect();
    assert_eq!(to_customer.len(), 1, "{delivered:#?}");
    assert!(
        to_customer[0]
            .data
            .contains("Subject: New message from Smtp Co"),
        "{}",
        to_customer[0].data
    );
    assert!(
        emails(&app).is_empty(),
        "with SMTP nothing is written to the file outbox"
    );
}

async fn settings_are_kept_and_respected(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let company = app
        .create_company("Settings Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app
        .create_operator(company, "op@settings.example", &[])
        .await;
    let customer = customer_with_email(&app, "quiet@example.com").await;
    let defaults = app
        .get_json(&customer.token, "/v1/notification-settings")
        .await;
    assert_eq!(
        defaults,
        json!({"email": true, "push": true, "quiet_hours": {"start": 22, "end": 8}})
    );

    let put = |body: Value| {
        app.client
            .put(app.url("/v1/notification-settings"))
            .bearer_auth(&customer.token)
            .json(&body)
            .send()
    };
    let bad = put(json!({"email": true, "push": true, "quiet_hours": {"start": 25, "end": 8}}))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let off = json!({"email": false, "push": true, "quiet_hours": null});
    assert_eq!(put(off.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        app.get_json(&customer.token, "/v1/notification-settings")
            .await,
        off
    );

    // E-mail off: the reply is noticed but nobody is e-mailed.
    let conversation = app.open_conversation(&customer, company, None, "Hi").await;
    app.post_message(&operator, conversation, "Hello back", None)
        .await;
    let steps = wait_for_steps(&app, conversation, 2).await;
    let for_customer = steps
        .iter()
        .find(|s| s["recipient_kind"] == "customer")
        .expect("a customer step");
    assert_eq!(
        (
            for_customer["status"].as_str(),
            for_customer["detail"].as_str()
        ),
        (Some("suppressed"), Some("NoChannel"))
    );
    assert!(emails(&app)
        .iter()
        .all(|m| !m.contains("quiet@example.com")));

    // An operator manages the company's settings.
    let company_settings = app
        .get_json(&operator.token, "/v1/notification-settings")
        .await;
    assert_eq!(company_settings["email"], true);
}

async fn quiet_hours_hold_email_back_and_say_so(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    // A fixed-offset zone where it is 03:00 now: inside the default quiet hours (22–08).
    let hour = chrono::Utc::now().hour() as i32;
    let offset = {
        let o = (3 - hour + 24) % 24;
        if o > 12 {
            o - 24
        } else {
            o
        }
    };
    let night = match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let company = app
        .create_company("Night Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@night.example", &[]).await;
    let response = app
        .client
        .post(app.url("/v1/customers"))
        .json(&json!({"name": "Sleeper", "timezone": night, "email": "sleeper@example.com"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let customer = User {
        id: body["id"].as_i64().unwrap(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    let conversation = app
        .open_conversation(&customer, company, None, "Tomorrow?")
        .await;
    app.post_message(&operator, conversation, "Yes, tomorrow", None)
        .await;
    let steps = wait_for_steps(&app, conversation, 2).await;
    let step = steps
        .iter()
        .find(|s| s["recipient_kind"] == "customer")
        .expect("a customer step");
    assert_eq!(
        (step["channel"].as_str(), step["status"].as_str()),
        (Some("deferred"), Some("deferred")),
        "{steps:#?}"
    );
    assert!(step["detail"].as_str().unwrap().starts_with("until "));
    assert!(
        emails(&app)
            .iter()
            .all(|m| !m.contains("sleeper@example.com")),
        "nobody is e-mailed at night"
    );
}
