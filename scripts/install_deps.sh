#!/usr/bin/env bash
# Debian packages that building and testing kvcanary needs; installs only what is missing,
# so a second run costs nothing. Runs as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git unzip ca-certificates
  python3 python3-pip
  libeigen3-dev libxtensor-dev libxsimd-dev libsimdjson-dev doctest-dev
  libtomlplusplus-dev libpcre2-dev libbenchmark-dev nlohmann-json3-dev
  libcairo2-dev zlib1g-dev
)
# --test: also what only the test suite needs. clang-format: tests/scripts/test_format.sh.
# slurm-wlm and munge: tests/scripts/
# test_slurm_sweep.sh runs examples/slurm_sweep.sh on a real single-node Slurm
# (scripts/slurm/start_local.sh); installed here so that CI runs it rather than skipping.
case ${1:-} in
  "") ;;
  --test) packages+=(slurm-wlm munge clang-format) ;;
  *) echo "[install_deps] error: unknown option '$1' (usage: install_deps.sh [--test])" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  echo "[install_deps] installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
