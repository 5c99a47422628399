//! `vaccel exec`: typed arguments on the command line.

use std::io::Write;

use anyhow::{Context, bail};
use vaccel::{Arg, ArgOut, ArgType};

/// Arguments of `vaccel exec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shared library (must be on the exec allow-list: VACCEL_EXEC_ALLOWLIST).
    pub library: String,
    /// Function to call: `int fn(struct vaccel_arg *in, size_t, struct vaccel_arg *out, size_t)`.
    pub symbol: String,
    /// Input arguments as TYPE:VALUE — i8/i16/i32/i64/u8/u16/u32/u64/f32/f64:NUMBER,
    /// str:TEXT, hex:BYTES, file:PATH.
    pub args: Vec<String>,
    /// Output arguments as TYPE (a scalar type) or str:SIZE / bytes:SIZE.
    #[arg(long = "out", value_name = "SPEC")]
    pub outs: Vec<String>,
}

/// A parsed input value, as bytes plus its type.
#[derive(Debug, PartialEq)]
pub struct Value {
    pub ty: ArgType,
    pub bytes: Vec<u8>,
}

fn scalar_type(t: &str) -> Option<(ArgType, usize)> {
    Some(match t {
        "i8" => (ArgType::Int8, 1),
        "i16" => (ArgType::Int16, 2),
        "i32" => (ArgType::Int32, 4),
        "i64" => (ArgType::Int64, 8),
        "u8" => (ArgType::Uint8, 1),
        "u16" => (ArgType::Uint16, 2),
        "u32" => (ArgType::Uint32, 4),
        "u64" => (ArgType::Uint64, 8),
        "f32" => (ArgType::Float32, 4),
        "f64" => (ArgType::Float64, 8),
        _ => return None,
    })
}

/// Parse one `TYPE:VALUE` input.
pub fn parse_value(s: &str) -> anyhow::Result<Value> {
    let (t, v) = s
        .split_once(':')
        .with_context(|| format!("argument '{s}': expected TYPE:VALUE, e.g. i32:5 or str:hello"))?;
    let num = |what| format!("argument '{s}': '{v}' is not a valid {what}");
    let bytes = match t {
        "i8" => v
            .parse::<i8>()
            .with_context(|| num("i8"))?
            .to_ne_bytes()
            .to_vec(),
        "i16" => v
            .parse::<i16>()
            .with_context(|| num("i16"))?
            .to_ne_bytes()
            .to_vec(),
        "i32" => v
            .parse::<i32>()
            .with_context(|| num("i32"))?
            .to_ne_bytes()
            .to_vec(),
        "i64" => v
            .parse::<i64>()
            .with_context(|| num("i64"))?
            .to_ne_bytes()
            .to_vec(),
        "u8" => v
            .parse::<u8>()
            .with_context(|| num("u8"))?
            .to_ne_bytes()
            .to_vec(),
        "u16" => v
            .parse::<u16>()
            .with_context(|| num("u16"))?
            .to_ne_bytes()
            .to_vec(),
        "u32" => v
            .parse::<u32>()
            .with_context(|| num("u32"))?
            .to_ne_bytes()
            .to_vec(),
        "u64" => v
            .parse::<u64>()
            .with_context(|| num("u64"))?
            .to_ne_bytes()
            .to_vec(),
        "f32" => v
            .parse::<f32>()
            .with_context(|| num("f32"))?
            .to_ne_bytes()
            .to_vec(),
        "f64" => v
            .parse::<f64>()
            .with_context(|| num("f64"))?
            .to_ne_bytes()
            .to_vec(),
        "str" => {
            return Ok(Value {
                ty: ArgType::String,
                bytes: v.as_bytes().to_vec(),
            });
        }
        "hex" => {
            if v.len() % 2 != 0 {
                bail!("argument '{s}': hex needs an even number of digits");
            }
            let b = (0..v.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&v[i..i + 2], 16))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| num("hex string"))?;
            return Ok(Value {
                ty: ArgType::Raw,
                bytes: b,
            });
        }
        "file" => {
            let b = std::fs::read(v).with_context(|| format!("argument '{s}': cannot read {v}"))?;
            return Ok(Value {
                ty: ArgType::Buffer,
                bytes: b,
            });
        }
        _ => bail!(
            "argument '{s}': unknown type '{t}' (use i8..i64, u8..u64, f32, f64, str, hex, file)"
        ),
    };
    let (ty, _) = scalar_type(t).expect("numeric types are listed in scalar_type");
    Ok(Value { ty, bytes })
}

