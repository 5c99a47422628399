//! The one error type of the runtime, with stable errno-style codes.
//!
//! Every error carries a [`Code`] (the same numeric values as upstream
//! vAccel's `VACCEL_E*` macros, which are Linux errno values) and a message
//! that says what was wrong and, where it helps, what to do about it.

use std::fmt;

/// Stable error codes. The numeric values are Linux errno values, matching
/// upstream vAccel's `VACCEL_E*` definitions, and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum Code {
    /// Operation not permitted (`VACCEL_EPERM`).
    Perm = 1,
    /// No such file, plugin, symbol, session or resource (`VACCEL_ENOENT`).
    NoEnt = 2,
    /// I/O error (`VACCEL_EIO`).
    Io = 5,
    /// Exec format error (`VACCEL_ENOEXEC`).
    NoExec = 8,
    /// Resource temporarily unavailable (`VACCEL_EAGAIN`).
    Again = 11,
    /// Out of memory, or a configured memory limit was hit (`VACCEL_ENOMEM`).
    NoMem = 12,
    /// Busy: e.g. a resource that is still registered (`VACCEL_EBUSY`).
    Busy = 16,
    /// Already exists (`VACCEL_EEXIST`).
    Exist = 17,
    /// Invalid argument (`VACCEL_EINVAL`).
    Inval = 22,
    /// Out of range (`VACCEL_ERANGE`).
    Range = 34,
    /// Backend (plugin) failure (`VACCEL_EBACKEND`, which upstream defines as `EPROTO`).
    Backend = 71,
    /// A shared library that is not a valid plugin (`VACCEL_ELIBBAD`).
    LibBad = 80,
    /// Operation or plugin type not supported (`VACCEL_ENOTSUP`).
    NotSup = 95,
    /// Connection to a remote agent reset (`VACCEL_ESESS`, upstream `ECONNRESET`).
    Sess = 104,
    /// Timed out (`ETIMEDOUT`).
    TimedOut = 110,
    /// Remote I/O error (`VACCEL_EREMOTEIO`).
    RemoteIo = 121,
}

impl Code {
    /// Every code, for tables and tests.
    pub const ALL: [Code; 16] = [
        Code::Perm,
        Code::NoEnt,
        Code::Io,
        Code::NoExec,
        Code::Again,
        Code::NoMem,
        Code::Busy,
        Code::Exist,
        Code::Inval,
        Code::Range,
        Code::Backend,
        Code::LibBad,
        Code::NotSup,
        Code::Sess,
        Code::TimedOut,
        Code::RemoteIo,
    ];

    /// The numeric (errno) value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code for an errno value, if it is one of ours.
    pub fn from_i32(v: i32) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_i32() == v)
    }

    /// The upstream-style symbolic name, e.g. `EINVAL`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Perm => "EPERM",
            Code::NoEnt => "ENOENT",
            Code::Io => "EIO",
            Code::NoExec => "ENOEXEC",
            Code::Again => "EAGAIN",
            Code::NoMem => "ENOMEM",
            Code::Busy => "EBUSY",
            Code::Exist => "EEXIST",
            Code::Inval => "EINVAL",
            Code::Range => "ERANGE",
            Code::Backend => "EBACKEND",
            Code::LibBad => "ELIBBAD",
            Code::NotSup => "ENOTSUP",
            Code::Sess => "ESESS",
            Code::TimedOut => "ETIMEDOUT",
            Code::RemoteIo => "EREMOTEIO",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A runtime error: a stable [`Code`] plus a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: Code,
    message: String,
}

/// Result alias used across the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! ctor {
    ($($(#[$m:meta])* $name:ident => $code:ident;)*) => {
        $(
            $(#[$m])*
            pub fn $name(message: impl Into<String>) -> Error {
                Error::new(Code::$code, message)
            }
        )*
    };
}

impl Error {
    /// An error with the given code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    ctor! {
        /// `EINVAL`: the caller passed something invalid.
        inval => Inval;
        /// `ENOTSUP`: not supported by the chosen plugin or this build.
        notsup => NotSup;
        /// `ENOENT`: something named does not exist.
        noent => NoEnt;
        /// `EPERM`: not allowed.
        perm => Perm;
        /// `EBACKEND`: the plugin failed.
        backend => Backend;
        /// `ELIBBAD`: a shared library is not a usable plugin.
        libbad => LibBad;
        /// `EBUSY`: still in use.
        busy => Busy;
        /// `ENOMEM`: a memory limit was hit.
        nomem => NoMem;
        /// `EIO`: reading or writing failed.
        io => Io;
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The errno value of the code.
    pub fn errno(&self) -> i32 {
        self.code.as_i32()
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with context, keeping the code.
    pub fn context(mut self, ctx: impl fmt::Display) -> Error {
        self.message = format!("{ctx}: {}", self.message);
        self
    }

    /// An `EIO`/`ENOENT`/`EPERM` error for a failed file operation on `path`.
    pub fn from_io(err: &std::io::Error, what: impl fmt::Display) -> Error {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound => Code::NoEnt,
            std::io::ErrorKind::PermissionDenied => Code::Perm,
            std::io::ErrorKind::OutOfMemory => Code::NoMem,
            _ => Code::Io,
        };
        Error::new(code, format!("{what}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_upstream_errno_values() {
        assert_eq!(Code::Inval.as_i32(), 22);
        assert_eq!(Code::NotSup.as_i32(), 95);
        assert_eq!(Code::NoEnt.as_i32(), 2);
        assert_eq!(Code::Perm.as_i32(), 1);
        assert_eq!(Code::Backend.as_i32(), 71);
        assert_eq!(Code::NoMem.as_i32(), 12);
        assert_eq!(Code::LibBad.as_i32(), 80);
    }

    #[test]
    fn codes_round_trip_and_have_distinct_names() {
        let mut names = std::collections::HashSet::new();
        for c in Code::ALL {
            assert_eq!(Code::from_i32(c.as_i32()), Some(c));
            assert!(names.insert(c.name()), "duplicate name {}", c.name());
        }
        assert_eq!(Code::from_i32(0), None);
        assert_eq!(Code::from_i32(-1), None);
    }

    #[test]
    fn context_keeps_code() {
        let e = Error::noent("no such file").context("resource 3");
        assert_eq!(e.code(), Code::NoEnt);
        assert_eq!(e.to_string(), "resource 3: no such file");
    }

    #[test]
    fn io_errors_map_to_codes() {
        let nf = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(Error::from_io(&nf, "x").code(), Code::NoEnt);
        let pd = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Error::from_io(&pd, "x").code(), Code::Perm);
    }
}
