//! Every transport: receive, resume from a cursor with nothing lost or repeated, bad and
//! expired cursors, JSONP safety, SSE framing and `Last-Event-ID`, WebSocket both ways,
//! typing, presence and connection caps.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::clients::{long_poll, open_sse, open_ws};
use crate::helpers::{error_code, spawn_app, spawn_app_with, TestApp, TestBackend, User};

crate::on_both_backends!(
    long_poll_answers_at_once_or_parks_until_an_event,
    cursors_bad_and_expired,
    jsonp_wraps_answers_and_refuses_hostile_callbacks,
    jsonp_tunnel_carries_api_calls,
    sse_frames_resume_with_last_event_id,
    websocket_receives_and_sends,
    typing_is_ephemeral,
    presence_and_connection_caps,
    one_broadcast_wakes_many_waiters,
    old_browser_requests_work,
    slow_headers_are_cut_off,
);

/// A company with an operator, a customer, and their conversation (2 events in each inbox).
async fn chat(app: &TestApp) -> (User, User, i64) {
    let company = app.create_company("Live", "Moscow", "Europe/Moscow").await;
    let operator = app.create_operator(company, "op@live.example", &[]).await;
    let customer = app.create_customer("Vera", "Kazan", "Europe/Moscow").await;
    let conversation = app
        .open_conversation(&customer, company, None, "first")
        .await;
    (customer, operator, conversation)
}

