//! The `vaccel` binary. All logic lives in the library so tests can call it.

/// mimalloc instead of glibc's malloc: the agent and the functions serve
/// ops on many threads, and glibc's per-thread arenas trim and re-fault
/// large buffers (a decoded 4K image is 25 MB) on some threads and not
/// others, which made the same op ~30 % slower depending on the thread.
/// Built with `no_thp`: huge pages tripled the agent's resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vaccel_cli::main_with_args(std::env::args_os())
}
