"""benchmarks/gpu_pack.py and benchmarks/gpu_grid.py: the parts fit the device tool's carry limit, hold byte copies
of every item once, and the grid runs in priority order, resumes, respects its budget and packs no weights."""

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pack = load("gpu_pack")
grid = load("gpu_grid")


def test_pack_parts_puts_every_item_in_one_part_under_the_capacity():
    items = {"data/ravdess": 49, "models/base": 39, "data/emovo": 28, "data/urdu": 19, "data/eyase": 18, "whl": 3}
    parts = pack.pack_parts(items, capacity=59)
    assert sorted(i for p in parts for i in p) == sorted(items)
    assert all(sum(items[i] for i in p) <= 59 for p in parts)
    assert len(parts) == 3  # 156 units: three parts is the fewest possible
    with pytest.raises(ValueError, match=r"data/ravdess is .* more than one call can carry"):
        pack.pack_parts(items, capacity=40)


def test_tree_bytes_counts_what_the_device_tool_sends_and_not_an_ignored_virtualenv(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    (tmp_path / "code.py").write_bytes(b"x" * 100)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "big.so").write_bytes(b"x" * 10_000)
    assert pack.tree_bytes(tmp_path) == 100 + (tmp_path / ".gitignore").stat().st_size


def test_run_calls_copy_each_part_and_the_last_runs_the_grid():
    calls = pack.run_calls(["part1", "part2", "part3"], "python3 benchmarks/gpu_grid.py")
    assert [c["carry"] for c in calls] == [[".gpu/part1"], [".gpu/part2"], [".gpu/part3"]]
    assert all(f"cp -a .gpu/part{i}/. {pack.MACHINE_ROOT}/" in c["command"] for i, c in enumerate(calls, 1))
    assert "gpu_grid.py" in calls[-1]["command"] and not any("gpu_grid" in c["command"] for c in calls[:-1])
    assert all(len(c["command"]) <= 2000 and c["timeout_s"] <= 600 for c in calls)


def test_pack_main_copies_bytes_and_writes_the_manifest(tmp_path, monkeypatch):
    # the checkout's own size (a .venv or runs/ inside it) is not this test's business
    monkeypatch.setattr(pack, "tree_bytes", lambda repo: 5 * pack.MIB)
    corpus = tmp_path / "urdu-16k"
    (corpus / "Angry").mkdir(parents=True)
    (corpus / "Angry" / "SM1_F1_A01.wav").write_bytes(b"\x01\x02" * 1000)
    model = tmp_path / "whisper-x"
    model.mkdir()
    (model / "config.json").write_text("{}")
    out = tmp_path / "gpu"
    manifest = pack.main(
        ["--data_dir", f"urdu={corpus}", "--model_dir", str(model), "--wheels", "--output_dir", str(out)]
    )
    items = {i: n for part in manifest["parts"].values() for i, n in part.items()}
    assert items == {"data/urdu-16k": 2000, "models/whisper-x": 2}
    copied = next(out.glob("part*/data/urdu-16k/Angry/SM1_F1_A01.wav"))
    assert copied.read_bytes() == (corpus / "Angry" / "SM1_F1_A01.wav").read_bytes()
    assert json.loads((out / "manifest.json").read_text())["parts"] == manifest["parts"]
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):  # nothing made earlier is replaced silently
        pack.main(["--data_dir", f"urdu={corpus}", "--wheels", "--output_dir", str(out)])
    with pytest.raises(SystemExit, match="not NAME=DIR"):
        pack.main(["--data_dir", str(corpus), "--wheels", "--output_dir", str(tmp_path / "other")])


def test_grid_runs_in_priority_order_with_existing_configs(tmp_path):
    runs = grid.grid_runs(tmp_path, tmp_path / "runs", extra=["--dataloader_num_workers", "3"])
    names = [(out.parts[-3], out.parts[-2]) for out, _ in runs]
    assert names[:4] == [("multi_whisper_base", "seed_42")] * 4
    assert names[4:8] == [("ravdess_whisper_base_lora", "seed_42")] * 4
    assert names[-8:] == [("multi_whisper_base", "seed_43")] * 4 + [("ravdess_whisper_base_lora", "seed_43")] * 4
    assert len({out for out, _ in runs}) == len(runs) == 28
    for out, args in runs:
        assert (ROOT / args[0]).is_file()
        assert args[args.index("--output_dir") + 1] == str(out) and args[-2:] == ["--dataloader_num_workers", "3"]
        assert args[args.index("--model_name_or_path") + 1] == str(tmp_path / "models" / "whisper-base-encoder")
    multi = runs[0][1]
    assert multi[multi.index("--data_dir") + 1].split(",")[0] == f"ravdess={tmp_path / 'data' / 'ravdess-16k'}"


