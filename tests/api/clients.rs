//! Minimal real-time clients for tests: long-poll, SSE (parsed by hand from the byte stream, as
//! a browser would) and WebSocket. Each keeps its cursor and resumes with it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// One event as a client sees it: `seq` is `None` for ephemeral events.
#[derive(Clone, Debug)]
pub struct Received {
    pub seq: Option<i64>,
    pub event_type: String,
    pub data: Value,
}

impl Received {
    fn from_json(value: &Value) -> Received {
        Received {
            seq: value["seq"].as_i64(),
            event_type: value["type"].as_str().unwrap_or_default().to_owned(),
            data: value["data"].clone(),
        }
    }
}

/// One long-poll: `(status, cursor, events)`.
pub async fn long_poll(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    cursor: Option<i64>,
    timeout_secs: f64,
) -> (u16, Option<i64>, Vec<Received>) {
    let mut url = format!("{base}/v1/events?timeout={timeout_secs}&access_token={token}");
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={cursor}"));
    }
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let events = body["events"]
        .as_array()
        .map(|e| e.iter().map(Received::from_json).collect())
        .unwrap_or_default();
    (status, body["cursor"].as_i64(), events)
}

/// An open SSE stream.
pub struct SseStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
    pub retry: Option<u64>,
    pub saw_preamble: bool,
}

/// Open `/v1/events/stream`, resuming after `last_event_id` (sent as the header).
pub async fn open_sse(
    base: &str,
    token: &str,
    last_event_id: Option<i64>,
    extra_query: &str,
) -> Result<SseStream, reqwest::Response> {
    let client = reqwest::Client::new();
    let mut request = client.get(format!(
        "{base}/v1/events/stream?access_token={token}{extra_query}"
    ));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    if response.status() != 200 {
        return Err(response);
    }
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    assert!(response.headers().get("content-encoding").is_none());
    Ok(SseStream {
        body: Box::pin(response.bytes_stream()),
        buffer: String::new(),
        retry: None,
        saw_preamble: false,
    })
}

impl SseStream {
    /// The next event, or `None` when the stream ended or `wait` passed.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse_block(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    fn parse_block(&mut self, block: &str) -> Option<Received> {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                if comment.len() >= 2048 {
                    self.saw_preamble = true;
                }
            } else if let Some(value) = line.strip_prefix("retry: ") {
                self.retry = value.parse().ok();
            } else if let Some(value) = line.strip_prefix("id: ") {
                id = value.parse::<i64>().ok();
            } else if let Some(value) = line.strip_prefix("event: ") {
                event = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str::<Value>(value).expect("data is JSON"));
            }
        }
        let data = data?;
        let received = Received::from_json(&data);
        assert_eq!(received.seq, id, "the id line carries the seq");
        assert_eq!(
            Some(&received.event_type),
            event.as_ref(),
            "the event line carries the type"
        );
        Some(received)
    }
}

/// An open WebSocket.
pub struct WsStream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

pub async fn open_ws(base: &str, token: &str, cursor: Option<i64>) -> WsStream {
    let mut url = format!(
        "{}/v1/ws?access_token={token}",
        base.replacen("http://", "ws://", 1)
    );
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={cursor}"));
    }
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    WsStream { socket }
}

impl WsStream {
    /// The next JSON frame (events, acks, errors), or `None` on close or after `wait`.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
            {
                Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next inbox event (skipping acks and errors).
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        loop {
            let frame = self.next_frame(wait).await?;
            if frame
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "ack" || t == "error")
            {
                continue;
            }
            return Some(Received::from_json(&frame));
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
}

/// The transports a collector can use.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    LongPoll,
    Sse,
    Ws,
}

/// Subscribe from cursor 0 over `transport` until the cursor reaches `target` (0 = not known
/// yet), disconnecting at random moments and resuming from the cursor each time, each time on
/// a random node of `bases`. Returns every seq received, in order of arrival.
pub async fn collect(
    transport: Transport,
    bases: Vec<String>,
    token: String,
    target: std::sync::Arc<std::sync::atomic::AtomicI64>,
    seed: u64,
) -> Vec<i64> {
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::Ordering;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let client = reqwest::Client::new();
    let mut seqs: Vec<i64> = Vec::new();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    let done = |seqs: &Vec<i64>| {
        let target = target.load(Ordering::SeqCst);
        target > 0 && seqs.last().copied().unwrap_or(0) >= target
    };
    while !done(&seqs) && tokio::time::Instant::now() < give_up {
        let cursor = seqs.last().copied().unwrap_or(0);
        let base = bases[rng.gen_range(0..bases.len())].clone();
        match transport {
            Transport::LongPoll => {
                let poll = long_poll(&client, &base, &token, Some(cursor), 1.0);
                // Now and then the client gives up on a poll mid-flight (a page unload).
                let answer = if rng.gen_bool(0.2) {
                    match tokio::time::timeout(Duration::from_millis(rng.gen_range(0..300)), poll)
                        .await
                    {
                        Ok(answer) => answer,
                        Err(_) => continue,
                    }
                } else {
                    poll.await
                };
                let (status, new_cursor, events) = answer;
                assert_eq!(status, 200);
                seqs.extend(events.iter().filter_map(|e| e.seq));
                assert_eq!(
                    new_cursor,
                    Some(seqs.last().copied().unwrap_or(cursor)),
                    "the answer's cursor is the last seq"
                );
            }
            Transport::Sse => {
                let Ok(mut stream) = open_sse(&base, &token, Some(cursor), "").await else {
                    continue;
                };
                let take = rng.gen_range(1..30);
                for _ in 0..take {
                    match stream.next(Duration::from_secs(2)).await {
                        Some(event) => seqs.extend(event.seq),
                        None => break,
                    }
                }
            }
            Transport::Ws => {
                let mut socket = open_ws(&base, &token, Some(cursor)).await;
                let take = rng.gen_range(1..30);
                for _ in 0..take {
                    match socket.next(Duration::from_secs(2)).await {
                        Some(event) => seqs.extend(event.seq),
                        None => break,
                    }
                }
            }
        }
    }
    seqs
}

/// `seqs` must be exactly 1..=n: nothing lost, repeated or out of order.
pub fn assert_exactly_once(what: &str, seqs: &[i64], n: i64) {
    let expected: Vec<i64> = (1..=n).collect();
    if seqs != expected.as_slice() {
        let mut seen = std::collections::HashSet::new();
        let duplicates: Vec<_> = seqs.iter().filter(|s| !seen.insert(**s)).collect();
        let missing: Vec<_> = expected.iter().filter(|s| !seqs.contains(s)).collect();
        panic!(
            "{what}: got {} events, want 1..={n}; duplicates {duplicates:?}, missing {missing:?}",
            seqs.len()
        );
    }
}
