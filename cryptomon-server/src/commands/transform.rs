//! `cryptomon transform`: new snapshots in, summary and window state out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use cryptomon_core::config::Config;
use cryptomon_core::pipeline::{
    self, Alerting, TransformCache, TransformMode, TransformOptions, TransformReport,
};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynStore, PolarsAggregator};

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct TransformArgs {
    /// The store: a directory or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    store: StoreArg,
    /// Rebuild the window from every raw snapshot instead of taking in only the new ones.
    #[arg(long)]
    full: bool,
    /// The configuration file: its `[alerts]` rules are evaluated after the transform and
    /// their events delivered (see docs/alerts.md), and, unless its `[backfill] on_empty` is
    /// off, an empty window is first filled from its exchanges' one-minute candles. Without
    /// it, no rules and no backfill.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run again every SECONDS until Ctrl-C, keeping the window state in memory between runs:
    /// while no other transform writes the store, a run reads only the new snapshots (pair it
    /// with a `cryptomon collect` writing the same store).
    #[arg(long, value_name = "SECONDS", conflicts_with = "full", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) every: Option<u64>,
    /// The keys written since the last transform, one a line (`-` reads them from stdin, as
    /// `cryptomon collect --once --print-keys` prints them): the run reads those and lists
    /// nothing, until an hour of ticks calls for a reconciliation (see docs/architecture.md,
    /// "The pipelines"), and never backfills. Without it, the run lists the window's
    /// partitions.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["full", "every"])]
    keys: Option<PathBuf>,
}

/// The keys of `--keys`: one a line, blank lines and surrounding spaces ignored.
fn read_keys(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the keys from stdin")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the keys from {}", path.display()))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The alert rules and sinks of `path`'s `[alerts]` table and its tolerated clock skew; the
/// defaults without a file.
pub(crate) fn load_settings(
    path: Option<&std::path::Path>,
) -> anyhow::Result<(Alerting, Duration)> {
    match path {
        Some(path) => settings(&load_config(path)?, path),
        None => Ok((Alerting::default(), pipeline::DEFAULT_MAX_CLOCK_SKEW)),
    }
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("cannot load the configuration {}", path.display()))
}

/// The alert rules and sinks of `config` (read from `path`) and its tolerated clock skew.
fn settings(config: &Config, path: &std::path::Path) -> anyhow::Result<(Alerting, Duration)> {
    // The CLI's secrets are its environment variables.
    let alerting = Alerting::from_config(config, &Secrets::default())
        .with_context(|| format!("invalid [alerts] in {}", path.display()))?;
    Ok((
        alerting,
        Duration::from_secs(u64::from(config.max_clock_skew_secs)),
    ))
}

pub(crate) async fn run(args: TransformArgs) -> anyhow::Result<ExitCode> {
    let path = args.config.as_deref();
    let config = path.map(load_config).transpose()?;
    let (alerting, max_clock_skew) = match config.as_ref().zip(path) {
        Some((config, path)) => settings(config, path)?,
        None => load_settings(None)?,
    };
    let handoff = args.keys.as_deref().map(read_keys).transpose()?;
    let store = args.store.open_existing()?;
    // Only with a config: its sources are the exchanges to ask, and without one the default
    // sources would be asked, which a transform alone never needs. A run told of its keys
    // follows a collection, so its window is not empty, and checking would cost the listing
    // the hand-off saves.
    if let (Some(config), None) = (&config, &handoff) {
        super::backfill::backfill_at_start(&store, config).await;
    }
    let mode = if args.full {
        TransformMode::Full
    } else {
        TransformMode::Incremental
    };
    let options = TransformOptions {
        max_clock_skew,
        handoff,
        ..alerting.options(mode)
    };
    let Some(every) = args.every else {
        let report = pipeline::transform(store.as_ref(), &PolarsAggregator::default(), &options)
            .await
            .with_context(|| format!("transform of {store} failed"))?;
        print_report(&report);
        deliver(&alerting, &store).await;
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "transforming {store} every {every} s, the window state kept in memory between runs; \
         Ctrl-C to stop"
    );
    let options = TransformOptions {
        cache: Some(Arc::new(TransformCache::new())),
        ..options
    };
    let mut failed = false;
    loop {
        let started = Instant::now();
        match pipeline::transform(store.as_ref(), &PolarsAggregator::default(), &options).await {
            Ok(report) => {
                print_report(&report);
                deliver(&alerting, &store).await;
            }
            Err(cryptomon_core::Error::NoData { .. }) => println!("nothing to transform yet"),
            Err(error) => {
                // The next run tries again; the exit status remembers.
                eprintln!("transform of {store} failed: {error}");
                failed = true;
            }
        }
        let wait = Duration::from_secs(every).saturating_sub(started.elapsed());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &TransformReport) {
    let how = match (report.mode, &report.rebuild_reason) {
        (TransformMode::Incremental, _) if report.warm => {
            "incremental, on the state held in memory".to_owned()
        }
        (TransformMode::Incremental, _) if !report.reconciled => {
            "incremental, told of its keys".to_owned()
        }
        (TransformMode::Incremental, _) => "incremental".to_owned(),
        (TransformMode::Full, None) => "full rebuild".to_owned(),
        (TransformMode::Full, Some(why)) => format!("full rebuild: {why}"),
    };
    println!(
        "transform ({how}): as_of {}, {} series, {} samples, {} alerts",
        report.as_of, report.series, report.samples, report.alerts
    );
    println!(
        "  read {} objects ({:.1} MB; {} new snapshots) after {} lists of {} keys, skipped {}, wrote {} objects{} in {:.3} s",
        report.read,
        report.bytes_read as f64 / 1e6,
        report.new_objects,
        report.lists,
        report.listed,
        report.skipped.len(),
        report.writes,
        if report.compacted {
            " (a new window base)"
        } else {
            ""
        },
        report.elapsed.as_secs_f64()
    );
    for s in &report.skipped {
        println!("  skipped {}: {}", s.key, s.reason);
    }
    for day in &report.history {
        println!("  {day}");
    }
    for event in &report.alert_events {
        println!("  {}", event.text());
    }
    if let Some(error) = &report.alert_error {
        println!("  alert rules not evaluated: {error}");
    }
}

/// One delivery round. The aggregates are written: a receiver that fails now only leaves its
/// events queued.
async fn deliver(alerting: &Alerting, store: &DynStore) {
    match alerting
        .deliver(store.as_ref(), pipeline::DEFAULT_DELIVERY_BUDGET)
        .await
    {
        Ok(d) if d.delivered + d.failed.len() + d.pending + d.dropped > 0 => {
            println!(
                "  alerts: {} delivered, {} still queued, {} given up",
                d.delivered, d.pending, d.dropped
            );
            for (sink, why) in &d.failed {
                println!("  delivery to {sink} failed (retried at the next transform): {why}");
            }
        }
        Ok(_) => {}
        Err(error) => println!("  alert delivery not run: {error}"),
    }
}
