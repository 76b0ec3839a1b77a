// Calling bff. On the server (load functions, actions) SvelteKit's `fetch` goes through
// `handleFetch` (hooks.server.ts), which forwards the browser's Better Auth cookie to bff; in
// the browser, `credentials: 'include'` sends it to bff's origin, which must list this app's
// origin in CORS_ALLOWED_ORIGINS.
import { print } from 'graphql';
import type { TadaDocumentNode } from 'gql.tada';
import { env } from '$env/dynamic/public';
import type { BffResult } from './graphql';

/** bff's GraphQL endpoint as browsers reach it (PUBLIC_BFF_URL). */
export const publicBffUrl = () => `${(env.PUBLIC_BFF_URL || 'http://localhost:8080').replace(/\/+$/, '')}/graphql`;

export async function bff<T, V>(
  fetcher: typeof fetch,
  url: string,
  document: TadaDocumentNode<T, V>,
  variables: V,
): Promise<BffResult<T>> {
  const response = await fetcher(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    },
    credentials: 'include',
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = await response.json().catch(() => ({}));
  return { data: (body.data ?? null) as T | null, errors: body.errors ?? [] };
}
