// Live updates from bff over WebSocket (graphql-transport-ws). The browser sends its Better
// Auth cookie on the upgrade, and its Origin (this app's) is in bff's CORS_ALLOWED_ORIGINS.
// One connection per tab, opened by the layout while someone is signed in; pages listen for
// the events they show, and every event makes SvelteKit read the page's data again. A
// notification is said in a toast on any page and counted on the bell. After the connection
// was down, a page that gave its cursor (the dashboard) asks bff what changed since, and
// applies it, instead of reading the whole page again.
import { createClient } from 'graphql-ws';
import { print } from 'graphql';
import type { TadaDocumentNode } from 'gql.tada';
import { invalidateAll } from '$app/navigation';
import { navigating } from '$app/state';
import { Changes, CreditsUpdates, JobFields, JobUpdates, NotificationFields, NotificationUpdates } from './documents';
import { bff } from './bff';
import { toast } from './toast.svelte';
import { readFragment, type FragmentOf } from './graphql';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';
/** The connection's state, for the shell's indicator. */
export const live = $state<{ status: LiveStatus }>({ status: 'connecting' });

/**
 * Notifications that arrived since the layout's data was last read: the bell shows that data's
 * unread count plus these, and the layout sets them back to 0 when its data is read again.
 */
export const inbox = $state<{ added: number }>({ added: 0 });

/**
 * Where the current page's data stands in the viewer's changes (`viewer.changes.cursor`, read
 * with the page): set by pages that can apply changes as they come, null elsewhere.
 */
export const position = $state<{ cursor: string | null }>({ cursor: null });

type Job = ReturnType<typeof readFragment<typeof JobFields, FragmentOf<typeof JobFields>>>;
const jobListeners = new Set<(job: Job) => void>();
/** Calls `listener` with every job update; returns the function that stops it. */
export function onJob(listener: (job: Job) => void): () => void {
  jobListeners.add(listener);
  return () => jobListeners.delete(listener);
}

/**
 * Connects to `bffUrl` until the returned function is called. After a reconnection, what
 * changed while the socket was down is read from the page's cursor: jobs are applied where
 * they are shown, and only other changes (credits, deletions, billing…) read the page again;
 * without a cursor, or when it is too old (CURSOR_EXPIRED), the page is read again.
 */
export function connect(bffUrl: string): () => void {
  let pending: ReturnType<typeof setTimeout> | undefined;
  // Not while a navigation is under way: SvelteKit lets an invalidation cancel it (a click on a
  // link would be lost), and the page it goes to reads its data anyway.
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(() => navigating.to || invalidateAll(), 150);
  };
  // What the indicator says: offline when the browser says so, else whether the socket is up.
  let open = false;
  let opened = false;
  const show = () =>
    (live.status = !navigator.onLine ? 'offline' : open ? 'live' : opened ? 'reconnecting' : 'connecting');
  addEventListener('online', show);
  addEventListener('offline', show);
  const client = createClient({
    url: bffUrl.replace(/^http/, 'ws'),
    lazy: false,
    retryAttempts: Infinity,
    on: {
      connected: (_socket, _payload, wasRetry) => {
        open = opened = true;
        show();
        if (wasRetry) resume();
      },
      closed: (event) => {
        open = false;
        show();
        // 4403: the session ended (signed out elsewhere, expired, or the person was banned).
        // graphql-ws would retry; the page's data read again sends them to sign in instead.
        if ((event as CloseEvent | undefined)?.code === 4403) {
          clearTimeout(pending);
          invalidateAll();
        }
      },
    },
  });
  show();
  /** What changed since the page's cursor, applied; the page read again only when needed. */
  async function resume() {
    if (!position.cursor) return refresh();
    let since: string = position.cursor;
    let reread = false;
    for (;;) {
      const result = await bff(fetch, bffUrl, Changes, { since });
      const changes = result.data?.viewer?.changes;
      if (!changes) return refresh();
      for (const node of changes.photoJobs) {
        const job = readFragment(JobFields, node);
        for (const listener of jobListeners) listener(job);
      }
      reread ||=
        changes.deletedPhotoJobIds.length > 0 ||
        changes.purchases.length > 0 ||
        changes.notifications.length > 0 ||
        changes.credits !== null ||
        changes.subscription !== null ||
        changes.usage !== null;
      since = changes.cursor;
      if (!changes.hasMore) break;
    }
    position.cursor = since;
    if (reread) refresh();
  }
  const subscribe = <T>(document: TadaDocumentNode<T, Record<string, never>>, next: (data: T) => void) =>
    client.subscribe<T>(
      { query: print(document) },
      {
        next: (result) => result.data && next(result.data as T),
        error: (error) => console.warn('live updates stopped', error),
        complete: () => {},
      },
    );
  // A processing job's progress (at most one update a second per job) is shown where the job
  // is; only a change of status makes the page read its data again (balance, usage, counts).
  const processing = new Set<string>();
  const stops = [
    subscribe(JobUpdates, (event) => {
      const job = readFragment(JobFields, event.photoJobUpdated);
      for (const listener of jobListeners) listener(job);
      const progressOnly = job.status === 'PROCESSING' && processing.has(job.id);
      if (job.status === 'PROCESSING') processing.add(job.id);
      else processing.delete(job.id);
      if (!progressOnly) refresh();
    }),
    subscribe(CreditsUpdates, refresh),
    // Whatever page is open: the bell counts it, a toast says it, and the page (the inbox
    // among them) reads its data again.
    subscribe(NotificationUpdates, (event) => {
      const notification = readFragment(NotificationFields, event.notificationAdded);
      inbox.added += 1;
      const tone = notification.kind === 'JOB_COMPLETED' ? 'success' : notification.kind === 'JOB_FAILED' || notification.kind === 'PAYMENT_FAILED' ? 'error' : 'info';
      toast(tone, notification.title, notification.body);
      refresh();
    }),
  ];
  return () => {
    stops.forEach((stop) => stop());
    clearTimeout(pending);
    removeEventListener('online', show);
    removeEventListener('offline', show);
    client.dispose();
  };
}
