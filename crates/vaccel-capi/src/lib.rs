//! # vaccel-capi
//!
//! The vAccel C API on the vaccel-rs runtime: `libvaccel.so` / `libvaccel.a`
//! plus the hand-written headers under `include/` (`#include <vaccel.h>`).
//! Programs written against upstream vAccel's public C API (0.7/0.8 shape)
//! compile unchanged; see `docs/c-api.md` for what is covered.
//!
//! Every exported function:
//!
//! - runs inside `catch_unwind`: a panic is returned as `VACCEL_EBACKEND`,
//!   never unwound into C;
//! - checks every pointer and size (NULL session, NULL or empty buffer →
//!   `VACCEL_EINVAL`);
//! - returns `VACCEL_OK` (0) or a `VACCEL_E*` errno value equal to the
//!   runtime's [`vaccel::Code`], and records the runtime's message, readable
//!   with `vaccel_last_error_message()`.
//!
//! The runtime is the process-wide [`vaccel::runtime()`], created on first
//! use from the environment (`VACCEL_PLUGINS`, `VACCEL_LOG_LEVEL`,
//! `VACCEL_PROFILING_ENABLED`, …), with this build's built-in plugins.
//!
//! The `#[repr(C)]` types here are the Rust side of the structs in the
//! headers; `tests/header.rs` checks that both agree (sizes, offsets,
//! constants) and that every declared function is exported.

#![allow(non_camel_case_types)]

pub mod arg;
mod ffi;
pub mod ops;
pub mod prof;
pub mod resource;
pub mod session;

pub use arg::{vaccel_arg, vaccel_arg_array};
pub use ops::{vaccel_tensor, vaccel_tensor_dtype_t};
pub use prof::vaccel_prof_region;
pub use resource::{vaccel_resource, vaccel_resource_type_t};
pub use session::vaccel_session;

/// `vaccel_id_t`.
pub type vaccel_id_t = i64;

/// `VACCEL_OK`.
pub const VACCEL_OK: std::ffi::c_int = 0;

/// `VACCEL_ERANGE`: returned when a result does not fit the caller's buffer
/// (the needed size is reported), or when an argument array is exhausted.
pub const VACCEL_ERANGE: std::ffi::c_int = vaccel::Code::Range as std::ffi::c_int;

pub use ffi::vaccel_last_error_message;
