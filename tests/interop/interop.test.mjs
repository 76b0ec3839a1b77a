// bff against the real Better Auth: Better Auth creates its own tables with its own migrator,
// signs a user up and in through its own handler, and bff must accept exactly the cookie and
// the `set-auth-token` bearer Better Auth returned — and stop accepting them at sign-out.
//
// Run by `cargo test` (tests/api/interop.rs), which passes DATABASE_URL (an empty database)
// and BFF_BIN (the built binary).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import pg from 'pg';
import { betterAuth } from 'better-auth';
import { bearer, jwt } from 'better-auth/plugins';
import { getMigrations } from 'better-auth/db/migration';

const { DATABASE_URL, BFF_BIN } = process.env;
assert.ok(DATABASE_URL && BFF_BIN, 'DATABASE_URL and BFF_BIN must be set (run through cargo test)');

const SECRET = 'interop-secret-0123456789abcdef0123456789abcdef';
const BASE_URL = 'http://localhost:3000';
const pool = new pg.Pool({ connectionString: DATABASE_URL });
const auth = betterAuth({
  database: pool,
  secret: SECRET,
  baseURL: BASE_URL,
  emailAndPassword: { enabled: true },
  plugins: [bearer(), jwt()],
  telemetry: { enabled: false },
});

const freePort = () => new Promise((resolve, reject) => {
  const server = createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

let bff;
after(async () => {
  if (bff && bff.exitCode === null) bff.kill('SIGKILL');
  await pool.end();
});

async function callAuth(path, body, headers = {}) {
  const response = await auth.handler(new Request(`${BASE_URL}/api/auth/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: BASE_URL, ...headers },
    body: JSON.stringify(body),
  }));
  assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
  return response;
}

function sessionCookie(response) {
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('better-auth.session_token='));
  assert.ok(cookie, 'Better Auth set no session cookie');
  return cookie.split(';')[0];
}

async function viewer(url, headers) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: '{ viewer { id email name emailVerified credits { balance } subscription { plan } } }' }),
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data.viewer;
}

test('bff accepts what real Better Auth issues and honours its sign-out', async () => {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();

  const env = { ...process.env, DATABASE_URL, BETTER_AUTH_SECRET: SECRET, BETTER_AUTH_URL: BASE_URL };
  const migrate = spawnSync(BFF_BIN, ['migrate'], { env, encoding: 'utf8' });
  assert.equal(migrate.status, 0, migrate.stderr);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  bff = spawn(BFF_BIN, ['serve'], { env: { ...env, BFF_LISTEN: `127.0.0.1:${port}` }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  bff.stderr.on('data', (chunk) => { stderr += chunk; });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch { /* not listening yet */ }
    assert.ok(i < 100 && bff.exitCode === null, `bff did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const email = `interop-${Date.now()}@example.com`;
  const signUp = await callAuth('sign-up/email', { email, password: 'correct horse battery', name: 'Interop' });
  const signUpCookie = sessionCookie(signUp);
  const me = await viewer(url, { cookie: signUpCookie });
  assert.equal(me.email, email);
  assert.equal(me.name, 'Interop');
  assert.equal(me.emailVerified, false);
  assert.equal(me.credits.balance, '0.00');
  assert.equal(me.subscription.plan, 'FREE');

  const signIn = await callAuth('sign-in/email', { email, password: 'correct horse battery' });
  const token = signIn.headers.get('set-auth-token');
  assert.ok(token && token.includes('.'), 'Better Auth returned no signed set-auth-token');
  const signInCookie = sessionCookie(signIn);
  assert.equal((await viewer(url, { authorization: `Bearer ${token}` })).id, me.id);
  assert.equal((await viewer(url, { authorization: `Bearer ${encodeURIComponent(token)}` })).id, me.id);
  assert.equal((await viewer(url, { authorization: `Bearer ${token.split('.')[0]}` })).id, me.id);
  assert.equal((await viewer(url, { cookie: signInCookie })).id, me.id);

  // The jwt() plugin's token (EdDSA, kid in Better Auth's jwks table) works as a bearer too.
  const tokenResponse = await auth.handler(new Request(`${BASE_URL}/api/auth/token`, { headers: { cookie: signInCookie } }));
  assert.equal(tokenResponse.status, 200, await tokenResponse.clone().text());
  const { token: jwtToken } = await tokenResponse.json();
  assert.equal(JSON.parse(Buffer.from(jwtToken.split('.')[0], 'base64url')).alg, 'EdDSA');
  assert.equal((await viewer(url, { authorization: `Bearer ${jwtToken}` })).id, me.id);
  const tampered = jwtToken.slice(0, -2) + (jwtToken.endsWith('A') ? 'BB' : 'AA');
  assert.equal(await viewer(url, { authorization: `Bearer ${tampered}` }), null, 'a tampered JWT was accepted');

  // Better Auth's own view agrees before sign-out.
  const session = await auth.api.getSession({ headers: new Headers({ cookie: signInCookie }) });
  assert.equal(session.user.id, me.id);

  await callAuth('sign-out', {}, { cookie: signInCookie });
  assert.equal(await viewer(url, { cookie: signInCookie }), null, 'the signed-out cookie still works');
  assert.equal(await viewer(url, { authorization: `Bearer ${token}` }), null, 'the signed-out bearer still works');
  assert.equal((await viewer(url, { cookie: signUpCookie })).id, me.id, 'the other session was revoked too');
  // A JWT names no session: like Better Auth's own verification, it lasts until it expires.
  assert.equal((await viewer(url, { authorization: `Bearer ${jwtToken}` })).id, me.id);

  // Graceful shutdown on SIGTERM.
  const exited = new Promise((resolve) => bff.once('exit', (code, signal) => resolve({ code, signal })));
  bff.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null }, stderr);
});
