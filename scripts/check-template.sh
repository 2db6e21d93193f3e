#!/usr/bin/env bash
# Lints the SAM template: no error and no warning allowed (cfn-lint exits non-zero on either).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cfn-lint >/dev/null 2>&1 || python3 -m pip install -q cfn-lint
cfn-lint template.yaml
echo "cfn-lint: template.yaml clean"
