#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: an S3-compatible server (moto),
# cfn-lint for the SAM template, DuckDB for the history test, Debian's Chromium for the
# dashboard test and Debian's Prometheus for the Prometheus test.
# Idempotent: skips what is already there.
set -euo pipefail

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need ${need_apt[*]} (run as root or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Prometheus and promtool for tests/prometheus.rs and the alert rules' checks; without its
# recommends (a node exporter the tests do not use).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need prometheus (run as root or: sudo apt-get install prometheus)" >&2
    exit 1
  fi
  echo "setup: installing prometheus from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if ! python3 -c 'import moto.server, flask_cors' >/dev/null 2>&1; then
  echo "setup: installing moto[server] from PyPI" >&2
  python3 -m pip install -q 'moto[server]'
fi
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "setup: installing cfn-lint from PyPI" >&2
  python3 -m pip install -q cfn-lint
fi
if ! python3 -c 'import duckdb' >/dev/null 2>&1; then
  echo "setup: installing duckdb from PyPI" >&2
  python3 -m pip install -q duckdb
fi
