"""The ear's letters read as words: a beam search over its CTC output through a lexicon.

The ear's greedy letters are misspelt ("exsc us me wherar thetoilits"), and word vectors cannot
read them. A beam search over its log-probabilities, constrained to the words of the texts the
Conductor knows and scored by a bigram of those texts (flashlight-text's lexicon decoder with
KenLM, the decoder torchaudio's `ctc_decoder` wraps), writes words instead: on the spoken test
turns (held-out voices and questions) the ear's word error rate falls 0.64 -> 0.14, and the
Conductor answers 79.5 % of them (its greedy letters: 53.0 %). The bigram's weight (1.5), the
word score (-1) and the beam (128) were chosen on the val split's spoken turns, each with its
own question left out of the bigram (docs/what-was-tried.md, round 10).
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from wurlitzer import pipes

from mavid.asr import normalize_text, write_arpa
from mavid.conductor.ear import ALPHABET

__all__ = ["WordSearch"]

log = logging.getLogger(__name__)

_BLANK, _SPACE, _UNK = "<blank>", "|", "<unk>"
_LETTERS = frozenset(ALPHABET[1:])
# a hypothesis this far (in log-probability) below the best is dropped (torchaudio's default)
_BEAM_THRESHOLD = 50.0


class WordSearch:
    """Reads the ear's CTC log-probabilities (`Ear.listen`) as words of `texts`.

    Thread-safe: one search at a time (each takes a few milliseconds)."""

    def __init__(
        self,
        texts: Sequence[str],
        lm_weight: float = 1.5,
        word_score: float = -1.0,
        beam: int = 128,
    ) -> None:
        # (imported here: only a hearing that reads the ear's words needs the native decoder)
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconDecoder,
            LexiconDecoderOptions,
            SmearingMode,
            Trie,
        )
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict

        spoken = [t for t in texts if normalize_text(t)]
        words = sorted({w for t in spoken for w in normalize_text(t).split() if set(w) <= _LETTERS})
        if not words:
            raise ValueError("the ear's word search needs texts with words to search through")
        tokens = Dictionary([_BLANK, _SPACE, *ALPHABET[1:]])  # the ear's columns, in order
        # words spelt without the space after them: the ear writes none after a turn's last word
        # (spelt with it, the last word was dropped: val word error rate 0.123 against 0.096)
        lexicon = {w: [list(w)] for w in words}
        self._words = create_word_dict(lexicon | {_UNK: [[_UNK]]})
        # KenLM reads the whole file at load, writing a progress bar to the process's stderr:
        # caught (at the C level) and logged, not left in the server's output
        notes = io.StringIO()
        with tempfile.TemporaryDirectory() as tmp, pipes(stdout=None, stderr=notes):
            self._lm = KenLM(str(write_arpa(spoken, Path(tmp) / "words.arpa")), self._words)
        log.debug("KenLM: %s", " ".join(notes.getvalue().split()))
        space = tokens.get_index(_SPACE)
        trie = Trie(tokens.index_size(), space)
        start = self._lm.start(False)
        for w, (spelling,) in lexicon.items():
            index = self._words.get_index(w)
            score = self._lm.score(start, index)[1]
            trie.insert([tokens.get_index(c) for c in spelling], index, score)
        trie.smear(SmearingMode.MAX)
        options = LexiconDecoderOptions(
            beam,
            tokens.index_size(),
            _BEAM_THRESHOLD,
            lm_weight,
            word_score,
            float("-inf"),  # never a word outside the lexicon
            0.0,
            False,
            CriterionType.CTC,
        )
        self._columns = tokens.index_size()
        self._trie = trie  # (kept alive beside the decoder that reads it)
        blank, unk = tokens.get_index(_BLANK), self._words.get_index(_UNK)
        self._decoder = LexiconDecoder(options, trie, self._lm, space, blank, unk, [], False)
        self._lock = threading.Lock()
        self.vocabulary = tuple(words)

    def words(self, logp: torch.Tensor) -> str:
        """The likeliest words for (T, letters + 1) log-probabilities ('' for none)."""
        emissions = np.ascontiguousarray(logp.detach().cpu().numpy(), dtype=np.float32)
        if emissions.ndim != 2 or emissions.shape[1] != self._columns:
            raise ValueError(
                f"the ear's log-probabilities are (frames, {self._columns}), got {emissions.shape}"
            )
        if emissions.shape[0] == 0 or not np.isfinite(emissions).all():
            return ""
        with self._lock:
            found = self._decoder.decode(emissions.ctypes.data, *emissions.shape)
        if not found:
            return ""
        return " ".join(self._words.get_entry(i) for i in found[0].words if i >= 0)
