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
    sessionStorage.removeItem(KEY);
  }
}

export const session: Session = new TokenSession();
