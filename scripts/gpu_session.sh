#!/usr/bin/env bash
# One device call's worth of GPU work on a Hopper machine (H100 / H200; Python 3.12, torch
# 2.11.0+cu130, no network): install the merged wheel as users get it, run the GPU tests
# (each file in its own process: one kernel fault poisons a process's CUDA context),
# compute-sanitizer and the benchmarks. Results land in $OUT as one archive,
# gpu-session.tgz (the device machine sends back at most 8 files).
#   bash scripts/gpu_session.sh dist/deep_gemm-*.whl [--no-bench] [--upstream PATH]
# --upstream PATH: upstream DeepGEMM built in place at PATH (outside this repository, see
# benchmarks/upstream.py); the benchmarks then time it beside this package.
set -uo pipefail
wheel=$1; shift
bench=1 upstream=()
while (($#)); do
    case $1 in
        --no-bench) bench=0 ;;
        --upstream) upstream=(--upstream "$2"); shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
repo=$(pwd)
archive_dir=${OUT:-/tmp/out}
mkdir -p "$archive_dir"
out=$(mktemp -d)
trap 'tar czf "$archive_dir/gpu-session.tgz" -C "$out" .' EXIT
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
for test in "$repo"/tests/gpu/test_*.py; do
    name=$(basename "$test" .py)
    $py -m pytest -q -p no:cacheprovider -rf "$test" >"$out/$name.log" 2>&1
    echo "$name: exit $? :: $(tail -1 "$out/$name.log")"
done

echo "== compute-sanitizer"
for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool $tool --print-limit 20 $py "$repo/scripts/gemm_smoke.py" >"$out/sanitizer-$tool.log" 2>&1
    echo "$tool: exit $? :: $(tail -1 "$out/sanitizer-$tool.log")"
done

if ((bench)); then
    echo "== benchmarks"
    # Upstream's _C, built with the machine's /opt/gcc, needs the system libstdc++ (benchmarks/upstream.py).
    ((${#upstream[@]})) && export LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6)
    $py "$repo/benchmarks/bench_fp8_gemm.py" "${upstream[@]}" --out "$out/bench" 2>&1 | tee "$out/bench.log"
    $py "$repo/benchmarks/bench_grouped_gemm.py" "${upstream[@]}" --out "$out/grouped_gemm_eager.txt" 2>&1 | tail -22
    $py "$repo/benchmarks/bench_grouped_gemm.py" "${upstream[@]}" --graph --out "$out/grouped_gemm_graph.txt" 2>&1 | tail -22
    $py "$repo/benchmarks/bench_wgrad.py" "${upstream[@]}" --out "$out/wgrad.txt" 2>&1 | tail -22
    $py "$repo/benchmarks/bench_indexer.py" "${upstream[@]}" --json "$out/indexer.json" 2>&1 | tee "$out/indexer.log" | tail -60
    $py "$repo/benchmarks/bench_host_overhead.py" --out "$out/host_overhead.txt" 2>&1 | tail -12
fi
