"""Paper stage 1: train the Conductor to write directives (cross-entropy on the answer only).

The data is mixed so understanding is kept: plain QA examples (empty motion, "answer<m_bos><m_eos>")
sit beside full speech + motion directives. `collate` builds one padded batch from
(UserTurn, speech, motion) examples; `stage1_loss` is the loss of one training step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BatchFeature, Qwen2_5OmniThinkerForConditionalGeneration

from mavid.conductor.features import TurnEncoder
from mavid.conductor.format import SYSTEM_PROMPT, directive_target
from mavid.conductor.word_reading import WORD_INPUTS, WordReading, pad_inputs, reading_applied
from mavid.interfaces import UserTurn

IGNORE_INDEX = -100
# The audio tower's CTC alphabet (stage 1's auxiliary loss): blank, space, apostrophe, a-z.
CTC_ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"
CTC_BLANK = 0


def collate(
    examples: Sequence[tuple[UserTurn, str, str]],
    encoder: TurnEncoder,
    system_prompt: str = SYSTEM_PROMPT,
) -> BatchFeature:
    """(turn, speech, motion) examples -> input_ids/attention_mask/labels + media tensors.

    Labels are IGNORE_INDEX on the prompt and padding, so only directive tokens (speech,
    <m_bos>, motion, <m_eos>, <|im_end|>) are learned. Sequences are right-padded.
    """
    return collate_rows(
        [(t, system_prompt, directive_target(s.strip(), m.strip())) for t, s, m in examples],
        encoder,
    )


def collate_rows(rows: Sequence[tuple[UserTurn, str, str]], encoder: TurnEncoder) -> BatchFeature:
    """(turn, system prompt, target text) rows -> one padded batch (`collate` for any task)."""
    if not rows:
        raise ValueError("collate needs at least one example")
    tok = encoder.tokenizer
    ids: list[tuple[list[int], list[int]]] = []
    media: dict[str, list[torch.Tensor]] = {}
    words: list[tuple[torch.Tensor, torch.Tensor]] = []
    for turn, system_prompt, target in rows:
        content, tensors = encoder.encode_user(turn)
        prompt_ids, reading = encoder.prompt_ids(turn, system_prompt, content)
        ids.append((prompt_ids, tok(target)["input_ids"]))
        for key, value in tensors.items():
            media.setdefault(key, []).append(value)
        if reading:
            words.append(tuple(reading[k] for k in WORD_INPUTS))
    length = max(len(p) + len(t) for p, t in ids)
    input_ids = torch.full((len(ids), length), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(ids), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
    for i, (p, t) in enumerate(ids):
        n = len(p) + len(t)
        input_ids[i, :n] = torch.tensor(p + t)
        labels[i, len(p) : n] = torch.tensor(t)
        attention_mask[i, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    if words:  # the answer's tokens keep their own embeddings (mask False there)
        batch.update(zip(WORD_INPUTS, pad_inputs(words, length), strict=True))
    # Media items of all examples, in order (the Thinker consumes them in placeholder order).
    batch.update({key: torch.cat(values) for key, values in media.items()})
    return BatchFeature(batch)


def stage1_loss(
    model: Qwen2_5OmniThinkerForConditionalGeneration,
    batch: BatchFeature | dict,
    head_tokens: int = 0,
    head_weight: float = 1.0,
    reading: WordReading | None = None,
) -> torch.Tensor:
    """Next-token cross-entropy on the directive tokens only (labels != IGNORE_INDEX).

    `head_tokens` > 0 weighs the first directive tokens of each example by `head_weight`:
    they are where the answer is chosen (the rest follows from them), yet in a long answer
    they are a few percent of the tokens, so the plain mean is mostly spent on copying.
    """
    logits = directive_logits(model, batch, reading)
    return directive_loss(logits, batch["labels"], head_tokens, head_weight)


def directive_logits(
    model: Qwen2_5OmniThinkerForConditionalGeneration,
    batch: BatchFeature | dict,
    reading: WordReading | None = None,
) -> torch.Tensor:
    """(B, L, V) logits of a collated batch (teacher forcing); a batch collated with a word
    reading needs that reading."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    # A training forward must not reuse rope deltas left on the module by a previous generate.
    model.model.rope_deltas = None
    with reading_applied(model, reading, inputs):
        return model(**inputs, use_cache=False).logits


def directive_loss(
    logits: torch.Tensor, labels: torch.Tensor, head_tokens: int = 0, head_weight: float = 1.0
) -> torch.Tensor:
    """`stage1_loss` from (B, L, V) logits and (B, L) labels."""
    labels = labels[:, 1:]  # (B, L-1): the token each position predicts
    ce = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view_as(labels)  # (B, L-1), 0 where ignored
    target = labels != IGNORE_INDEX
    weight = target.float()
    if head_tokens > 0 and head_weight != 1.0:
        position = target.long().cumsum(-1)  # 1 for the first directive token, 2 ...
        weight = torch.where(target & (position <= head_tokens), head_weight, weight)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


