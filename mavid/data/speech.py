"""Speech for the synthetic world: espeak-ng driven through ctypes, with word and phoneme timing.

espeak-ng ships inside `espeakng-loader` (library + data), so this runs offline. Its C API keeps
one synthesizer per process and is not thread-safe: every call goes through `_ENGINE_LOCK`.
espeak renders at 22050 Hz; the tiny preset wants 24 kHz, so audio is resampled with
`av.AudioResampler` (never by hand).
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import espeakng_loader
import numpy as np

__all__ = [
    "ESPEAK_SAMPLE_RATE",
    "MAX_EXTRA_VARIANTS",
    "PhonemeTiming",
    "Utterance",
    "Voice",
    "WordTiming",
    "add_variants",
    "crossed_variant",
    "espeak_variants",
    "resample",
    "synthesize",
    "variant_formants",
    "variant_is_safe",
    "variant_settings",
    "voice_variants",
]

ESPEAK_SAMPLE_RATE = 22_050

# espeak_EVENT_TYPE values (speak_lib.h)
_EV_LIST_TERMINATED = 0
_EV_WORD = 1
_EV_MSG_TERMINATED = 6
_EV_PHONEME = 7

# espeak_PARAMETER values
_P_RATE = 1
_P_VOLUME = 2
_P_PITCH = 3
_P_RANGE = 4

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1

# Variants that keep speech intelligible (croak/whisper/klatt are timbre extremes worth having).
_VARIANTS = (
    "m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4 f5 croak whisper klatt klatt2 klatt3 "
    "adam anika belinda benjamin caleb david edward john linda max michel paul quincy "
    "rob robert steph travis victor zac"
).split()
_LANGS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029")


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the message
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_LIBC = ctypes.CDLL(None)
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Voice:
    """A speaker: an espeak voice + variant (timbre) and its rate and pitch (tone)."""

    name: str = "en-us+m3"  # "<language>+<variant>"
    rate: int = 165  # words per minute (espeak accepts 80..450)
    pitch: int = 50  # 0..100
    pitch_range: int = 50  # 0..100, intonation width

    def __post_init__(self) -> None:
        if not 80 <= self.rate <= 450:
            raise ValueError(f"rate {self.rate} outside 80..450 wpm")
        for what, value in (("pitch", self.pitch), ("pitch_range", self.pitch_range)):
            if not 0 <= value <= 100:
                raise ValueError(f"{what} {value} outside 0..100")

    @property
    def key(self) -> str:
        return f"{self.name}/r{self.rate}/p{self.pitch}/g{self.pitch_range}"


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class PhonemeTiming:
    ipa: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: Voice
    audio: np.ndarray  # (N,) float32 in [-1, 1]
    sample_rate: int
    words: tuple[WordTiming, ...] = field(default_factory=tuple)
    phonemes: tuple[PhonemeTiming, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.sample_rate


def _variants_dir() -> Path:
    return Path(espeakng_loader.get_data_path()) / "voices" / "!v"


def espeak_variants() -> list[str]:
    """Every voice variant espeak-ng's data ships (103; the world draws from `_VARIANTS`),
    names with spaces left out (espeak reads "+" names up to one)."""
    return sorted(p.name for p in _variants_dir().iterdir() if p.is_file() and " " not in p.name)


def variant_settings(variant: str) -> dict[str, tuple[str, ...]]:
    """A variant file's settings: keyword -> its values, one tuple per line joined (the
    formant lines keyed "formant 0", "formant 1", ...)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in (
        (_variants_dir() / variant).read_text(encoding="utf-8", errors="replace").splitlines()
    ):
        words = line.split("//")[0].split()
        if not words or words[0].startswith("#"):
            continue
        n = 2 if words[0] == "formant" and len(words) > 1 else 1  # "formant 3 ..."
        out[" ".join(words[:n])] = tuple(words[n:])
    return out


def variant_is_safe(variant: str) -> bool:
    """Whether a variant's settings stay in espeak-ng's documented ranges: an echo louder
    than 100 % (the "robosoft" and other robot variants ask for up to 10,000) overruns its
    echo buffer: "Demonic" crashed the process (a segfault in libespeak-ng) in training."""
    echo = variant_settings(variant).get("echo", ())
    try:
        return len(echo) < 2 or 0 <= int(echo[1]) <= 100
    except ValueError:
        return False


def variant_formants(variant: str) -> tuple[str, ...]:
    """A variant's formant lines (its timbre): two variants with the same are one voice
    (espeak's "anikaRobot" is "anika" with a flatter flutter)."""
    settings = variant_settings(variant)
    return tuple(f"{k} {' '.join(v)}" for k, v in settings.items() if k.startswith("formant "))


