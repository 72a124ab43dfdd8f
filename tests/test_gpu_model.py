"""The GPU cost model (bench/gpu_model.py): it reproduces its committed fit to
the H100 measurements, its predictions move the way physics says they must,
and its report is deterministic and the one committed."""
import importlib.util
import json
import math
import os
from dataclasses import replace
from types import SimpleNamespace

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "gpu_model", os.path.join(REPO_ROOT, "bench", "gpu_model.py"))
gm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gm)


def lstm(T, B, H, layers=1, bidirectional=False):
    return SimpleNamespace(name=f"T{T} B{B} H{H}", steps=T, batch=B, input_size=H, hidden_size=H,
                           layers=layers, bidirectional=bidirectional, cell=False)


SHAPES = [lstm(100, 64, 512), lstm(256, 1, 128), lstm(256, 16, 1024), lstm(256, 4, 256),
          lstm(100, 32, 256, layers=2, bidirectional=True)]
PRECISIONS = [("float32", False), ("float32", True), ("float16", False), ("bfloat16", False)]


@pytest.fixture(scope="module")
def committed():
    with open(gm.REPORT_JSON) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def rows():
    return gm.measurements()


def test_fit_errors_match_the_committed_report(rows, committed):
    stated = {(e["family"], e["split"]): e for e in committed["fit_errors"]}
    errors = gm.error_table(rows, gm.FITTED)
    assert set(errors) == set(stated)
    for key, (median, worst, count) in errors.items():
        assert count == stated[key]["rows"]
        assert median == pytest.approx(stated[key]["median"], rel=1e-4)
        assert worst == pytest.approx(stated[key]["worst"], rel=1e-4)
    assert errors[("all", "train")][0] < 0.10       # the median the report states
    assert errors[("all", "held-out")][0] < 0.15


def test_every_training_row_within_the_stated_worst_error(rows, committed):
    worst = {(e["family"], e["split"]): e["worst"] for e in committed["fit_errors"]}
    for m in rows:
        if gm.is_held_out(m):
            continue
        err = abs(gm.model_seconds(m, gm.FITTED) / m.seconds - 1)
        assert err <= worst[(gm.family(m), "train")] * (1 + 1e-5), m.key  # the JSON's 6 digits


def test_the_fit_reproduces_the_committed_constants(rows):
    refit = gm.fit(rows)
    for name in gm.FIT_NAMES:
        assert getattr(refit, name) == pytest.approx(getattr(gm.FITTED, name), rel=0.02), name


def test_the_fit_never_sees_held_out_rows(rows):
    held_out = [m for m in rows if gm.is_held_out(m)]
    assert held_out and len(held_out) < len(rows) // 4
    assert {m.shape.batch for m in held_out} <= {4, 8}


def test_old_auto_is_the_kernel_the_measured_run_recorded():
    for path in gm.GRID_FILES.values():
        with open(path) as f:
            benchmarks = json.load(f)["benchmarks"]
        for b in benchmarks:
            info = b["extra_info"]
            if info["impl"] != "fastlstm":
                continue
            picked = gm.old_auto_variant(gm.H100, info["H"], info["B"], info["dtype"], False)
            assert "cuda-" + picked == info["kernel"], b["group"]


def test_measurements_name_their_source(rows):
    for m in rows:
        assert os.path.exists(os.path.join(REPO_ROOT, m.source))


@pytest.mark.parametrize("variant", gm.VARIANTS)
@pytest.mark.parametrize("dtype,tf32", PRECISIONS)
def test_more_steps_never_faster(variant, dtype, tf32):
    for shape in SHAPES:
        for mode in gm.MODES:
            times = [gm.predict(variant, replace_steps(shape, T), dtype, "h100", tf32, mode)
                     for T in (1, 16, 100, 256, 2048)]
            assert times == sorted(times), (variant, shape.name, mode)


def replace_steps(shape, steps):
    return SimpleNamespace(**{**vars(shape), "steps": steps})


