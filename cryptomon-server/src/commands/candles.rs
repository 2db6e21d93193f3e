//! `cryptomon candles`: print one series' candle view from the stored window.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use cryptomon_core::{CandleInterval, Pair, SourceName, engine, pipeline};

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
    /// Candle length: 1m, 5m, 15m or 1h.
    #[arg(long, default_value = "5m")]
    interval: CandleInterval,
}

pub(crate) async fn run(args: CandlesArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let Some(window) = pipeline::read_window(store.as_ref())
        .await
        .context("cannot read the window state")?
    else {
        bail!("{store} holds no window state yet: run `cryptomon transform` first");
    };
    let (source, pair, interval) = (args.source, args.pair, args.interval);
    let candles =
        pipeline::blocking(move || engine::candles(&window, &source, &pair, interval)).await?;
    println!("{}", serde_json::to_string(&candles)?);
    Ok(ExitCode::SUCCESS)
}
