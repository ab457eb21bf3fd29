#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: the README's test command, and what
# .ci/run calls after formatting and lint checks.
#
#   1. install the Debian packages the tests need (tests/install-deps.sh);
#   2. every unit, integration and black-box test of the workspace;
#   3. the fuzz smoke run (fuzz/smoke.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/install-deps.sh
# --no-fail-fast: a failing test binary does not hide the results of the others.
cargo test --workspace --locked --no-fail-fast
fuzz/smoke.sh
