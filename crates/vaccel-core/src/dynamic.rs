//! Dynamic plugins: the versioned C ABI, the loader, and the export glue.
//!
//! A plugin shared library exports one function returning a pointer to a
//! [`PluginDesc`]:
//!
//! ```c
//! const struct vaccel_plugin_desc *vaccel_plugin_entry_v1(void);
//! ```
//!
//! The loader looks for `vaccel_plugin_entry_v1` first and then for
//! `<file stem>_entry_v1` (for `libvaccel_plugin_noop.so`:
//! `vaccel_plugin_noop_entry_v1`), so several Rust plugins that also link
//! into one binary as built-ins do not clash on the generic symbol.
//!
//! Before reading anything else, the loader checks `abi_version` (the first
//! field) against [`ABI_VERSION`] and `desc_size` against the size it
//! expects: a mismatch is a clear `ELIBBAD` error, never a call into
//! incompatible code. Read and write arguments are the same `#[repr(C)]`
//! [`Arg`] / [`ArgOut`] structs on both sides, so calls copy nothing.
//!
//! Plugin libraries are opened with `RTLD_NODELETE` and never unloaded:
//! unloading Rust code with thread-local destructors is unsound.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use crate::plugin::{OpCtx, Plugin, PluginInfo, ResourceLookup, SessionId};
use crate::resource::File;
use crate::runtime::{LoadedPlugin, PluginSource};
use crate::{
    Arg, ArgOut, Code, Error, OpSet, OpType, PluginType, Resource, ResourceId, ResourceType, Result,
};

/// The plugin ABI version this runtime speaks.
pub const ABI_VERSION: u32 = 1;

/// The generic entry symbol.
pub const ENTRY_SYMBOL: &str = "vaccel_plugin_entry_v1";

/// One file of a resource, as passed to `resource_register`.
/// `path` is set for files on disk (the plugin may read or map them itself);
/// `data`/`size` for files held in memory.
#[repr(C)]
#[derive(Debug)]
pub struct RawFile {
    /// NUL-terminated file name.
    pub name: *const c_char,
    /// NUL-terminated path, or NULL.
    pub path: *const c_char,
    /// Bytes, or NULL.
    pub data: *const u8,
    /// Number of bytes at `data`.
    pub size: usize,
}

/// A resource, as passed to `resource_register`. Valid during the call only.
#[repr(C)]
#[derive(Debug)]
pub struct RawResource {
    /// Resource id.
    pub id: u64,
    /// `VACCEL_RESOURCE_*` type.
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Files.
    pub files: *const RawFile,
    /// Number of files.
    pub n_files: usize,
}

/// One op call.
#[repr(C)]
#[derive(Debug)]
pub struct RawCall {
    /// Calling session.
    pub session: u64,
    /// Session hint.
    pub hint: u32,
    /// Op id.
    pub op: u32,
    /// Read arguments.
    pub read: *const Arg<'static>,
    /// Number of read arguments.
    pub n_read: usize,
    /// Write arguments.
    pub write: *mut ArgOut<'static>,
    /// Number of write arguments.
    pub n_write: usize,
    /// Host context for `set_error`.
    pub err_ctx: *mut c_void,
    /// On failure, the plugin may call this with a message (`len` bytes, no
    /// NUL needed) before returning its error code.
    pub set_error: Option<SetErrorFn>,
}

/// Host function that records an error message for the current call.
pub type SetErrorFn = unsafe extern "C" fn(ctx: *mut c_void, msg: *const c_char, len: usize);

unsafe extern "C" fn host_set_error(ctx: *mut c_void, msg: *const c_char, len: usize) {
    if ctx.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `String` the host put in the call; `msg` is valid
    // for `len` bytes per the ABI (capped so a hostile length stays bounded).
    let (out, bytes) = unsafe {
        (
            &mut *(ctx as *mut String),
            std::slice::from_raw_parts(msg as *const u8, len.min(4096)),
        )
    };
    *out = String::from_utf8_lossy(bytes).into_owned();
}

