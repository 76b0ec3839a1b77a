// The demo user `bff dev` seeds signs in to an app with the real Better Auth, with the password
// `bff dev` prints: the example app shows a newcomer the demo data, not an empty account. And the
// columns of Better Auth's admin plugin, which bff's migrations add when absent, are the plugin's
// own: its migrator finds nothing to add.
//
// Run by `cargo test` (tests/api/interop.rs), which passes DATABASE_URL (a database prepared as
// `bff dev` prepares its own), DEMO_EMAIL and DEMO_PASSWORD.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { betterAuth } from 'better-auth';
import { admin } from 'better-auth/plugins';
import { getMigrations } from 'better-auth/db/migration';
import { ADMIN_COLUMNS, adminColumns } from './support.mjs';

const { DATABASE_URL, DEMO_EMAIL, DEMO_PASSWORD } = process.env;
assert.ok(DATABASE_URL && DEMO_EMAIL && DEMO_PASSWORD, 'run through cargo test');

const BASE_URL = 'http://localhost:5173';
const pool = new pg.Pool({ connectionString: DATABASE_URL });
const auth = betterAuth({
  database: pool,
  secret: 'demo-secret-0123456789abcdef0123456789abcdef',
  baseURL: BASE_URL,
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
});
after(() => pool.end());

const signIn = (password) => auth.handler(new Request(`${BASE_URL}/api/auth/sign-in/email`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', origin: BASE_URL },
  body: JSON.stringify({ email: DEMO_EMAIL, password }),
}));

test('the demo user signs in with the printed password, and with no other', async () => {
  const response = await signIn(DEMO_PASSWORD);
  assert.equal(response.status, 200, await response.clone().text());
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('better-auth.session_token='));
  assert.ok(cookie, 'no session cookie');
  const session = await auth.api.getSession({ headers: new Headers({ cookie: cookie.split(';')[0] }) });
  assert.equal(session.user.email, DEMO_EMAIL);
  assert.equal((await signIn(`${DEMO_PASSWORD}-not`)).status, 401);
  const { rows } = await pool.query(
    `SELECT count(*)::int AS n FROM account JOIN "user" u ON u.id = account."userId" WHERE u.email = $1`,
    [DEMO_EMAIL],
  );
  assert.equal(rows[0].n, 1, 'one password account, however often bff dev prepared the database');
});

test("Better Auth's admin plugin finds its columns already there, as it would make them", async () => {
  const options = { ...auth.options, plugins: [admin()] };
  const { toBeAdded, toBeCreated } = await getMigrations(options);
  assert.deepEqual(toBeCreated.map((t) => t.table), []);
  assert.deepEqual(toBeAdded.map((t) => [t.table, Object.keys(t.fields)]), []);
  // As Better Auth's migrator makes them (interop.test.mjs checks the same list after it).
  assert.deepEqual(await adminColumns(pool), ADMIN_COLUMNS);
});
