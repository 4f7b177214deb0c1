#!/usr/bin/env bash
# Runs a fuzz target's replay driver over its seed corpus (if any).
set -euo pipefail
"$@"
