"""The avatar as a livekit-agents worker: LiveKit dispatches rooms, we run one Session each.

Each dispatched job connects to its room, waits for the first (human) participant, and runs
the same `agent.session.Session` the aiortc server runs, over a `LiveKitTransport` instead.
Scaling out is LiveKit's: start this worker on as many machines as needed; each registers
with the server and reports its load, and the server dispatches new rooms to workers below
their threshold.

    run_agent.py livekit dev                 # development: hot reload, debug logs
    run_agent.py livekit start               # production
    run_agent.py livekit connect --room R    # join room R now, without a dispatch
    run_agent.py livekit token --room R --identity U [--agent-name N]   # a join token

`LIVEKIT_URL`, `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET` say which server to register with.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import logging
import math
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.metrics import AgentMetrics
from agent.session import Session
from realtime.livekit_transport import LiveKitTransport, LiveKitTransportConfig
from realtime.playout import PlayoutBuffer
from signaling.server import ServerConfig, load_model, load_reference_image

logger = logging.getLogger(__name__)

# CPU cores one live session keeps busy (VAD, Conductor, Creator clips faster than real
# time, media pacing) with the embedded mavid-tiny preset. Take it from the per-session
# cost that `benchmarks/sessions.py` prints (sessions it can hold at RTF > 1 on N cores:
# cores / sessions). Measured on the 2-core development machine with mavid-tiny's round-2
# sampling settings (4 DiT steps, phone guidance): 1 session held, 2 stalled, so 2 cores per
# session (round 1's cheaper settings held 2). Re-measure on the machine class the workers
# use; workers can override it (`session_cores`).
SESSION_CORES = 2.0
# load_fnc reports the share of this worker's session slots in use; the worker stops
# taking rooms when every slot is full (livekit-agents: available while load < threshold).
LOAD_THRESHOLD = 1.0
MODEL_KEY = "mavid"  # JobProcess.userdata key of the prewarmed model and pools
LIVEKIT_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
_ENV_FLAGS = {
    "LIVEKIT_URL": "--url",
    "LIVEKIT_API_KEY": "--api-key",
    "LIVEKIT_API_SECRET": "--api-secret",
}


@dataclass(frozen=True)
class LiveKitWorkerConfig:
    # model, session and reference-face options: the same as `run_agent.py serve`
    # (its HTTP/ICE fields are not used here)
    server: ServerConfig = field(default_factory=ServerConfig)
    transport: LiveKitTransportConfig = field(default_factory=LiveKitTransportConfig)
    agent_name: str = ""  # non-empty: explicit dispatch only (tokens name this agent)
    session_cores: float = SESSION_CORES
    cpu_count: int | None = None  # None: os.cpu_count()
    participant_identity: str | None = None  # serve only this identity (None: the first)

    def max_jobs(self) -> int:
        """Sessions one worker takes at once: its cores over the per-session cost."""
        cores = self.cpu_count or os.cpu_count() or 1
        return max(1, math.floor(cores / self.session_cores + 1e-9))


def worker_load(server: Any, *, max_jobs: int) -> float:
    """livekit-agents `load_fnc`: the share of this worker's session slots in use."""
    return min(1.0, len(server.active_jobs) / max_jobs)


@dataclass
class WorkerResources:
    """What a job process loads once and every session it runs shares."""

    model: Any  # .conductor and .creator
    executor: concurrent.futures.ThreadPoolExecutor  # model work
    vad_executor: concurrent.futures.ThreadPoolExecutor
    metrics: AgentMetrics
    reference_image: Any = None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.vad_executor.shutdown(wait=False, cancel_futures=True)


def load_resources(config: LiveKitWorkerConfig, model: Any | None = None) -> WorkerResources:
    """Load the model (blocking) and make the worker pools of one job process."""
    cfg = config.server
    model = model if model is not None else load_model(cfg)
    spec = model.creator.spec
    reference = (
        load_reference_image(cfg.ref_image, spec.width, spec.height) if cfg.ref_image else None
    )
    return WorkerResources(
        model=model,
        executor=concurrent.futures.ThreadPoolExecutor(cfg.threads, thread_name_prefix="model"),
        vad_executor=concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vad"),
        metrics=AgentMetrics(),
        reference_image=reference,
    )


def prewarm(config: LiveKitWorkerConfig, proc: Any) -> None:
    """livekit-agents setup_fnc: load the model into an idle job process before a job."""
    import torch

    # one process per session: torch's intra-op pool gets the session's share of the cores,
    # not all of them (N processes x all cores would oversubscribe the machine)
    torch.set_num_threads(max(1, round(config.session_cores)))
    proc.userdata[MODEL_KEY] = load_resources(config)


