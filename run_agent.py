"""run_agent.py: the one command-line entry point of mavid-agent.

Every option of every subcommand comes, in this order of precedence, from the command line,
from a `MAVID_<OPTION>` environment variable, or from the subcommand's table of a TOML
config file (`--config FILE` or `MAVID_CONFIG`), for example::

    [serve]
    port = 8080
    max_sessions = 4

Parsing, typing and validation are pydantic-settings'; a wrong type or an unknown key is an
error that names the key and where it may come from.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# OpenMP's spinning waits collapse throughput when model threads share 2 cores with the event
# loop and other sessions (measured: 2.5 s -> 0.64 s per clip); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliSubCommand,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

log = logging.getLogger("mavid.cli")

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("mavid_config_file", default=None)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ConfigError(Exception):
    """A setting is wrong: the message names the key and the places it may come from."""


class Command(BaseSettings):
    """Options every subcommand has, and where settings come from."""

    model_config = SettingsConfigDict(
        env_prefix="MAVID_",
        extra="forbid",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        validate_default=True,
    )
    # The TOML table this command reads; set by each subclass.
    toml_table: ClassVar[str] = ""

    config: Path | None = Field(
        None,
        description="TOML config file; this command reads its table (e.g. [serve]).",
    )
    log_level: LogLevel = Field("INFO", description="Logging level.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE.get()
        if path is not None and cls.toml_table:
            sources.append(
                TomlConfigSettingsSource(
                    settings_cls, toml_file=path, toml_table_header=(cls.toml_table,)
                )
            )
        return tuple(sources)


class ServeCommand(Command):
    """Run the avatar agent: HTTP signaling, the browser client page and WebRTC sessions."""

    toml_table: ClassVar[str] = "serve"

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 for all).")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on (0: any free).")
    ref_image: Path | None = Field(
        None, description="Reference face image (PNG/JPEG) for the avatar; default: built in."
    )
    token: str | None = Field(
        None, description="Bearer token required on /offer and /whip (none: open)."
    )
    max_sessions: int = Field(4, ge=1, description="Concurrent sessions; more get 503.")
    threads: int = Field(
        2, ge=1, description="Worker threads for model work, shared by all sessions."
    )
    ice_host_addresses: list[str] = Field(
        default_factory=list,
        description=(
            "Pin the local ICE host candidates to these addresses (e.g. 127.0.0.1); "
            "default: every interface."
        ),
    )
    checkpoint: Path | None = Field(
        None, description="MAViD checkpoint directory; default: the embedded mavid-tiny."
    )
    conductor_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint for a remote Conductor (e.g. a vLLM server).",
    )
    conductor_model: str | None = Field(None, description="Model name at --conductor-url.")
    conductor_api_key: str | None = Field(None, description="API key for --conductor-url.")
    whisper_model: Path | None = Field(
        None,
        description="A local CTranslate2 Whisper directory (e.g. a larger Whisper converted "
        "with ct2-transformers-converter) to write down the spoken turns the Conductor's ear "
        "leaves, people's voices among them; default: the checkpoint's hearing.json says.",
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads per model call (default: as the process has them: "
        "one, as silero-vad, the turn detector, sets on import; Whisper's decodes take half "
        "as many each, at least one).",
    )
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN server URLs offered to peers (none: host only).",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest /offer or /whip body; bigger ones get 413."
    )
    seed: int | None = Field(None, description="Creator seed per session (default: random).")
    vad_threshold: float = Field(
        0.5, gt=0, lt=1, description="silero-vad speech probability threshold."
    )
    vad_min_speech_ms: int = Field(
        96, ge=32, description="Speech this long starts a turn (and interrupts the avatar)."
    )
    vad_hangover_ms: int = Field(320, ge=32, description="Silence this long ends the user's turn.")
    words_per_clip: float = Field(2.5, gt=0, description="Words of speech per ~1-s clip.")
    first_clip_words: float = Field(
        1.5, gt=0, description="Words in the (shorter) first clip of an answer."
    )
    max_answer_clips: int = Field(60, ge=1, description="Longest answer, in clips.")
    connect_timeout_s: float = Field(
        20.0, gt=0, description="End a session whose peer has not connected within this time."
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Origins allowed to embed the avatar (CORS); ["*"]: any, []: same origin.',
    )

    def server_config(self) -> Any:
        from signaling.server import ServerConfig

        cfg = _dataclass_from(ServerConfig, self)
        for name in ("ref_image", "checkpoint", "whisper_model"):
            value = getattr(cfg, name)
            if value is not None:
                setattr(cfg, name, str(value))
        return cfg

    def cli_cmd(self) -> None:
        from signaling.server import serve

        cfg = self.server_config()
        _run_async(
            serve(cfg, ready=lambda url: print(f"mavid-agent is up: open {url}", flush=True))
        )


class RenderCommand(Command):
    """Write an MP4 (H.264 + AAC) of the avatar's answer, clip by clip."""

    toml_table: ClassVar[str] = "render"

    question: str | None = Field(None, description="A question for the Conductor to answer.")
    speech: str | None = Field(
        None, description="Speech directive to render directly (bypasses the Conductor)."
    )
    motion: str | None = Field(None, description="Motion directive to go with --speech.")
    out: Path = Field(Path("answer.mp4"), description="Output MP4 file.")
    clips: int | None = Field(
        None, ge=1, description="Number of clips (any length); default: as the speech needs."
    )
    ref_image: Path | None = Field(None, description="Reference face image; default: built in.")
    checkpoint: Path | None = Field(
        None, description="MAViD checkpoint directory; default: the embedded mavid-tiny."
    )
    seed: int = Field(0, description="Random seed of the sampler.")

    def cli_cmd(self) -> None:
        from mavid.render import RenderConfig, render_main

        if not (self.question or self.speech):
            raise ConfigError("render needs --question or --speech")
        out = render_main(_dataclass_from(RenderConfig, self))
        print(f"wrote {out}")


