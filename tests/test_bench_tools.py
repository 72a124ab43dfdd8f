"""The benchmark tooling (fastlstm/bench/): the report of a pytest-benchmark
JSON (ratios, geometric means, worst shape, the bound column, plot), the
grid's groups (float64, packed sequences, LSTMCell loops), the bound model
and its probes, the parity check that guards every timed case, and
`python -m fastlstm bench` on a tiny grid."""
import json
import math
import os
import runpy
import subprocess
import sys

import pytest
import torch

from fastlstm import bench

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "threads": 2, "torch": "2.13.0+cpu"}


def entry(shape, mode, impl, median, dtype="float32", device="cpu", **extra):
    info = dict(MACHINE, shape=shape, mode=mode, impl=impl, dtype=dtype, device=device,
                kernel="cpu-avx2" if impl == "fastlstm" else "onednn", **extra)
    return {"group": f"{shape} {mode} {dtype} {device}", "name": f"test[{shape}-{mode}-{impl}]",
            "stats": {"median": median, "mean": median, "min": median, "max": median,
                      "rounds": 5},
            "extra_info": info}


# Sorted by name, as a JSON may be; the report puts grid shapes in grid order
# (fastrnns before small) and shapes outside the grid after them.
SYNTHETIC = {"benchmarks": [
    entry("custom", "fwd", "fastlstm", 1.0),
    entry("custom", "fwd", "torch", 1.0),
    entry("fastrnns T100 B64 H512", "fwd", "fastlstm", 1.0),
    entry("fastrnns T100 B64 H512", "fwd", "torch", 2.0),
    entry("fastrnns T100 B64 H512", "fwd+bwd", "fastlstm", 2.0),
    entry("fastrnns T100 B64 H512", "fwd+bwd", "torch", 3.0),
    entry("lonely", "fwd", "torch", 1.0),  # no fastlstm result: left out
    {"group": None, "name": "test_other", "stats": {"median": 1.0}, "extra_info": {}},
    entry("small T256 B1 H128", "fwd", "fastlstm", 2.0),
    entry("small T256 B1 H128", "fwd", "torch", 1.0),
    entry("small T256 B1 H128", "fwd+bwd", "fastlstm", 2.0),
    entry("small T256 B1 H128", "fwd+bwd", "torch", 4.0),
]}


def test_speedups_geomeans_and_worst_shape():
    rows = bench.speedup_rows(SYNTHETIC)
    assert [r.shape for r in rows] == ["fastrnns T100 B64 H512", "small T256 B1 H128", "custom"]
    speedups = {(r.shape, m): r.speedup(m) for r in rows for m in r.medians}
    assert speedups == pytest.approx({
        ("fastrnns T100 B64 H512", "fwd"): 2.0, ("fastrnns T100 B64 H512", "fwd+bwd"): 1.5,
        ("small T256 B1 H128", "fwd"): 0.5, ("small T256 B1 H128", "fwd+bwd"): 2.0,
        ("custom", "fwd"): 1.0})
    s = bench.summary(rows)
    assert list(s["per_mode"]) == ["fwd", "fwd+bwd"]
    assert s["per_mode"]["fwd"] == pytest.approx((1.0, 3))
    assert s["per_mode"]["fwd+bwd"] == pytest.approx((math.sqrt(3.0), 2))
    assert s["overall"] == pytest.approx((3.0 ** 0.2, 5))
    assert s["worst"][:2] == ("small T256 B1 H128 float32 cpu", "fwd")
    assert s["worst"][2] == pytest.approx(0.5)


def test_markdown_table():
    text = bench.markdown(SYNTHETIC)
    lines = text.splitlines()
    assert lines[0] == "Machine: CPU Test CPU 9000, 2 cores, 2 torch threads, torch 2.13.0+cpu"
    assert "| shape | dtype | device | fwd | fwd+bwd |" in lines
    assert "| fastrnns T100 B64 H512 | float32 | cpu | 2.00x | 1.50x |" in lines
    assert "| small T256 B1 H128 | float32 | cpu | 0.50x | 2.00x |" in lines
    assert "| custom | float32 | cpu | 1.00x |  |" in lines
    assert not any("lonely" in line for line in lines)
    assert "| fwd | 1.00x | 3 |" in lines
    assert "| fwd+bwd | 1.73x | 2 |" in lines
    assert "| **overall** | **1.25x** | 5 |" in lines
    assert "Worst: small T256 B1 H128 float32 cpu fwd: 0.50x" in lines
    assert "| small T256 B1 H128 | float32 | cpu | fwd+bwd | 4000.000 | 2000.000 | cpu-avx2 |" \
        in lines


def test_header_names_the_gpu():
    data = {"benchmarks": [
        entry("fastrnns T100 B64 H512", "fwd", impl, median, dtype="bfloat16", device="cuda",
              gpu="NVIDIA H100 80GB HBM3", cuda="12.8", cudnn=90800)
        for impl, median in (("torch", 3e-3), ("fastlstm", 1e-3))]}
    text = bench.markdown(data)
    assert "GPU NVIDIA H100 80GB HBM3 (CUDA 12.8, cuDNN 90800)" in text.splitlines()[0]
    assert "| fastrnns T100 B64 H512 | bfloat16 | cuda | 3.00x |" in text


