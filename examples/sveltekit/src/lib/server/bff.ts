import { env } from '$env/dynamic/public';

/** bff's GraphQL endpoint (PUBLIC_BFF_URL, e.g. http://localhost:8080), for server and browser. */
export const bffUrl = () => `${env.PUBLIC_BFF_URL ?? 'http://localhost:8080'}/graphql`;
