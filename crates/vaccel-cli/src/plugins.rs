//! `vaccel plugins`.

use std::io::Write;

/// Arguments of `vaccel plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also list built-in plugins that are compiled in but not loaded.
    #[arg(long)]
    pub available: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(rt: &vaccel::Runtime, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if a.json {
        let loaded: Vec<_> = rt
            .plugins()
            .iter()
            .map(|p| {
                let i = p.info();
                serde_json::json!({
                    "name": i.name,
                    "version": i.version,
                    "types": i.types.to_string(),
                    "type_bits": i.types.bits(),
                    "ops": i.ops.iter().map(|o| o.name()).collect::<Vec<_>>(),
                    "source": p.source().to_string(),
                    "details": i.details.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let avail: Vec<_> = rt.builtins().iter().map(|b| b.name).collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "loaded": loaded, "builtin": avail })
        )?;
        return Ok(());
    }
    if rt.plugins().is_empty() {
        writeln!(out, "no plugins loaded (VACCEL_PLUGINS is empty)")?;
    }
    for (i, p) in rt.plugins().iter().enumerate() {
        let info = p.info();
        writeln!(
            out,
            "{}. {} {} ({})",
            i + 1,
            info.name,
            info.version,
            p.source()
        )?;
        writeln!(out, "   types: {} (0x{:x})", info.types, info.types.bits())?;
        let ops: Vec<_> = info.ops.iter().map(|o| o.name()).collect();
        writeln!(out, "   ops:   {}", ops.join(", "))?;
        for (k, v) in &info.details {
            writeln!(out, "   {k}: {v}")?;
        }
    }
    if a.available {
        writeln!(out, "built-in plugins in this build:")?;
        for b in rt.builtins() {
            let loaded = if rt.plugin(b.name).is_some() {
                "loaded"
            } else {
                "not loaded"
            };
            writeln!(out, "   {:<8} {} [{loaded}]", b.name, b.description)?;
        }
    }
    Ok(())
}
