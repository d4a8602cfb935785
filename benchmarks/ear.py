"""The Conductor's ear on spoken turns it never trained on, and on recordings of people.

    .venv/bin/python benchmarks/ear.py --world data/world-1000 [--ear DIR] [--split test]
        [--recordings DIR ...]

Prints, for the world's spoken turns of a split (held-out voices; in the test split held-out
questions too): the ear's letter and word error rates, the word error rate of its letters read
as the known questions' words (`mavid.conductor.ear_words`, as the hearing reads them), how
sure it is of its letters (`Ear.letters`), how well the questions the Conductor knows fit each
turn (`Ear.misfit`: the best known question's, and the said question's where it is a known
one), and the same for recordings of people, in Sphinx's test layout (a `transcription` or
`*.transcription` file of `<s> words </s> (fileid)` lines beside the fileids' .wav files: e.g.
Debian's pocketsphinx-testdata, `apt-get download pocketsphinx-testdata && dpkg -x *.deb DIR`,
its `usr/share/pocketsphinx/test/data/cards` and `.../librivox`).
"""

from __future__ import annotations

import argparse
import re
import wave
from pathlib import Path

import jiwer
import numpy as np
import torch

from mavid.asr import normalize_text
from mavid.avatar import EMBEDDED_WEIGHTS
from mavid.conductor.ear import EAR_DIR, Ear
from mavid.conductor.format import plain_words
from mavid.conductor.hearing import HearingConfig, known_targets, word_search
from mavid.conductor.knowledge import KnowledgeConfig
from mavid.data.domain import INTENTS, more_questions
from mavid.data.shards import WorldDataset


def recordings(folder: Path) -> list[tuple[str, np.ndarray, int, str]]:
    """(name, audio, rate, words) of the recordings a Sphinx transcription file lists."""
    out = []
    for listing in [*folder.glob("transcription"), *folder.glob("*.transcription")]:
        for line in listing.read_text().splitlines():
            m = re.fullmatch(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*", line)
            if m is None or not (folder / f"{m[2]}.wav").is_file():
                continue
            with wave.open(str(folder / f"{m[2]}.wav")) as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    continue
                pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
                out.append((m[2], pcm.astype(np.float32) / 32768, w.getframerate(), m[1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--ear", type=Path, default=EMBEDDED_WEIGHTS / "conductor" / EAR_DIR)
    ap.add_argument(
        "--knowledge",
        type=Path,
        default=EMBEDDED_WEIGHTS / "conductor",
        help="the directory of the knowledge.json whose questions are fitted (and of the "
        "hearing.json whose word search settings are used)",
    )
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--recordings", type=Path, nargs="*", default=[])
    ap.add_argument(
        "--accept",
        type=float,
        default=HearingConfig.known_misfit,
        help="the misfit at which a known question is taken (default: the hearing's)",
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ear = Ear.from_pretrained(args.ear)
    knowledge = KnowledgeConfig.load(args.knowledge)
    if knowledge is None:
        raise SystemExit(f"no knowledge base in {args.knowledge}")
    # every way of asking the base has, as the export hands the hearing (`HearingConfig.known`)
    known, known_ids = known_targets(knowledge.asked())
    # the word search with the settings of the hearing saved beside that knowledge base (the
    # hearing's defaults where it has none)
    hearing = HearingConfig.load(args.knowledge) or HearingConfig(corpus=("-",))
    search = word_search(hearing, knowledge.asked())
    intent_of = {plain_words(p): i.name for i in INTENTS for p in i.paraphrases}
    intent_of |= {plain_words(q): name for name, qs in more_questions().items() for q in qs}

    def heard(audio: np.ndarray, rate: int, said: str) -> dict:
        logp = ear.listen(audio, rate)
        letters, sure = ear.letters(logp)
        misfit = ear.misfit(logp, known_ids) if logp is not None else torch.full((1,), np.inf)
        best = int(misfit.argmin())
        own = known.index(plain_words(said)) if plain_words(said) in known else None
        return {
            "ref": normalize_text(said),
            "hyp": letters or "-",
            "words": (search.words(logp) if logp is not None else "") or "-",
            "sure": sure,
            "fit": float(misfit[best]),
            "fit_right": own is not None and best == own,
            "taken": float(misfit[best]) <= args.accept,
            "taken_right": intent_of.get(known[best]) == intent_of.get(plain_words(said), "?"),
            "own_fit": float(misfit[own]) if own is not None else None,
        }

    rows = []
    for sample in WorldDataset(args.world, args.split):
        if not sample.plan.typed:
            turn = sample.user_turn()
            rows.append(heard(turn.audio, turn.audio_sample_rate, sample.question))
    groups = {f"{args.split} spoken turns": rows}
    for folder in args.recordings:
        groups[f"people ({folder.name})"] = [heard(a, sr, w) for _, a, sr, w in recordings(folder)]
    print(f"ear {args.ear} on {args.world}")
    for name, rs in groups.items():
        if not rs:
            print(f"{name}: none found")
            continue
        refs, hyps = [r["ref"] for r in rs], [r["hyp"] for r in rs]
        words = [r["words"] for r in rs]
        sure = np.array([r["sure"] for r in rs])
        fit = np.array([r["fit"] for r in rs])
        own = [r["own_fit"] for r in rs if r["own_fit"] is not None]
        print(
            f"{name:>26}: {len(rs):3d}  CER {jiwer.cer(refs, hyps):.3f}  WER "
            f"{jiwer.wer(refs, hyps):.3f} (as words {jiwer.wer(refs, words):.3f})  sure "
            f"p5/p50/max {np.percentile(sure, 5):.2f} / "
            f"{np.median(sure):.2f} / {sure.max():.2f}  best known fit min/p50 {fit.min():.2f} / "
            f"{np.median(fit):.2f}  taken {sum(r['taken'] for r in rs)} (right intent "
            f"{sum(r['taken'] and r['taken_right'] for r in rs)})"
            + (
                f"  said known question: {len(own)}, its fit p50/max {np.median(own):.2f} / "
                f"{max(own):.2f}, best fit {np.mean([r['fit_right'] for r in rs]):.0%}"
                if own
                else ""
            )
        )


if __name__ == "__main__":
    main()
