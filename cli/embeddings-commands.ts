/**
 * @file `clipeval embeddings export`: a run's embeddings as one Arrow file, for pyarrow, DuckDB,
 * polars.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { readMatrix } from '../core/embeddings/reader';
import { decodeShard, encodeShard } from '../core/embeddings/shard-format';
import { isSplit } from '../core/dataset/types';
import { ObjectStore } from '../core/storage/object-store';
import { UsageError } from '../client/errors';
import { connectClient, runStatus } from '../client/evaluations';
import { withExitCode } from './exit-code';

export function addEmbeddingsCommands(program: Command): void {
  program
    .command('embeddings')
    .description("work with a run's embedding shards")
    .command('export')
    .description('write the embeddings of a completed run to one Arrow IPC file')
    .argument('<runId>')
    .requiredOption(
      '--out <file.arrow>',
      'output file (Arrow IPC; pyarrow converts it to Parquet in one line)',
    )
    .option('--split <split>', 'only train, val or test')
    .action(
      withExitCode(async (runId: string, opts: { out: string; split?: string }) => {
        if (!opts.out.endsWith('.arrow'))
          throw new UsageError(`--out ${opts.out}: expected a .arrow file`);
        if (opts.split !== undefined && !isSplit(opts.split))
          throw new UsageError(`--split ${opts.split}: expected train, val or test`);
        loadStackEnvDefaults();
        const env = loadEnv();
        const outcome = await runStatus(await connectClient(env), runId);
        if (outcome.status !== 'COMPLETED')
          throw new UsageError(
            `Run ${runId} is ${outcome.status.toLowerCase()}: only completed runs have all their embeddings.`,
          );
        const keys = outcome.summary.extraction.shardKeys;
        const store = ObjectStore.connect(env.s3);
        const { metadata } = decodeShard(await store.requireBytes(keys[0]!));
        const m = await readMatrix(store, keys, {
          bundleHash: metadata.bundleHash,
          ...(opts.split ? { split: opts.split } : {}),
        });
        await writeFile(opts.out, encodeShard(m.rows, m.embeddings, m.dim, metadata));
        console.log(`${opts.out}: ${m.rows.length} rows, dim ${m.dim}, from ${keys.length} shards`);
        return 0;
      }),
    );
}
