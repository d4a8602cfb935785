"""The tiny preset's text tokenizer: byte-level BPE trained by the project with `tokenizers`.

It carries Qwen2.5-Omni's chat and multimodal placeholder tokens plus <m_bos>/<m_eos> (ids
0..N-1, so they are below any vocab_size), and is saved beside the weights as a transformers
`PreTrainedTokenizerFast` (tokenizer.json + tokenizer_config.json).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib import resources

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from mavid.conductor.format import (
    AUDIO_BOS,
    AUDIO_EOS,
    AUDIO_TOKEN,
    END_OF_TEXT,
    IM_END,
    IMAGE_TOKEN,
    M_BOS,
    M_EOS,
    SPECIAL_TOKENS,
    VIDEO_TOKEN,
    VISION_BOS,
    VISION_EOS,
)

# Named like Qwen2.5-Omni's tokenizer_config, so `tokenizer.audio_token_id` etc. exist and
# Qwen2_5OmniProcessor accepts this tokenizer.
EXTRA_SPECIAL_TOKENS = {
    "audio_token": AUDIO_TOKEN,
    "audio_bos_token": AUDIO_BOS,
    "audio_eos_token": AUDIO_EOS,
    "image_token": IMAGE_TOKEN,
    "video_token": VIDEO_TOKEN,
    "vision_bos_token": VISION_BOS,
    "vision_eos_token": VISION_EOS,
    "m_bos_token": M_BOS,
    "m_eos_token": M_EOS,
}


def default_corpus() -> Iterator[str]:
    """The small English corpus shipped with the package (until the synthetic world's lands)."""
    text = resources.files("mavid.conductor").joinpath("default_corpus.txt").read_text("utf-8")
    yield from (line for line in text.splitlines() if line.strip())


def build_tiny_tokenizer(
    corpus: Callable[[], Iterable[str]] = default_corpus,
    vocab_size: int = 2048,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus()` and wrap it as a `PreTrainedTokenizerFast`.

    Deterministic for a given corpus. `vocab_size` includes the special tokens and the 256
    byte symbols; it is an upper bound (a small corpus may yield fewer merges).
    """
    if vocab_size < len(SPECIAL_TOKENS) + 256 + 1:
        raise ValueError(f"vocab_size {vocab_size} too small for 256 bytes + special tokens")

    def lines() -> Iterator[str]:
        for line in corpus():
            if not isinstance(line, str):
                raise TypeError(f"corpus must yield str, got {type(line).__name__}")
            for tok in SPECIAL_TOKENS:  # markup is not language: keep it out of the merges
                line = line.replace(tok, " ")
            yield line

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        extra_special_tokens=EXTRA_SPECIAL_TOKENS,
        model_max_length=32768,
    )
    return tokenizer
