// Partner-base page: verify a guest (camera QR through jsQR, typed entry, or the phone-tap page),
// show what the partner may see, check in with an Idempotency-Key, and keep working offline with
// the offline modules (trust bundle + eligibility list, queued check-ins synced when back online).
//
// One Idempotency-Key per shown result: clicking "check in" twice, or a check-in that fails on
// the network and is queued, sends the same key — the server records the check-in once.

import { anchorFromCoseKey, checkEligibility, createVerifier, loadBundle } from "./offline/verify.js";
import { openOfflineStore } from "./offline/store.js";

const root = document.getElementById("partner");
const $ = (id) => document.getElementById(id);
const msg = (name) => root.dataset[name] || "";
const csrfHeaders = () => ({ "X-CSRF-Token": document.body.dataset.csrf || "" });
const SCAN_EVERY_MS = 200;

let store = null;
let current = null; // { qr, key, offline }
let camera = null;
let shownView = null; // the view of the guest on the screen (eligibility and quota per programme)

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const anchors = () => anchorFromCoseKey(fromHex(root.dataset.anchor));
const programme = () => $("programme").value;

function postJson(url, body, headers = {}) {
  return fetch(url, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/json", ...csrfHeaders(), ...headers },
  });
}

/** The JSON answer, or a refusal when the session ended (the guard sent the login page instead). */
async function answerOf(response) {
  if ((response.headers.get("Content-Type") || "").includes("application/json")) return response.json();
  const signedOut = response.redirected && new URL(response.url).pathname === "/login";
  return signedOut ? { error: "login_required", message: msg("msgSession") }
                   : { error: `http_${response.status}`, message: msg("msgFailed") };
}

// --- showing a guest --------------------------------------------------------------------------

function eligibilityText(view) {
  const code = programme();
  if (!view.eligibility || !(code in view.eligibility)) return "—";
  return view.eligibility[code] ? msg("msgEligible") : msg("msgNotEligible");
}

function showGuest({ verdict, reason, view, qr, offline, message }) {
  $("guest").hidden = false;
  const word = { OK: msg("msgOk"), NOK: msg("msgNok"), CHECK: msg("msgCheck") }[verdict] || verdict;
  const verdictEl = $("guest-verdict");
  verdictEl.textContent = [word, message || "", offline ? msg("msgOfflineResult") : ""].filter(Boolean).join(" ");
  verdictEl.dataset.verdict = verdict;
  verdictEl.dataset.reason = reason || "";
  verdictEl.className = verdict === "OK" ? "flash" : "flash error";
  $("guest-name").textContent = view.masked_name || "—";
  $("guest-id4").textContent = view.id_last4 || "—";
  showProgrammeFields(view);
  $("checkin-result").textContent = "";
  current = verdict === "OK" && qr ? { qr, key: crypto.randomUUID(), offline } : null;
  $("checkin").hidden = current === null;
  $("checkin").disabled = false;
  $("guest").focus(); // keyboard and screen-reader users land on the result (and it scrolls into view)
}

function showProgrammeFields(view) {
  shownView = view;
  $("guest-eligibility").textContent = view.eligibilityText || eligibilityText(view);
  $("guest-quota").textContent = view.quota && programme() in view.quota ? String(view.quota[programme()]) : "—";
}

function showRefusal(answer) {
  showGuest({ verdict: "NOK", reason: answer.error, view: {}, qr: null, message: answer.message });
}

// --- verify -------------------------------------------------------------------------------------

async function verify(text) {
  if (navigator.onLine) {
    try {
      const response = await postJson(root.dataset.verify, { text });
      const answer = await answerOf(response);
      if (!response.ok || answer.error) return showRefusal(answer);
      return showGuest(answer);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // a network failure: verify offline instead
    }
  }
  return verifyOffline(text);
}

async function verifyOffline(text) {
  const kept = await store.loadBundle();
  const list = await store.loadEligibility(programme());
  if (!kept || !list) return showGuest({ verdict: "CHECK", reason: "no_offline_data", view: {}, qr: null,
                                         message: msg("msgNoData"), offline: true });
  const verifier = await createVerifier({ bundleBytes: kept.bytes, anchors: anchors() });
  const result = await verifier.verify(text);
  const verdict = result.status.toUpperCase();
  const eligibility = verdict === "OK" ? await checkEligibility(list, result.cardNumber) : { eligible: false };
  const view = { eligibilityText: eligibility.eligible ? msg("msgEligible") : msg("msgNotEligible") };
  const ok = verdict === "OK" && eligibility.eligible;
  showGuest({ verdict: ok ? "OK" : verdict === "OK" ? "NOK" : verdict, reason: result.reason || eligibility.reason,
              view, qr: ok ? text.trim() : null, offline: true });
}

// --- check in -----------------------------------------------------------------------------------

