"""The avatar inside an existing aiohttp app: your routes, your signaling, our agent.

    python examples/embed_aiohttp.py [--port 8090] [--checkpoint DIR]

Your page POSTs `{"sdp": ..., "type": "offer"}` to /offer (as `mavid-client.js` does) and gets
the answer; each caller gets an `AvatarAgent` that greets them with `say` and then converses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from agent import AvatarAgent, AvatarAgentConfig
from realtime.aiortc_transport import pinned_host_addresses

MODEL = web.AppKey("avatar_model", object)
AGENTS = web.AppKey("avatar_agents", dict)  # session id -> AvatarAgent
TASKS = web.AppKey("avatar_tasks", set)  # one `converse` per call


async def offer(request: web.Request) -> web.Response:
    body = await request.json()
    # no STUN server by default (aiortc would ask Google's); add yours for NAT traversal
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    agent = AvatarAgent(request.app[MODEL], AvatarAgentConfig(threads=1))
    await agent.attach_peer_connection(pc)  # before the offer is set
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    request.app[AGENTS][agent.session_id] = agent
    task = asyncio.create_task(converse(request.app, agent))
    request.app[TASKS].add(task)
    task.add_done_callback(request.app[TASKS].discard)
    answer = {"sdp": pc.localDescription.sdp, "type": "answer"}
    return web.json_response({**answer, "session_id": agent.session_id})


async def converse(app: web.Application, agent: AvatarAgent) -> None:
    """Greet the caller, log what happens, forget the agent when the call ends."""
    events = agent.events()
    await agent.say("Hello, nice to meet you.", motion="smile and wave")
    async for event in events:
        logging.info("session=%s %s", agent.session_id, event)
    app[AGENTS].pop(agent.session_id, None)
    await agent.aclose()


def make_app(model: object, ice_host_addresses: list[str] | None = None) -> web.Application:
    app = web.Application()
    app[MODEL], app[AGENTS], app[TASKS] = model, {}, set()

    async def lifetime(app: web.Application):
        with pinned_host_addresses(ice_host_addresses):  # e.g. ["127.0.0.1"] on one machine
            yield
            for agent in list(app[AGENTS].values()):
                await agent.aclose()

    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/offer", offer)
    return app


def main() -> None:
    from mavid.avatar import load_avatar_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(load_avatar_model(args.checkpoint)), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
