"""The CPU SIMT emulator (csrc/sim), which runs the CUDA kernels of
csrc/kernels in the tests: tests/sim/sim_selftest.cpp, compiled here with g++,
runs the self-test kernels of tests/sim/sim_kernels.cuh in every scheduling
order and checks them against the host; kernels that misuse CUDA must fail
with SimError, promptly, and leave the emulator usable. Where nvcc is
installed, the same kernels must also build for the GPU. Torch-free."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXXFLAGS = ["-O1", "-g", "-std=c++17", "-pthread", "-I" + os.path.join(ROOT, "csrc")]

# The sanitizer CI preloads ASan for the extension; the compiler and the
# self-test, which are not instrumented, run faster without it.
ENV = {name: value for name, value in os.environ.items() if name != "LD_PRELOAD"}

# Exit statuses of sim_selftest.
CORRECT, WRONG, SIM_ERROR = 0, 1, 2

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2), ("random", 3)]
ORDER_IDS = [f"{order}{seed if order == 'random' else ''}" for order, seed in ORDERS]

CORRECT_CASES = ["with_syncthreads", "shuffle_reduction", "tiled_matmul", "grid_sync_loop",
                 "dynamic_shared", "ballot_vote", "exited_threads_at_barrier", "wmma_matmul_half",
                 "wmma_matmul_bfloat16", "wmma_shapes", "wmma_tf32_rounded", "wmma_tf32_truncated",
                 "wmma_good_copy", "flag_pipeline",
                 "flag_pipeline_fenced_relaxed"]

# Misuse, and what the SimError must say.
ERROR_CASES = {
    "divergent_syncthreads": ["deadlock in block (0,0,0)",
                              "threads 0-15: wait at __syncthreads() at sim_kernels.cuh",
                              "threads 16-31: wait at __syncwarp(mask 0xffffffff)"],
    "shfl_exited_lane": ["deadlock in block (0,0,0)",
                         "threads 0-30: wait at __shfl_down_sync(mask 0xffffffff)",
                         "for threads 31", "thread 31: exited"],
    "grid_sync_noncooperative": ["this_grid().sync() at sim_kernels.cuh", "launch_cooperative()"],
    "too_many_threads": ["block (2048,1,1)", "2048 threads per block; at most 1024"],
    "zero_grid": ["grid (4,0,1)", "every dimension must be at least 1"],
    "mismatched_collectives": ["__ballot_sync(mask 0xffffffff)", "__syncwarp(mask 0xffffffff)",
                               "must all make the same call with the same mask"],
    "shfl_source_outside_mask": ["__shfl_down_sync(mask 0x0000ffff)",
                                 "reads lane 16, which is not in the mask"],
    "mask_beyond_partial_warp": ["lanes that do not exist", "0x000fffff"],
    "cooperative_block_exits": ["deadlock", "block (1,0,0)", "exited",
                                "this_grid().sync() at sim_kernels.cuh"],
    "kernel_throws": ["kernel threw: planted failure", "thread (5,0,0)"],
    "wmma_half_warp": ["deadlock in block (0,0,0)",
                       "threads 0-15: wait at wmma::load_matrix_sync at sim_kernels.cuh",
                       "for threads 16-31", "threads 16-31: exited"],
    "wmma_partial_warp": ["wmma::load_matrix_sync at sim_kernels.cuh", "needs a full warp",
                          "warp 1 of a 48-thread block has only lanes 0x0000ffff"],
    "wmma_misaligned_pointer": ["wmma::load_matrix_sync", "is not 32-byte aligned"],
    "wmma_ldm_not_multiple": ["wmma::load_matrix_sync",
                              "ldm 20 is not a multiple of 8 elements of 2 bytes"],
    "wmma_lane_dependent_ldm": ["wmma::load_matrix_sync", "lane 5 passes", "ldm 24",
                                "every lane of the warp must pass the same arguments"],
    "wmma_lane_dependent_fragment": ["wmma::store_matrix_sync", "fragment differs from lane 0's",
                                     "must be changed the same way in every lane"],
    "wmma_mixed_with_syncwarp": ["__syncwarp(mask 0xffffffff)", "wmma::load_matrix_sync",
                                 "must all make the same call"],
    "wmma_overlapping_store": ["wmma::store_matrix_sync",
                               "ldm 8 is less than the 16 columns of the tile"],
    "flag_missing_release": ["stored at sim_kernels.cuh",
                             "without release order or a __threadfence() after its last barrier",
                             "(missing fence)"],
    "flag_missing_acquire": ["with neither acquire order nor a __threadfence() before "
                             "__syncthreads()", "(missing acquire)"],
    "flag_never_published": ["deadlock: every block of a cooperative launch waits",
                             "spins at __nanosleep() at sim_kernels.cuh"],
    "flag_wait_in_plain_launch": ["threads spin at __nanosleep() at sim_kernels.cuh",
                                  "in a launch() (not cooperative) the other blocks do not run"],
}

# What torch's CUDAExtension adds to every nvcc command.
TORCH_NVCC_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__"]


def _compile(sources_and_flags, cwd):
    return [subprocess.Popen(["g++", *CXXFLAGS, *flags, "-c", source, "-o", obj], cwd=cwd, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for source, obj, flags in sources_and_flags]


@pytest.fixture(scope="session")
def selftests(tmp_path_factory):
    """sim_selftest linked with the default stack switch and with ucontext."""
    assert shutil.which("g++"), "g++ is needed to build the emulator's self-test"
    build = tmp_path_factory.mktemp("sim")
    runtime = os.path.join(ROOT, "csrc", "sim", "cuda_sim.cpp")
    jobs = _compile([(os.path.join(ROOT, "tests", "sim", "sim_selftest.cpp"), "driver.o", []),
                     (runtime, "sim.o", []),
                     (runtime, "sim_ucontext.o", ["-DFASTLSTM_SIM_UCONTEXT"])], build)
    for job in jobs:
        output, _ = job.communicate()
        assert job.returncode == 0, output
    binaries = {}
    for name, runtime_object in [("stack_switch", "sim.o"), ("ucontext", "sim_ucontext.o")]:
        subprocess.run(["g++", "-pthread", "driver.o", runtime_object, "-o", name], cwd=build,
                       env=ENV, check=True)
        binaries[name] = str(build / name)
    return binaries


def run_case(binary, case, order, seed):
    done = subprocess.run([binary, case, order, str(seed)], capture_output=True, text=True,
                          env=ENV, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("build", ["stack_switch", "ucontext"])
@pytest.mark.parametrize("order,seed", ORDERS, ids=ORDER_IDS)
@pytest.mark.parametrize("case", CORRECT_CASES)
def test_correct_kernel_gives_host_result_in_every_order(selftests, build, case, order, seed):
    status, output = run_case(selftests[build], case, order, seed)
    assert status == CORRECT, output


def test_missing_syncthreads_gives_a_wrong_result_in_some_order(selftests):
    # The planted bug leaves out the barriers of the last five reduction
    # steps; the same kernel with them is among CORRECT_CASES.
    results = {(order, seed): run_case(selftests["stack_switch"], "missing_syncthreads", order,
                                       seed)
               for order, seed in ORDERS}
    assert all(status in (CORRECT, WRONG) for status, _ in results.values()), results
    assert any(status == WRONG for status, _ in results.values()), results
    # Forward order runs thread 0 to its end before thread 1 starts.
    assert results[("forward", 0)][0] == WRONG, results


@pytest.mark.parametrize("build", ["stack_switch", "ucontext"])
@pytest.mark.parametrize("order,seed", ORDERS[1:3], ids=ORDER_IDS[1:3])
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_misuse_raises_sim_error_and_the_emulator_recovers(selftests, build, case, order, seed):
    # Status SIM_ERROR also says that a correct kernel ran right afterwards.
    status, output = run_case(selftests[build], case, order, seed)
    assert status == SIM_ERROR, output
    for fragment in ERROR_CASES[case]:
        assert fragment in output, output


def test_missing_flag_wait_gives_a_wrong_result_in_some_order(selftests):
    # The planted bug reads the previous block's values without waiting for
    # its flag; cooperative blocks take turns in the launch's order, so in
    # reverse order the reader runs before the writer.
    results = {(order, seed): run_case(selftests["stack_switch"], "flag_missing_wait", order, seed)
               for order, seed in ORDERS}
    assert all(status in (CORRECT, WRONG) for status, _ in results.values()), results
    assert results[("reverse", 0)][0] == WRONG, results


def test_16_bit_conversions_round_to_nearest_even(selftests):
    # Exhaustive over the 16-bit patterns, and around every rounding boundary.
    status, output = run_case(selftests["stack_switch"], "16_bit_conversions", "forward", 0)
    assert status == CORRECT, output


def test_self_test_kernels_build_with_nvcc(tmp_path):
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    if not nvcc:
        pytest.skip("nvcc is not installed")
    source = os.path.join(ROOT, "tests", "sim", "sim_kernels_nvcc.cu")
    done = subprocess.run([nvcc, "-std=c++17", "-arch=sm_80", *TORCH_NVCC_FLAGS, "-c", source,
                           "-o", str(tmp_path / "kernels.o")], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unknown_case_is_a_usage_error(selftests):
    status, output = run_case(selftests["stack_switch"], "no_such_case", "forward", 0)
    assert status == 64 and "shuffle_reduction" in output, output
