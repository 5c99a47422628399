//! Give the shared library the SONAME it is installed under
//! (`libvaccel.so.<major>`), so programs linked against the installed
//! `libvaccel.so` record the versioned name.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvaccel.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
