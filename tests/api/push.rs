//! Web Push end to end against a push service run by the test, which decrypts every payload
//! with the subscription's private key (so the RFC 8291 encryption is really checked) and can
//! answer 201, 410 or 500.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, http::HeaderMap, routing::post, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::StatusCode;
use serde_json::{json, Value};
use web_push_native::{
    p256::{elliptic_curve::sec1::ToEncodedPoint, SecretKey},
    Auth,
};

use crate::helpers::{spawn_app_with, TestApp, TestBackend, User};
use crate::notifications::{
    customer_with_email, daytime_timezone, emails, emails_to, wait_for_steps,
};

crate::on_both_backends!(
    push_reaches_an_offline_device_and_no_email,
    a_gone_device_is_removed_and_email_follows,
    a_failing_push_service_is_retried
);

/// The browser side of a subscription: its keys, as a browser would make them.
struct Device {
    secret: SecretKey,
    auth: [u8; 16],
}

impl Device {
    fn new() -> Self {
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut auth);
        Device {
            secret: SecretKey::random(&mut rand::rngs::OsRng),
            auth,
        }
    }

    fn keys(&self) -> Value {
        let point = self.secret.public_key().to_encoded_point(false);
        json!({"p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()), "auth": URL_SAFE_NO_PAD.encode(self.auth)})
    }
}

#[derive(Default)]
struct Service {
    /// Statuses to answer, in order; 201 once they run out.
    answers: Vec<u16>,
    /// Decrypted payloads received with their Authorization header.
    received: Vec<(Value, String)>,
    attempts: usize,
}

struct PushService {
    url: String,
    state: Arc<Mutex<Service>>,
}

async fn start_push_service(device: Device, answers: Vec<u16>) -> PushService {
    let state = Arc::new(Mutex::new(Service {
        answers,
        ..Default::default()
    }));
    let device = Arc::new(device);
    let handler = {
        let state = state.clone();
        move |headers: HeaderMap, body: Bytes| {
            let (state, device) = (state.clone(), device.clone());
            async move {
                let plain = web_push_native::decrypt(
                    body.to_vec(),
                    &device.secret,
                    &Auth::clone_from_slice(&device.auth),
                )
                .expect("the payload decrypts with the subscription's key");
                let payload: Value = serde_json::from_slice(&plain).unwrap();
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut state = state.lock().unwrap();
                state.attempts += 1;
                let status = if state.answers.is_empty() {
                    201
                } else {
                    state.answers.remove(0)
                };
                if status == 201 {
                    state.received.push((payload, authorization));
                }
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }
    };
    let app = Router::new()
        .route("/push/device", post(handler))
        .with_state(());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push/device", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    PushService { url, state }
}

/// A customer with an e-mail address and a bound device, in a chat with a company.
async fn setup(app: &TestApp, service: &PushService, device_keys: Value) -> (User, User, i64) {
    let company = app
        .create_company("Push Co", "Omsk", &daytime_timezone())
        .await;
    let operator = app.create_operator(company, "op@push.example", &[]).await;
    let customer = customer_with_email(app, "pushed@example.com").await;
    let response = app
        .post(
            &customer.token,
            "/v1/push-subscriptions",
            json!({"endpoint": service.url, "keys": device_keys}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let conversation = app
        .open_conversation(&customer, company, None, "Ping me")
        .await;
    (customer, operator, conversation)
}

async fn push_reaches_an_offline_device_and_no_email(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let key: Value = app.public_json("/v1/push/vapid-public-key").await;
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["public_key"].as_str().unwrap())
            .unwrap()
            .len(),
        65,
        "an uncompressed P-256 point"
    );
    let device = Device::new();
    let keys = device.keys();
    let service = start_push_service(device, vec![]).await;
    let (customer, operator, conversation) = setup(&app, &service, keys).await;
    // Bad subscriptions are refused.
    let bad = app
        .post(
            &customer.token,
            "/v1/push-subscriptions",
            json!({"endpoint": "not a url", "keys": {"p256dh": "x", "auth": "y"}}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    app.post_message(&operator, conversation, "Your order is ready", None)
        .await;
    let steps = wait_for_steps(&app, conversation, 2).await;
    let step = steps
        .iter()
        .find(|s| s["recipient_kind"] == "customer")
        .expect("a customer step");
    assert_eq!(
        (step["channel"].as_str(), step["status"].as_str()),
        (Some("push"), Some("sent")),
        "{steps:#?}"
    );
    let state = service.state.lock().unwrap();
    assert_eq!(state.received.len(), 1);
    let (payload, authorization) = &state.received[0];
    assert_eq!(payload["body"], "Your order is ready");
    assert_eq!(payload["conversation_id"], conversation);
    assert!(authorization.starts_with("vapid t="), "{authorization}");
    assert!(
        emails(&app)
            .iter()
            .all(|m| !m.contains("pushed@example.com")),
        "a pushed customer gets no e-mail"
    );
}

async fn a_gone_device_is_removed_and_email_follows(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let device = Device::new();
    let keys = device.keys();
    let service = start_push_service(device, vec![410]).await;
    let (customer, operator, conversation) = setup(&app, &service, keys).await;
    app.post_message(&operator, conversation, "Are you there?", None)
        .await;
    let steps = wait_for_steps(&app, conversation, 3).await;
    let for_customer: Vec<&Value> = steps
        .iter()
        .filter(|s| s["recipient_kind"] == "customer")
        .collect();
    assert_eq!(
        (
            for_customer[0]["channel"].as_str(),
            for_customer[0]["status"].as_str()
        ),
        (Some("push"), Some("failed")),
        "{steps:#?}"
    );
    assert_eq!(
        (
            for_customer[1]["channel"].as_str(),
            for_customer[1]["status"].as_str()
        ),
        (Some("email"), Some("sent")),
        "{steps:#?}"
    );
    assert_eq!(emails_to(&app, "pushed@example.com"), 1);
    // The subscription was forgotten: unbinding it now finds nothing.
    let response = app
        .client
        .delete(app.url("/v1/push-subscriptions"))
        .bearer_auth(&customer.token)
        .json(&json!({"endpoint": service.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn a_failing_push_service_is_retried(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.worker = true).await else {
        return;
    };
    let device = Device::new();
    let keys = device.keys();
    let service = start_push_service(device, vec![500]).await;
    let (_customer, operator, conversation) = setup(&app, &service, keys).await;
    app.post_message(&operator, conversation, "Try again", None)
        .await;
    for _ in 0..60 {
        if !service.state.lock().unwrap().received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (attempts, received) = {
        let state = service.state.lock().unwrap();
        (state.attempts, state.received.len())
    };
    assert_eq!(attempts, 2, "one failure, then one success");
    assert_eq!(received, 1);
    let steps = wait_for_steps(&app, conversation, 2).await;
    let step = steps
        .iter()
        .find(|s| s["recipient_kind"] == "customer")
        .unwrap();
    assert_eq!(
        (step["channel"].as_str(), step["status"].as_str()),
        (Some("push"), Some("sent")),
        "{steps:#?}"
    );
    assert!(emails(&app)
        .iter()
        .all(|m| !m.contains("pushed@example.com")));
}
