//! hyper's HTTP/1 client as the protocol tests drive it: one keep-alive
//! connection over any tokio stream, requests in turn.

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Sends each `(method, path, body)` in turn on one connection over `io`
/// (the connection task on the current tokio runtime) and returns every
/// answer's status and body; then closes the connection and waits for it
/// to end cleanly.
pub async fn send_all<I>(io: I, requests: &[(&str, &str, Bytes)]) -> io::Result<Vec<(u16, Bytes)>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    let conn = tokio::spawn(conn);
    let mut answers = Vec::with_capacity(requests.len());
    for (method, path, body) in requests {
        let request = hyper::Request::builder()
            .method(*method)
            .uri(*path)
            .header("host", "localhost")
            .body(Full::new(body.clone()))
            .map_err(io::Error::other)?;
        let response = send.send_request(request).await.map_err(io::Error::other)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?;
        answers.push((status, body.to_bytes()));
    }
    drop(send);
    conn.await?.map_err(io::Error::other)?;
    Ok(answers)
}
