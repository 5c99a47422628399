//! # vaccel-plugin-exec
//!
//! EXEC and EXEC_WITH_RESOURCE: load a shared library and call a function
//! with upstream vAccel's callee signature
//!
//! ```c
//! int fn(struct vaccel_arg *in, size_t nr_in, struct vaccel_arg *out, size_t nr_out);
//! ```
//!
//! A non-zero return is `EBACKEND`. This is code execution on the host, so
//! a library is opened only if it is on the allow-list:
//!
//! | variable | meaning |
//! |---|---|
//! | `VACCEL_EXEC_ALLOWLIST` | `:`-separated files or directories (a directory allows every library beneath it) |
//! | `VACCEL_EXEC_ALLOW_ANY` | `1`: open any library, including LIB resources sent as bytes (e.g. from a guest) |
//!
//! Paths are compared after resolving symlinks, so `..` and links cannot
//! escape the list. LIB resources given as files obey the same list; LIB
//! resources given as bytes are never on a list (they have no path the
//! operator vetted) and need `VACCEL_EXEC_ALLOW_ANY=1`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
use tracing::debug;
use vaccel_core::arg::CArg;
use vaccel_core::config::parse_bool;
use vaccel_core::ops::{Exec, ExecWithResource};
use vaccel_core::{
    Arg, ArgOut, Code, Error, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Resource,
    ResourceId, ResourceType, Result, SessionId,
};

/// The callee type.
pub type ExecFn = unsafe extern "C" fn(*mut CArg, usize, *mut CArg, usize) -> i32;

/// Which libraries may be opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allowed files and directories (canonicalised when checked).
    pub allow: Vec<PathBuf>,
    /// Open anything.
    pub allow_any: bool,
}

impl Policy {
    /// From `VACCEL_EXEC_ALLOWLIST` and `VACCEL_EXEC_ALLOW_ANY`.
    pub fn from_env() -> Result<Policy> {
        let allow = std::env::var("VACCEL_EXEC_ALLOWLIST")
            .map(|v| {
                v.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let allow_any = match std::env::var("VACCEL_EXEC_ALLOW_ANY") {
            Ok(v) => parse_bool("VACCEL_EXEC_ALLOW_ANY", &v)?,
            Err(_) => false,
        };
        Ok(Policy { allow, allow_any })
    }

    /// Whether `lib` (already canonical) may be opened.
    pub fn allows(&self, lib: &Path) -> bool {
        self.allow_any
            || self.allow.iter().any(|a| match a.canonicalize() {
                Ok(a) => lib == a || (a.is_dir() && lib.starts_with(&a)),
                Err(_) => false,
            })
    }
}

struct LoadedLibs {
    /// Kept for the lifetime of the handles (in-memory libraries).
    _temp: Vec<tempfile::TempPath>,
    libs: Vec<Library>,
}

/// The exec plugin.
pub struct ExecPlugin {
    policy: Policy,
    /// EXEC libraries by canonical path.
    by_path: Mutex<HashMap<PathBuf, Arc<Library>>>,
    /// EXEC_WITH_RESOURCE libraries by (session, resource).
    by_resource: Mutex<HashMap<(SessionId, ResourceId), Arc<LoadedLibs>>>,
}

impl std::fmt::Debug for ExecPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecPlugin")
            .field("policy", &self.policy)
            .finish()
    }
}

fn open(path: &Path, global: bool) -> Result<Library> {
    let flags = RTLD_NOW | if global { RTLD_GLOBAL } else { RTLD_LOCAL };
    // SAFETY: opening a library runs its initialisers; the allow-list check
    // before every call to `open` is the operator's trust decision.
    unsafe { Library::open(Some(path), flags) }.map_err(|e| {
        Error::new(
            Code::LibBad,
            format!("cannot load library {}: {e}", path.display()),
        )
    })
}

fn symbol(lib: &Library, name: &str, from: &dyn std::fmt::Display) -> Result<ExecFn> {
    // SAFETY: the callee type is the documented exec signature; calling it
    // with other types is the library author's contract violation.
    unsafe { lib.get::<ExecFn>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| Error::noent(format!("symbol '{name}' not found in {from}")))
}

fn call(f: ExecFn, symbol: &str, args: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
    let mut cin: Vec<CArg> = args.iter().map(CArg::from_arg).collect();
    let mut cout: Vec<CArg> = write.iter_mut().map(CArg::from_out).collect();
    debug!(symbol, n_in = cin.len(), n_out = cout.len(), "exec call");
    // SAFETY: the arrays and the buffers they point to are live for the
    // call; read buffers must not be written by the callee (upstream contract).
    let rc = unsafe { f(cin.as_mut_ptr(), cin.len(), cout.as_mut_ptr(), cout.len()) };
    if rc != 0 {
        return Err(Error::backend(format!("exec: '{symbol}' returned {rc}")));
    }
    for (o, c) in write.iter_mut().zip(&cout) {
        let n = c.size.min(o.capacity());
        o.set_len(n)?;
    }
    Ok(())
}

impl ExecPlugin {
    /// With the policy from the environment (an invalid value is an error).
    pub fn from_env() -> Result<ExecPlugin> {
        Ok(ExecPlugin::with_policy(Policy::from_env()?))
    }

