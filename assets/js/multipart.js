// Direct uploads: a large file goes straight to storage in parts, through the portal's /api/s3 protocol
// (the one @uppy/aws-s3 speaks). The portal only signs each part's URL and completes the upload; the bytes
// never pass through it. Parts go up in parallel (PARALLEL at a time); a failed part is retried with a fresh
// URL; pause stops the parts in flight and resume sends them again; and because the upload's key and id are
// kept in localStorage, choosing the same file again after a reload or a lost connection asks the portal
// which parts storage already holds and sends only the rest. The SHA-256 is computed meanwhile in a Web
// Worker (sha256-worker.js) and declared at completion, so the portal can verify what storage holds.

import { api, ApiError } from './api.js';

export const PARALLEL = 4;
const MEMORY = 'portal.direct-uploads';
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const SPEED_WINDOW_MS = 3000;

function fingerprint(file) {
  return JSON.stringify([file.name, file.size, file.lastModified]);
}

function memory() {
  try {
    const all = JSON.parse(localStorage.getItem(MEMORY) || '{}');
    return all && typeof all === 'object' ? all : {};
  } catch (_) {
    return {};
  }
}

function keep(all) {
  try {
    localStorage.setItem(MEMORY, JSON.stringify(all));
  } catch (_) {
    // Private mode or a full store: the upload still works, it just cannot be resumed after a reload.
  }
}

/** The upload of `file` started earlier in this browser ({key, uploadId, partSize}), or null. */
export function rememberedUpload(file) {
  const all = memory();
  const now = Date.now();
  for (const [name, entry] of Object.entries(all)) if (!(now - entry.started < FORGET_AFTER_MS)) delete all[name];
  keep(all);
  return all[fingerprint(file)] || null;
}

function remember(file, upload) {
  const all = memory();
  all[fingerprint(file)] = { ...upload, started: Date.now() };
  keep(all);
}

function forget(file) {
  const all = memory();
  delete all[fingerprint(file)];
  keep(all);
}

/** Hash `file` in a worker: {promise (hex SHA-256), cancel}. */
export function sha256InWorker(file) {
  const worker = new Worker(new URL('./sha256-worker.js', import.meta.url));
  const promise = new Promise((resolve, reject) => {
    worker.addEventListener('message', (event) => {
      if (event.data.type === 'done') resolve(event.data.sha256);
      else if (event.data.type === 'error') reject(new ApiError(0, 'hash_failed', `Could not read the file to check it: ${event.data.message}`));
    });
    worker.addEventListener('error', () => reject(new ApiError(0, 'hash_failed', 'Could not start checking the file (SHA-256).')));
    worker.postMessage({ file });
  });
  promise.catch(() => {}).finally(() => worker.terminate()); // a rejection nobody awaits is not an error
  return { promise, cancel: () => worker.terminate() };
}

const paused = Symbol('paused');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** PUT one part to its presigned URL; resolves to the ETag storage answered. `onProgress(loaded)`. */
function putPart(url, body, onProgress, track) {
  const xhr = new XMLHttpRequest();
  track.add(xhr);
  return new Promise((resolve, reject) => {
    xhr.open('PUT', url);
    xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(new ApiError(xhr.status, 'storage_refused', `Storage refused a part (HTTP ${xhr.status}).`));
        return;
      }
      const etag = xhr.getResponseHeader('ETag');
      if (etag) resolve(etag);
      else reject(new ApiError(xhr.status, 'no_etag', 'Storage did not show the part’s ETag: the bucket’s CORS rule must expose it (portal storage cors --apply).'));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'The connection to storage dropped.')));
    xhr.addEventListener('abort', () => reject(paused));
    xhr.send(body);
  }).finally(() => track.delete(xhr));
}

/**
 * Upload `file` straight to storage. `onProgress(sent, total, bytesPerSecond)`; `onStatus(text)` for what it
 * is doing ("Resuming…"); `endpoint` is where the protocol lives (Uppy's option of that name): `/api` for the
 * signed-in customer, `/api/r/<token>` for a guest sending through a file request. Returns {promise, abort,
 * pause, resume, isPaused}: the promise resolves to the artifact, or rejects with ApiError (code "aborted"
 * after abort()).
 */
