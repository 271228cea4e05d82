import collections
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import utils


def draw():
    return random.random(), np.random.rand(), torch.rand(3).tolist()


def test_seeding_makes_runs_repeatable_and_seeds_differ():
    utils.seed_everything(7)
    first = draw()
    utils.seed_everything(7)
    assert draw() == first
    utils.seed_everything(8)
    assert draw() != first


def test_atomic_json_leaves_old_file_and_no_temp_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "results" / "problem9.json"
    utils.write_json_atomic(target, {"version": 1})

    def dump_half_then_interrupt(payload, handle, **kwargs):
        handle.write('{"version": 2, "half')
        raise KeyboardInterrupt

    monkeypatch.setattr(utils.json, "dump", dump_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        utils.write_json_atomic(target, {"version": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in target.parent.iterdir()] == ["problem9.json"]


def test_a_checkpoint_write_on_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """torch.save reports a full disk as RuntimeError('basic_ios::clear: iostream error')."""
    def write_part_then_fail(obj, path):
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . basic_ios::clear: iostream error")

    def usage_while_the_part_is_there(path):  # full while the partial checkpoint takes the space
        free = 0 if any(tmp_path.iterdir()) else 1 << 30
        return collections.namedtuple("usage", "total used free")(1 << 30, (1 << 30) - free, free)

    monkeypatch.setattr(utils.torch, "save", write_part_then_fail)
    monkeypatch.setattr(utils.shutil, "disk_usage", usage_while_the_part_is_there)
    target = tmp_path / "source_seed0.pt"
    with pytest.raises(utils.UserError) as raised:
        utils.save_atomic({"w": 1}, target)
    assert str(raised.value) == f"{target}: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_write_that_fails_otherwise_names_the_error(tmp_path, monkeypatch):
    def refuse(obj, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(utils.torch, "save", refuse)
    with pytest.raises(utils.UserError, match=r"source_seed0.pt: cannot be written \(.*Permission denied"):
        utils.save_atomic({"w": 1}, tmp_path / "source_seed0.pt")


def run_main_on(body):
    """utils.run_main on a main() whose one line is `body`, in a fresh interpreter."""
    import subprocess
    import sys
    code = f"import utils\ndef main():\n    {body}\nutils.run_main(main)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=utils.PROJECT_ROOT / "src",
                          capture_output=True, text=True)


def test_user_error_is_one_line_and_exit_code_2(tmp_path):
    result = run_main_on("raise utils.UserError('data/x.mat: has no variable X')")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: data/x.mat: has no variable X"]
    assert "Traceback" not in result.stderr


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    parser = utils.common_parser("x", resumable=True)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for flag in ("--out", "--runs-dir"):
        for value in (a_file, a_file / "below"):
            with pytest.raises(SystemExit) as stopped:
                parser.parse_args([flag, str(value)])
            assert stopped.value.code == 2
            assert f"{a_file} is a file, not a folder" in capsys.readouterr().err
    assert parser.parse_args(["--out", str(tmp_path / "new" / "folder")]).out == tmp_path / "new" / "folder"
    assert a_file.read_text() == "mine"
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", str(tmp_path / "dangling")])
    assert "is a link to nothing" in capsys.readouterr().err


def test_the_default_output_folders_are_checked_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("a file where the checkpoints would go")
    with pytest.raises(SystemExit):
        utils.common_parser("x", resumable=True).parse_args([])
    assert "runs is a file, not a folder" in capsys.readouterr().err


def test_an_os_error_without_a_file_name_is_one_clean_line():
    result = run_main_on("raise OSError(28, 'No space left on device')")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: No space left on device"]


def test_an_os_error_mid_run_is_one_line_naming_the_file():
    result = run_main_on("open('/proc/no-such-dir/results.json', 'w')")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: /proc/no-such-dir/results.json: No such file or directory"]


def test_cuda_without_a_gpu_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # never the case on the CPU-only CI machine
    with pytest.raises(utils.UserError, match="CUDA"):
        utils.choose_device("cuda")


def test_given_paths_are_told_apart_from_defaults():
    parser = utils.common_parser("x")
    parser.add_argument("--data-dir", action=utils.PathFlag, default="data/p")
    assert parser.parse_args([]).given_paths == []
    assert parser.parse_args(["--data-dir", "data/p"]).given_paths == ["data_dir"]


def test_checkpoints_resume_and_are_keyed_on_the_config(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    first = utils.Checkpoints(tmp_path, "p", {"seed": 0})
    assert first.stage("train", compute) == {"value": 1}
    again = utils.Checkpoints(tmp_path, "p", {"seed": 0})
    assert again.stage("train", compute) == {"value": 1} and again.resumed == ["train"]
    # a resumed stage keeps the time it took when computed: the run's compute time stays true
    assert again.timings["train"] == first.timings["train"] and again.resumed_seconds == first.timings["train"]
    other = utils.Checkpoints(tmp_path, "p", {"seed": 1})
    assert other.stage("train", compute) == {"value": 2}
    fresh = utils.Checkpoints(tmp_path, "p", {"seed": 0}, fresh=True)
    assert fresh.stage("train", compute) == {"value": 3}


def test_a_stage_computed_by_other_code_is_computed_again_but_not_for_an_appendix_edit(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text("a = 1\n\n\n# Appendix: plots\ncolour = 'red'\n")
    first = utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script])
    assert first.stage("train", lambda: 1) == 1
    script.write_text("a = 1\n\n\n# Appendix: plots\ncolour = 'blue'\n")  # a figure's edit
    plot_edit = utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script])
    assert plot_edit.stage("train", lambda: 2) == 1 and plot_edit.resumed == ["train"]
    script.write_text("a = 2\n\n\n# Appendix: plots\ncolour = 'blue'\n")  # the method changed
    changed = utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script])
    assert changed.stage("train", lambda: 3) == 3 and changed.resumed == []
    assert "[train]" in (said := capsys.readouterr().out) and "computed by other code than this" in said
    again = utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script])
    assert again.stage("train", lambda: 4) == 3  # and what the new code computed is resumed


