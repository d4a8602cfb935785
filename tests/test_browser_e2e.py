"""A person with a browser can use it: headless Chromium (fake mic playing a spoken question)
loads `GET /`, connects, is answered, and decodes the avatar's video and audio."""

from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import jiwer
import numpy as np
import pytest
from conftest import loopback_config, running_server

CHROMIUM = os.environ.get("MAVID_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.browser
SAID = "hello there what can you do for me"  # what the fake mic says


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

    speech = synthesize(SAID, sample_rate=48_000).audio
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
    async with running_server(loopback_config(), avatar_model) as (url, _app):
        async with async_playwright() as pw:
            context = await launch(pw, executable, tmp_path, wav)
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
                # the page talks through mavid-client.js
                kind = await page.evaluate("window.mavid.session.constructor.name")
                assert kind == "MavidSession"
                assert await page.locator("#directives").inner_text() != ""
                # what the avatar heard (its Conductor's hearing) is shown as the user's words
                heard = await page.evaluate(
                    "window.mavid.events.filter(e => e.type === 'transcript' "
                    "&& e.source === 'speech').map(e => e.text)"
                )
                # (its ear's letters, or PocketSphinx's words: close to what was said either way)
                assert heard and jiwer.cer(SAID, heard[0]) < 0.5, heard
                assert f"you: {heard[0]}" in await page.locator("#directives").inner_text()
                # typing instead of talking: the text box sends a typed turn
                await page.fill("#text", "hello from the keyboard")
                await page.click("#send")
                await page.wait_for_function(
                    "window.mavid.events.some(e => e.type === 'transcript' "
                    "&& e.text === 'hello from the keyboard')",
                    timeout=10_000,
                )
                # words the Conductor was never taught: read as the known question nearest,
                # which the page shows under them
                await page.wait_for_function(
                    "(() => { const ev = window.mavid.events; const typed = ev.findIndex(e => "
                    "e.type === 'transcript' && e.text === 'hello from the keyboard'); "
                    "return ev.slice(typed).some(e => e.type === 'understood'); })()",
                    timeout=20_000,
                )  # (the known question the typed turn was read as, not the spoken turn's)
                shown = await page.locator("#directives").inner_text()
                assert "you: hello from the keyboard\n(understood: Hello there.)" in shown, shown
                # and answered as that question (with the camera's frames of the whole call
                # behind it: the Thinker reads the last 4 it learnt from)
                await page.wait_for_function(
                    "(() => { const ev = window.mavid.events; const typed = ev.findIndex(e => "
                    "e.type === 'transcript' && e.text === 'hello from the keyboard'); "
                    "const u = ev.slice(typed).find(e => e.type === 'understood'); "
                    "return u !== undefined && ev.filter(e => e.type === 'directive' && "
                    "e.turn === u.turn).map(e => e.speech).join('').startsWith('Hello and "
                    "welcome'); })()",
                    timeout=20_000,
                )
                # a question from elsewhere: told what the avatar can help with, and its motion
                # shown once, apart from the words, however many deltas it came in
                await page.fill("#text", "Who invented the telephone?")
                await page.click("#send")
                await page.wait_for_function(
                    "(() => { const ev = window.mavid.events; const typed = ev.findIndex(e => "
                    "e.type === 'transcript' && e.text === 'Who invented the telephone?'); "
                    "return typed >= 0 && ev.slice(typed).filter(e => e.type === 'directive')"
                    ".map(e => e.speech).join('').startsWith(\"I'm the museum's guide\"); })()",
                    timeout=20_000,
                )
                await page.wait_for_function(
                    "document.querySelector('#directives .avatar:last-child .motion')"
                    "?.textContent === 'tilt'",
                    timeout=20_000,
                )
                last = page.locator("#directives .avatar").last
                assert await last.locator(".motion").count() == 1
                await page.click("#hangup")
                assert (await page.evaluate("window.mavid.states")).pop() == "ended"
            finally:
                await context.close()


async def launch(
    pw, executable: str, tmp_path: Path, wav: Path | None = None, *, allow_media: bool = True
):
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
        # Without media permission Chromium hides host candidates behind mDNS names, which
        # cannot resolve inside the tests' loopback-only network namespace.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]
    # the fake UI grants mic/camera; without it the prompt is denied, as a user would
    args.append("--use-fake-ui-for-media-stream" if allow_media else "--deny-permission-prompts")
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return await pw.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=executable,
        headless=True,
        args=args,
        ignore_default_args=["--mute-audio"],
    )


