import { error } from '@sveltejs/kit';
import { bffOrigin } from '$lib/server/bff';
import type { RequestHandler } from './$types';

// The export, through the app's own origin: handleFetch adds the browser's cookie, and bff's
// body is streamed through as it comes (memory does not grow with the account here either).
export const GET: RequestHandler = async ({ fetch, locals }) => {
  if (!locals.user) error(401, 'Sign in first');
  const response = await fetch(`${bffOrigin()}/account/export`);
  if (!response.ok || !response.body) error(response.status, 'The export is not available right now; try again later.');
  const headers = new Headers({ 'content-type': 'application/json', 'cache-control': 'no-store' });
  const disposition = response.headers.get('content-disposition');
  if (disposition) headers.set('content-disposition', disposition);
  return new Response(response.body, { headers });
};
