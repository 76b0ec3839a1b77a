// bff against the real Better Auth: Better Auth creates its own tables with its own migrator,
// signs a user up and in through its own handler, and bff must accept exactly the cookie and
// the `set-auth-token` bearer Better Auth returned — and stop accepting them at sign-out. With
// Better Auth's admin plugin: a ban through its own route holds in bff on every credential (the
// JWT it cannot revoke included) and closes the person's socket.
//
// Run by `cargo test` (tests/api/interop.rs), which passes DATABASE_URL (an empty database)
// and BFF_BIN (the built binary).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import pg from 'pg';
import { betterAuth } from 'better-auth';
import { admin, bearer, jwt } from 'better-auth/plugins';
import WebSocket from 'ws';
import { ADMIN_COLUMNS, adminColumns } from './support.mjs';
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
  plugins: [bearer(), jwt(), admin()],
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

/** `query`'s whole answer from bff at `url`, with `headers`. */
async function graphql(url, headers, query) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  assert.equal(response.status, 200);
  return response.json();
}

/** A graphql-transport-ws connection signed in with `authorization`, acknowledged; resolves
 * its close code when it closes. */
async function openSocket(url, authorization) {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization } })));
    socket.on('message', (data) => {
      if (JSON.parse(data).type === 'connection_ack') resolve();
    });
  });
  return { socket, closed };
}

async function viewer(url, headers) {
  const body = await graphql(url, headers, '{ viewer { id email name emailVerified credits { balance } subscription { plan } } }');
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data.viewer;
}

test('bff accepts what real Better Auth issues and honours its sign-out', async () => {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  // bff's migrations add these when the plugin is not enabled, with the same types (demo.test.mjs).
  assert.deepEqual(await adminColumns(pool), ADMIN_COLUMNS);

  // The periodic WebSocket session check is slow (60 s): only the ban's news can close sockets quickly.
  const env = { ...process.env, DATABASE_URL, BETTER_AUTH_SECRET: SECRET, BETTER_AUTH_URL: BASE_URL, BFF_WS_SESSION_CHECK_MS: '60000' };
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

  // A ban through Better Auth's admin route (by an admin, whose role is Better Auth's column).
  const adminEmail = `admin-${Date.now()}@example.com`;
  await callAuth('sign-up/email', { email: adminEmail, password: 'correct horse battery', name: 'Admin' });
  await pool.query(`UPDATE "user" SET role = 'admin' WHERE email = $1`, [adminEmail]);
  const adminCookie = sessionCookie(await callAuth('sign-in/email', { email: adminEmail, password: 'correct horse battery' }));
  const banned = await callAuth('sign-in/email', { email, password: 'correct horse battery' });
  const bannedCookie = sessionCookie(banned);
  const bannedBearer = banned.headers.get('set-auth-token');
  const bannedJwt = (await (await auth.handler(new Request(`${BASE_URL}/api/auth/token`, { headers: { cookie: bannedCookie } }))).json()).token;
  assert.equal((await viewer(url, { cookie: bannedCookie })).id, me.id);
  const mobile = await openSocket(url, `Bearer ${bannedJwt}`);
  const tablet = await openSocket(url, `Bearer ${bannedBearer}`);
  const started = Date.now();
  await callAuth('admin/ban-user', { userId: me.id, banReason: 'interop' }, { cookie: adminCookie });
  // Better Auth deleted the sessions: the cookie and the bearer sign nobody in. Its JWT it
  // cannot revoke; bff refuses it because the person is banned.
  assert.equal(await viewer(url, { cookie: bannedCookie }), null, 'the banned cookie still works');
  assert.equal(await viewer(url, { authorization: `Bearer ${bannedBearer}` }), null, 'the banned bearer still works');
  const refused = await graphql(url, { authorization: `Bearer ${bannedJwt}` }, '{ viewer { id } }');
  assert.equal(refused.errors?.[0]?.extensions?.code, 'ACCOUNT_BANNED', JSON.stringify(refused));
  assert.equal(await mobile.closed, 4403);
  assert.equal(await tablet.closed, 4403);
  assert.ok(Date.now() - started < 5000, `sockets closed after ${Date.now() - started} ms`);
  // Better Auth refuses the sign-in too; unbanned, the JWT works in bff again.
  const refusedSignIn = await auth.handler(new Request(`${BASE_URL}/api/auth/sign-in/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: BASE_URL },
    body: JSON.stringify({ email, password: 'correct horse battery' }),
  }));
  assert.equal(refusedSignIn.status, 403, await refusedSignIn.clone().text());
  await callAuth('admin/unban-user', { userId: me.id }, { cookie: adminCookie });
  assert.equal((await viewer(url, { authorization: `Bearer ${bannedJwt}` })).id, me.id);

  // Graceful shutdown on SIGTERM.
  const exited = new Promise((resolve) => bff.once('exit', (code, signal) => resolve({ code, signal })));
  bff.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null }, stderr);
});
