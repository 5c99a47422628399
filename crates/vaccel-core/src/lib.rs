//! # vaccel-core
//!
//! The runtime core of vaccel-rs: sessions, resources, ops, the plugin
//! trait, the plugin registry with run-time selection, the versioned C ABI
//! for dynamic plugins, and profiling.
//!
//! **Architecture invariant:** this crate does no network I/O and starts no
//! threads; transports live in other crates and reach plugins only through
//! the [`Plugin`] trait.
//!
//! ```
//! use vaccel_core::{Runtime, PluginType};
//! # struct Echo;
//! # impl vaccel_core::Plugin for Echo {
//! #     fn info(&self) -> vaccel_core::PluginInfo { vaccel_core::PluginInfo { name: "echo".into(), version: "0".into(), types: PluginType::DEBUG, ops: [vaccel_core::OpType::Noop].into_iter().collect(), details: vec![] } }
//! #     fn run(&self, _: &vaccel_core::OpCtx<'_>, _: vaccel_core::OpType, _: &[vaccel_core::Arg<'_>], _: &mut [vaccel_core::ArgOut<'_>]) -> vaccel_core::Result<()> { Ok(()) }
//! # }
//! let rt = Runtime::builder().with_plugin(std::sync::Arc::new(Echo)).build()?;
//! let sess = rt.session(PluginType::empty())?;
//! sess.noop()?;
//! # Ok::<(), vaccel_core::Error>(())
//! ```

pub mod arg;
pub mod codec;
pub mod config;
pub mod dynamic;
mod error;
pub mod op;
pub mod ops;
pub mod plugin;
mod plugin_type;
pub mod profiling;
pub mod resource;
pub mod runtime;
mod session;
pub mod shm;
pub mod tensor;

pub use arg::{Arg, ArgExt, ArgOut, ArgType};
pub use config::Config;
pub use error::{Code, Error, Result};
pub use op::{OpSet, OpType};
pub use ops::{Detection, Label};
pub use plugin::{OpCtx, Plugin, PluginInfo, ResourceLookup, SessionId};
pub use plugin_type::PluginType;
pub use resource::{Resource, ResourceId, ResourceType};
pub use runtime::{Builtin, LoadedPlugin, PluginSource, Runtime, RuntimeBuilder};
pub use session::Session;
pub use tensor::{DType, Tensor, TensorRef};

/// Version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