@pytest.mark.parametrize("variant", gm.NEW_VARIANTS)
@pytest.mark.parametrize("dtype,tf32", PRECISIONS)
def test_more_rows_never_faster_on_the_new_designs(variant, dtype, tf32):
    for hidden in (128, 256, 512, 1024):
        for mode in gm.MODES:
            times = [gm.predict(variant, lstm(256, B, hidden), dtype, "h100", tf32, mode)
                     for B in (1, 2, 4, 8, 16, 32, 64)]
            assert times == sorted(times), (variant, hidden, mode)


@pytest.mark.parametrize("variant", gm.VARIANTS)
def test_training_costs_more_than_inference(variant):
    for shape in SHAPES:
        fwd = gm.predict(variant, shape, "float32", "h100", False, "fwd")
        both = gm.predict(variant, shape, "float32", "h100", False, "fwd+bwd")
        assert both >= fwd


def test_slower_sync_or_launches_never_make_a_call_faster():
    slower = replace(gm.FITTED, grid_sync_us=2 * gm.FITTED.grid_sync_us,
                     launch_us=2 * gm.FITTED.launch_us, l2_round_us=2 * gm.FITTED.l2_round_us)
    for variant in gm.VARIANTS:
        for shape in SHAPES:
            assert gm.predict(variant, shape, constants=slower) >= gm.predict(variant, shape)


def test_the_h200_is_never_slower_than_the_h100():
    for variant in gm.VARIANTS:
        for shape in SHAPES:
            for mode in gm.MODES:
                assert gm.predict(variant, shape, "float16", "h200", False, mode) <= \
                    gm.predict(variant, shape, "float16", "h100", False, mode)


def test_variants_that_cannot_run_a_layer_are_infinitely_slow():
    assert math.isinf(gm.predict("small_hidden", lstm(100, 8, 512)))
    assert math.isinf(gm.predict("persistent2d_tensor_core", lstm(100, 8, 512), "float32"))
    assert math.isfinite(gm.predict("persistent2d_tensor_core", lstm(100, 8, 512), "float32",
                                    tf32=True))
    assert math.isinf(gm.predict("tensor_core", lstm(100, 8, 512), "float32"))
    cell = SimpleNamespace(**{**vars(lstm(100, 16, 256)), "cell": True})
    assert math.isinf(gm.predict("persistent2d", cell))
    assert math.isfinite(gm.predict("cell_step", cell))
    with pytest.raises(ValueError):
        gm.predict("no_such_kernel", lstm(100, 8, 512))


def test_best_variant_is_the_fastest_built_design():
    shape = lstm(100, 64, 512)
    name, seconds = gm.best_variant(shape, "float16")
    assert name in gm.BUILT_VARIANTS
    assert seconds == min(gm.predict(v, shape, "float16") for v in gm.BUILT_VARIANTS)
    assert gm.best_variant(lstm(256, 1, 128))[0] == "persistent2d"
    assert gm.best_variant(lstm(256, 1, 128), candidates=gm.NEW_VARIANTS)[0] == "small_hidden"


def test_the_new_designs_keep_w_hh_on_chip_where_it_fits():
    # fp32 H=1024: 16 MB of W_hh over 128 SMs, 128 KB a block in registers.
    step = gm.call_time("persistent2d", lstm(256, 16, 1024), mode="fwd+bwd").step_of("fwd")
    assert step.blocks <= gm.H100.sms
    assert step.blocks * step.weight_bytes >= 4 * 1024 * 1024 * 4


def test_report_is_deterministic_and_the_committed_one(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        gm.main(["report", "--markdown", str(out / "m.md"), "--json", str(out / "m.json")])
    for name in ("m.md", "m.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    with open(gm.REPORT_MD, "rb") as f:
        assert (first / "m.md").read_bytes() == f.read()
    with open(gm.REPORT_JSON, "rb") as f:
        assert (first / "m.json").read_bytes() == f.read()


def test_predict_cli_prints_every_variant(capsys):
    gm.main(["predict", "--T", "100", "--B", "16", "--H", "256", "--dtype", "bfloat16",
             "--mode", "fwd+bwd"])
    out = capsys.readouterr().out
    for variant in gm.VARIANTS:
        assert variant in out
