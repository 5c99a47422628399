//! The runtime: loaded plugins, in priority order, and session creation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::plugin::{Plugin, PluginInfo};
use crate::{Error, PluginType, Result, Session};

/// Where a loaded plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Compiled into the application.
    Builtin,
    /// Loaded from a shared library.
    Dynamic(PathBuf),
    /// Handed to the builder as an object (tests, embedding).
    Instance,
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Builtin => f.write_str("built-in"),
            PluginSource::Dynamic(p) => write!(f, "{}", p.display()),
            PluginSource::Instance => f.write_str("instance"),
        }
    }
}

/// A plugin the runtime loaded.
pub struct LoadedPlugin {
    plugin: Arc<dyn Plugin>,
    info: PluginInfo,
    source: PluginSource,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .field("source", &self.source)
            .finish()
    }
}

impl LoadedPlugin {
    /// Wrap a plugin, asking it for its info once.
    pub fn new(plugin: Arc<dyn Plugin>, source: PluginSource) -> Result<LoadedPlugin> {
        let info = crate::session::guard("?", "info", || Ok(plugin.info()))?;
        if info.name.is_empty() {
            return Err(Error::libbad(format!(
                "plugin from {source} has an empty name"
            )));
        }
        Ok(LoadedPlugin {
            plugin,
            info,
            source,
        })
    }

    /// Name, version, types, ops.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Where it came from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    /// The plugin.
    pub fn plugin(&self) -> &dyn Plugin {
        &*self.plugin
    }

    fn is_remote(&self) -> bool {
        self.info.types.contains(PluginType::REMOTE)
    }
}

/// A plugin that can be compiled in and selected by name.
#[derive(Clone, Copy)]
pub struct Builtin {
    /// Name used in `VACCEL_PLUGINS`.
    pub name: &'static str,
    /// One line for `vaccel plugins --available`.
    pub description: &'static str,
    /// Whether it is loaded when `VACCEL_PLUGINS` is unset.
    pub default: bool,
    /// Constructor; gets the runtime configuration (for [`Config::options`]).
    pub make: fn(&Config) -> Result<Arc<dyn Plugin>>,
}

impl fmt::Debug for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builtin").field("name", &self.name).finish()
    }
}

/// Builds a [`Runtime`].
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    builtins: Vec<Builtin>,
    config: Config,
    instances: Vec<Arc<dyn Plugin>>,
}

impl fmt::Debug for dyn Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Plugin")
    }
}

/// How one `VACCEL_PLUGINS` entry is resolved.
#[derive(Debug)]
enum Entry<'a> {
    Builtin(&'a Builtin),
    Path(PathBuf),
}

impl RuntimeBuilder {
    /// Make a compiled-in plugin available by name.
    pub fn builtin(mut self, b: Builtin) -> Self {
        self.builtins.push(b);
        self
    }

    /// Make several compiled-in plugins available.
    pub fn builtins(mut self, bs: impl IntoIterator<Item = Builtin>) -> Self {
        self.builtins.extend(bs);
        self
    }

    /// Use this configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Select plugins (same syntax as `VACCEL_PLUGINS`).
    pub fn plugins(mut self, spec: impl Into<String>) -> Self {
        self.config.plugins = Some(spec.into());
        self
    }

    /// Add a plugin object after those named in the spec.
    pub fn with_plugin(mut self, p: Arc<dyn Plugin>) -> Self {
        self.instances.push(p);
        self
    }

