import { fail, redirect } from '@sveltejs/kit';
import { APIError } from 'better-auth/api';
import { dev } from '$app/environment';
import { env } from '$env/dynamic/private';
import { auth } from '$lib/server/auth';
import type { Actions, PageServerLoad } from './$types';

// The account `bff dev` seeds with jobs, photos and purchases (its password is public, and
// printed by `bff dev`). Offered in development, or where DEMO_SIGN_IN=true says so.
const DEMO = { email: env.DEMO_EMAIL || 'demo@example.com', password: env.DEMO_PASSWORD || 'bff-demo-password' };
const demoOffered = () => dev || env.DEMO_SIGN_IN === 'true';

export const load: PageServerLoad = () => ({ demo: demoOffered() ? DEMO.email : null });

/** Back where the person was asked to sign in (a path of this app only). */
function back(url: URL): never {
  const to = url.searchParams.get('redirectTo') ?? '/';
  redirect(303, to.startsWith('/') && !to.startsWith('//') ? to : '/');
}

async function signIn(request: Request, email: string, password: string) {
  try {
    await auth.api.signInEmail({ body: { email, password }, headers: request.headers });
    return null;
  } catch (error) {
    return error instanceof APIError ? error.message : 'Could not sign in. Try again.';
  }
}

export const actions: Actions = {
  password: async ({ request, url }) => {
    const data = await request.formData();
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    const message = await signIn(request, email, password);
    if (message) return fail(400, { email, message });
    back(url);
  },
  demo: async ({ request, url }) => {
    if (!demoOffered()) return fail(404, { email: '', message: 'There is no demo account here.' });
    const message = await signIn(request, DEMO.email, DEMO.password);
    if (message) return fail(400, { email: DEMO.email, message: `The demo account could not sign in (${message}). Is this bff dev's database?` });
    back(url);
  },
};
