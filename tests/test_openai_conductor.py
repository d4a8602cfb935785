"""OpenAIConductor against a local server speaking the real chat-completions SSE protocol."""

import asyncio
import base64
import io
import json
import socket
import threading
import wave

import numpy as np
import pytest
from aiohttp import web

from mavid.conductor import M_EOS, SYSTEM_PROMPT, OpenAIConductor
from mavid.interfaces import Cancelled, CancelToken, Conductor, ConductorError, UserTurn

ANSWER = ["Hel", "lo there", "!<m_", "bos>nods ", "and smiles", M_EOS]


def chunk(content: str | None, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {} if content is None else {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeServer:
    """Chooses its behaviour from the request's `model`; records requests and disconnects."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.peers: list[tuple] = []  # client address of each request
        self.disconnected = asyncio.Event()

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.peers.append(request.transport.get_extra_info("peername"))
        mode = body["model"]
        if body["messages"][-1]["content"] == [{"type": "text", "text": "Short"}]:
            mode = "normal"  # lets one conductor of a slow model finish a turn
        if mode in ("429", "500"):
            status = int(mode)
            return web.json_response(
                {"error": {"message": f"mode {mode}", "type": "x", "code": status}},
                status=status,
                headers={"retry-after-ms": "10"},
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for i, piece in enumerate(ANSWER):
                if mode == "drop" and i == 2:
                    request.transport.abort()  # connection gone mid-answer, no final chunk
                    return resp
                if mode == "stall" and i == 2:
                    await asyncio.sleep(60)
                await resp.write(chunk(piece))
                if mode == "slow":
                    await asyncio.sleep(0.05)
            if mode == "slow":
                for _ in range(2000):
                    await resp.write(chunk(" more"))
                    await asyncio.sleep(0.05)
            if mode != "nofinish":
                await resp.write(chunk(None, "stop"))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return resp


@pytest.fixture
async def server():
    fake = FakeServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.completions)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    yield fake
    await runner.cleanup()


_OPEN: list[OpenAIConductor] = []


@pytest.fixture(autouse=True)
def close_conductors():
    yield
    while _OPEN:
        _OPEN.pop().close()


def conductor(base_url: str, model: str, **kw) -> OpenAIConductor:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("max_retries", 0)
    c = OpenAIConductor(base_url, model, **kw)
    _OPEN.append(c)
    return c


def run(c: OpenAIConductor, turn: UserTurn, cancel: CancelToken | None = None):
    got = []
    try:
        for d in c.stream(turn, cancel or CancelToken()):
            got.append(d)
    except Exception as e:
        return got, e
    return got, None


def joined(deltas) -> tuple[str, str]:
    return "".join(d.speech for d in deltas), "".join(d.motion for d in deltas)


async def test_normal_stream_and_request_shape(server) -> None:
    c = conductor(server.base_url, "normal")
    assert isinstance(c, Conductor)
    audio = np.sin(np.linspace(0, 300, 16_000 * 3)).astype(np.float32) * 0.5
    frames = tuple(np.full((16, 16, 3), i * 40, np.uint8) for i in range(6))
    turn = UserTurn(text="What is this?", audio=audio, video=frames)
    deltas, err = await asyncio.to_thread(run, c, turn)
    assert err is None
    assert len(deltas) > 1
    assert joined(deltas) == ("Hello there!", "nods and smiles")
    body = server.requests[0]
    assert body["stream"] is True and body["max_tokens"] == 256
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    kinds = [p["type"] for p in user["content"]]
    # text first, then per 2-s chunk: the audio, then the frames of that time
    assert (
        kinds == ["text", "input_audio"] + ["image_url"] * 4 + ["input_audio"] + ["image_url"] * 2
    )
    wav = base64.b64decode(user["content"][1]["input_audio"]["data"])
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getframerate(), w.getnframes()) == (16_000, 32_000)
    assert user["content"][2]["image_url"]["url"].startswith("data:image/jpeg;base64,")


async def test_text_only_flag_and_extra_body(server) -> None:
    c = conductor(server.base_url, "normal", text_only=True, extra_body={"top_k": 5})
    turn = UserTurn(text="Hi", audio=np.zeros(16_000, np.float32))
    _, err = await asyncio.to_thread(run, c, turn)
    assert err is None
    assert server.requests[0]["messages"][1]["content"] == [{"type": "text", "text": "Hi"}]
    assert server.requests[0]["top_k"] == 5
    with pytest.raises(ValueError, match="text-only"):
        c.build_messages(UserTurn(audio=np.zeros(16_000, np.float32)))


@pytest.mark.parametrize("status", ["429", "500"])
async def test_http_errors(server, status: str) -> None:
    deltas, err = await asyncio.to_thread(run, conductor(server.base_url, status), UserTurn("Hi"))
    assert deltas == [] and isinstance(err, ConductorError)
    assert f"HTTP {status}" in str(err)
    assert len(server.requests) == 1  # max_retries=0


async def test_retries_are_configurable(server) -> None:
    c = conductor(server.base_url, "500", max_retries=1)
    _, err = await asyncio.to_thread(run, c, UserTurn("Hi"))
    assert isinstance(err, ConductorError)
    assert len(server.requests) == 2


async def test_stall_times_out(server) -> None:
    c = conductor(server.base_url, "stall", timeout=0.5)
    deltas, err = await asyncio.wait_for(asyncio.to_thread(run, c, UserTurn("Hi")), 10)
    assert isinstance(err, ConductorError) and "timed out" in str(err)
    assert joined(deltas) == ("Hello there", "")  # what arrived before the stall


async def test_drop_mid_answer(server) -> None:
    deltas, err = await asyncio.to_thread(run, conductor(server.base_url, "drop"), UserTurn("Hi"))
    assert isinstance(err, ConductorError) and "mid-answer" in str(err)
    assert joined(deltas) == ("Hello there", "")


async def test_clean_end_without_finish_is_an_error(server) -> None:
    deltas, err = await asyncio.to_thread(
        run, conductor(server.base_url, "nofinish"), UserTurn("Hi")
    )
    assert isinstance(err, ConductorError) and "before the answer finished" in str(err)
    assert joined(deltas) == ("Hello there!", "nods and smiles")


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = conductor(f"http://127.0.0.1:{port}/v1", "normal")
    deltas, err = await asyncio.to_thread(run, c, UserTurn("Hi"))
    assert deltas == [] and isinstance(err, ConductorError)
    assert "cannot connect" in str(err)


async def test_cancel_closes_the_http_stream(server) -> None:
    c = conductor(server.base_url, "slow", timeout=30)
    cancel = CancelToken()
    seen = threading.Event()

    def consume():
        got = []
        try:
            for d in c.stream(UserTurn("Hi"), cancel):
                got.append(d)
                seen.set()
        except Cancelled:
            return got, "cancelled"
        return got, "finished"

    task = asyncio.create_task(asyncio.to_thread(consume))
    await asyncio.to_thread(seen.wait, 10)
    cancel.cancel()
    got, how = await asyncio.wait_for(task, 10)
    assert how == "cancelled" and got
    await asyncio.wait_for(server.disconnected.wait(), 10)  # the server saw the stream closed
    # the conductor stays usable after a cancelled turn
    deltas, err = await asyncio.to_thread(run, c, UserTurn("Short"), None)
    assert err is None and deltas
    loop_thread = c._thread
    await asyncio.to_thread(c.close)
    assert not loop_thread.is_alive()


async def test_turns_reuse_the_connection(server) -> None:
    c = conductor(server.base_url, "normal")
    for _ in range(3):
        _, err = await asyncio.to_thread(run, c, UserTurn("Hi"))
        assert err is None
    assert len(server.peers) == 3 and len(set(server.peers)) == 1  # one keep-alive connection
    await asyncio.to_thread(c.close)
    _, err = await asyncio.to_thread(run, c, UserTurn("Hi"))  # reopens after close()
    assert err is None and len(set(server.peers)) == 2
    await asyncio.to_thread(c.close)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="timeout"):
        OpenAIConductor("http://127.0.0.1:1/v1", "m", timeout=0)


@pytest.mark.parametrize(
    ("turn", "message"),
    [
        (UserTurn(), "empty"),
        (UserTurn(audio=np.zeros(10, np.int16)), "float"),
        (UserTurn(audio=np.full(10, np.inf, np.float32)), "finite"),
        (UserTurn(video=(np.zeros((4, 4, 3), np.float32),)), r"video\[0\]"),
    ],
)
def test_bad_turns_are_clear_errors(turn: UserTurn, message: str) -> None:
    c = OpenAIConductor("http://127.0.0.1:1/v1", "m")
    with pytest.raises(ValueError, match=message):
        next(c.stream(turn, CancelToken()))
