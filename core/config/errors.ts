import { PermanentError } from '../util/errors';
import type { z } from 'zod';

/** Invalid configuration or run spec. Raised before any work starts; the CLI maps it to exit code 2. */
export class ConfigError extends PermanentError {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(message);
  }
}

/** One line per problem, naming the field (as the user wrote it) and what was expected. */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  fieldName: (path: string) => string,
): string {
  return issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      return `  - ${fieldName(path) || '(root)'}: ${issue.message}`;
    })
    .join('\n');
}
