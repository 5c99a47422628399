//! # vaccel-watchdog
//!
//! An OpenFaaS of-watchdog compatible function server.

#![forbid(unsafe_code)]

pub mod function;

pub use function::Function;
