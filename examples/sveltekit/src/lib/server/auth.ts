// Better Auth, in the app, on the same PostgreSQL as bff: email and password, the bearer() and
// jwt() plugins bff accepts from mobile clients, and admin() for roles, bans and impersonation
// (bff reads its columns: `user.role` for /admin, bans on every path). The session cookie it sets
// (better-auth.session_token, signed with BETTER_AUTH_SECRET) is what bff reads.
import { betterAuth } from 'better-auth';
import { admin, bearer, jwt } from 'better-auth/plugins';
import { sveltekitCookies } from 'better-auth/svelte-kit';
import { getRequestEvent } from '$app/server';
import { building } from '$app/environment';
import { env } from '$env/dynamic/private';
import pg from 'pg';

export const auth = betterAuth({
  database: new pg.Pool({ connectionString: env.DATABASE_URL }),
  // `vite build` loads this module without the runtime environment.
  secret: building ? 'build-time-placeholder-never-used-0123456789' : env.BETTER_AUTH_SECRET,
  baseURL: env.BETTER_AUTH_URL,
  emailAndPassword: { enabled: true, autoSignIn: true },
  plugins: [bearer(), jwt(), admin(), sveltekitCookies(getRequestEvent)],
  telemetry: { enabled: false },
});
