// Validates every GraphQL document of the app (the graphql(`…`) templates in src/lib) against
// bff's schema.graphql with graphql-js: an unknown or removed field, a wrong argument or type
// fails `npm run check` even where TypeScript alone would only see `unknown`.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, parse, validate } from 'graphql';

const schema = buildSchema(readFileSync(new URL('../../../schema.graphql', import.meta.url), 'utf8'));
const dir = new URL('../src/lib/', import.meta.url).pathname;
const sources = readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(dir, f), 'utf8'));
const documents = sources.flatMap((s) => [...s.matchAll(/graphql\(\s*`([^`]*)`/g)].map((m) => m[1]));
if (documents.length === 0) throw new Error('no graphql(`…`) documents found in src/lib');
const errors = validate(schema, parse(documents.join('\n')));
for (const error of errors) console.error(`schema.graphql: ${error.message}`);
if (errors.length > 0) process.exit(1);
console.log(`✓ ${documents.length} documents valid against schema.graphql`);
