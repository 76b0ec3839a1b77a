import { adminGraphql } from './graphql';

export const Me = adminGraphql(`
  query AdminMe { me { id email role grantLimit } }
`);

export const PersonFields = adminGraphql(`
  fragment PersonFields on Person {
    id name email emailVerified createdAt roles stripeCustomerId
    ban { reason expiresAt }
  }
`);

export const Overview = adminGraphql(
  `
  query AdminOverview($search: String, $after: String) {
    stats {
      people activePeople bannedPeople creditsSold creditsRefunded photoJobsLastDay
      subscriptions { name detail count }
    }
    users(search: $search, first: 20, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { ...PersonFields }
    }
  }
`,
  [PersonFields],
);

export const Account = adminGraphql(
  `
  query AdminAccount($id: ID!) {
    user(id: $id) {
      person { ...PersonFields }
      balance freePhotosUsed
      sessions { count lastActiveAt impersonated }
      subscription { plan status currentPeriodEnd cancelAtPeriodEnd }
      purchases { id pack status paid currency credits refunded creditsTakenBack creditsHeldInDispute createdAt }
      photoJobs { id status photoCount cost attempts failureReason createdAt }
      storage { uploads bytes }
      ledger { id kind amount balanceAfter description createdAt }
    }
  }
`,
  [PersonFields],
);

export const AuditLog = adminGraphql(`
  query AdminAuditLog($after: String, $targetId: ID) {
    auditLog(first: 30, after: $after, targetId: $targetId) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id at actorId actorRole impersonating targetId action reason before after }
    }
  }
`);

export const GrantCredits = adminGraphql(`
  mutation AdminGrantCredits($input: GrantCreditsInput!) {
    grantCredits(input: $input) { balance entry { id amount } }
  }
`);

export const BanUser = adminGraphql(`
  mutation AdminBanUser($input: BanUserInput!) {
    banUser(input: $input) { sessionsRevoked person { id ban { reason expiresAt } } }
  }
`);

export const UnbanUser = adminGraphql(`
  mutation AdminUnbanUser($input: PersonActionInput!) { unbanUser(input: $input) { id ban { reason } } }
`);

export const RevokeSessions = adminGraphql(`
  mutation AdminRevokeSessions($input: PersonActionInput!) { revokeSessions(input: $input) { sessionsRevoked } }
`);
