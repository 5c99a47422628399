//! The hand-written headers and the Rust side must agree:
//!
//! 1. a C file generated here `_Static_assert`s the size, alignment and
//!    field offsets of every shared struct and the value of every constant,
//!    with the numbers taken from the Rust types (`size_of`, `offset_of!`)
//!    and from `vaccel_core`'s enums (`Code`, `OpType`, `ArgType`, …), and
//!    is compiled with `-Wall -Wextra -Werror`;
//! 2. every `VACCEL_*` constant the headers define has a Rust counterpart
//!    in that table (so a constant cannot be added to a header unchecked);
//! 3. every function the headers declare is exported by the built library,
//!    and every `vaccel_*` function it exports is declared.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use vaccel::arg::CArg;
use vaccel::ops::AesCbc;
use vaccel::tensor::DType;
use vaccel::{ArgType, Code, OpType, PluginType, ResourceType};
use vaccel_capi::{
    vaccel_arg_array, vaccel_id_t, vaccel_prof_region, vaccel_resource, vaccel_session,
    vaccel_tensor,
};

/// Every header of the C API (the plugin ABI header has its own checks).
fn headers() -> Vec<PathBuf> {
    let dir = common::include_dir();
    let mut v = vec![dir.join("vaccel.h")];
    let mut sub: Vec<PathBuf> = std::fs::read_dir(dir.join("vaccel"))
        .expect("include/vaccel")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .filter(|p| p.file_name().is_some_and(|n| n != "plugin_abi.h"))
        .collect();
    sub.sort();
    v.extend(sub);
    v
}

/// Every constant: C name → value, from the Rust side.
fn constants() -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    m.insert("VACCEL_OK".to_string(), i64::from(vaccel_capi::VACCEL_OK));
    for c in Code::ALL {
        m.insert(format!("VACCEL_{}", c.name()), i64::from(c.as_i32()));
    }
    assert_eq!(
        m["VACCEL_ERANGE"],
        i64::from(vaccel_capi::VACCEL_ERANGE),
        "VACCEL_ERANGE"
    );
    for op in OpType::ALL {
        m.insert(format!("VACCEL_OP_{}", op.name()), i64::from(op.id()));
    }
    for v in 0..256 {
        if let Some(t) = ArgType::from_u32(v) {
            m.insert(format!("VACCEL_ARG_{}", t.name()), i64::from(v));
        }
        if let Some(t) = ResourceType::from_u32(v) {
            m.insert(format!("VACCEL_RESOURCE_{}", t.name()), i64::from(v));
        }
        if let Some(d) = DType::from_u32(v) {
            let n = d.name();
            let c = match (&n[..1], &n[1..]) {
                ("f", bits) => format!("FLOAT{bits}"),
                ("u", bits) => format!("UINT{bits}"),
                ("i", bits) => format!("INT{bits}"),
                _ => n.to_ascii_uppercase(),
            };
            m.insert(format!("VACCEL_TENSOR_{c}"), i64::from(v));
        }
    }
    m.insert("VACCEL_PLUGIN_NONE".into(), 0);
    for name in [
        "CPU",
        "GPU",
        "FPGA",
        "SOFTWARE",
        "TENSORFLOW",
        "TORCH",
        "JETSON",
        "GENERIC",
        "DEBUG",
        "PROFILING",
        "REMOTE",
        "ALL",
    ] {
        let f = PluginType::from_name(name).unwrap_or_else(|| panic!("PluginType::{name}"));
        m.insert(format!("VACCEL_PLUGIN_{name}"), i64::from(f.bits()));
    }
    m
}

struct Layout {
    c_name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
}

macro_rules! layout {
    ($c:literal, $t:ty { $($cf:ident => $rf:ident),* $(,)? }) => {
        Layout {
            c_name: $c,
            size: size_of::<$t>(),
            align: align_of::<$t>(),
            fields: vec![$((stringify!($cf), offset_of!($t, $rf))),*],
        }
    };
}

