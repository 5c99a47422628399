//! # vaccel-transport
//!
//! Byte-stream transports chosen by URL, in the style of ttrpc:
//!
//! | URL | meaning |
//! |---|---|
//! | `unix:///run/vaccel.sock` | Unix stream socket |
//! | `tcp://127.0.0.1:65500` | TCP (Nagle off on both sides) |
//! | `vsock://2:2048` | AF_VSOCK, context id and port (guest → host is CID 2) |
//! | `hybrid-vsock:///run/fc.vsock:2048` | Firecracker / Cloud Hypervisor hybrid vsock: the VMM maps guest connections to vsock port P onto the host Unix socket `<path>_P`, where the agent listens |
//!
//! Clients get a blocking [`Stream`] ([`connect`]); the agent binds async
//! listeners (feature `server`, tokio) and serves each accepted connection
//! as a `BlockingStream` from plain threads. Any `Read + Write` byte stream works
//! with the protocol, which is the extension point for other transports.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::{AsyncStream, BlockingStream, Listener, ListenerOptions};

/// Why an address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid address '{addr}': {why} (use unix:///path, tcp://host:port, vsock://cid:port or hybrid-vsock:///path:port)"
)]
pub struct AddressError {
    addr: String,
    why: String,
}

/// A transport address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// Unix stream socket at a path.
    Unix(PathBuf),
    /// TCP `host:port`.
    Tcp(String),
    /// AF_VSOCK context id and port.
    Vsock {
        /// Context id (2 = host, 1 = local loopback).
        cid: u32,
        /// Port.
        port: u32,
    },
    /// Hybrid vsock: the Unix socket `<uds>_<port>` on the host.
    HybridVsock {
        /// The VMM's vsock Unix socket path.
        uds: PathBuf,
        /// Guest port.
        port: u32,
    },
}

impl Address {
    /// For hybrid vsock, the host socket the agent listens on; else `None`.
    pub fn hybrid_socket_path(&self) -> Option<PathBuf> {
        match self {
            Address::HybridVsock { uds, port } => {
                let mut s = uds.as_os_str().to_owned();
                s.push(format!("_{port}"));
                Some(PathBuf::from(s))
            }
            _ => None,
        }
    }

    /// The Unix socket path to bind or connect for `unix://` and hybrid addresses.
    pub fn unix_path(&self) -> Option<PathBuf> {
        match self {
            Address::Unix(p) => Some(p.clone()),
            Address::HybridVsock { .. } => self.hybrid_socket_path(),
            _ => None,
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        let err = |why: &str| AddressError {
            addr: s.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| err("missing scheme"))?;
        let port = |p: &str| p.parse::<u32>().map_err(|_| err("port is not a number"));
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(err("empty socket path"));
                }
                Ok(Address::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let (host, p) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| err("expected host:port"))?;
                if host.is_empty() {
                    return Err(err("empty host"));
                }
                p.parse::<u16>().map_err(|_| err("port must be 0-65535"))?;
                Ok(Address::Tcp(rest.to_string()))
            }
            "vsock" => {
                let (cid, p) = rest
                    .split_once(':')
                    .ok_or_else(|| err("expected cid:port"))?;
                let cid = cid.parse::<u32>().map_err(|_| err("cid is not a number"))?;
                Ok(Address::Vsock {
                    cid,
                    port: port(p)?,
                })
            }
            "hybrid-vsock" => {
                let (path, p) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| err("expected /path:port"))?;
                if path.is_empty() {
                    return Err(err("empty socket path"));
                }
                Ok(Address::HybridVsock {
                    uds: PathBuf::from(path),
                    port: port(p)?,
                })
            }
            other => Err(err(&format!("unknown scheme '{other}'"))),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp://{a}"),
            Address::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Address::HybridVsock { uds, port } => {
                write!(f, "hybrid-vsock://{}:{port}", uds.display())
            }
        }
    }
}

/// A connected, blocking byte stream.
#[derive(Debug)]
pub enum Stream {
    /// Unix socket.
    Unix(std::os::unix::net::UnixStream),
    /// TCP.
    Tcp(std::net::TcpStream),
    /// vsock.
    Vsock(vsock::VsockStream),
}

macro_rules! each {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            Stream::Unix($v) => $e,
            Stream::Tcp($v) => $e,
            Stream::Vsock($v) => $e,
        }
    };
}

