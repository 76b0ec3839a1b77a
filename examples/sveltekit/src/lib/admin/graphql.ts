// Typed documents of bff's administration schema (admin.graphql, served at /admin/graphql),
// kept apart from the viewer's: `npm run check` regenerates graphql-env.d.ts here from it,
// and a document of one schema cannot be sent to the other's endpoint by mistake.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.d.ts';

export const adminGraphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; Decimal: string; ID: string; JSON: unknown };
}>();
