// Typed GraphQL documents from bff's schema.graphql (gql.tada): `npm run check` regenerates
// graphql-env.d.ts from the schema and type-checks every document and its use, so a schema
// change that breaks the app fails the check.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.d.ts';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; Decimal: string; ID: string };
}>();
export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada';
export { readFragment } from 'gql.tada';

/** One GraphQL error as bff sends it. */
export type BffError = { message: string; extensions?: { code?: string; field?: string; retryAfter?: number } };

/** What bff answered: data, or the errors (with their `extensions.code`). */
export type BffResult<T> = { data: T | null; errors: BffError[] };
