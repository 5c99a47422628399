//! Profiling regions for applications: `struct vaccel_prof_region` is plain
//! data (a name and inline counters), so `VACCEL_PROF_REGION_INIT(name)` is
//! a static initializer. Timing uses a monotonic clock. With
//! `VACCEL_PROFILING_ENABLED` unset (or false) start/stop/print do nothing
//! and return `VACCEL_OK`. A region is not synchronised: use one per thread.

use std::ffi::{CStr, c_char, c_int};
use std::sync::OnceLock;
use std::time::Instant;

use vaccel::{Error, Result};

use crate::ffi::{self, call};

/// `struct vaccel_prof_region`.
#[repr(C)]
#[derive(Debug)]
pub struct vaccel_prof_region {
    /// Region name (not owned).
    pub name: *const c_char,
    /// Completed samples.
    pub nr_entries: usize,
    /// Sum of the samples, in nanoseconds.
    pub total_ns: u64,
    /// Shortest sample (0 before the first one).
    pub min_ns: u64,
    /// Longest sample.
    pub max_ns: u64,
    /// Start of the sample in progress (monotonic ns + 1), 0 if none.
    pub start_ns: u64,
}

/// Whether `VACCEL_PROFILING_ENABLED` asks for profiling (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("VACCEL_PROFILING_ENABLED")
            .ok()
            .and_then(|v| vaccel::config::parse_bool("VACCEL_PROFILING_ENABLED", &v).ok())
            .unwrap_or(false)
    })
}

/// Monotonic nanoseconds since the first call, plus one (0 means "not started").
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

fn name(r: &vaccel_prof_region) -> String {
    if r.name.is_null() {
        return "(unnamed)".into();
    }
    // SAFETY: the region's name is a C string (documented contract of
    // VACCEL_PROF_REGION_INIT / the struct).
    unsafe { CStr::from_ptr(r.name) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `r` is NULL or points to a region.
unsafe fn region<'a>(r: *mut vaccel_prof_region) -> Result<&'a mut vaccel_prof_region> {
    // SAFETY: forwarded contract.
    unsafe { ffi::as_mut(r, "profiling region") }
}

/// `int vaccel_prof_region_start(struct vaccel_prof_region *region)`: start
/// a sample (restarting one already in progress).
///
/// # Safety
/// `region` is NULL or points to a region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_prof_region_start(region: *mut vaccel_prof_region) -> c_int {
    call("vaccel_prof_region_start", || {
        // SAFETY: caller's contract.
        let r = unsafe { self::region(region) }?;
        if enabled() {
            r.start_ns = now_ns();
        }
        Ok(())
    })
}

/// `int vaccel_prof_region_stop(struct vaccel_prof_region *region)`: end the
/// sample in progress (`VACCEL_EINVAL` if none was started).
///
/// # Safety
/// `region` is NULL or points to a region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_prof_region_stop(region: *mut vaccel_prof_region) -> c_int {
    call("vaccel_prof_region_stop", || {
        // SAFETY: caller's contract.
        let r = unsafe { self::region(region) }?;
        if !enabled() {
            return Ok(());
        }
        if r.start_ns == 0 {
            return Err(Error::inval(format!(
                "profiling region '{}' was not started",
                name(r)
            )));
        }
        let d = now_ns().saturating_sub(r.start_ns);
        r.start_ns = 0;
        r.min_ns = if r.nr_entries == 0 {
            d
        } else {
            r.min_ns.min(d)
        };
        r.max_ns = r.max_ns.max(d);
        r.total_ns = r.total_ns.saturating_add(d);
        r.nr_entries += 1;
        Ok(())
    })
}

/// `int vaccel_prof_region_print(const struct vaccel_prof_region *region)`:
/// print the region's statistics to stderr.
///
/// # Safety
/// `region` is NULL or points to a region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_prof_region_print(region: *const vaccel_prof_region) -> c_int {
    call("vaccel_prof_region_print", || {
        // SAFETY: caller's contract.
        let r = unsafe { ffi::as_ref(region, "profiling region") }?;
        if !enabled() {
            return Ok(());
        }
        let mean = if r.nr_entries == 0 {
            0
        } else {
            r.total_ns / r.nr_entries as u64
        };
        eprintln!(
            "[prof] {}: total_time: {} nsec nr_entries: {} (mean {} ns, min {} ns, max {} ns)",
            name(r),
            r.total_ns,
            r.nr_entries,
            mean,
            r.min_ns,
            r.max_ns
        );
        Ok(())
    })
}

/// `int vaccel_prof_region_release(struct vaccel_prof_region *region)`:
/// reset the counters (the name is kept; nothing is freed).
///
/// # Safety
/// `region` is NULL or points to a region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_prof_region_release(region: *mut vaccel_prof_region) -> c_int {
    call("vaccel_prof_region_release", || {
        // SAFETY: caller's contract.
        let r = unsafe { self::region(region) }?;
        *r = vaccel_prof_region {
            name: r.name,
            nr_entries: 0,
            total_ns: 0,
            min_ns: 0,
            max_ns: 0,
            start_ns: 0,
        };
        Ok(())
    })
}
