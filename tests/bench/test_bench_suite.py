"""bench/bench_suite.py: the capture suite's specs, its commands, and a smoke run at a tiny budget."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench_module import bench_module

@pytest.fixture(scope="module")
def bench():
    with bench_module("bench_suite") as module:
        yield module


def test_specs_are_distinct_and_valid(bench):
    specs = bench.SUITE
    assert len(specs) >= 9
    assert len({s.name for s in specs}) == len(specs) and len({s.seed for s in specs}) == len(specs)
    configs = [s.config() for s in specs]  # every spec is a valid SynthConfig
    settings = [json.dumps(s.synth, sort_keys=True) for s in specs]
    assert len(set(settings)) == len(specs)
    assert {c.seed for c in configs} == {s.seed for s in specs}


def test_a_third_is_held_out_with_disjoint_seeds(bench):
    held = [s for s in bench.SUITE if s.held_out]
    dev = [s for s in bench.SUITE if not s.held_out]
    assert len(held) == 3 and len(held) * 3 == len(bench.SUITE)
    assert not {s.seed for s in held} & {s.seed for s in dev}
    assert bench.suite() == dev
    assert bench.suite(include_held_out=True) == list(bench.SUITE)
    with pytest.raises(ValueError, match="held-out"):
        bench.suite(only=[held[0].name])
    with pytest.raises(ValueError, match="unknown"):
        bench.suite(only=["nope"])


def test_suite_varies_what_real_captures_vary(bench):
    configs = [s.config() for s in bench.SUITE]
    dev = [s.config() for s in bench.SUITE if not s.held_out]
    for group in (configs, dev):
        assert {c.motion for c in group} >= {"sway", "dance"}  # small and large motion
        assert any(c.image_format == "jpg" for c in group) and any(c.body_format == "smpl-like" for c in group)
        assert any(c.distortion for c in group) and any(c.lighting != "studio" for c in group)
        assert {e for c in group for e in c.mask_errors} == {"erode", "dilate", "ragged", "holes"}
        assert min(c.train_views for c in group) == 3 and max(c.train_views for c in group) == 6
        assert min(c.resolution for c in group) == 256 and max(c.resolution for c in group) >= 448
        assert len({c.phenotype for c in group}) == len(group) and len({c.top_pattern for c in group}) >= 3
    assert all(256 <= c.resolution <= 512 and 3 <= c.train_views <= 6 for c in configs)


def test_synth_argv_round_trips_through_the_cli(bench):
    import argparse

    from neuralbody.cli import synth as synth_cli

    for spec in bench.SUITE:
        for tiny in (False, True):
            config = spec.config(tiny=tiny)
            parser = argparse.ArgumentParser()
            synth_cli.add_arguments(parser)
            parsed = synth_cli.config_from_args(parser.parse_args(["OUT", *bench.synth_argv(config)]))
            assert dataclasses.asdict(parsed) == dataclasses.asdict(config), spec.name


def test_training_split_only_for_captures_without_meta(bench):
    by_format = {s.config().body_format: s.config() for s in bench.SUITE}
    assert bench.train_split_argv(by_format["anny"]) == []
    config = by_format["smpl-like"]
    argv = bench.train_split_argv(config)
    views = [int(v) for v in argv[argv.index("--views") + 1].split(",")]
    assert len(views) == config.train_views and argv[argv.index("--frames") + 1] == f"0:{-(-2 * config.frames // 3)}"


def test_table_and_means(bench):
    settings = dataclasses.asdict(bench.SUITE[0].config())
    rows = [
        bench.SuiteRow("a", 1, False, 10, {"novel_view": {"psnr_box": 20.0, "ssim_box": 0.8, "images": 4},
                                           "novel_pose": {"psnr_box": 19.0, "ssim_box": 0.7, "images": 4}}, 1.0, settings),
        bench.SuiteRow("b", 2, True, 12, {"novel_view": {"psnr_box": 24.0, "ssim_box": 0.9, "images": 4},
                                          "novel_pose": {"psnr_box": 23.0, "ssim_box": 0.8, "images": 4}}, 1.0, settings),
    ]  # fmt: skip
    means = bench.suite_means(rows)
    assert means["novel_view.psnr_box"] == pytest.approx(22.0) and means["novel_pose.ssim_box"] == pytest.approx(0.75)
    rows[0].clean_means = {"novel_view": {"psnr_box": 26.0, "ssim_box": 0.9, "images": 4}}
    rows[1].clean_means = {"novel_view": {"psnr_box": 30.0, "ssim_box": 0.9, "images": 4}}
    assert bench.suite_means(rows, clean=True)["novel_view.psnr_box"] == pytest.approx(28.0)
    table = bench.format_table(rows)
    assert "b*" in table and "22.00" in table and "21.00" in table and "28.00" in table and "over 2 captures" in table
    rows[1].means.pop("novel_pose")
    assert bench.suite_means(rows)["novel_pose.psnr_box"] is None  # a missing split is not averaged away


def test_labels_keep_two_versions_apart(bench):
    assert bench.run_name("wave-slim", "full", "250steps") == "wave-slim-full-250steps"
    assert bench.run_name("wave-slim", "full", "250steps", "v2") == "wave-slim-full-250steps-v2"


@pytest.mark.anny
def test_smoke_run_at_a_tiny_budget(bench, tmp_path, capsys):
    """One capture at 64 px, 2 training steps: synth, train, eval (zju) through the CLI, the table, the JSON;
    its mask errors make a clean twin to score against too."""
    code = bench.main(["--work", str(tmp_path), "--tiny", "--steps", "2", "--only", "dots-dark-warm", "--max-frames", "1"])
    assert code == 0
    document = json.loads((tmp_path / "suite.json").read_text())
    assert document["protocol"] == "zju" and document["budget"] == {"steps": 2} and len(document["captures"]) == 1
    row = document["captures"][0]
    assert row["steps"] == 2 and row["settings"]["body_format"] == "smpl-like"
    assert set(row["means"]) == {"novel_view", "novel_pose"}
    assert 0 < row["means"]["novel_view"]["psnr_box"] < 60
    clean = row["clean_means"]["novel_view"]["psnr_box"]
    assert 0 < clean < 60 and clean != pytest.approx(row["means"]["novel_view"]["psnr_box"], abs=1e-6)
    assert (tmp_path / "captures" / "dots-dark-warm-tiny-clean" / "Camera_00" / "000000.jpg").is_file()
    out = capsys.readouterr().out
    assert "dots-dark-warm" in out and "mean" in out
    capture = tmp_path / "captures" / "dots-dark-warm-tiny"
    assert not (capture / "neuralbody.json").exists() and (capture / "Camera_00" / "000000.jpg").is_file()
