//! `cryptomon transform`: new snapshots in, summary and window state out.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cryptomon_core::PolarsAggregator;
use cryptomon_core::pipeline::{self, TransformMode};

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct TransformArgs {
    /// The store: a directory.
    #[arg(long, value_name = "DIR")]
    store: StoreArg,
    /// Rebuild the window from every raw snapshot instead of taking in only the new ones.
    #[arg(long)]
    full: bool,
}

pub(crate) async fn run(args: TransformArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let mode = if args.full {
        TransformMode::Full
    } else {
        TransformMode::Incremental
    };
    let report = pipeline::transform_with(store.as_ref(), &PolarsAggregator::default(), mode)
        .await
        .with_context(|| format!("transform of {store} failed"))?;
    let how = match (report.mode, &report.rebuild_reason) {
        (TransformMode::Incremental, _) => "incremental".to_owned(),
        (TransformMode::Full, None) => "full rebuild".to_owned(),
        (TransformMode::Full, Some(why)) => format!("full rebuild ({why})"),
    };
    println!(
        "transform ({how}): as_of {}, {} series, {} samples, {} alerts",
        report.as_of, report.series, report.samples, report.alerts
    );
    println!(
        "  read {} objects ({:.1} MB; {} new snapshots) after {} lists of {} keys, skipped {}, wrote {} objects in {:.3} s",
        report.read,
        report.bytes_read as f64 / 1e6,
        report.new_objects,
        report.lists,
        report.listed,
        report.skipped.len(),
        report.writes,
        report.elapsed.as_secs_f64()
    );
    for s in &report.skipped {
        println!("  skipped {}: {}", s.key, s.reason);
    }
    Ok(ExitCode::SUCCESS)
}
