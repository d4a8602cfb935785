"""The model bundle the agent loads: a Conductor and a Creator.

Checkpoint directory layout (any part optional except the Creator):
    <dir>/creator/            MAViD Creator checkpoint (config.json + model.safetensors);
                              <dir> itself may be one
    <dir>/conductor/          Thinker checkpoint (ours or a real Qwen2.5-Omni directory)
    <dir>/audio_tokenizer/    higgs-audio v2 tokenizer, for presets whose codec is not ours
    <dir>/video_vae/          Wan AutoencoderKLWan, likewise
    <dir>/avatar.png          the face streams start from when the caller gives none
`None` is the embedded default: mavid/weights/tiny/ when it ships, else the tiny preset with
deterministic random weights from `seed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mavid.checkpoint import CONFIG_NAME, load_checkpoint
from mavid.codecs.audio_tokenizer import HiggsAudioTokenizer
from mavid.codecs.video_vae import WanVideoVAE
from mavid.config import TINY
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator
from mavid.interfaces import Conductor, Creator

EMBEDDED_WEIGHTS = Path(__file__).parent / "weights" / "tiny"
AVATAR_IMAGE = "avatar.png"


@dataclass
class AvatarModel:
    conductor: Conductor
    creator: Creator


def load_creator(path: str | Path, device: str = "cpu") -> MavidCreator:
    """A MavidCreator from a checkpoint directory (see the module docstring for the layout)."""
    root = Path(path)
    creator_dir = root / "creator" if (root / "creator" / CONFIG_NAME).is_file() else root
    model = load_checkpoint(creator_dir, device=device)
    audio_codec = video_vae = None
    if model.audio_codec is None:
        audio_codec = HiggsAudioTokenizer.from_pretrained(root / "audio_tokenizer", device)
    if model.video_vae is None:
        video_vae = WanVideoVAE.from_pretrained(root / "video_vae", device)
    avatar = None
    if (root / AVATAR_IMAGE).is_file():
        from PIL import Image

        with Image.open(root / AVATAR_IMAGE) as image:
            avatar = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return MavidCreator(model, audio_codec, video_vae, device=device, default_reference=avatar)


def load_avatar_model(
    checkpoint: str | Path | None = None,
    *,
    conductor_url: str | None = None,
    conductor_model: str | None = None,
    conductor_api_key: str | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> AvatarModel:
    """Load the Conductor + Creator bundle; nothing is downloaded."""
    root = Path(checkpoint) if checkpoint is not None else None
    if root is None and (EMBEDDED_WEIGHTS / "creator" / CONFIG_NAME).is_file():
        root = EMBEDDED_WEIGHTS
    if root is not None:
        if not root.is_dir():
            raise FileNotFoundError(f"checkpoint directory {root} does not exist")
        creator = load_creator(root, device)
    else:
        model = CreatorModel.random(TINY, seed).to(device)
        creator = MavidCreator(model, device=device)
    conductor = _load_conductor(root, conductor_url, conductor_model, conductor_api_key, seed)
    return AvatarModel(conductor=conductor, creator=creator)


def _load_conductor(
    root: Path | None, url: str | None, model: str | None, api_key: str | None, seed: int
) -> Conductor:
    from mavid.conductor import OpenAIConductor, ThinkerConductor

    if url is not None:
        if not model:
            raise ValueError("conductor_url needs conductor_model (the served model's name)")
        return OpenAIConductor(base_url=url, model=model, api_key=api_key)
    if root is not None and (root / "conductor" / "config.json").is_file():
        return ThinkerConductor.from_pretrained(root / "conductor")
    with torch.random.fork_rng(devices=[]):
        return ThinkerConductor.tiny(seed=seed)
