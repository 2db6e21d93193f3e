//! `cryptomon collect`: one snapshot per source for the current tick.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use cryptomon_core::config::Config;
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynSource, DynStore, Tick, exchange, pipeline};

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct CollectArgs {
    /// Collect once, for the current tick, and exit. Without it, collect at every tick until
    /// Ctrl-C.
    #[arg(long)]
    once: bool,
    /// The store: a directory (created if missing) or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    store: StoreArg,
    /// Collect from the synthetic demo market (three sources, no network) instead of exchanges.
    #[arg(long, conflicts_with = "config")]
    demo: bool,
    /// The configuration file (see docs/configuration.md). Without it: BTC, ETH and SOL on
    /// Coinbase, Kraken, Binance and CoinGecko, every 60 s.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the keys of the tick's snapshots on stdout, one a line (written now or already
    /// there), for `cryptomon transform --keys -`; the report goes to stderr.
    #[arg(long)]
    print_keys: bool,
}

pub(crate) async fn run(args: CollectArgs) -> anyhow::Result<ExitCode> {
    let (sources, interval) = sources(args.demo, args.config.as_deref())?;
    let store = args.store.open_or_create()?;
    if args.once {
        let tick = Tick::floor(Utc::now(), interval);
        return Ok(collect_tick(&sources, &store, tick, None, args.print_keys).await);
    }
    eprintln!(
        "collecting {} sources into {store} every {interval} s; Ctrl-C to stop",
        sources.len()
    );
    let mut failed = false;
    loop {
        let now = Utc::now();
        let next = Tick::floor(now, interval).add_secs(i64::from(interval));
        let wait = (next.to_datetime() - now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        // The tick's collection is over before the next one is due.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(interval));
        failed |= collect_tick(&sources, &store, next, Some(deadline), args.print_keys).await
            != ExitCode::SUCCESS;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The sources to collect and the interval between ticks.
pub(crate) fn sources(
    demo: bool,
    config: Option<&std::path::Path>,
) -> anyhow::Result<(Vec<DynSource>, u32)> {
    if demo {
        return Ok((cryptomon_mock::demo_sources(), 60));
    }
    let config = match config {
        // What each exchange accepts is checked with the file, so the error names it.
        Some(path) => Config::load_checked(path, exchange::validate)?,
        None => Config::default(),
    };
    // The CLI's secrets are its environment variables.
    let sources = exchange::build_sources(&config, &Secrets::default())
        .context("cannot set up the sources")?;
    Ok((sources, config.interval_secs))
}

/// Collects every source for `tick`, by `deadline` if given, prints one line per source (on
/// stderr when `print_keys`, which prints the keys stored on stdout), and fails if any failed.
async fn collect_tick(
    sources: &[DynSource],
    store: &DynStore,
    tick: Tick,
    deadline: Option<tokio::time::Instant>,
    print_keys: bool,
) -> ExitCode {
    let started = std::time::Instant::now();
    let results = match deadline {
        Some(deadline) => {
            pipeline::collect_all_until(sources, store.as_ref(), tick, deadline).await
        }
        None => pipeline::collect_all(sources, store.as_ref(), tick).await,
    };
    let say = |line: String| {
        if print_keys {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let mut failed = 0;
    for (source, result) in &results {
        match result {
            Ok(r) if r.written => say(format!("{source}: wrote {} ({} quotes)", r.key, r.quotes)),
            Ok(r) => say(format!(
                "{source}: {} already collected, nothing written",
                r.key
            )),
            Err(e) => {
                failed += 1;
                say(format!("{source}: FAILED: {e}"));
            }
        }
        if let Ok(r) = result {
            if print_keys {
                println!("{}", r.key);
            }
            for problem in &r.problems {
                say(format!("  {source}: {problem}"));
            }
        }
    }
    say(format!(
        "collect: tick {tick}, {} of {} sources ok in {:.2} s",
        results.len() - failed,
        results.len(),
        started.elapsed().as_secs_f64()
    ));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