/// The descriptor a plugin exports. Every function returns 0 or an errno value.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDesc {
    /// Must equal [`ABI_VERSION`]; checked before anything else is read.
    pub abi_version: u32,
    /// `sizeof(struct vaccel_plugin_desc)` as the plugin was built.
    pub desc_size: u32,
    /// NUL-terminated name.
    pub name: *const c_char,
    /// NUL-terminated version.
    pub version: *const c_char,
    /// Optional NUL-terminated `key=value;key=value` facts, or NULL.
    pub details: *const c_char,
    /// `VACCEL_PLUGIN_*` type bitmask.
    pub types: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Supported ops: bit i of word i/64 set for op id i.
    pub ops: [u64; 2],
    /// Plugin state passed back to every function.
    pub state: *mut c_void,
    /// Called once when loaded.
    pub init: Option<unsafe extern "C" fn(state: *mut c_void) -> i32>,
    /// Called when the runtime goes away.
    pub fini: Option<unsafe extern "C" fn(state: *mut c_void)>,
    /// A session chose this plugin.
    pub session_init:
        Option<unsafe extern "C" fn(state: *mut c_void, session: u64, hint: u32) -> i32>,
    /// A session is released.
    pub session_release: Option<unsafe extern "C" fn(state: *mut c_void, session: u64) -> i32>,
    /// A resource was registered to a session.
    pub resource_register: Option<
        unsafe extern "C" fn(state: *mut c_void, session: u64, res: *const RawResource) -> i32,
    >,
    /// A resource was unregistered from a session.
    pub resource_unregister:
        Option<unsafe extern "C" fn(state: *mut c_void, session: u64, res: u64) -> i32>,
    /// Run an op.
    pub op: Option<unsafe extern "C" fn(state: *mut c_void, call: *mut RawCall) -> i32>,
}

// SAFETY: the descriptor is immutable after the entry point returns it; the
// raw pointers are to static strings and to the plugin's own thread-safe state.
unsafe impl Send for PluginDesc {}
// SAFETY: as above.
unsafe impl Sync for PluginDesc {}

// The C header include/vaccel/plugin_abi.h asserts the same sizes.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<Arg<'static>>() == 24);
    assert!(std::mem::size_of::<ArgOut<'static>>() == 48);
    assert!(std::mem::size_of::<RawFile>() == 32);
    assert!(std::mem::size_of::<RawResource>() == 32);
    assert!(std::mem::size_of::<RawCall>() == 64);
    assert!(std::mem::size_of::<PluginDesc>() == 120);
};

/// The entry point's type.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDesc;

const RTLD_NODELETE: i32 = 0x1000;

fn cstr_field<'a>(p: *const c_char, what: &str, path: &Path) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::libbad(format!(
            "plugin {}: {what} is NULL",
            path.display()
        )));
    }
    // SAFETY: non-null and, per the ABI, a NUL-terminated string that lives as
    // long as the (never unloaded) library.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::libbad(format!("plugin {}: {what} is not UTF-8", path.display())))
}

/// A plugin loaded from a shared library.
pub struct DynPlugin {
    desc: &'static PluginDesc,
    info: PluginInfo,
    _lib: libloading::os::unix::Library,
}

impl std::fmt::Debug for DynPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynPlugin")
            .field("info", &self.info)
            .finish()
    }
}

fn entry_symbols(path: &Path) -> Vec<String> {
    let mut v = vec![ENTRY_SYMBOL.to_string()];
    if let Some(stem) = path.file_name().and_then(|n| n.to_str()) {
        let stem = stem.split(".so").next().unwrap_or(stem);
        let stem = stem
            .strip_prefix("lib")
            .unwrap_or(stem)
            .replace(['-', '.'], "_");
        v.push(format!("{stem}_entry_v1"));
    }
    v
}

