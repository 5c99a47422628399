//! Sessions: `struct vaccel_session` holds the Rust [`Session`] behind an
//! opaque pointer.

use std::ffi::{c_int, c_void};

use vaccel::{Error, PluginType, Result, Session};

use crate::ffi::{self, call, call_value};
use crate::resource::{self, vaccel_resource};
use crate::vaccel_id_t;

/// `struct vaccel_session`.
///
/// Initialise with `vaccel_session_init` (or allocate with
/// `vaccel_session_new`); do not copy an initialised struct (copies share
/// the private pointer, which `vaccel_session_release` frees).
#[repr(C)]
#[derive(Debug)]
pub struct vaccel_session {
    /// Session id (ids start at 1).
    pub id: vaccel_id_t,
    /// The plugin-type hint the session was created with.
    pub hint: u32,
    /// Id of the session on a remote agent; 0 (not exposed by this runtime).
    pub remote_id: vaccel_id_t,
    /// Whether the session's plugin forwards to a remote agent.
    pub is_virtio: bool,
    /// Private: a `Box<Session>`; NULL when not initialised or released.
    pub priv_: *mut c_void,
}

/// The Rust session of an initialised C session.
///
/// # Safety
/// `sess` is NULL or points to a `vaccel_session` that is zeroed, or was
/// initialised by `vaccel_session_init` (possibly released since).
pub(crate) unsafe fn get<'a>(sess: *const vaccel_session) -> Result<&'a Session> {
    // SAFETY: forwarded contract.
    let s = unsafe { ffi::as_ref(sess, "session") }?;
    let p = s.priv_.cast::<Session>();
    if p.is_null() {
        return Err(Error::inval(
            "session is not initialised or was released: call vaccel_session_init first",
        ));
    }
    // SAFETY: a non-NULL `priv_` is the `Box<Session>` that
    // `vaccel_session_init` leaked; it stays alive until release sets
    // `priv_` back to NULL.
    Ok(unsafe { &*p })
}

fn init(out: &mut vaccel_session, flags: u32) -> Result<()> {
    let sess = vaccel::runtime()?.session(PluginType::from_bits_retain(flags))?;
    let id = i64::try_from(sess.id()).map_err(|_| Error::inval("session id overflows"))?;
    *out = vaccel_session {
        id,
        hint: flags,
        remote_id: 0,
        is_virtio: sess.plugin().types.contains(PluginType::REMOTE),
        priv_: Box::into_raw(Box::new(sess)).cast(),
    };
    Ok(())
}

fn print_profile(s: &Session) {
    for (op, st) in s.profile() {
        eprintln!(
            "[prof] {}: total_time: {} nsec nr_entries: {} (min {} ns, max {} ns)",
            vaccel::profiling::region_name(op),
            st.total.as_nanos(),
            st.count,
            st.min.as_nanos(),
            st.max.as_nanos()
        );
    }
}

fn release(sess: &mut vaccel_session) -> Result<()> {
    let p = std::mem::replace(&mut sess.priv_, std::ptr::null_mut()).cast::<Session>();
    if p.is_null() {
        return Err(Error::inval(
            "session is not initialised or was already released",
        ));
    }
    // SAFETY: `p` is the `Box<Session>` leaked by `init`; `priv_` was
    // cleared above, so this is the only owner from now on.
    let s = unsafe { Box::from_raw(p) };
    if s.profiling_enabled() {
        print_profile(&s);
    }
    s.release()
}

/// `int vaccel_session_init(struct vaccel_session *sess, uint32_t flags)`:
/// create a session on the process-wide runtime; `flags` is the plugin-type
/// hint (0: any plugin).
///
/// # Safety
/// `sess` is NULL or valid for writes of a `vaccel_session`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_session_init(sess: *mut vaccel_session, flags: u32) -> c_int {
    call("vaccel_session_init", || {
        // The struct may be uninitialised: it is only written, as a whole.
        if sess.is_null() {
            return Err(ffi::null("session"));
        }
        let mut s = vaccel_session {
            id: 0,
            hint: 0,
            remote_id: 0,
            is_virtio: false,
            priv_: std::ptr::null_mut(),
        };
        let r = init(&mut s, flags);
        // SAFETY: `sess` is non-NULL and valid for a write (caller's
        // contract); `write` does not read or drop the old contents.
        unsafe { sess.write(s) };
        r
    })
}

/// `int vaccel_session_release(struct vaccel_session *sess)`: release the
/// session (unregistering its resources). Releasing twice is `VACCEL_EINVAL`.
///
/// # Safety
/// `sess` is NULL or points to a session initialised by
/// `vaccel_session_init` (possibly released since).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_session_release(sess: *mut vaccel_session) -> c_int {
    call("vaccel_session_release", || {
        // SAFETY: caller's contract.
        release(unsafe { ffi::as_mut(sess, "session") }?)
    })
}

/// `int vaccel_session_new(struct vaccel_session **sess, uint32_t flags)`:
/// allocate and initialise a session; free it with `vaccel_session_delete`.
///
/// # Safety
/// `sess` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_session_new(sess: *mut *mut vaccel_session, flags: u32) -> c_int {
    call("vaccel_session_new", || {
        if sess.is_null() {
            return Err(ffi::null("session pointer"));
        }
        let mut b = Box::new(vaccel_session {
            id: 0,
            hint: 0,
            remote_id: 0,
            is_virtio: false,
            priv_: std::ptr::null_mut(),
        });
        init(&mut b, flags)?;
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe { sess.write(Box::into_raw(b)) };
        Ok(())
    })
}

/// `int vaccel_session_delete(struct vaccel_session *sess)`: release a
/// session from `vaccel_session_new` and free it.
///
/// # Safety
/// `sess` is NULL or a pointer returned by `vaccel_session_new` that was not
/// deleted yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_session_delete(sess: *mut vaccel_session) -> c_int {
    call("vaccel_session_delete", || {
        if sess.is_null() {
            return Err(ffi::null("session"));
        }
        // SAFETY: allocated by `vaccel_session_new` as a Box (caller's contract).
        let mut b = unsafe { Box::from_raw(sess) };
        if b.priv_.is_null() {
            // Already released: just free it.
            return Ok(());
        }
        release(&mut b)
    })
}

/// `bool vaccel_session_has_resource(const struct vaccel_session *sess,
/// const struct vaccel_resource *res)`: whether `res` is registered to
/// `sess` (false for NULL or released arguments).
///
/// # Safety
/// Both pointers are NULL or point to initialised (possibly released) structs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_session_has_resource(
    sess: *const vaccel_session,
    res: *const vaccel_resource,
) -> bool {
    call_value("vaccel_session_has_resource", false, || {
        // SAFETY: caller's contract.
        let (Ok(s), Ok(r)) = (unsafe { get(sess) }, unsafe { resource::get(res) }) else {
            return false;
        };
        s.has_resource(r)
    })
}
