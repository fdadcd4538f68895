"""``qmask bench pipeline`` end to end on tiny random models, and its goal verdicts."""

from __future__ import annotations

import pytest

from engine.bench.pipeline import (GOAL_CHAIN_CPU_S, STAGES, bench_device, main, summarise)
from engine.runtime.cpu_tuning import openmp_wait_description


def test_bench_device_times_every_stage(tiny_models_dir):
    lines: list[str] = []
    result = bench_device(tiny_models_dir, "cpu", repeats=1, num_captions=3, image_size=(64, 48),
                          say=lines.append)
    assert result["device"] == "cpu" and result["random_weights"] is True
    for stage in STAGES:
        if stage == "sam_decode" and not result["stages"][stage]:
            continue  # a flat random heat map may give no points to decode
        assert len(result["stages"][stage]) == 1 and min(result["stages"][stage]) > 0, stage
    # The loading line says how the CPU figures were taken.
    loaded = next(line for line in lines if "models loaded" in line)
    assert openmp_wait_description() in loaded
    assert sum("repeat" in line and "chain" in line for line in lines) == 1
    out = summarise(result, preset="base", num_captions=3)
    assert out[0].startswith("device cpu") and "RANDOM WEIGHTS" in out[0]
    assert any("goal new question" in line for line in out)
    before, after = result["cpu_gemm_gflops"]
    assert before > 0 and after > 0
    assert any(line.startswith("  CPU speed check") and f"{before:.0f} GFLOPS before" in line for line in out)
    assert not any("whole base chain" in line for line in out)  # judged only for 100 captions


def _result(chain_s: float, device: str = "cpu") -> dict:
    stages = {s: [1.0] for s in STAGES}
    stages.update(itm_forward=[2.0, 2.0], gradcam_new_image=[2.0, 2.1], gradcam_new_question=[0.1],
                  answer=[3.7], chain=[chain_s])
    return {"device": device, "dtype": "torch.float32", "stages": stages, "random_weights": True, "threads": 2}


@pytest.mark.parametrize("chain_s, verdict", [(GOAL_CHAIN_CPU_S - 0.5, "met"),
                                              (GOAL_CHAIN_CPU_S + 0.6, "MISSED by 0.6 s")])
def test_chain_goal_verdict(chain_s, verdict):
    lines = summarise(_result(chain_s), preset="base", num_captions=100)
    chain = next(line for line in lines if "whole base chain" in line)
    assert verdict in chain and "largest part: answer (3.70 s)" in chain
    # Grad-CAM ratio: the median of the per-repeat ratios (1.0 and 1.05).
    gradcam = next(line for line in lines if "goal Grad-CAM" in line)
    assert "1.025x" in gradcam and gradcam.endswith("met")
    assert not any("whole base chain" in line for line in summarise(_result(chain_s, "cuda:0"), "base", 100))
    # the goal is for float32: a bfloat16 run is reported, not judged
    bf16 = next(line for line in summarise({**_result(chain_s), "dtype": "torch.bfloat16"}, "base", 100)
                if "whole base chain" in line)
    assert "not judged: the goal is for float32, this run is bfloat16" in bf16
    assert "met" not in bf16 and "MISSED" not in bf16


def test_bad_arguments_are_refused():
    from argparse import Namespace

    from engine.errors import InputError

    with pytest.raises(InputError, match="image-size"):
        main(Namespace(image_size="large"))
    with pytest.raises(InputError, match="repeats"):
        main(Namespace(repeats=-1))
