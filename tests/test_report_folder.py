"""The one writer of report folders: refuse, replace only its own files, write atomically."""

import pytest

from ser_hf.reports.folder import ReportFolder


def test_a_report_folder_refuses_then_replaces_only_its_own_files(tmp_path):
    folder = ReportFolder(tmp_path / "r", ("report.json", "report.md"))
    folder.check()  # nothing there yet
    folder.write_json("report.json", {"a": 1})
    (tmp_path / "r" / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match=r"r already holds report.json; .*--overwrite_output_dir"):
        folder.check()
    folder.check(overwrite=True)
    folder.write_json("report.json", {"a": 2})
    assert (tmp_path / "r" / "report.json").read_text() == '{\n  "a": 2\n}\n'
    assert (tmp_path / "r" / "notes.md").read_text() == "mine"
    with pytest.raises(ValueError, match="'notes.md' is not one of the report's files"):
        folder.write_text("notes.md", "x")


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    folder = ReportFolder(tmp_path, ("report.md",))
    folder.write_text("report.md", "old")
    with pytest.raises(RuntimeError), folder.atomic("report.md") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert (tmp_path / "report.md").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
