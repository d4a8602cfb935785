"""Room tokens are checked by decoding them with livekit-api's TokenVerifier."""

from __future__ import annotations

import datetime

import jwt
import pytest
from livekit import api

from agent.livekit_token import create_token

KEY, SECRET = "devkey", "a-secret-that-is-long-enough-for-hs256-0123456789"


def test_token_grants_join_publish_and_subscribe_in_one_room() -> None:
    token = create_token("avatar-room", "alice", api_key=KEY, api_secret=SECRET)
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "alice" and claims.name == "alice"
    video = claims.video
    assert video is not None
    assert video.room == "avatar-room" and video.room_join
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert not video.room_admin and not video.room_create
    assert claims.room_config is None


def test_token_dispatches_a_named_agent_and_expires() -> None:
    ttl = datetime.timedelta(minutes=10)
    token = create_token(
        "r", "bob", name="Bob", agent_name="mavid-avatar", ttl=ttl, api_key=KEY, api_secret=SECRET
    )
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.name == "Bob"
    assert [a.agent_name for a in claims.room_config.agents] == ["mavid-avatar"]
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["nbf"] == pytest.approx(ttl.total_seconds(), abs=2)


def test_a_wrong_secret_does_not_verify() -> None:
    token = create_token("r", "eve", api_key=KEY, api_secret=SECRET)
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, SECRET + "x").verify(token)


def test_key_and_secret_come_from_the_environment() -> None:
    env = {"LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}
    token = create_token("r", "carol", environ=env)
    assert api.TokenVerifier(KEY, SECRET).verify(token).identity == "carol"


@pytest.mark.parametrize(
    ("room", "identity", "env", "message"),
    [
        ("r", "u", {}, "set LIVEKIT_API_KEY and LIVEKIT_API_SECRET"),
        ("r", "u", {"LIVEKIT_API_KEY": KEY}, "set LIVEKIT_API_SECRET"),
        (" ", "u", {"LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}, "non-empty"),
    ],
)
def test_bad_input_gets_a_clear_error(room: str, identity: str, env: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_token(room, identity, environ=env)
