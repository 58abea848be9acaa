//! The `switchyard` binary: a thin shell around [`switchyard::cli::run`].

use std::io::Write;

/// mimalloc instead of the system allocator: parsing and mapping events allocate many small,
/// short-lived strings and maps, which glibc's malloc serves markedly slower (BENCHMARKS.md,
/// "peers"). `switchyard_alloc` says how it is asked.
#[global_allocator]
static GLOBAL: switchyard_alloc::Allocator = switchyard_alloc::Allocator;

fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = switchyard::cli::run(
        std::env::args_os(),
        &mut stdin.lock(),
        &mut out,
        &mut std::io::stderr(),
    );
    let flushed = out.flush();
    match (code, flushed) {
        (0, Ok(())) => std::process::ExitCode::SUCCESS,
        (0, Err(_)) => std::process::ExitCode::FAILURE,
        (code, _) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}
