"""The HTTP side: the aiohttp app (client page, /mavid-client.js, /offer, /whip,
/sessions/{id}/say|interrupt|events, /healthz, /metrics) and `serve`.

`run_agent.py serve` builds a `ServerConfig` and awaits `serve(cfg)`; tests and integrators
use `build_app(cfg, model)` with a model of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agent.answer import AnswerConfig
from agent.metrics import AgentMetrics
from agent.session import SessionConfig
from realtime.aiortc_transport import pinned_host_addresses
from realtime.vad import VadConfig
from signaling.cors import install_cors, preflight
from signaling.drive import handle_events, handle_interrupt, handle_say
from signaling.errors import json_errors
from signaling.offer import handle_offer
from signaling.registry import SessionRegistry
from signaling.state import STATE, AppState
from signaling.whip import handle_options, handle_whip_delete, handle_whip_post

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class ServerConfig:
    """Everything `serve` / `build_app` need; `run_agent.py serve` fills it from flags, env
    (MAVID_*) and TOML. `ice_host_addresses` is the documented way to pin the ICE host
    candidates (tests and CI use ["127.0.0.1"]; deployments name their public interface)."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port (the URL passed to `ready` tells which)
    ref_image: str | None = None  # path of the avatar's reference face (PNG/JPEG)
    token: str | None = None  # bearer token required on /offer and /whip (None: open)
    max_sessions: int = 4  # concurrent sessions; more get 503 + Retry-After
    threads: int = 2  # worker threads for model work (Conductor + Creator), all sessions
    # torch intra-op threads per call (None: as the process has them: 1, as silero-vad sets on
    # import, so each worker's call runs on its own core)
    torch_threads: int | None = None
    # ICE host candidates are gathered only on these addresses (empty: every interface but
    # loopback, aioice's default). ["127.0.0.1"] keeps all traffic on this machine.
    ice_host_addresses: list[str] = field(default_factory=list)
    ice_servers: list[str] = field(default_factory=list)  # STUN/TURN URLs; none by default
    max_body_bytes: int = 64 * 1024  # bigger /offer and /whip bodies get 413
    # a peer whose ICE has not connected this long after its offer is dropped (its slot
    # freed): an offer posted by a client that then vanished would hold the slot for good
    connect_timeout_s: float = 20.0
    seed: int | None = None  # Creator stream seed (None: random per session)
    # session options
    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 96  # speech this long starts a turn (and a barge-in)
    vad_hangover_ms: int = 320  # silence this long ends a turn
    words_per_clip: float = 2.5
    first_clip_words: float = 1.5
    max_answer_clips: int = 60
    # model
    checkpoint: str | None = None  # MAViD checkpoint dir (None: the embedded tiny preset)
    conductor_url: str | None = None  # OpenAI-compatible Conductor endpoint (None: local)
    conductor_model: str | None = None
    conductor_api_key: str | None = None
    # a local CTranslate2 Whisper directory that writes down the spoken turns the Conductor's
    # ear leaves, in place of the recognizer its hearing.json names (None: that one)
    whisper_model: str | None = None
    # origins whose pages may call /offer, /whip, /sessions/* and load /mavid-client.js
    # (["*"]: any; []: same origin only). Bearer tokens, not cookies, protect the endpoints.
    cors_origins: list[str] = field(default_factory=lambda: ["*"])

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            vad=VadConfig(
                threshold=self.vad_threshold,
                min_speech_ms=self.vad_min_speech_ms,
                hangover_ms=self.vad_hangover_ms,
            ),
            answer=AnswerConfig(
                words_per_clip=self.words_per_clip,
                first_clip_words=self.first_clip_words,
                max_clips=self.max_answer_clips,
            ),
        )


