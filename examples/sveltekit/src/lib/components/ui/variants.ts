// Class names of the components, in one place (shadcn-svelte's variants, without a runtime
// class merger: a component's own classes come first, the caller's last).
export const cx = (...classes: (string | false | null | undefined)[]) => classes.filter(Boolean).join(' ');

export const button = {
  base: 'inline-flex items-center justify-center gap-2 whitespace-nowrap rounded-md font-medium transition-colors disabled:pointer-events-none disabled:opacity-60 aria-disabled:pointer-events-none aria-disabled:opacity-60 [&_svg]:size-4 [&_svg]:shrink-0',
  variant: {
    default: 'bg-primary text-primary-foreground shadow-sm hover:bg-primary/90',
    secondary: 'bg-secondary text-secondary-foreground hover:bg-secondary/80',
    outline: 'border border-input bg-card shadow-xs hover:bg-muted',
    ghost: 'hover:bg-muted',
    destructive: 'bg-destructive text-destructive-foreground shadow-sm hover:bg-destructive/90',
    link: 'text-primary underline-offset-4 hover:underline',
  },
  size: {
    default: 'h-10 px-4 text-sm',
    sm: 'h-8 px-3 text-sm',
    lg: 'h-11 px-6 text-base',
    icon: 'size-10',
  },
} as const;

export type ButtonVariant = keyof typeof button.variant;
export type ButtonSize = keyof typeof button.size;

export const input =
  'flex h-10 w-full min-w-0 rounded-md border border-input bg-card px-3 text-sm shadow-xs placeholder:text-muted-foreground aria-invalid:border-destructive disabled:opacity-60';

export const card = 'rounded-xl border bg-card text-card-foreground shadow-sm';

/** A link of a navigation bar; `aria-current="page"` marks where the person is. */
export const navLink =
  'rounded-md px-3 py-2 text-sm font-medium text-muted-foreground transition-colors hover:text-foreground aria-[current=page]:bg-muted aria-[current=page]:text-foreground';

/** A tone for a status badge. */
export type Tone = 'neutral' | 'info' | 'success' | 'warning' | 'danger';
export const tone: Record<Tone, string> = {
  neutral: 'bg-muted text-muted-foreground',
  info: 'bg-accent text-accent-foreground',
  success: 'bg-success/12 text-success',
  warning: 'bg-warning/15 text-warning',
  danger: 'bg-destructive/12 text-destructive',
};
