//! A minimal HTTP/1.1 client over one kept-alive TLS connection, enough for the hub's
//! registry API: requests with a body, responses framed by `Content-Length`.
//!
//! Invariant: a response whose framing this client does not understand (chunked transfer
//! coding, a missing length) is an error, and the caller drops the connection.

use std::io::Write as _;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A response: its status and body.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// One HTTP/1.1 connection.
pub struct Connection {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
}

impl Connection {
    /// Wraps an open TLS stream.
    pub fn new(stream: TlsStream<TcpStream>) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Sends `method path` with the given headers and a JSON body and reads the response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        json_body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut bytes = Vec::with_capacity(512 + json_body.len());
        write!(bytes, "{method} {path} HTTP/1.1\r\n")?;
        for (name, value) in headers {
            write!(bytes, "{name}: {value}\r\n")?;
        }
        write!(
            bytes,
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            json_body.len()
        )?;
        bytes.extend_from_slice(json_body);
        self.stream.write_all(&bytes).await.context("write")?;
        self.stream.flush().await.context("write")?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<Response> {
        let head_len = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
            self.fill().await?;
        };
        let (status, body_len) = parse_head(&self.buf[..head_len])?;
        while self.buf.len() < head_len + body_len {
            self.fill().await?;
        }
        let mut response = self.buf.split_to(head_len + body_len);
        let body = response.split_off(head_len).freeze();
        Ok(Response { status, body })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.stream.read_buf(&mut self.buf).await.context("read")? == 0 {
            bail!("connection closed mid-response");
        }
        Ok(())
    }
}

/// The status code and body length of a response head.
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let head = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("malformed status line")?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("transfer-encoding {} is not supported", value.trim());
        }
    }
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    match length {
        Some(n) => Ok((status, n)),
        None if no_body => Ok((status, 0)),
        None => bail!("response without Content-Length"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(parse_head(head).unwrap(), (200, 12));
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            (204, 0)
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