fn layouts() -> Vec<Layout> {
    vec![
        layout!("struct vaccel_session", vaccel_session {
            id => id, hint => hint, remote_id => remote_id, is_virtio => is_virtio, priv => priv_,
        }),
        layout!("struct vaccel_resource", vaccel_resource {
            id => id, remote_id => remote_id, type => type_, nr_files => nr_files, priv => priv_,
        }),
        // Exactly the core's CArg: what the exec plugin hands to callees.
        layout!("struct vaccel_arg", CArg {
            buf => buf, size => size, type => arg_type, custom_type_id => custom_type_id, owned => owned,
        }),
        layout!("struct vaccel_arg_array", vaccel_arg_array {
            args => args, count => count, capacity => capacity, position => position, owned => owned,
        }),
        layout!("struct vaccel_prof_region", vaccel_prof_region {
            name => name, nr_entries => nr_entries, total_ns => total_ns, min_ns => min_ns,
            max_ns => max_ns, start_ns => start_ns,
        }),
        layout!("struct vaccel_tensor", vaccel_tensor {
            name => name, dtype => dtype, nr_dims => nr_dims, dims => dims, data => data, size => size,
        }),
    ]
}

fn compile_c(src: &str, name: &str, lang: &str, std: &str) -> std::process::Output {
    let path = common::scratch().join(name);
    std::fs::write(&path, src).expect("writing the generated C file");
    let cc = if lang == "c++" {
        std::env::var("CXX").unwrap_or_else(|_| "c++".into())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".into())
    };
    Command::new(&cc)
        .args([
            "-x",
            lang,
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(common::include_dir())
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the compiler '{cc}' (apt-get install gcc): {e}"))
}

#[test]
fn layouts_and_constants_match_the_rust_side() {
    let mut c = String::from("#include <stddef.h>\n#include <vaccel.h>\n\n");
    for l in layouts() {
        writeln!(
            c,
            "_Static_assert(sizeof({0}) == {1}, \"sizeof({0}) is not {1} as in Rust\");",
            l.c_name, l.size
        )
        .unwrap();
        writeln!(
            c,
            "_Static_assert(_Alignof({0}) == {1}, \"_Alignof({0}) is not {1} as in Rust\");",
            l.c_name, l.align
        )
        .unwrap();
        for (f, off) in &l.fields {
            writeln!(
                c,
                "_Static_assert(offsetof({0}, {f}) == {off}, \"offsetof({0}, {f}) is not {off} as in Rust\");",
                l.c_name
            )
            .unwrap();
        }
    }
    for (name, v) in constants() {
        writeln!(
            c,
            "_Static_assert({name} == {v}, \"{name} is not {v} as in Rust\");"
        )
        .unwrap();
    }
    // Enums and ids have the Rust types' sizes.
    for t in [
        "vaccel_arg_type_t",
        "vaccel_op_type_t",
        "vaccel_plugin_type_t",
        "vaccel_resource_type_t",
        "vaccel_tensor_dtype_t",
    ] {
        writeln!(
            c,
            "_Static_assert(sizeof({t}) == {}, \"sizeof({t})\");",
            size_of::<u32>()
        )
        .unwrap();
    }
    writeln!(
        c,
        "_Static_assert(sizeof(vaccel_id_t) == {} && (vaccel_id_t)-1 < 0, \"vaccel_id_t\");",
        size_of::<vaccel_id_t>()
    )
    .unwrap();
    for n in [0usize, 1, 15, 16, 17, 1000] {
        writeln!(
            c,
            "_Static_assert(VACCEL_AES_CBC_ENCRYPTED_LEN({n}) == {0}, \"AES length of {n}\");",
            AesCbc::padded_len(n)
        )
        .unwrap();
    }
    // The static initializer compiles cleanly (no missing-field warnings).
    c.push_str(
        "static struct vaccel_prof_region region = VACCEL_PROF_REGION_INIT(\"r\");\n\
         const struct vaccel_prof_region *region_ptr(void);\n\
         const struct vaccel_prof_region *region_ptr(void) { return &region; }\n",
    );
    let o = compile_c(&c, "layout.c", "c", "-std=c11");
    assert!(
        o.status.success(),
        "the headers disagree with the Rust side:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_header_compiles_on_its_own_and_as_cxx() {
    for h in headers() {
        let rel = h
            .strip_prefix(common::include_dir())
            .expect("under include/")
            .to_string_lossy()
            .into_owned();
        let src = format!("#include <{rel}>\nint vaccel_header_check_{};\n", rel.len());
        let o = compile_c(&src, "one.c", "c", "-std=c11");
        assert!(
            o.status.success(),
            "{rel} does not compile on its own:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // C++ callers: the extern "C" guards and the initializer macro.
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    if Command::new(&cxx).arg("--version").output().is_err() {
        eprintln!("NOTE: no C++ compiler ('{cxx}'): the C++ compile check did not run");
        return;
    }
    let src = "#include <vaccel.h>\n\
               static vaccel_prof_region r = VACCEL_PROF_REGION_INIT(\"x\");\n\
               int f(); int f() { vaccel_session s; return vaccel_session_init(&s, 0) + (int)r.nr_entries; }\n";
    let o = compile_c(src, "cxx.cc", "c++", "-std=c++11");
    assert!(
        o.status.success(),
        "vaccel.h does not compile as C++:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Remove comments and preprocessor lines (with their continuations).
fn strip(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("*/").expect("unterminated comment") + i + 2;
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    let mut code = String::new();
    let mut in_pp = false;
    for line in out.lines() {
        let line = line.split("//").next().unwrap_or("");
        if in_pp || line.trim_start().starts_with('#') {
            in_pp = line.trim_end().ends_with('\\');
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Functions declared in the headers: identifiers `vaccel_*` followed by `(`.
fn declared_functions() -> BTreeSet<String> {
    let mut fns = BTreeSet::new();
    for h in headers() {
        let code = strip(&std::fs::read_to_string(&h).expect("header"));
        let mut i = 0;
        while let Some(p) = code[i..].find("vaccel_") {
            let start = i + p;
            let end = code[start..]
                .find(|c: char| !is_ident(c))
                .map_or(code.len(), |e| start + e);
            let before = code[..start].chars().next_back();
            if !before.is_some_and(is_ident) && code[end..].trim_start().starts_with('(') {
                fns.insert(code[start..end].to_string());
            }
            i = end;
        }
    }
    fns
}

/// `VACCEL_*` constants the headers define: `#define NAME <integer>` and enumerators.
fn header_constants() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for h in headers() {
        let src = std::fs::read_to_string(&h).expect("header");
        for line in src.lines() {
            let t = line.trim();
            if let Some(def) = t.strip_prefix("#define ") {
                let mut parts = def.split_whitespace();
                let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if name.starts_with("VACCEL_")
                    && !name.contains('(')
                    && value.parse::<i64>().is_ok()
                {
                    names.insert(name.to_string());
                }
            }
        }
        let code = strip(&src);
        let mut rest = code.as_str();
        while let Some(p) = rest.find("enum") {
            rest = &rest[p + 4..];
            let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else {
                break;
            };
            if open > close {
                continue;
            }
            for item in rest[open + 1..close].split(',') {
                let name = item.split('=').next().unwrap_or("").trim();
                if !name.is_empty() {
                    names.insert(name.to_string());
                }
            }
            rest = &rest[close..];
        }
    }
    names
}

#[test]
fn every_header_constant_has_a_rust_counterpart() {
    let rust = constants();
    let header = header_constants();
    assert!(header.len() > 80, "found only {} constants", header.len());
    let unchecked: Vec<_> = header.iter().filter(|n| !rust.contains_key(*n)).collect();
    assert!(
        unchecked.is_empty(),
        "header constants without a Rust counterpart (add them to constants()): {unchecked:?}"
    );
    let missing: Vec<_> = rust.keys().filter(|n| !header.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "Rust values the headers do not define: {missing:?}"
    );
}

#[test]
fn every_declared_function_is_exported_and_vice_versa() {
    let declared = declared_functions();
    assert!(
        declared.len() > 100,
        "found only {} declarations",
        declared.len()
    );
    for f in [
        "vaccel_session_init",
        "vaccel_genop",
        "vaccel_arg_array_get_double_array",
    ] {
        assert!(declared.contains(f), "{f} not found in the headers");
    }
    let lib_path = common::cdylib();
    // SAFETY: loading the library runs no initialisers with side effects
    // (Rust has no life before main); symbols are only looked up, not called.
    let lib = unsafe { libloading::Library::new(&lib_path) }.expect("loading the cdylib");
    let missing: Vec<_> = declared
        .iter()
        // SAFETY: only the address is looked up; the type is never used to call.
        .filter(|f| unsafe { lib.get::<*const ()>(f.as_bytes()) }.is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "declared in the headers but not exported by {}: {missing:?}",
        lib_path.display()
    );

    // The other way round, with nm: exported C API functions are declared.
    let out = match Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib_path)
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => panic!("cannot run nm (apt-get install binutils)"),
    };
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            let (_, kind, name) = (p.next()?, p.next()?, p.next()?);
            (kind == "T" && name.starts_with("vaccel_")).then(|| name.to_string())
        })
        // Entry points of the built-in plugins linked in (plugin ABI, not C API).
        .filter(|n| !n.ends_with("_entry_v1"))
        .collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "exported but not declared in any header: {undeclared:?}"
    );
}