async fn long_poll_answers_at_once_or_parks_until_an_event(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;

    // Cursor 0: everything, at once.
    let (status, cursor, events) =
        long_poll(&app.client, &app.address, &customer.token, Some(0), 20.0).await;
    assert_eq!(status, 200);
    assert_eq!(cursor, Some(2));
    assert_eq!(
        events.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(events[0].event_type, "conversation.created");
    assert_eq!(events[1].data["message"]["text"], "first");

    // No cursor: the head, no backlog; a short timeout answers empty with the same cursor.
    let (_, cursor, events) =
        long_poll(&app.client, &app.address, &customer.token, None, 0.2).await;
    assert_eq!((cursor, events.len()), (Some(2), 0));

    // Parked at the head, woken by the operator's reply.
    let poll = {
        let (client, base, token) = (
            app.client.clone(),
            app.address.clone(),
            customer.token.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            (
                long_poll(&client, &base, &token, Some(2), 20.0).await,
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.post_message(&operator, conversation, "reply", None)
            .await
            .status(),
        StatusCode::CREATED
    );
    let ((_, cursor, events), waited) = poll.await.unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "woken by the event, not the timeout"
    );
    assert_eq!(cursor, Some(3));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["message"]["text"], "reply");

    // Resuming from an old cursor repeats exactly what came after it.
    let (_, _, events) = long_poll(&app.client, &app.address, &customer.token, Some(1), 1.0).await;
    assert_eq!(
        events.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(),
        vec![2, 3]
    );

    // Unauthenticated polls are refused.
    let response = app
        .client
        .get(app.url("/v1/events?timeout=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn cursors_bad_and_expired(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, _operator, _) = chat(&app).await;
    for bad in ["abc", "-1", "3", "1.5"] {
        let response = app
            .get(
                &customer.token,
                &format!("/v1/events?timeout=0&cursor={bad}"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(response).await, "bad_cursor");
    }
    let response = app.get(&customer.token, "/v1/events?timeout=forever").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Retention passes over both events; cursor 1 is now too old.
    let removed = app
        .store
        .trim_events(switchboard::store::now_millis() + 1)
        .await
        .unwrap();
    assert!(removed >= 2);
    let response = app
        .get(&customer.token, "/v1/events?timeout=0&cursor=1")
        .await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(error_code(response).await, "cursor_expired");
    assert_eq!(
        app.get(&customer.token, "/v1/events/stream?cursor=1")
            .await
            .status(),
        StatusCode::GONE
    );
    // The WebSocket refuses before the upgrade, with the same statuses.
    let ws_base = app.address.replacen("http://", "ws://", 1);
    for (cursor, status) in [("1", 410), ("abc", 400), ("99", 400)] {
        let url = format!(
            "{ws_base}/v1/ws?access_token={}&cursor={cursor}",
            customer.token
        );
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "cursor {cursor}")
            }
            other => panic!(
                "cursor {cursor}: expected an HTTP refusal, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    // 0 = everything retained (nothing now) and the head still work.
    let (status, cursor, events) =
        long_poll(&app.client, &app.address, &customer.token, Some(0), 0.0).await;
    assert_eq!((status, cursor, events.len()), (200, Some(2), 0));
    let (status, cursor, _) =
        long_poll(&app.client, &app.address, &customer.token, Some(2), 0.0).await;
    assert_eq!((status, cursor), (200, Some(2)));
}

async fn jsonp_wraps_answers_and_refuses_hostile_callbacks(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, _, _) = chat(&app).await;
    let response = app
        .get(
            &customer.token,
            "/v1/events?cursor=0&timeout=0&callback=sb.cb_1",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = response.text().await.unwrap();
    let json = body
        .strip_prefix("/**/sb.cb_1(")
        .and_then(|b| b.strip_suffix(");"))
        .expect("wrapped in the callback");
    let answer: Value = serde_json::from_str(json).unwrap();
    assert_eq!(answer["cursor"], 2);

    // Errors reach the script too (it cannot see statuses).
    let body = app
        .get(&customer.token, "/v1/events?cursor=x&timeout=0&callback=cb")
        .await
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(
        body.strip_prefix("/**/cb(")
            .unwrap()
            .strip_suffix(");")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["status"], 400);
    assert_eq!(answer["error"]["code"], "bad_cursor");
    let body = app
        .client
        .get(app.url("/v1/events?timeout=0&callback=cb"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"status\":401"), "{body}");

    for hostile in [
        "alert(1)//",
        "<script>alert(1)</script>",
        "a b",
        "x;alert(1)",
        "1abc",
        "",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
        let response = app
            .get(
                &customer.token,
                &format!("/v1/events?cursor=0&timeout=0&callback={encoded}"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{hostile}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body = response.text().await.unwrap();
        assert!(
            hostile.is_empty() || !body.contains(hostile),
            "the callback is never echoed: {body}"
        );
        assert!(body.contains("bad_callback"));
    }
}

/// Call `/v1/jsonp` and unwrap `/**/cb({...});`.
async fn tunnel(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let response = app
        .client
        .get(app.url("/v1/jsonp"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    let json = body
        .strip_prefix("/**/cb(")
        .and_then(|b| b.strip_suffix(");"))
        .unwrap_or_else(|| panic!("wrapped in the callback: {body}"));
    serde_json::from_str(json).unwrap()
}

async fn jsonp_tunnel_carries_api_calls(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;
    let path = format!("/v1/conversations/{conversation}/messages");
    let send = |client_msg_id: &'static str| {
        let body = json!({"text": "via <script> tag", "client_msg_id": client_msg_id}).to_string();
        let (path, token) = (path.clone(), customer.token.clone());
        let app = &app;
        async move {
            tunnel(
                app,
                &[
                    ("callback", "cb"),
                    ("method", "POST"),
                    ("path", &path),
                    ("body", &body),
                    ("access_token", &token),
                ],
            )
            .await
        }
    };
    let sent = send("tunnel-1").await;
    assert_eq!(sent["status"], 201, "{sent}");
    assert_eq!(sent["body"]["message"]["text"], "via <script> tag");
    // A retry with the same client_msg_id is the same message, not a second one.
    let retried = send("tunnel-1").await;
    assert_eq!(retried["status"], 201, "{retried}");
    assert_eq!(
        retried["body"]["message"]["id"],
        sent["body"]["message"]["id"]
    );

    let history = tunnel(
        &app,
        &[
            ("callback", "cb"),
            ("path", &format!("{path}?limit=50")),
            ("access_token", &operator.token),
        ],
    )
    .await;
    assert_eq!(history["status"], 200);
    let texts: Vec<&str> = history["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| **t == "via <script> tag").count(),
        1
    );

    // Errors keep their status and code inside the answer.
    let no_token = tunnel(
        &app,
        &[("callback", "cb"), ("method", "POST"), ("path", &path)],
    )
    .await;
    assert_eq!(no_token["status"], 401);
    let bad_body = tunnel(
        &app,
        &[
            ("callback", "cb"),
            ("method", "POST"),
            ("path", &path),
            ("body", "{not json"),
            ("access_token", &customer.token),
        ],
    )
    .await;
    assert_eq!(bad_body["status"], 400, "{bad_body}");
    for (method, path) in [
        ("GET", "/v1/events?timeout=0"),
        ("GET", "/v1/jsonp?callback=cb"),
        ("GET", "/healthz"),
        ("GET", "/v1/../healthz"),
        ("TRACE", "/v1/me"),
    ] {
        let refused = tunnel(
            &app,
            &[("callback", "cb"), ("method", method), ("path", path)],
        )
        .await;
        assert_eq!(refused["status"], 400, "{method} {path}: {refused}");
        assert_eq!(refused["error"]["code"], "invalid_query");
    }
    let response = app
        .client
        .get(app.url("/v1/jsonp?callback=alert(1)&path=/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(!response.text().await.unwrap().contains("alert"));
}

async fn sse_frames_resume_with_last_event_id(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;
    let wait = Duration::from_secs(10);

    let mut stream = open_sse(&app.address, &customer.token, None, "&cursor=0&preamble=1")
        .await
        .unwrap();
    let first = stream.next(wait).await.unwrap();
    assert!(stream.saw_preamble, "2 KiB preamble first");
    assert_eq!(stream.retry, Some(3000));
    assert_eq!(
        (first.seq, first.event_type.as_str()),
        (Some(1), "conversation.created")
    );
    assert_eq!(stream.next(wait).await.unwrap().seq, Some(2));
    app.post_message(&operator, conversation, "live 1", None)
        .await;
    let live = stream.next(wait).await.unwrap();
    assert_eq!(
        (live.seq, live.data["message"]["text"].as_str()),
        (Some(3), Some("live 1"))
    );
    drop(stream);

    // Events while disconnected arrive after reconnecting with Last-Event-ID, once each.
    app.post_message(&operator, conversation, "while away 1", None)
        .await;
    app.post_message(&operator, conversation, "while away 2", None)
        .await;
    let mut stream = open_sse(&app.address, &customer.token, Some(3), "")
        .await
        .unwrap();
    assert_eq!(stream.next(wait).await.unwrap().seq, Some(4));
    assert_eq!(stream.next(wait).await.unwrap().seq, Some(5));
    assert!(
        stream.next(Duration::from_millis(300)).await.is_none(),
        "nothing repeated"
    );
    drop(stream);

    // The header wins over the query; `lastEventId` works for polyfills.
    let mut stream = open_sse(&app.address, &customer.token, Some(4), "&cursor=0")
        .await
        .unwrap();
    assert_eq!(stream.next(wait).await.unwrap().seq, Some(5));
    let mut stream = open_sse(&app.address, &customer.token, None, "&lastEventId=3")
        .await
        .unwrap();
    assert_eq!(stream.next(wait).await.unwrap().seq, Some(4));

    let bad = open_sse(&app.address, &customer.token, None, "&cursor=oops")
        .await
        .err()
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad).await, "bad_cursor");
}

async fn websocket_receives_and_sends(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;
    let wait = Duration::from_secs(10);
    let mut customer_ws = open_ws(&app.address, &customer.token, Some(0)).await;
    let mut operator_ws = open_ws(&app.address, &operator.token, Some(2)).await;
    assert_eq!(customer_ws.next(wait).await.unwrap().seq, Some(1));
    assert_eq!(customer_ws.next(wait).await.unwrap().seq, Some(2));

    customer_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "over ws", "client_msg_id": "ws-1"}))
        .await;
    let mut ack = None;
    let mut own_event = None;
    while ack.is_none() || own_event.is_none() {
        let frame = customer_ws.next_frame(wait).await.expect("a frame");
        if frame["type"] == "ack" {
            ack = Some(frame);
        } else {
            own_event = Some(frame);
        }
    }
    let ack = ack.unwrap();
    assert_eq!(ack["client_msg_id"], "ws-1");
    assert_eq!(ack["message"]["text"], "over ws");
    assert_eq!(own_event.unwrap()["seq"], 3);
    let seen = operator_ws.next(wait).await.unwrap();
    assert_eq!(
        (seen.seq, seen.data["message"]["text"].as_str()),
        (Some(3), Some("over ws"))
    );

    // A retried send over the socket is a replay; a bad one gets an error frame.
    customer_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "over ws", "client_msg_id": "ws-1"}))
        .await;
    let replay = customer_ws.next_frame(wait).await.unwrap();
    assert_eq!(
        (replay["type"].as_str(), replay["replayed"].as_bool()),
        (Some("ack"), Some(true))
    );
    customer_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": ""}))
        .await;
    let error = customer_ws.next_frame(wait).await.unwrap();
    assert_eq!(
        (error["type"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some("invalid_input"))
    );
    customer_ws.send(json!({"type": "dance"})).await;
    assert_eq!(
        customer_ws.next_frame(wait).await.unwrap()["error"]["code"],
        "invalid_frame"
    );
    // Another tenant's conversation is not there.
    let stranger = app.create_customer("Stranger", "Omsk", "Asia/Omsk").await;
    let mut stranger_ws = open_ws(&app.address, &stranger.token, None).await;
    stranger_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "hi"}))
        .await;
    assert_eq!(
        stranger_ws.next_frame(wait).await.unwrap()["error"]["code"],
        "not_found"
    );
    assert!(
        operator_ws.next(Duration::from_millis(300)).await.is_none(),
        "no replay or error leaks out"
    );
}

