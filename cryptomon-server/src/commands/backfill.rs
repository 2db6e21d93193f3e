//! `cryptomon backfill`: the last hours of one-minute closes from the exchanges' own candles.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use cryptomon_core::config::{Config, MAX_BACKFILL_HOURS};
use cryptomon_core::pipeline::{self, BackfillProgress, BackfillReport, HourOutcome, HourReport};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynStore, Pair, SourceName, Tick, exchange};
use indicatif::{ProgressBar, ProgressStyle};

use super::StoreArg;

#[derive(Debug, Args)]
#[command(after_help = "\
Each source's object for an hour is written once (backfill/source=S/date=D/YYYYMMDDTHH0000Z.json) \
and never touched again: a second run fetches only the hours still missing. Snapshots under raw/ \
are never written; the transform prefers a collected snapshot's sample to a backfilled one.

Exit code: 0 unless there was something to fetch, nothing could be written and no hour was \
there already.")]
pub(crate) struct BackfillArgs {
    /// Whole UTC hours before the current one to fill, 1 to 8784 (default: the config's
    /// [backfill] hours, 24).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BACKFILL_HOURS)))]
    hours: Option<u32>,
    /// The store: a directory (created if missing) or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    store: StoreArg,
    /// The configuration file (see docs/configuration.md). Without it: BTC, ETH and SOL on
    /// Coinbase, Kraken, Binance and CoinGecko.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) async fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load_checked(path, exchange::validate)?,
        None => Config::default(),
    };
    let hours = args.hours.unwrap_or(config.backfill.hours);
    let sources = exchange::build_candle_sources(&config, &Secrets::default())
        .context("cannot set up the candle sources")?;
    let store = args.store.open_or_create()?;
    let now = Tick::floor(Utc::now(), 1);
    eprintln!(
        "backfilling {hours} h from {} sources into {store}",
        sources.len()
    );
    let progress = Progress::new();
    let report = pipeline::backfill(store.as_ref(), &sources, hours, now, &progress).await?;
    progress.finish();
    print!("{}", describe(&report));
    Ok(if report.fetched_nothing() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Fills an empty window from the config's exchanges' candles before a program's first run
/// (`serve`, `transform --config`), unless the config's `[backfill] on_empty` is off, with the
/// command's progress and report. A failure is a warning: the program goes on without it.
pub(super) async fn backfill_at_start(store: &DynStore, config: &Config) {
    let run = async {
        let sources = exchange::build_candle_sources(config, &Secrets::default())?;
        let progress = Progress::new();
        let now = Tick::floor(Utc::now(), 1);
        let report =
            pipeline::backfill_on_empty(store.as_ref(), &sources, &config.backfill, now, &progress)
                .await;
        progress.finish();
        report
    };
    match run.await {
        Ok(Some(report)) => eprint!("{}", describe(&report)),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "backfill at start-up failed; going on without it"),
    }
}

/// A bar on a terminal, one line per hour otherwise (both on stderr: stdout is the report).
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("backfill {bar:40} {pos}/{len} hours {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        });
        Progress { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl BackfillProgress for Progress {
    fn planned(&self, source: &SourceName, hours: usize) {
        match &self.bar {
            Some(bar) => bar.inc_length(hours as u64),
            None => eprintln!("{source}: {hours} hours to fetch"),
        }
    }

    fn fetching(&self, source: &SourceName, pair: &Pair) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{source} {pair}")),
            None => eprintln!("{source}: fetching {pair}"),
        }
    }

    fn done(&self, report: &HourReport) {
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => eprintln!("{}", hour_line(report)),
        }
    }
}

fn hour_line(r: &HourReport) -> String {
    let what = match &r.outcome {
        HourOutcome::Written { samples } => format!("wrote {samples} samples"),
        HourOutcome::Present => "already present".to_owned(),
        HourOutcome::NotWritten(why) => format!("not written: {why}"),
    };
    format!("{}: {}: {what}", r.source, r.hour)
}

/// The closing report: a line per source, what could not be filled, and the totals.
fn describe(report: &BackfillReport) -> String {
    let mut out = String::new();
    let mut sources: Vec<&SourceName> = report.hours.iter().map(|h| &h.source).collect();
    sources.dedup();
    for source in sources {
        let of = |f: fn(&HourOutcome) -> bool| {
            report
                .hours
                .iter()
                .filter(|h| &h.source == source && f(&h.outcome))
                .count()
        };
        out.push_str(&format!(
            "{source}: {} hours written, {} already present, {} not written\n",
            of(|o| matches!(o, HourOutcome::Written { .. })),
            of(|o| *o == HourOutcome::Present),
            of(|o| matches!(o, HourOutcome::NotWritten(_))),
        ));
    }
    if !report.unfilled.is_empty() {
        out.push_str("not filled:\n");
        for u in &report.unfilled {
            let pair = u
                .pair
                .as_ref()
                .map_or("(all pairs)".to_owned(), Pair::to_string);
            let minutes = if u.minutes > 0 {
                format!(", {} minutes", u.minutes)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  {} {pair}: {} ({} hours{minutes})\n",
                u.source, u.reason, u.hours
            ));
        }
    }
    out.push_str(&format!(
        "backfill: {} hours written, {} already present, {} not written\n",
        report.written(),
        report.present(),
        report.not_written()
    ));
    out
}
