"""A remote Conductor: an OpenAI-compatible streaming chat endpoint (e.g. vLLM + Qwen2.5-Omni).

The system prompt asks for the same `speech <m_bos> motion <m_eos>` format as the local Thinker
and the same `DirectiveParser` reads the answer. The user turn is sent text first, then its
audio (`input_audio`, WAV base64) and video frames (`image_url` JPEG data URLs), interleaved per
chunk of time as the Thinker sees them; `text_only=True` sends the text alone.

The HTTP exchanges run on one private asyncio loop thread per conductor, with one client, so
connections are reused from turn to turn and cancelling a turn cancels its request at once (the
HTTP stream is closed) whatever phase it is in, while `stream()` keeps the blocking
`Conductor` protocol.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import math
import queue
import threading
import wave
from collections.abc import Iterator

import numpy as np
import openai
from PIL import Image

from mavid.conductor.format import SYSTEM_PROMPT
from mavid.conductor.parser import DirectiveParser
from mavid.interfaces import CancelToken, ConductorError, DirectiveDelta, UserTurn

_END = object()  # the answer finished normally


def wav_base64(audio: np.ndarray, sample_rate: int) -> str:
    """Mono float audio in [-1, 1] -> base64 of a 16-bit PCM WAV file."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return base64.b64encode(buf.getvalue()).decode("ascii")


