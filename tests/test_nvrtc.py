"""The NVRTC executor, on a machine without a GPU: every kernel instance
compiles through NVRTC with the nvcc build's numerics, the cubin cache keys,
shares and survives what it must, and the executor's host side (module
loading, lookups, launch shapes, cooperative grids, shared-memory limits,
occupancy) drives a stand-in CUDA driver (tests/nvrtc/fake_driver.cpp) that
records launches instead of running them. Needs the NVRTC wheels of
`pip install "fastlstm[nvrtc]"` (the test extra brings them)."""
import glob
import os
import shutil
import subprocess
import sys

import pytest
import torch

import fastlstm
from fastlstm import _nvrtc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "float64", "float16", "bfloat16")
ARCH = 90
PERSISTENT_FORWARD = 0  # PersistentKernel::kForward


def run_python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def fill_cache(cache, *extra):
    return subprocess.run(
        [sys.executable, "-m", "fastlstm", "nvrtc-check", "--arch", str(ARCH), "--dtype",
         "float32", "--cache", *extra], capture_output=True, text=True, timeout=600,
        env={**os.environ, "FASTLSTM_CACHE_DIR": str(cache)})


def copy_sources(to):
    os.makedirs(to)
    shutil.copy(os.path.join(ROOT, "csrc", "gate_math.h"), to)
    shutil.copytree(os.path.join(ROOT, "csrc", "kernels"), os.path.join(to, "kernels"))
    return str(to)