export function directUpload(file, { onProgress = () => {}, onStatus = () => {}, endpoint = '/api' } = {}) {
  const inFlight = new Set();
  let upload = null;
  let canceled = false;
  let halted = false; // one part failed for good: the others stop too
  let isPaused = false;
  let wakeAll = () => {};
  let woken = Promise.resolve(); // while paused: settles on resume (every waiting part wakes)
  const loaded = new Map(); // part number -> bytes sent so far (whole parts once stored)
  const samples = []; // [time, bytes sent in this page] for the speed
  let fresh = 0;

  function report() {
    const sent = [...loaded.values()].reduce((a, b) => a + b, 0);
    const now = performance.now();
    samples.push([now, fresh]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
    const [t0, b0] = samples[0];
    onProgress(Math.min(sent, file.size), file.size, now > t0 ? ((fresh - b0) * 1000) / (now - t0) : 0);
  }

  async function untilRunning() {
    while (isPaused && !canceled && !halted) await woken;
    if (canceled || halted) throw new ApiError(0, 'aborted', 'Upload canceled.');
  }

  const path = () => `${endpoint}/s3/multipart/${encodeURIComponent(upload.uploadId)}`;
  const query = () => `key=${encodeURIComponent(upload.key)}`;
  const partLength = (n) => Math.max(0, Math.min(upload.partSize, file.size - (n - 1) * upload.partSize));

  async function sendPart(number) {
    for (let attempt = 0; ; attempt += 1) {
      await untilRunning();
      const start = (number - 1) * upload.partSize;
      try {
        const { url } = await api(`${path()}/${number}?${query()}`);
        let counted = 0;
        const etag = await putPart(url, file.slice(start, start + partLength(number)), (bytes) => {
          fresh += bytes - counted;
          counted = bytes;
          loaded.set(number, bytes);
          report();
        }, inFlight);
        loaded.set(number, partLength(number));
        report();
        return etag;
      } catch (error) {
        loaded.set(number, 0);
        if (error === paused) {
          if (canceled || halted) throw new ApiError(0, 'aborted', 'Upload canceled.');
          continue; // paused mid-part: send it again on resume
        }
        // A network drop, an expired URL (403), a busy storage (5xx): ask for a fresh URL and try again.
        const retriable = error.status === 0 || error.status === 403 || error.status === 429 || error.status >= 500;
        if (!retriable || attempt >= RETRY_DELAYS_MS.length) throw error;
        onStatus(`Retrying part ${number}…`);
        if (!navigator.onLine) await new Promise((resolve) => window.addEventListener('online', resolve, { once: true }));
        await sleep(RETRY_DELAYS_MS[attempt]);
      }
    }
  }

  async function run() {
    const hashing = sha256InWorker(file);
    try {
      const stored = new Map();
      upload = rememberedUpload(file);
      if (upload) {
        onStatus('Resuming…');
        try {
          for (const part of await api(`${path()}?${query()}`)) {
            if (part.Size === partLength(part.PartNumber)) stored.set(part.PartNumber, part.ETag);
          }
        } catch (error) {
          if (error.status !== 404) throw error;
          forget(file); // expired or aborted meanwhile: start again
          upload = null;
        }
      }
      if (!upload) {
        const created = await api(`${endpoint}/s3/multipart`, {
          method: 'POST',
          body: { filename: file.name, type: file.type || 'application/octet-stream', metadata: { size: file.size } },
        });
        upload = { key: created.key, uploadId: created.uploadId, partSize: created.partSize };
        remember(file, upload);
      }
      const count = Math.max(1, Math.ceil(file.size / upload.partSize));
      const etags = new Map(stored);
      for (const n of stored.keys()) loaded.set(n, partLength(n));
      report();
      const todo = [];
      for (let n = 1; n <= count; n += 1) if (!stored.has(n)) todo.push(n);
      onStatus('');
      const worker = async () => {
        while (todo.length > 0) {
          const n = todo.shift();
          etags.set(n, await sendPart(n));
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, Math.max(1, todo.length)) }, worker));
      onStatus('Checking…');
      const sha256 = await hashing.promise;
      await untilRunning();
      const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
      const done = await api(`${path()}/complete?${query()}`, { method: 'POST', body: { parts, sha256 } });
      forget(file);
      return done.artifact;
    } catch (error) {
      halted = true;
      wakeAll();
      hashing.cancel();
      for (const xhr of inFlight) xhr.abort();
      if (canceled) {
        if (upload) {
          forget(file);
          api(`${path()}?${query()}`, { method: 'DELETE' }).catch(() => {}); // else housekeeping aborts it at expiry
        }
        throw new ApiError(0, 'aborted', 'Upload canceled.');
      }
      if (error instanceof ApiError && [400, 404, 413, 422].includes(error.status)) forget(file); // cannot resume
      throw error;
    }
  }

  const promise = run();
  return {
    promise,
    isPaused: () => isPaused,
    pause() {
      if (isPaused) return;
      isPaused = true;
      woken = new Promise((resolve) => { wakeAll = resolve; });
      for (const xhr of inFlight) xhr.abort();
    },
    resume() {
      isPaused = false;
      wakeAll();
    },
    abort() {
      canceled = true;
      isPaused = false;
      wakeAll();
      for (const xhr of inFlight) xhr.abort();
    },
  };
}