impl Stream {
    /// Another handle to the same connection (for a separate writer).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Vsock(s) => Stream::Vsock(s.try_clone()?),
        })
    }

    /// Read timeout (`None`: block).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(d))
    }

    /// Write timeout (`None`: block).
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(d))
    }

    /// Close both directions (wakes a reader blocked on another handle).
    pub fn shutdown(&self) -> io::Result<()> {
        each!(self, s => s.shutdown(std::net::Shutdown::Both))
    }

    /// Send what fits in the socket's buffer now, without waiting (0 or
    /// `WouldBlock`: nothing went out).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = each!(self, s => std::os::fd::AsRawFd::as_raw_fd(s));
        let flags =
            nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_NOSIGNAL;
        loop {
            match nix::sys::socket::send(fd, buf, flags) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Read what is queued now, without waiting: `Ok(None)` when nothing
    /// is (`Ok(Some(0))`: the peer closed). For busy polling.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let fd = each!(self, s => std::os::fd::AsRawFd::as_raw_fd(s));
        loop {
            match nix::sys::socket::recv(fd, buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT) {
                Ok(n) => return Ok(Some(n)),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether this is a Unix socket (shared-memory capable).
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Write every byte of every slice, passing `fd` to the peer with the
    /// first bytes (`SCM_RIGHTS`). Unix sockets only.
    pub fn write_all_vectored_with_fd(
        &mut self,
        bufs: &mut [IoSlice<'_>],
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> io::Result<()> {
        let Stream::Unix(s) = self else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "file descriptors travel only over Unix sockets",
            ));
        };
        let raw = [std::os::fd::AsRawFd::as_raw_fd(&fd)];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
        let sock = std::os::fd::AsRawFd::as_raw_fd(s);
        let n = loop {
            match nix::sys::socket::sendmsg::<()>(
                sock,
                bufs,
                &cmsg,
                nix::sys::socket::MsgFlags::empty(),
                None,
            ) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        };
        let mut rest = &mut bufs[..];
        IoSlice::advance_slices(&mut rest, n);
        self.write_all_vectored(rest)
    }

    /// Write every byte of every slice (`writev`, retried on short writes;
    /// a single slice goes with one `send`, which is cheaper).
    pub fn write_all_vectored(&mut self, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        if let [one] = bufs {
            return self.write_all(one);
        }
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            let n = self.write_vectored(bufs)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

fn connect_unix(p: &Path) -> io::Result<Stream> {
    std::os::unix::net::UnixStream::connect(p).map(Stream::Unix)
}

/// Connect to `addr`, waiting at most `timeout` for TCP.
pub fn connect(addr: &Address, timeout: Duration) -> io::Result<Stream> {
    match addr {
        Address::Unix(_) | Address::HybridVsock { .. } => {
            connect_unix(&addr.unix_path().expect("unix path"))
        }
        Address::Tcp(a) => {
            let mut last = io::Error::new(
                io::ErrorKind::NotFound,
                format!("{a} resolves to no address"),
            );
            for sa in std::net::ToSocketAddrs::to_socket_addrs(a)? {
                match std::net::TcpStream::connect_timeout(&sa, timeout) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        Address::Vsock { cid, port } => {
            vsock::VsockStream::connect_with_cid_port(*cid, *port).map(Stream::Vsock)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for s in [
            "unix:///run/vaccel.sock",
            "tcp://127.0.0.1:65500",
            "vsock://2:2048",
            "hybrid-vsock:///run/fc.vsock:2048",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        let a: Address = "hybrid-vsock:///run/fc.vsock:2048".parse().unwrap();
        assert_eq!(
            a.hybrid_socket_path().unwrap(),
            PathBuf::from("/run/fc.vsock_2048")
        );
        assert_eq!(a.unix_path().unwrap(), PathBuf::from("/run/fc.vsock_2048"));
        let t: Address = "tcp://[::1]:80".parse().unwrap();
        assert_eq!(t, Address::Tcp("[::1]:80".into()));
    }

    #[test]
    fn bad_addresses_say_why() {
        for (s, why) in [
            ("/run/x.sock", "missing scheme"),
            ("unix://", "empty socket path"),
            ("tcp://localhost", "expected host:port"),
            ("tcp://:80", "empty host"),
            ("tcp://h:99999", "port must be 0-65535"),
            ("vsock://x:1", "cid is not a number"),
            ("vsock://2", "expected cid:port"),
            ("http://x:1", "unknown scheme 'http'"),
        ] {
            let e = s.parse::<Address>().unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains("unix:///path"), "{e}");
        }
    }

    #[test]
    fn unix_round_trip_with_vectored_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let addr = Address::Unix(p);
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 11];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let mut c = connect(&addr, Duration::from_secs(1)).unwrap();
        let mut parts = [
            IoSlice::new(b"hello"),
            IoSlice::new(b" "),
            IoSlice::new(b"world"),
        ];
        c.write_all_vectored(&mut parts).unwrap();
        let mut b = [0u8; 11];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello world");
        t.join().unwrap();
    }

    #[test]
    fn file_descriptors_cross_unix_sockets() {
        use std::os::fd::AsFd;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut a = Stream::Unix(a);
        let f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &f, b"through the fd").unwrap();
        let mut parts = [IoSlice::new(b"head"), IoSlice::new(b"tail")];
        a.write_all_vectored_with_fd(&mut parts, f.as_fd()).unwrap();
        let mut buf = [0u8; 8];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&b),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut got = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                got = fds.first().copied();
            }
        }
        assert_eq!(msg.bytes, 8);
        let fd = got.expect("an fd arrived");
        // SAFETY: the kernel just installed this fd for us; we own it now.
        let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut s = String::new();
        std::io::Seek::rewind(&mut file).unwrap();
        file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "through the fd");
        // Over TCP it is refused, clearly.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut t = Stream::Tcp(std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let e = t
            .write_all_vectored_with_fd(&mut [IoSlice::new(b"x")], f.as_fd())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn connecting_to_nothing_is_an_error() {
        let e = connect(
            &Address::Unix("/nonexistent/x.sock".into()),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            connect(
                &"tcp://127.0.0.1:1".parse().unwrap(),
                Duration::from_millis(200)
            )
            .is_err()
        );
    }
}
