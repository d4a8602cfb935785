"""build_world: manifest, reader, determinism across worker counts, resume after interruption."""

import json
import shutil

import pytest

from mavid.data.build import WorldConfig, build_world
from mavid.data.shards import MANIFEST, WorldDataset

SHORT = ("greeting", "wifi", "check_item", "thanks", "goodbye")  # short answers: a fast test


def _cfg(out, **kw):
    return WorldConfig(
        out=out, seed=11, samples=5, workers=0, shard_size=2, progress=False, intents=SHORT, **kw
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return out, build_world(_cfg(out))


def test_manifest_and_reader(world):
    out, manifest = world
    assert (out / MANIFEST).exists()
    assert [s["name"] for s in manifest["shards"]] == [
        "shard-00000.tar",
        "shard-00001.tar",
        "shard-00002.tar",
    ]
    assert sum(manifest["splits"].values()) == 5
    assert manifest["bytes"] > 0 and len(manifest["intents"]) >= 30
    total = 0
    for split, count in manifest["splits"].items():
        ds = WorldDataset(out, split)
        got = list(ds)
        assert len(ds) == count == len(got)
        assert all(s.split == split for s in got)
        total += len(got)
    assert total == 5
    with pytest.raises(ValueError, match="unknown split"):
        WorldDataset(out, "dev")


def test_same_seed_same_bytes_with_a_process_pool(world, tmp_path):
    out, _ = world
    cfg = WorldConfig(
        tmp_path, seed=11, samples=5, workers=2, shard_size=2, progress=False, intents=SHORT
    )
    manifest = build_world(cfg)
    for shard in manifest["shards"]:
        assert (tmp_path / shard["name"]).read_bytes() == (out / shard["name"]).read_bytes()


def test_resume_skips_complete_shards(world, tmp_path):
    out, _ = world
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    keep = tmp_path / "shard-00000.tar"
    stamp = keep.stat().st_mtime_ns
    # an interrupted run: shard 1 never renamed into place, a stale temp file left behind
    (tmp_path / "shard-00001.tar").unlink()
    (tmp_path / "shard-00001.tar.tmp").write_bytes(b"partial")
    manifest = build_world(_cfg(tmp_path))
    assert keep.stat().st_mtime_ns == stamp  # not rebuilt
    assert not list(tmp_path.glob("*.tmp"))
    assert (tmp_path / "shard-00001.tar").read_bytes() == (out / "shard-00001.tar").read_bytes()
    assert sum(manifest["splits"].values()) == 5
    assert json.loads((tmp_path / MANIFEST).read_text())["seed"] == 11


def test_bad_config_and_mismatched_folder(world):
    out, _ = world
    with pytest.raises(ValueError, match="samples"):
        WorldConfig(out=out, samples=0)
    with pytest.raises(ValueError, match="seed 11"):
        build_world(WorldConfig(out=out, seed=12, samples=5, shard_size=2, intents=SHORT))
    with pytest.raises(FileNotFoundError, match="build the world"):
        WorldDataset(out / "nowhere", "train")


def test_a_smaller_build_over_a_bigger_world_is_refused_and_changes_nothing(world):
    out, manifest = world
    before = (out / MANIFEST).read_bytes()
    with pytest.raises(ValueError, match="holds 5 samples"):
        build_world(WorldConfig(out=out, seed=11, samples=3, workers=0, shard_size=2,
                                progress=False, intents=SHORT))  # fmt: skip
    assert (out / MANIFEST).read_bytes() == before
    assert build_world(_cfg(out))["splits"] == manifest["splits"]  # the same size: a no-op
