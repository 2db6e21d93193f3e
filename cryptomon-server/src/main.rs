//! `cryptomon`: collect, transform and inspect market data on one machine.
//!
//! A shell: parse the arguments, set up logging, run one command, print a one-line error and
//! exit non-zero on failure.

mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    commands::init_logging(cli.log_level());
    if cli.long_running() {
        one_malloc_arena();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The variable glibc's malloc reads its arena count from, at start only.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_VAR: &str = "MALLOC_ARENA_MAX";

/// Restarts this process with one malloc arena, unless `MALLOC_ARENA_MAX` is set already (by
/// the user, or by this function before the restart).
///
/// glibc gives a thread that meets another in malloc an arena of its own (up to eight per
/// core), and each arena keeps what is freed into it. A process that merges a day's window
/// every minute on whichever blocking thread is free (`serve`, `transform --every`) so held
/// 108 MB; with one arena it holds 61 MB, at the same tick time (docs/performance.md). The
/// variable is read only when a process starts, and setting the arena count from inside would
/// take `unsafe` code, which this workspace forbids: hence a restart, once, before anything
/// else has started. Should it fail, this process goes on with glibc's default.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ARENA_VAR).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            tracing::warn!(%error, "cannot find this program to restart it with {ARENA_VAR}=1");
            return;
        }
    };
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only if it failed; on success this process image is replaced (same PID,
    // same open files), so a supervisor sees no difference.
    let error = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(ARENA_VAR, "1")
        .exec();
    tracing::warn!(%error, "cannot restart with {ARENA_VAR}=1; going on with glibc's arenas");
}

/// Other allocators keep no per-thread arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
