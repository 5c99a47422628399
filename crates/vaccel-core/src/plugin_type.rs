//! Plugin-type bitmask: what kind of hardware or software a plugin drives.
//! Sessions are created with a hint in the same bitmask.

use std::fmt;

bitflags::bitflags! {
    /// Plugin types, with upstream vAccel's `VACCEL_PLUGIN_*` values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PluginType: u32 {
        /// Runs on the host CPU.
        const CPU = 0x0001;
        /// Runs on a GPU.
        const GPU = 0x0002;
        /// Runs on an FPGA.
        const FPGA = 0x0004;
        /// A software implementation.
        const SOFTWARE = 0x0008;
        /// TensorFlow-based.
        const TENSORFLOW = 0x0010;
        /// PyTorch-based.
        const TORCH = 0x0020;
        /// NVIDIA Jetson.
        const JETSON = 0x0040;
        /// Generic (e.g. exec).
        const GENERIC = 0x0080;
        /// Debugging (e.g. noop).
        const DEBUG = 0x0100;
        /// Profiling.
        const PROFILING = 0x0200;
        /// Forwards to a remote agent.
        const REMOTE = 0x4000;
        /// Any type.
        const ALL = 0xffff;
    }
}

const NAMES: [(PluginType, &str); 11] = [
    (PluginType::CPU, "CPU"),
    (PluginType::GPU, "GPU"),
    (PluginType::FPGA, "FPGA"),
    (PluginType::SOFTWARE, "SOFTWARE"),
    (PluginType::TENSORFLOW, "TENSORFLOW"),
    (PluginType::TORCH, "TORCH"),
    (PluginType::JETSON, "JETSON"),
    (PluginType::GENERIC, "GENERIC"),
    (PluginType::DEBUG, "DEBUG"),
    (PluginType::PROFILING, "PROFILING"),
    (PluginType::REMOTE, "REMOTE"),
];

impl PluginType {
    /// Parse a hint given as a number (`0x4000`, `16384`) or as names joined
    /// with `|` or `,` (`cpu|remote`).
    pub fn parse(s: &str) -> crate::Result<PluginType> {
        let s = s.trim();
        let num = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()
        } else {
            s.parse::<u32>().ok()
        };
        if let Some(n) = num {
            return Ok(PluginType::from_bits_retain(n));
        }
        let mut t = PluginType::empty();
        for part in s.split(['|', ',']).map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("all") {
                t |= PluginType::ALL;
                continue;
            }
            let found = NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(part));
            match found {
                Some((f, _)) => t |= *f,
                None => {
                    return Err(crate::Error::inval(format!(
                        "unknown plugin type '{part}': use a number or names such as cpu, gpu, remote, all"
                    )));
                }
            }
        }
        Ok(t)
    }
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == PluginType::ALL {
            return f.write_str("ALL");
        }
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            write!(f, "0x{:x}", self.bits())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_values() {
        assert_eq!(PluginType::CPU.bits(), 0x1);
        assert_eq!(PluginType::DEBUG.bits(), 0x100);
        assert_eq!(PluginType::REMOTE.bits(), 0x4000);
        assert_eq!(PluginType::ALL.bits(), 0xffff);
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(PluginType::parse("0x4000").unwrap(), PluginType::REMOTE);
        assert_eq!(
            PluginType::parse("257").unwrap(),
            PluginType::CPU | PluginType::DEBUG
        );
        assert_eq!(
            PluginType::parse("cpu|Remote").unwrap(),
            PluginType::CPU | PluginType::REMOTE
        );
        assert_eq!(PluginType::parse("all").unwrap(), PluginType::ALL);
        assert!(PluginType::parse("quantum").is_err());
        assert_eq!(
            (PluginType::CPU | PluginType::GENERIC).to_string(),
            "CPU|GENERIC"
        );
        assert_eq!(PluginType::empty().to_string(), "0x0");
    }
}
