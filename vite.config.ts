/**
 * Vite build of the single-page app in web/ into dist/, which the Hono server serves.
 */
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { precompress } from './scripts/precompress.ts';

export default defineConfig({
  root: 'web',
  // precompress: a .gz and a .br beside each script and style, served by Accept-Encoding (server/app.ts).
  plugins: [svelte({ configFile: fileURLToPath(new URL('./svelte.config.js', import.meta.url)) }), precompress()],
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    // No source maps in what `npm start` serves; `npm run dev` (vite's dev server) has its own.
    sourcemap: false,
    // Two pages: the app, and the OpenID Connect redirect URI of keyless signing, which hands the
    // login back to the app and closes (web/src/oidc-callback.ts).
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('./web/index.html', import.meta.url)),
        'oidc-callback': fileURLToPath(new URL('./web/oidc-callback.html', import.meta.url)),
      },
    },
  },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: 5173 },
});
