// What the Node suites share: creating a photo job through bff as the signed-in user (BFF_HTTP,
// COOKIE from the environment tests/api/interop.rs sets).
import assert from 'node:assert/strict';

/** Creates a one-photo job in group `groupName`; returns its id. */
export async function createJob(groupName, prompt = 'From node') {
  const response = await fetch(process.env.BFF_HTTP, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: process.env.COOKIE },
    body: JSON.stringify({
      query: 'mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }',
      variables: { input: { prompt, photoCount: 1, groupName } },
    }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data.createPhotoJob.photoJob.id;
}