def load_reference_image(path: str, width: int, height: int) -> np.ndarray:
    """The reference face as (H, W, 3) uint8 RGB at the model's frame size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read reference image {path!r}: {exc}") from exc
    return np.asarray(rgb, dtype=np.uint8)


def load_model(cfg: ServerConfig) -> Any:
    """The avatar model the config names (blocking: run it in a thread)."""
    from mavid.avatar import load_avatar_model

    kwargs: dict[str, Any] = {}
    if cfg.conductor_url:
        kwargs.update(
            conductor_url=cfg.conductor_url,
            conductor_model=cfg.conductor_model,
            conductor_api_key=cfg.conductor_api_key,
        )
    model = load_avatar_model(cfg.checkpoint, **kwargs)
    if cfg.whisper_model:
        hearing = getattr(model.conductor, "hearing", None)
        if hearing is None:
            raise ValueError(
                "--whisper-model: this Conductor writes no spoken turn down (a real "
                "Qwen2.5-Omni or a remote Conductor hears the audio itself)"
            )
        hearing.use_whisper(cfg.whisper_model)
    return model


async def _healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {"status": "ok", "sessions": len(state.registry), "max_sessions": state.config.max_sessions}
    )


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _client_module(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC_DIR / "mavid-client.js", headers={"Content-Type": "text/javascript"}
    )


def build_app(cfg: ServerConfig, model: Any) -> web.Application:
    """The aiohttp application over `model` (anything with `.conductor` and `.creator`)."""
    spec = model.creator.spec
    reference = (
        load_reference_image(cfg.ref_image, spec.width, spec.height) if cfg.ref_image else None
    )
    app = web.Application(client_max_size=cfg.max_body_bytes, middlewares=[json_errors])
    state = AppState(
        config=cfg,
        model=model,
        executor=concurrent.futures.ThreadPoolExecutor(cfg.threads, thread_name_prefix="model"),
        vad_executor=concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vad"),
        registry=SessionRegistry(cfg.max_sessions),
        metrics=AgentMetrics(),
        reference_image=reference,
    )
    app[STATE] = state

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        with pinned_host_addresses(cfg.ice_host_addresses):
            yield
            await state.registry.close_all()
        # abandoned model work finishes at its next step: do not wait for it here
        state.executor.shutdown(wait=False, cancel_futures=True)
        state.vad_executor.shutdown(wait=False, cancel_futures=True)

    async def end_sessions(app: web.Application) -> None:
        # before the server waits for open requests: ends the event streams (SSE) with them
        await state.registry.close_all()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(end_sessions)
    install_cors(app, cfg.cors_origins)
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/mavid-client.js", _client_module)
    app.router.add_route("OPTIONS", "/mavid-client.js", preflight)
    app.router.add_post("/offer", handle_offer)
    app.router.add_route("OPTIONS", "/offer", preflight)
    for action, handler in (("say", handle_say), ("interrupt", handle_interrupt)):
        app.router.add_post(f"/sessions/{{session_id}}/{action}", handler)
        app.router.add_route("OPTIONS", f"/sessions/{{session_id}}/{action}", preflight)
    app.router.add_get("/sessions/{session_id}/events", handle_events)
    app.router.add_route("OPTIONS", "/sessions/{session_id}/events", preflight)
    app.router.add_post("/whip", handle_whip_post)
    app.router.add_route("OPTIONS", "/whip", handle_options)
    resource = app.router.add_resource("/whip/{session_id}", name="whip_resource")
    resource.add_route("DELETE", handle_whip_delete)
    resource.add_route("OPTIONS", handle_options)
    return app


def warm_up(model: Any) -> None:
    """Make one throwaway clip: the first clip in a process pays one-off setup (seconds)."""
    spec = model.creator.spec
    model.creator.new_stream(seed=0).next_clip("hello", "", None, spec.first_clip_frames)


async def serve(
    cfg: ServerConfig,
    *,
    ready: Callable[[str], None] | None = None,
    model: Any | None = None,
) -> None:
    """Load the model (unless given), serve until cancelled or SIGTERM/SIGINT, then end
    every session."""
    if cfg.torch_threads is not None:
        import torch

        torch.set_num_threads(cfg.torch_threads)  # process-wide: serve owns the process
    if model is None:
        model = await asyncio.to_thread(load_model, cfg)
        await asyncio.to_thread(warm_up, model)
    app = build_app(cfg, model)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else cfg.port
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        url = f"http://{host}:{port}/"
        logger.info("event=listening url=%s", url)
        if ready is not None:
            ready(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
    finally:
        await runner.cleanup()
