import { svelteKitHandler } from 'better-auth/svelte-kit';
import { building } from '$app/environment';
import { sequence } from '@sveltejs/kit/hooks';
import { auth } from '$lib/server/auth';
import { bffOrigin } from '$lib/server/bff';
import type { Handle, HandleFetch } from '@sveltejs/kit';

// Better Auth answers /api/auth/*; every other request learns who is signed in. A banned
// person is nobody, as bff treats them (a ban through Better Auth deletes their sessions; one
// written another way may not).
const authenticate: Handle = async ({ event, resolve }) => {
  const session = await auth.api.getSession({ headers: event.request.headers });
  const user = session?.user;
  const banned = user?.banned && (!user.banExpires || new Date(user.banExpires) > new Date());
  event.locals.user =
    user && !banned ? { id: user.id, email: user.email, name: user.name, role: user.role ?? null } : null;
  return svelteKitHandler({ event, resolve, auth, building });
};

// Pages and their data gzipped (a dashboard's HTML is a ninth of its size so), for browsers
// that take it; the Node adapter compresses only the built files. Behind a proxy or CDN that
// compresses, this is harmless: the proxy sees an encoded response and passes it on.
const compress: Handle = async ({ event, resolve }) => {
  const response = await resolve(event);
  const type = response.headers.get('content-type') ?? '';
  const compressible = type.startsWith('text/html') || event.url.pathname.endsWith('/__data.json');
  if (
    !compressible ||
    !response.body ||
    response.headers.has('content-encoding') ||
    !/\bgzip\b/.test(event.request.headers.get('accept-encoding') ?? '')
  ) {
    return response;
  }
  const headers = new Headers(response.headers);
  headers.set('content-encoding', 'gzip');
  headers.delete('content-length');
  headers.append('vary', 'Accept-Encoding');
  return new Response(response.body.pipeThrough(new CompressionStream('gzip')), {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
};

export const handle = sequence(compress, authenticate);

// SvelteKit's server-side `fetch` forwards cookies only to the app's own origin; bff lives on
// another, so its requests get the browser's cookie (Better Auth's session) here, and only its.
export const handleFetch: HandleFetch = async ({ event, request, fetch }) => {
  if (new URL(request.url).origin === new URL(bffOrigin()).origin) {
    const cookie = event.request.headers.get('cookie');
    if (cookie) request.headers.set('cookie', cookie);
  }
  return fetch(request);
};
