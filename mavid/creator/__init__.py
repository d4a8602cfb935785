"""The MAViD Creator: AR audio + DiT video coupled by the fusion module, streamed clip by clip."""

from mavid.creator.audio_decoder import AudioDecoder, SamplingConfig
from mavid.creator.dit import VideoDiT
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator, MavidCreatorStream

__all__ = [
    "AudioDecoder",
    "CreatorModel",
    "MavidCreator",
    "MavidCreatorStream",
    "SamplingConfig",
    "VideoDiT",
]
