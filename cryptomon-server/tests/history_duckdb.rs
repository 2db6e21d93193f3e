//! History in Parquet read by DuckDB: `history_duckdb.py` (beside this file) feeds a market that
//! crosses a UTC midnight to `cryptomon transform` a tick at a time, then reads
//! `history/**/*.parquet` with the `duckdb` Python package and checks the schema, one row per
//! (source, pair, tick), the closed day's rows against the raw snapshots, and every DuckDB query
//! of `docs/querying.md` against the API's candles.
//!
//! Needs `python3` with `duckdb` (`scripts/setup.sh` installs it). Without it the test reports
//! itself skipped, except under `CI=true`, where it fails.

use std::path::Path;
use std::process::Command;

#[test]
fn duckdb_reads_the_history_transforms_write() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_duckdb = Command::new(&python)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_duckdb {
        let message = format!(
            "{python} cannot import duckdb: install it with `python3 -m pip install duckdb` \
             (scripts/setup.sh does)"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED duckdb_reads_the_history_transforms_write: {message}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/history_duckdb.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--cryptomon")
        .arg(env!("CARGO_BIN_EXE_cryptomon"))
        .arg("--work")
        .arg(work.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{}\n{stdout}{stderr}",
        script.display()
    );
}
