// The structure drawn from imports (`npm run structure` prints it): no import cycles, and inside
// core/ no module imports a module of a higher core layer. Folder-level layering between core/,
// activities/, workflows/, client/ and cli/ is in eslint.config.mjs.
// core/ layers, lowest first: util < storage < config < dataset < model < worker-resources (the
// per-worker cache of plans, bundles and sessions) < embeddings < routes < runs < report < suites.
const CORE = [
  'util',
  'storage',
  'config',
  'dataset',
  'model',
  'worker-resources',
  'embeddings',
  'routes',
  'runs',
  'report',
  'suites',
];

const upward = CORE.map((layer, i) => ({
  name: `core-${layer}-imports-upward`,
  severity: 'error',
  comment: `core/${layer} may import only core layers below it (${CORE.slice(0, i).join(', ') || 'none'}).`,
  from: { path: `^core/${layer}(/|\\.ts$)` },
  to: { path: `^core/(${CORE.slice(i + 1).join('|')})(/|\\.ts$)` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Import cycles hide which module is lower; break them by moving the shared part down.',
      from: {},
      to: { circular: true },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.clipeval|\\.venv|test/fixtures)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    reporterOptions: {
      archi: { collapsePattern: '^(core/[^/]+|[^/]+)/' },
    },
  },
};
