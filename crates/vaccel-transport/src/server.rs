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

/// The read side of an accepted connection. On Unix sockets it also
/// collects file descriptors the peer passes (`SCM_RIGHTS`).
#[derive(Debug)]
pub enum ReadSide {
    /// Unix socket: read with `recvmsg`.
    Unix(tokio::net::unix::OwnedReadHalf),
    /// Any other stream.
    Other(tokio::io::ReadHalf<AsyncStream>),
}

/// The write side of an accepted connection.
pub type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;

impl AsyncStream {
    /// Split into read and write sides.
    pub fn into_sides(self) -> (ReadSide, WriteSide) {
        match self {
            AsyncStream::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadSide::Unix(r), Box::new(w))
            }
            other => {
                let (r, w) = tokio::io::split(other);
                (ReadSide::Other(r), Box::new(w))
            }
        }
    }
}

/// Most descriptors accepted with one read.
const MAX_FDS: usize = 4;

fn recv_with_fds(
    sock: std::os::fd::RawFd,
    buf: &mut [u8],
    fds: &mut Vec<std::os::fd::OwnedFd>,
) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let n = msg.bytes;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel installed these descriptors in this
                    // process for this message; nothing else owns them.
                    fds.push(unsafe {
                        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
                    });
                }
            }
        }
    }
    Ok(n)
}

impl ReadSide {
    /// Whether descriptors can arrive on this connection.
    pub fn passes_fds(&self) -> bool {
        matches!(self, ReadSide::Unix(_))
    }

    /// Fill `buf` completely; descriptors that arrive meanwhile go to `fds`.
    /// An orderly close before the first byte is `UnexpectedEof`.
    pub async fn read_exact_fds(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<std::os::fd::OwnedFd>,
    ) -> io::Result<()> {
        match self {
            ReadSide::Other(r) => tokio::io::AsyncReadExt::read_exact(r, buf)
                .await
                .map(|_| ()),
            ReadSide::Unix(r) => {
                let s: &tokio::net::UnixStream = r.as_ref();
                let raw = std::os::fd::AsRawFd::as_raw_fd(s);
                let mut got = 0;
                while got < buf.len() {
                    s.readable().await?;
                    match s.try_io(tokio::io::Interest::READABLE, || {
                        recv_with_fds(raw, &mut buf[got..], fds)
                    }) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
}
