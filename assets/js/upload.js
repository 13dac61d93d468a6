// Upload one file to POST /api/artifacts with XMLHttpRequest, because fetch reports no upload progress.

import { ApiError, errorFromBody, getCsrfToken } from './api.js';
import { parseForDisplay } from './format.js';

/**
 * Start uploading `file`. `onProgress(sentBytes, totalBytes)` is called as the body goes out.
 * Returns {promise, abort}: the promise resolves to the created artifact, or rejects with ApiError
 * (code "aborted" after abort()).
 */
export function uploadFile(file, { onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/api/artifacts');
    xhr.setRequestHeader('X-CSRF-Token', getCsrfToken());
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (event) => {
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 201 || xhr.status === 200) {
        try {
          resolve(parseForDisplay(xhr.responseText));
        } catch (_) {
          reject(new ApiError(xhr.status, 'bad_response', 'The portal sent an answer this page cannot read.'));
        }
      } else {
        reject(errorFromBody(xhr.status, xhr.responseText));
      }
    });
    // The connection dropped or the portal could not be reached.
    xhr.addEventListener('error', () => reject(errorFromBody(0, '')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload canceled.')));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
