// bff's subscriptions through the real client libraries: `graphql-ws` (graphql-transport-ws,
// what urql, Apollo Client 3.x and Houdini use) and `subscriptions-transport-ws` (the legacy
// graphql-ws protocol of older Apollo clients), over `ws`. Run by tests/api/live.rs, which
// starts bff and passes BFF_HTTP, BFF_WS, COOKIE, ORIGIN and TOKEN (a session token).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import { createJob } from './support.mjs';

const { BFF_WS, COOKIE, ORIGIN, TOKEN } = process.env;

const JOBS = 'subscription { photoJobUpdated { id status groupName } }';

/** Resolves with the first event `matches` accepts, from a subscribe function. */
function firstEvent(subscribe, matches) {
  return new Promise((resolve, rejectNow) => {
    const timer = setTimeout(() => rejectNow(new Error('no event within 10 s')), 10_000);
    const reject = (error) => {
      clearTimeout(timer);
      rejectNow(error);
    };
    const stop = subscribe({
      next: (result) => {
        if (result.errors) reject(new Error(JSON.stringify(result.errors)));
        else if (matches(result.data)) {
          clearTimeout(timer);
          resolve(result.data);
          setImmediate(() => stop());
        }
      },
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: () => {},
    });
  });
}

/**
 * Creates jobs in `group` until `event` (a subscription's first matching event) arrives, and
 * returns it: the libraries do not say when the server has started a subscription, so the first
 * change may come before it.
 */
async function createUntilHeard(group, event) {
  const heard = event.then(() => true, () => true);
  for (let i = 0; i < 20; i += 1) {
    await createJob(group);
    if (await Promise.race([heard, new Promise((r) => setTimeout(() => r(false), 500))])) break;
  }
  return event;
}

/** A `ws` class that sends the browser's cookie and Origin on the upgrade. */
class BrowserLikeWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { cookie: COOKIE, origin: ORIGIN } });
  }
}

for (const [name, options] of [
  ['cookie from the allowed origin', { webSocketImpl: BrowserLikeWebSocket }],
  ['bearer in connection_init', { webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${TOKEN}` } }],
]) {
  test(`graphql-ws client (graphql-transport-ws), ${name}`, async () => {
    const connected = new Promise((resolve) => {
      options.on = { connected: resolve };
    });
    const client = createClient({ url: BFF_WS, lazy: false, retryAttempts: 0, ...options });
    try {
      await connected;
      const group = `graphql-ws ${name}`;
      const event = firstEvent(
        (sink) => client.subscribe({ query: JOBS }, sink),
        (data) => data.photoJobUpdated.groupName === group,
      );
      const data = await createUntilHeard(group, event);
      assert.equal(data.photoJobUpdated.status, 'PENDING');
    } finally {
      await client.dispose();
    }
  });
}

test('graphql-ws client: a foreign origin cannot ride the cookie', async () => {
  class Foreign extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { headers: { cookie: COOKIE, origin: 'https://evil.example' } });
    }
  }
  const client = createClient({ url: BFF_WS, webSocketImpl: Foreign, retryAttempts: 0 });
  const failed = await firstEvent(
    (sink) => client.subscribe({ query: JOBS }, sink),
    () => true,
  ).then(() => false, () => true);
  assert.ok(failed, 'the subscription never started');
  await client.dispose();
});

test('subscriptions-transport-ws client (legacy graphql-ws)', async () => {
  const client = new SubscriptionClient(
    BFF_WS,
    { reconnect: false, connectionParams: { authorization: `Bearer ${TOKEN}` } },
    WebSocket,
  );
  try {
    const group = 'subscriptions-transport-ws';
    const observable = client.request({ query: JOBS });
    const event = firstEvent(
      (sink) => {
        const subscription = observable.subscribe(sink);
        return () => subscription.unsubscribe();
      },
      (data) => data.photoJobUpdated.groupName === group,
    );
    const data = await createUntilHeard(group, event);
    assert.equal(data.photoJobUpdated.status, 'PENDING');
  } finally {
    client.close();
  }
});
