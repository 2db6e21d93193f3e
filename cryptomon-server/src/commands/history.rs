//! `cryptomon history`: the stored history of closed days, and its repair.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use cryptomon_core::pipeline;

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Rewrite one day of history from its snapshots under raw/ and backfilled hours under
    /// backfill/, replacing the stored day.
    ///
    /// Transforms write each closed UTC day once and never rewrite it; this is the way to
    /// write a day they reported as not written, or to take in snapshots that arrived late.
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
struct RepairArgs {
    /// The store: a directory.
    #[arg(long, value_name = "DIR")]
    store: StoreArg,
    /// The UTC day to rewrite, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: String,
}

pub(crate) async fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        HistoryCommand::Repair(args) => repair(args).await,
    }
}

async fn repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let repair = pipeline::repair_history(store.as_ref(), &args.date)
        .await
        .with_context(|| format!("cannot repair the history of {}", args.date))?;
    let was = match repair.replaced {
        Some((rows, bytes)) => format!("replaced a day of {rows} rows ({bytes} bytes)"),
        None => "no day was stored before".to_owned(),
    };
    println!(
        "history {}: wrote {} rows from {} snapshots and {} backfilled hours; {was}",
        repair.date, repair.rows, repair.snapshots, repair.backfilled_hours
    );
    for (key, why) in &repair.skipped {
        println!("  skipped {key}: {why}");
    }
    Ok(ExitCode::SUCCESS)
}