/// Load a plugin from a shared library.
pub fn load(path: &Path) -> Result<LoadedPlugin> {
    if path.components().count() > 1 && !path.exists() {
        return Err(Error::noent(format!(
            "plugin library {} does not exist: check VACCEL_PLUGINS",
            path.display()
        )));
    }
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL | RTLD_NODELETE;
    // SAFETY: loading a library runs its initialisers; the operator chose
    // this library through VACCEL_PLUGINS, which is the trust decision.
    let lib = unsafe { libloading::os::unix::Library::open(Some(path), flags) }.map_err(|e| {
        Error::libbad(format!(
            "cannot load plugin library {}: {e}",
            path.display()
        ))
    })?;
    let mut entry: Option<EntryFn> = None;
    for sym in entry_symbols(path) {
        // SAFETY: the symbol, if present, has the documented entry type.
        if let Ok(f) = unsafe { lib.get::<EntryFn>(sym.as_bytes()) } {
            entry = Some(*f);
            break;
        }
    }
    let Some(entry) = entry else {
        // SAFETY: only probing for presence; the value is not used.
        let upstream = unsafe { lib.get::<*const c_void>(b"vaccel_plugin") }.is_ok();
        let hint = if upstream {
            " (it looks like an upstream vAccel C plugin; rebuild it against include/vaccel/plugin_abi.h)"
        } else {
            ""
        };
        return Err(Error::libbad(format!(
            "{} is not a vAccel plugin: it exports none of {}{hint}",
            path.display(),
            entry_symbols(path).join(", ")
        )));
    };
    // SAFETY: calling the plugin's entry point, which takes no arguments.
    let desc_ptr = unsafe { entry() };
    if desc_ptr.is_null() {
        return Err(Error::libbad(format!(
            "plugin {}: entry point returned NULL (its initialisation failed)",
            path.display()
        )));
    }
    // SAFETY: non-null; every ABI version starts with a u32 version field, so
    // reading it alone is valid whatever the version.
    let abi = unsafe { std::ptr::read(desc_ptr as *const u32) };
    if abi != ABI_VERSION {
        return Err(Error::libbad(format!(
            "plugin {} was built for plugin ABI {abi}, but this runtime speaks ABI {ABI_VERSION}: rebuild the plugin against this vAccel",
            path.display()
        )));
    }
    // SAFETY: the version matches, so the first 8 bytes are (abi_version, desc_size).
    let size = unsafe { std::ptr::read((desc_ptr as *const u32).add(1)) } as usize;
    if size < std::mem::size_of::<PluginDesc>() {
        return Err(Error::libbad(format!(
            "plugin {}: descriptor is {size} bytes, ABI {ABI_VERSION} needs {}",
            path.display(),
            std::mem::size_of::<PluginDesc>()
        )));
    }
    // SAFETY: version and size checked; the library is never unloaded, so the
    // descriptor lives for the rest of the process.
    let desc: &'static PluginDesc = unsafe { &*desc_ptr };
    let name = cstr_field(desc.name, "name", path)?.to_string();
    let version = cstr_field(desc.version, "version", path)?.to_string();
    let details = if desc.details.is_null() {
        Vec::new()
    } else {
        cstr_field(desc.details, "details", path)?
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    if desc.op.is_none() {
        return Err(Error::libbad(format!(
            "plugin {}: no op function",
            path.display()
        )));
    }
    let bits = (desc.ops[0] as u128) | ((desc.ops[1] as u128) << 64);
    let ops: OpSet = OpSet::from_bits(bits).iter().collect();
    if let Some(init) = desc.init {
        // SAFETY: calling the plugin's init with its own state, per the ABI.
        let rc = unsafe { init(desc.state) };
        if rc != 0 {
            return Err(Error::new(
                Code::from_i32(rc).unwrap_or(Code::Backend),
                format!(
                    "plugin {} ({}): init failed with code {rc}",
                    name,
                    path.display()
                ),
            ));
        }
    }
    let info = PluginInfo {
        name,
        version,
        types: PluginType::from_bits_retain(desc.types),
        ops,
        details,
    };
    let p = DynPlugin {
        desc,
        info,
        _lib: lib,
    };
    LoadedPlugin::new(Arc::new(p), PluginSource::Dynamic(path.to_path_buf()))
}

fn rc_to_result(rc: i32, what: impl FnOnce() -> String) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::new(
            Code::from_i32(rc).unwrap_or(Code::Backend),
            what(),
        ))
    }
}

impl Plugin for DynPlugin {
    fn info(&self) -> PluginInfo {
        self.info.clone()
    }

    fn session_init(&self, session: SessionId, hint: PluginType) -> Result<()> {
        let Some(f) = self.desc.session_init else {
            return Ok(());
        };
        // SAFETY: plugin function called with its own state, per the ABI.
        let rc = unsafe { f(self.desc.state, session, hint.bits()) };
        rc_to_result(rc, || {
            format!("plugin '{}': session init failed ({rc})", self.info.name)
        })
    }

    fn session_release(&self, session: SessionId) -> Result<()> {
        let Some(f) = self.desc.session_release else {
            return Ok(());
        };
        // SAFETY: as above.
        let rc = unsafe { f(self.desc.state, session) };
        rc_to_result(rc, || {
            format!("plugin '{}': session release failed ({rc})", self.info.name)
        })
    }