    /// With an explicit policy.
    pub fn with_policy(policy: Policy) -> ExecPlugin {
        ExecPlugin {
            policy,
            by_path: Mutex::new(HashMap::new()),
            by_resource: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, lib: &Path) -> Result<PathBuf> {
        let canon = lib
            .canonicalize()
            .map_err(|e| Error::from_io(&e, format_args!("exec library {}", lib.display())))?;
        if !self.policy.allows(&canon) {
            return Err(Error::perm(format!(
                "library {} is not on the exec allow-list: add it (or its directory) to VACCEL_EXEC_ALLOWLIST, or set VACCEL_EXEC_ALLOW_ANY=1",
                canon.display()
            )));
        }
        Ok(canon)
    }

    fn library(&self, lib: &str) -> Result<Arc<Library>> {
        let canon = self.check(Path::new(lib))?;
        let mut map = self.by_path.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(&canon) {
            return Ok(l.clone());
        }
        let l = Arc::new(open(&canon, false)?);
        map.insert(canon, l.clone());
        Ok(l)
    }

    fn load_resource(&self, res: &Resource) -> Result<LoadedLibs> {
        if res.kind() != ResourceType::Lib {
            return Err(Error::inval(format!(
                "exec_with_resource: resource {} is a {} resource, not a LIB",
                res.id(),
                res.kind()
            )));
        }
        let mut temp = Vec::new();
        let mut libs = Vec::new();
        let n = res.files().len();
        for (i, f) in res.files().iter().enumerate() {
            let path = match f.path() {
                Some(p) => self.check(p)?,
                None => {
                    if !self.policy.allow_any {
                        return Err(Error::perm(format!(
                            "resource {} holds library '{}' as bytes, which is never on the allow-list: set VACCEL_EXEC_ALLOW_ANY=1 to run libraries sent as data",
                            res.id(),
                            f.name()
                        )));
                    }
                    let mut t = tempfile::Builder::new()
                        .prefix("vaccel-exec-")
                        .suffix(".so")
                        .tempfile()
                        .map_err(|e| Error::from_io(&e, "creating a temporary library file"))?;
                    std::io::Write::write_all(&mut t, &f.bytes()?)
                        .map_err(|e| Error::from_io(&e, "writing a temporary library file"))?;
                    let p = t.into_temp_path();
                    let pb = p.to_path_buf();
                    temp.push(p);
                    pb
                }
            };
            // Dependencies first, made global so the last (main) library resolves against them.
            libs.push(open(&path, i + 1 < n)?);
        }
        Ok(LoadedLibs { _temp: temp, libs })
    }

    fn resource_libs(&self, ctx: &OpCtx<'_>, id: ResourceId) -> Result<Arc<LoadedLibs>> {
        let key = (ctx.session, id);
        if let Some(l) = self
            .by_resource
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(l.clone());
        }
        let res = ctx.resource(id)?;
        let loaded = Arc::new(self.load_resource(&res)?);
        self.by_resource
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, loaded.clone());
        Ok(loaded)
    }
}

impl Plugin for ExecPlugin {
    fn info(&self) -> PluginInfo {
        let policy = if self.policy.allow_any {
            "any library".to_string()
        } else if self.policy.allow.is_empty() {
            "nothing allowed (set VACCEL_EXEC_ALLOWLIST)".to_string()
        } else {
            self.policy
                .allow
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        PluginInfo {
            name: "exec".into(),
            version: vaccel_core::VERSION.into(),
            types: PluginType::CPU | PluginType::SOFTWARE | PluginType::GENERIC,
            ops: [OpType::Noop, OpType::Exec, OpType::ExecWithResource]
                .into_iter()
                .collect::<OpSet>(),
            details: vec![("allow".into(), policy)],
        }
    }

    fn resource_unregister(&self, session: SessionId, res: &Resource) -> Result<()> {
        self.by_resource
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(session, res.id()));
        Ok(())
    }

    fn session_release(&self, session: SessionId) -> Result<()> {
        self.by_resource
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(s, _), _| *s != session);
        Ok(())
    }

    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        match op {
            OpType::Noop => Ok(()),
            OpType::Exec => {
                let e = Exec::decode(read)?;
                let lib = self.library(e.library)?;
                let f = symbol(&lib, e.symbol, &e.library)?;
                call(f, e.symbol, e.args, write)
            }
            OpType::ExecWithResource => {
                let e = ExecWithResource::decode(read)?;
                let libs = self.resource_libs(ctx, e.resource)?;
                let main = libs
                    .libs
                    .last()
                    .ok_or_else(|| Error::inval("LIB resource has no files"))?;
                let f = symbol(main, e.symbol, &format_args!("resource {}", e.resource))?;
                call(f, e.symbol, e.args, write)
            }
            other => Err(Error::notsup(format!(
                "exec plugin does not implement {other}"
            ))),
        }
    }
}

vaccel_core::export_plugin!(
    vaccel_plugin_exec_entry_v1,
    ExecPlugin::from_env().unwrap_or_else(|e| {
        tracing::error!(error = %e, "exec plugin: invalid configuration; allowing nothing");
        ExecPlugin::with_policy(Policy::default())
    })
);