def jpeg_data_url(frame: np.ndarray, quality: int = 85) -> str:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAIConductor:
    """Conductor over an OpenAI-compatible streaming chat endpoint (implements `Conductor`)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_tokens: int = 256,
        system_prompt: str = SYSTEM_PROMPT,
        *,
        max_retries: int = 1,
        text_only: bool = False,
        temperature: float | None = None,
        seconds_per_chunk: float = 2.0,
        poll_seconds: float = 0.02,
        extra_body: dict | None = None,
    ) -> None:
        if timeout <= 0 or max_tokens <= 0 or max_retries < 0:
            raise ValueError("timeout and max_tokens must be > 0 and max_retries >= 0")
        self.base_url = base_url
        self.model = model
        # Local servers (vLLM) usually ignore the key, but the client insists on one.
        self.api_key = api_key or "EMPTY"
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.max_retries = max_retries
        self.text_only = text_only
        self.temperature = temperature
        self.seconds_per_chunk = seconds_per_chunk
        self.poll_seconds = poll_seconds
        # Server-specific request fields, e.g. vLLM's {"mm_processor_kwargs": {...}}.
        self.extra_body = dict(extra_body or {})
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None

    # -- the loop thread ---------------------------------------------------------------
    def _ensure_loop(self) -> tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI]:
        """Start the loop thread and the client on first use (or after close())."""
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="openai-conductor", daemon=True
                )
                thread.start()
                self._client = openai.AsyncOpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
                self._loop, self._thread = loop, thread
            return self._loop, self._client

    def close(self) -> None:
        """Close the client's connections and stop the loop thread (a later turn restarts it)."""
        with self._start_lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(self.timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            loop.close()

    # -- the request -------------------------------------------------------------------
    def build_messages(self, turn: UserTurn) -> list[dict]:
        """System prompt + one user message: text first, then audio / frames per time chunk."""
        if not isinstance(turn, UserTurn):
            raise TypeError(f"expected a UserTurn, got {type(turn).__name__}")
        parts: list[dict] = []
        if turn.text.strip():
            parts.append({"type": "text", "text": turn.text.strip()})
        if not self.text_only:
            parts.extend(self._media_parts(turn))
        if not parts:
            what = "text (this backend is text-only)" if self.text_only else "text, audio or video"
            raise ValueError(f"empty UserTurn: it has no {what}")
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": parts},
        ]

    def _media_parts(self, turn: UserTurn) -> list[dict]:
        audio_chunks: list[np.ndarray] = []
        if turn.audio is not None and turn.audio.size:
            a = turn.audio
            if a.ndim != 1 or a.dtype.kind != "f" or not np.isfinite(a).all():
                raise ValueError("UserTurn.audio must be 1-D, finite, float mono samples")
            n = round(self.seconds_per_chunk * turn.audio_sample_rate)
            audio_chunks = [a[i : i + n] for i in range(0, a.size, n)]
        video_chunks: dict[int, list[np.ndarray]] = {}
        per_chunk = self.seconds_per_chunk * turn.video_fps
        for i, f in enumerate(turn.video):
            if not isinstance(f, np.ndarray) or f.shape[2:] != (3,) or f.dtype != np.uint8:
                raise ValueError(f"UserTurn.video[{i}] must be an (H, W, 3) uint8 array")
            video_chunks.setdefault(math.floor(i / per_chunk + 1e-9), []).append(f)
        parts: list[dict] = []
        for k in range(max(len(audio_chunks), max(video_chunks, default=-1) + 1)):
            if k < len(audio_chunks):
                data = wav_base64(audio_chunks[k], turn.audio_sample_rate)
                parts.append(
                    {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
                )
            for frame in video_chunks.get(k, []):
                parts.append({"type": "image_url", "image_url": {"url": jpeg_data_url(frame)}})
        return parts

    async def _pump(
        self, client: openai.AsyncOpenAI, messages: list[dict], out: queue.Queue
    ) -> None:
        """One streaming request, on the loop thread; puts text, then _END or an error."""
        try:
            extra = {} if self.temperature is None else {"temperature": self.temperature}
            stream = await client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                max_tokens=self.max_tokens,
                extra_body=self.extra_body or None,
                **extra,
            )
            finished = False
            async with stream:  # closes the HTTP response on every way out
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta is not None and choice.delta.content:
                            out.put(choice.delta.content)
                        finished = finished or choice.finish_reason is not None
            if not finished:  # the connection ended cleanly but the answer did not
                raise ConductorError("the stream ended before the answer finished")
            out.put(_END)
        except Exception as e:
            out.put(e)
        # CancelledError (stream() stopped us) propagates: the task ends cancelled.

    def _error(self, e: BaseException, mid_answer: bool) -> ConductorError:
        where = f"{self.base_url} (model {self.model!r})"
        if mid_answer and not isinstance(e, openai.APITimeoutError):
            # openai reports a body cut short as a connection error; say what happened.
            return ConductorError(f"{where}: stream failed mid-answer: {e.__cause__ or e}")
        if isinstance(e, ConductorError):
            return ConductorError(f"{where}: {e}")
        if isinstance(e, openai.APIStatusError):
            return ConductorError(f"{where} answered HTTP {e.status_code}: {e.message}")
        if isinstance(e, openai.APITimeoutError):
            return ConductorError(f"{where} timed out (timeout {self.timeout} s)")
        if isinstance(e, openai.APIConnectionError):
            return ConductorError(f"cannot connect to {where}: {e.__cause__ or e}")
        return ConductorError(f"{where}: {type(e).__name__}: {e}")

    # -- the protocol ------------------------------------------------------------------
    def stream(self, turn: UserTurn, cancel: CancelToken) -> Iterator[DirectiveDelta]:
        """Yield directive deltas as the endpoint streams them (blocking; a worker thread).

        Raises Cancelled when `cancel` is set (the HTTP stream is closed), ConductorError for
        HTTP errors, refused connections, stalls (no data within `timeout`) and dropped streams
        (after yielding what had arrived), ValueError for a malformed turn.
        """
        cancel.raise_if_cancelled()
        messages = self.build_messages(turn)
        out: queue.Queue = queue.Queue()
        loop, client = self._ensure_loop()

        async def start() -> asyncio.Task:
            return asyncio.ensure_future(self._pump(client, messages, out))

        try:
            request = asyncio.run_coroutine_threadsafe(start(), loop).result(self.timeout)
        except (concurrent.futures.TimeoutError, RuntimeError) as e:  # close() raced with us
            raise ConductorError(f"{self.base_url}: the conductor was closed") from e
        parser = DirectiveParser()
        received = False
        try:
            while True:
                cancel.raise_if_cancelled()
                try:
                    item = out.get(timeout=self.poll_seconds)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise self._error(item, mid_answer=received) from item
                received = True
                cancel.raise_if_cancelled()
                yield from parser.feed(item)
            yield from parser.close()
        finally:
            self._finish(request, loop)

    def _finish(self, request: asyncio.Task, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the request if it still runs and wait until its HTTP stream is closed."""

        async def cancel_and_wait() -> None:
            request.cancel()  # closes the response (the `async with stream` exits)
            await asyncio.wait([request])

        try:
            asyncio.run_coroutine_threadsafe(cancel_and_wait(), loop).result(self.timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass  # the loop is gone (close()) or the close hangs: nothing more to wait on