FAKE = """import sys, pathlib, time
out = pathlib.Path(sys.argv[sys.argv.index('--output_dir') + 1])
time.sleep(0.2)
out.mkdir(parents=True)
(out / 'metrics.json').write_text('{}')
(out / 'model.safetensors').write_bytes(b'0')
(out / 'checkpoint-1').mkdir()
(out / 'checkpoint-1' / 'trainer_state.json').write_text('{}')
"""


def test_run_queue_trains_resumes_and_stops_at_its_budget(tmp_path):
    script = tmp_path / "fake_finetune.py"
    script.write_text(FAKE)
    runs = [
        (
            tmp_path / "runs" / "fam" / "seed_42" / f"fold_{k}",
            ["--output_dir", str(tmp_path / "runs" / "fam" / "seed_42" / f"fold_{k}")],
        )
        for k in range(3)
    ]
    kept = runs[1][0]
    kept.mkdir(parents=True)
    (kept / "metrics.json").write_text('{"kept": true}')
    lines = []
    codes = grid.run_queue(runs, jobs=2, budget_s=60, script=str(script), env={}, log=lines.append)
    assert codes == {str(runs[0][0]): 0, str(kept): "kept", str(runs[2][0]): 0}
    assert json.loads((kept / "metrics.json").read_text()) == {"kept": True}
    later = [(tmp_path / "runs" / "fam" / "seed_43" / "fold_0", ["--output_dir", str(tmp_path / "x")])]
    assert grid.run_queue(later, jobs=2, budget_s=0, script=str(script), env={}, log=lines.append) == {}
    assert any("not started (budget)" in line for line in lines)


def test_report_spec_and_results_pack(tmp_path):
    runs_dir = tmp_path / "runs"
    assert grid.report_spec(tmp_path, runs_dir, {"device": "cpu"}) is None
    for family in ("multi_whisper_base", "urdu_whisper_base_lora"):
        fold = runs_dir / family / "seed_42" / "fold_0"
        (fold / "checkpoint-5").mkdir(parents=True)
        (fold / "metrics.json").write_text("{}")
        (fold / "model.safetensors").write_bytes(b"0" * 10)
        (fold / "checkpoint-5" / "trainer_state.json").write_text("{}")
    spec = grid.report_spec(tmp_path, runs_dir, {"device": "cpu"})
    assert list(spec["in_corpus"][0]["single"]) == ["urdu"]
    assert spec["data_dir"]["emovo"] == str(tmp_path / "data" / "emovo-16k")
    tar = grid.pack_results(runs_dir, tmp_path / "report", tmp_path / "missing.log", tmp_path / "out")
    with tarfile.open(tar) as t:
        names = t.getnames()
    assert "runs/multi_whisper_base/seed_42/fold_0/metrics.json" in names
    assert not any(n.endswith("model.safetensors") or "checkpoint-" in n for n in names)
    assert grid.kept_in_results(Path("multi_whisper_base/seed_42/fold_2/adapter/adapter_model.safetensors"))
    assert not grid.kept_in_results(Path("urdu_whisper_base_lora/seed_42/fold_2/adapter/adapter_model.safetensors"))
    assert not grid.kept_in_results(Path("multi_whisper_base/seed_42/fold_2/checkpoint-9/trainer_state.json"))


def test_gpu_grid_stops_without_wheels(tmp_path):
    with pytest.raises(SystemExit, match="holds no wheels"):
        grid.prepare(tmp_path)


def test_run_queue_stops_runs_at_stop_s_and_restarts_cut_off_ones(tmp_path):
    script = tmp_path / "slow_finetune.py"
    script.write_text("import time; time.sleep(60)\n")
    out = tmp_path / "runs" / "fam" / "seed_42" / "fold_0"
    (out / "checkpoint-3").mkdir(parents=True)  # cut off by an earlier call: no metrics.json
    lines = []
    codes = grid.run_queue([(out, [])], jobs=1, budget_s=60, script=str(script), env={}, log=lines.append, stop_s=2)
    assert codes == {str(out): "stopped"} and not out.exists()
    assert any("removed an unfinished run" in line for line in lines)
    assert any("stopped (--stop_s)" in line for line in lines)


def test_tree_bytes_outside_git_counts_every_file_but_runs_and_parts(tmp_path):
    (tmp_path / "ser_hf").mkdir()
    (tmp_path / "ser_hf" / "a.py").write_text("x" * 100)
    for skipped in ("runs", ".gpu", ".git"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "big").write_text("y" * 1000)
    assert pack.tree_bytes(tmp_path) == 100
    assert pack.tree_bytes(ROOT) > 0