def test_report_cli_writes_markdown_and_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(SYNTHETIC))
    md, png = tmp_path / "out.md", tmp_path / "out.png"
    # bench/report.py, the thin wrapper, run as a script.
    monkeypatch.setattr(sys, "argv", ["report.py", str(results), "--markdown", str(md),
                                      "--plot", str(png)])
    runpy.run_path(os.path.join(REPO_ROOT, "bench", "report.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert md.read_text().strip() == bench.markdown(SYNTHETIC).strip()
    assert "| **overall** | **1.25x** | 5 |" in printed
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_rounds_fit_the_budget():
    assert bench.rounds_for(0.1, 5.0) == 50
    assert bench.rounds_for(2.0, 5.0) == 5        # at least min_rounds
    assert bench.rounds_for(1e-6, 5.0) == 100     # at most max_rounds
    assert bench.rounds_for(0.0, 5.0, max_rounds=7) == 7


@pytest.mark.parametrize("shape", bench.GRIDS["tiny"], ids=lambda s: s.name)
def test_parity_check_catches_a_wrong_answer(monkeypatch, shape):
    bench.check_parity(shape, "fwd+bwd")  # the real pair agrees
    build_pair = bench.build_pair

    def broken_pair(*args, **kwargs):
        ref, fast, x = build_pair(*args, **kwargs)
        with torch.no_grad():
            next(fast.parameters())[0, 0] += 0.5
        return ref, fast, x
    monkeypatch.setattr(bench.cases, "build_pair", broken_pair)
    with pytest.raises(AssertionError):
        bench.check_parity(shape, "fwd")


def test_timed_steps_leave_fresh_gradients():
    shape = bench.GRIDS["tiny"][0]
    ref, fast, x = bench.build_pair(shape)
    for model in (ref, fast):
        bench.make_step(model, x, "fwd+bwd")()
        first = [p.grad.clone() for p in model.parameters()]
        bench.make_step(model, x, "fwd+bwd")()
        for before, p in zip(first, model.parameters()):
            torch.testing.assert_close(p.grad, before)  # set to None, not accumulated
    with pytest.raises(ValueError):
        bench.make_step(fast, x, "bwd")


def test_quick_cli_on_the_tiny_grid(tmp_path, capsys):
    from fastlstm.__main__ import main
    out = tmp_path / "tiny.json"
    data = main(["bench", "--shapes", "tiny", "--device", "cpu", "--rounds", "3",
                 "--warmup", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    tiny = bench.GRIDS["tiny"]
    assert len(data["benchmarks"]) == len(tiny) * 2 * 2  # shapes x modes x impls
    for b in data["benchmarks"]:
        assert b["stats"]["rounds"] == 3 and b["stats"]["median"] > 0
        assert b["extra_info"]["impl"] in ("torch", "fastlstm")
        assert b["extra_info"]["device"] == "cpu" and b["extra_info"]["dtype"] == "float32"
        assert b["extra_info"]["kernel"]
        assert b["extra_info"]["bound_s"] > 0 and b["extra_info"]["bound_kind"] in ("FMA",
                                                                                    "bandwidth")
    assert data["probes"]["fma_flops"]["float32"] > 1e9
    assert data["probes"]["reads"] and all(r["bytes_per_s"] > 1e8 for r in data["probes"]["reads"])
    assert json.loads(out.read_text()) == data
    assert ("| shape | dtype | device | fwd | fwd+bwd | fwd % of bound | fwd+bwd % of bound |"
            in printed)
    assert "Probed in this run on " in printed
    rows = [line for line in printed.splitlines() if line.startswith("| tiny ")
            or line.startswith("| cell T8 ")]
    table_rows = [line for line in rows if line.count("|") == 8]
    assert [line.split(" | ")[0][2:] for line in table_rows] == [s.name for s in tiny]
    assert all(" | ".join(line.split(" | ")[3:5]).endswith("x") for line in table_rows)
    assert "| **overall** |" in printed and "Worst: " in printed


def test_python_dash_m_dispatch():
    command = [sys.executable, "-m", "fastlstm", "bench", "--shapes", "tiny", "--device", "cpu",
               "--mode", "fwd", "--rounds", "1", "--warmup", "0", "--no-parity"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| tiny T8 B2 H16 | float32 | cpu |" in done.stdout
    assert "| shape | dtype | device | fwd | fwd % of bound |" in done.stdout


def test_float64_cli_without_bounds(capsys):
    from fastlstm.__main__ import main
    data = main(["bench", "--shapes", "tiny", "--device", "cpu", "--dtype", "float64",
                 "--mode", "fwd", "--rounds", "1", "--warmup", "0", "--no-bounds"])
    assert {b["extra_info"]["dtype"] for b in data["benchmarks"]} == {"float64"}
    assert "probes" not in data and all("bound_s" not in b["extra_info"]
                                        for b in data["benchmarks"])
    printed = capsys.readouterr().out
    assert "| shape | dtype | device | fwd |" in printed and "% of bound" not in printed


def test_demo_help_is_unchanged(capsys):
    from fastlstm.__main__ import main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m fastlstm [-h] [--text FILE]")


def test_grid_groups_float64_packed_and_cell_loops():
    assert ("cpu", "float64") in bench.DEVICE_DTYPES
    assert set(bench.PACKED_SHAPES) <= set(bench.GRIDS["full"])
    assert {"cell T50 B1 H8", "cell T50 B97 H51"} <= {s.name for s in bench.CELL_LOOP_SHAPES}
    assert set(bench.CELL_LOOP_SHAPES) <= set(bench.GRIDS["full"])
    cells = bench.GRIDS["cells"]
    assert {s.batch for s in cells} >= {1, 128} and {s.hidden_size for s in cells} >= {8, 512}
    for shape in bench.PACKED_SHAPES:
        lengths = shape.lengths()
        assert len(lengths) == shape.batch and max(lengths) == shape.steps
        assert min(lengths) >= shape.steps // 4 and lengths != sorted(lengths, reverse=True)
        assert shape.batch_sizes()[0] == shape.batch and sum(shape.batch_sizes()) == sum(lengths)


def test_packed_case_feeds_both_models_a_packed_sequence():
    shape = next(s for s in bench.GRIDS["tiny"] if s.packed)
    ref, fast, x = bench.build_pair(shape)
    assert isinstance(x, torch.nn.utils.rnn.PackedSequence) and x.sorted_indices is not None
    bench.check_parity(shape, "fwd+bwd")


class FixedProbes:
    """A machine of 100 GFLOP/s (float32; 50 in float64) reading 10 GB/s."""
    threads = 2

    def fma_flops(self, dtype):
        return 5e10 if str(dtype).endswith("float64") else 1e11

    def read_rate(self, nbytes, dtype):
        return 1e10


def test_bound_model():
    probes = FixedProbes()
    # B=1, H=256, I=256, T=10: each step streams W_hh (1 MiB) at 10 GB/s,
    # far above its FLOPs; the projection (one product) runs at the peak.
    shape = bench.Shape("b1", 10, 1, 256, 256)
    w_hh, projection = 4 * 256 * 256 * 4, 2 * 10 * 1024 * 256
    fwd = bench.case_bound(shape, "fwd", "float32", probes)
    assert fwd.kind == "bandwidth"
    assert fwd.seconds == pytest.approx(projection / 1e11 + 10 * w_hh / 1e10)
    train = bench.case_bound(shape, "fwd+bwd", "float32", probes)
    assert train.seconds == pytest.approx(fwd.seconds + 10 * w_hh / 1e10 + 3 * projection / 1e11)
    # B=512: every step is bound by its FLOPs; float64 halves the peak.
    wide = bench.Shape("b512", 10, 512, 256, 256)
    flops = 2 * 10 * 512 * 1024 * 512
    assert bench.case_bound(wide, "fwd", "float32", probes).kind == "FMA"
    assert bench.case_bound(wide, "fwd", "float32", probes).seconds == pytest.approx(flops / 1e11)
    assert bench.case_bound(wide, "fwd", "float64", probes).seconds == pytest.approx(flops / 5e10)
    # A packed shape counts the rows of its lengths; a cell loop both weights per step.
    packed = bench.Shape("p", 8, 3, 16, 16, packed=True)
    assert sum(packed.batch_sizes()) == sum(packed.lengths())
    cell = bench.Shape("c", 5, 1, 64, 256, cell=True)
    weights = 4 * 256 * (64 + 256) * 8
    assert bench.case_bound(cell, "fwd+bwd", "float64", probes).seconds == pytest.approx(
        5 * 3 * weights / 1e10)


def test_markdown_bound_column():
    data = {"benchmarks": [
        entry("small T256 B1 H128", "fwd", impl, median, bound_s=1.0, bound_kind="bandwidth")
        for impl, median in (("torch", 4.0), ("fastlstm", 2.0))],
        "probes": {"threads": 2, "fma_flops": {"float32": 4.3e11},
                   "reads": [{"dtype": "float32", "bytes": 2 ** 18, "bytes_per_s": 4e11}]}}
    lines = bench.markdown(data).splitlines()
    assert "| small T256 B1 H128 | float32 | cpu | 2.00x | 50% (bandwidth) |" in lines
    assert ("| small T256 B1 H128 | float32 | cpu | fwd | 4000.000 | 2000.000 | cpu-avx2 | "
            "1000.000 | bandwidth | 25% | 50% |") in lines
    assert any(line.startswith("Probed in this run on 2 threads: FMA peak float32 430 GFLOP/s")
               and "float32 256 KiB 400 GB/s" in line for line in lines)


def test_probes_measure_this_machine():
    probes = bench.Probes(repeats=1)
    assert probes.fma_flops("float32") > 1e8 and probes.fma_flops("float64") > 1e8
    assert probes.read_rate(1 << 20, "float32") > 1e8
    assert probes.as_dict()["reads"][0]["bytes"] == 1 << 20
