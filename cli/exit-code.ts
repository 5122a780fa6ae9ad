/**
 * Commander ignores what actions return: each action's exit code goes to process.exitCode
 * (see EXIT in client/exit-codes.ts; thrown errors are mapped in main.ts).
 */
export const withExitCode =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
  async (...args: A): Promise<void> => {
    process.exitCode = await fn(...args);
  };
