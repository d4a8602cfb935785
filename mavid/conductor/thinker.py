"""The local Conductor: a Qwen2.5-Omni Thinker streaming speech / motion directives (Eq. 3).

`ThinkerConductor.tiny()` builds the project's tiny preset (random weights, own tokenizer,
Whisper-style feature extractor); `from_pretrained(dir)` loads a local directory, either one
saved by `save_pretrained` or a real Qwen2.5-Omni checkpoint (never a hub download).
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
    Qwen2_5OmniConfig,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
    WhisperFeatureExtractor,
)

from mavid.conductor.ear import EAR_DIR
from mavid.conductor.features import (
    SAMPLE_RATE,
    ThinkerInputsConfig,
    TurnEncoder,
    VisionGeometry,
)
from mavid.conductor.format import END_OF_TEXT, IM_END, M_BOS, M_EOS, SYSTEM_PROMPT
from mavid.conductor.hearing import EAR_CHECK_DIR, HEARING_CONFIG_NAME, Hearing
from mavid.conductor.knowledge import KNOWLEDGE_CONFIG_NAME, Knowledge, KnowledgeConfig
from mavid.conductor.parser import DirectiveParser
from mavid.conductor.tokenizer import build_tiny_tokenizer
from mavid.conductor.word_reading import (
    READING_CONFIG_NAME,
    READING_WEIGHTS_NAME,
    WordReading,
    reading_applied,
)
from mavid.interfaces import CancelToken, ConductorError, DirectiveDelta, UserTurn

log = logging.getLogger(__name__)


@dataclass
class ConductorConfig:
    """Decoding settings of the Conductor (local Thinker)."""

    max_new_tokens: int = 128
    min_new_tokens: int = 0  # > 0: the end-of-turn tokens cannot come earlier
    do_sample: bool = True
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.9
    seed: int | None = None  # set: sampling is reproducible (seeds torch's global RNG)
    system_prompt: str = SYSTEM_PROMPT
    poll_seconds: float = 0.02  # how often the consumer checks the cancel token while waiting
    join_seconds: float = 10.0  # longest wait for the generation thread after a stop
    # said (and done) where the hearing writes no word of a spoken turn (a cough, a door, a
    # mumble the voice activity detector let through), instead of the Thinker's answer to
    # audio it cannot read (mavid-tiny answered a cough with the way to the toilets);
    # "": the Thinker answers the audio as it is
    unheard_reply: str = "Sorry, I didn't catch that. Could you say it again?"
    unheard_motion: str = "tilt"

    @classmethod
    def from_generation_config(cls, generation: GenerationConfig) -> ConductorConfig:
        """Decoding as a checkpoint's `generation_config.json` says: greedy unless it samples
        (then its temperature / top-k / top-p where set). mavid-tiny's is greedy: a Thinker
        that knows one domain answers best with its most likely directive."""
        base = cls()
        if not generation.do_sample:
            return cls(do_sample=False)
        return cls(
            do_sample=True,
            temperature=generation.temperature or base.temperature,
            top_k=generation.top_k if generation.top_k is not None else base.top_k,
            top_p=generation.top_p if generation.top_p is not None else base.top_p,
        )


@dataclass(frozen=True)
class TinyThinkerShape:
    """The tiny preset: hidden 64, 2 layers, 1-layer audio encoder, depth-1 vision tower."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4  # head_dim 16
    audio_d_model: int = 32
    num_mel_bins: int = 32
    vision_hidden: int = 32
    patch_size: int = 8
    frame_size: int = 32
    audio_layers: int = 1
    dropout: float = 0.0  # attention / audio-encoder dropout (training only; stage 1 sets it)


