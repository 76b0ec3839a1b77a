import { fail, redirect } from '@sveltejs/kit';
import { APIError } from 'better-auth/api';
import { auth } from '$lib/server/auth';
import type { Actions } from './$types';

export const actions: Actions = {
  default: async ({ request, url }) => {
    const data = await request.formData();
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    try {
      await auth.api.signInEmail({ body: { email, password }, headers: request.headers });
    } catch (error) {
      const message = error instanceof APIError ? error.message : 'Could not sign in.';
      return fail(400, { email, message });
    }
    // Back where the person was asked to sign in (a path of this app only).
    const to = url.searchParams.get('redirectTo') ?? '/';
    redirect(303, to.startsWith('/') && !to.startsWith('//') ? to : '/');
  },
};
