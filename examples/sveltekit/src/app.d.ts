declare global {
  namespace App {
    interface Locals {
      /** The Better Auth user, when signed in. */
      /** `role`: Better Auth's comma-separated roles (admin plugin), e.g. `user` or `admin`. */
      user: { id: string; email: string; name: string; role: string | null } | null;
    }
  }
}
export {};
