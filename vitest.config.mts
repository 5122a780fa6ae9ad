import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts the real local stack (Temporal dev server + versitygw) once for the whole run.
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-file.ts'],
    // Temporal's native runtime is per process: forks, not threads. Files run one at a time
    // (2-core machines; integration tests share the stack).
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/summary-reporter.mts'],
  },
});
