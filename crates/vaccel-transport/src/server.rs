//! Async listeners for the agent (tokio).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Address;

/// Listener options.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// Mode of created Unix sockets (default 0o600: owner only).
    pub unix_mode: u32,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions { unix_mode: 0o600 }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// Unix (also hybrid vsock).
    Unix(tokio::net::UnixListener, PathBuf),
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// vsock.
    Vsock(tokio_vsock::VsockListener),
}

/// An accepted connection.
#[derive(Debug)]
pub enum AsyncStream {
    /// Unix.
    Unix(tokio::net::UnixStream),
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// vsock.
    Vsock(tokio_vsock::VsockStream),
}

impl Listener {
    /// Bind `addr`. A stale Unix socket file (nothing accepting on it) is
    /// replaced; a live one is an `AddrInUse` error.
    pub async fn bind(addr: &Address, opts: &ListenerOptions) -> io::Result<Listener> {
        match addr {
            Address::Unix(_) | Address::HybridVsock { .. } => {
                let path = addr.unix_path().expect("unix path");
                if path.exists() {
                    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} is in use by another process", path.display()),
                        ));
                    }
                    std::fs::remove_file(&path)?;
                }
                let l = tokio::net::UnixListener::bind(&path)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(opts.unix_mode))?;
                Ok(Listener::Unix(l, path))
            }
            Address::Tcp(a) => Ok(Listener::Tcp(tokio::net::TcpListener::bind(a).await?)),
            Address::Vsock { cid, port } => {
                let va = tokio_vsock::VsockAddr::new(*cid, *port);
                Ok(Listener::Vsock(tokio_vsock::VsockListener::bind(va)?))
            }
        }
    }

    /// The address actually bound (TCP port 0 resolves to the real port).
    pub fn local_address(&self) -> io::Result<Address> {
        Ok(match self {
            Listener::Unix(_, p) => Address::Unix(p.clone()),
            Listener::Tcp(l) => Address::Tcp(l.local_addr()?.to_string()),
            Listener::Vsock(l) => {
                let a = l.local_addr()?;
                Address::Vsock {
                    cid: a.cid(),
                    port: a.port(),
                }
            }
        })
    }

    /// Accept one connection; returns the stream and a printable peer.
    pub async fn accept(&self) -> io::Result<(AsyncStream, String)> {
        match self {
            Listener::Unix(l, p) => {
                let (s, _) = l.accept().await?;
                let peer = match s.peer_cred() {
                    Ok(c) => format!("unix:{} pid={:?} uid={}", p.display(), c.pid(), c.uid()),
                    Err(_) => format!("unix:{}", p.display()),
                };
                Ok((AsyncStream::Unix(s), peer))
            }
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((AsyncStream::Tcp(s), format!("tcp:{a}")))
            }
            Listener::Vsock(l) => {
                let (s, a) = l.accept().await?;
                Ok((
                    AsyncStream::Vsock(s),
                    format!("vsock:{}:{}", a.cid(), a.port()),
                ))
            }
        }
    }

    /// Whether connections on this listener need the shared token.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Listener::Tcp(_))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

macro_rules! pin_each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self.get_mut() {
            AsyncStream::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
            AsyncStream::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            AsyncStream::Vsock($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl AsyncRead for AsyncStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        pin_each!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for AsyncStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        pin_each!(self, s => s.poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        pin_each!(self, s => s.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        pin_each!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        pin_each!(self, s => s.poll_shutdown(cx))
    }
}
