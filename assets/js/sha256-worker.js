// A classic Web Worker that computes a file's SHA-256 while the page uploads it: Web Crypto can only hash a
// whole buffer, so a streaming hash (hash-wasm's WebAssembly SHA-256, vendored under assets/vendor/) reads the
// file a slice at a time, never holding more than one slice. The page sends {file}; the worker answers
// {type: 'progress', done} now and then, and {type: 'done', sha256} or {type: 'error', message} at the end.
/* global hashwasm */
importScripts('../vendor/hash_wasm/sha256.umd.min.js');

const SLICE = 4 * 1024 * 1024;

self.addEventListener('message', async (event) => {
  const { file } = event.data;
  try {
    const hasher = await hashwasm.createSHA256();
    hasher.init();
    const reader = new FileReaderSync();
    for (let offset = 0; offset < file.size; offset += SLICE) {
      hasher.update(new Uint8Array(reader.readAsArrayBuffer(file.slice(offset, offset + SLICE))));
      self.postMessage({ type: 'progress', done: Math.min(file.size, offset + SLICE) });
    }
    self.postMessage({ type: 'done', sha256: hasher.digest('hex') });
  } catch (error) {
    self.postMessage({ type: 'error', message: String(error && error.message ? error.message : error) });
  }
});
