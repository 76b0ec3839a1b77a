import type { BffError } from './graphql';

/** What a person should read for an error bff returned: its code (`extensions.code`) in words. */
export function explain(error: BffError): string {
  switch (error.extensions?.code) {
    case 'INSUFFICIENT_CREDITS':
      return `Not enough credits for this job. ${error.message}`;
    case 'QUOTA_EXCEEDED':
      return `Your plan's limit is reached: choose a bigger plan or delete old jobs. ${error.message}`;
    case 'FRESH_SESSION_REQUIRED':
      return 'For your safety, sign in again before deleting your account.';
    case 'UNAUTHENTICATED':
      return 'Your session has ended: sign in again.';
    case 'ACCOUNT_BANNED':
      return 'This account is banned. Contact support if you think this is a mistake.';
    case 'IMPERSONATION_NOT_ALLOWED':
      return `Not while you are signed in as someone else. ${error.message}`;
    case 'FORBIDDEN':
      return `You may not do that. ${error.message}`;
    case 'NOT_FOUND':
      return 'That no longer exists: it may have been deleted in another tab.';
    case 'CONFLICT':
      return `That cannot be done now: it changed meanwhile (a job that has started cannot be canceled). ${error.message}`;
    case 'RATE_LIMITED':
      return 'Too many requests: wait a moment and try again.';
    case 'SERVICE_UNAVAILABLE':
      return error.extensions?.retryAfter
        ? 'The service is busy for a moment. Try again in a few seconds.'
        : `This is not available on this server. ${error.message}`;
    case 'INTERNAL_SERVER_ERROR':
      return 'Something went wrong on our side. Try again.';
    default:
      return error.message;
  }
}
