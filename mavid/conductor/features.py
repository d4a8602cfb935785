"""Builds Thinker inputs from a UserTurn: text first, then interleaved audio and video chunks.

Layout of the user turn (the paper's input order; one chunk = `seconds_per_chunk` of time):

    text  <|audio_bos|> <|AUDIO|>*n0 <|audio_eos|>  <|vision_bos|> <|VIDEO|>*m0 <|vision_eos|>
          <|audio_bos|> <|AUDIO|>*n1 <|audio_eos|>  <|vision_bos|> <|VIDEO|>*m1 <|vision_eos|> …

Each audio chunk is its own audio item (Whisper log-mel features, n = ((T-1)//2+1-2)//2+1 for T
mel frames) and each video chunk its own video item (frames of that time, patchified as the
Qwen2.5-Omni vision tower expects, with its grid_thw), so the Thinker's own rope index and
placeholder scatter apply unchanged; any subset of the three modalities may be present.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, PreTrainedTokenizerBase, WhisperFeatureExtractor

from mavid.conductor.format import (
    AUDIO_BOS,
    AUDIO_EOS,
    AUDIO_TOKEN,
    VIDEO_TOKEN,
    VISION_BOS,
    VISION_EOS,
    user_content_start,
    user_prompt,
)
from mavid.conductor.saved_config import check_int, load_config
from mavid.conductor.word_reading import WORD_INPUTS, WordReading
from mavid.interfaces import UserTurn

INPUTS_CONFIG_NAME = "mavid_conductor_inputs.json"
SAMPLE_RATE = 16_000  # the Thinker's audio encoder runs at 16 kHz (Whisper front end)
_OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ThinkerInputsConfig:
    """How a turn's audio and video become Thinker inputs (saved beside the weights)."""

    frame_size: int = 32  # frames are resized to frame_size x frame_size before patchify
    seconds_per_chunk: float = 2.0
    image_mean: tuple[float, float, float] = field(default=_OPENAI_CLIP_MEAN)
    image_std: tuple[float, float, float] = field(default=_OPENAI_CLIP_STD)
    # The system prompt the weights were trained with (None: the Conductor's configured one);
    # a model trained from scratch only understands its own.
    system_prompt: str | None = None
    # The most frames of a turn the Thinker reads: its last ones (None: all). The tiny Thinker
    # learnt from turns of 4 frames (one chunk); a 4-s turn's 8 unsettle it into repeating
    # a word ("ThereThereThere…"), so it reads the last 2 s a real turn shows.
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None:
            check_int("max_frames", self.max_frames, 1)

    def save(self, directory: str | Path) -> None:
        (Path(directory) / INPUTS_CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> ThinkerInputsConfig | None:
        def build(data: dict) -> ThinkerInputsConfig:
            return cls(**(data | {k: tuple(data[k]) for k in ("image_mean", "image_std")}))

        return load_config(directory, INPUTS_CONFIG_NAME, build)


@dataclass(frozen=True)
class VisionGeometry:
    """The vision tower's patching (from the Thinker's vision config)."""

    patch_size: int
    temporal_patch_size: int
    merge_size: int


def resample_to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at `sample_rate` -> 16 kHz, with libswresample (via av)."""
    if sample_rate == SAMPLE_RATE:
        return audio
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
    frame.sample_rate = sample_rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def check_turn(turn: UserTurn) -> None:
    """ValueError / TypeError naming what is wrong with a turn the Thinker cannot read."""
    if not isinstance(turn, UserTurn):
        raise TypeError(f"expected a UserTurn, got {type(turn).__name__}")
    if turn.audio is not None:
        a = turn.audio
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind != "f":
            raise ValueError("UserTurn.audio must be a 1-D float numpy array (mono samples)")
        if a.size and not np.isfinite(a).all():
            raise ValueError("UserTurn.audio contains NaN or inf")
        if turn.audio_sample_rate <= 0:
            raise ValueError(f"bad audio_sample_rate {turn.audio_sample_rate}")
    for i, f in enumerate(turn.video):
        if not isinstance(f, np.ndarray) or f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise ValueError(f"UserTurn.video[{i}] must be an (H, W, 3) uint8 array")
    if turn.video and turn.video_fps <= 0:
        raise ValueError(f"bad video_fps {turn.video_fps}")
    if _holds_nothing(turn, turn.text):
        raise ValueError("empty UserTurn: no text, audio or video")


def _holds_nothing(turn: UserTurn, text: str) -> bool:
    """Whether `turn`, its words read as `text`, has no words, no audio and no video."""
    has_audio = turn.audio is not None and turn.audio.size > 0
    return not (text.strip() or has_audio or turn.video)


class TurnEncoder:
    """UserTurn -> prompt text (placeholders expanded) + audio/video tensors for the Thinker."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        feature_extractor: WhisperFeatureExtractor,
        geometry: VisionGeometry,
        config: ThinkerInputsConfig,
    ) -> None:
        step = geometry.patch_size * geometry.merge_size
        if config.frame_size % step:
            raise ValueError(f"frame_size {config.frame_size} must be a multiple of {step}")
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.geometry = geometry
        self.config = config
        # set: the user's words are read as word vectors (mavid.conductor.word_reading)
        self.reading: WordReading | None = None
        # the tokenizer's control tokens (the chat template's, the media placeholders, the
        # directive tags), longest first: written in a user's words they would be parsed as
        # the tokens themselves
        control = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)
        self._control = re.compile("|".join(map(re.escape, control))) if control else None

    def user_text(self, turn: UserTurn) -> str:
        """The turn's words as the prompt holds them: without the tokenizer's control tokens
        (typed, "<|VIDEO|>" became a video placeholder without frames, and the Thinker failed;
        "<|im_end|>" ended the user's turn early)."""
        text = turn.text.strip()
        if self._control is None or not self._control.search(text):
            return text
        return " ".join(self._control.sub(" ", text).split())

    # -- audio -------------------------------------------------------------------------
    def _audio_chunks(self, turn: UserTurn) -> list[np.ndarray]:
        if turn.audio is None or turn.audio.size == 0:
            return []
        audio = resample_to_16k(turn.audio.astype(np.float32), turn.audio_sample_rate)
        n = round(self.config.seconds_per_chunk * SAMPLE_RATE)
        chunks = [audio[i : i + n] for i in range(0, len(audio), n)]
        # The audio tower needs >= 2 mel frames after its two stride-2 convs; a sliver is noise.
        return [c for c in chunks if len(c) >= 4 * self.feature_extractor.hop_length]

    def _audio_features(self, chunks: list[np.ndarray]) -> dict[str, torch.Tensor]:
        n = round(self.config.seconds_per_chunk * SAMPLE_RATE)
        feats = self.feature_extractor(
            chunks,
            sampling_rate=SAMPLE_RATE,
            padding="max_length",
            max_length=n,
            truncation=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        # input_features: (num_chunks, n_mels, frames); feature_attention_mask: (num_chunks, frames)
        return {
            "input_features": feats["input_features"],
            "feature_attention_mask": feats["attention_mask"],
        }

    @staticmethod
    def audio_token_count(mel_frames: int) -> int:
        return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1

    # -- video -------------------------------------------------------------------------
    def _video_chunks(self, turn: UserTurn) -> list[list[np.ndarray]]:
        if not turn.video:
            return []
        per_chunk = self.config.seconds_per_chunk * turn.video_fps
        frames = turn.video[-self.config.max_frames :] if self.config.max_frames else turn.video
        chunks: dict[int, list[np.ndarray]] = {}
        for i, frame in enumerate(frames):
            chunks.setdefault(math.floor(i / per_chunk + 1e-9), []).append(frame)
        return [chunks[k] for k in sorted(chunks)]

    def _patchify(self, frames: list[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
        """Frames -> (grid_t*grid_h*grid_w, C*tp*p*p) patches in the vision tower's order."""
        g, s = self.geometry, self.config.frame_size
        x = (
            np.stack(
                [np.asarray(Image.fromarray(f).resize((s, s), Image.BICUBIC)) for f in frames]
            ).astype(np.float32)
            / 255.0
        )  # (T, s, s, 3)
        x = (x - np.asarray(self.config.image_mean, np.float32)) / np.asarray(
            self.config.image_std, np.float32
        )
        x = x.transpose(0, 3, 1, 2)  # (T, C, H, W)
        pad = (-x.shape[0]) % g.temporal_patch_size
        if pad:  # repeat the last frame to fill the temporal patch, as Qwen2-VL does
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        t, c = x.shape[0] // g.temporal_patch_size, x.shape[1]
        gh = gw = s // g.patch_size
        m, p, tp = g.merge_size, g.patch_size, g.temporal_patch_size
        x = x.reshape(t, tp, c, gh // m, m, p, gw // m, m, p)
        x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (t, gh/m, gw/m, m, m, C, tp, p, p)
        patches = x.reshape(t * gh * gw, c * tp * p * p)
        return torch.from_numpy(np.ascontiguousarray(patches)), [t, gh, gw]

    # -- the turn ----------------------------------------------------------------------
    def encode_user(self, turn: UserTurn) -> tuple[str, dict[str, torch.Tensor]]:
        """The user content (text, then interleaved chunks) and its multimodal tensors."""
        check_turn(turn)
        audio_chunks = self._audio_chunks(turn)
        video_chunks = self._video_chunks(turn)
        tensors: dict[str, torch.Tensor] = {}
        audio_tokens: list[int] = []
        if audio_chunks:
            tensors.update(self._audio_features(audio_chunks))
            frames = tensors["feature_attention_mask"].sum(-1).tolist()
            audio_tokens = [self.audio_token_count(int(f)) for f in frames]
        video_tokens: list[int] = []
        if video_chunks:
            patches, grids = zip(*(self._patchify(c) for c in video_chunks), strict=True)
            tensors["pixel_values_videos"] = torch.cat(patches)
            tensors["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)
            merge = self.geometry.merge_size**2
            video_tokens = [t * h * w // merge for t, h, w in grids]
            tensors["video_second_per_grid"] = torch.full(
                (len(grids),), self.geometry.temporal_patch_size / turn.video_fps
            )
        parts = [self.user_text(turn)]
        if _holds_nothing(turn, parts[0]):
            raise ValueError("empty UserTurn: its text holds only control tokens")
        for k in range(max(len(audio_tokens), len(video_tokens))):
            if k < len(audio_tokens):
                parts.append(AUDIO_BOS + AUDIO_TOKEN * audio_tokens[k] + AUDIO_EOS)
            if k < len(video_tokens):
                parts.append(VISION_BOS + VIDEO_TOKEN * video_tokens[k] + VISION_EOS)
        return "".join(parts), tensors

    def prompt_ids(
        self, turn: UserTurn, system_prompt: str, content: str
    ) -> tuple[list[int], dict[str, torch.Tensor]]:
        """The prompt's token ids, and with a word reading its (L, dim) `word_vectors` and (L,)
        `word_mask` over the user's text."""
        prompt = user_prompt(system_prompt, content)
        if self.reading is None:
            return self.tokenizer(prompt)["input_ids"], {}
        start = user_content_start(system_prompt)
        ids, vectors, mask = self.reading.inputs(
            self.tokenizer, prompt, start, start + len(self.user_text(turn))
        )
        return ids, dict(zip(WORD_INPUTS, (vectors, mask), strict=True))

    def encode_prompt(self, turn: UserTurn, system_prompt: str) -> BatchFeature:
        """A ready-to-generate batch of one: input_ids, attention_mask and media tensors (and
        the word reading's inputs, where there is one)."""
        content, tensors = self.encode_user(turn)
        ids, words = self.prompt_ids(turn, system_prompt, content)
        return BatchFeature(
            {
                "input_ids": torch.tensor([ids]),
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                **tensors,
                **{k: v[None] for k, v in words.items()},
            }
        )