    fn resource_register(&self, session: SessionId, res: &Resource) -> Result<()> {
        let Some(f) = self.desc.resource_register else {
            return Ok(());
        };
        let to_c =
            |s: &str| CString::new(s).map_err(|_| Error::inval("resource file name contains NUL"));
        let mut names = Vec::new();
        let mut paths = Vec::new();
        let mut datas = Vec::new();
        for file in res.files() {
            names.push(to_c(file.name())?);
            paths.push(match file.path() {
                Some(p) => Some(to_c(&p.to_string_lossy())?),
                None => None,
            });
            datas.push(if file.path().is_none() {
                Some(file.bytes()?)
            } else {
                None
            });
        }
        let files: Vec<RawFile> = (0..names.len())
            .map(|i| RawFile {
                name: names[i].as_ptr(),
                path: paths[i].as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                data: datas[i].as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
                size: datas[i].as_ref().map_or(0, |d| d.len()),
            })
            .collect();
        let raw = RawResource {
            id: res.id(),
            kind: res.kind() as u32,
            reserved: 0,
            files: files.as_ptr(),
            n_files: files.len(),
        };
        // SAFETY: `raw` and everything it points to outlive the call.
        let rc = unsafe { f(self.desc.state, session, &raw) };
        rc_to_result(rc, || {
            format!(
                "plugin '{}': resource register failed ({rc})",
                self.info.name
            )
        })
    }

    fn resource_unregister(&self, session: SessionId, res: &Resource) -> Result<()> {
        let Some(f) = self.desc.resource_unregister else {
            return Ok(());
        };
        // SAFETY: plugin function called with its own state, per the ABI.
        let rc = unsafe { f(self.desc.state, session, res.id()) };
        rc_to_result(rc, || {
            format!(
                "plugin '{}': resource unregister failed ({rc})",
                self.info.name
            )
        })
    }

    #[inline]
    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        let mut msg = String::new();
        let mut call = RawCall {
            session: ctx.session,
            hint: ctx.hint.bits(),
            op: op.id(),
            read: read.as_ptr().cast(),
            n_read: read.len(),
            write: write.as_mut_ptr().cast(),
            n_write: write.len(),
            err_ctx: (&mut msg as *mut String).cast(),
            set_error: Some(host_set_error),
        };
        let f = self.desc.op.expect("checked at load");
        // SAFETY: `call` points to live argument arrays and a live message
        // slot for the duration of the call; the plugin's state is its own.
        let rc = unsafe { f(self.desc.state, &mut call) };
        if rc == 0 {
            return Ok(());
        }
        if msg.is_empty() {
            msg = format!("plugin '{}' failed {op} with code {rc}", self.info.name);
        }
        Err(Error::new(Code::from_i32(rc).unwrap_or(Code::Backend), msg))
    }
}

impl Drop for DynPlugin {
    fn drop(&mut self) {
        if let Some(fini) = self.desc.fini {
            // SAFETY: plugin function called with its own state, once.
            unsafe { fini(self.desc.state) };
        }
    }
}

// ------------------------------------------------------------------ export

/// Plugin-side state behind an exported descriptor. Built by [`export_plugin!`].
pub struct Exported {
    desc: PluginDesc,
    plugin: Box<dyn Plugin>,
    _strings: [CString; 3],
    resources: RwLock<HashMap<(SessionId, ResourceId), Resource>>,
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exported")
            .field("desc", &self.desc)
            .finish()
    }
}

struct ExportLookup<'a> {
    ex: &'a Exported,
    session: SessionId,
}

impl ResourceLookup for ExportLookup<'_> {
    fn resource(&self, id: ResourceId) -> Option<Resource> {
        self.ex
            .resources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(self.session, id))
            .cloned()
    }

    fn resources(&self) -> Vec<Resource> {
        let map = self.ex.resources.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Resource> = map
            .iter()
            .filter(|((s, _), _)| *s == self.session)
            .map(|(_, r)| r.clone())
            .collect();
        v.sort_by_key(Resource::id);
        v
    }
}

fn write_err(call: &RawCall, msg: &str) {
    if let Some(f) = call.set_error {
        // SAFETY: host function and context from the call, per the ABI.
        unsafe { f(call.err_ctx, msg.as_ptr().cast(), msg.len()) };
    }
}

fn catch(f: impl FnOnce() -> Result<()>) -> std::result::Result<(), Error> {
    crate::session::guard("exported", "a plugin call", f)
}

