declare global {
  namespace App {
    interface Locals {
      /** The Better Auth user, when signed in. */
      user: { id: string; email: string; name: string } | null;
    }
  }
}
export {};
