#!/usr/bin/env bash
# The engine path on one real GPU, inside the TensorRT-LLM 1.2.1 container (nvcr.io/nvidia/tensorrt-llm/release:1.2.1)
# with the kit installed: quantize tiny-llama3 to FP8, build its engine, an Offline and a Server smoke run with
# backend=trtllm, TEST06, then the same runs with backend=trtllm-pytorch (no engine). One line per step, then a
# verdict. Everything is written under WORK (default: a new temporary directory); nothing else is touched.
#
#   containers/gpu-smoke.sh [WORK]
#
# The system is chosen by the GPU's compute capability (SM90: h100x8, SM100: b200x8) and cut down to one GPU.
set -uo pipefail

work="${1:-$(mktemp -d -t llmkit-gpu-smoke.XXXXXX)}"
mkdir -p "$work"
log="$work/steps.log"
failed=0

case "$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader,nounits 2>/dev/null | head -n 1)" in
    9.*) system=h100x8 ;;
    10.*) system=b200x8 ;;
    "") echo "gpu-smoke: no NVIDIA GPU is visible (nvidia-smi lists none); run it on a GPU node" >&2; exit 2 ;;
    *) echo "gpu-smoke: this GPU's compute capability has no system config; see conf/system/" >&2; exit 2 ;;
esac

common=(benchmark=llama3.1-405b model=tiny-llama3 "system=$system" system.devices_per_node=1 system.tp=1
        system.pp=1 system.dp=1 precision=fp8 quantize.min_greedy_agreement=0 "artifacts_root=$work/artifacts"
        "runs_root=$work/runs" max_new_tokens=32 loadgen.min_duration_ms=2000 loadgen.min_query_count=8
        calibration.num_samples=16 calibration.max_length=256 calibration.batch_size=4)

step() {
    local name="$1"
    shift
    local started=$SECONDS
    if "$@" >>"$log" 2>&1; then
        echo "ok    $name ($((SECONDS - started)) s)"
    else
        echo "FAIL  $name ($((SECONDS - started)) s; see $log)"
        failed=$((failed + 1))
    fi
}

echo "gpu-smoke: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1) as $system; work in $work"
step "quantize tiny-llama3 to fp8" llmkit quantize "${common[@]}"
step "build its engine" llmkit build "${common[@]}"
for scenario in offline server; do
    step "trtllm $scenario run" llmkit run "${common[@]}" backend=trtllm "scenario=$scenario"
done
step "trtllm TEST06" llmkit test06 "${common[@]}" backend=trtllm
for scenario in offline server; do
    step "trtllm-pytorch $scenario run" llmkit run "${common[@]}" backend=trtllm-pytorch "scenario=$scenario"
done
step "trtllm-pytorch TEST06" llmkit test06 "${common[@]}" backend=trtllm-pytorch

if [ "$failed" -eq 0 ]; then
    echo "gpu-smoke: PASS (results under $work/runs)"
else
    echo "gpu-smoke: FAIL ($failed step(s); the log is $log)"
    exit 1
fi
