import type { BffError } from './graphql';

/** What a person should read for an error bff returned. */
export function explain(error: BffError): string {
  switch (error.extensions?.code) {
    case 'INSUFFICIENT_CREDITS':
      return `Not enough credits for this job. ${error.message}`;
    case 'QUOTA_EXCEEDED':
      return `Your plan's limit is reached. ${error.message}`;
    case 'FRESH_SESSION_REQUIRED':
      return 'For your safety, sign in again before deleting your account.';
    case 'UNAUTHENTICATED':
      return 'Your session has ended: sign in again.';
    case 'RATE_LIMITED':
      return 'Too many requests: wait a moment and try again.';
    case 'INTERNAL_SERVER_ERROR':
      return 'Something went wrong on our side. Try again.';
    default:
      return error.message;
  }
}
