import type { SerializedError } from 'vitest';
import type { Reporter, TestModule } from 'vitest/node';

/** Prints one plain closing line, `vitest: N passed, N failed, N skipped`, that CI can read. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    modules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: 'passed' | 'interrupted' | 'failed',
  ): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      // A file whose hooks or imports failed counts as a failure even if no test body ran.
      if (
        m.state() === 'failed' &&
        ![...m.children.allTests()].some((t) => t.result().state === 'failed')
      ) {
        counts.failed++;
      }
    }
    counts.failed += unhandledErrors.length;
    // A run that failed outside any test (e.g. the stack could not start) never reads as green.
    if (reason !== 'passed' && counts.failed === 0) counts.failed = 1;
    console.log(
      `\nvitest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
    );
  }
}
