//! Where a function gets its vAccel session.

use std::sync::{Arc, Mutex};

use vaccel::{Code, Error, PluginType, Runtime, Session};

#[derive(Debug)]
enum Origin {
    Runtime(Arc<Runtime>),
    Static(&'static Runtime),
    Session(Session),
}

#[derive(Debug)]
struct Inner {
    origin: Origin,
    hint: PluginType,
    session: Mutex<Option<Session>>,
}

/// Gives functions their [`Session`]: a session created on first use from a
/// runtime (and created again on the next request when that failed, e.g.
/// while the agent of a `remote` plugin is down), or one fixed session.
///
/// Clones share the session. Build one from an `Arc<Runtime>`, a
/// `&'static Runtime` (such as [`vaccel::runtime()`]) or a `Session`.
#[derive(Debug, Clone)]
pub struct SessionSource {
    inner: Arc<Inner>,
}

impl SessionSource {
    fn with_origin(origin: Origin) -> SessionSource {
        SessionSource {
            inner: Arc::new(Inner {
                origin,
                hint: PluginType::empty(),
                session: Mutex::new(None),
            }),
        }
    }

    /// Sessions from `runtime`, with hint 0 (any plugin).
    pub fn new(runtime: Arc<Runtime>) -> SessionSource {
        SessionSource::with_origin(Origin::Runtime(runtime))
    }

    /// The same with a plugin-type hint (e.g. `PluginType::REMOTE`). Has no
    /// effect on a source made from a session.
    pub fn with_hint(self, hint: PluginType) -> SessionSource {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut i) => {
                i.hint = hint;
                i.session = Mutex::new(None);
                i
            }
            Err(shared) => Inner {
                origin: match &shared.origin {
                    Origin::Runtime(r) => Origin::Runtime(r.clone()),
                    Origin::Static(r) => Origin::Static(r),
                    Origin::Session(s) => Origin::Session(s.clone()),
                },
                hint,
                session: Mutex::new(None),
            },
        };
        SessionSource {
            inner: Arc::new(inner),
        }
    }

    /// The session: the cached one, or a new one. Errors are the runtime's
    /// (no plugin matches, agent unreachable, …); the next call tries again.
    pub fn session(&self) -> Result<Session, Error> {
        let runtime = match &self.inner.origin {
            Origin::Session(s) => {
                if s.is_released() {
                    return Err(Error::new(
                        Code::Sess,
                        format!("session {} was released", s.id()),
                    ));
                }
                return Ok(s.clone());
            }
            Origin::Runtime(r) => &**r,
            Origin::Static(r) => *r,
        };
        {
            let g = self.inner.session.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = &*g {
                if !s.is_released() {
                    return Ok(s.clone());
                }
            }
        }
        // Created without the lock held: while an agent is unreachable every
        // request fails on its own connect timeout, not on the others'.
        let s = runtime.session(self.inner.hint)?;
        let mut g = self.inner.session.lock().unwrap_or_else(|p| p.into_inner());
        match &*g {
            Some(existing) if !existing.is_released() => Ok(existing.clone()),
            _ => {
                *g = Some(s.clone());
                Ok(s)
            }
        }
    }
}

impl From<Arc<Runtime>> for SessionSource {
    fn from(r: Arc<Runtime>) -> Self {
        SessionSource::new(r)
    }
}

impl From<&'static Runtime> for SessionSource {
    fn from(r: &'static Runtime) -> Self {
        SessionSource::with_origin(Origin::Static(r))
    }
}

impl From<Runtime> for SessionSource {
    fn from(r: Runtime) -> Self {
        SessionSource::new(Arc::new(r))
    }
}

impl From<Session> for SessionSource {
    fn from(s: Session) -> Self {
        SessionSource::with_origin(Origin::Session(s))
    }
}

impl From<&SessionSource> for SessionSource {
    fn from(s: &SessionSource) -> Self {
        s.clone()
    }
}
