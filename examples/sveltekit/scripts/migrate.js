// Better Auth's own migration (its tables, the jwks table of the jwt() plugin and the admin()
// plugin's columns; plugins as in src/lib/server/auth.ts), then bff's:
// `npm run migrate` with DATABASE_URL set (BFF_BIN: the bff binary, default `bff`).
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { betterAuth } from 'better-auth';
import { admin, bearer, jwt } from 'better-auth/plugins';
import { getMigrations } from 'better-auth/db/migration';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const auth = betterAuth({
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET ?? 'migration-only-secret-0123456789abcdef',
  baseURL: process.env.BETTER_AUTH_URL ?? 'http://localhost:5173',
  emailAndPassword: { enabled: true },
  plugins: [bearer(), jwt(), admin()],
  telemetry: { enabled: false },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
await pool.end();
const bff = spawnSync(process.env.BFF_BIN ?? 'bff', ['migrate'], { stdio: 'inherit' });
process.exit(bff.status ?? 1);
