// How the console proves who it is. Today: an API token the person pastes, kept in this tab's
// sessionStorage (gone when the tab closes; never localStorage, never a URL) and sent as a bearer
// header. When cookie sessions (password + TOTP) land, a CookieSession implementing the same
// interface replaces TokenSession: headers() then returns the CSRF header instead.
export interface Session {
  signedIn(): boolean;
  headers(): Record<string, string>;
  signIn(secret: string): void;
  signOut(): void;
}

const KEY = "berth.console.token";

class TokenSession implements Session {
  signedIn(): boolean {
    return sessionStorage.getItem(KEY) !== null;
  }
  headers(): Record<string, string> {
    const token = sessionStorage.getItem(KEY);
    return token ? { Authorization: `Bearer ${token}` } : {};
  }
  signIn(secret: string): void {
    sessionStorage.setItem(KEY, secret);
  }
  signOut(): void {
    // Everything the console kept in this tab goes (the token, terminal sessions to reattach).
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("berth.console.")) sessionStorage.removeItem(key);
    }
  }
}

export const session: Session = new TokenSession();
