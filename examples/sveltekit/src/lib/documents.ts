import { graphql } from './graphql';

export const JobFields = graphql(`
  fragment JobFields on PhotoJob {
    id prompt photoCount cost freePhotosApplied status groupName downloadUrl failureReason createdAt deletedAt
    progress { done total stage }
    photos { id fileName url }
  }
`);

export const Dashboard = graphql(
  `
  query Dashboard($first: Int!, $after: String, $filter: PhotoJobFilter) {
    viewer {
      id name
      changes { cursor }
      subscription {
        plan status currentPeriodEnd cancelAtPeriodEnd trialEndsAt
        entitlements { monthlyPhotoQuota pricePerPhoto maxPhotosPerJob }
      }
      credits { balance freePhotosRemaining }
      usage { metric used limit remaining windowEnd }
      photoJobs(first: $first, after: $after, filter: $filter) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { ...JobFields }
      }
    }
  }
`,
  [JobFields],
);

export const Billing = graphql(`
  query Billing {
    viewer {
      id
      subscription {
        plan status currentPeriodEnd cancelAtPeriodEnd trialEndsAt
        entitlements { monthlyPhotoQuota pricePerPhoto maxPhotosPerJob }
      }
      credits {
        balance freePhotosRemaining
        transactions(first: 20) { nodes { id kind amount balanceAfter description createdAt } }
      }
      purchases(first: 10) {
        nodes { id pack status amount currency credits refundedAmount creditsReversed createdAt }
      }
    }
    creditPacks { code name credits }
  }
`);

export const Profile = graphql(`
  query Profile { viewer { id name email emailVerified } }
`);

export const CreateJob = graphql(
  `
  mutation CreateJob($input: CreatePhotoJobInput!) {
    createPhotoJob(input: $input) { photoJob { ...JobFields } }
  }
`,
  [JobFields],
);

export const RenameJob = graphql(`
  mutation RenameJob($input: UpdatePhotoJobInput!) { updatePhotoJob(input: $input) { id groupName } }
`);

export const CancelJob = graphql(`
  mutation CancelJob($id: ID!) { cancelPhotoJob(id: $id) { id status } }
`);

export const DeleteJob = graphql(`
  mutation DeleteJob($id: ID!) { deletePhotoJob(id: $id) }
`);

export const JobUpdates = graphql(
  `
  subscription JobUpdates { photoJobUpdated { ...JobFields } }
`,
  [JobFields],
);

export const PurchaseCredits = graphql(`
  mutation PurchaseCredits($pack: String!) { purchaseCredits(pack: $pack) { url } }
`);

export const SubscribeToPlan = graphql(`
  mutation SubscribeToPlan($plan: Plan!) {
    subscribe(plan: $plan) { checkout { url } subscription { plan status } }
  }
`);

export const CreditsUpdates = graphql(`
  subscription CreditsUpdates { creditsChanged { balance freePhotosRemaining } }
`);

export const CreatePhotoUploads = graphql(`
  mutation CreatePhotoUploads($files: [PhotoFileInput!]!) {
    createPhotoUploads(input: { files: $files }) { uploads { id url headers { name value } expiresAt } }
  }
`);

export const DeleteAccount = graphql(`
  mutation DeleteAccount($email: String!) { deleteAccount(input: { confirmEmail: $email }) { deletedAt } }
`);

export const NotificationFields = graphql(`
  fragment NotificationFields on Notification {
    id kind title body createdAt readAt
    subject {
      __typename
      ... on PhotoJob { id status }
      ... on Purchase { id pack }
      ... on BillingSubscription { plan subscriptionStatus: status }
    }
  }
`);

// What changed since the page's cursor, after the live connection was down (see live.svelte.ts).
export const Changes = graphql(
  `
  query Changes($since: String!) {
    viewer {
      id
      changes(since: $since) {
        cursor hasMore
        photoJobs { ...JobFields }
        deletedPhotoJobIds purchases { id } notifications { id } deletedUploadIds
        credits { balance } subscription { plan } usage { metric } notificationPreferencesChanged
      }
    }
  }
`,
  [JobFields],
);

export const UnreadCount = graphql(`
  query UnreadCount { viewer { id unreadNotificationCount } }
`);

export const Inbox = graphql(
  `
  query Inbox($first: Int!, $after: String, $unreadOnly: Boolean!) {
    viewer {
      id unreadNotificationCount
      notifications(first: $first, after: $after, unreadOnly: $unreadOnly) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { ...NotificationFields }
      }
    }
  }
`,
  [NotificationFields],
);

export const MarkRead = graphql(`
  mutation MarkRead($input: MarkNotificationsReadInput!) {
    markNotificationsRead(input: $input) { unreadCount notifications { id readAt } }
  }
`);

export const NotificationSettings = graphql(`
  query NotificationSettings { viewer { id email emailVerified notificationPreferences { kind inbox email push } } }
`);

export const UpdatePreferences = graphql(`
  mutation UpdatePreferences($input: UpdateNotificationPreferencesInput!) {
    updateNotificationPreferences(input: $input) { kind email push }
  }
`);

export const NotificationUpdates = graphql(
  `
  subscription NotificationUpdates { notificationAdded { ...NotificationFields } }
`,
  [NotificationFields],
);
