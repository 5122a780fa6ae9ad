/**
 * Commander ignores what actions return: each action's exit code goes to process.exitCode
 * (0 success, 1 run failed, 2 bad input; thrown errors are mapped in main.ts).
 */
export const withExitCode =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
  async (...args: A): Promise<void> => {
    process.exitCode = await fn(...args);
  };
