// Builds the benchmark page (bench/browser) into bench/dist.
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'bench/browser',
  logLevel: 'warn',
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' },
  worker: { format: 'es' },
});
