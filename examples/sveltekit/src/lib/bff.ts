// Calling bff. On the server (load functions, actions) the browser's Better Auth cookie is
// forwarded; in the browser, `credentials: 'include'` sends it to bff's origin, which must list
// this app's origin in CORS_ALLOWED_ORIGINS.
import { print } from 'graphql';
import type { TadaDocumentNode } from 'gql.tada';
import type { BffResult } from './graphql';

export async function bff<T, V>(
  fetcher: typeof fetch,
  url: string,
  document: TadaDocumentNode<T, V>,
  variables: V,
  cookie?: string | null,
): Promise<BffResult<T>> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  if (cookie) headers.cookie = cookie;
  const response = await fetcher(url, {
    method: 'POST',
    headers,
    credentials: 'include',
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = await response.json().catch(() => ({}));
  return { data: (body.data ?? null) as T | null, errors: body.errors ?? [] };
}
