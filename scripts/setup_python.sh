#!/usr/bin/env bash
# Installs what python/train.py and python/make_fixtures.py need (not needed by the tests).
# PyPI's Linux torch wheel pulls its CUDA runtime packages even for CPU use; that is expected.
set -euo pipefail
pip install -r "$(dirname "$0")/../python/requirements.txt"
