// mavid-client.js: talk to a mavid avatar from any page. A plain ES module, no build step.
//
//   import { connect } from "https://avatar.example.com/mavid-client.js";
//   const session = await connect("https://avatar.example.com/", {
//     token, video: document.querySelector("video"),
//   });
//   session.on("state", (e) => console.log(e.state));   // or session.addEventListener(...)
//   session.send("hello");  session.mute(true);  session.hangUp();
//
// Events are the server's JSON events (state, vad, transcript, understood, directive, clip,
// barge_in, error), plus "open" (the events channel is open), "track" and "close" ({reason}).

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ms);
  });
}

export class MavidError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "MavidError";
    this.status = status;  // HTTP status of a refused call, else undefined
  }
}

export class MavidSession extends EventTarget {
  constructor(pc, channel, local, remote, baseUrl) {
    super();
    this.pc = pc;
    this.channel = channel;
    this.localStream = local;    // the user's mic/camera (null: receive only)
    this.remoteStream = remote;  // the avatar's audio + video
    this.baseUrl = baseUrl;
    this.id = null;              // session id, for the backend's /sessions/{id}/... calls
    this.state = "connecting";
    this.muted = false;
    this.closed = false;
  }

  // fn(event) for one event type ("*": every event); returns a function that unsubscribes
  on(type, fn) {
    const listener = (e) => fn(e.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  _dispatch(event) {
    if (event.type === "state") this.state = event.state;
    this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
    this.dispatchEvent(new CustomEvent("*", { detail: event }));
  }

  // a typed turn; false if the events channel is not open (yet)
  send(text) {
    if (!this.channel || this.channel.readyState !== "open") return false;
    this.channel.send(JSON.stringify({ type: "text", text }));
    return true;
  }

  // mute(true|false) or toggle with mute(); returns the new muted state
  mute(muted = !this.muted) {
    this.muted = muted;
    if (this.localStream) for (const t of this.localStream.getAudioTracks()) t.enabled = !muted;
    return muted;
  }

  hangUp(reason = "hangup") {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this._dispatch({ type: "close", reason });
  }

  // WebRTC inbound stats: frames decoded, audio energy received (handy for checks)
  async stats() {
    const out = { framesDecoded: 0, totalAudioEnergy: 0, totalSamplesReceived: 0 };
    if (this.closed) return out;
    (await this.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") out.framesDecoded += r.framesDecoded || 0;
      if (r.kind === "audio") {
        out.totalAudioEnergy += r.totalAudioEnergy || 0;
        out.totalSamplesReceived += r.totalSamplesReceived || 0;
      }
    });
    return out;
  }
}

// Call the avatar at `url` (the server's base URL). options:
//   token:       bearer token, if the server wants one
//   media:       a MediaStream to send, true (ask for mic + camera: the default), or false
//   video:       a <video> element to show the avatar in (optional)
//   iceServers:  RTCIceServer list (default none)
//   onEvent:     fn(event) for every event, attached before connecting (sees the first ones)
// Resolves to a MavidSession once the answer is applied; rejects with MavidError when the
// server refuses the call. Media permission refused: connects receive-only (session.mediaError).
export async function connect(url, options = {}) {
  const base = new URL(url, location.href);
  let local = null;
  let mediaError = null;
  if (options.media instanceof MediaStream) local = options.media;
  else if (options.media !== false) {
    try {
      local = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: { width: 320, height: 240 },
      });
    } catch (err) {
      mediaError = err;
    }
  }
  const pc = new RTCPeerConnection({ iceServers: options.iceServers || [] });
  if (local) {
    for (const track of local.getTracks()) pc.addTrack(track, local);
    if (!local.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
    if (!local.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  const remote = new MediaStream();
  const channel = pc.createDataChannel("events");
  const session = new MavidSession(pc, channel, local, remote, base.href);
  session.mediaError = mediaError;
  if (options.onEvent) session.on("*", options.onEvent);
  if (options.video) options.video.srcObject = remote;
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    if (options.video) options.video.play().catch(() => {});
    session._dispatch({ type: "track", kind: e.track.kind });
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      session.hangUp("connection " + pc.connectionState);
    }
  };
  channel.onmessage = (m) => {
    try { session._dispatch(JSON.parse(m.data)); } catch { /* not JSON: not ours */ }
  };
  channel.onopen = () => session._dispatch({ type: "open" });
  channel.onclose = () => session.hangUp("closed by the server");

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc, 3000);
    const headers = { "Content-Type": "application/json" };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    let response;
    try {
      response = await fetch(new URL("offer", base), {
        method: "POST",
        headers,
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
      });
    } catch (err) {
      throw new MavidError(`cannot reach the server: ${err}`);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new MavidError(`the server refused the call (${response.status}): ` +
                           `${body.error || ""}`, response.status);
    }
    session.id = body.session_id;
    await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
  } catch (err) {
    session.closed = true;
    pc.close();
    if (local && !(options.media instanceof MediaStream)) for (const t of local.getTracks()) t.stop();
    throw err;
  }
  return session;
}
