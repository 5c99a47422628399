//! The `vaccel` binary. All logic lives in the library so tests can call it.

fn main() -> std::process::ExitCode {
    vaccel_cli::main_with_args(std::env::args_os())
}
