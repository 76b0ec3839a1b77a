import { redirect } from '@sveltejs/kit';
import { auth } from '$lib/server/auth';
import type { Actions } from './$types';

export const actions: Actions = {
  // Better Auth deletes the session row: bff refuses the cookie from then on.
  default: async ({ request }) => {
    await auth.api.signOut({ headers: request.headers });
    redirect(303, '/sign-in');
  },
};
