//! `cryptomon serve`: the API and dashboard, with collection and transform on the schedule.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cryptomon_core::config::Config;
use cryptomon_core::exchange::{self, build_sources};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynSource, DynStore};
use cryptomon_mock::MemoryStore;
use cryptomon_server::api::MarketExport;
use cryptomon_server::{ApiOptions, ServeOptions, demo_sources, serve};
use tokio::net::TcpListener;

use super::StoreArg;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The store: a directory, or `memory` (in-process: nothing touches the disk).
    #[arg(long, value_name = "DIR|memory", default_value = "./cryptomon-data")]
    store: String,
    /// The configuration (TOML): the exchanges and pairs to watch (without it, BTC, ETH and
    /// SOL on every exchange; ignored with --demo), the `[alerts]` rules and webhooks, and the
    /// `[backfill]` table (by default an empty window is first filled from the exchanges'
    /// one-minute candles).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Watch a synthetic market instead of real exchanges; an empty store first gets 24 h of
    /// its history, so the dashboard is full at once.
    #[arg(long)]
    demo: bool,
    /// Only serve a store that something else writes (the Lambdas' bucket, another process),
    /// picking up new aggregates as they land.
    #[arg(long, conflicts_with = "demo")]
    read_only: bool,
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

fn open_store(args: &ServeArgs) -> anyhow::Result<DynStore> {
    if args.store == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let location: StoreArg = args.store.parse().map_err(anyhow::Error::msg)?;
    if args.read_only {
        location.open_existing()
    } else {
        location.open_or_create()
    }
}

/// The sources to collect, the collection interval and, for live sources, the configuration.
fn sources(args: &ServeArgs) -> anyhow::Result<(Vec<DynSource>, Duration, Option<Config>)> {
    let minute = Duration::from_secs(60);
    if args.demo {
        return Ok((demo_sources(), minute, None));
    }
    if args.read_only {
        return Ok((Vec::new(), minute, None));
    }
    let config = match &args.config {
        Some(path) => Config::load_checked(path, exchange::validate)
            .with_context(|| format!("cannot load the configuration {}", path.display()))?,
        // The default configuration: BTC, ETH and SOL on every exchange, once a minute.
        None => Config::default(),
    };
    // The CLI's secrets are its environment variables.
    let sources =
        build_sources(&config, &Secrets::default()).context("cannot set up the exchanges")?;
    let interval = Duration::from_secs(u64::from(config.interval_secs));
    Ok((sources, interval, Some(config)))
}

/// The config's `[prometheus]` table: which series `/metrics` exports.
fn market_export(path: Option<&Path>) -> anyhow::Result<MarketExport> {
    let Some(path) = path else {
        return Ok(MarketExport::default());
    };
    let config = Config::load(path)
        .with_context(|| format!("cannot load the configuration {}", path.display()))?;
    MarketExport::from_toml(config.prometheus.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (alerting, max_clock_skew) = if args.read_only {
        (
            cryptomon_core::pipeline::Alerting::default(),
            cryptomon_core::pipeline::DEFAULT_MAX_CLOCK_SKEW,
        )
    } else {
        super::transform::load_settings(args.config.as_deref())?
    };
    if !alerting.config.rules.is_empty() {
        tracing::info!(
            rules = alerting.config.rules.len(),
            sinks = alerting.notifiers.len(),
            "alert rules loaded; events go to the log and every sink"
        );
    }
    // Every table of the config is checked before the store is opened or anything fetched.
    let market = market_export(args.config.as_deref())?;
    let store = open_store(&args)?;
    let (sources, interval, config) = sources(&args)?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let mode = match (args.demo, args.read_only) {
        (true, _) => "demo market",
        (_, true) => "read-only",
        _ => "live",
    };
    if let Some(config) = &config {
        super::backfill::backfill_at_start(&store, config).await;
    }
    // The one line a user (or a test) needs: where to point the browser.
    println!("cryptomon serving {store} ({mode}) on http://{addr}/");
    let options = ServeOptions {
        api: ApiOptions {
            market,
            ..ApiOptions::default()
        },
        read_only: args.read_only,
        seed_history: args.demo,
        interval,
        alerting,
        max_clock_skew,
        ..ServeOptions::default()
    };
    serve(listener, store, sources, options, shutdown_signal())
        .await
        .context("server failed")?;
    Ok(ExitCode::SUCCESS)
}