/// # Safety
/// `state` must be the `Exported` that owns the descriptor.
unsafe fn exported<'a>(state: *mut c_void) -> &'a Exported {
    // SAFETY: per the function contract.
    unsafe { &*(state as *const Exported) }
}

unsafe extern "C" fn ex_init(_state: *mut c_void) -> i32 {
    crate::config::init_logging_from_env();
    0
}

unsafe extern "C" fn ex_session_init(state: *mut c_void, session: u64, hint: u32) -> i32 {
    // SAFETY: the host passes back our own state.
    let ex = unsafe { exported(state) };
    match catch(|| {
        ex.plugin
            .session_init(session, PluginType::from_bits_retain(hint))
    }) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

unsafe extern "C" fn ex_session_release(state: *mut c_void, session: u64) -> i32 {
    // SAFETY: the host passes back our own state.
    let ex = unsafe { exported(state) };
    ex.resources
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(s, _), _| *s != session);
    match catch(|| ex.plugin.session_release(session)) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

fn mirror_resource(raw: &RawResource) -> Result<Resource> {
    let kind = ResourceType::from_u32(raw.kind)
        .ok_or_else(|| Error::inval(format!("unknown resource type {}", raw.kind)))?;
    let files: &[RawFile] = if raw.n_files == 0 || raw.files.is_null() {
        &[]
    } else {
        // SAFETY: the host passes `n_files` valid entries for the call.
        unsafe { std::slice::from_raw_parts(raw.files, raw.n_files) }
    };
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = if f.name.is_null() {
            String::new()
        } else {
            // SAFETY: NUL-terminated per the ABI.
            unsafe { CStr::from_ptr(f.name) }
                .to_string_lossy()
                .into_owned()
        };
        if !f.path.is_null() {
            // SAFETY: NUL-terminated per the ABI.
            let p = unsafe { CStr::from_ptr(f.path) }
                .to_string_lossy()
                .into_owned();
            out.push(File::from_disk_unchecked(p.into()));
        } else if !f.data.is_null() {
            // SAFETY: valid for `size` bytes for the call; copied here.
            let bytes = unsafe { std::slice::from_raw_parts(f.data, f.size) };
            out.push(File::in_memory(name, bytes.to_vec()));
        } else {
            return Err(Error::inval(format!(
                "resource file '{name}' has neither a path nor data"
            )));
        }
    }
    Ok(Resource::with_id(raw.id, out, kind))
}

unsafe extern "C" fn ex_resource_register(
    state: *mut c_void,
    session: u64,
    raw: *const RawResource,
) -> i32 {
    // SAFETY: the host passes back our own state.
    let ex = unsafe { exported(state) };
    if raw.is_null() {
        return Code::Inval.as_i32();
    }
    let r = catch(|| {
        // SAFETY: non-null and valid for the call, per the ABI.
        let res = mirror_resource(unsafe { &*raw })?;
        ex.plugin.resource_register(session, &res)?;
        ex.resources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((session, res.id()), res);
        Ok(())
    });
    r.map_or_else(|e| e.errno(), |()| 0)
}

unsafe extern "C" fn ex_resource_unregister(state: *mut c_void, session: u64, id: u64) -> i32 {
    // SAFETY: the host passes back our own state.
    let ex = unsafe { exported(state) };
    let removed = ex
        .resources
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(session, id));
    let Some(res) = removed else {
        return Code::NoEnt.as_i32();
    };
    match catch(|| ex.plugin.resource_unregister(session, &res)) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

unsafe extern "C" fn ex_op(state: *mut c_void, call: *mut RawCall) -> i32 {
    // SAFETY: the host passes back our own state.
    let ex = unsafe { exported(state) };
    if call.is_null() {
        return Code::Inval.as_i32();
    }
    // SAFETY: non-null and valid for the call, per the ABI.
    let call = unsafe { &mut *call };
    let r = catch(|| {
        let op = OpType::from_u32(call.op)
            .ok_or_else(|| Error::inval(format!("unknown op id {}", call.op)))?;
        let read: &[Arg<'_>] = if call.n_read == 0 {
            &[]
        } else if call.read.is_null() {
            return Err(Error::inval("read arguments are NULL"));
        } else {
            // SAFETY: the host passes `n_read` valid arguments for the call.
            unsafe { std::slice::from_raw_parts(call.read, call.n_read) }
        };
        let write: &mut [ArgOut<'_>] = if call.n_write == 0 {
            &mut []
        } else if call.write.is_null() {
            return Err(Error::inval("write arguments are NULL"));
        } else {
            // SAFETY: the host passes `n_write` valid, exclusive arguments.
            unsafe { std::slice::from_raw_parts_mut(call.write, call.n_write) }
        };
        let lookup = ExportLookup {
            ex,
            session: call.session,
        };
        let ctx = OpCtx {
            session: call.session,
            hint: PluginType::from_bits_retain(call.hint),
            resources: &lookup,
        };
        ex.plugin.run(&ctx, op, read, write)
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            write_err(call, e.message());
            e.errno()
        }
    }
}

