//! The plugin trait: what a backend implements.
//!
//! A plugin receives every op in the generic shape (op id + read and write
//! argument lists); the typed views in [`crate::ops`] decode them. Built-in
//! plugins implement this trait directly; dynamic plugins implement it in
//! their own shared library and export it through the C ABI in
//! [`crate::dynamic`].

use std::fmt;

use crate::{Arg, ArgOut, OpSet, OpType, PluginType, Resource, ResourceId, Result};

/// Session id; ids start at 1.
pub type SessionId = u64;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short name, e.g. `noop`.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Type bitmask.
    pub types: PluginType,
    /// Ops it implements.
    pub ops: OpSet,
    /// Extra facts shown by `vaccel plugins`, e.g. `("engine", "tract")`.
    pub details: Vec<(String, String)>,
}

/// Access to the resources registered to the calling session.
pub trait ResourceLookup: Sync {
    /// The resource with this id, if it is registered to the session.
    fn resource(&self, id: ResourceId) -> Option<Resource>;
    /// All resources registered to the session, in registration order.
    fn resources(&self) -> Vec<Resource>;
}

/// A lookup with no resources.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResources;

impl ResourceLookup for NoResources {
    fn resource(&self, _id: ResourceId) -> Option<Resource> {
        None
    }
    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
}

/// Context of one op call.
pub struct OpCtx<'a> {
    /// The calling session.
    pub session: SessionId,
    /// The session's hint.
    pub hint: PluginType,
    /// The session's registered resources.
    pub resources: &'a dyn ResourceLookup,
}

impl fmt::Debug for OpCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpCtx")
            .field("session", &self.session)
            .field("hint", &self.hint)
            .finish()
    }
}

impl OpCtx<'_> {
    /// The registered resource `id`, or `EPERM` when the session does not hold it.
    pub fn resource(&self, id: ResourceId) -> Result<Resource> {
        self.resources.resource(id).ok_or_else(|| {
            crate::Error::perm(format!(
                "resource {id} is not registered to session {}: register it first",
                self.session
            ))
        })
    }
}

/// A backend. Implementations must be thread-safe: many sessions on many
/// threads call into one plugin at once.
pub trait Plugin: Send + Sync + 'static {
    /// Name, version, types and ops. Called once, when the plugin is loaded.
    fn info(&self) -> PluginInfo;

    /// A session chose this plugin.
    fn session_init(&self, _session: SessionId, _hint: PluginType) -> Result<()> {
        Ok(())
    }

    /// A session that chose this plugin is being released.
    fn session_release(&self, _session: SessionId) -> Result<()> {
        Ok(())
    }

    /// A resource was registered to a session of this plugin.
    fn resource_register(&self, _session: SessionId, _resource: &Resource) -> Result<()> {
        Ok(())
    }

    /// A resource was unregistered from a session of this plugin.
    fn resource_unregister(&self, _session: SessionId, _resource: &Resource) -> Result<()> {
        Ok(())
    }

    /// Run one op. Only called for ops listed in [`PluginInfo::ops`].
    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()>;
}
