// Toasts: the result of an action, said once and politely (the Toaster is an aria-live region).
export type Toast = { id: number; kind: 'success' | 'error' | 'info'; title: string; body?: string };

export const toasts: Toast[] = $state([]);
let next = 0;

export function dismiss(id: number) {
  const i = toasts.findIndex((t) => t.id === id);
  if (i >= 0) toasts.splice(i, 1);
}

export function toast(kind: Toast['kind'], title: string, body?: string) {
  const id = ++next;
  toasts.push({ id, kind, title, body });
  if (toasts.length > 4) toasts.shift();
  setTimeout(() => dismiss(id), kind === 'error' ? 8000 : 5000);
}
