// Validates every GraphQL document of the app (the graphql(`…`) templates in src/lib against
// bff's schema.graphql, the adminGraphql(`…`) ones in src/lib/admin against admin.graphql)
// with graphql-js: an unknown or removed field, a wrong argument or type fails `npm run check`
// even where TypeScript alone would only see `unknown`.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, parse, validate } from 'graphql';

function check(schemaFile, dir, tag) {
  const schema = buildSchema(readFileSync(new URL(`../../../${schemaFile}`, import.meta.url), 'utf8'));
  const path = new URL(`../src/lib/${dir}`, import.meta.url).pathname;
  const sources = readdirSync(path).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(path, f), 'utf8'));
  const documents = sources.flatMap((s) => [...s.matchAll(new RegExp(`\\b${tag}\\(\\s*\`([^\`]*)\``, 'g'))].map((m) => m[1]));
  if (documents.length === 0) throw new Error(`no ${tag}(\`…\`) documents found in src/lib/${dir}`);
  const errors = validate(schema, parse(documents.join('\n')));
  for (const error of errors) console.error(`${schemaFile}: ${error.message}`);
  if (errors.length > 0) process.exit(1);
  console.log(`✓ ${documents.length} documents valid against ${schemaFile}`);
}

check('schema.graphql', '', 'graphql');
check('admin.graphql', 'admin/', 'adminGraphql');
