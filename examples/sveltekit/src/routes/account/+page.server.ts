import { fail, redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { explain } from '$lib/errors';
import { DeleteAccount, Profile } from '$lib/documents';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async ({ fetch, locals }) => {
  if (!locals.user) redirect(303, '/sign-in?redirectTo=/account');
  const profile = await bff(fetch, bffUrl(), Profile, {});
  return { viewer: profile.data?.viewer ?? null, errors: profile.errors.map(explain) };
};

export const actions: Actions = {
  // bff deletes the account only for a recent sign-in and the account's email typed again.
  delete: async ({ fetch, request }) => {
    const email = String((await request.formData()).get('email') ?? '').trim();
    const result = await bff(fetch, bffUrl(), DeleteAccount, { email });
    const error = result.errors[0];
    if (error) {
      const code = error.extensions?.code ?? null;
      return fail(code === 'FRESH_SESSION_REQUIRED' ? 403 : 400, { email, code, message: explain(error) });
    }
    // Better Auth's session rows went with the account: the cookie signs nobody in any more.
    redirect(303, '/sign-in?deleted=1');
  },
};
