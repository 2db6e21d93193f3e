//! The `cryptomon` binary end to end on a temporary directory: what it writes, what it prints,
//! and how it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cryptomon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the cryptomon binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn logs_to_a_pipe_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    assert!(
        cryptomon(&["collect", "--once", "--demo", "--store", store])
            .status
            .success()
    );
    // The first transform logs, at info, that it rebuilds from raw.
    let out = cryptomon(&["-v", "transform", "--store", store]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("INFO"), "-v logs at info: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "an escape sequence in logs written to a pipe: {stderr:?}"
    );
}

#[test]
fn demo_collect_then_transform_writes_the_contract_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store"); // created by collect
    let store = store.to_str().unwrap();

    let out = cryptomon(&["collect", "--once", "--demo", "--store", store]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.matches(": wrote raw/source=demo").count(),
        3,
        "{stdout}"
    );

    // A second collect in the same minute writes nothing (or, across a minute boundary, the
    // next tick): never a duplicate.
    let again = cryptomon(&["collect", "--once", "--demo", "--store", store]);
    assert!(again.status.success());

    let out = cryptomon(&["transform", "--store", store]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("36 series"), "{stdout}");

    let files = files_under(Path::new(store));
    assert!(
        files.contains(&"aggregates/summary.json".to_owned()),
        "{files:?}"
    );
    assert!(
        files.contains(&"aggregates/window.v1.parquet".to_owned()),
        "{files:?}"
    );
    let raw: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with("raw/source=demo"))
        .collect();
    assert!((3..=6).contains(&raw.len()), "{raw:?}");
    assert!(
        files.iter().all(|f| !f.contains(".cryptomon-tmp")),
        "{files:?}"
    );

    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(store).join("aggregates/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["schema"], "cryptomon.summary/v1");
    assert_eq!(summary["series"].as_array().unwrap().len(), 36);
    assert_eq!(summary["spreads"].as_array().unwrap().len(), 12);

    let out = cryptomon(&[
        "candles",
        "--store",
        store,
        "--source",
        "demo_b",
        "--pair",
        "ETH-USD",
        "--interval",
        "1m",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let candles: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(candles["schema"], "cryptomon.candles/v1");
    assert_eq!(candles["interval"], "1m");
    assert!(!candles["candles"].as_array().unwrap().is_empty());
}

#[test]
fn failures_are_one_line_errors_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["transform", "--store", missing.to_str().unwrap()],
            "does not exist",
        ),
        (
            vec!["transform", "--store", dir.path().to_str().unwrap()],
            "no readable snapshot",
        ),
        (
            vec![
                "candles",
                "--store",
                dir.path().to_str().unwrap(),
                "--source",
                "demo_a",
                "--pair",
                "BTC-USD",
            ],
            "run `cryptomon transform` first",
        ),
        (
            vec![
                "candles", "--store", "x", "--source", "demo_a", "--pair", "btc-usd",
            ],
            "invalid pair",
        ),
        (
            vec![
                "candles",
                "--store",
                "x",
                "--source",
                "a",
                "--pair",
                "BTC-USD",
                "--interval",
                "2m",
            ],
            "unknown candle interval",
        ),
        (
            vec!["collect", "--once", "--store", "ftp://x"],
            "unsupported store",
        ),
    ];
    for (args, want) in cases {
        let out = cryptomon(&args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {stdout}");
        // The error is the first line (clap may add a hint to try --help below it).
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(want),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_bad_config_stops_collect_naming_the_file_and_the_entry() {
    // A malformed pair (the file's format), and a pair the exchange cannot express (its rules).
    for (entry, pair) in [
        ("kind = \"kraken\"\npairs = [\"BTC/USD\"]", "BTC/USD"),
        ("kind = \"coingecko\"\npairs = [\"BTC-USDT\"]", "BTC-USDT"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cryptomon.toml");
        std::fs::write(&config, format!("[[sources]]\n{entry}\n")).unwrap();
        let out = cryptomon(&[
            "collect",
            "--once",
            "--config",
            config.to_str().unwrap(),
            "--store",
            dir.path().join("s").to_str().unwrap(),
        ]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success());
        assert!(
            stderr.contains("cryptomon.toml: sources[0] (") && stderr.contains(pair),
            "{stderr}"
        );
    }
}

#[test]
fn help_explains_every_command() {
    let out = cryptomon(&["--help"]);
    let (stdout, _) = text(&out);
    for command in ["collect", "transform", "candles"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let out = cryptomon(&["transform", "--help"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("--full") && stdout.contains("--store"),
        "{stdout}"
    );
}

/// A store holding one demo collection, and a config with `rules` (an `[[alerts.rules]]` entry)
/// beside it; the directory holding both is returned to keep them alive.
fn collected_with_rule(rules: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let out = cryptomon(&[
        "collect",
        "--once",
        "--demo",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\nkind = \"kraken\"\n\n{rules}"),
    )
    .unwrap();
    (dir, store, config)
}

#[test]
fn an_invalid_alert_rule_is_refused_at_start_up_naming_it() {
    // A threshold rule without its level.
    let (_dir, store, config) =
        collected_with_rule("[[alerts.rules]]\nname = \"btc-floor\"\nkind = \"threshold\"\n");
    for args in [
        vec!["transform", "--store", store.to_str().unwrap()],
        vec![
            "serve",
            "--demo",
            "--addr",
            "127.0.0.1:0",
            "--store",
            "memory",
        ],
    ] {
        let mut args = args;
        args.extend(["--config", config.to_str().unwrap()]);
        let out = cryptomon(&args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("btc-floor") && stderr.contains("above"),
            "{args:?}: {stderr}"
        );
        // Refused before doing anything: no aggregates written, no server started.
        assert!(!stdout.contains("serving"), "{stdout}");
    }
    assert!(!store.join("aggregates").exists());
}

#[test]
fn transform_with_rules_prints_the_events_it_stores() {
    // Any price above 0: every demo series fires at once.
    let (_dir, store, config) = collected_with_rule(
        "[[alerts.rules]]\nname = \"any-price\"\nkind = \"threshold\"\nabove = 0.000001\n",
    );
    let args = [
        "transform",
        "--store",
        store.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let out = cryptomon(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // The collected tick fills the window: the config's exchange is never asked for candles.
    assert!(!store.join("backfill").exists(), "{stderr}");
    let fired = stdout.matches("any-price fired").count();
    assert!(fired > 0, "{stdout}");
    let stored = files_under(&store)
        .into_iter()
        .filter(|f| f.starts_with("alerts/date="))
        .count();
    assert_eq!(stored, fired, "{stdout}");
    // Again for the same tick: nothing fires twice.
    let out = cryptomon(&args);
    let (stdout, _) = text(&out);
    assert!(!stdout.contains("fired"), "{stdout}");
}

/// SIGKILL at a different moment of each of several `transform --full` runs on a directory:
/// every object left is whole (temp files are renamed into place only when complete), and the
/// next run recovers.
#[test]
fn a_transform_killed_mid_write_leaves_no_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // 24 h of the demo market: a window state of ~100k rows, so the writes take a while.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fs = cryptomon_core::FsStore::create(&store).unwrap();
        let now = cryptomon_core::Tick::parse("2026-11-27T12:00:00Z").unwrap();
        cryptomon_server::seed_history(
            &fs,
            &cryptomon_server::demo_sources(),
            now,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    });
    let args = ["transform", "--full", "--store", store.to_str().unwrap()];
    let started = std::time::Instant::now();
    assert!(cryptomon(&args).status.success());
    let full = started.elapsed();
    let mut killed = 0;
    for i in 0..8u32 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the run (10 % to 80 % of a clean run's time), the writes at
        // its end included.
        std::thread::sleep(full.mul_f64(0.1 + 0.1 * f64::from(i)));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Every visible object is whole (the store's own `.cryptomon-*` lock and temp files
        // are not objects).
        for file in files_under(&store)
            .into_iter()
            .filter(|f| !f.split('/').any(|seg| seg.starts_with(".cryptomon-")))
        {
            let body = std::fs::read(store.join(&file)).unwrap();
            if file.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .unwrap_or_else(|e| panic!("run {i}: {file} is torn: {e}"));
            }
        }
        runtime.block_on(async {
            let fs = cryptomon_core::FsStore::open(&store).unwrap();
            let window = cryptomon_core::pipeline::read_window(&fs).await.unwrap();
            assert!(
                window.is_some_and(|w| !w.is_empty()),
                "run {i}: the state is unreadable"
            );
        });
    }
    assert!(
        killed >= 4,
        "only {killed} of 8 runs were killed while running"
    );
    let out = cryptomon(&["transform", "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
}

/// `transform --every` keeps running, and from its second run on stands on the window state it
/// holds in memory: a new tick is taken in without reading the state back from the store.
#[test]
fn transform_every_keeps_the_state_in_memory_between_runs() {
    use std::io::BufRead;

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let first = cryptomon_core::Tick::parse("2026-11-27T12:00:00Z").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let collect = |tick| {
        runtime.block_on(async {
            let fs = cryptomon_core::FsStore::create(&store).unwrap();
            for (source, result) in
                cryptomon_core::collect_all(&cryptomon_server::demo_sources(), &fs, tick).await
            {
                result.unwrap_or_else(|e| panic!("{source}: {e}"));
            }
        })
    };
    collect(first);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args([
            "transform",
            "--every",
            "1",
            "--store",
            store.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read its output on a thread, so a hung child fails the test instead of blocking it.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut next_line = || {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no output within 60 s after {seen:#?}"));
        seen.push(line.clone());
        line
    };
    // The first run reads the store: a rebuild, since there is no state yet.
    assert!(next_line().contains("full rebuild: no window state yet"));
    assert!(next_line().contains("3 new snapshots"));
    collect(first.add_secs(60));
    // Later runs stand on the state in memory and take in the new tick's snapshots (all three
    // in one run, or spread over two if a run lists while they are being written).
    let number_before = |line: &str, word: &str| -> usize {
        let end = line
            .find(word)
            .unwrap_or_else(|| panic!("no {word:?} in {line}"));
        let start = line[..end - 1].rfind([' ', '(']).map_or(0, |i| i + 1);
        line[start..end - 1].parse().unwrap()
    };
    let mut taken_in = 0;
    while taken_in < 3 {
        let head = next_line();
        let detail = next_line();
        assert!(head.contains("on the state held in memory"), "{head}");
        let new = number_before(&detail, "new snapshots");
        // The head's version (a conditional read that transfers nothing) and the new
        // snapshots: no base, no head body.
        assert_eq!(number_before(&detail, "objects ("), 1 + new, "{detail}");
        taken_in += new;
    }
    assert_eq!(taken_in, 3);
    let _ = child.kill();
    let _ = child.wait();
}

/// `collect --print-keys` prints only the keys on stdout, and `transform --keys` reads exactly
/// those and lists nothing (here a repeated hand-off: nothing new to take in).
#[test]
fn collect_hands_its_keys_to_transform() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let out = cryptomon(&[
        "collect",
        "--once",
        "--demo",
        "--print-keys",
        "--store",
        store_arg,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let keys: Vec<&str> = stdout.lines().collect();
    assert_eq!(keys.len(), 3, "{stdout}");
    let stored = files_under(&store);
    for key in &keys {
        assert!(stored.iter().any(|f| f == key), "{key} not in {stored:?}");
    }
    assert!(stderr.contains("3 of 3 sources ok"), "{stderr}");
    let keys_file = dir.path().join("keys");
    std::fs::write(&keys_file, &stdout).unwrap();
    let keys_arg = keys_file.to_str().unwrap();

    // The first run has no state to stand on: it rebuilds, listing.
    let out = cryptomon(&["transform", "--store", store_arg, "--keys", keys_arg]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("full rebuild"), "{stdout}");
    let out = cryptomon(&["transform", "--store", store_arg, "--keys", keys_arg]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("told of its keys") && stdout.contains("after 0 lists"),
        "{stdout}"
    );

    // Keys that cannot be read, and keys with --full, are refused before anything runs.
    let missing = dir.path().join("no-such-keys");
    let out = cryptomon(&[
        "transform",
        "--store",
        store_arg,
        "--keys",
        missing.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no-such-keys"), "{stderr}");
    let out = cryptomon(&[
        "transform",
        "--store",
        store_arg,
        "--full",
        "--keys",
        keys_arg,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("--keys"), "{}", text(&out).1);
}
