"""Paper stage 1: train the Conductor to write directives (cross-entropy on the answer only).

The data is mixed so understanding is kept: plain QA examples (empty motion, "answer<m_bos><m_eos>")
sit beside full speech + motion directives. `collate` builds one padded batch from
(UserTurn, speech, motion) examples; `stage1_loss` is the loss of one training step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import BatchFeature, Qwen2_5OmniThinkerForConditionalGeneration

from mavid.conductor.features import TurnEncoder
from mavid.conductor.format import SYSTEM_PROMPT, directive_target, user_prompt
from mavid.interfaces import UserTurn

IGNORE_INDEX = -100


def collate(
    examples: Sequence[tuple[UserTurn, str, str]],
    encoder: TurnEncoder,
    system_prompt: str = SYSTEM_PROMPT,
) -> BatchFeature:
    """(turn, speech, motion) examples -> input_ids/attention_mask/labels + media tensors.

    Labels are IGNORE_INDEX on the prompt and padding, so only directive tokens (speech,
    <m_bos>, motion, <m_eos>, <|im_end|>) are learned. Sequences are right-padded.
    """
    if not examples:
        raise ValueError("collate needs at least one example")
    tok = encoder.tokenizer
    rows: list[tuple[list[int], list[int]]] = []
    media: dict[str, list[torch.Tensor]] = {}
    for turn, speech, motion in examples:
        content, tensors = encoder.encode_user(turn)
        prompt_ids = tok(user_prompt(system_prompt, content))["input_ids"]
        target_ids = tok(directive_target(speech.strip(), motion.strip()))["input_ids"]
        rows.append((prompt_ids, target_ids))
        for key, value in tensors.items():
            media.setdefault(key, []).append(value)
    length = max(len(p) + len(t) for p, t in rows)
    input_ids = torch.full((len(rows), length), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (p, t) in enumerate(rows):
        n = len(p) + len(t)
        input_ids[i, :n] = torch.tensor(p + t)
        labels[i, len(p) : n] = torch.tensor(t)
        attention_mask[i, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    # Media items of all examples, in order (the Thinker consumes them in placeholder order).
    batch.update({key: torch.cat(values) for key, values in media.items()})
    return BatchFeature(batch)


def stage1_loss(
    model: Qwen2_5OmniThinkerForConditionalGeneration, batch: BatchFeature | dict
) -> torch.Tensor:
    """Next-token cross-entropy on the directive tokens only (labels != IGNORE_INDEX)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]
    # A training forward must not reuse rope deltas left on the module by a previous generate.
    model.model.rope_deltas = None
    logits = model(**inputs, use_cache=False).logits  # (B, L, V)
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
