// The JavaScript a page ships, gzipped, from the build's manifest (run after `npm run build`):
// SvelteKit's start and app entries, the root layout and the page's own node, with every
// chunk they import statically (what the browser loads before the page is interactive).
// Prints each page's figure; fails when the dashboard is over its budget.
//   node scripts/budget.js            (BUDGET_KB=… to try another budget)
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET_KB = Number(process.env.BUDGET_KB ?? 100);
const out = new URL('../.svelte-kit/output/client/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('.vite/manifest.json', out), 'utf8'));
const app = readFileSync(new URL('../.svelte-kit/generated/client-optimized/app.js', import.meta.url), 'utf8');
// The route → node table SvelteKit generated ("/": [~2]).
const routes = Object.fromEntries([...app.matchAll(/"([^"]+)": \[~?(\d+)/g)].map((m) => [m[1], Number(m[2])]));

function closure(keys) {
  const seen = new Set();
  const visit = (key) => {
    if (seen.has(key)) return;
    seen.add(key);
    for (const dep of manifest[key].imports ?? []) visit(dep);
  };
  keys.forEach(visit);
  return [...seen].map((key) => manifest[key].file);
}

const entry = (suffix) => Object.keys(manifest).find((key) => key.endsWith(suffix));
const start = entry('@sveltejs/kit/src/runtime/client/entry.js');
const appEntry = entry('client-optimized/app.js');
const node = (n) => entry(`client-optimized/nodes/${n}.js`);

const sizes = (files) =>
  files.reduce(
    (sum, file) => {
      const bytes = readFileSync(new URL(file, out));
      return { raw: sum.raw + bytes.length, gzip: sum.gzip + gzipSync(bytes, { level: 9 }).length };
    },
    { raw: 0, gzip: 0 },
  );

let dashboard = 0;
console.log('JavaScript per page, gzipped (raw), before the page is interactive:');
for (const [route, n] of Object.entries(routes)) {
  const files = closure([start, appEntry, node(0), node(n)].filter(Boolean));
  const { raw, gzip } = sizes(files);
  if (route === '/') dashboard = gzip;
  console.log(`  ${route.padEnd(10)} ${(gzip / 1024).toFixed(1).padStart(6)} KB (${(raw / 1024).toFixed(1)} KB) in ${files.length} files`);
}
console.log(`dashboard budget: ${(dashboard / 1024).toFixed(1)} KB of ${BUDGET_KB} KB gzipped`);
if (dashboard === 0 || dashboard > BUDGET_KB * 1024) {
  console.error(`the dashboard ships ${(dashboard / 1024).toFixed(1)} KB of JavaScript gzipped, over its ${BUDGET_KB} KB budget`);
  process.exit(1);
}
