#!/usr/bin/env bash
# Installs llmkit's Python dependencies into the venv /opt/llmkit/venv during an image build (containers/Dockerfile).
#
#   install-kit.sh trtllm|debian BUILD_DIR SITE_DIR [KEEP]
#
# BUILD_DIR holds requirements.txt, constraints.txt and pip_plan.py; SITE_DIR is containers/site (wheels pip takes
# before PyPI, and optionally ca-certificates.crt, a CA bundle to trust while downloading).
#   trtllm  the base has Python and the packages it pins (the TensorRT-LLM image: torch, transformers, tensorrt_llm,
#           mpi4py, Open MPI, ...). The venv sees them (--system-site-packages) and pip_plan.py keeps them at the
#           base's versions (KEEP: "all", the default, or the names to keep); the rest of the kit's pins go around them.
#   debian  a plain Debian base: python3 from Debian, then every pin of requirements.txt, torch as the CPU build (a
#           torch wheel in SITE_DIR, else the PyTorch CPU index $TORCH_INDEX), never PyPI's CUDA build.
set -euo pipefail

usage="usage: install-kit.sh trtllm|debian BUILD_DIR SITE_DIR [KEEP]"
kind=${1:?$usage}
build=${2:?$usage}
wheels=${3:?$usage}
keep=${4:-all}
venv=/opt/llmkit/venv
if [ -f "$wheels/ca-certificates.crt" ]; then
    export PIP_CERT="$wheels/ca-certificates.crt"
fi

case "$kind" in
    trtllm)
        command -v python3 >/dev/null || {
            echo "install-kit: the base image has no python3; build with --build-arg KIT_BASE=debian for a plain Debian base" >&2
            exit 2
        }
        # The base's own pip (seen through the system site packages) installs into the venv.
        python3 -m venv --system-site-packages --without-pip "$venv"
        ;;
    debian)
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3 python3-venv ca-certificates >/dev/null
        rm -rf /var/lib/apt/lists/*
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip==26.3
        ;;
    *)
        echo "install-kit: unknown base kind '$kind'; use trtllm (the TensorRT-LLM image) or debian (a plain Debian base)" >&2
        exit 2
        ;;
esac

pip=("$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check)
# shellcheck disable=SC2086 # KEEP is a list of names, one word each
"$venv/bin/python" "$build/pip_plan.py" "$build/requirements.txt" "$build/constraints.txt" "$build/plan" $keep
torch=$(grep -E '^torch==' "$build/plan/requirements.txt" || true)
if [ -n "$torch" ]; then
    if compgen -G "$wheels/torch-*.whl" >/dev/null; then
        "${pip[@]}" -q --no-deps --no-index --find-links "$wheels" "$torch"
    else
        "${pip[@]}" -q --no-deps --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" "$torch"
    fi
fi
"${pip[@]}" -q --find-links "$wheels" -r "$build/plan/requirements.txt" -c "$build/plan/constraints.txt"
cp "$build/plan/base-packages.txt" /opt/llmkit/base-packages.txt
if [ "$kind" = debian ]; then
    "$venv/bin/python" -m pip check
else
    # A vendor image may ship with its own pip check findings; they are reported, not ours to fail on.
    "$venv/bin/python" -m pip check || echo "install-kit: pip check reports the above in the base image plus the kit" >&2
fi