async def test_denied_media_and_a_dropped_connection_are_shown(tone_model, tmp_path) -> None:
    """Permission denied: the page says so, connects receive-only and takes typed turns (no
    Mute: there is no mic). The server going away: a clear message, Start enabled again."""
    executable = chromium_or_fail()
    from playwright.async_api import async_playwright

    disabled = (
        "() => Object.fromEntries(['start', 'mute', 'hangup', 'text', 'send']"
        ".map((id) => [id, document.getElementById(id).disabled]))"
    )
    async with async_playwright() as pw:
        context = await launch(pw, executable, tmp_path, allow_media=False)
        try:
            page = await context.new_page()
            async with running_server(loopback_config(), tone_model) as (url, _app):
                await page.goto(url + "?autostart=1")
                await page.wait_for_function(
                    "window.mavid.states.includes('listening')", timeout=20_000
                )
                await page.wait_for_function("!document.getElementById('send').disabled")
                assert "permission was denied" in await page.text_content("#message")
                assert await page.evaluate(disabled) == {
                    "start": True, "mute": True, "hangup": False, "text": False, "send": False
                }  # fmt: skip
                await page.fill("#text", "can you hear me typing")
                await page.click("#send")
                await page.wait_for_function(
                    "window.mavid.states.includes('speaking')", timeout=20_000
                )
            # the server stopped mid-session
            await page.wait_for_function(
                "document.getElementById('state').textContent === 'disconnected'",
                timeout=30_000,
            )
            assert "connection dropped" in await page.text_content("#message")
            assert await page.evaluate(disabled) == {
                "start": False, "mute": True, "hangup": True, "text": True, "send": True
            }  # fmt: skip
        finally:
            await context.close()


async def test_a_model_error_that_ends_the_call_is_shown(tmp_path) -> None:
    """The server's fatal error stays on screen after the call ends, not 'connection dropped'."""
    executable = chromium_or_fail()
    from conftest import ToneCreator, ToneModel
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await launch(pw, executable, tmp_path, allow_media=False)
        try:
            page = await context.new_page()
            model = ToneModel(creator=ToneCreator(fail_at=0))
            async with running_server(loopback_config(), model) as (url, _app):
                await page.goto(url + "?autostart=1")
                await page.wait_for_function("!document.getElementById('send').disabled")
                await page.fill("#text", "break, please")
                await page.click("#send")
                await page.wait_for_function(
                    "document.getElementById('state').textContent === 'disconnected'",
                    timeout=20_000,
                )
                message = await page.text_content("#message")
                assert "creator exploded" in message and "Press Start" in message
                assert not await page.is_disabled("#start")
        finally:
            await context.close()


async def test_page_on_another_origin_embeds_the_avatar(tone_model, tmp_path) -> None:
    """examples/embed.html served from a second origin loads mavid-client.js and calls the
    avatar through CORS; a third origin, not allowed, is refused."""
    executable = chromium_or_fail()
    from aiohttp import web
    from playwright.async_api import async_playwright

    pages = web.Application()
    pages.router.add_static("/", Path(__file__).parent.parent / "examples")
    runner = web.AppRunner(pages, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        allowed = f"http://127.0.0.1:{port}"
        cfg = loopback_config(cors_origins=[allowed])
        async with running_server(cfg, tone_model) as (url, _app):
            async with async_playwright() as pw:
                context = await launch(pw, executable, tmp_path)
                try:
                    page = await context.new_page()
                    await page.goto(f"{allowed}/embed.html?media=0&server={url}")
                    await page.wait_for_function(
                        "window.embed && (window.embed.session || window.embed.error)",
                        timeout=20_000,
                    )
                    assert await page.evaluate("window.embed.error") is None
                    await page.wait_for_function(
                        "window.embed.session.channel.readyState === 'open'", timeout=10_000
                    )
                    await page.fill("#text", "hello from another origin")
                    await page.click("#say button")
                    await page.wait_for_function(
                        "window.embed.states.includes('speaking')", timeout=20_000
                    )
                    await page.wait_for_function(
                        "window.embed.session.stats().then(s => s.framesDecoded > 10 "
                        "&& s.totalAudioEnergy > 0)",
                        timeout=20_000,
                        polling=250,
                    )
                    assert tone_model.conductor.turns[0].text == "hello from another origin"
                    # same page, an origin the server does not allow: refused by the browser
                    other = await context.new_page()
                    await other.goto(f"http://localhost:{port}/embed.html?media=0&server={url}")
                    await other.wait_for_function(
                        "window.embed && (window.embed.session || window.embed.error)",
                        timeout=20_000,
                    )
                    assert await other.evaluate("window.embed.session") is None
                    assert await other.evaluate("window.embed.error") is not None
                finally:
                    await context.close()
    finally:
        await runner.cleanup()