def test_a_file_of_a_stage_half_done_resumes_only_under_the_code_that_began_it(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("a = 1\n")
    first = utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script])
    first.begin("train")  # an epoch-wise training saves its file after each epoch
    first.path("train_epochs.pt").write_bytes(b"epoch 1")
    assert utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script]).reusable(
        "train", first.path("train_epochs.pt"))
    script.write_text("a = 2\n")
    assert not utils.Checkpoints(tmp_path / "runs", "p", {"seed": 0}, code=[script]).reusable(
        "train", first.path("train_epochs.pt"))


def test_data_fingerprint_changes_when_the_data_does(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.png").write_bytes(b"12345")
    first = utils.data_fingerprint(tmp_path / "train")
    assert utils.data_fingerprint(tmp_path / "train") == first
    (tmp_path / "train" / "b.png").write_bytes(b"x")
    assert utils.data_fingerprint(tmp_path / "train") != first


def test_an_unreadable_checkpoint_is_named_in_one_line_and_computed_again(tmp_path, capsys):
    config = {"a": 1}
    first = utils.Checkpoints(tmp_path, "p", config)
    assert first.stage("answer", lambda: {"value": 1}) == {"value": 1}
    first.path("answer.pt").write_bytes(b"truncated")  # an interrupted copy, a full disk
    (first.directory / "timings.json").write_text('{"answer": 1.')
    capsys.readouterr()
    again = utils.Checkpoints(tmp_path, "p", config)
    assert again.stage("answer", lambda: {"value": 2}) == {"value": 2}
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert len(warnings) == 2 and "answer.pt is unreadable" in warnings[-1]
    assert again.resumed == [] and utils.Checkpoints(tmp_path, "p", config).stage("answer", lambda: None) == {"value": 2}
    # which code made the stages is unreadable: named, and the stage is computed again
    (first.directory / "code.json").write_text("")
    third = utils.Checkpoints(tmp_path, "p", config)
    assert third.stage("answer", lambda: {"value": 3}) == {"value": 3}
    assert "code.json is unreadable" in capsys.readouterr().out
