#!/usr/bin/env bash
# On the lent GPU machine (one H200, 16 cores, CUDA and PyTorch, no network), the checks that need a GPU or more
# cores than a development machine has, as one command for the device tool, after tests/device/prepare.sh here:
#   run(command="bash tests/device/check.sh", carry=[".whl"], timeout_s=600)
# Steps (DEVICE_STEPS, default all three, in this order):
#   install    a venv over that machine's Python and PyTorch with the carried wheels and the kit (editable)
#   harness    `llmkit bench harness` through backend=trtllm on the TensorRT-LLM test double (replay mode, its loop in
#              processes of its own) beside the replay backend: the p99 TTFT and TPOT the SUT and adapter add at 10x
#              and 1x the 8x H200 mixtral Server load; one run per DEVICE_RUNS entry PLACEMENT:CASES (`;` between
#              entries, CASES being the harness's --only text), the 10x leader run first
#   gpu-tests  pytest -m gpu: the hf backend on CUDA, NVFP4 quantization
# ~8 minutes in all on that machine (the 10x figure first: a call cut at its limit still brings back what is done).
# One line per step and a verdict; logs and figures (JSON, plots) go to $OUT (the device tool brings back at most 8
# files), else ./device-out. A machine still warm keeps the venv: DEVICE_STEPS=harness reruns the figures alone.
set -uo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,14p' "$0" | cut -c3-
    exit 0
fi
cd "$(dirname "$0")/../.." || exit 2
repo=$PWD
out=${OUT:-$repo/device-out}
venv=${DEVICE_VENV:-/tmp/llmkit-device}
steps=${DEVICE_STEPS:-install harness gpu-tests}
runs=${DEVICE_RUNS:-leader:mixtral Server 10x;leader:mixtral Server 1x;orchestrator:mixtral Server 1x}
work=$(mktemp -d)
mkdir -p "$out"
python=$venv/bin/python
failed=0

say() { echo "check.sh: $*"; }
step_failed() { say "$1 FAILED: $2"; failed=1; }
trap 'rm -rf "$work"; say "interrupted"; exit 130' INT TERM

say "$(nproc) cores, $(python3 --version 2>&1), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi')"

install() {
    if [[ ! -d .whl ]] || ! compgen -G ".whl/*.whl" >/dev/null; then
        step_failed install "no wheels in .whl/: run tests/device/prepare.sh here and carry .whl"
        return
    fi
    python3 -m venv --system-site-packages "$venv" || { step_failed install "python3 -m venv failed"; return; }
    # --no-compile: bytecode is written on first import instead of for every carried file now.
    if ! "$python" -m pip install -q --no-index --no-deps --no-compile .whl/*.whl >"$out/install.log" 2>&1 ||
        ! "$python" -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$out/install.log" 2>&1; then
        step_failed install "pip install failed (install.log)"
        return
    fi
    local missing=() module
    for module in torch numpy pandas scipy matplotlib transformers modelopt.torch.quantization mlperf_loadgen hydra \
        mpi4py llmkit.config.app; do
        "$python" -c "import $module" 2>>"$out/install.log" || missing+=("$module")
    done
    if ((${#missing[@]})); then
        step_failed install "cannot import ${missing[*]}: add their wheels to tests/device/prepare.sh (install.log)"
        return
    fi
    say "install ok: $("$python" -c 'import torch, transformers, modelopt; print(f"torch {torch.__version__}, transformers {transformers.__version__}, modelopt {modelopt.__version__}")' 2>/dev/null)"
}

gpu_tests() {
    if "$python" -m pytest -q -m gpu -p no:cacheprovider tests/e2e/test_gpu.py >"$out/gpu-tests.log" 2>&1; then
        say "gpu-tests ok: $(tail -1 "$out/gpu-tests.log")"
    else
        step_failed gpu-tests "$(tail -1 "$out/gpu-tests.log") (gpu-tests.log)"
    fi
}

harness() {
    # The doubles of the engine toolchain (tests/fakes): the fake trtllm-build and nvidia-smi report 8 H200s, and
    # tensorrt_llm is the test double, answering at the case's delays and iterating every TPOT.
    local fake=(PYTHONPATH="$repo/tests/fakes/trtllm:$repo/tests/fakes/site" PATH="$repo/tests/fakes/bin:$venv/bin:$PATH"
                LLMKIT_FAKE_GPUS='8x NVIDIA H200|9.0|143771' LLMKIT_FAKE_CUDA=13.1 LLMKIT_FAKE_PYTHON="$python"
                LLMKIT_FAKE_TRTLLM_MODE=replay LLMKIT_FAKE_TRTLLM_TTFT_MS=250 LLMKIT_FAKE_TRTLLM_TPOT_MS=25
                LLMKIT_FAKE_TRTLLM_ENGINE=process LLMKIT_FAKE_TRTLLM_ITERATION_MS=25)
    local model=$work/models/tiny-mixtral engine entry placement cases n=0
    if ! env "${fake[@]}" "$python" -c "import sys; from pathlib import Path; from llmkit.models.tiny import TinyArchitecture, ensure_tiny_checkpoint; ensure_tiny_checkpoint(TinyArchitecture('mixtral'), Path(sys.argv[1]))" "$model" >"$work/build.log" 2>&1 ||
        ! env "${fake[@]}" "$venv/bin/llmkit" build system=h200x8 system.dp=1 system.tp=1 system.pp=1 benchmark=mixtral-8x7b \
            model=tiny-mixtral precision=bf16 "artifacts_root=$work" "model.path=$model" >>"$work/build.log" 2>&1; then
        cp "$work/build.log" "$out/harness-build.log"
        step_failed harness "the tiny engine did not build on the double (harness-build.log)"
        return
    fi
    engine=$(find "$work/engines" -mindepth 1 -maxdepth 1 -type d | head -1)
    IFS=';' read -ra entries <<<"$runs"
    for entry in "${entries[@]}"; do
        placement=${entry%%:*} cases=${entry#*:} n=$((n + 1))
        if env "${fake[@]}" "$venv/bin/llmkit" bench harness --skip ceiling soak --only "$cases" --backend trtllm --engine-dir "$engine" \
            --placement "$placement" --out "$out/harness-$n.json" --plot "$out/harness-$n.png" >"$work/harness-$n.log" 2>&1; then
            say "harness $n ($placement, $cases) ok:"
        else
            step_failed "harness $n ($placement, $cases)" "exit $? (its log follows)"
        fi
        tail -25 "$work/harness-$n.log"
    done
}

for step in $steps; do
    case $step in
        install) install ;;
        gpu-tests) gpu_tests ;;
        harness) harness ;;
        *) step_failed "$step" "no such step: use install, gpu-tests or harness" ;;
    esac
    if ((failed)) && [[ $step == install ]]; then
        break  # the other steps need the venv
    fi
done
rm -rf "$work"
if ((failed)); then
    say "verdict: FAILED"
    exit 1
fi
say "verdict: ok"
