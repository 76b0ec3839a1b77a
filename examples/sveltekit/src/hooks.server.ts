import { svelteKitHandler } from 'better-auth/svelte-kit';
import { building } from '$app/environment';
import { auth } from '$lib/server/auth';
import type { Handle } from '@sveltejs/kit';

// Better Auth answers /api/auth/*; every other request learns who is signed in.
export const handle: Handle = async ({ event, resolve }) => {
  const session = await auth.api.getSession({ headers: event.request.headers });
  event.locals.user = session
    ? { id: session.user.id, email: session.user.email, name: session.user.name }
    : null;
  return svelteKitHandler({ event, resolve, auth, building });
};