async function checkIn() {
  if (!current) return;
  $("checkin").disabled = true;
  const { qr, key } = current;
  if (current.offline || !navigator.onLine) return queue(qr, key);
  try {
    const response = await postJson(root.dataset.checkin, { programme: programme(), qr }, { "Idempotency-Key": key });
    const answer = await answerOf(response);
    if (!response.ok || answer.error) {
      $("checkin-result").textContent = answer.message || msg("msgFailed");
      $("checkin-result").dataset.reason = answer.error || "";
      return;
    }
    $("checkin-result").textContent = (answer.replayed ? msg("msgAgain") : msg("msgDone")).replace("{n}", answer.quota_left);
    $("checkin-result").dataset.checkin = String(answer.checkin_id);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    await queue(qr, key); // the network went away: the same key goes into the offline queue
  }
}

async function queue(qr, key) {
  await store.enqueueCheckin({ programme: programme(), qr, idempotencyKey: key });
  $("checkin-result").textContent = msg("msgQueued");
  $("checkin-result").dataset.queued = key;
}

// --- offline material and state ------------------------------------------------------------------

async function download() {
  const status = $("download-status");
  try {
    const response = await fetch(root.dataset.bundle, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`bundle: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const bundle = await loadBundle(bytes, anchors()); // verified before it is kept
    await store.saveBundle(bytes, { sequence: bundle.sequence, etag: response.headers.get("ETag") });
    for (const option of $("programme").options) {
      const list = await fetch(root.dataset.eligibility + encodeURIComponent(option.value), { credentials: "same-origin" });
      if (list.ok) await store.saveEligibility(await list.json());
    }
    status.textContent = msg("msgDownloaded");
    status.dataset.downloaded = new Date().toISOString();
  } catch (error) {
    status.textContent = `${msg("msgDownloadFailed")} (${error.message})`;
  }
}

async function showState({ pending, online }) {
  $("pending-count").textContent = String(pending);
  $("pending-count").dataset.pending = String(pending);
  $("offline-banner").hidden = online;
  $("offline-banner").textContent = online ? "" : msg("msgOffline").replace("{n}", pending);
  const rejected = await store.rejected();
  $("rejected-note").textContent = rejected.length
    ? msg("msgRejected").replace("{n}", rejected.length).replace("{reasons}", rejected.map((r) => r.reason).join(", "))
    : "";
  $("rejected-note").dataset.rejected = String(rejected.length);
}

// --- camera -------------------------------------------------------------------------------------

async function startCamera() {
  const video = $("camera");
  if (!navigator.mediaDevices || typeof jsQR !== "function") {
    $("camera-status").textContent = msg("msgCamera");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    camera = { stream, timer: setInterval(() => scanFrame(video), SCAN_EVERY_MS) };
    $("camera-start").hidden = true;
    $("camera-stop").hidden = false;
  } catch (error) {
    $("camera-status").textContent = `${msg("msgCamera")} (${error.name})`;
  }
}

function stopCamera() {
  if (!camera) return;
  clearInterval(camera.timer);
  for (const track of camera.stream.getTracks()) track.stop();
  camera = null;
  $("camera").hidden = true;
  $("camera-start").hidden = false;
  $("camera-stop").hidden = true;
}

function scanFrame(video) {
  if (!video.videoWidth) return;
  const canvas = $("camera-frame");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0);
  const frame = context.getImageData(0, 0, canvas.width, canvas.height);
  const code = jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
  if (code && code.data) {
    stopCamera();
    $("typed-qr").value = code.data;
    verify(code.data);
  }
}

// --- wiring -------------------------------------------------------------------------------------

async function main() {
  store = await openOfflineStore({ endpoint: root.dataset.sync, headers: csrfHeaders });
  store.subscribe((state) => { showState(state); });
  store.watchConnectivity(window);
  await store.refresh();
  $("download").addEventListener("click", download);
  $("checkin").addEventListener("click", checkIn);
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  $("programme").addEventListener("change", () => {
    if (shownView && !current?.offline) showProgrammeFields(shownView);
    else { $("guest").hidden = true; current = null; } // an offline answer was for the other list
  });
  $("typed-form").addEventListener("submit", (event) => {
    event.preventDefault();
    verify($("typed-qr").value.trim());
  });
  if (root.dataset.preset) showGuest(JSON.parse(root.dataset.preset));
  if (navigator.onLine) store.sync().catch(() => {}); // items left by an earlier page or session
  await registerWorker();
  root.dataset.ready = "1";
}

/** The service worker that lets the page reload with no network (see partner_sw.js). */
async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register(root.dataset.sw, { scope: "/partner" });
    root.dataset.worker = "registered";
  } catch (error) {
    root.dataset.worker = `failed: ${error.message}`; // the page still works; a reload offline will not
  }
}

main();
