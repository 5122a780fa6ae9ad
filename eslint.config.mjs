// Lint rules: typescript-eslint's type-aware recommended set, plus the layering of the house plan
// (ARCHITECTURE.md). Each layer may import only what sits below it:
//   core/        plain modules: no Temporal, nothing from the layers above
//   contract/    what workflows, activities, client and workers share (queries, heartbeat shapes,
//                stage names): @temporalio/workflow's defineQuery and core/ types only
//   activities/  Temporal adapters: core/ and contract/; never workflows/, client/ or cli/
//   workflows/   deterministic orchestration: @temporalio/workflow, contract/, type-only imports,
//                core/util/concurrency, core/util/run-identity, core/util/suite-cells and
//                core/util/failure-message
//                (pure and workflow-safe)
//   client/      the package API: core/ and workflows/; never cli/, activities/ or workers/
//   cli/         commands: client/ and core/; never activities/
// Import cycles are checked by dependency-cruiser (.dependency-cruiser.cjs, part of `npm run lint`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** A rule that forbids imports into the given top-level folders (any depth of ../). */
const layers = (folders, message, extra = {}) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      patterns: [{ group: folders.flatMap((f) => [`**/${f}`, `**/${f}/**`]), message, ...extra }],
    },
  ],
});

const ABOVE_CORE = [
  'activities',
  'workflows',
  'client',
  'cli',
  'workers',
  'infra',
  'bench',
  'test',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.clipeval/', '.venv/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // envconfig is Temporal's config-file and environment parser, no SDK runtime: the
              // one config schema (core/config/) reads Temporal's settings with it.
              group: ['@temporalio/*', '!@temporalio/envconfig'],
              message:
                'core/ is plain code: Temporal belongs in activities/, workflows/ and client/.',
            },
            {
              group: ABOVE_CORE.flatMap((f) => [`**/${f}`, `**/${f}/**`]),
              message: 'core/ imports nothing from the layers above it (ARCHITECTURE.md).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['client', 'cli', 'workers', 'infra', 'bench'].flatMap((f) => [
                `**/${f}`,
                `**/${f}/**`,
              ]),
              message: 'activities/ are adapters over core/: they never import client/ or cli/.',
            },
            {
              group: ['**/workflows', '**/workflows/**'],
              message:
                'activities/ never import workflows/: the contract they share is in contract/ (below both).',
            },
          ],
        },
      ],
    },
  },
  {
    // The contract between workflows, activities, client and workers: below all four.
    files: ['contract/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@temporalio/*', '!@temporalio/workflow'],
              message: 'contract/ defines queries with @temporalio/workflow and nothing else.',
            },
            {
              group: ['../*', '!../core', '../core/*'],
              allowTypeImports: true,
              message:
                'contract/ holds shapes and names: it imports core/ as types only, and no layer above it.',
            },
            {
              group: ['node:*', '@aws-sdk/*', 'onnxruntime-node', 'apache-arrow', 'sharp'],
              message: 'contract/ is loaded by workflow code: no I/O.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', '@aws-sdk/*', 'onnxruntime-node', 'apache-arrow', 'sharp'],
              message: 'Workflow code must be deterministic: do I/O in activities.',
            },
            {
              group: ['@temporalio/*', '!@temporalio/workflow'],
              allowTypeImports: true,
              message: 'Workflow code imports only @temporalio/workflow.',
            },
            {
              group: [
                '../*',
                '!../core',
                '../core/*',
                '!../core/util',
                '../core/util/*',
                '!../core/util/concurrency',
                '!../core/util/run-identity',
                '!../core/util/suite-cells',
                '!../core/util/failure-message',
                '!../contract',
              ],
              allowTypeImports: true,
              message:
                'Workflow code may import values only from workflows/, contract/, core/util/concurrency, core/util/run-identity, core/util/suite-cells and core/util/failure-message (pure); import types with `import type`.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['client/**/*.ts', 'index.ts'],
    rules: layers(
      ['cli', 'activities', 'workers', 'infra', 'bench'],
      'client/ is the package API: it uses core/ and workflows/, never cli/, activities/ or workers/.',
      { allowTypeImports: false },
    ),
  },
  {
    files: ['cli/**/*.ts'],
    rules: layers(['activities'], 'cli/ goes through client/ and core/, never activities/.'),
  },
  { files: ['**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } },
  },
);
