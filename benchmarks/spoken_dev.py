"""A dev set for the Conductor's hearing, kept apart from the test like the test is from training.

    .venv/bin/python -m benchmarks.spoken_dev [--conductor mavid/weights/tiny/conductor]
        [--texts 300] [--seed 14] [--second-opinion 0,0.6,1]

The test's spoken turns are held-out questions said by held-out voices; the val split's are
known questions, which the ear finds by its known-question check, so neither can choose a
hearing setting. This set is made like the test: `--texts` of the knowledge base's other ways
of asking (`KnowledgeEntry.also`), drawn at random, are left out of the knowledge base, of the
hearing's known questions and of the ear's word search, with every text spelt like one of them
(rapidfuzz ratio >= 75) or meaning nearly the same (cosine >= 0.9), as the held-out questions
were kept apart (a drawn text that near its own entry's questions is not said). Each is said
by one of the espeak variants the world never uses (`more_train_voices`) at a random rate and
pitch, over the world's noise beds. For each `ear_second_opinion` given, it prints the word
error rate of the hearing's words (all turns, and the turns the ears are sure of), how many
turns Whisper writes down, and how many turns the knowledge base reads as the said intent (the
tiny Thinker answers the known question it is handed 99 % right).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from pathlib import Path

import jiwer
import numpy as np
import torch
from tqdm import tqdm

from mavid.avatar import EMBEDDED_WEIGHTS
from mavid.conductor.format import plain_words
from mavid.conductor.hearing import Heard, Hearing
from mavid.conductor.knowledge import Knowledge, KnowledgeConfig
from mavid.data.dialogue import USER_SAMPLE_RATE
from mavid.data.domain import INTENTS
from mavid.data.visitor_turns import (
    NOISES,
    TurnGenerator,
    TurnPlan,
    TurnsConfig,
    more_train_voices,
)
from mavid.eval.held_apart import left_out
from mavid.interfaces import UserTurn


class _WrittenOnce:
    """A recognizer that writes each turn down once, however many settings hear it."""

    def __init__(self, recognizer) -> None:
        self._recognizer = recognizer
        self._seen: dict[tuple, object] = {}

    def _once(self, name: str, audio: np.ndarray, sample_rate: int, *args):
        digest = hashlib.sha1(np.ascontiguousarray(audio).tobytes()).hexdigest()
        key = (name, digest, sample_rate, *args)
        if key not in self._seen:
            self._seen[key] = getattr(self._recognizer, name)(audio, sample_rate, *args)
        return self._seen[key]

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        return self._once("transcribe", audio, sample_rate)

    def heard_after(self, audio: np.ndarray, sample_rate: int, prompts):
        return self._once("heard_after", audio, sample_rate, tuple(prompts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conductor", type=Path, default=EMBEDDED_WEIGHTS / "conductor")
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--second-opinion", default="0,0.6,1", help="ear_second_opinion values")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shipped = Hearing.load(args.conductor)
    knowledge_config = KnowledgeConfig.load(args.conductor)
    if shipped is None or shipped.ear is None or knowledge_config is None:
        raise SystemExit(f"{args.conductor}: needs a hearing with an ear and a knowledge base")
    if len(knowledge_config.entries) != len(INTENTS):
        raise SystemExit("the knowledge base's entries must be the domain's intents, in order")
    rng = np.random.default_rng(args.seed)
    base, said = left_out(Knowledge(knowledge_config), args.texts, rng)
    knowledge = Knowledge(base)
    intent_of = {q: INTENTS[k].name for k, e in enumerate(base.entries) for q in e.questions}
    # one hearing with the dev base's known questions and word search; only its second
    # opinion changes from setting to setting, and Whisper writes each turn down once
    config = dataclasses.replace(shipped.config, known=base.asked())
    hearing = Hearing(config, shipped.ear, args.conductor, shipped.check_ear)
    hearing.recognizer = _WrittenOnce(hearing.recognizer)
    limits = [float(v) for v in args.second_opinion.split(",")]

    voices = more_train_voices()
    generator, c = TurnGenerator(args.seed), TurnsConfig()
    turns = []
    for i, (k, text) in enumerate(said):
        voice = c.voice(voices, rng)
        noise = str(rng.choice(NOISES))
        plan = TurnPlan(i, INTENTS[k].name, 0, "none", False, voice, noise, 0, 0)
        audio = generator.speech(text, plan, np.random.default_rng([args.seed, i]))
        turn = UserTurn(audio=audio, audio_sample_rate=USER_SAMPLE_RATE)
        turns.append((INTENTS[k].name, text, turn))

    heard: dict[float, list[Heard]] = {limit: [] for limit in limits}
    for _, _, turn in tqdm(turns, desc="turns"):
        for limit in limits:
            hearing.config = dataclasses.replace(config, ear_second_opinion=limit)
            heard[limit].append(hearing.heard(turn))
    first = next(iter(heard.values()))
    sure = [i for i, h in enumerate(first) if h.by == "ear"]
    print(
        f"spoken dev set: {len(turns)} turns ({len(said)} of {args.texts} drawn texts kept), "
        f"voices espeak-ng never used by the world; the ears sure of {len(sure)}"
    )
    for limit, written in heard.items():
        words = [plain_words(h.words) or "-" for h in written]
        truth = [plain_words(text) for _, text, _ in turns]
        found = 0
        for (intent, _, _), h in zip(turns, written, strict=True):
            read = knowledge.likeliest(h.words, h.alternatives) if h.alternatives else h.words
            nearest = knowledge.nearest(read) if read.strip() else None
            found += nearest is not None and intent_of[nearest[0]] == intent
        wer_sure = jiwer.wer([truth[i] for i in sure], [words[i] for i in sure]) if sure else 0.0
        by_whisper = sum(h.by not in ("ear", "known", "") for h in written)
        print(
            f"second opinion {limit:g}: WER {jiwer.wer(truth, words):.3f} "
            f"(sure turns {wer_sure:.3f}), written by the recognizer {by_whisper}, "
            f"intent {100 * found / len(turns):.1f} %"
        )


if __name__ == "__main__":
    main()
