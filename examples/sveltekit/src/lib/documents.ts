import { graphql } from './graphql';

export const JobFields = graphql(`
  fragment JobFields on PhotoJob {
    id prompt photoCount cost status groupName downloadUrl failureReason createdAt deletedAt
    photos { id fileName url }
  }
`);

export const Dashboard = graphql(
  `
  query Dashboard($first: Int!, $after: String, $filter: PhotoJobFilter) {
    viewer {
      id name email
      subscription { plan status currentPeriodEnd entitlements { monthlyPhotoQuota pricePerPhoto } }
      credits {
        balance freePhotosRemaining
        transactions(first: 5) { nodes { id kind amount description createdAt } }
      }
      usage { metric used limit remaining windowEnd }
      purchases(first: 5) { nodes { id pack status amount currency refundedAmount creditsReversed } }
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

export const CreditPacks = graphql(`
  query CreditPacks { creditPacks { code name credits } }
`);

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