    fn resolve<'a>(&'a self, entry: &str) -> Result<Entry<'a>> {
        if entry.contains('/') {
            return Ok(Entry::Path(PathBuf::from(entry)));
        }
        if let Some(b) = self.builtins.iter().find(|b| b.name == entry) {
            return Ok(Entry::Builtin(b));
        }
        // Upstream names its plugins libvaccel-<name>.so: map those to built-ins.
        if let Some(name) = entry
            .strip_prefix("libvaccel-")
            .and_then(|s| s.strip_suffix(".so"))
        {
            if let Some(b) = self.builtins.iter().find(|b| b.name == name) {
                tracing::info!("plugin {entry}: using the built-in '{name}'");
                return Ok(Entry::Builtin(b));
            }
        }
        if entry.contains(".so") {
            return Ok(Entry::Path(PathBuf::from(entry)));
        }
        let names: Vec<_> = self.builtins.iter().map(|b| b.name).collect();
        Err(Error::noent(format!(
            "unknown plugin '{entry}': built-in plugins are [{}]; or give the path of a plugin .so",
            names.join(", ")
        )))
    }

    /// Load everything and build the runtime.
    pub fn build(self) -> Result<Runtime> {
        for w in &self.config.warnings {
            tracing::warn!("{w}");
        }
        let mut plugins: Vec<Arc<LoadedPlugin>> = Vec::new();
        let mut add = |lp: LoadedPlugin| {
            if plugins.iter().any(|p| p.info.name == lp.info.name) {
                tracing::warn!(plugin = %lp.info.name, source = %lp.source, "plugin already loaded; ignoring the second copy");
                return;
            }
            tracing::info!(plugin = %lp.info.name, version = %lp.info.version, source = %lp.source, "loaded plugin");
            plugins.push(Arc::new(lp));
        };
        match self.config.plugins.as_deref() {
            Some(spec) => {
                for entry in spec.split(':').map(str::trim).filter(|e| !e.is_empty()) {
                    match self.resolve(entry)? {
                        Entry::Builtin(b) => {
                            let p = (b.make)(&self.config).map_err(|e| {
                                e.context(format_args!("starting built-in plugin '{}'", b.name))
                            })?;
                            add(LoadedPlugin::new(p, PluginSource::Builtin)?);
                        }
                        Entry::Path(path) => add(crate::dynamic::load(&path)?),
                    }
                }
            }
            None => {
                for b in self.builtins.iter().filter(|b| b.default) {
                    match (b.make)(&self.config) {
                        Ok(p) => add(LoadedPlugin::new(p, PluginSource::Builtin)?),
                        Err(e) => {
                            tracing::warn!(plugin = b.name, error = %e, "built-in plugin unavailable")
                        }
                    }
                }
            }
        }
        for p in self.instances {
            add(LoadedPlugin::new(p, PluginSource::Instance)?);
        }
        Ok(Runtime {
            plugins,
            builtins: self.builtins,
            config: self.config,
            next_session: AtomicU64::new(1),
        })
    }
}

/// The runtime: plugins in priority order, and sessions.
pub struct Runtime {
    plugins: Vec<Arc<LoadedPlugin>>,
    builtins: Vec<Builtin>,
    config: Config,
    next_session: AtomicU64,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field(
                "plugins",
                &self
                    .plugins
                    .iter()
                    .map(|p| &p.info.name)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

impl Runtime {
    /// A builder.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Loaded plugins, in priority order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// Plugins that could be selected by name.
    pub fn builtins(&self) -> &[Builtin] {
        &self.builtins
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Choose the plugin for a hint:
    /// - hint 0 means "any plugin";
    /// - a hint that names REMOTE (and is not ALL) picks the first REMOTE plugin;
    /// - otherwise the first non-REMOTE plugin whose type intersects the hint;
    /// - a REMOTE plugin otherwise only when every loaded plugin is REMOTE.
    pub fn select(&self, hint: PluginType) -> Result<(Arc<LoadedPlugin>, Vec<Arc<LoadedPlugin>>)> {
        if self.plugins.is_empty() {
            return Err(Error::noent(
                "no plugins are loaded: set VACCEL_PLUGINS to plugin names (e.g. noop) or .so paths",
            ));
        }
        let want = if hint.is_empty() {
            PluginType::ALL
        } else {
            hint
        };
        let remote_asked = want.contains(PluginType::REMOTE) && want != PluginType::ALL;
        let local_match = |p: &&Arc<LoadedPlugin>| !p.is_remote() && p.info.types.intersects(want);
        let chosen = if remote_asked {
            self.plugins.iter().find(|p| p.is_remote())
        } else {
            self.plugins.iter().find(local_match).or_else(|| {
                if self.plugins.iter().all(|p| p.is_remote()) {
                    self.plugins.first()
                } else {
                    None
                }
            })
        };
        let Some(chosen) = chosen else {
            let loaded: Vec<String> = self
                .plugins
                .iter()
                .map(|p| format!("{} [{}]", p.info.name, p.info.types))
                .collect();
            return Err(Error::notsup(format!(
                "no loaded plugin matches hint {want} (0x{:x}); loaded: {}",
                want.bits(),
                loaded.join(", ")
            )));
        };
        let fallback = if self.config.fallback_enabled() {
            self.plugins
                .iter()
                .filter(|p| !Arc::ptr_eq(p, chosen))
                .filter(|p| {
                    if remote_asked {
                        p.is_remote()
                    } else {
                        local_match(p)
                    }
                })
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok((chosen.clone(), fallback))
    }

    /// Create a session with a plugin-type hint (0 or `PluginType::ALL`: any).
    pub fn session(&self, hint: PluginType) -> Result<Session> {
        let (plugin, fallback) = self.select(hint)?;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        Session::new(id, hint, plugin, fallback, self.config.profiling)
    }

    /// A loaded plugin by name.
    pub fn plugin(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.info.name == name)
    }
}

/// Default directory-independent name of a plugin's shared library:
/// `libvaccel_plugin_<name>.so`.
pub fn plugin_library_name(name: &str) -> String {
    format!("libvaccel_plugin_{}.so", name.replace('-', "_"))
}

/// Whether a path looks like a shared library.
pub fn is_shared_library(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".so") || n.contains(".so."))
}
