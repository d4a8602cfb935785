"""`conductor_report`: a Conductor's scores on a world's split, overall and typed / spoken."""

import json

import pytest
from micro_world import micro_world, one_torch_thread

from mavid.train.data import iter_samples
from mavid.train.evaluate import conductor_report, conductor_score, main
from mavid.train.stage1 import ConductorTask, examples_of


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    with one_torch_thread():
        task = ConductorTask(examples_of(iter_samples(world)), batch_size=2, seed=0)
        return task.save(tmp_path_factory.mktemp("conductor") / "model")


def test_the_report_splits_the_score_by_how_the_visitor_asked(world, model_dir):
    with one_torch_thread():
        report, predictions = conductor_report(model_dir, world, "train", max_new_tokens=8,
                                               progress=False)  # fmt: skip
    samples = list(iter_samples(world))
    n_typed = sum(s.plan.typed for s in samples)
    assert 0 < n_typed < len(samples)  # the micro world has both kinds
    assert report["all"].count == len(samples) == len(predictions)
    assert (report["typed"].count, report["spoken"].count) == (n_typed, len(samples) - n_typed)
    shares = [report[k].intent_accuracy * report[k].count for k in ("typed", "spoken")]
    assert sum(shares) == pytest.approx(report["all"].intent_accuracy * len(samples))
    with one_torch_thread():
        score, same = conductor_score(model_dir, world, "train", max_new_tokens=8, progress=False)
    assert score == report["all"] and same == predictions


def test_the_module_prints_the_report_as_json(world, model_dir, capsys):
    main([str(model_dir), str(world), "--split", "train", "--limit", "2"])
    out = json.loads(capsys.readouterr().out)
    assert out["all"]["count"] == 2 and set(out) <= {"all", "typed", "spoken"}
