// `npm run stack:up | stack:down | stack:status | stack:install`: the local Temporal + S3 stack.
import { stackDown, stackStatus, stackUp } from './stack';
import { installTools, TOOLS, toolVersion } from './tools';

async function main(command: string | undefined): Promise<number> {
  switch (command) {
    case 'up': {
      const r = await stackUp();
      console.log(r.started ? 'clipeval stack started' : 'clipeval stack already running (reused)');
      console.log(`  Temporal  ${r.state.temporal.address}  (UI ${r.state.temporal.uiUrl})`);
      console.log(`  S3        ${r.state.s3.endpoint}  bucket ${r.state.bucket}`);
      console.log(
        `  env file  ${r.envFile}  (the CLI and workers read it; or: set -a; . ${r.envFile}; set +a)`,
      );
      return 0;
    }
    case 'down':
      console.log(
        (await stackDown())
          ? 'clipeval stack stopped (data kept)'
          : 'clipeval stack was not running',
      );
      return 0;
    case 'status': {
      const s = await stackStatus();
      if (!s.state) {
        console.log('clipeval stack: not started');
        return 1;
      }
      console.log(`clipeval stack: ${s.healthy ? 'healthy' : 'NOT healthy'}`);
      console.log(`  Temporal  ${s.state.temporal.address} pid ${s.state.temporal.pid}`);
      console.log(`  S3        ${s.state.s3.endpoint} pid ${s.state.s3.pid}`);
      return s.healthy ? 0 : 1;
    }
    case 'install': {
      for (const { name, tool: t } of await installTools()) {
        const tool = name === 'keda-check' ? undefined : TOOLS[name as keyof typeof TOOLS];
        const version = tool
          ? `; ${toolVersion(t.path, 'versionArgs' in tool ? [...tool.versionArgs] : undefined)}`
          : '';
        console.log(`${name}: ${t.path} (${t.source}${version})`);
      }
      return 0;
    }
    default:
      console.error('usage: tsx infra/local-stack/main.ts up|down|status|install');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`clipeval stack: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
