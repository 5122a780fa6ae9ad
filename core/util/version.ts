/**
 * @file clipeval's version, read from package.json at run time (never copied into code). The
 * file is found from here: two folders up when run from source (core/util/), three when run
 * compiled (dist/core/util/), so the build does not have to emit package.json into dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function readVersion(): string {
  for (const up of ['../..', '../../..']) {
    const path = join(__dirname, up, 'package.json');
    if (!existsSync(path)) continue;
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'clipeval' && pkg.version) return pkg.version;
  }
  throw new Error(`clipeval: cannot find clipeval's package.json above ${__dirname}`);
}

/** The `version` of clipeval's package.json, e.g. `0.1.0`. */
export const CLIPEVAL_VERSION: string = readVersion();
