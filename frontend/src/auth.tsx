/** Who is signed in: sign in, silent refresh (in session.ts), sign out; the app's current user. */
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api, ok } from "./api/client";
import { clear, onSessionChange, refresh, store, type Tokens } from "./api/session";
import type { Me } from "./lib/roles";

interface AuthState {
  me: Me | null;
  ready: boolean;
  signIn(username: string, password: string): Promise<void>;
  signOut(): Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

async function readMe(): Promise<Me> {
  const me = await ok(api.GET("/auth/me"));
  return me as unknown as Me;
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [ready, setReady] = useState(false);
  const queries = useQueryClient();

  useEffect(() => {
    // A reload keeps the session: the refresh token (this tab's sessionStorage) buys a new access token.
    void refresh()
      .then(async (fresh) => (fresh ? setMe(await readMe()) : null))
      .catch(() => null)
      .finally(() => setReady(true));
    return onSessionChange((signedIn) => {
      if (!signedIn) {
        setMe(null);
        queries.clear();
      }
    });
  }, [queries]);

  const signIn = useCallback(async (username: string, password: string) => {
    const tokens = await ok(api.POST("/auth/login", { body: { username, password } }));
    store(tokens as Tokens);
    setMe(await readMe());
  }, []);

  const signOut = useCallback(async () => {
    await api.POST("/auth/logout").catch(() => null);
    clear();
  }, []);

  return <AuthContext.Provider value={{ me, ready, signIn, signOut }}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}
