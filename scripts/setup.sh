#!/usr/bin/env bash
# Set up archdsl on a fresh machine: Graphviz's `dot`, PyTorch + torchvision, and the package with
# its test and benchmark extras. Idempotent: what is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing Graphviz (dot)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq graphviz >/dev/null
fi

PIP="python3 -m pip"
# torchvision 0.29.1 needs torch 2.14.1 (the pairing that imports here); pin both together.
if ! python3 -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')" 2>/dev/null; then
  echo "setup: installing torch 2.14.1 + torchvision 0.29.1"
  $PIP install -q "torch==2.14.1" "torchvision==0.29.1"
fi
echo "setup: installing archdsl with test, benchmark and training extras"
$PIP install -q -e ".[test,bench,train]"