class DataCommand(Command):
    """Build the synthetic audio-visual world (sharded, resumable, deterministic)."""

    toml_table: ClassVar[str] = "data"

    out: Path = Field(Path("data/world"), description="Output directory (shards + manifest).")
    seed: int = Field(0, description="World seed: the same seed builds the same world.")
    samples: int = Field(1000, ge=1, description="Number of samples to build.")
    workers: int = Field(2, ge=0, description="Worker processes (0 or 1: in this process).")
    shard_size: int = Field(100, ge=1, description="Samples per shard.")

    def cli_cmd(self) -> None:
        from mavid.data.build import WorldConfig, build_world

        build_world(_dataclass_from(WorldConfig, self))


class TrainCommand(Command):
    """Train one stage of mavid-tiny on a built world (resumable; deterministic on CPU).

    Stages chain through --init: codecs -> creator-audio -> creator-joint; conductor stands alone
    (or goes on from a trained one).
    """

    toml_table: ClassVar[str] = "train"

    stage: Literal["codecs", "conductor", "creator-audio", "creator-joint", "ear"] = Field(
        description="Training stage: the codecs, one of the paper's three stages, or the "
        "Conductor's ear (a letter recognizer trained on generated speech; reads no world)."
    )
    data: Path = Field(Path("data/world"), description="A built world (run_agent.py data).")
    out: Path = Field(description="Run folder: checkpoints/, log.jsonl, loss.png, model/.")
    steps: int = Field(1000, ge=1, description="Optimizer steps in all.")
    batch_size: int = Field(8, ge=1, description="Samples per step.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (warmup, then cosine).")
    warmup_steps: int | None = Field(
        None, ge=0, description="Steps of linear warmup (default: 5 % of --steps)."
    )
    seed: int = Field(0, description="Seed: the same seed and world give the same weights.")
    threads: int = Field(2, ge=1, description="torch intra-op threads.")
    resume: bool = Field(True, description="Continue from the run folder's latest checkpoint.")
    init: Path | None = Field(
        None,
        description="Creator stages: the previous stage's model/ directory; codecs: keep this "
        "model's audio tokenizer; conductor: go on from this trained Conductor; ear: from "
        "this trained ear.",
    )
    codecs: Path | None = Field(
        None,
        description="Creator stages: take the codecs from this codecs run's model/ (its audio "
        "tokenizer must be the one --init was trained with).",
    )
    code_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Creator stages: share of input code columns hidden from the AR decoder.",
    )
    phone_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Creator stages: share of items trained without their phone track.",
    )
    speech_utterances: int = Field(
        0,
        ge=0,
        description="Creator stages: a pool of this many generated utterances (0: none).",
    )
    speech_share: float = Field(
        0.5, ge=0, le=1, description="Creator stages: share of batches from generated speech."
    )
    preset: str = Field("tiny", description="Model preset of the codecs stage (tiny, paper).")
    creator_preset: str | None = Field(
        None,
        description="Creator stages: train under this preset's Creator config (e.g. tiny), "
        "starting from --init's weights.",
    )
    max_samples: int | None = Field(None, ge=1, description="Use only the first N samples.")
    val_samples: int = Field(32, ge=0, description="Held-out samples scored at checkpoints.")
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints.")
    stop_after: int | None = Field(
        None, ge=1, description="End this run at this step (resume later with the same command)."
    )
    conductor_turns: float = Field(
        0.75, ge=0, le=1, description="Conductor: share of each batch from generated turns."
    )
    conductor_augment: bool = Field(
        True, description="Conductor: the issue-7 recipe (mavid.train.stage1.Stage1Config)."
    )
    conductor_hearing: Literal["off", "domain", "general"] = Field(
        "off",
        description="Conductor: write spoken turns down with PocketSphinx (domain: a language "
        "model of the known texts) and train on the transcripts (mavid.conductor.hearing).",
    )
    conductor_reading: Literal["off", "words"] = Field(
        "off",
        description="Conductor: read the user's words as frozen word vectors (WordLlama's, "
        "shipped in its wheel; mavid.conductor.word_reading).",
    )
    video_crop: int | None = Field(
        None, ge=8, description="codecs: train the video VAE on random crops of this size (px)."
    )
    history_noise: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="creator-joint: noise the previous clip's latents to t ~ U(0, this).",
    )
    mouth_weight: float = Field(
        1.0,
        ge=1.0,
        description="creator-joint: L_DIFF's weight on the latent cells of the mouth (1: uniform).",
    )
    freeze_audio: bool = Field(
        False,
        description="creator-joint: keep the AR decoder as --init left it (the face learns, the "
        "speech stays; no --speech-utterances).",
    )
    ear_tract: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="ear: scale each utterance's vocal tract (formants and pitch) by "
        "U(1 - this, 1 + this), toward people's voices.",
    )
    ear_reverb: float = Field(
        0.0, ge=0.0, le=1.0, description="ear: share of its utterances heard in a room (reverb)."
    )
    ear_more_questions: bool = Field(
        False,
        description="ear: its domain texts include the knowledge base's other ways of asking "
        "(mavid/data/more_questions.json).",
    )
    ear_more_voices: bool = Field(
        False,
        description="ear: its voices include every other variant espeak-ng ships, none with "
        "a held-out voice's timbre.",
    )
    ear_crossed_voices: int = Field(
        0,
        ge=0,
        le=100,
        description="ear: this many voice variants nobody shipped, each setting crossed from "
        "the world's training voices' variants; half its utterances in them (with "
        "--ear-more-voices, in those and them).",
    )
    device: str = Field(
        "cpu", description="Where to train: cpu, or cuda (a GPU; same steps, same recipe)."
    )
    workers: int = Field(
        0, ge=0, description="Processes making batches ahead (the conductor's generated turns)."
    )

    def cli_cmd(self) -> None:
        from mavid.train import TrainConfig, train_main

        result = train_main(_dataclass_from(TrainConfig, self))
        where = f", model in {result.model}" if result.model else " (stopped; rerun to resume)"
        print(f"{result.stage}: step {result.step}{where}")


