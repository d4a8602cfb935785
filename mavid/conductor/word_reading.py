"""The tiny Conductor's word reading: the user's words read as pretrained word vectors.

A Thinker trained from scratch on ~6 paraphrases per intent knows the words of those paraphrases
and nothing else: "I hurt my hand" shares no word with the first-aid questions it learnt, and
its own embeddings of words it never trained on are noise (issue 7: 43 % of held-out typed
questions answered). Here the user's text is read through frozen word vectors that already
place "hurt" near "injured" and "snack" near "sandwich": WordLlama's token embeddings (shipped
inside the `wordllama` wheel, no download), one vector per word (the mean of its pieces), and a
learnt projection to the Thinker's width. Those vectors *replace* the Thinker's own embeddings
on the user's text (only there: the prompt, media placeholders and the answer keep theirs), so
the Thinker cannot learn its training questions by their spelling and ignore the vectors.

Saved beside the Thinker (`word_reading.json` + `word_reading.safetensors`); a real
Qwen2.5-Omni reads for itself and has none. Applied with `applied(...)`, a forward hook on the
Thinker's input embeddings for the one forward pass whose shape is the prompt's, so the
transformers model class and its generate() run unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from mavid.asr import cmu_words
from mavid.conductor.saved_config import load_config

__all__ = [
    "READING_CONFIG_NAME",
    "READING_WEIGHTS_NAME",
    "WORD_INPUTS",
    "WordReading",
    "WordReadingConfig",
    "WordTable",
    "applied",
    "common_words",
    "reading_applied",
]

READING_CONFIG_NAME = "word_reading.json"
READING_WEIGHTS_NAME = "word_reading.safetensors"
# a batch's word-reading inputs, beside the model's: (B, L, dim) vectors and (B, L) mask
WORD_INPUTS = ("word_vectors", "word_mask")
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters / digits, with inner apostrophes
_TABLES = {  # name -> (weights file, tokenizer file) inside the wordllama package
    "wordllama-l2-supercat-256": (
        "weights/l2_supercat_256.safetensors",
        "tokenizers/l2_supercat_tokenizer_config.json",
    ),
}


@dataclass(frozen=True)
class WordReadingConfig:
    table: str = "wordllama-l2-supercat-256"
    dim: int = 256  # the table's width
    hidden_size: int = 192  # the Thinker's

    def __post_init__(self) -> None:
        if self.table not in _TABLES:
            raise ValueError(f"unknown word table {self.table!r} (known: {sorted(_TABLES)})")

    def save(self, directory: str | Path) -> None:
        (Path(directory) / READING_CONFIG_NAME).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> WordReadingConfig | None:
        return load_config(directory, READING_CONFIG_NAME, lambda data: cls(**data))


class WordTable:
    """A frozen word-vector table: word -> (dim,) float32 vector (mean of its pieces' rows)."""

    def __init__(self, name: str) -> None:
        if name not in _TABLES:
            raise ValueError(f"unknown word table {name!r}")
        weights, tokenizer = _TABLES[name]
        try:
            root = resources.files("wordllama")
        except ModuleNotFoundError as e:
            raise RuntimeError("word reading needs the wordllama package (pip install)") from e
        with safe_open(str(root / weights), framework="np") as f:
            self.rows = np.asarray(f.get_tensor("embedding.weight"), dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(root / tokenizer))
        self.dim = self.rows.shape[1]
        self._cache: dict[str, np.ndarray] = {}

    def word(self, word: str) -> np.ndarray:
        vec = self._cache.get(word)
        if vec is None:
            ids = self.tokenizer.encode(word, add_special_tokens=False).ids
            vec = self.rows[ids].mean(0) if ids else np.zeros(self.dim, np.float32)
            if len(self._cache) < 100_000:  # hostile input cannot grow it without bound
                self._cache[word] = vec
        return vec


@lru_cache(maxsize=4)
def word_table(name: str) -> WordTable:
    """The table, loaded once per process (read-only: shared by every Conductor)."""
    return WordTable(name)


class WordReading(torch.nn.Module):
    """Word vectors of the user's text -> the Thinker's input embeddings there."""

    def __init__(self, config: WordReadingConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = torch.nn.Linear(config.dim, config.hidden_size, bias=False)

    @property
    def table(self) -> WordTable:
        return word_table(self.config.table)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.proj(vectors.to(self.proj.weight.dtype))

    def inputs(
        self, tokenizer: PreTrainedTokenizerBase, prompt: str, start: int, end: int
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """`prompt`'s token ids, (L, dim) word vectors and (L,) mask: a token overlapping a word
        of prompt[start:end] (the user's text) gets that word's vector; every other token,
        none (mask False: it keeps its own embedding)."""
        enc = tokenizer(prompt, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        words = [
            (m.start() + start, m.end() + start, m.group())
            for m in WORD.finditer(prompt[start:end])
        ]
        vectors = torch.zeros(len(ids), self.config.dim)
        mask = torch.zeros(len(ids), dtype=torch.bool)
        w = 0
        for i, (s, e) in enumerate(offsets):
            while w < len(words) and words[w][1] <= s:
                w += 1
            if w < len(words) and words[w][0] < e and e > s:
                vectors[i] = torch.from_numpy(self.table.word(words[w][2].lower()))
                mask[i] = True
        return ids, vectors, mask

    def match_scale(
        self, embeddings: torch.Tensor, tokenizer: PreTrainedTokenizerBase, texts: list[str]
    ) -> None:
        """Scale the (random) projection so the words of `texts` come out as large as the
        Thinker's own embeddings of their tokens. A random projection keeps the table's
        geometry (which words lie near which); a least-squares fit to the Thinker's embeddings
        (tried first) bends it towards spellings the Thinker had learnt, and held-out
        questions were answered no better (48 % -> 43-53 % over 1,500 steps)."""
        read, own = [], []
        for text in texts:
            ids, vectors, mask = self.inputs(tokenizer, text, 0, len(text))
            read.append(vectors[mask])
            own.append(embeddings[torch.tensor(ids, dtype=torch.long)[mask]].detach().float())
        x, y = torch.cat(read), torch.cat(own)
        if not len(x):
            raise ValueError("match_scale needs texts with words")
        with torch.no_grad():
            out = self(x).float().norm(dim=-1).mean()
            self.proj.weight.mul_(y.norm(dim=-1).mean() / out.clamp_min(1e-12))

    def save(self, directory: str | Path) -> None:
        self.config.save(directory)
        save_file(
            {"proj.weight": self.proj.weight.detach().cpu().contiguous()},
            str(Path(directory) / READING_WEIGHTS_NAME),
        )

    @classmethod
    def load(cls, directory: str | Path) -> WordReading | None:
        config = WordReadingConfig.load(directory)
        if config is None:
            return None
        reading = cls(config)
        path = Path(directory) / READING_WEIGHTS_NAME
        try:
            reading.load_state_dict(load_file(str(path)))
        except (OSError, RuntimeError, SafetensorError) as e:  # missing, truncated, mis-shaped
            raise ValueError(f"cannot load the word reading {path}: {e}") from e
        reading.table  # noqa: B018 - loaded now, not on the first turn (a few hundred ms)
        return reading.eval()


def pad_inputs(
    rows: list[tuple[torch.Tensor, torch.Tensor]], length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (L_i, dim) vectors and (L_i,) masks -> (B, length, dim), (B, length), padded."""
    dim = rows[0][0].shape[-1]
    vectors = torch.zeros(len(rows), length, dim)
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, (v, m) in enumerate(rows):
        vectors[i, : len(v)] = v
        mask[i, : len(m)] = m
    return vectors, mask


@contextmanager
def applied(
    model: torch.nn.Module, reading: WordReading, vectors: torch.Tensor, mask: torch.Tensor
) -> Iterator[None]:
    """Within the block, the forward pass of `model` whose tokens have `mask`'s (B, L) shape
    reads the masked positions as `reading(vectors)`; any other (a decoding step) is untouched.
    The hook is removed on leaving, also when the block raises."""
    embed = model.get_input_embeddings()

    def hook(_module: torch.nn.Module, _args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if out.shape[:2] != mask.shape:
            return None
        read = reading(vectors.to(out.device)).to(out.dtype)
        return torch.where(mask.to(out.device)[..., None], read, out)

    handle = embed.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def reading_applied(
    model: torch.nn.Module, reading: WordReading | None, inputs: MutableMapping
) -> AbstractContextManager:
    """Takes the word-reading inputs out of a batch (what is left is the model's) and returns
    the context that applies them (`applied`); a batch without them gets a context that does
    nothing. A batch made with a word reading cannot be read without one."""
    if WORD_INPUTS[0] not in inputs:
        return nullcontext()
    vectors, mask = (inputs.pop(k) for k in WORD_INPUTS)
    if reading is None:
        raise ValueError("this batch was made with a word reading: pass it")
    return applied(model, reading, vectors, mask)


@cache
def common_words(n: int) -> tuple[str, ...]:
    """The `n` most common English words, by their order in WordLlama's tokenizer (its BPE
    merges come in order of frequency), kept where the CMU dictionary knows them (no word
    pieces)."""
    tokenizer = resources.files("wordllama").joinpath(_TABLES["wordllama-l2-supercat-256"][1])
    vocab = json.loads(tokenizer.read_text())["model"]["vocab"]
    known = cmu_words()
    words = [
        t[1:]
        for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])
        if t.startswith("\u2581")
        and re.fullmatch(r"[a-z]*[aeiouy][a-z]*", t[1:])
        and len(t) > 2
        and t[1:] in known
    ]
    return tuple(["a", "i", *words][:n])
