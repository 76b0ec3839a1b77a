// How the app says things: statuses, ledger kinds, amounts and dates in words.
import type { Tone } from './components/ui/variants';

export const JOB_STATUS: Record<string, { label: string; tone: Tone }> = {
  PENDING: { label: 'Queued', tone: 'neutral' },
  PROCESSING: { label: 'Processing', tone: 'info' },
  COMPLETED: { label: 'Completed', tone: 'success' },
  FAILED: { label: 'Failed', tone: 'danger' },
  CANCELED: { label: 'Canceled', tone: 'neutral' },
};

export const PURCHASE_STATUS: Record<string, { label: string; tone: Tone }> = {
  PENDING: { label: 'Awaiting payment', tone: 'neutral' },
  COMPLETED: { label: 'Paid', tone: 'success' },
  FAILED: { label: 'Payment failed', tone: 'danger' },
  REFUNDED: { label: 'Refunded', tone: 'warning' },
  PARTIALLY_REFUNDED: { label: 'Partly refunded', tone: 'warning' },
  DISPUTED: { label: 'Disputed: credits held', tone: 'danger' },
  DISPUTE_LOST: { label: 'Dispute lost', tone: 'danger' },
};

export const SUBSCRIPTION_STATUS: Record<string, { label: string; tone: Tone }> = {
  ACTIVE: { label: 'Active', tone: 'success' },
  TRIALING: { label: 'Trial', tone: 'info' },
  PAST_DUE: { label: 'Payment due', tone: 'warning' },
  CANCELED: { label: 'Canceled', tone: 'neutral' },
  UNPAID: { label: 'Unpaid', tone: 'danger' },
  INCOMPLETE: { label: 'Incomplete', tone: 'warning' },
  INCOMPLETE_EXPIRED: { label: 'Expired', tone: 'neutral' },
};

export const LEDGER_KIND: Record<string, string> = {
  PURCHASE: 'Credits bought',
  GRANT: 'Credits given',
  JOB_CHARGE: 'Photo job',
  JOB_REFUND: 'Job refund',
  ADJUSTMENT: 'Correction',
  PURCHASE_REFUND: 'Purchase refunded',
  DISPUTE_HOLD: 'Held: payment disputed',
  DISPUTE_RELEASE: 'Released: dispute won',
};

/** Each notification kind as the preferences page names it; `billing` kinds reach unverified addresses too. */
export const NOTIFICATION_KIND: Record<string, { label: string; about: string; billing?: boolean }> = {
  JOB_COMPLETED: { label: 'Job finished', about: 'Your processed photos are ready to download.' },
  JOB_FAILED: { label: 'Job failed', about: 'A job could not be processed; its credits come back.' },
  CREDITS_LOW: { label: 'Credits running low', about: 'Your balance fell below what a few more jobs need.' },
  CREDITS_HELD: { label: 'Credits on hold', about: 'A payment was disputed and its credits are held.' },
  PURCHASE_REFUNDED: { label: 'Purchase refunded', about: 'A credit pack was refunded and its credits taken back.' },
  PAYMENT_FAILED: { label: 'Payment failed', about: 'Your card was declined for your plan.', billing: true },
  TRIAL_ENDING: { label: 'Trial ending', about: 'Your trial ends in a few days.', billing: true },
  SUBSCRIPTION_CANCELED: { label: 'Plan canceled', about: 'Your subscription ended.' },
};

export const PLANS = [
  { code: 'FREE', name: 'Free' },
  { code: 'BASIC', name: 'Basic' },
  { code: 'PRO', name: 'Pro' },
  { code: 'ENTERPRISE', name: 'Enterprise' },
] as const;
export const planName = (code: string) => PLANS.find((p) => p.code === code)?.name ?? code;


/** A size in bytes, as people read it: "640 KB", "1.2 MB", "100 GB". */
export function bytes(n: number) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 || n >= 100 || Number.isInteger(n) ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export const date = (iso: string) =>
  new Date(iso).toLocaleDateString('en', { month: 'short', day: 'numeric', year: 'numeric' });

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
/** "3 minutes ago", "yesterday"; the same on the server and in the browser for a given `now`. */
export function ago(iso: string, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [
    ['second', 60], ['minute', 60], ['hour', 24], ['day', 30], ['month', 12], ['year', Infinity],
  ];
  let value = seconds;
  for (const [unit, size] of steps) {
    if (Math.abs(value) < size) return relative.format(unit === 'second' && Math.abs(value) < 10 ? 0 : value, unit);
    value = Math.round(value / size);
  }
  return date(iso);
}

/** Cents of a decimal string, for arithmetic without floating point. */
export const cents = (amount: string) => Math.round(Number(amount) * 100);
export const fromCents = (c: number) => `${c < 0 ? '-' : ''}${Math.floor(Math.abs(c) / 100)}.${String(Math.abs(c) % 100).padStart(2, '0')}`;