class ExportCommand(Command):
    """Assemble a model directory (default: the shipped mavid/weights/tiny) from trained runs:
    the Creator, the Conductor, the default face, each stage's loss plot and provenance."""

    toml_table: ClassVar[str] = "export"

    creator: Path = Field(description="The creator-joint run's model/ directory.")
    conductor: Path = Field(description="The conductor run's model/ directory.")
    dest: Path = Field(Path("mavid/weights/tiny"), description="Directory to (re)write.")
    temperature: float | None = Field(
        None, ge=0, description="AR sampling temperature to ship (default: the run's; 0 greedy)."
    )
    phone_guidance: float | None = Field(
        None, ge=1, description="Phone-track guidance to ship (default: the run's; 1 off)."
    )
    sampler_steps: int | None = Field(
        None, ge=1, description="DiT denoising steps per clip to ship (default: the run's)."
    )
    audio_guidance: float | None = Field(
        None, ge=1, description="Guidance on the speech (F_a) to ship (default: the run's; 1 off)."
    )
    history_noise: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Noise on the previous clip as the DiT reads it, to ship (default: the run's).",
    )
    history_anchor: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Pull of the previous clip towards the reference image outside the mouth, "
        "to ship (default: the run's; 0 off).",
    )
    speech_codebooks: int | None = Field(
        None,
        ge=0,
        description="Synthesise the speech from each frame's first N codebooks only, to ship "
        "(default: the run's; 0 all).",
    )
    expected_speech: bool | None = Field(
        None,
        description="Synthesise the speech from the expected codebook entries under the AR "
        "decoder's probabilities, not the drawn ones, to ship (default: the run's).",
    )
    conductor_knowledge: Literal["keep", "domain"] = Field(
        "keep",
        description="The Conductor's knowledge base (a question it was never taught read as the "
        "known one nearest; mavid.conductor.knowledge): domain = the world's known questions; "
        "keep = the conductor directory's own, if any.",
    )
    conductor_ear: Path | None = Field(
        None,
        description="An ear run's model/ directory (a letter recognizer of espeak voices, "
        "mavid.conductor.ear) to hear spoken turns before PocketSphinx (default: the "
        "conductor directory's own, if any).",
    )
    ear_confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="How sure the ear must be of its letters for them to count (default: the "
        "hearing's).",
    )
    ear_words: bool = Field(
        False,
        description="Read the ear's letters as words of the questions the Conductor knows (a "
        "beam search through their words, scored by their bigram: mavid.conductor.ear_words).",
    )
    ear_check: Path | None = Field(
        None,
        description="A second ear run's model/ directory: the ear's letters count only where "
        "it is as sure (two ears trained apart are seldom both sure of a person's voice).",
    )
    recognizer: Literal["pocketsphinx", "whisper"] | None = Field(
        None,
        description="What writes down the spoken turns the ear leaves, people's voices among "
        "them: whisper = Whisper tiny.en (mavid.whisper_asr; offline, from a wheel), "
        "pocketsphinx = PocketSphinx in the domain's language model (default: the conductor's).",
    )
    whisper_model: Path | None = Field(
        None,
        description="A local CTranslate2 Whisper directory to ship beside the Conductor, with "
        "--recognizer whisper (default: the Whisper tiny.en copy shipped in a wheel).",
    )
    whisper_alternatives: float | None = Field(
        None,
        ge=0,
        description="Whisper's other hypotheses within this of its best score (mean "
        "log-probability per token) are offered to the knowledge base, which reads one that is "
        "nearly a known question instead (0: off; default: the conductor's).",
    )

    ear_second_opinion: float | None = Field(
        None,
        ge=0,
        description="Where the ear's words fit its hearing of a turn worse than this (CTC loss "
        "per letter), the recognizer writes the turn down too, and its words are read where "
        "they fit the ear's hearing better (0: off; default: the conductor's).",
    )
    ear_words_prompt: bool | None = Field(
        None,
        description="Wherever Whisper writes a turn down (the turns the ears are unsure of, the "
        "second opinion), it hears it a second time told the ear's words as what came before, "
        "and those words are read where they fit the ear's hearing better (needs --ear-words "
        "and --recognizer whisper; default: the conductor's).",
    )

    conductor_max_frames: int | None = Field(
        None,
        ge=1,
        description="The most camera frames of a turn the Conductor reads, its last ones "
        "(default: the conductor directory's setting; mavid-tiny's Thinker learnt from 4).",
    )

    def cli_cmd(self) -> None:
        from mavid.train.export import chain_plots, domain_knowledge, export_tiny

        # a new ear's own plot first: the conductor's chain may pass through an earlier
        # export whose conductor part carries an older ear's
        ear = [self.conductor_ear] if self.conductor_ear is not None else []
        plots = chain_plots(self.creator, *ear, self.conductor)
        dest = export_tiny(
            self.creator,
            self.conductor,
            self.dest,
            plots,
            knowledge=domain_knowledge() if self.conductor_knowledge == "domain" else None,
            ear=self.conductor_ear,
            ear_confidence=self.ear_confidence,
            ear_words=self.ear_words,
            ear_check=self.ear_check,
            recognizer=self.recognizer,
            whisper_model=self.whisper_model,
            whisper_alternatives=self.whisper_alternatives,
            ear_second_opinion=self.ear_second_opinion,
            ear_words_prompt=self.ear_words_prompt,
            max_frames=self.conductor_max_frames,
            temperature=self.temperature,
            phone_guidance=self.phone_guidance,
            sampler_steps=self.sampler_steps,
            audio_guidance=self.audio_guidance,
            history_noise=self.history_noise,
            history_anchor=self.history_anchor,
            speech_codebooks=self.speech_codebooks,
            expected_speech=self.expected_speech,
        )
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        print(f"exported to {dest} ({size / 2**20:.1f} MiB; loss plots: {', '.join(plots)})")


