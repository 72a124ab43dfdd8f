#!/usr/bin/env bash
# One call on a lent GPU machine: build the CUDA extension, run the CUDA
# tests, compute-sanitizer and the benchmarks against cuDNN, with every log
# and result under $OUT (default build/gpu-session).
#
#   tools/gpu_session.sh [info] [build | nvrtc] [test] [suite] [sanitize] [bench] [variants]
#
# nvrtc: the NVRTC executor with the machine's own packages instead of an nvcc
# build: the extension built with the host compiler only (FASTLSTM_FORCE_CPU=1,
# a minute at most), then every dtype's cubin for the device's arch compiled
# into the cache (FASTLSTM_CACHE_DIR, under $OUT's folder) before the stages
# that follow, which run with FASTLSTM_CUDA_KERNELS=nvrtc.
# build: TORCH_CUDA_ARCH_LIST (default: the device's own arch) with all cores;
# a prebuilt extension in gpu_build/ (carried from an earlier call, same torch)
# is used instead when present. Each stage logs to build/gpu-session/<stage>.log
# and a failing stage does not stop the later ones; the exit status is the
# number of failed stages. Where $OUT is set (the device tool), everything is
# packed into $OUT/gpu-session.tgz at the end, beside a freshly built _C*.so.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULT_DIR=${OUT:-}
OUT=build/gpu-session
rm -rf "$OUT" && mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
failed=0

stage() {  # stage NAME COMMAND...: runs COMMAND, logging to $OUT/NAME.log
  local name=$1; shift
  echo "== $name: $*"
  local start=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then
    echo "== $name: ok ($((SECONDS - start)) s)"
  else
    echo "== $name: FAILED rc=$? ($((SECONDS - start)) s); last lines:"
    failed=$((failed + 1))
  fi
  tail -n "${TAIL_LINES:-15}" "$OUT/$name.log"
}

info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c 'import torch, sys; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version()); p = torch.cuda.get_device_properties(0); print(p.name, p.multi_processor_count, "SMs")'
  nvcc --version | tail -2
  compute-sanitizer --version | head -2
  echo "CC=${CC:-} CXX=${CXX:-}; c++: $(command -v c++) $(c++ --version | head -1)"
}

build() {
  if [ "${FASTLSTM_REBUILD:-0}" != 1 ] && ls gpu_build/_C*.so >/dev/null 2>&1; then
    cp gpu_build/_C*.so fastlstm/ && echo "using the prebuilt gpu_build/$(cd gpu_build && ls _C*.so)"
  else
    local arch
    arch=$($PY -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$arch} MAX_JOBS=${MAX_JOBS:-16} \
      $PY setup.py build_ext --inplace || return 1
    strip --strip-debug fastlstm/_C*.so
    # A toolchain that links libstdc++ statically gives the extension its own
    # std::locale, and torch's error messages then crash formatting numbers.
    objdump -p fastlstm/_C*.so | grep -q 'NEEDED.*libstdc++' ||
      echo "WARNING: the extension does not link libstdc++ dynamically (set CXX to the system g++)"
    [ -n "$RESULT_DIR" ] && cp fastlstm/_C*.so "$RESULT_DIR/"
  fi
  $PY -c 'import torch, fastlstm; assert torch._C._dispatch_has_kernel_for_dispatch_key("fastlstm::lstm_layer", "CUDA"), "no CUDA kernel registered"; print("CUDA backend registered")'
}

nvrtc_build() {
  FASTLSTM_FORCE_CPU=1 MAX_JOBS=${MAX_JOBS:-16} $PY setup.py build_ext --inplace || return 1
  export FASTLSTM_CUDA_KERNELS=nvrtc FASTLSTM_CACHE_DIR=$PWD/$OUT/nvrtc-cache
  local arch
  arch=$($PY -c 'import torch; print("%d%d" % torch.cuda.get_device_capability())')
  $PY -m fastlstm nvrtc-check --arch "$arch" --cache || return 1
  $PY -m fastlstm nvrtc-check --arch "$arch" --cache || return 1  # the cache hits
  $PY -c 'import torch, fastlstm; x = torch.randn(3, 2, 8, device="cuda"); m = fastlstm.LSTM(8, 16).cuda(); torch.testing.assert_close(m(x)[0], m.to_torch()(x)[0], atol=1e-5, rtol=1e-4); print("NVRTC executor: LSTM on", torch.cuda.get_device_name(), "matches nn.LSTM")'
}

run_tests() { $PY -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider --durations=5; }
run_suite() { $PY -m pytest tests -q -x -n 12 -p no:cacheprovider; }

sanitize() {  # SANITIZE_TOOLS, SANITIZE_ARGS (e.g. --skip tensor_core) select
  local rc=0 tool
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck initcheck}; do
    echo "-- compute-sanitizer --tool $tool"
    compute-sanitizer --tool "$tool" --kernel-name kns=lstm --error-exitcode 9 \
      $PY tools/cuda_sanitize_cases.py ${SANITIZE_ARGS:-} >"$OUT/sanitize-$tool.txt" 2>&1 || rc=1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|failure|FAIL|Error" "$OUT/sanitize-$tool.txt" | tail -5
  done
  return $rc
}

bench_grid() {  # BENCH_DTYPES: float32 (TF32 off on both sides), float32-tf32 (allowed), ...
  local dtype rc=0
  for dtype in ${BENCH_DTYPES:-float32 float32-tf32 float16 bfloat16}; do
    local tf32=""
    [ "$dtype" = float32-tf32 ] && tf32=--allow-tf32
    $PY -m fastlstm bench --device cuda --dtype "${dtype%-tf32}" $tf32 ${BENCH_GRID:---full} \
      --json "$OUT/cuda-$dtype.json" --markdown "$OUT/cuda-$dtype.md" || rc=1
  done
  # the pytest-benchmark suite itself, quick grid, on the GPU
  [ -n "${BENCH_DTYPES:-}" ] || $PY -m pytest bench -q -k cuda --bench-quick --bench-budget 0.5 -p no:cacheprovider \
    --benchmark-json "$OUT/pytest-benchmark-cuda-quick.json" || rc=1
  return $rc
}

bench_variants() { $PY bench/cuda_variants.py --json "$OUT/cuda-variants.json" ${VARIANT_ARGS:-}; }

[ $# -eq 0 ] && set -- info build test sanitize bench
for what in "$@"; do
  case $what in
    info) stage info info ;;
    build) stage build build ;;
    nvrtc) stage nvrtc nvrtc_build ;;
    test) stage test run_tests ;;
    suite) stage suite run_suite ;;
    sanitize) stage sanitize sanitize ;;
    bench) TAIL_LINES=60 stage bench bench_grid ;;
    variants) TAIL_LINES=60 stage variants bench_variants ;;
    *) echo "unknown stage $what"; exit 2 ;;
  esac
done
[ -n "$RESULT_DIR" ] && tar czf "$RESULT_DIR/${SESSION_NAME:-gpu-session}.tgz" -C build gpu-session
exit $failed
