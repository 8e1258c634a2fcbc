import pytest
from kedro.io.core import DatasetError

from alignment_stages.datasets import PreferenceFilesDataset


def test_lists_nested_files_skips_hidden_and_reads_lazily(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    (tmp_path / "sub" / "b.csv").write_bytes(b"x\n1\n")
    (tmp_path / ".gitkeep").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.jsonl").write_bytes(b"{}\n")
    files = PreferenceFilesDataset(path=str(tmp_path)).load()
    assert list(files) == ["a.jsonl", "sub/b.csv"]
    assert files["sub/b.csv"]() == b"x\n1\n"


@pytest.mark.parametrize("setup", ["missing", "empty", "only_other_files"])
def test_no_preference_files_is_a_clear_error(tmp_path, setup):
    folder = tmp_path / "preferences"
    if setup != "missing":
        folder.mkdir()
    if setup == "only_other_files":
        (folder / "README.md").write_text("notes")
    with pytest.raises(DatasetError, match="No preference files found .* Put your preference data"):
        PreferenceFilesDataset(path=str(folder)).load()


def test_saving_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    with pytest.raises(DatasetError, match="read-only"):
        PreferenceFilesDataset(path=str(tmp_path)).save({"a.jsonl": b""})
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]
