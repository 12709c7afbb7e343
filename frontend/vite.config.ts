/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build goes into the gateway's package: `lockflow up` serves it under /ui/ (no Node at run time).
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    outDir: "../services/gateway/src/lockflow/gateway/ui_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  server: { proxy: { "^/(?!ui/)": "http://127.0.0.1:8000" } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
