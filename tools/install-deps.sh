#!/bin/sh
# Install libhmt's build and test dependencies from Debian 12, only those
# missing. Needs root (or sudo) when something is missing.
set -eu
# clang-14 and libclang-rt-14-dev: libFuzzer and the sanitizer runtimes (make fuzz).
# cmake: the find_package(hmt) downstream build; python3-pip, -setuptools,
# -venv, -wheel: make wheel and the pip/venv install tests (tests/packaging).
PKGS="build-essential pkg-config libxsmm-dev libsleef-dev check python3-numpy python3-sentencepiece \
abigail-tools valgrind libfaiss-dev clang-14 libclang-rt-14-dev cmake \
python3-pip python3-setuptools python3-venv python3-wheel"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all present ($PKGS)"
    exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
