//! Buffered, memory-frugal I/O on one connection's byte stream.
//!
//! [`Transport`] owns the stream, a read buffer and a write buffer, and reads and writes in one
//! poll ([`Transport::event`]), so the connection task never splits the stream and never
//! blocks reads behind a slow write. Packets are encoded into the write buffer and go out
//! together: one write (and one flush) per batch, not per packet.
//!
//! Memory: an idle connection holds a read buffer of about `MIN_READ` bytes and an empty
//! write buffer. The read size doubles while reads fill the buffer (bursts) and drops back to
//! about twice the last read when a read uses less than a quarter of it; an empty buffer much
//! larger than the read size (grown for a burst or a large packet) is replaced by a small one. PUBLISH payloads are
//! split out of the read buffer, so the buffer's allocation lives until the application drops
//! the payload; a new one is allocated for the next read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::codec;

/// Smallest (and initial) read size.
const MIN_READ: usize = 512;
/// Largest read size.
const MAX_READ: usize = 64 * 1024;
/// A write buffer larger than this is released after it was flushed.
const KEEP_WRITE_CAPACITY: usize = 4 * 1024;

/// What [`Transport::event`] observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoEvent {
    /// Bytes were appended to the read buffer.
    Read,
    /// The peer closed its side.
    Eof,
    /// The write buffer was written out and flushed.
    Flushed,
}

/// See the module documentation.
pub(crate) struct Transport<S> {
    stream: S,
    /// Bytes received and not yet decoded.
    pub(crate) rbuf: BytesMut,
    /// Encoded packets not yet written.
    pub(crate) wbuf: BytesMut,
    needs_flush: bool,
    read_size: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            needs_flush: false,
            read_size: MIN_READ,
        }
    }

    /// Whether written bytes are still waiting to go out.
    pub(crate) fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty() || self.needs_flush
    }

    /// Makes progress on writing, then (if `read`) waits for bytes to read; resolves with the
    /// first thing that happened. Cancel-safe: nothing is lost if the future is dropped.
    pub(crate) async fn event(&mut self, read: bool) -> io::Result<IoEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx, read)).await
    }

    /// Writes and flushes everything buffered.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        while self.has_pending_writes() {
            self.event(false).await?;
        }
        Ok(())
    }

    /// Flushes and shuts the write side down (TLS close_notify, TCP FIN).
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, read: bool) -> Poll<io::Result<IoEvent>> {
        if let Poll::Ready(flushed) = self.poll_write(cx) {
            return Poll::Ready(flushed.map(|()| IoEvent::Flushed));
        }
        if !read {
            return Poll::Pending;
        }
        self.prepare_read();
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            &mut self.rbuf
        ))?;
        if n == 0 {
            return Poll::Ready(Ok(IoEvent::Eof));
        }
        if n == spare {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            // The burst is over: shrink at once, so an idle connection holds a small buffer.
            self.read_size = (n * 2).next_power_of_two().clamp(MIN_READ, MAX_READ);
        }
        Poll::Ready(Ok(IoEvent::Read))
    }

    /// Writes the buffer out, then flushes. `Ready(Ok)` only when a flush completed; `Pending`
    /// when there is nothing to do or the stream is not ready.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wbuf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.wbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.wbuf.advance(n);
                    self.needs_flush = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !self.needs_flush {
            return Poll::Pending;
        }
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        self.needs_flush = false;
        if self.wbuf.capacity() > KEEP_WRITE_CAPACITY {
            self.wbuf = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Makes room for the next read: the rest of a partly received packet, or `read_size`.
    /// The caller decoded everything decodable first, so a partly received packet is within
    /// the size limit.
    fn prepare_read(&mut self) {
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if let Ok(Some(total)) = codec::frame_length(&self.rbuf)
            && let Some(rest) = total.checked_sub(self.rbuf.len())
            && rest > spare
        {
            self.rbuf.reserve(rest);
        } else if self.rbuf.is_empty() && (spare < MIN_READ || spare > 4 * self.read_size) {
            // A fresh buffer: never inherit the size of an earlier large one.
            self.rbuf = BytesMut::with_capacity(self.read_size);
        } else if spare < MIN_READ {
            self.rbuf.reserve(self.read_size);
        }
    }
}
