/**
 * @file The limits one run is held to at planning and in its spec: what a dataset or a run spec
 * may ask of the workers before it is refused with a message (docs/security-and-limits.md lists
 * every limit, its default and its setting). Fixed limits are the spec's schema caps; the
 * planning limits are deployment settings (environment, core/config/env.ts) with these defaults.
 */

/** Distinct shot counts in `fewShot.shots`. */
export const MAX_SHOT_COUNTS = 16;
/** Distinct seeds in `fewShot.seeds`. */
export const MAX_SEEDS = 10;
/**
 * Few-shot grid cells (shots x seeds). CoOp and the probe each run one activity per cell, all
 * scheduled at once: 64 cells are at most 130 route activities (2 x 64 + zero-shot + the
 * full-data probe), far below Temporal's default of 2,000 pending activities per workflow and a
 * few hundred history events next to extraction's ~30,000 at the 5,000-shard cap. The published
 * protocols fit easily (CoOp: 5 shot counts x 3 seeds = 15).
 */
export const MAX_FEW_SHOT_GRID = 64;
/** Whitespace-separated words of `coop.init`: each is at least one token, and nCtx is at most 64. */
export const MAX_COOP_CONTEXT = 64;

/** What planning refuses beyond (deployment settings). */
export interface PlanningLimits {
  /**
   * Objects one dataset may list (ImageFolder, or the manifest's folder) and rows a manifest may
   * have: the listing is held in the planning worker's memory.
   */
  maxDatasetObjects: number;
  /** Classes one run may have: per-class metrics, prompts and score matrices grow with it. */
  maxClasses: number;
}

export const DEFAULT_PLANNING_LIMITS: PlanningLimits = {
  maxDatasetObjects: 5_000_000,
  maxClasses: 100_000,
};

/**
 * Cells (models x datasets) of one suite: the suite workflow carries the spec through every
 * continue-as-new and the leaderboard holds every cell's per-image correctness in one activity;
 * 10,000 is 2.5x the 100 x 40 the suite is built for.
 */
export const MAX_SUITE_CELLS = 10_000;
/** Child runs of one suite in flight at once (each runs its own extraction window and routes). */
export const MAX_SUITE_CONCURRENCY = 64;
