//! # vaccel
//!
//! The crate applications use: everything in [`vaccel_core`] plus the
//! built-in plugins this build was compiled with (cargo features), and a
//! process-wide runtime configured from the environment.
//!
//! ```no_run
//! let sess = vaccel::session(vaccel::PluginType::empty())?; // plugin chosen by VACCEL_PLUGINS
//! sess.noop()?;
//! # Ok::<(), vaccel::Error>(())
//! ```
//!
//! The same binary runs on any plugin: `VACCEL_PLUGINS=noop`,
//! `VACCEL_PLUGINS=/path/to/libvaccel_plugin_x.so`, and so on.

#![forbid(unsafe_code)]

use std::sync::OnceLock;

pub use vaccel_core::*;

/// The plugins compiled into this build, in default priority order (real
/// backends first, the debug plugin last).
// Each entry depends on a cargo feature, hence pushes rather than vec![].
#[allow(unused_mut, clippy::vec_init_then_push)]
pub fn builtins() -> Vec<Builtin> {
    let mut v: Vec<Builtin> = Vec::new();
    #[cfg(feature = "cpu")]
    v.push(Builtin {
        name: "cpu",
        description: "BLAS_SGEMM (gemm), MINMAX, AES-CBC (AES-NI when present)",
        default: true,
        make: |cfg| {
            let p = match cfg.option("cpu.threads") {
                Some(t) => {
                    vaccel_plugin_cpu::CpuPlugin::with_threads(vaccel_plugin_cpu::parse_threads(t)?)
                }
                None => vaccel_plugin_cpu::CpuPlugin::new(),
            };
            Ok(std::sync::Arc::new(p))
        },
    });
    #[cfg(feature = "onnx")]
    v.push(Builtin {
        name: "onnx",
        description: vaccel_plugin_onnx::DESCRIPTION,
        default: true,
        make: |cfg| {
            Ok(std::sync::Arc::new(
                vaccel_plugin_onnx::OnnxPlugin::from_config(cfg)?,
            ))
        },
    });
    #[cfg(feature = "exec")]
    v.push(Builtin {
        name: "exec",
        description: "EXEC / EXEC_WITH_RESOURCE: call functions in allow-listed shared libraries",
        default: true,
        make: |_| {
            Ok(std::sync::Arc::new(
                vaccel_plugin_exec::ExecPlugin::from_env()?,
            ))
        },
    });
    #[cfg(feature = "remote")]
    v.push(Builtin {
        name: "remote",
        description: "forward every op to a vaccel agent (VACCEL_RPC_ADDRESS); load it by name",
        // Not loaded by default: it needs an agent, and an application asks for it explicitly.
        default: false,
        make: |_| {
            Ok(std::sync::Arc::new(
                vaccel_plugin_remote::RemotePlugin::from_env()?,
            ))
        },
    });
    #[cfg(feature = "noop")]
    v.push(Builtin {
        name: "noop",
        description: "debug plugin: every op, deterministic dummy outputs",
        default: true,
        make: |_| Ok(std::sync::Arc::new(vaccel_plugin_noop::NoopPlugin::new())),
    });
    v
}

/// A runtime configured from the environment with this build's built-ins.
pub fn runtime_from_env() -> Result<Runtime> {
    runtime_with(Config::from_env()?)
}

/// A runtime with an explicit configuration and this build's built-ins.
pub fn runtime_with(config: Config) -> Result<Runtime> {
    Runtime::builder()
        .builtins(builtins())
        .config(config)
        .build()
}

/// The process-wide runtime, created from the environment on first use.
/// Also installs logging at `VACCEL_LOG_LEVEL`.
pub fn runtime() -> Result<&'static Runtime> {
    static RT: OnceLock<Result<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let cfg = Config::from_env()?;
        config::init_logging_with(cfg.log_level, cfg.log_format);
        runtime_with(cfg)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A session on the process-wide runtime.
pub fn session(hint: PluginType) -> Result<Session> {
    runtime()?.session(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_selectable_by_name() {
        let names: Vec<_> = builtins().iter().map(|b| b.name).collect();
        assert!(names.contains(&"noop"));
        let rt = Runtime::builder()
            .builtins(builtins())
            .plugins("noop")
            .build()
            .unwrap();
        assert_eq!(rt.plugins().len(), 1);
        assert_eq!(
            rt.session(PluginType::empty()).unwrap().plugin().name,
            "noop"
        );
        // Upstream-style library name maps to the built-in.
        let rt = Runtime::builder()
            .builtins(builtins())
            .plugins("libvaccel-noop.so")
            .build()
            .unwrap();
        assert_eq!(rt.plugins()[0].info().name, "noop");
        let e = Runtime::builder()
            .builtins(builtins())
            .plugins("nosuch")
            .build()
            .unwrap_err();
        assert_eq!(e.code(), Code::NoEnt);
        assert!(e.message().contains("unknown plugin 'nosuch'"));
    }
}
