// What the Node suites share: creating a photo job through bff as the signed-in user (BFF_HTTP,
// COOKIE from the environment tests/api/interop.rs sets), and the admin plugin's columns.
import assert from 'node:assert/strict';

/** Creates a one-photo job in group `groupName`; returns its id. */
export async function createJob(groupName, prompt = 'From node') {
  const response = await fetch(process.env.BFF_HTTP, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: process.env.COOKIE },
    body: JSON.stringify({
      query: 'mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }',
      variables: { input: { prompt, photoCount: 1, groupName } },
    }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data.createPhotoJob.photoJob.id;
}

/** The columns Better Auth's admin plugin (1.7) makes, as its migrator makes them. */
export const ADMIN_COLUMNS = [
  'session.impersonatedBy text YES null',
  'user.banExpires timestamp with time zone YES null',
  'user.banReason text YES null',
  'user.banned boolean YES null',
  'user.role text YES null',
];

/** The admin plugin's columns in the database `pool` reaches, as [`ADMIN_COLUMNS`] lists them. */
export async function adminColumns(pool) {
  const { rows } = await pool.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE (table_name, column_name) IN (('user', 'role'), ('user', 'banned'), ('user', 'banReason'),
                                          ('user', 'banExpires'), ('session', 'impersonatedBy'))
      ORDER BY table_name, column_name`,
  );
  return rows.map((r) => `${r.table_name}.${r.column_name} ${r.data_type} ${r.is_nullable} ${r.column_default}`);
}
