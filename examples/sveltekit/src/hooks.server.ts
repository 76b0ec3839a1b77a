import { svelteKitHandler } from 'better-auth/svelte-kit';
import { building } from '$app/environment';
import { auth } from '$lib/server/auth';
import { bffOrigin } from '$lib/server/bff';
import type { Handle, HandleFetch } from '@sveltejs/kit';

// Better Auth answers /api/auth/*; every other request learns who is signed in.
export const handle: Handle = async ({ event, resolve }) => {
  const session = await auth.api.getSession({ headers: event.request.headers });
  event.locals.user = session
    ? { id: session.user.id, email: session.user.email, name: session.user.name }
    : null;
  return svelteKitHandler({ event, resolve, auth, building });
};

// SvelteKit's server-side `fetch` forwards cookies only to the app's own origin; bff lives on
// another, so its requests get the browser's cookie (Better Auth's session) here, and only its.
export const handleFetch: HandleFetch = async ({ event, request, fetch }) => {
  if (new URL(request.url).origin === new URL(bffOrigin()).origin) {
    const cookie = event.request.headers.get('cookie');
    if (cookie) request.headers.set('cookie', cookie);
  }
  return fetch(request);
};
