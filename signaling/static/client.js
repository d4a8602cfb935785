// The browser client: mic + camera up, the avatar's audio + video down, events on a data
// channel named "events". No build step. `window.mavid` exposes state for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");

const mavid = { pc: null, channel: null, local: null, states: [], events: [], error: null };
window.mavid = mavid;

function showMessage(text) {
  $("message").textContent = text || "";
  if (text) mavid.error = text;
}

function setState(state) {
  $("state").textContent = state;
  $("state").dataset.state = state;
  mavid.states.push(state);
}

function addDirective(speech, motion) {
  const box = $("directives");
  if (speech) box.append(document.createTextNode(speech));
  if (motion) {
    const span = document.createElement("span");
    span.className = "motion";
    span.textContent = motion;
    box.append(span);
  }
  box.scrollTop = box.scrollHeight;
}

function onEvent(event) {
  mavid.events.push(event);
  switch (event.type) {
    case "state":
      setState(event.state);
      if (event.state === "thinking") $("directives").append(document.createTextNode("\n— "));
      break;
    case "directive":
      addDirective(event.speech, event.motion);
      break;
    case "barge_in":
      addDirective(" [interrupted]", "");
      break;
    case "transcript":
      $("directives").append(document.createTextNode(`\nyou: ${event.text}`));
      break;
    case "error":
      showMessage(`Server: ${event.message}`);
      break;
  }
}

async function getMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: 320, height: 240 },
    });
  } catch (err) {
    const denied = err.name === "NotAllowedError" || err.name === "SecurityError";
    showMessage(denied
      ? "Microphone/camera permission was denied: you can still type to the avatar."
      : `No microphone/camera (${err.name}): you can still type to the avatar.`);
    return null;
  }
}

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ms);
  });
}

async function start() {
  $("start").disabled = true;
  showMessage("");
  setState("connecting");
  const local = await getMedia();
  mavid.local = local;
  const pc = new RTCPeerConnection();
  mavid.pc = pc;
  if (local) {
    $("self").srcObject = local;
    for (const track of local.getTracks()) pc.addTrack(track, local);
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  const remote = new MediaStream();
  $("avatar").srcObject = remote;
  pc.ontrack = (e) => { remote.addTrack(e.track); $("avatar").play().catch(() => {}); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      showMessage("The connection dropped. Press Start to call again.");
      hangup(false);
    }
  };
  const channel = pc.createDataChannel("events");
  mavid.channel = channel;
  channel.onmessage = (m) => onEvent(JSON.parse(m.data));
  channel.onopen = () => { $("text").disabled = false; $("send").disabled = false; };

  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc, 3000);
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/offer", {
      method: "POST",
      headers,
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
    });
  } catch (err) {
    showMessage(`Cannot reach the server: ${err}`);
    hangup(false);
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    showMessage(`The server refused the call (${response.status}): ${body.error || ""}`);
    hangup(false);
    return;
  }
  mavid.sessionId = body.session_id;
  await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
  $("mute").disabled = false;
  $("hangup").disabled = false;
}

function hangup(byUser = true) {
  if (mavid.pc) mavid.pc.close();
  mavid.pc = null;
  if (mavid.local) for (const t of mavid.local.getTracks()) t.stop();
  mavid.local = null;
  setState(byUser ? "ended" : "disconnected");
  $("start").disabled = false;
  for (const id of ["mute", "hangup", "text", "send"]) $(id).disabled = true;
}

$("start").onclick = () => start().catch((err) => { showMessage(String(err)); hangup(false); });
$("hangup").onclick = () => hangup(true);
$("mute").onclick = () => {
  if (!mavid.local) return;
  const tracks = mavid.local.getAudioTracks();
  const muted = tracks.length > 0 && tracks[0].enabled;
  for (const t of tracks) t.enabled = !muted;
  $("mute").textContent = muted ? "Unmute" : "Mute";
};
$("textform").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !mavid.channel || mavid.channel.readyState !== "open") return;
  mavid.channel.send(JSON.stringify({ type: "text", text }));
  $("text").value = "";
};

// stats for tests and the curious: frames decoded and audio energy received
mavid.stats = async () => {
  const out = { framesDecoded: 0, totalAudioEnergy: 0, totalSamplesReceived: 0 };
  if (!mavid.pc) return out;
  (await mavid.pc.getStats()).forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") out.framesDecoded += r.framesDecoded || 0;
    if (r.kind === "audio") {
      out.totalAudioEnergy += r.totalAudioEnergy || 0;
      out.totalSamplesReceived += r.totalSamplesReceived || 0;
    }
  });
  return out;
};

if (params.get("autostart") === "1") $("start").click();
