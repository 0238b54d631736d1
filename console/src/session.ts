// How the console proves who it is. Normally a cookie session: POST /auth/login (e-mail, password,
// TOTP code) sets the HttpOnly `berth_session` cookie, which the browser sends by itself on every
// same-origin call, and the readable `berth_csrf` cookie, whose value goes back in X-CSRF-Token on
// every mutation (the coordinator refuses a cookie-authenticated mutation without it). The page
// never sees the session secret. Secondary: an API token pasted on the sign-in page, kept in this
// tab's sessionStorage (never localStorage, never a URL) and sent as a bearer header; when one is
// kept it wins (the coordinator ignores the cookie for a request with Authorization).
export interface Session {
  signedIn(): boolean;
  headers(method: string): Record<string, string>;
  useToken(secret: string): void;
  forget(): void;
  signOut(): Promise<void>;
}

const TOKEN_KEY = "berth.console.token";
const CSRF_COOKIE = "berth_csrf";
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

function csrfToken(): string | null {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join("="));
  }
  return null;
}

class ConsoleSession implements Session {
  signedIn(): boolean {
    return sessionStorage.getItem(TOKEN_KEY) !== null || csrfToken() !== null;
  }
  headers(method: string): Record<string, string> {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) return { Authorization: `Bearer ${token}` };
    const csrf = csrfToken();
    return csrf && !SAFE.has(method.toUpperCase()) ? { "X-CSRF-Token": csrf } : {};
  }
  useToken(secret: string): void {
    sessionStorage.setItem(TOKEN_KEY, secret);
  }
  forget(): void {
    // Everything the console kept in this tab goes (a token, terminal sessions to reattach), and
    // the CSRF cookie of a session the coordinator no longer knows (the HttpOnly cookie is then
    // worthless; the next login replaces it).
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("berth.console.")) sessionStorage.removeItem(key);
    }
    document.cookie = `${CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Lax`;
  }
  async signOut(): Promise<void> {
    if (sessionStorage.getItem(TOKEN_KEY) === null && csrfToken() !== null) {
      // Ends the session on the coordinator (its streams and terminals end too) and clears both
      // cookies; a session that already ended answers 401, which is fine here.
      await fetch("/auth/logout", {
        method: "POST",
        headers: { Accept: "application/json", ...this.headers("POST") },
        credentials: "same-origin",
      }).catch(() => undefined);
    }
    this.forget();
  }
}

export const session: Session = new ConsoleSession();