class EvalCommand(Command):
    """Run the evaluation meters on the synthetic world's test split: the model table (default)
    or, with --reference, the world's own ground truth with control rows."""

    toml_table: ClassVar[str] = "eval"

    reference: bool = Field(
        False,
        description="Score the world's own ground truth (the reference row) with control rows.",
    )
    world: Path = Field(
        Path("data/world"), description="A built world (a small one is built here if missing)."
    )
    out: Path = Field(Path("eval"), description="Where the JSON, Markdown table and PNG go.")
    checkpoint: Path | None = Field(
        None, description="Model directory to score (default: the embedded mavid-tiny)."
    )
    split: Literal["train", "val", "test"] = Field("test", description="Split to score.")
    max_samples: int = Field(40, ge=1, description="Answers to score.")
    long_samples: int = Field(6, ge=0, description="Long answers to score (model table).")
    long_seconds: float = Field(18.0, gt=0, description="Length long answers are cut to.")
    conductor: bool = Field(True, description="Also score the Conductor (model table).")
    threads: int = Field(2, ge=1, description="Torch threads (model table).")
    build_samples: int = Field(60, ge=1, description="Size of the world built if none exists.")
    seed: int = Field(0, description="Seed of a world built here / of the Creator's sampling.")
    controls: bool = Field(
        True, description="Also score broken copies (noise, shifted audio, swapped face/voice)."
    )

    def cli_cmd(self) -> None:
        if self.reference:
            from mavid.eval.report import EvalConfig, reference_main

            code = reference_main(_dataclass_from(EvalConfig, self))
        else:
            from mavid.data.shards import MANIFEST
            from mavid.eval.model_eval import ModelEvalConfig, model_eval_main

            if not (self.world / MANIFEST).is_file():
                raise ConfigError(
                    f"--world {self.world} holds no built world: build one with "
                    "`run_agent.py data --out DIR` (the model is scored on its test split)"
                )
            code = model_eval_main(_dataclass_from(ModelEvalConfig, self))
        if code:
            raise SystemExit(code)