def voice_variants() -> list[str]:
    """Every voice name the world draws from ("<language>+<variant>")."""
    return [f"{lang}+{v}" for lang in _LANGS for v in _VARIANTS]


# the settings a crossed variant takes from its donors: timbre, voicing, pitch and prosody;
# never an echo (out of range it crashes espeak-ng: `variant_is_safe`), a name or a language
_CROSSED_KEYS = re.compile(
    r"^(formant \d|pitch|voicing|consonants|tone|roughness|flutter|breath|breathw|klatt"
    r"|intonation|stressAmp|stressAdd|stressLength)$"
)
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9_]{1,24}$")
# espeak-ng lists at most 349 voices (N_VOICES_LIST) and ships ~240 with its variants: a voice
# past the list cannot be chosen by name
MAX_EXTRA_VARIANTS = 100


def crossed_variant(donors: Sequence[str], rng: np.random.Generator) -> str:
    """A new voice variant (the text of its file): each setting (each formant, the pitch,
    voicing, ...) from a donor variant drawn at random, so a voice nobody shipped is made
    only of what `donors` have."""
    if not donors:
        raise ValueError("crossed_variant needs donor variants")
    settings = {d: variant_settings(d) for d in donors}
    keys = sorted({k for v in settings.values() for k in v if _CROSSED_KEYS.match(k)})
    lines = ["language variant", "name crossed"]
    for key in keys:
        donor = settings[donors[int(rng.integers(len(donors)))]]
        if key in donor:
            lines.append(f"{key} {' '.join(donor[key])}".strip())
    return "\n".join(lines) + "\n"


def add_variants(variants: Mapping[str, str]) -> None:
    """Make more voice variants speakable as "<language>+<name>": name -> the text of its
    variant file (espeak-ng's format, e.g. `crossed_variant`'s). espeak-ng reads variants from
    its data directory only, so the first call makes a copy of it out of links (in a temporary
    directory, removed at exit; the wheel's files are never written) and speaks from that.
    Per process; the same name with other settings is refused."""
    if all(_extra_variants.get(k) == v for k, v in variants.items()):
        return  # (already speakable: adding them again changes nothing)
    for name, text in variants.items():
        if not isinstance(name, str) or not _VARIANT_NAME.match(name):
            raise ValueError(f"a variant name is 1-24 letters, digits or _, got {name!r}")
        if (Path(espeakng_loader.get_data_path()) / "voices" / "!v" / name).exists():
            raise ValueError(f"espeak-ng already ships a variant {name!r}")
        if not isinstance(text, str) or "\0" in text:
            raise ValueError(f"variant {name!r}: its settings must be text")
        if _extra_variants.get(name, text) != text:
            raise ValueError(f"variant {name!r} was added with other settings")
    global _extra_data_dir
    with _ENGINE_LOCK:
        new = {k: v for k, v in variants.items() if k not in _extra_variants}
        if len(_extra_variants) + len(new) > MAX_EXTRA_VARIANTS:
            raise ValueError(f"at most {MAX_EXTRA_VARIANTS} added variants (espeak-ng's list)")
        if not new:
            return
        if _extra_data_dir is None:
            _extra_data_dir = _linked_data_copy()
        for name, text in new.items():
            (_extra_data_dir / "voices" / "!v" / name).write_text(text, encoding="utf-8")
        _extra_variants.update(new)