/// Build (once) and return the descriptor for a plugin. Used by [`export_plugin!`].
#[doc(hidden)]
pub fn export_entry(
    cell: &'static OnceLock<&'static Exported>,
    make: fn() -> Box<dyn Plugin>,
) -> *const PluginDesc {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ex = cell.get_or_init(|| {
            let plugin = make();
            let info = plugin.info();
            let clean = |s: String| CString::new(s.replace('\0', "")).unwrap_or_default();
            let details = info
                .details
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";");
            let strings = [clean(info.name), clean(info.version), clean(details)];
            let bits = info.ops.bits();
            let mut b = Box::new(Exported {
                desc: PluginDesc {
                    abi_version: ABI_VERSION,
                    desc_size: std::mem::size_of::<PluginDesc>() as u32,
                    name: strings[0].as_ptr(),
                    version: strings[1].as_ptr(),
                    details: strings[2].as_ptr(),
                    types: info.types.bits(),
                    reserved: 0,
                    ops: [bits as u64, (bits >> 64) as u64],
                    state: std::ptr::null_mut(),
                    init: Some(ex_init),
                    fini: None,
                    session_init: Some(ex_session_init),
                    session_release: Some(ex_session_release),
                    resource_register: Some(ex_resource_register),
                    resource_unregister: Some(ex_resource_unregister),
                    op: Some(ex_op),
                },
                plugin,
                _strings: strings,
                resources: RwLock::new(HashMap::new()),
            });
            b.desc.state = &*b as *const Exported as *mut c_void;
            Box::leak(b)
        });
        &ex.desc as *const PluginDesc
    }));
    r.unwrap_or(std::ptr::null())
}

/// Export a [`Plugin`] from a `cdylib` through the versioned C ABI.
///
/// ```text
/// vaccel_core::export_plugin!(MyPlugin::new());                       // symbol vaccel_plugin_entry_v1
/// vaccel_core::export_plugin!(vaccel_plugin_mine_entry_v1, MyPlugin::new()); // named after the library
/// ```
///
/// Use the second form in crates that are also linked into binaries as
/// built-ins, so the generic symbol does not clash between plugins.
#[macro_export]
macro_rules! export_plugin {
    ($make:expr) => {
        $crate::export_plugin!(vaccel_plugin_entry_v1, $make);
    };
    ($symbol:ident, $make:expr) => {
        /// Plugin ABI entry point.
        #[unsafe(no_mangle)]
        pub extern "C" fn $symbol() -> *const $crate::dynamic::PluginDesc {
            static CELL: ::std::sync::OnceLock<&'static $crate::dynamic::Exported> =
                ::std::sync::OnceLock::new();
            fn make() -> ::std::boxed::Box<dyn $crate::Plugin> {
                ::std::boxed::Box::new($make)
            }
            $crate::dynamic::export_entry(&CELL, make)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_symbol_candidates() {
        assert_eq!(
            entry_symbols(Path::new("/x/libvaccel_plugin_noop.so")),
            vec!["vaccel_plugin_entry_v1", "vaccel_plugin_noop_entry_v1"]
        );
        assert_eq!(
            entry_symbols(Path::new("libfoo-bar.so.1"))[1],
            "foo_bar_entry_v1"
        );
    }

    #[test]
    fn missing_library_is_enoent() {
        let e = load(Path::new("/nonexistent/libvaccel_plugin_x.so")).unwrap_err();
        assert_eq!(e.code(), Code::NoEnt);
        assert!(e.message().contains("does not exist"));
    }

    #[test]
    fn garbage_file_is_libbad() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libjunk.so");
        std::fs::write(&p, b"this is not an ELF file").unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!(e.code(), Code::LibBad);
        assert!(e.message().contains("cannot load plugin library"), "{e}");
    }
}
