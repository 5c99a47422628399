//! Async listeners for the agent (tokio).

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
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

/// An accepted connection in blocking mode, served by plain threads.
///
/// The agent accepts on tokio but serves each connection with blocking
/// `recvmsg`/`sendmsg` calls from its own threads: a reply then costs two
/// system calls and no reactor round trip. Every call works on a shared
/// reference, so one thread can read while others write, and a shutdown
/// from any thread wakes a blocked reader.
#[derive(Debug)]
pub struct BlockingStream {
    fd: OwnedFd,
    unix: bool,
}

/// Most descriptors accepted with one read.
const MAX_FDS: usize = 4;

impl AsyncStream {
    /// Leave the reactor and switch the socket to blocking mode.
    pub fn into_blocking(self) -> io::Result<BlockingStream> {
        let (fd, unix) = match self {
            AsyncStream::Unix(s) => (OwnedFd::from(s.into_std()?), true),
            AsyncStream::Tcp(s) => (OwnedFd::from(s.into_std()?), false),
            AsyncStream::Vsock(s) => (OwnedFd::from(s), false),
        };
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_retain(flags) & !OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        Ok(BlockingStream { fd, unix })
    }
}

impl AsFd for BlockingStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl BlockingStream {
    /// Whether descriptors can arrive on this connection (a Unix socket).
    pub fn passes_fds(&self) -> bool {
        self.unix
    }

    /// One blocking read into `buf` (0: the peer closed). On a Unix socket,
    /// descriptors passed with these bytes (`SCM_RIGHTS`) go to `fds`.
    /// With `wait_all` the kernel waits until `buf` is full (or EOF, or a
    /// signal): one call for a large payload instead of one per segment.
    pub fn recv(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        wait_all: bool,
    ) -> io::Result<usize> {
        let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
        if wait_all {
            flags |= MsgFlags::MSG_WAITALL;
        }
        self.recv_flags(buf, fds, flags)
    }

    /// Like [`recv`](Self::recv) without waiting: `Ok(None)` when no bytes
    /// are queued. For busy polling.
    pub fn try_recv(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<Option<usize>> {
        match self.recv_flags(
            buf,
            fds,
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_flags(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        flags: MsgFlags,
    ) -> io::Result<usize> {
        let raw = self.fd.as_raw_fd();
        loop {
            let r = if self.unix {
                // Aligned for `cmsghdr`; room for MAX_FDS descriptors.
                let mut space = [0u64; 4 + MAX_FDS / 2];
                let mut iov = [io::IoSliceMut::new(&mut *buf)];
                recvmsg::<()>(raw, &mut iov, Some(bytemuck_bytes(&mut space)), flags).map(|msg| {
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(got) = c {
                                for fd in got {
                                    // SAFETY: the kernel installed these
                                    // descriptors in this process for this
                                    // message; nothing else owns them.
                                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                                }
                            }
                        }
                    }
                    msg.bytes
                })
            } else {
                nix::sys::socket::recv(raw, buf, flags - MsgFlags::MSG_CMSG_CLOEXEC)
            };
            match r {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One `sendmsg` of as much of `bufs` as the socket takes (never
    /// `SIGPIPE`; at most `IOV_MAX` slices). With `dont_wait` it returns
    /// `WouldBlock` rather than wait for room.
    pub fn send(&self, bufs: &[IoSlice<'_>], dont_wait: bool) -> io::Result<usize> {
        const IOV_MAX: usize = 1024;
        let bufs = &bufs[..bufs.len().min(IOV_MAX)];
        let mut flags = MsgFlags::MSG_NOSIGNAL;
        if dont_wait {
            flags |= MsgFlags::MSG_DONTWAIT;
        }
        loop {
            // A single buffer goes with send(2): measurably cheaper than
            // sendmsg(2) for the small replies that dominate.
            let r = match bufs {
                [one] => nix::sys::socket::send(self.fd.as_raw_fd(), one, flags),
                _ => sendmsg::<()>(self.fd.as_raw_fd(), bufs, &[], flags, None),
            };
            match r {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Shut down one or both directions. Shutting down the read side wakes
    /// a thread blocked in [`recv`](Self::recv) (it reads what is queued,
    /// then 0).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => nix::sys::socket::Shutdown::Read,
            std::net::Shutdown::Write => nix::sys::socket::Shutdown::Write,
            std::net::Shutdown::Both => nix::sys::socket::Shutdown::Both,
        };
        nix::sys::socket::shutdown(self.fd.as_raw_fd(), how).map_err(io::Error::from)
    }
}

fn bytemuck_bytes(w: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and every byte pattern is a valid u8; the
    // slice covers exactly the words' memory.
    unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<u8>(), w.len() * 8) }
}
