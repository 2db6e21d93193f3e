//! `cryptomon transform`: snapshots in, summary and window state out.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cryptomon_core::{PolarsAggregator, pipeline};

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct TransformArgs {
    /// The store: a directory.
    #[arg(long, value_name = "DIR")]
    store: StoreArg,
}

pub(crate) async fn run(args: TransformArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let report = pipeline::transform(store.as_ref(), &PolarsAggregator::default())
        .await
        .with_context(|| format!("transform of {store} failed"))?;
    println!(
        "transform: as_of {}, {} series, {} samples, {} alerts",
        report.as_of, report.series, report.samples, report.alerts
    );
    println!(
        "  read {} of {} listed objects ({:.1} MB), skipped {}, wrote {} objects in {:.3} s",
        report.read,
        report.listed,
        report.bytes_read as f64 / 1e6,
        report.skipped.len(),
        report.writes,
        report.elapsed.as_secs_f64()
    );
    for s in &report.skipped {
        println!("  skipped {}: {}", s.key, s.reason);
    }
    Ok(ExitCode::SUCCESS)
}
