//! `cryptomon candles`: print one series' candles, of the stored window or, with `--from` or
//! `--to`, of any range from the window and the stored history days.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use cryptomon_core::pipeline::HistoryCache;
use cryptomon_core::{CandleInterval, Pair, SourceName, Tick, engine, pipeline};

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct CandlesArgs {
    /// The store: a directory.
    #[arg(long, value_name = "DIR")]
    store: StoreArg,
    /// The series' source (e.g. coinbase).
    #[arg(long, value_name = "S")]
    source: SourceName,
    /// The series' pair (e.g. BTC-USD).
    #[arg(long, value_name = "P")]
    pair: Pair,
    /// Candle length: 1m, 5m, 15m, 1h or 1d.
    #[arg(long, default_value = "5m")]
    interval: CandleInterval,
    /// Earliest tick, RFC 3339 (default: 24 h before --to). With --from or --to, the candles
    /// come from the window and the history days; at most 5,000 of them.
    #[arg(long, value_name = "TIME", value_parser = Tick::parse)]
    from: Option<Tick>,
    /// Latest tick, RFC 3339 (default: the latest summary's as_of).
    #[arg(long, value_name = "TIME", value_parser = Tick::parse)]
    to: Option<Tick>,
}

pub(crate) async fn run(args: CandlesArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let window = pipeline::read_window(store.as_ref())
        .await
        .context("cannot read the window state")?;
    let (source, pair, interval) = (args.source, args.pair, args.interval);
    if args.from.is_none() && args.to.is_none() {
        let Some(window) = window else {
            bail!("{store} holds no window state yet: run `cryptomon transform` first");
        };
        let candles =
            pipeline::blocking(move || engine::candles(&window, &source, &pair, interval)).await?;
        println!("{}", serde_json::to_string(&candles)?);
        return Ok(ExitCode::SUCCESS);
    }
    let to = match args.to {
        Some(to) => to,
        None => pipeline::read_summary(store.as_ref())
            .await
            .context("cannot read the summary")?
            .map(|s| s.as_of)
            .context("no summary to take --to from: give --to")?,
    };
    let from = args.from.unwrap_or(to.add_secs(-86_400));
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let candles = pipeline::range_candles(
        store.as_ref(),
        &HistoryCache::new(0),
        window.map(std::sync::Arc::new),
        &source,
        &pair,
        interval,
        from,
        to,
    )
    .await?;
    for day in &candles.skipped_days {
        eprintln!("history {} skipped: {}", day.date, day.reason);
    }
    println!("{}", serde_json::to_string(&candles)?);
    Ok(ExitCode::SUCCESS)
}
