// Offline persistence for the partner page (IndexedDB): the downloaded trust bundle and
// eligibility lists, and a queue of check-ins made offline that is sent to the server when the
// device is back online.
//
// API
//   const store = await openOfflineStore({ dbName, endpoint, fetch, headers, batchSize })
//       endpoint  default "/v1/checkins/sync" (the server answers each item: accepted, duplicate
//                 or conflict + reason; the Idempotency-Key makes every retry safe)
//       headers   () => extra request headers (e.g. a CSRF token or Authorization)
//   await store.saveBundle(bytes, { sequence, etag }) → false if older than the kept one
//   await store.loadBundle() → {bytes, sequence, etag, savedAt} | null
//   await store.saveEligibility(listJson)        await store.loadEligibility(programme) → list | null
//   await store.enqueueCheckin({ programme, qr, checkedInAt?, idempotencyKey? }) → queued item
//   await store.pending() → queued items          await store.rejected() → items the server refused
//   await store.sync() → { accepted, duplicate, conflict, pending, error }
//   store.subscribe(callback) → unsubscribe; callback({ pending, online, syncing, lastError })
//       is called on every change: show "offline — N pending" from it
//   store.watchConnectivity(window) → stop: sync on the "online" event and after each enqueue
//   store.close()
//
// Exactly once: an item leaves the queue only when the server has answered for its key
// (accepted / duplicate / conflict). A lost response or a dropped connection leaves it queued and
// the next sync sends the same key again, which the server answers as "duplicate". Syncs are
// serialised within a page and across tabs (Web Locks).

const DB_VERSION = 1;
const KV = "kv";
const QUEUE = "queue";
const REJECTED = "rejected";
const CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const KEY = /^[A-Za-z0-9_.:-]{8,64}$/;
const QR = /^UC1:[0-9A-Z $%*+\-./:]{1,600}$/;
const MAX_BATCH = 200;
const ANSWERED = new Set(["accepted", "duplicate", "conflict"]);

export async function openOfflineStore({
  dbName = "cardsvc-offline", endpoint = "/v1/checkins/sync", fetch: send = globalThis.fetch.bind(globalThis),
  headers = () => ({}), batchSize = MAX_BATCH,
} = {}) {
  const db = await openDatabase(dbName);
  return new OfflineStore(db, { endpoint, send, headers, batchSize: Math.min(batchSize, MAX_BATCH) });
}

function openDatabase(name) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore(KV);
      db.createObjectStore(QUEUE, { keyPath: "idempotencyKey" }).createIndex("queuedAt", "queuedAt");
      db.createObjectStore(REJECTED, { keyPath: "idempotencyKey" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("the offline database is open in an older version of this page"));
  });
}

/** Run `work(objectStores)` in one transaction; resolves with its result once committed. */
function transact(db, names, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(names, mode);
    const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
    let value;
    Promise.resolve(work(stores)).then((v) => { value = v; }, reject);
    tx.oncomplete = () => resolve(value);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });
}