async def run_room_session(
    room: Any,
    participant_identity: str,
    resources: WorkerResources,
    config: LiveKitWorkerConfig,
    *,
    session_id: str | None = None,
) -> Session:
    """Serve one participant of a connected `rtc.Room` until they leave; returns the
    finished session (its `error` says whether a model error ended it)."""
    loop = asyncio.get_running_loop()
    cfg = config.server
    stream = await loop.run_in_executor(
        resources.executor,
        resources.model.creator.new_stream,
        resources.reference_image,
        cfg.seed,
    )
    playout = PlayoutBuffer.for_stream(stream)
    transport = await LiveKitTransport.start(room, participant_identity, playout, config.transport)
    session = Session(
        session_id or f"lk-{secrets.token_urlsafe(6)}",
        transport,
        playout,
        conductor=resources.model.conductor,
        stream=stream,
        executor=resources.executor,
        vad_executor=resources.vad_executor,
        config=cfg.session_config(),
        metrics=resources.metrics,
    )
    await session.run()  # closes the transport when it ends
    return session


async def entrypoint(config: LiveKitWorkerConfig, ctx: Any) -> None:
    """livekit-agents entrypoint: one dispatched room, one session."""
    from livekit.agents import AutoSubscribe

    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_ALL)
    participant = await ctx.wait_for_participant(identity=config.participant_identity)
    resources = ctx.proc.userdata.get(MODEL_KEY)
    if resources is None:  # no prewarm (thread executor, tests): load here, off the loop
        resources = await asyncio.to_thread(load_resources, config)
        ctx.proc.userdata[MODEL_KEY] = resources
    logger.info("event=livekit_job room=%s participant=%s", ctx.room.name, participant.identity)
    session = await run_room_session(ctx.room, participant.identity, resources, config)
    ctx.shutdown(reason="session error" if session.error else "participant left")


def build_server(config: LiveKitWorkerConfig) -> Any:
    """The livekit-agents `AgentServer` with our entrypoint, prewarm and load reporting."""
    from livekit.agents import AgentServer, JobExecutorType
    from livekit.agents.worker import ServerEnvOption

    max_jobs = config.max_jobs()
    server = AgentServer(
        # one process per job: a session's torch work never shares a GIL with another's
        job_executor_type=JobExecutorType.PROCESS,
        load_fnc=functools.partial(worker_load, max_jobs=max_jobs),
        load_threshold=ServerEnvOption(dev_default=math.inf, prod_default=LOAD_THRESHOLD),
        num_idle_processes=ServerEnvOption(dev_default=0, prod_default=max_jobs),
        setup_fnc=functools.partial(prewarm, config),
        initialize_process_timeout=120.0,  # model loading happens in prewarm
    )
    # partials of module-level functions: they pickle into the job processes
    server.rtc_session(functools.partial(entrypoint, config), agent_name=config.agent_name)
    return server


def missing_livekit_settings(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """The LIVEKIT_* settings neither the environment nor the command line gives."""
    return [
        name
        for name in LIVEKIT_ENV
        if not environ.get(name)
        and not any(a == _ENV_FLAGS[name] or a.startswith(_ENV_FLAGS[name] + "=") for a in argv)
    ]


def _token_main(argv: list[str]) -> None:
    from agent.livekit_token import create_token

    parser = argparse.ArgumentParser(prog="run_agent.py livekit token")
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--agent-name", default=None, help="dispatch this named worker")
    args = parser.parse_args(argv)
    try:
        token = create_token(args.room, args.identity, name=args.name, agent_name=args.agent_name)
    except ValueError as exc:
        parser.error(str(exc))
    print(token)


def livekit_main(argv: list[str], config: LiveKitWorkerConfig | None = None) -> None:
    """`run_agent.py livekit ...`: `token` is ours; `dev`, `start`, `connect --room R`
    (and every other command and flag) go to livekit-agents' CLI unchanged."""
    if argv[:1] == ["token"]:
        _token_main(argv[1:])
        return
    command = argv[0] if argv else ""
    if command in ("dev", "start", "connect"):
        missing = missing_livekit_settings(argv, os.environ)
        if missing:
            flags = ", ".join(_ENV_FLAGS[m] for m in missing)
            raise SystemExit(
                f"run_agent.py livekit {command}: set {', '.join(missing)} "
                f"(or pass {flags}) to say which LiveKit server to use"
            )
    from livekit.agents import cli

    server = build_server(config or LiveKitWorkerConfig())
    saved = sys.argv
    sys.argv = ["run_agent.py livekit", *argv]  # livekit-agents' CLI reads sys.argv
    try:
        cli.run_app(server)
    finally:
        sys.argv = saved