class Root(BaseSettings):
    """mavid-agent: a realtime, full-duplex audio-visual avatar agent (MAViD).

    `run_agent.py livekit dev|start|connect --room NAME|token` runs the agent as a
    livekit-agents worker (see `run_agent.py livekit --help`).
    """

    model_config = SettingsConfigDict(cli_prog_name="run_agent.py", cli_kebab_case=True)

    serve: CliSubCommand[ServeCommand]
    render: CliSubCommand[RenderCommand]
    data: CliSubCommand[DataCommand]
    train: CliSubCommand[TrainCommand]
    eval: CliSubCommand[EvalCommand]
    export: CliSubCommand[ExportCommand]

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


COMMANDS: dict[str, type[Command]] = {
    "serve": ServeCommand,
    "render": RenderCommand,
    "data": DataCommand,
    "train": TrainCommand,
    "eval": EvalCommand,
    "export": ExportCommand,
}


def _dataclass_from(cls: type, settings: Command) -> Any:
    """Build a subsystem's dataclass config from the fields it shares with a command."""
    known = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in settings.model_dump().items() if k in known})


def _livekit(argv: list[str]) -> int:
    """`run_agent.py livekit dev|start|connect --room R|token ...`: a livekit-agents worker.

    livekit-agents owns this command line (its own modes and LIVEKIT_* variables); the agent's
    own settings come from MAVID_* variables and the [serve] table of the config file.
    """
    from agent.livekit_worker import LiveKitWorkerConfig, livekit_main

    _CONFIG_FILE.set(_config_path(argv))
    try:
        server = ServeCommand(_cli_parse_args=[]).server_config()
    except ValidationError as exc:
        print(_explain(exc, "serve"), file=sys.stderr)
        return 2
    livekit_main(argv, LiveKitWorkerConfig(server=server))
    return 0


