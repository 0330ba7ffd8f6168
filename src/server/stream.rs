//! Event streams on the bare socket. An SSE response lives for hours and carries a few bytes a
//! minute, but a hyper connection keeps an 8 KiB read buffer and an 8 KiB write buffer for its
//! whole life. So a connection whose request line is `GET /v1/events/stream` is served here
//! instead: the request head is read into a small buffer and parsed with `httparse`, the same
//! router (and every middleware: CORS, tracing, metrics, auth) answers it, and the response is
//! written straight to the socket, close-delimited (`Connection: close`, no chunking). What
//! stays per connection is the response stream's own state, a task and the socket.

use std::{io, time::Duration};

use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, Request, Version},
    Router,
};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower::ServiceExt;

/// The request line prefix served here.
const STREAM_PREFIX: &[u8] = b"GET /v1/events/stream";
/// Longest request head accepted on this path (the token is in the query).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// Does the connection start with a request for the event stream? Waits (within `timeout`)
/// until enough bytes arrived to tell; anything else goes to hyper.
pub async fn is_event_stream(stream: &TcpStream, timeout: Duration) -> bool {
    let mut head = [0u8; STREAM_PREFIX.len()];
    let peek = async {
        loop {
            let n = stream.peek(&mut head).await?;
            if n == 0 || n >= STREAM_PREFIX.len() || !STREAM_PREFIX.starts_with(&head[..n]) {
                return io::Result::Ok(n);
            }
            // A partial first packet: give the rest a moment.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    matches!(tokio::time::timeout(timeout, peek).await, Ok(Ok(n)) if n >= STREAM_PREFIX.len() && head == STREAM_PREFIX)
}

/// Serve one event-stream request on `stream`, then close it.
pub async fn serve(mut stream: TcpStream, app: Router, header_timeout: Duration) -> io::Result<()> {
    let request = match tokio::time::timeout(header_timeout, read_head(&mut stream)).await {
        Ok(Ok(request)) => request,
        Ok(Err(_)) => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, mut body) = response.into_parts();

    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        if name == "connection" || name == "transfer-encoding" {
            continue;
        }
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or(""));
        head.push_str("\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    let (mut reader, mut writer) = stream.split();
    writer.write_all(head.as_bytes()).await?;
    drop(head);

    // Write frames as they come; stop when the body ends or the client goes away (a read
    // returning 0 or an error: clients send nothing after the request).
    let mut probe = [0u8; 16];
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        writer.write_all(data).await?;
                    }
                }
                Some(Err(_)) | None => break,
            },
            read = reader.read(&mut probe) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            },
        }
    }
    let _ = writer.shutdown().await;
    Ok(())
}

/// Read and parse the request head into a bodiless request.
async fn read_head(stream: &mut TcpStream) -> io::Result<Request<Body>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("closed before the end of the head"));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&buffer[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(invalid("malformed request head")),
    }
    let mut request = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| invalid("bad header name"))?;
        let value =
            HeaderValue::from_bytes(header.value).map_err(|_| invalid("bad header value"))?;
        request = request.header(name, value);
    }
    request
        .body(Body::empty())
        .map_err(|_| invalid("bad request line"))
}
