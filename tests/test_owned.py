"""doctune.owned: doctune deletes or overwrites only folders and files it created (the .doctune-owned marker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctune.config import ConfigError
from doctune.owned import MARKER, NotOwnedError, check_file, claim_dir, is_owned, mark_owned, replace_dir


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "precious.txt").write_text("keep me", encoding="utf-8")
    return path


def test_replace_dir_removes_only_missing_empty_or_marked_folders(tmp_path: Path) -> None:
    replace_dir(tmp_path / "missing")  # nothing to do
    (tmp_path / "empty").mkdir()
    replace_dir(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()

    ours = claim_dir(tmp_path / "ours", by="test")
    (ours / "data.bin").write_bytes(b"x")
    replace_dir(ours)
    assert not ours.exists()

    user = _user_folder(tmp_path / "user")
    with pytest.raises(NotOwnedError) as info:
        replace_dir(user)
    message = str(info.value)
    assert str(user) in message and "remove it yourself" in message and "\n" not in message
    assert isinstance(info.value, ConfigError) and info.value.path == user
    assert (user / "precious.txt").read_text(encoding="utf-8") == "keep me"

    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(NotOwnedError, match="not a folder"):
        replace_dir(tmp_path / "file")


def test_symlinks_are_never_followed_to_delete(tmp_path: Path) -> None:
    target = claim_dir(tmp_path / "target", by="test")  # even a folder doctune owns
    (target / "data.bin").write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(NotOwnedError, match="symbolic link"):
        replace_dir(link)
    with pytest.raises(NotOwnedError, match="symbolic link"):
        claim_dir(link, by="test")
    assert (target / "data.bin").exists() and link.is_symlink()

    (target / "card.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(NotOwnedError, match="symbolic link"):
        check_file(target / "card.md")


def test_claim_dir_marks_new_and_empty_folders_only(tmp_path: Path) -> None:
    new = claim_dir(tmp_path / "a" / "b", by="doctune test")
    assert is_owned(new) and not is_owned(tmp_path / "a")
    marker = json.loads((new / MARKER).read_text(encoding="utf-8"))
    assert marker["owner"] == "doctune" and marker["written_by"] == "doctune test"
    assert str(tmp_path) not in (new / MARKER).read_text(encoding="utf-8")  # no paths in the marker
    (tmp_path / "empty").mkdir()
    assert is_owned(claim_dir(tmp_path / "empty", by="test"))
    assert claim_dir(new, by="test") == new  # owned: used as it is

    user = _user_folder(tmp_path / "user")
    with pytest.raises(NotOwnedError, match="no .doctune-owned marker"):
        claim_dir(user, by="test")
    assert not (user / MARKER).exists()
    mark_owned(user, by="the user, by hand")  # a marker written by hand hands the folder over
    assert claim_dir(user, by="test") == user


def test_check_file_replaces_existing_files_only_in_owned_folders(tmp_path: Path) -> None:
    user = _user_folder(tmp_path / "user")
    assert check_file(user / "new.gguf") == user / "new.gguf"  # a new file may go anywhere
    with pytest.raises(NotOwnedError, match="no .doctune-owned marker"):
        check_file(user / "precious.txt")
    ours = claim_dir(tmp_path / "ours", by="test")
    (ours / "README.md").write_text("old", encoding="utf-8")
    assert check_file(ours / "README.md") == ours / "README.md"
