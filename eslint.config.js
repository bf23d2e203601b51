// Lint rules. Besides the recommended sets, the folder boundaries are enforced here: shared/ is
// pure (no node:*, no DOM globals, no web/ or server/ imports); web/ and server/ never import
// each other; only shared/crypto/ touches @noble/* or crypto.subtle. The layers inside shared/ and
// import cycles are checked by dependency-cruiser (.dependency-cruiser.cjs); functions in shared/
// and server/ stay under 80 lines.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import ts from 'typescript-eslint';
import svelteConfig from './svelte.config.js';

const noble = { group: ['@noble/*'], message: 'Only shared/crypto/ uses @noble/*.' };

export default ts.config(
  { ignores: ['dist/', 'bench/dist/', 'node_modules/', 'test-results/', 'playwright-report/'] },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: {
      parserOptions: { projectService: true, extraFileExtensions: ['.svelte'], parser: ts.parser, svelteConfig },
    },
  },
  {
    files: ['shared/**/*.ts'],
    ignores: ['shared/crypto/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'shared/ is pure: no node:* imports.' },
            noble,
            { group: ['**/web/**', '**/server/**'] },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    languageOptions: { globals: { ...globals['shared-node-browser'] } },
    rules: {
      'no-restricted-globals': [
        'error',
        'window',
        'document',
        'location',
        'navigator',
        'indexedDB',
        'localStorage',
        'process',
        'Buffer',
        'self',
      ],
    },
  },
  {
    files: ['shared/crypto/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*'], message: 'shared/ is pure.' }, { group: ['**/web/**', '**/server/**'] }] },
      ],
    },
  },
  {
    files: ['web/**/*.ts', 'web/**/*.svelte'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/server/**'] }, { group: ['node:*'] }, noble] }],
      'no-restricted-properties': ['error', { object: 'crypto', property: 'subtle', message: 'Use shared/crypto/.' }],
    },
  },
  {
    files: ['server/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/web/**'] }, noble] }] },
  },
  {
    // A function a newcomer can read in one screen; an exception says why beside it.
    files: ['shared/**/*.ts', 'server/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
);