def test_nvrtc_and_its_headers_are_found():
    libraries, includes, sources, missing = _nvrtc.locate()
    assert missing == ""
    assert os.path.basename(libraries[-1]).startswith("libnvrtc.so")
    assert os.path.exists(os.path.join(sources, "kernels", "all_kernels.cuh"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_instance_compiles_with_the_nvcc_numerics(dtype):
    cubin, log, names, lowered, options = torch.ops.fastlstm._nvrtc_compile(dtype, ARCH)
    assert bytes(cubin[:4].tolist()) == b"\x7fELF"
    for low in lowered:
        assert f"Compiling entry function '{low}' for 'sm_{ARCH}'" in log
    expected = {"lstm_forward_step", "lstm_backward_step", "lstm_forward_persistent",
                "lstm_backward_persistent", "lstm_forward_persistent2d",
                "lstm_backward_persistent2d", "gate_activations"}
    if dtype != "float64":  # float as TF32
        expected |= {"lstm_forward_persistent2d_tensor_core",
                     "lstm_backward_persistent2d_tensor_core"}
    if dtype in ("float16", "bfloat16"):
        expected |= {"lstm_forward_step_tensor_core", "lstm_backward_step_tensor_core"}
    assert {n.split("<")[0].replace("fastlstm::", "") for n in names} == expected
    assert f"--gpu-architecture=sm_{ARCH}" in options
    for flag in ("-ftz=false", "-prec-div=true", "-prec-sqrt=true", "-fmad=true",
                 "-D__CUDA_NO_HALF_CONVERSIONS__"):
        assert flag in options
    assert "-ftz=true" not in options


def test_check_fails_on_a_kernel_that_does_not_compile(tmp_path):
    sources = copy_sources(tmp_path / "src")
    with open(os.path.join(sources, "kernels", "gate_activations.cuh"), "a") as f:
        f.write("\nthis is not C++;\n")
    run = run_python(
        "import sys, torch, fastlstm\n"
        "libraries, includes, _, _ = fastlstm._nvrtc.locate()\n"
        f"torch.ops.fastlstm._nvrtc_configure(libraries, includes, {sources!r}, '', '')\n"
        "from fastlstm.nvrtc_check import main\n"
        "sys.exit(main(['--arch', '90', '--dtype', 'float32']))\n")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED float32 sm_90: fastlstm: NVRTC could not compile the float kernels" in run.stderr
    assert "this is not C++" in run.stderr


def test_cache_fills_then_hits(tmp_path):
    first = fill_cache(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "sm_90 float32: compiled and cached" in first.stdout
    second = fill_cache(tmp_path)
    assert "sm_90 float32: cache hit" in second.stdout
    assert len(glob.glob(str(tmp_path / "*.cubin"))) == 1


def test_cache_is_shared_safely_by_concurrent_processes(tmp_path):
    runs = [subprocess.Popen(
        [sys.executable, "-m", "fastlstm", "nvrtc-check", "--arch", str(ARCH), "--dtype",
         "float32", "--cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FASTLSTM_CACHE_DIR": str(tmp_path)}) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    assert sorted(os.listdir(tmp_path))[0].endswith(".cubin")
    assert len(os.listdir(tmp_path)) == 1  # no temporary file left behind
    assert "cache hit" in fill_cache(tmp_path).stdout


def test_cache_misses_on_a_truncated_file(tmp_path):
    fill_cache(tmp_path)
    (path,) = glob.glob(str(tmp_path / "*.cubin"))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    assert "compiled and cached" in fill_cache(tmp_path).stdout
    assert "cache hit" in fill_cache(tmp_path).stdout


def test_cache_key_covers_the_kernel_sources(tmp_path):
    sources = copy_sources(tmp_path / "src")
    code = (
        "import torch, fastlstm\n"
        "libraries, includes, _, _ = fastlstm._nvrtc.locate()\n"
        f"torch.ops.fastlstm._nvrtc_configure(libraries, includes, {sources!r}, "
        f"{str(tmp_path / 'cache')!r}, '')\n"
        "print('hit' if torch.ops.fastlstm._nvrtc_cache('float32', 90) else 'miss')\n")
    assert run_python(code).stdout.strip() == "miss"
    assert run_python(code).stdout.strip() == "hit"
    with open(os.path.join(sources, "kernels", "lstm_step_forward.cuh"), "a") as f:
        f.write("\n// an edit\n")
    assert run_python(code).stdout.strip() == "miss"
    assert len(glob.glob(str(tmp_path / "cache" / "*.cubin"))) == 2


# The executor's host side against the stand-in driver.

@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    from torch.utils import cpp_extension
    build = os.path.join(ROOT, "build", "nvrtc-probe")
    os.makedirs(build, exist_ok=True)
    nvrtc_sources = ["nvrtc_step_kernels", "kernel_program", "cubin_cache", "nvrtc_api",
                     "dynamic_library"]
    cpp_extension.load(
        name="fastlstm_nvrtc_probe", build_directory=build, is_python_module=False,
        sources=[os.path.join(ROOT, "tests", "nvrtc", f) for f in
                 ("executor_probe.cpp", "fake_driver.cpp")] +
                [os.path.join(ROOT, "csrc", "nvrtc", f"{f}.cpp") for f in nvrtc_sources],
        extra_include_paths=[os.path.join(ROOT, "csrc")],
        extra_cflags=["-O2", "-std=c++17", "-fvisibility=hidden"], extra_ldflags=["-ldl"])
    ops = torch.ops.fastlstm_nvrtc_probe
    libraries, includes, sources, missing = _nvrtc.locate()
    ops.configure(libraries, includes, sources, str(tmp_path_factory.mktemp("cache")), missing)
    return ops


def lowered_name(dtype, expression):
    _, _, names, lowered, _ = torch.ops.fastlstm._nvrtc_compile(dtype, ARCH)
    return dict(zip(names, lowered))[expression]


NARROW, WIDE, TENSOR_CORE = 0, 1, 2


@pytest.mark.parametrize("variant, rows_per_thread", [(NARROW, 1), (WIDE, 2)])
def test_step_launch_shape(probe, variant, rows_per_thread):
    (launch,) = probe.launches("float32", "forward_step", 64, 40, variant, True, 0)
    name = lowered_name("float32", f"fastlstm::lstm_forward_step<float, {rows_per_thread}, true>")
    grid_y = -(-40 // (16 * rows_per_thread))  # ForwardTile: 16 row lanes
    assert launch == f"{name} grid 4x{grid_y} threads 256 shared 0 stream torch"


def test_tensor_core_step_launch(probe):
    (launch,) = probe.launches("bfloat16", "backward_step", 64, 40, TENSOR_CORE, False, 0)
    name = lowered_name("bfloat16", "fastlstm::lstm_backward_step_tensor_core<fastlstm::bfloat16_t>")
    assert launch == f"{name} grid 1x3 threads 128 shared 0 stream torch"


def test_empty_launches_are_skipped(probe):
    assert probe.launches("float32", "forward_step", 64, 0, NARROW, True, 0) == []
    assert probe.launches("float64", "gate_activations", 0, 0, NARROW, False, 0) == []


def test_persistent_launch_is_cooperative_with_the_planned_grid(probe):
    (launch,) = probe.launches("float32", "forward_persistent", 512, 8, NARROW, True, 8)
    name = lowered_name("float32", "fastlstm::lstm_forward_persistent<float, true>")
    assert launch.startswith(f"{name} grid 64x1 threads 256 shared ")
    assert launch.endswith(" cooperative stream torch")
    shared = int(launch.split(" shared ")[1].split()[0])
    assert shared > 48 * 1024  # the W_hh slice of 8 units over 512 columns, in float32
    assert probe.capacity("float32", PERSISTENT_FORWARD, shared) == 132  # its limit was raised


def test_a_cooperative_grid_that_does_not_fit_fails_instead_of_shrinking(probe):
    with pytest.raises(RuntimeError, match="a cooperative kernel launch failed"):
        probe.launches("float32", "backward_persistent", 512, 4, NARROW, False, 2)  # 256 blocks


def test_capacity_is_zero_beyond_the_opt_in_shared_memory(probe):
    assert probe.capacity("float64", PERSISTENT_FORWARD, 300 * 1024) == 0


def test_each_dtype_loads_one_module_with_every_instance(probe):
    for dtype in DTYPES:
        probe.launches(dtype, "gate_activations", 0, 100, NARROW, False, 0)
    modules, context_sets, functions = probe.loaded()
    assert modules == len(DTYPES)
    assert context_sets >= 1  # the primary context made current before loading
    for dtype in DTYPES:
        _, _, _, lowered, _ = torch.ops.fastlstm._nvrtc_compile(dtype, ARCH)
        assert set(lowered) <= set(functions)