function requestValue(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

class OfflineStore {
  constructor(db, options) {
    this.db = db;
    this.options = options;
    this.listeners = new Set();
    this.state = { pending: 0, online: navigator.onLine, syncing: false, lastError: null };
    this.running = null;
    this.again = false;
    this.autoSync = false;
    this.refresh().catch(() => {});
  }

  /** Keep a bundle the page has verified (loadBundle) — never one older than the kept one: a
   * replayed old bundle would bring back revoked cards. Resolves false when refused. */
  saveBundle(bytes, { sequence, etag = null }) {
    if (!Number.isSafeInteger(sequence) || sequence < 0) throw new TypeError("the verified bundle's sequence is required");
    const record = { bytes: new Uint8Array(bytes), sequence, etag, savedAt: Date.now() };
    return transact(this.db, [KV], "readwrite", async (s) => {
      const kept = await requestValue(s[KV].get("bundle"));
      if (kept && kept.sequence > sequence) return false;
      s[KV].put(record, "bundle");
      return true;
    });
  }

  loadBundle() {
    return this.get("bundle");
  }

  saveEligibility(list) {
    if (!list || !CODE.test(list.programme)) throw new TypeError("not an eligibility list");
    const record = { ...list, savedAt: Date.now() };
    return transact(this.db, [KV], "readwrite", (s) => { s[KV].put(record, "eligibility:" + list.programme); });
  }

  loadEligibility(programme) {
    return this.get("eligibility:" + programme);
  }

  get(key) {
    return transact(this.db, [KV], "readonly", (s) => requestValue(s[KV].get(key))).then((v) => v ?? null);
  }

  /** Queue a check-in made offline (the QR text the guest showed, verified locally). */
  async enqueueCheckin({ programme, qr, checkedInAt = new Date(), idempotencyKey = crypto.randomUUID() }) {
    if (!CODE.test(programme) || !QR.test(qr) || !KEY.test(idempotencyKey)) {
      throw new TypeError("programme code, QR text or idempotency key of the wrong form");
    }
    const item = { idempotencyKey, programme, qr, checkedInAt: checkedInAt.toISOString(), queuedAt: Date.now() };
    await transact(this.db, [QUEUE], "readwrite", (s) => { s[QUEUE].put(item); });
    await this.refresh();
    if (this.autoSync && navigator.onLine) this.sync().catch(() => {}); // state carries any error
    return item;
  }

  pending() {
    return transact(this.db, [QUEUE], "readonly", (s) => requestValue(s[QUEUE].index("queuedAt").getAll()));
  }

  rejected() {
    return transact(this.db, [REJECTED], "readonly", (s) => requestValue(s[REJECTED].getAll()));
  }

  subscribe(callback) {
    this.listeners.add(callback);
    callback({ ...this.state });
    return () => this.listeners.delete(callback);
  }

  async refresh(changes = {}) {
    const pending = await transact(this.db, [QUEUE], "readonly", (s) => requestValue(s[QUEUE].count()));
    this.state = { ...this.state, ...changes, pending, online: navigator.onLine };
    for (const callback of this.listeners) callback({ ...this.state });
  }

  /** Send the queue; one sync at a time. A call during a sync joins it and schedules one more
   * run after it, for items queued meanwhile. */
  sync() {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    const run = navigator.locks
      ? navigator.locks.request("cardsvc-offline-sync", () => this.syncNow())
      : this.syncNow();
    this.running = run.finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.sync().catch(() => {});
      }
    });
    return this.running;
  }

  async syncNow() {
    const totals = { accepted: 0, duplicate: 0, conflict: 0, pending: 0, error: null };
    await this.refresh({ syncing: true });
    try {
      for (const batch of batches(await this.pending(), this.options.batchSize)) {
        const answers = await this.post(batch);
        await this.settle(batch, answers, totals);
      }
    } catch (error) {
      totals.error = String(error.message ?? error);
    }
    totals.pending = (await this.pending()).length;
    await this.refresh({ syncing: false, lastError: totals.error });
    return totals;
  }

  async post(batch) {
    const body = {
      programme: batch[0].programme,
      items: batch.map((i) => ({ idempotency_key: i.idempotencyKey, qr: i.qr, checked_in_at: i.checkedInAt })),
    };
    const response = await this.options.send(this.options.endpoint, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", ...this.options.headers() },
    });
    if (!response.ok) throw new Error(`sync refused: HTTP ${response.status}`);
    const answers = await response.json();
    if (!Array.isArray(answers)) throw new Error("sync answer is not a list");
    return answers;
  }

  /** Remove every item the server answered for; keep the rest for the next sync. */
  async settle(batch, answers, totals) {
    const byKey = new Map(batch.map((i) => [i.idempotencyKey, i]));
    await transact(this.db, [QUEUE, REJECTED], "readwrite", (s) => {
      for (const answer of answers) {
        const item = byKey.get(answer?.idempotency_key);
        if (!item || !ANSWERED.has(answer.status)) continue;
        totals[answer.status] += 1;
        s[QUEUE].delete(item.idempotencyKey);
        if (answer.status === "conflict") s[REJECTED].put({ ...item, reason: answer.reason ?? null });
        byKey.delete(item.idempotencyKey);
      }
    });
  }

  watchConnectivity(target = globalThis) {
    const online = () => { this.sync().catch(() => {}); };
    const offline = () => { this.refresh().catch(() => {}); };
    target.addEventListener("online", online);
    target.addEventListener("offline", offline);
    this.autoSync = true;
    return () => {
      target.removeEventListener("online", online);
      target.removeEventListener("offline", offline);
      this.autoSync = false;
    };
  }

  close() {
    this.db.close();
  }
}

/** Items grouped per programme (the sync body names one), at most `size` per batch. */
function batches(items, size) {
  const byProgramme = new Map();
  for (const item of items) {
    if (!byProgramme.has(item.programme)) byProgramme.set(item.programme, []);
    byProgramme.get(item.programme).push(item);
  }
  const out = [];
  for (const group of byProgramme.values()) {
    for (let at = 0; at < group.length; at += size) out.push(group.slice(at, at + size));
  }
  return out;
}
