import { fail, redirect } from '@sveltejs/kit';
import { APIError } from 'better-auth/api';
import { auth } from '$lib/server/auth';
import type { Actions } from './$types';

export const actions: Actions = {
  default: async ({ request }) => {
    const data = await request.formData();
    const name = String(data.get('name') ?? '').trim();
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    if (!name || !email || password.length < 8) {
      return fail(400, { name, email, message: 'Name, email and a password of at least 8 characters.' });
    }
    try {
      // The sveltekitCookies plugin sets Better Auth's session cookie on this response.
      await auth.api.signUpEmail({ body: { name, email, password }, headers: request.headers });
    } catch (error) {
      const message = error instanceof APIError ? error.message : 'Could not sign up.';
      return fail(400, { name, email, message });
    }
    redirect(303, '/');
  },
};
