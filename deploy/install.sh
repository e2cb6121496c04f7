#!/bin/sh
# ClypAI's install steps, the one place they are written: `make install` (the Makefile's
# venv rule and its ffmpeg target) and deploy/Dockerfile both run this script, so what
# the image installs is what every checkout installs and tests.
#
#   deploy/install.sh system                          ffmpeg and ffprobe, when missing
#   deploy/install.sh python PYTHON [EXTRAS] [--editable]
#                                                     the Python packages into PYTHON's env
#
# EXTRAS are pyproject.toml's extras, comma-separated (default: openai). --editable
# installs the checkout in development mode (make install); the image installs a copy.
set -eu

usage() {
    echo "usage: $0 system | python PYTHON [EXTRAS] [--editable]" >&2
    exit 2
}

cd "$(dirname "$0")/.."

case "${1:-}" in
system)
    # ffmpeg and ffprobe do the media work; Debian's build is enough.
    if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
        exit 0
    fi
    echo "Installing ffmpeg from Debian's packages"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    ;;
python)
    [ $# -ge 2 ] || usage
    PY=$2
    EXTRAS=${3:-openai}
    MODE=${4:-}
    case "$MODE" in "" | --editable) ;; *) usage ;; esac
    "$PY" -m pip install --quiet --upgrade pip
    # torch is pinned to the CPU build already on this machine's disk: any other version
    # downloads gigabytes. It goes in first, so nothing below picks another.
    "$PY" -m pip install --quiet 'torch==2.13.0'
    if [ "$MODE" = --editable ]; then
        "$PY" -m pip install --quiet -e ".[$EXTRAS]"
    else
        "$PY" -m pip install --quiet ".[$EXTRAS]"
    fi
    # MediaPipe 0.10.21 is the last wheel carrying its face models; its declared deps
    # (jax, opencv-contrib) are not needed, so it goes in --no-deps.
    "$PY" -m pip install --quiet --no-deps 'mediapipe==0.10.21'
    # Who speaks: silero-vad and Resemblyzer carry their models in their wheels; --no-deps
    # (Resemblyzer asks for webrtcvad, an sdist, and `typing`, a backport that shadows the
    # standard module): pyproject.toml lists what they need at run time.
    "$PY" -m pip install --quiet --no-deps 'silero-vad==6.2.3' 'resemblyzer==0.1.4'
    ;;
*)
    usage
    ;;
esac
