import { env as privateEnv } from '$env/dynamic/private';
import { env as publicEnv } from '$env/dynamic/public';

/**
 * bff's origin for the server's own calls: BFF_URL (private; e.g. an internal address such as
 * http://bff:8080 beside the app), else PUBLIC_BFF_URL, the address browsers use.
 */
export const bffOrigin = () =>
  (privateEnv.BFF_URL || publicEnv.PUBLIC_BFF_URL || 'http://localhost:8080').replace(/\/+$/, '');

/** bff's GraphQL endpoint for load functions and actions. */
export const bffUrl = () => `${bffOrigin()}/graphql`;

/** bff's administration endpoint (admin.graphql), for the /admin pages. */
export const adminUrl = () => `${bffOrigin()}/admin/graphql`;
