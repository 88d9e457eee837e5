#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, in under 8 minutes end to end,
#   1. install the GPU wheels (torch 2.13.0's CUDA build, jax[cuda12] at the installed
#      JAX version), unless the ones installed already see the GPU;
#   2. run the GPU tests (tests/test_gpu.py: they skip cleanly without a GPU);
#   3. run benchmarks/throughput.py on the GPU for both backends (torch contenders on
#      --device cuda, JAX on its default backend), writing its JSON.
#
# usage: scripts/gpu_check.sh [--cpu-dry-run] [--no-install]
#   --cpu-dry-run  no GPU needed: prints the install commands instead of running them,
#                  runs the GPU tests (which skip) and a tiny benchmark on the CPU into
#                  $GPU_CHECK_OUT (default: a temporary folder). The CPU tests run this.
#   --no-install   use the wheels that are installed.
# Environment: GPU_CHECK_OUT (where the JSON goes, default benchmarks/results),
#   TORCH_CUDA_INDEXES (PyTorch wheel indexes to try in order).
#
# Every step runs under `timeout`, so a stalled download cannot eat the GPU time:
# 180 s torch, 90 s JAX, 90 s tests, 150 s benchmark (510 s worst case, usually far less).
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
install=1
for arg in "$@"; do
    case "$arg" in
        --cpu-dry-run) dry_run=1 ;;
        --no-install) install=0 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $arg (use --cpu-dry-run, --no-install)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python}
TORCH_VERSION=2.13.0
TORCH_CUDA_INDEXES=${TORCH_CUDA_INDEXES:-"https://download.pytorch.org/whl/cu128 https://download.pytorch.org/whl/cu126 https://download.pytorch.org/whl/cu130"}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "$dry_run" = 1 ]; then
    OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
else
    OUT=${GPU_CHECK_OUT:-benchmarks/results}
fi
mkdir -p "$OUT"
started=$SECONDS
step() { echo; echo "== [$((SECONDS - started)) s] $*"; }
run() {  # run CMD..., or only print it in a dry run
    if [ "$dry_run" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

# --- 1. wheels --------------------------------------------------------------------
step "GPU wheels"
if [ "$install" = 0 ]; then
    echo "skipped (--no-install)"
elif [ "$dry_run" = 0 ] && "$PYTHON" -c "import torch; assert torch.cuda.is_available() and torch.__version__.startswith('$TORCH_VERSION')" 2>/dev/null; then
    echo "torch $TORCH_VERSION already sees the GPU"
else
    installed=0
    for index in $TORCH_CUDA_INDEXES; do
        if run timeout 180 "$PYTHON" -m pip install --quiet "torch==$TORCH_VERSION" --index-url "$index"; then
            installed=1; break
        fi
        echo "warning: no torch $TORCH_VERSION from $index" >&2
    done
    [ "$installed" = 1 ] || echo "warning: torch's CUDA build could not be installed; the GPU tests will skip" >&2
fi
if [ "$install" = 1 ]; then
    if [ "$dry_run" = 0 ] && "$PYTHON" -c "import jax; assert jax.default_backend() == 'gpu'" 2>/dev/null; then
        echo "JAX already runs on the GPU"
    else
        jax_version=$("$PYTHON" -c "import jax; print(jax.__version__)")
        run timeout 90 "$PYTHON" -m pip install --quiet "jax[cuda12]==$jax_version" \
            || echo "warning: jax[cuda12] could not be installed; JAX stays on the CPU" >&2
    fi
fi
"$PYTHON" - <<'EOF'
import jax, torch
print(f"torch {torch.__version__}: CUDA {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
print(f"jax {jax.__version__}: backend {jax.default_backend()}, devices {jax.devices()}")
EOF

# --- 2. GPU tests -----------------------------------------------------------------
step "GPU tests (skip without a GPU)"
timeout 90 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu.py

# --- 3. throughput on the GPU -----------------------------------------------------
step "throughput benchmark"
if [ "$dry_run" = 1 ]; then
    device=cpu
    benchmark=(--dataset digits --limit 128 --batch-size 64 --epochs 1
               --contenders torch zoo-pyro numpyro-jit zoo-numpyro --out "$OUT/throughput-dry-run.json")
else
    device=$("$PYTHON" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
    [ "$device" = cuda ] || echo "warning: no CUDA GPU; the benchmark runs on the CPU" >&2
    benchmark=(--epochs 3 --out "$OUT/throughput-gpu.json")
fi
timeout 150 "$PYTHON" benchmarks/throughput.py --device "$device" "${benchmark[@]}"

step "done in $((SECONDS - started)) s; JSON in $OUT"