def mrope_section(head_dim: int) -> list[int]:
    """(time, height, width) split of the rotary half-dim, in Qwen2.5-Omni's 1:1.5:1.5 ratio.

    It must sum to head_dim / 2 (e.g. 128 -> [16, 24, 24] as the 7B; 16 -> [2, 3, 3]).
    """
    half = head_dim // 2
    hw = (half - half // 4) // 2
    return [half - 2 * hw, hw, hw]


def tiny_thinker_config(tokenizer: PreTrainedTokenizerBase, shape: TinyThinkerShape) -> dict:
    """Qwen2_5OmniThinkerConfig kwargs for `shape`, with ids taken from `tokenizer`."""
    if shape.hidden_size % shape.num_heads or (shape.hidden_size // shape.num_heads) % 2:
        raise ValueError(f"hidden_size {shape.hidden_size} / {shape.num_heads} heads: bad head_dim")
    if shape.frame_size % (shape.patch_size * 2):
        raise ValueError(f"frame_size {shape.frame_size} must be a multiple of 2 * patch_size")
    vocab_size = -(-len(tokenizer) // 64) * 64  # special ids are 0..11, well below this
    ids = tokenizer.convert_tokens_to_ids
    text = {
        "vocab_size": vocab_size,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.hidden_size * 2,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_heads // 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_section(shape.hidden_size // shape.num_heads),
        },
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "attention_dropout": shape.dropout,
    }
    audio = {
        "num_mel_bins": shape.num_mel_bins,
        "encoder_layers": shape.audio_layers,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": shape.audio_d_model * 2,
        "d_model": shape.audio_d_model,
        "output_dim": shape.hidden_size,  # must equal the text hidden size
        "max_source_positions": 1500,
        "n_window": 100,
        "dropout": shape.dropout,
        "attention_dropout": shape.dropout,
        "activation_dropout": shape.dropout,
    }
    vision = {
        "depth": 1,
        "hidden_size": shape.vision_hidden,
        "intermediate_size": shape.vision_hidden * 2,
        "num_heads": 2,
        "patch_size": shape.patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": shape.frame_size,
        "out_hidden_size": shape.hidden_size,
        "fullatt_block_indexes": [0],
    }
    return {
        "text_config": text,
        "audio_config": audio,
        "vision_config": vision,
        "audio_token_index": ids("<|AUDIO|>"),
        "image_token_index": ids("<|IMAGE|>"),
        "video_token_index": ids("<|VIDEO|>"),
        "audio_start_token_id": ids("<|audio_bos|>"),
        "audio_end_token_id": ids("<|audio_eos|>"),
        # get_rope_index reads it; without it generate fails for video.
        "vision_start_token_id": ids("<|vision_bos|>"),
        "vision_end_token_id": ids("<|vision_eos|>"),
        "user_token_id": ids("user") if "user" in tokenizer.get_vocab() else 0,
        "seconds_per_chunk": 2,
        "position_id_per_seconds": 25,
    }


class _StopOn(StoppingCriteria):
    """Ends generate() at the next token once the turn is cancelled or the consumer left."""

    def __init__(self, cancel: CancelToken, stop: threading.Event) -> None:
        self.cancel, self.stop = cancel, stop

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw) -> bool:
        return self.cancel.cancelled or self.stop.is_set()


class ThinkerConductor:
    """Conductor over `Qwen2_5OmniThinkerForConditionalGeneration` (implements `Conductor`)."""

    def __init__(
        self,
        model: Qwen2_5OmniThinkerForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        feature_extractor: WhisperFeatureExtractor,
        inputs_config: ThinkerInputsConfig,
        config: ConductorConfig | None = None,
        hearing: Hearing | None = None,
        reading: WordReading | None = None,
        knowledge: Knowledge | None = None,
    ) -> None:
        self.model = model.eval()
        self.hearing = hearing  # writes spoken turns down before the Thinker reads them
        self.knowledge = knowledge  # reads a new question as the known one nearest to it
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.inputs_config = inputs_config
        self.config = config or ConductorConfig()
        vc = model.config.vision_config
        self.encoder = TurnEncoder(
            tokenizer,
            feature_extractor,
            VisionGeometry(vc.patch_size, vc.temporal_patch_size, vc.spatial_merge_size),
            inputs_config,
        )
        self.reading = reading
        # The Thinker keeps rope deltas on the module during generate: one turn at a time.
        self._lock = threading.Lock()
        self._stop_ids = [
            i
            for i in tokenizer.convert_tokens_to_ids([IM_END, END_OF_TEXT])
            if i is not None and i != tokenizer.unk_token_id
        ]

    @property
    def reading(self) -> WordReading | None:
        """Reads the user's words as word vectors (`mavid.conductor.word_reading`), or None."""
        return self.encoder.reading

    @reading.setter
    def reading(self, reading: WordReading | None) -> None:
        hidden = self.model.config.text_config.hidden_size
        if reading is not None and reading.config.hidden_size != hidden:
            raise ValueError(
                f"word reading projects to {reading.config.hidden_size}, the Thinker has {hidden}"
            )
        self.encoder.reading = reading

    # -- construction ------------------------------------------------------------------
    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        config: ConductorConfig | None = None,
        *,
        tokenizer: PreTrainedTokenizerBase | None = None,
        shape: TinyThinkerShape | None = None,
    ) -> ThinkerConductor:
        """The tiny preset with random (seeded, deterministic) weights.

        `tokenizer`: e.g. `build_tiny_tokenizer(domain_corpus)` for training on the synthetic
        world (default: trained on the shipped English corpus); `shape`: a bigger tiny model.
        """
        shape = shape or TinyThinkerShape()
        tokenizer = tokenizer or build_tiny_tokenizer()
        thinker_config = Qwen2_5OmniThinkerConfig(**tiny_thinker_config(tokenizer, shape))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = Qwen2_5OmniThinkerForConditionalGeneration(thinker_config)
        # the world's visitor turns show 4 frames (mavid.data.dialogue.USER_FRAMES)
        inputs_config = ThinkerInputsConfig(frame_size=shape.frame_size, max_frames=4)
        feature_extractor = WhisperFeatureExtractor(
            feature_size=shape.num_mel_bins,
            sampling_rate=SAMPLE_RATE,
            chunk_length=int(inputs_config.seconds_per_chunk),
            return_attention_mask=True,
        )
        return cls(model, tokenizer, feature_extractor, inputs_config, config)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        config: ConductorConfig | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> ThinkerConductor:
        """Load a local directory (ours, or a real Qwen2.5-Omni checkpoint); no downloads.

        A full Qwen2.5-Omni directory (Thinker + Talker) loads its Thinker only. `device` /
        `dtype` are for real checkpoints (e.g. "cuda", torch.bfloat16); default: CPU, as saved.
        Without `config`, decoding follows the checkpoint's generation config.
        """
        path = Path(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"no Thinker checkpoint in {path} (config.json missing)")
        kwargs = {} if dtype is None else {"dtype": dtype}
        if device is not None:
            kwargs["device_map"] = str(device)
        try:
            model = _load_thinker(path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            feature_extractor = WhisperFeatureExtractor.from_pretrained(path, local_files_only=True)
        except Exception as e:  # a wrong, truncated or mismatched file: name the directory
            raise ConductorError(
                f"cannot load Thinker checkpoint from {path}: {type(e).__name__}: {e}"
            ) from e
        _ensure_directive_tokens(model, tokenizer)
        inputs_config = ThinkerInputsConfig.load(path) or _real_checkpoint_inputs(model)
        hearing = Hearing.load(path)
        reading = WordReading.load(path)
        if reading is not None:
            reading.to(device=model.device, dtype=model.dtype)
        knowledge_config = KnowledgeConfig.load(path)
        knowledge = Knowledge.shared(knowledge_config) if knowledge_config is not None else None
        if config is None:
            config = ConductorConfig.from_generation_config(model.generation_config)
        return cls(
            model, tokenizer, feature_extractor, inputs_config, config, hearing, reading, knowledge
        )

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        self.inputs_config.save(path)
        (path / HEARING_CONFIG_NAME).unlink(missing_ok=True)
        shutil.rmtree(path / EAR_DIR, ignore_errors=True)
        shutil.rmtree(path / EAR_CHECK_DIR, ignore_errors=True)
        if self.hearing is not None:
            self.hearing.save(path)
        for name in (READING_CONFIG_NAME, READING_WEIGHTS_NAME):
            (path / name).unlink(missing_ok=True)
        if self.reading is not None:
            self.reading.save(path)
        (path / KNOWLEDGE_CONFIG_NAME).unlink(missing_ok=True)
        if self.knowledge is not None:
            self.knowledge.config.save(path)

    @property
    def system_prompt(self) -> str:
        """The prompt the weights were trained with if saved beside them, else the config's."""
        trained = self.inputs_config.system_prompt
        return trained if trained is not None else self.config.system_prompt

    # -- streaming ---------------------------------------------------------------------
    def prepare(self, turn: UserTurn) -> UserTurn:
        """The turn as the Thinker reads it: a spoken turn's words written down by its hearing,
        where it has one (of the recognizer's ways of hearing them, the one its knowledge base
        finds a known question in: `Knowledge.likeliest`). Blocking."""
        if self.hearing is None:
            return turn
        read, alternatives = self.hearing.applied(turn)
        if alternatives and self.knowledge is not None:
            words = self.knowledge.likeliest(read.text, alternatives)
            read = read if words == read.text else replace(read, text=words)
        return read

    def read_as_known(self, turn: UserTurn) -> UserTurn:
        """The (written down) turn as the Thinker reads it: a question it was never taught as
        the known one nearest (`mavid.conductor.knowledge`), where it has a knowledge base."""
        return self.knowledge.read(turn) if self.knowledge is not None else turn

    def _unheard(self, turn: UserTurn, read: UserTurn) -> bool:
        """Whether `turn` was spoken, its hearing wrote no word of it, and the Thinker would
        have only audio it was not trained to read (`ConductorConfig.unheard_reply`)."""
        return (
            bool(self.config.unheard_reply.strip())
            and self.hearing is not None
            and not self.hearing.config.keep_audio
            and not turn.text.strip()
            and turn.audio is not None
            and turn.audio.size > 0
            and not read.text.strip()
        )

    @property
    def hears(self) -> bool:
        """Whether spoken turns are written down first (`mavid.interfaces.HearingConductor`)."""
        return self.hearing is not None

    @property
    def understands(self) -> bool:
        """Whether turns may be read as known questions (`mavid.interfaces.
        UnderstandingConductor`)."""
        return self.knowledge is not None

    def stream(
        self,
        turn: UserTurn,
        cancel: CancelToken,
        on_heard: Callable[[str], None] | None = None,
        on_understood: Callable[[str], None] | None = None,
    ) -> Iterator[DirectiveDelta]:
        """Yield directive deltas as tokens are generated (blocking; run in a worker thread).

        `on_heard(words)`: called once, before the first delta, with what the hearing wrote
        down of a spoken turn (not for typed turns, nor when no word was heard).
        `on_understood(question)`: called once, after it, with the known question the knowledge
        base read the turn as (only when it did not read the words as they were).
        Raises Cancelled when `cancel` is set (checked between tokens), ConductorError if the
        model fails, ValueError for a malformed turn. The generation thread never outlives it.
        """
        cancel.raise_if_cancelled()
        read = self.prepare(turn)
        if on_heard is not None and read.text and not turn.text.strip():
            on_heard(read.text)
        if self._unheard(turn, read):
            cancel.raise_if_cancelled()  # (the hearing may have taken a while)
            log.info("no word heard in a spoken turn: asking to hear it again")
            yield DirectiveDelta(
                speech=self.config.unheard_reply, motion=self.config.unheard_motion
            )
            return
        if self.knowledge is not None and self.knowledge.from_elsewhere(read.text):
            cancel.raise_if_cancelled()
            log.info("a turn no entry of the knowledge base answers: saying what it can")
            config = self.knowledge.config
            yield DirectiveDelta(speech=config.elsewhere_reply, motion=config.elsewhere_motion)
            return
        turn, known = (read, None) if self.knowledge is None else self.knowledge.understand(read)
        if known is not None and on_understood is not None:
            on_understood(known)
        cancel.raise_if_cancelled()
        inputs = self.encoder.encode_prompt(turn, self.system_prompt).to(self.model.device)
        reading = reading_applied(self.model, self.reading, inputs)
        streamer = TextIteratorStreamer(
            self.tokenizer,
            skip_prompt=True,
            skip_special_tokens=False,  # the parser needs <m_bos>/<m_eos>
            timeout=self.config.poll_seconds,
        )
        stop = threading.Event()
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with self._lock, torch.inference_mode(), reading:
                    if self.config.seed is not None:
                        torch.manual_seed(self.config.seed)
                    self.model.generate(
                        **inputs,
                        **self._generation_kwargs(),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopOn(cancel, stop)]),
                    )
            except BaseException as e:  # handed to the consumer thread below
                failure.append(e)
                streamer.end()

        worker = threading.Thread(target=generate, name="thinker-generate", daemon=True)
        parser = DirectiveParser()
        worker.start()
        try:
            while True:
                cancel.raise_if_cancelled()
                try:
                    text = next(streamer)
                except queue.Empty:
                    continue
                except StopIteration:
                    break
                cancel.raise_if_cancelled()
                yield from parser.feed(text)
            if failure:
                raise ConductorError(f"Thinker generation failed: {failure[0]!r}") from failure[0]
            cancel.raise_if_cancelled()
            yield from parser.close()
        finally:
            stop.set()  # the consumer left (done, cancelled or closed): end generate() now
            worker.join(self.config.join_seconds)
            if worker.is_alive():  # one forward pass outlasted join_seconds
                log.warning("Thinker generation still running after stop; left to finish")

    def _generation_kwargs(self) -> dict:
        c = self.config
        kwargs: dict = {
            "max_new_tokens": c.max_new_tokens,
            "min_new_tokens": c.min_new_tokens,
            "do_sample": c.do_sample,
            "eos_token_id": self._stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if c.do_sample:
            kwargs.update(temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)
        return kwargs

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"ThinkerConductor({n / 1e6:.2f}M params, vocab {len(self.tokenizer)})"


def _load_thinker(path: Path, **kwargs) -> Qwen2_5OmniThinkerForConditionalGeneration:
    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    if model_type == "qwen2_5_omni":
        # A full Qwen2.5-Omni checkpoint: take the Thinker only (its weights sit under "thinker.").
        full = Qwen2_5OmniConfig.from_pretrained(path, local_files_only=True)
        return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            path,
            config=full.thinker_config,
            local_files_only=True,
            key_mapping={r"^thinker\.": ""},
            **kwargs,
        )
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        path, local_files_only=True, **kwargs
    )


def _ensure_directive_tokens(
    model: Qwen2_5OmniThinkerForConditionalGeneration, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Add <m_bos>/<m_eos> to a real checkpoint's tokenizer; grow the embeddings if needed."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (M_BOS, M_EOS) if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))


def _real_checkpoint_inputs(
    model: Qwen2_5OmniThinkerForConditionalGeneration,
) -> ThinkerInputsConfig:
    # A real vision tower (patch 14, merge 2) at a modest fixed size: 224 px, 64 tokens per
    # pair of frames.
    vc = model.config.vision_config
    step = vc.patch_size * vc.spatial_merge_size
    return ThinkerInputsConfig(frame_size=max(step, 224 // step * step))
