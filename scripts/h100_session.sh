#!/usr/bin/env bash
# One device call's worth of GPU work on the H100 machine (Python 3.12, torch
# 2.11.0+cu130, no network): install the merged wheel as users get it, run the
# GPU tests, compute-sanitizer and the benchmarks. Results land in $OUT as one
# archive, h100-session.tgz (the device machine sends back at most 8 files).
#   bash scripts/h100_session.sh dist/deep_gemm-*.whl [--no-bench]
set -uo pipefail
wheel=$1; shift
repo=$(pwd)
archive_dir=${OUT:-/tmp/out}
mkdir -p "$archive_dir"
out=$(mktemp -d)
trap 'tar czf "$archive_dir/h100-session.tgz" -C "$out" .' EXIT
py=python3
# Test-only packages the machine lacks (it has no network) may travel as wheels in .whl/.
if compgen -G ".whl/*.whl" >/dev/null; then
    $py -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
$py -m pip install -q --no-deps --force-reinstall "$wheel" || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cd /tmp  # import the installed deep_gemm, not the source tree
export DG_JIT_CACHE_DIR=/tmp/dg-cache
$py -c "import deep_gemm, torch; print('deep_gemm from', deep_gemm.__file__, 'torch', torch.__version__)"

echo "== GPU tests"
$py -m pytest -q -p no:cacheprovider "$repo/tests/gpu" 2>&1 | tee "$out/gpu-tests.log" | tail -40

echo "== compute-sanitizer"
for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool $tool --print-limit 20 $py "$repo/scripts/gemm_smoke.py" >"$out/sanitizer-$tool.log" 2>&1
    echo "$tool: exit $? :: $(tail -1 "$out/sanitizer-$tool.log")"
done

if [[ "${1:-}" != "--no-bench" ]]; then
    echo "== benchmarks"
    $py "$repo/benchmarks/bench_fp8_gemm.py" --out "$out/bench" 2>&1 | tee "$out/bench.log"
    $py "$repo/benchmarks/bench_grouped_gemm.py" --out "$out/grouped_gemm_eager.txt" 2>&1 | tail -20
    $py "$repo/benchmarks/bench_grouped_gemm.py" --graph --out "$out/grouped_gemm_graph.txt" 2>&1 | tail -20
    $py "$repo/benchmarks/bench_host_overhead.py" --out "$out/host_overhead.txt" 2>&1 | tail -12
fi
