// Our own page: the avatar through mavid-client.js (what any integrator's page does).
// `window.mavid` exposes state for tests.
import { connect } from "/mavid-client.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");

const mavid = { session: null, states: [], events: [], error: null };
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

// The conversation: a line per user turn (and the known question it was read as), a block per
// answer that its directives stream into.
let answer = null;

function addLine(className, text) {
  const box = $("directives");
  const div = document.createElement("div");
  div.className = className;
  div.textContent = text;
  box.append(div);
  box.scrollTop = box.scrollHeight;
  return div;
}

function addDirective(speech, motion) {
  answer ??= addLine("avatar", "");
  if (speech) answer.append(document.createTextNode(speech));
  if (motion) {
    // one motion directive per answer, however many deltas it streams in
    let span = answer.lastChild;
    if (!(span instanceof HTMLElement && span.classList.contains("motion"))) {
      span = document.createElement("span");
      span.className = "motion";
      answer.append(span);
    }
    span.textContent += motion;
  }
  $("directives").scrollTop = $("directives").scrollHeight;
}

function onEvent(event) {
  if (["open", "track", "close"].includes(event.type)) return;
  mavid.events.push(event);
  switch (event.type) {
    case "state":
      setState(event.state);
      if (event.state === "thinking") answer = null;  // the next directive starts a new block
      break;
    case "directive":
      addDirective(event.speech, event.motion);
      break;
    case "barge_in":
      addDirective(" [interrupted]", "");
      break;
    case "transcript":
      addLine("you", `you: ${event.text}`);
      break;
    case "understood":  // the known question the avatar read that as
      addLine("understood", `(understood: ${event.text})`);
      break;
    case "error":
      showMessage(`Server: ${event.message}`);
      if (event.fatal) mavid.fatal = event.message;  // the reason the call is about to end
      break;
  }
}

function controls(connected) {
  $("start").disabled = connected;
  for (const id of ["mute", "hangup"]) $(id).disabled = !connected;
  if (!connected) for (const id of ["text", "send"]) $(id).disabled = true;
}

async function start() {
  controls(true);
  $("hangup").disabled = true;
  showMessage("");
  mavid.fatal = null;
  setState("connecting");
  let session;
  try {
    session = await connect(new URL("/", location.href), {
      token, video: $("avatar"), onEvent,
    });
  } catch (err) {
    showMessage(err.message || String(err));
    setState("disconnected");
    controls(false);
    return;
  }
  mavid.session = session;
  mavid.sessionId = session.id;
  if (session.localStream) $("self").srcObject = session.localStream;
  if (session.mediaError) {
    const denied = ["NotAllowedError", "SecurityError"].includes(session.mediaError.name);
    showMessage(denied
      ? "Microphone/camera permission was denied: you can still type to the avatar."
      : `No microphone/camera (${session.mediaError.name}): you can still type to the avatar.`);
  }
  const typing = () => { $("text").disabled = false; $("send").disabled = false; };
  session.on("open", typing);
  if (session.channel.readyState === "open") typing();
  session.on("close", (e) => {
    if (e.reason !== "hangup") {
      showMessage(mavid.fatal
        ? `The call ended: ${mavid.fatal}. Press Start to call again.`
        : "The connection dropped. Press Start to call again.");
      setState("disconnected");
    }
    controls(false);
  });
  controls(true);
  // no microphone (permission denied, or none): nothing to mute
  $("mute").disabled = !(session.localStream && session.localStream.getAudioTracks().length);
}

$("start").onclick = () => start();
$("hangup").onclick = () => {
  if (mavid.session) mavid.session.hangUp();
  mavid.session = null;
  setState("ended");
};
$("mute").onclick = () => {
  if (!mavid.session) return;
  $("mute").textContent = mavid.session.mute() ? "Unmute" : "Mute";
};
$("textform").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (text && mavid.session && mavid.session.send(text)) $("text").value = "";
};

mavid.stats = async () => (mavid.session
  ? mavid.session.stats()
  : { framesDecoded: 0, totalAudioEnergy: 0, totalSamplesReceived: 0 });

if (params.get("autostart") === "1") $("start").click();
