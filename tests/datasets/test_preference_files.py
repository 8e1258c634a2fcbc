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


def test_a_folder_allowed_to_be_empty_loads_as_no_files(tmp_path):
    """conf/smollm2: the published sets are the data; the folder may hold a team's own files."""
    folder = tmp_path / "smollm2_preferences"
    folder.mkdir()
    (folder / ".gitkeep").write_bytes(b"")
    assert dict(PreferenceFilesDataset(path=str(folder), allow_empty=True).load()) == {}
    assert (
        dict(PreferenceFilesDataset(path=str(tmp_path / "absent"), allow_empty=True).load()) == {}
    )


def test_saving_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    with pytest.raises(DatasetError, match="read-only"):
        PreferenceFilesDataset(path=str(tmp_path)).save({"a.jsonl": b""})
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]


def _linked_folders(tmp_path):
    """raw/ with a link to a file outside it, a link to a folder outside it, and a link to a
    file of its own; and a link loop."""
    raw, outside = tmp_path / "raw", tmp_path / "elsewhere"
    (outside / "dir").mkdir(parents=True)
    raw.mkdir()
    (outside / "secret.jsonl").write_bytes(b'{"outside": 1}\n')
    (outside / "dir" / "more.jsonl").write_bytes(b'{"outside": 2}\n')
    (raw / "own.jsonl").write_bytes(b"{}\n")
    (raw / "secret.jsonl").symlink_to(outside / "secret.jsonl")
    (raw / "linked_dir").symlink_to(outside / "dir", target_is_directory=True)
    (raw / "again.jsonl").symlink_to(raw / "own.jsonl")
    (outside / "dir" / "loop").symlink_to(outside / "dir", target_is_directory=True)
    return raw, outside


def test_links_out_of_the_folder_are_marked_and_a_linked_folder_is_a_folder(tmp_path):
    raw, outside = _linked_folders(tmp_path)
    files = PreferenceFilesDataset(path=str(raw)).load()
    # The linked folder is walked (its file, not the folder, is listed), the loop once; the
    # link to a file of the folder itself is not read a second time.
    assert list(files) == ["linked_dir/more.jsonl", "own.jsonl", "secret.jsonl"]
    assert files.outside == {
        "linked_dir/more.jsonl": str((outside / "dir" / "more.jsonl").resolve()),
        "secret.jsonl": str((outside / "secret.jsonl").resolve()),
    }
    assert files["linked_dir/more.jsonl"]() == b'{"outside": 2}\n'
