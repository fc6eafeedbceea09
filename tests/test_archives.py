"""Archives: unpacked once, atomically and safely, into the cache; a missing path says what to pass."""

import os
import tarfile

import pytest

from pldistill.data.archives import data_folder, find_root, unpack
from real_layouts import make_tar, tar_with


@pytest.fixture
def archive(tmp_path):
    src = tmp_path / "src"
    (src / "train" / "cat").mkdir(parents=True)
    (src / "train" / "cat" / "1.txt").write_text("meow")
    return make_tar(src, tmp_path / "toy.tar.gz", arcname="toy")


def test_an_archive_is_unpacked_once_into_the_cache_and_reused(tmp_path, archive, capsys):
    folder = data_folder(archive, "toy", "toy.tar.gz", cache_dir=tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" / "archives" and folder.name.startswith("toy-")
    assert (folder / "toy" / "train" / "cat" / "1.txt").read_text() == "meow"
    assert "unpacking" in capsys.readouterr().out
    (folder / "toy" / "marker").write_text("kept")  # a second call must not unpack again
    assert data_folder(archive, "toy", "toy.tar.gz", cache_dir=tmp_path / "cache") == folder
    assert (folder / "toy" / "marker").exists() and "unpacking" not in capsys.readouterr().out
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind
    assert find_root(folder, "train", "toy") == folder / "toy"  # the archive's wrapping folder is looked through


def test_a_replaced_archive_is_unpacked_again(tmp_path, archive):
    first = unpack(archive, tmp_path / "cache")
    os.utime(archive, ns=(1, 1))
    assert unpack(archive, tmp_path / "cache") != first


def test_a_folder_is_used_as_it_is_and_a_missing_path_finds_its_archive_beside_it(tmp_path, archive):
    assert data_folder(tmp_path, "x", "y") == tmp_path
    via_stem = data_folder(tmp_path / "toy", "toy", "toy.tar.gz", cache_dir=tmp_path / "cache")
    assert (via_stem / "toy" / "train").is_dir()


def test_a_missing_path_is_one_line_naming_it_and_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data_folder(tmp_path / "data" / "cifar10-jpeg", "CIFAR-10", "../shared/data/cifar10-jpeg.tar.gz")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "data" / "cifar10-jpeg") in message
    assert "../shared/data/cifar10-jpeg.tar.gz" in message and "never downloads" in message


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "ok/../../evil.txt"])
def test_members_that_would_land_outside_the_folder_are_refused(tmp_path, name):
    bad = tar_with(tmp_path / "bad.tar.gz", name)
    with pytest.raises(ValueError, match="refusing to unpack"):
        unpack(bad, tmp_path / "cache")
    assert not (tmp_path / "evil.txt").exists() and not list((tmp_path / "cache" / "archives").iterdir())


def test_links_are_refused(tmp_path):
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("data/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="only files and folders"):
        unpack(path, tmp_path / "cache")
