//! The subcommands of `cryptomon`, one module each, and what they share.

mod backfill;
mod candles;
mod collect;
mod history;
mod serve;
mod store_arg;
mod transform;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use store_arg::StoreArg;

/// Watch crypto markets: collect quotes, compute 24-hour metrics, serve them.
#[derive(Debug, Parser)]
#[command(
    name = "cryptomon",
    version,
    about = "Watch crypto markets: collect quotes, compute 24-hour metrics, serve them."
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch quotes and store one snapshot per source for the current tick.
    Collect(collect::CollectArgs),
    /// Compute the 24-hour summary and window state from the stored snapshots.
    Transform(transform::TransformArgs),
    /// Fill the last hours from the exchanges' one-minute candles, for an empty chart.
    Backfill(backfill::BackfillArgs),
    /// Print the candle view (cryptomon.candles/v1 JSON) of one series.
    Candles(candles::CandlesArgs),
    /// The history of closed days under history/: repair a day.
    History(history::HistoryArgs),
    /// Serve the API and dashboard, collecting and transforming every minute.
    Serve(serve::ServeArgs),
}

impl Cli {
    /// The log verbosity: a long-running `serve` says what it is doing by default.
    pub(crate) fn log_level(&self) -> u8 {
        match self.command {
            Command::Serve(_) => self.verbose.max(1),
            _ => self.verbose,
        }
    }
}

/// Runs the command; `Ok` carries the exit code for partial failures the command reported.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Collect(args) => collect::run(args).await,
        Command::Transform(args) => transform::run(args).await,
        Command::Backfill(args) => backfill::run(args).await,
        Command::Candles(args) => candles::run(args).await,
        Command::History(args) => history::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}

/// Logs go to stderr so stdout stays the command's output, coloured only on a terminal: a file
/// or a pipe gets plain text.
pub(crate) fn init_logging(verbose: u8) {
    use std::io::IsTerminal;

    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
