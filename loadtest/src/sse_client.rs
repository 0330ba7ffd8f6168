//! A bare SSE client on a raw socket: one request, then frames. Light enough to hold thousands
//! per process, and able to bind a chosen 127.0.0.x source address so many connections do not
//! exhaust one address's ephemeral ports.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

pub struct SseConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// Connect from `source` to `server` and open `/v1/events/stream` with `token`.
pub async fn open(
    server: SocketAddr,
    source: Ipv4Addr,
    token: &str,
    query: &str,
) -> anyhow::Result<SseConnection> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .context("binding the source address")?;
    let mut stream = socket.connect(server).await.context("connecting")?;
    let request = format!("GET /v1/events/stream?access_token={token}{query} HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut connection = SseConnection {
        stream,
        buffer: Vec::with_capacity(1024),
    };
    let head = connection.read_until(b"\r\n\r\n").await?;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "stream refused: {}",
        String::from_utf8_lossy(&head[..head.len().min(200)])
    );
    Ok(connection)
}

impl SseConnection {
    async fn read_until(&mut self, marker: &[u8]) -> anyhow::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buffer.windows(marker.len()).position(|w| w == marker) {
                let rest = self.buffer.split_off(at + marker.len());
                return Ok(std::mem::replace(&mut self.buffer, rest));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait for the next frame that carries an `id:` line (a stored event) and return its id.
    /// The body is chunked; chunk-size lines never contain "id: " at a line start.
    pub async fn next_event_id(&mut self) -> anyhow::Result<i64> {
        loop {
            let block = self.read_until(b"\n\n").await?;
            let text = String::from_utf8_lossy(&block);
            if let Some(id) = text.lines().find_map(|line| line.strip_prefix("id: ")) {
                return Ok(id.trim().parse()?);
            }
        }
    }
}

/// The i-th of `count` source addresses 127.0.0.2, 127.0.0.3, …
pub fn source_address(i: usize, count: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % count.max(1)) as u8)
}