def head_correct(logits: torch.Tensor, labels: torch.Tensor, head_tokens: int) -> torch.Tensor:
    """(B,) bool: the first `head_tokens` directive tokens all predicted right (teacher forcing).

    A cheap stand-in for intent accuracy during training: the answer is chosen there.
    """
    labels = labels[:, 1:]
    target = labels != IGNORE_INDEX
    head = target & (target.long().cumsum(-1) <= head_tokens)  # (B, L-1)
    right = logits[:, :-1].argmax(-1) == labels
    return (right | ~head).all(-1)


def spec_augment(
    batch: BatchFeature | dict,
    rng: np.random.Generator,
    time_masks: int = 2,
    time_width: int = 20,
    freq_masks: int = 2,
    freq_width: int = 4,
) -> None:
    """SpecAugment in place on the audio chunks' log-mel `input_features` (training only).

    Each chunk gets `time_masks` bands of up to `time_width` frames (within its real frames, by
    `feature_attention_mask`) and `freq_masks` bands of up to `freq_width` mel bins, set to the
    chunk's mean, so the audio encoder cannot lean on one exact spot of one exact voice.
    """
    if "input_features" not in batch:
        return
    feats = batch["input_features"]  # (chunks, n_mels, frames)
    frames = batch["feature_attention_mask"].sum(-1).tolist()  # real frames per chunk
    for c in range(feats.shape[0]):
        fill = feats[c, :, : max(1, int(frames[c]))].mean()
        for _ in range(time_masks):
            w = int(rng.integers(0, time_width + 1))
            if 0 < w < frames[c]:
                t0 = int(rng.integers(0, int(frames[c]) - w + 1))
                feats[c, :, t0 : t0 + w] = fill
        for _ in range(freq_masks):
            w = int(rng.integers(0, freq_width + 1))
            if 0 < w < feats.shape[1]:
                f0 = int(rng.integers(0, feats.shape[1] - w + 1))
                feats[c, f0 : f0 + w, :] = fill


def ctc_targets(transcripts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the transcript as CTC_ALPHABET ids (1..), padded -> (B, L) ids and (B,) lengths
    (0 where a row has no transcript: typed, or no words known)."""
    ids = []
    for text in transcripts:
        chars = " ".join(re.sub(r"[^a-z' ]", " ", (text or "").lower()).split())
        ids.append([1 + CTC_ALPHABET.index(c) for c in chars])
    longest = max(1, *(len(i) for i in ids))
    out = torch.zeros(len(ids), longest, dtype=torch.long)
    for r, row in enumerate(ids):
        out[r, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out, torch.tensor([len(i) for i in ids], dtype=torch.long)


def audio_ctc_loss(
    model: Qwen2_5OmniThinkerForConditionalGeneration,
    head: torch.nn.Module,
    batch: BatchFeature | dict,
    targets: torch.Tensor,
    lengths: torch.Tensor,
) -> torch.Tensor:
    """CTC of the audio tower's output tokens (one per 40 ms) against each spoken row's words.

    The directive loss reaches the audio tower only through the whole decoder and a choice
    among ~40 answers: too little signal to learn to hear words (the first stage-1 recipes
    answered 5-13 % of spoken turns). CTC on the tower itself gives every 40 ms a target.
    Rows without audio or transcript are left out; 0 when no row has both.
    """
    if "input_features" not in batch or not bool((lengths > 0).any()):
        return torch.zeros((), device=targets.device)
    feats = model.get_audio_features(
        batch["input_features"], feature_attention_mask=batch["feature_attention_mask"]
    ).last_hidden_state  # (audio tokens of all rows, in row order, D)
    per_row = (batch["input_ids"] == model.config.audio_token_id).sum(-1)  # (B,)
    rows = torch.split(feats, per_row.tolist())
    keep = [r for r in range(len(rows)) if lengths[r] > 0 and per_row[r] > 0]
    if not keep:
        return torch.zeros((), device=targets.device)
    longest = max(int(per_row[r]) for r in keep)
    x = torch.zeros(longest, len(keep), feats.shape[-1], device=feats.device, dtype=feats.dtype)
    for j, r in enumerate(keep):
        x[: per_row[r], j] = rows[r]
    log_probs = head(x).float().log_softmax(-1)  # (T, N, C)
    return F.ctc_loss(
        log_probs,
        targets[keep],
        per_row[keep],
        lengths[keep],
        blank=CTC_BLANK,
        zero_infinity=True,  # a turn spoken too fast for its token count is left out
    )
