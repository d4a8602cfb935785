"""The reference report: JSON, Markdown table and contact sheet from a tiny built world."""

import json

from PIL import Image

from mavid.data.build import WorldConfig, build_world
from mavid.eval.report import EvalConfig, markdown_table, reference_main


def test_reference_report_on_a_tiny_world(tmp_path, capsys):
    world = tmp_path / "world"
    build_world(
        WorldConfig(world, seed=5, samples=2, workers=0, shard_size=2, progress=False,
                    intents=("wifi", "parking"))
    )  # fmt: skip
    out = tmp_path / "eval"
    cfg = EvalConfig(world=world, out=out, split="train", max_samples=1, lms=("domain",))
    assert reference_main(cfg) == 0
    printed = capsys.readouterr().out
    assert "| ground truth |" in printed and "reference.json" in printed

    result = json.loads((out / "reference.json").read_text())
    ref = result["reference"]
    assert ref["samples"] == 1
    assert ref["conductor_intent_accuracy"] == 1.0 and ref["conductor_format_validity"] == 1.0
    assert ref["subject_consistency_frames"] > 0.9
    assert abs(ref["lipsync_offset_median"]) <= 1
    assert ref["wer_domain_lm"] < 0.7 and ref["wer_general_lm"] is None  # not asked for
    controls = {r["variant"]: r for r in result["controls"]}
    # each control row is worse than the ground truth on the meter it targets
    assert controls["noise audio"]["wer_domain_lm"] > ref["wer_domain_lm"]
    assert controls["shifted audio +5"]["lipsync_offset_median"] in (4, 5, 6)
    md = (out / "reference.md").read_text()
    assert md.count("\n|") >= 5 and "WER (domain LM)" in md
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 400 and sheet.size[1] > 200


def test_markdown_table_formats_nan():
    row = {k: float("nan") for k in ("wer_general_lm",)}
    table = markdown_table([{**_blank(), **row}])
    assert "n/a" in table and table.count("|") > 10


def _blank():
    from mavid.eval.report import _COLUMNS

    return {k: ("x" if k == "variant" else 0.5) for k, _ in _COLUMNS}