/// Parse one output spec into (type, size).
pub fn parse_out(s: &str) -> anyhow::Result<(ArgType, usize)> {
    if let Some(st) = scalar_type(s) {
        return Ok(st);
    }
    let (t, n) = s.split_once(':').with_context(|| {
        format!("--out '{s}': expected a scalar type (i32, f64, …) or str:SIZE / bytes:SIZE")
    })?;
    let n: usize = n
        .parse()
        .with_context(|| format!("--out '{s}': '{n}' is not a size"))?;
    if n == 0 || n > 64 << 20 {
        bail!("--out '{s}': size must be between 1 and 64 MiB");
    }
    match t {
        "str" => Ok((ArgType::String, n)),
        "bytes" => Ok((ArgType::Raw, n)),
        _ => bail!(
            "--out '{s}': unknown output type '{t}' (use str:SIZE or bytes:SIZE or a scalar type)"
        ),
    }
}

fn format_out(ty: ArgType, b: &[u8]) -> String {
    macro_rules! sc {
        ($t:ty) => {
            <[u8; std::mem::size_of::<$t>()]>::try_from(b)
                .map(|a| <$t>::from_ne_bytes(a).to_string())
                .unwrap_or_else(|_| format!("{b:02x?}"))
        };
    }
    match ty {
        ArgType::Int8 => sc!(i8),
        ArgType::Int16 => sc!(i16),
        ArgType::Int32 => sc!(i32),
        ArgType::Int64 => sc!(i64),
        ArgType::Uint8 => sc!(u8),
        ArgType::Uint16 => sc!(u16),
        ArgType::Uint32 => sc!(u32),
        ArgType::Uint64 => sc!(u64),
        ArgType::Float32 => sc!(f32),
        ArgType::Float64 => sc!(f64),
        ArgType::String => {
            String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned()
        }
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

pub fn run(sess: &vaccel::Session, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let values = a
        .args
        .iter()
        .map(|s| parse_value(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let specs = a
        .outs
        .iter()
        .map(|s| parse_out(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bufs: Vec<Vec<u8>> = specs.iter().map(|(_, n)| vec![0u8; *n]).collect();
    let read: Vec<Arg<'_>> = values.iter().map(|v| Arg::new(v.ty, &v.bytes)).collect();
    let mut write: Vec<ArgOut<'_>> = bufs
        .iter_mut()
        .zip(&specs)
        .map(|(b, (ty, _))| ArgOut::fixed(*ty, b))
        .collect();
    let t0 = std::time::Instant::now();
    sess.exec(&a.library, &a.symbol, &read, &mut write)?;
    let el = t0.elapsed();
    for (i, w) in write.iter().enumerate() {
        writeln!(out, "out[{i}] = {}", format_out(specs[i].0, w.written()))?;
    }
    writeln!(
        out,
        "exec {}:{} took {:.3} ms",
        a.library,
        a.symbol,
        el.as_secs_f64() * 1e3
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(
            parse_value("i32:5").unwrap(),
            Value {
                ty: ArgType::Int32,
                bytes: 5i32.to_ne_bytes().to_vec()
            }
        );
        assert_eq!(parse_value("str:hi").unwrap().bytes, b"hi");
        assert_eq!(parse_value("hex:00ff").unwrap().bytes, vec![0, 255]);
        assert!(
            parse_value("i32:x")
                .unwrap_err()
                .to_string()
                .contains("not a valid i32")
        );
        assert!(
            parse_value("i32")
                .unwrap_err()
                .to_string()
                .contains("expected TYPE:VALUE")
        );
        assert!(
            parse_value("q:1")
                .unwrap_err()
                .to_string()
                .contains("unknown type 'q'")
        );
        assert!(parse_value("hex:0").is_err());
        assert!(parse_value("file:/nonexistent").is_err());
    }

    #[test]
    fn outs() {
        assert_eq!(parse_out("i64").unwrap(), (ArgType::Int64, 8));
        assert_eq!(parse_out("str:32").unwrap(), (ArgType::String, 32));
        assert!(parse_out("str:0").is_err());
        assert!(parse_out("zz").is_err());
        assert_eq!(format_out(ArgType::Int32, &7i32.to_ne_bytes()), "7");
        assert_eq!(format_out(ArgType::String, b"ab\0\0"), "ab");
        assert_eq!(format_out(ArgType::Raw, &[1, 255]), "01ff");
    }
}
