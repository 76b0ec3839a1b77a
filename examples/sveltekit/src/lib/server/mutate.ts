import { fail, type RequestEvent } from '@sveltejs/kit';
import type { TadaDocumentNode } from 'gql.tada';
import { bff } from '$lib/bff';
import { explain } from '$lib/errors';
import { bffUrl } from './bff';

/**
 * Runs a mutation for a form action (handleFetch adds the browser's cookie): its data, or a
 * failure for the form named `form` with bff's error in words, its code, and the input field
 * it is about (bff's `extensions.field` on BAD_USER_INPUT). `url`: the viewer's endpoint, or
 * the administration's.
 */
export async function mutate<T, V>(
  event: RequestEvent,
  form: string,
  document: TadaDocumentNode<T, V>,
  variables: V,
  url = bffUrl(),
) {
  const result = await bff(event.fetch, url, document, variables);
  const error = result.errors[0];
  if (error || !result.data) {
    const failure = error ?? { message: 'bff did not answer' };
    return {
      failure: fail(400, {
        form,
        message: explain(failure),
        code: failure.extensions?.code ?? null,
        field: failure.extensions?.field ?? null,
      }),
    };
  }
  return { data: result.data };
}