def _linked_data_copy() -> Path:
    """espeak-ng's data directory rebuilt from links to the wheel's files, its variants folder
    a real one that can take more."""
    root = Path(tempfile.mkdtemp(prefix="mavid-espeak-"))
    atexit.register(shutil.rmtree, root, True)
    wheel, data = Path(espeakng_loader.get_data_path()), root / "espeak-ng-data"
    for folder, keep in ((wheel, data), (wheel / "voices", data / "voices")):
        keep.mkdir()
        for entry in folder.iterdir():
            if entry.name not in ("voices", "!v"):
                (keep / entry.name).symlink_to(entry)
    variants = data / "voices" / "!v"
    variants.mkdir()
    for entry in (wheel / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    return data


class _Engine:
    """The process's one espeak-ng synthesizer (the C library holds global state)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        data = _extra_data_dir or Path(espeakng_loader.get_data_path())
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), options)
        if rate != ESPEAK_SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng initialised at {rate} Hz, expected {ESPEAK_SAMPLE_RATE}")
        # espeak seeds its own noise generator from the clock at start-up: pin it
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(0)
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            ev = events[i]
            if ev.type in (_EV_WORD, _EV_PHONEME):
                self._events.append(
                    (ev.type, ev.text_position, ev.length, ev.audio_position, bytes(ev.id.string))
                )
            elif ev.type == _EV_MSG_TERMINATED:
                break
            i += 1
        return 0

    def close(self) -> None:
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)

    def synth(self, text: str, voice: Voice) -> tuple[np.ndarray, list]:
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        self._lib.espeak_SetParameter(_P_RATE, voice.rate, 0)
        self._lib.espeak_SetParameter(_P_PITCH, voice.pitch, 0)
        self._lib.espeak_SetParameter(_P_RANGE, voice.pitch_range, 0)
        self._lib.espeak_SetParameter(_P_VOLUME, 100, 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        err = self._lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm, self._events


_ENGINE_LOCK = threading.Lock()
_engine: _Engine | None = None  # the loaded library instance, replaced before every utterance
# `add_variants`: the linked copy of espeak-ng's data the engine then reads, and what it added
_extra_data_dir: Path | None = None
_extra_variants: dict[str, str] = {}


def _fresh_engine() -> _Engine:
    """Unload and reload the library: espeak keeps state across utterances in static variables
    (e.g. the pitch flutter's phase), so an utterance's samples would depend on what this
    process said before. A fresh instance (~1 ms) makes every utterance reproducible.
    """
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None
    _engine = _Engine()
    return _engine


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample mono float32 audio with libswresample (av). Returns (M,) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono (N,) audio, got shape {audio.shape}")
    if src_rate == dst_rate or audio.size == 0:
        return audio.copy()
    frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
    frame.sample_rate = src_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=dst_rate)
    out = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    out += [f.to_ndarray()[0] for f in resampler.resample(None)]
    res = np.concatenate(out) if out else np.zeros(0, np.float32)
    # swresample's filter delay makes the length differ by a few samples: pin it to the ratio.
    want = round(audio.size * dst_rate / src_rate)
    if res.size >= want:
        return res[:want].astype(np.float32)
    return np.pad(res, (0, want - res.size)).astype(np.float32)


def _decode_ipa(raw: bytes) -> str:
    # id.string is 8 bytes, NUL-terminated when shorter; a multi-byte IPA char may be cut.
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="ignore")


def synthesize(text: str, voice: Voice | None = None, sample_rate: int = 24_000) -> Utterance:
    """Speak `text` with `voice`; returns audio at `sample_rate` with word and phoneme timing."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("synthesize needs non-empty text")
    voice = voice or Voice()
    with _ENGINE_LOCK:
        _LIBC.srand(0)  # klatt-type voices draw their noise from libc's rand()
        pcm, events = _fresh_engine().synth(text, voice)
    audio = pcm.astype(np.float32) / 32768.0
    audio = resample(audio, ESPEAK_SAMPLE_RATE, sample_rate)
    duration = audio.size / sample_rate

    words: list[WordTiming] = []
    phonemes: list[PhonemeTiming] = []
    word_events = [e for e in events if e[0] == _EV_WORD]
    phone_events = [e for e in events if e[0] == _EV_PHONEME]
    # espeak joins some words into one WORD event ("on the", "I am"): give every word of the
    # text a timing by splitting each event's span over the words it covers, by length.
    tokens = [(m.start(), m.group()) for m in re.finditer(r"[\w'’-]+", text)]
    spans = []  # (char start of the event, start s, end s)
    for i, (_, pos, _, ms, _) in enumerate(word_events):
        end = word_events[i + 1][3] / 1000.0 if i + 1 < len(word_events) else duration
        spans.append((pos - 1, ms / 1000.0, min(end, duration)))
    groups: list[list[str]] = [[] for _ in spans]
    for char, tok in tokens:
        k = max((j for j, sp in enumerate(spans) if sp[0] <= char), default=0)
        if groups:
            groups[k].append(tok)
    for (_, start, end), group in zip(spans, groups, strict=True):
        total = sum(len(g) for g in group) or 1
        t = start
        for g in group:
            dt = (end - start) * len(g) / total
            words.append(WordTiming(word=g, start=t, end=max(t, t + dt)))
            t += dt
    for i, (_, _, _, ms, sid) in enumerate(phone_events):
        ipa = _decode_ipa(sid)
        start = ms / 1000.0
        end = phone_events[i + 1][3] / 1000.0 if i + 1 < len(phone_events) else duration
        if ipa.strip():
            phonemes.append(PhonemeTiming(ipa=ipa, start=start, end=max(start, min(end, duration))))
    if words:
        # The last word ends at the last voiced phoneme, not in the trailing silence.
        last_end = max((p.end for p in phonemes if p.start >= words[-1].start), default=duration)
        words[-1] = WordTiming(words[-1].word, words[-1].start, min(last_end, duration))
    return Utterance(
        text=text,
        voice=voice,
        audio=audio,
        sample_rate=sample_rate,
        words=tuple(words),
        phonemes=tuple(phonemes),
    )
