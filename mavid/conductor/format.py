"""The Conductor's text format: special tokens, the chat layout and the system prompt (Eq. 3).

The Conductor answers with `speech directive … <m_bos> motion directive … <m_eos>`; motion may
be empty for plain QA. The same layout is used by the local Thinker and asked of remote models.
"""

from __future__ import annotations

import re
import unicodedata

M_BOS = "<m_bos>"
M_EOS = "<m_eos>"

# Qwen2.5-Omni's chat and multimodal placeholder tokens (same spelling as its tokenizer), so a
# real checkpoint's tokenizer and the tiny one agree on the prompt layout.
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
AUDIO_TOKEN = "<|AUDIO|>"
AUDIO_BOS = "<|audio_bos|>"
AUDIO_EOS = "<|audio_eos|>"
IMAGE_TOKEN = "<|IMAGE|>"
VIDEO_TOKEN = "<|VIDEO|>"
VISION_BOS = "<|vision_bos|>"
VISION_EOS = "<|vision_eos|>"

# Order matters for the tiny tokenizer: these get ids 0..N-1, below any vocab_size.
SPECIAL_TOKENS: tuple[str, ...] = (
    END_OF_TEXT,
    IM_START,
    IM_END,
    AUDIO_TOKEN,
    AUDIO_BOS,
    AUDIO_EOS,
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    VISION_BOS,
    VISION_EOS,
    M_BOS,
    M_EOS,
)

SYSTEM_PROMPT = (
    "You are the Conductor of a talking avatar in a live video call. Understand what the user "
    "says, shows and types, then answer in exactly this format and nothing else:\n"
    f"<what the avatar says, plain spoken words, with tone or voice hints if useful>{M_BOS}"
    f"<how the avatar moves: gestures, facial expression, head motion, scene>{M_EOS}\n"
    "Keep the spoken part short and natural (one to three sentences, no markdown, no lists). "
    f"If no particular motion is needed, leave the motion part empty: answer{M_BOS}{M_EOS}. "
    f"Always write {M_BOS} and {M_EOS} literally."
)


# The tiny Thinker's own system prompt (saved with its weights): it is trained from scratch, so
# the long instruction above would only be ~250 constant tokens of every sequence (~70 % of the
# compute) and a haystack in which to find the visitor's few words.
TINY_SYSTEM_PROMPT = "Answer the museum visitor."
# Stage 1's auxiliary task (training only): write down the visitor's words. Every word is a
# target, so the audio encoder learns to hear words far faster than from the answer choice alone.
TRANSCRIBE_PROMPT = "Write down the visitor's words."


def user_prompt(system: str, user_content: str) -> str:
    """The chat layout before the answer: system turn, user turn, open assistant turn."""
    return f"{_user_prefix(system)}{user_content}{IM_END}\n{IM_START}assistant\n"


def _user_prefix(system: str) -> str:
    return f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n"


def user_content_start(system: str) -> int:
    """Where the user content (its text first) begins in `user_prompt(system, ...)`."""
    return len(_user_prefix(system))


# typographic apostrophes (phones and word processors type "where’s") read as the plain one
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc", "'"))


def standard_characters(text: str) -> str:
    """`text` as the plain characters it stands for: compatibility forms (the full-width
    letters an input method types, ligatures) as their letters (NFKC), typographic
    apostrophes as "'"."""
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)


def plain_words(text: str) -> str:
    """The words of `text` as a transcript: lower case, no punctuation (how the tiny Thinker
    reads every turn: its typed turns are typed so and its hearing writes so)."""
    return " ".join(re.sub(r"[?!.,']", "", standard_characters(text).lower()).split())


def transcript_target(words: str) -> str:
    """The target of the auxiliary transcription task: the words, then the end of the turn."""
    return f"{words}{IM_END}"


def directive_target(speech: str, motion: str = "") -> str:
    """The answer text the Conductor is trained to write (Eq. 3); motion empty for plain QA."""
    return f"{speech}{M_BOS}{motion}{M_EOS}{IM_END}"
