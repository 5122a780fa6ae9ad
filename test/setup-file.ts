import { DefaultLogger, Runtime } from '@temporalio/worker';

// Workers in tests log errors only (the bundler is chatty at INFO; expected failures log at WARN).
try {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
} catch {
  // already installed in this process
}
