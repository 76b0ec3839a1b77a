// Live updates from bff over WebSocket (graphql-transport-ws). The browser sends its Better
// Auth cookie on the upgrade, and its Origin (this app's) is in bff's CORS_ALLOWED_ORIGINS.
import { createClient, type Client } from 'graphql-ws';
import { print } from 'graphql';
import type { TadaDocumentNode } from 'gql.tada';

/**
 * A client that reconnects on its own; `reconnected` runs after each reconnection, because
 * events sent while the socket was down are not replayed: read the page's data again then.
 */
export function liveClient(bffUrl: string, reconnected: () => void): Client {
  return createClient({
    url: bffUrl.replace(/^http/, 'ws'),
    lazy: true,
    retryAttempts: Infinity,
    on: { connected: (_socket, _payload, wasRetry) => wasRetry && reconnected() },
  });
}

/** Calls `next` with every event of `document`; returns the unsubscribe function. */
export function subscribe<T>(
  client: Client,
  document: TadaDocumentNode<T, Record<string, never>>,
  next: (data: T) => void,
): () => void {
  return client.subscribe<T>(
    { query: print(document) },
    {
      next: (result) => result.data && next(result.data as T),
      error: (error) => console.warn('live updates stopped', error),
      complete: () => {},
    },
  );
}
