/**
 * @file Errors that no retry can fix: bad data, a bad spec, a broken bundle, mixed embedding
 * spaces, a diverged training. Every such error class extends PermanentError; the activity layer
 * turns any PermanentError into a non-retryable failure in one place
 * (activities/permanent-errors.ts), so a run fails at once with the message instead of retrying
 * for hours. Core code never imports Temporal to say "do not retry".
 */
export abstract class PermanentError extends Error {}