async fn typing_is_ephemeral(backend: TestBackend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;
    let poll = {
        let (client, base, token) = (
            app.client.clone(),
            app.address.clone(),
            operator.token.clone(),
        );
        tokio::spawn(async move { long_poll(&client, &base, &token, Some(2), 20.0).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app
        .post(
            &customer.token,
            &format!("/v1/conversations/{conversation}/typing"),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, cursor, events) = poll.await.unwrap();
    assert_eq!(cursor, Some(2), "typing does not move the cursor");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].seq, events[0].event_type.as_str()),
        (None, "typing")
    );
    assert_eq!(events[0].data["conversation_id"], conversation);
    assert_eq!(events[0].data["side"], "customer");
    // Nothing was stored.
    assert_eq!(
        app.store
            .inbox_head(&switchboard::domain::InboxKey::operator(operator.id))
            .await
            .unwrap()
            .last_seq,
        2
    );
    let stranger = app.create_customer("Nosy", "Omsk", "Asia/Omsk").await;
    let response = app
        .post(
            &stranger.token,
            &format!("/v1/conversations/{conversation}/typing"),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn presence_and_connection_caps(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.max_connections_per_user = 2).await
    else {
        return;
    };
    let (customer, operator, _) = chat(&app).await;
    let inbox = switchboard::domain::InboxKey::customer(customer.id);
    assert!(!app.ctx.presence.is_online(&inbox).await);
    let first = open_sse(&app.address, &customer.token, None, "")
        .await
        .unwrap();
    let second = open_sse(&app.address, &customer.token, None, "")
        .await
        .unwrap();
    assert!(
        app.ctx.presence.is_online(&inbox).await,
        "an open stream means online"
    );
    assert!(
        !app.ctx
            .presence
            .is_online(&switchboard::domain::InboxKey::operator(operator.id))
            .await
    );

    let third = open_sse(&app.address, &customer.token, None, "")
        .await
        .err()
        .expect("over the cap");
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(error_code(third).await, "too_many_connections");
    let (status, _, _) = long_poll(&app.client, &app.address, &customer.token, None, 0.0).await;
    assert_eq!(status, 429);
    // Other users are not affected; closing a stream frees its slot.
    assert_eq!(
        long_poll(&app.client, &app.address, &operator.token, None, 0.0)
            .await
            .0,
        200
    );
    drop(first);
    let mut freed = false;
    for _ in 0..50 {
        if open_sse(&app.address, &customer.token, None, "")
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the slot is freed when the client goes away");
    drop(second);
}

async fn one_broadcast_wakes_many_waiters(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| config.max_connections_per_user = 100).await
    else {
        return;
    };
    let (customer, operator, conversation) = chat(&app).await;
    let mut polls = Vec::new();
    for _ in 0..40 {
        let (client, base, token) = (
            app.client.clone(),
            app.address.clone(),
            customer.token.clone(),
        );
        polls.push(tokio::spawn(async move {
            long_poll(&client, &base, &token, Some(2), 20.0).await
        }));
    }
    let inbox = switchboard::domain::InboxKey::customer(customer.id);
    for _ in 0..100 {
        if app.ctx.hub.subscribers(&inbox) == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.ctx.hub.subscribers(&inbox),
        40,
        "forty waiters share one hub slot"
    );
    app.post_message(&operator, conversation, "to all tabs", None)
        .await;
    for poll in polls {
        let (_, cursor, events) = poll.await.unwrap();
        assert_eq!(cursor, Some(3));
        assert_eq!(events[0].data["message"]["text"], "to all tabs");
    }
    for _ in 0..100 {
        if app.ctx.hub.subscribers(&inbox) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.ctx.hub.subscribers(&inbox),
        0,
        "the slot goes with the last waiter"
    );
}

/// IE8/9's XDomainRequest: no custom headers, `text/plain` bodies, the token in the query.
async fn old_browser_requests_work(backend: TestBackend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.cors_origins = vec!["http://shop.example".into()]
    })
    .await
    else {
        return;
    };
    let (customer, _, conversation) = chat(&app).await;
    let response = app
        .client
        .post(app.url(&format!(
            "/v1/conversations/{conversation}/messages?access_token={}",
            customer.token
        )))
        .header("content-type", "text/plain")
        .header("origin", "http://shop.example")
        .body(r#"{"text":"from IE8","client_msg_id":"xdr-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://shop.example"
    );
    // Origins outside the allow-list get no CORS grant.
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/events?timeout=0&access_token={}",
            customer.token
        )))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // A preflight from the allowed origin is answered.
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/events/stream"))
        .header("origin", "http://shop.example")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,last-event-id",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://shop.example"
    );
}

/// A client that never finishes its headers is disconnected (slowloris), on the ordinary path
/// and on the event-stream path (served outside hyper); a malformed stream request gets 400.
async fn slow_headers_are_cut_off(backend: TestBackend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn_app_with(backend, |config| {
        config.header_read_timeout = Duration::from_millis(500)
    })
    .await
    else {
        return;
    };
    let address = app.address.trim_start_matches("http://").to_owned();
    for start in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "GET /v1/events/stream?access_token=x HTTP/1.1\r\nHost: x\r\n",
    ] {
        let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
        slow.write_all(start.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "the server closed the connection: {start}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    let mut garbage = tokio::net::TcpStream::connect(&address).await.unwrap();
    garbage
        .write_all(b"GET /v1/events/stream HTTP/1.1\r\nBad Header Line\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buffer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buffer)
    );

    // A stream's head: close-delimited, not chunked.
    let (customer, _, _) = chat(&app).await;
    let mut raw = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /v1/events/stream?cursor=0&access_token={} HTTP/1.1\r\nHost: x\r\n\r\n",
        customer.token
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("connection: close\r\n") && !head.contains("transfer-encoding"),
        "{head}"
    );

    // A normal client is unaffected.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
