"""Assemble the shipped mavid-tiny directory from the stages' results, in the layout
`mavid.avatar.load_avatar_model` reads:

    <dest>/creator/      the creator-joint run's model/ (mavid/checkpoint.py format, codecs inside),
                         stored in float16
    <dest>/conductor/    the conductor run's model/ (ThinkerConductor.from_pretrained), with
                         the domain's knowledge base when asked (`knowledge.json`) and the
                         ear run's model/ when given (`ear/`, heard before PocketSphinx)
    <dest>/avatar.png    the default face: a training identity of the world, neutral
    <dest>/loss-<stage>.png   each stage's loss curves, when given
    <dest>/provenance.json    file sizes and sha256, and each run's train_config.json

Both models are loaded before anything is written; the directory is built beside `dest` and
renamed into place, so a failed export leaves the previous one untouched. Either part may come
from an earlier export (e.g. `--creator mavid/weights/tiny/creator` to ship a new Conductor
beside the shipped Creator): its run records and loss plots come along from that export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mavid.avatar import AVATAR_IMAGE
from mavid.checkpoint import load_checkpoint, save_checkpoint
from mavid.conductor.ear import EAR_DIR, Ear
from mavid.conductor.hearing import EAR_CHECK_DIR, WHISPER_DIR
from mavid.conductor.knowledge import KnowledgeConfig, KnowledgeEntry
from mavid.conductor.thinker import ThinkerConductor
from mavid.creator.face import fit_image
from mavid.creator.stream import speech_levels
from mavid.data.dialogue import identity_for
from mavid.data.domain import ELSEWHERE_REPLY, INTENTS, more_questions, paraphrase_split
from mavid.data.elsewhere import elsewhere_texts
from mavid.data.faces import render_reference_face
from mavid.train.main import CONFIG_NAME
from mavid.whisper_asr import WhisperRecognizer


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


PROVENANCE = "provenance.json"


def _exported_in(model_dir: Path) -> Path | None:
    """The exported directory `model_dir` is a part of (creator/ or conductor/), if any."""
    parent = Path(model_dir).parent
    if Path(model_dir).name in ("creator", "conductor") and (parent / PROVENANCE).is_file():
        return parent
    return None


def _run_config(model_dir: Path) -> dict | None:
    """The train_config.json of the run a model/ directory came from, if it sits in one (or,
    for a part of an earlier export, that export's record of its run)."""
    path = Path(model_dir).parent / CONFIG_NAME
    if path.is_file():
        return json.loads(path.read_text())
    export = _exported_in(model_dir)
    if export is not None:
        return json.loads((export / PROVENANCE).read_text())["runs"].get(Path(model_dir).name)
    return None


def _ancestry(model_dir: str | Path):
    """The model/ directories `model_dir` came from, itself first, following `init` and
    `codecs`, each once (a run that went on from its own exported copy names itself again),
    with each one's run config and the export it is a part of (None for a run's model/); a
    part of an earlier export ends its branch (that export carries its ancestry's plots)."""
    todo, seen = [Path(model_dir)], set()
    while todo:
        model = todo.pop()
        key = model.resolve()
        if key in seen:
            continue
        seen.add(key)
        config = _run_config(model)
        if config is None:
            continue
        export = _exported_in(model)
        yield model, config, export
        if export is None:
            todo += [Path(config[k]) for k in ("init", "codecs") if config.get(k)]


def run_chain(model_dir: str | Path) -> dict[str, Path]:
    """{stage: run folder} of the runs a model/ came from, following `init` and `codecs`."""
    chain: dict[str, Path] = {}
    for model, config, export in _ancestry(model_dir):
        if export is None:
            chain.setdefault(config["stage"], model.parent)
    return chain


def chain_plots(*model_dirs: str | Path) -> dict[str, Path]:
    """The loss.png of every run behind the given model/ directories, by stage, the latest
    run's for a stage trained more than once (for a part of an earlier export: that export's
    plots of the part)."""
    plots: dict[str, Path] = {}
    for model_dir in model_dirs:
        for model, config, export in _ancestry(model_dir):
            if export is None:
                if (model.parent / "loss.png").is_file():
                    plots.setdefault(config["stage"], model.parent / "loss.png")
                continue
            for png in sorted(export.glob("loss-*.png")):
                stage = png.stem.removeprefix("loss-")
                part = "conductor" if stage in ("conductor", "ear") else "creator"
                if part == model.name:
                    plots.setdefault(stage, png)
    return plots


def avatar_face(seed: int = 0, index: int = 0, size: int = 128) -> np.ndarray:
    """The shipped default face: avatar identity `index` of the world's train split."""
    return render_reference_face(identity_for(seed, "train", index, "avatar"), size)


# Chosen without the test: each known question left out of the base and looked up, typed,
# 74.1 % right at 0 and 74.7 % at 1 (typed words are words: the letters barely count); the
# val split's spoken turns as the shipped ear writes them down, 48.4 % at 0 and 71.0 % at 1.
DOMAIN_SPELLING_WEIGHT = 1.0
# the classifier reads n-grams beside the sentence vector at this weight (`KnowledgeConfig.
# classifier_ngrams`; chosen without the test, each way of asking left out in turn)
DOMAIN_CLASSIFIER_NGRAMS = 2.0


# never taken for questions from elsewhere (`KnowledgeEntry.urgent`)
URGENT_INTENTS = ("first_aid",)
# a turn at least this likely to be from elsewhere is (`KnowledgeConfig.elsewhere_above`; chosen
# without the test: the lowest at which at most 0.5 % of the museum's left-out ways of asking
# and none of 24 things visitors tell a desk are taken: `benchmarks/elsewhere.py`)
DOMAIN_ELSEWHERE_ABOVE = 0.9


def domain_knowledge(spelling_weight: float = DOMAIN_SPELLING_WEIGHT) -> KnowledgeConfig:
    """The knowledge base of the world's domain (`mavid.conductor.knowledge`): per intent, the
    questions a Conductor trained on the world knows (train and val paraphrases: the held-out
    ones stay unseen), its answers, and other ways of asking (`domain.more_questions`); and
    what no intent answers (`mavid.data.elsewhere`), answered with `domain.ELSEWHERE_REPLY`."""
    entries = []
    more = more_questions()
    for intent in INTENTS:
        questions = tuple(
            p for k, p in enumerate(intent.paraphrases) if paraphrase_split(intent, k) != "test"
        )
        answers = tuple(dict.fromkeys(a.speech for a in intent.by_prop.values()))
        answers = answers or (intent.answer_for().speech,)
        urgent = intent.name in URGENT_INTENTS
        entries.append(KnowledgeEntry(questions, answers, more[intent.name], urgent))
    return KnowledgeConfig(
        tuple(entries),
        spelling_weight=spelling_weight,
        classifier_ngrams=DOMAIN_CLASSIFIER_NGRAMS,
        classify_all=True,
        elsewhere=elsewhere_texts(),
        elsewhere_above=DOMAIN_ELSEWHERE_ABOVE,
        elsewhere_reply=ELSEWHERE_REPLY,
    )


# The inference settings an export can ship (CreatorConfig fields): their lowest and highest
# values, and what the bound means.
SHIPPABLE = {
    "temperature": (0.0, math.inf, "0: greedy"),
    "phone_guidance": (1.0, math.inf, "1: off"),
    "sampler_steps": (1, math.inf, "denoising steps"),
    "audio_guidance": (1.0, math.inf, "1: off"),
    "history_noise": (0.0, 1.0, "0: clean"),
    "history_anchor": (0.0, 1.0, "0: off"),
    "speech_codebooks": (0, math.inf, "0: all"),
    "expected_speech": (0, 1, "false: the drawn codes, true: their expected entries"),
}


def export_tiny(
    creator: str | Path,
    conductor: str | Path,
    dest: str | Path,
    plots: dict[str, Path] | None = None,
    avatar: np.ndarray | None = None,
    knowledge: KnowledgeConfig | None = None,
    ear: str | Path | None = None,
    ear_confidence: float | None = None,
    ear_words: bool = False,
    ear_check: str | Path | None = None,
    recognizer: str | None = None,
    whisper_model: str | Path | None = None,
    whisper_alternatives: float | None = None,
    ear_second_opinion: float | None = None,
    ear_words_prompt: bool | None = None,
    max_frames: int | None = None,
    **settings: float | None,
) -> Path:
    """Copy and check the Creator and Conductor results into `dest` (replacing it).

    `avatar`: the default face (H, W, 3) uint8; None renders `avatar_face()`. Either is fitted
    to the model's frame size. `knowledge`: the Conductor's knowledge base to ship (e.g.
    `domain_knowledge()`; None: the conductor directory's own, if any). `ear`: an ear run's
    model/ (`mavid.conductor.ear`) to hear before the Conductor's PocketSphinx, trusted from
    `ear_confidence` on (None: the hearing's default), checking the knowledge base's
    questions first where `knowledge` is given; None keeps the conductor's own, if any.
    `ear_words`: the ear's letters read as words of those questions (`HearingConfig.ear_words`).
    `ear_check`: a second ear run's model/ that must be as sure (`HearingConfig.ear_check`);
    None keeps the conductor's own, if any.
    `recognizer`: what writes down the turns the ear leaves ("pocketsphinx" or "whisper",
    `HearingConfig.recognizer`; None: the conductor's); `whisper_model`: a local CTranslate2
    Whisper directory, copied beside the Thinker (None: the copy shipped in a wheel);
    `whisper_alternatives`: `HearingConfig.whisper_alternatives` (None: the conductor's).
    `ear_second_opinion`: `HearingConfig.ear_second_opinion` (None: the conductor's).
    `ear_words_prompt`: `HearingConfig.ear_words_prompt` (None: the conductor's).
    `max_frames`: the most camera frames of a turn the Thinker reads (`ThinkerInputsConfig`;
    None: the conductor's setting). `settings`:
    inference settings to ship (`SHIPPABLE`: the AR sampling temperature, phone and audio
    guidance, the DiT's denoising steps, history noise and anchor, the codebooks the speech is
    synthesised from and whether from their expected entries); None or absent: the run's.
    """
    creator, conductor, dest = Path(creator), Path(conductor), Path(dest)
    model = load_checkpoint(creator)  # raises CheckpointError naming the bad file
    for name, value in settings.items():
        if name not in SHIPPABLE:
            raise TypeError(f"unknown setting {name!r}; shippable: {', '.join(SHIPPABLE)}")
        if value is None:
            continue
        low, high, meaning = SHIPPABLE[name]
        if not low <= value <= high:
            raise ValueError(f"{name} must be in [{low}, {high}] ({meaning}), got {value}")
        model.preset = model.preset.replace_creator(**{name: value})
    if model.audio_codec is None or model.video_vae is None:
        raise ValueError(f"{creator}: mavid-tiny ships its codecs inside the Creator checkpoint")
    # (more codebooks than the codec has, or expected speech it cannot make: refused)
    speech_levels(model.cfg, model.audio_codec)
    thinker = ThinkerConductor.from_pretrained(conductor)  # ConductorError names the directory
    if max_frames is not None:  # (checked here, before anything is written)
        inputs = dataclasses.replace(thinker.inputs_config, max_frames=max_frames)
    shipped_hearing = thinker.hearing.config if thinker.hearing is not None else None
    hearing_config = None
    if ear is not None:
        ear = Path(ear)
        ear_model = Ear.from_pretrained(ear)  # raises ValueError naming the directory
        if thinker.hearing is None:
            raise ValueError(f"{conductor}: an ear hears with the Conductor's hearing; it has none")
        hearing_config = dataclasses.replace(thinker.hearing.config, ear=True)
        if ear_confidence is not None:
            hearing_config = dataclasses.replace(hearing_config, ear_confidence=ear_confidence)
        if knowledge is not None:
            # the ear checks the knowledge base's questions first, and PocketSphinx's language
            # model has the other ways of asking too (round 9: PocketSphinx's transcripts of
            # the spoken test turns found their question 13 % -> 24 %)
            asked = knowledge.asked()
            hearing_config = dataclasses.replace(hearing_config, known=asked)
            if hearing_config.lm == "domain":
                corpus = tuple(dict.fromkeys((*hearing_config.corpus, *asked)))
                hearing_config = dataclasses.replace(hearing_config, corpus=corpus)
        if ear_words:  # (raises ValueError where the hearing knows no question)
            hearing_config = dataclasses.replace(hearing_config, ear_words=True)
    elif ear_confidence is not None or ear_words:
        raise ValueError("ear_confidence and ear_words are shipped with an ear")
    if ear_check is not None:
        ear_check = Path(ear_check)
        check_model = Ear.from_pretrained(ear_check)  # raises ValueError naming the directory
        base = hearing_config or shipped_hearing
        if base is None or not base.ear:
            raise ValueError("ear_check is a second ear: ship it with an ear (conductor_ear)")
        hearing_config = dataclasses.replace(base, ear_check=True)
    if whisper_model is not None and recognizer != "whisper":
        raise ValueError("whisper_model is shipped with recognizer='whisper'")
    if recognizer is not None:
        base = hearing_config or shipped_hearing
        if base is None:
            raise ValueError(f"{conductor}: the Conductor has no hearing to give a recognizer")
        hearing_config = dataclasses.replace(
            base,
            recognizer=recognizer,
            whisper_model=WHISPER_DIR if whisper_model is not None else "",
        )  # (raises ValueError naming a recognizer it does not know)
        if recognizer == "whisper":  # loaded now: a directory that is no Whisper fails here,
            WhisperRecognizer(whisper_model)  # before anything is written
    if whisper_alternatives is not None:
        base = hearing_config or shipped_hearing
        if base is None or base.recognizer != "whisper":
            raise ValueError("whisper_alternatives are Whisper's: ship them with it (recognizer)")
        # (raises ValueError for a negative margin)
        hearing_config = dataclasses.replace(base, whisper_alternatives=whisper_alternatives)
    if ear_second_opinion is not None:
        base = hearing_config or shipped_hearing
        if base is None or not base.ear:
            raise ValueError("ear_second_opinion is on the ear's words: ship it with an ear")
        # (raises ValueError for a negative limit)
        hearing_config = dataclasses.replace(base, ear_second_opinion=ear_second_opinion)
    if ear_words_prompt is not None:
        base = hearing_config or shipped_hearing
        if ear_words_prompt and (
            base is None or not base.ear_words or base.recognizer != "whisper"
        ):
            raise ValueError("ear_words_prompt tells Whisper the ear's words: ship it with both")
        if base is not None:
            hearing_config = dataclasses.replace(base, ear_words_prompt=ear_words_prompt)
    for stage, png in (plots or {}).items():
        if not Path(png).is_file():
            raise FileNotFoundError(f"loss plot of {stage!r} not found: {png}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # half precision on disk: half the bytes in git, no audible or visible change (tested)
    save_checkpoint(model, tmp / "creator", storage_dtype=torch.float16)
    shutil.copytree(conductor, tmp / "conductor")
    if knowledge is not None:
        knowledge.save(tmp / "conductor")
    if max_frames is not None:
        inputs.save(tmp / "conductor")
    if ear is not None:
        shutil.rmtree(tmp / "conductor" / EAR_DIR, ignore_errors=True)
        # half precision, like the Creator (the letters heard are the same: tested)
        ear_model.save_pretrained(tmp / "conductor" / EAR_DIR, storage_dtype=torch.float16)
    if ear_check is not None:
        shutil.rmtree(tmp / "conductor" / EAR_CHECK_DIR, ignore_errors=True)
        check_model.save_pretrained(tmp / "conductor" / EAR_CHECK_DIR, storage_dtype=torch.float16)
    if recognizer is not None:  # (an earlier export's own Whisper goes unless given again)
        shutil.rmtree(tmp / "conductor" / WHISPER_DIR, ignore_errors=True)
    if whisper_model is not None:
        shutil.copytree(whisper_model, tmp / "conductor" / WHISPER_DIR)
    if hearing_config is not None:
        hearing_config.save(tmp / "conductor")
    media = model.preset.media
    face = fit_image(avatar if avatar is not None else avatar_face(), media.height, media.width)
    Image.fromarray(np.ascontiguousarray(face, dtype=np.uint8)).save(tmp / AVATAR_IMAGE)
    for stage, png in (plots or {}).items():
        shutil.copyfile(png, tmp / f"loss-{stage}.png")
    files = {
        str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }
    runs = {"creator": _run_config(creator), "conductor": _run_config(conductor)}
    for key, given, folder in (("ear", ear, EAR_DIR), ("ear_check", ear_check, EAR_CHECK_DIR)):
        if given is not None:
            runs[key] = _run_config(given)
        elif (tmp / "conductor" / folder).is_dir() and _exported_in(conductor) is not None:
            # the ear came along inside an earlier export's conductor: so does its record
            earlier = json.loads((_exported_in(conductor) / PROVENANCE).read_text())["runs"]
            runs[key] = earlier.get(key)
    provenance = {"creator_params": model.creator_parameters(), "runs": runs, "files": files}
    (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1) + "\n")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest
