"""A person with a browser can use it: headless Chromium (fake mic playing a spoken question)
loads `GET /`, connects, is answered, and decodes the avatar's video and audio."""

from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import loopback_config, running_server

CHROMIUM = os.environ.get("MAVID_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.browser


def chromium_or_fail() -> str:
    if os.environ.get("MAVID_SKIP_BROWSER") == "1":
        pytest.skip("MAVID_SKIP_BROWSER=1")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `apt-get install -y chromium` "
            "(or set MAVID_SKIP_BROWSER=1 to skip the browser test)"
        )
    return CHROMIUM


def question_wav(path: Path) -> Path:
    """A spoken question then 4 s of silence (the fake mic loops the file: one turn per loop)."""
    from mavid.data.speech import synthesize

    speech = synthesize("Hello there, what can you do for me?", sample_rate=48_000).audio
    audio = np.concatenate([np.zeros(24_000, np.float32), speech, np.zeros(192_000, np.float32)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


async def test_browser_talks_to_the_avatar(avatar_model, tmp_path) -> None:
    executable = chromium_or_fail()
    from playwright.async_api import async_playwright

    wav = question_wav(tmp_path / "question.wav")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with running_server(loopback_config(), avatar_model) as (url, _app):
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=executable,
                headless=True,
                args=args,
                ignore_default_args=["--mute-audio"],
            )
            try:
                page = await context.new_page()
                await page.goto(url + "?autostart=1")
                # the spoken question becomes a turn; the avatar answers it
                await page.wait_for_function(
                    "window.mavid.states.includes('speaking')", timeout=45_000
                )
                await page.wait_for_function(
                    "window.mavid.stats().then(s => s.framesDecoded > 25 "
                    "&& s.totalAudioEnergy > 0)",
                    timeout=20_000,
                    polling=250,
                )
                states = await page.evaluate("window.mavid.states")
                assert states[:3] == ["connecting", "listening", "thinking"]
                assert await page.evaluate("window.mavid.error") is None
                assert await page.locator("#directives").inner_text() != ""
                # typing instead of talking: the text box sends a typed turn
                await page.fill("#text", "hello from the keyboard")
                await page.click("#send")
                await page.wait_for_function(
                    "window.mavid.events.some(e => e.type === 'transcript' "
                    "&& e.text === 'hello from the keyboard')",
                    timeout=10_000,
                )
                await page.click("#hangup")
                assert (await page.evaluate("window.mavid.states")).pop() == "ended"
            finally:
                await context.close()
