// Builds the studio into the Python package (src/kinema/studio/web), where `kinema serve` serves it.
// `npm run dev` serves it with hot reload and sends API calls to a `kinema serve` on port 8000.
import { defineConfig } from "vitest/config";

const KINEMA = process.env.KINEMA_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  build: {
    outDir: "../src/kinema/studio/web",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false }, // no inline script: the page's CSP allows only 'self'
    reportCompressedSize: true,
  },
  server: { proxy: { "/api": KINEMA, "/media": KINEMA, "/v1": KINEMA } },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