def _run_async(main: Any) -> None:
    """Run a coroutine on uvloop; Ctrl-C ends it cleanly."""
    import uvloop

    try:
        uvloop.run(main)
    except KeyboardInterrupt:
        pass


def _config_path(argv: list[str]) -> Path | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    path = known.config or (
        Path(os.environ["MAVID_CONFIG"]) if "MAVID_CONFIG" in os.environ else None
    )
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for key, value in data.items():
        if key not in COMMANDS or not isinstance(value, dict):
            raise ConfigError(
                f"config file {path}: unknown key {key!r}; expected tables "
                + ", ".join(f"[{name}]" for name in COMMANDS)
            )
    return path


def _explain(exc: ValidationError, command: str | None) -> str:
    lines = []
    table = f"[{command}] table of the config file" if command else "config file"
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if str(p) not in COMMANDS]
        key = ".".join(loc) or "?"
        env = "MAVID_" + key.upper().replace("-", "_")
        flag = "--" + key.replace("_", "-")
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        lines.append(
            f"error: setting {key!r}: {err['msg']}{got}. "
            f"It can come from {flag}, {env} or the {table}."
        )
    return "\n".join(lines)


def _setup_logging(argv: list[str]) -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--log-level", default=os.environ.get("MAVID_LOG_LEVEL", "INFO"))
    level = pre.parse_known_args(argv)[0].log_level.upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        _CONFIG_FILE.set(_config_path(argv))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(argv)
    if argv[:1] == ["livekit"]:
        return _livekit(argv[1:])
    try:
        CliApp.run(Root, cli_args=argv, cli_show_env_vars=True)
    except ValidationError as exc:
        print(_explain(exc, command), file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a command that failed: say why in one line; details at DEBUG
        log.debug("%s failed", command or "command", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        if not log.isEnabledFor(logging.DEBUG):
            print("(run with --log-level DEBUG for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
