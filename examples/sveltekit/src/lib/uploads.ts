// Photos go from the browser straight to storage: bff answers a presigned PUT per file
// (createPhotoUploads), the browser sends each file there with the headers bff named, and the
// job is then created from the upload ids. Storage credentials never reach the browser.
import { bff, publicBffUrl } from './bff';
import { CreatePhotoUploads } from './documents';
import type { BffError, ResultOf } from './graphql';

type Upload = ResultOf<typeof CreatePhotoUploads>['createPhotoUploads']['uploads'][number];

/** PUTs `file` to `upload.url`, reporting progress (0 to 1); rejects unless the store says 2xx. */
function put(upload: Upload, file: File, progress: (fraction: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', upload.url);
    // Browsers set Content-Length themselves (and refuse to let scripts set it).
    for (const { name, value } of upload.headers) {
      if (name.toLowerCase() !== 'content-length') request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => event.lengthComputable && progress(event.loaded / event.total);
    request.onload = () =>
      request.status >= 200 && request.status < 300
        ? (progress(1), resolve())
        : reject(new Error(`the upload of ${file.name} was refused (${request.status})`));
    request.onerror = () => reject(new Error(`the upload of ${file.name} failed`));
    request.send(file);
  });
}

/**
 * Uploads `files`: their upload ids, in order, or bff's first error (with its `field`, such as
 * `files[2].contentType`).
 */
export async function uploadPhotos(
  files: File[],
  progress: (index: number, fraction: number) => void,
): Promise<{ ids: string[] } | { error: BffError }> {
  const result = await bff(fetch, publicBffUrl(), CreatePhotoUploads, {
    files: files.map((file) => ({ fileName: file.name, contentType: file.type, byteSize: file.size })),
  });
  if (result.errors.length > 0 || !result.data) {
    return { error: result.errors[0] ?? { message: 'bff did not answer' } };
  }
  const uploads = result.data.createPhotoUploads.uploads;
  try {
    await Promise.all(uploads.map((upload, i) => put(upload, files[i], (f) => progress(i, f))));
  } catch (error) {
    return { error: { message: (error as Error).message } };
  }
  return { ids: uploads.map((upload) => upload.id) };
}
