"""Access tokens for a LiveKit room (livekit-api's `AccessToken` + `VideoGrants`).

A person joins the avatar's room with one of these (LiveKit Meet, the agents playground or
any LiveKit client); the worker itself gets its tokens from the server when dispatched.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

DEFAULT_TTL = datetime.timedelta(hours=6)


def create_token(
    room: str,
    identity: str,
    *,
    name: str | None = None,
    agent_name: str | None = None,
    ttl: datetime.timedelta = DEFAULT_TTL,
    api_key: str | None = None,
    api_secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A signed JWT that lets `identity` join `room`, publish its camera, microphone and
    data, and subscribe to the avatar.

    `agent_name` dispatches that named worker into the room when the participant joins
    (explicit dispatch); without it, workers registered without a name are dispatched.
    Key and secret default to `LIVEKIT_API_KEY` / `LIVEKIT_API_SECRET`.
    """
    env = os.environ if environ is None else environ
    api_key = api_key or env.get("LIVEKIT_API_KEY")
    api_secret = api_secret or env.get("LIVEKIT_API_SECRET")
    missing = [
        n for n, v in (("LIVEKIT_API_KEY", api_key), ("LIVEKIT_API_SECRET", api_secret)) if not v
    ]
    if missing:
        raise ValueError(f"cannot sign a LiveKit token: set {' and '.join(missing)}")
    if not room.strip() or not identity.strip():
        raise ValueError("room and identity must be non-empty")
    if ttl <= datetime.timedelta(0):
        raise ValueError("ttl must be positive")
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_ttl(ttl)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
            )
        )
    )
    if agent_name:
        token = token.with_room_config(
            RoomConfiguration(agents=[RoomAgentDispatch(agent_name=agent_name)])
        )
    return token.to_jwt()
